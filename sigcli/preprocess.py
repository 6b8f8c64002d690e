"""Signature preprocessing (docs/preprocessing.md) and whole-dataset processing for `sig preprocess`.

:func:`preprocess_signature` gives the same bytes as the reference implementation, quirks
included: the ink box stops one short of its last row and column, the centre of mass is
truncated to int, and the resize is scikit-image's anti-aliased one truncated to uint8.
Published models were trained on images made exactly so.

:func:`process_dataset` runs it over a raw dataset in worker processes. Each image is
processed on its own, so the output does not depend on the number of workers.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import skimage
from scipy import ndimage
from skimage import filters, transform

from sigcli.data.loader import DatasetLoader, read_gray
from sigcli.data.sigset import FORGERY_KINDS, FolderWriter, SignatureSet, is_signature_set_folder
from sigcli.errors import InputError, first_line
from sigcli.fileio import check_output
from sigcli.config.preprocess import (IMAGE_SIZE, MAX_CANVAS_PIXELS, MAX_IMAGE_PIXELS, OutputFormat,  # noqa: F401
                                      PreprocessOptions, check_canvas, resized_shape)
from sigcli.options import save_options
from sigcli.parallel import worker_pool
from sigcli.progress import Reporter, resolve

log = logging.getLogger(__name__)

#: Sigma of the blur that finds the ink (box and centre of mass); the reference's value.
BLUR_SIGMA = 2
#: Files per task sent to a worker: enough to hide the inter-process cost, small enough to balance.
CHUNK_FILES = 8
#: Share of a pixel's blurred neighbourhood that must be ink, on a bilevel image: more than a
#: lone speck gives after the blur (1/(2π·2²) ≈ 4 %), less than a 1-pixel line (≈ 20 %).
BILEVEL_MIN_INK = 0.1
#: Cropped images named one by one in warnings before the rest are only counted.
NAMED_WARNINGS = 10

# scikit-image versions whose resize() _resize_windowed() was checked against, byte for byte
# (tests/test_preprocess.py); with any other the plain, slower resize() is called.
_WINDOWED_RESIZE = re.match(r"0\.26\.", skimage.__version__) is not None


class UnusableImageError(InputError):
    """An image that is left out of a batch (``sig preprocess``, ``sig verify``); the message says why."""


class BlankImageError(UnusableImageError):
    """An image with no ink to centre (a single grey level, or nothing dark after the blur)."""


class OversizedImageError(UnusableImageError):
    """An image whose header gives more pixels than :data:`MAX_IMAGE_PIXELS`."""


def check_image_file(path: str | os.PathLike) -> None:
    """Refuse, from its header alone, an image file too large to read (:data:`MAX_IMAGE_PIXELS`).

    PIL reads only the header when it opens a file. A file PIL cannot identify passes: its
    reader reports it. PIL refuses sizes past its own bomb limit itself, which is larger.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "more pixels than PIL will decode"
        raise OversizedImageError(f"image of {size}, more than the {MAX_IMAGE_PIXELS:,} sig reads") from None
    except Exception:  # not an image PIL knows: the reader says why
        return
    if width * height > MAX_IMAGE_PIXELS:
        raise OversizedImageError(f"image of {height}×{width} = {height * width:,} pixels, more than the "
                                  f"{MAX_IMAGE_PIXELS:,} sig reads")


class _Centred(NamedTuple):
    canvas: np.ndarray  # uint8 canvas, ink dark, everything above the threshold white
    region: tuple[slice, slice]  # where the signature was pasted; white everywhere else
    cropped: bool  # the ink box was larger than the canvas and was cut


def preprocess_signature(img: np.ndarray, canvas_size: tuple[int, int],
                         img_size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """Centre a grey signature (ink dark on light paper) on a canvas and resize it.

    Parameters
    ----------
    img : ndarray (H, W)
        Grey image, as :func:`sigcli.data.loader.read_gray` returns it; cast to uint8.
    canvas_size : (height, width)
        The dataset's canvas; a signature larger than it is cropped, with a warning.
    img_size : (height, width)
        Output size.

    Returns
    -------
    ndarray (img_size), uint8: ink bright on a 0 background.

    Raises
    ------
    BlankImageError
        The image has no ink (a single grey level, or no pixel at or below the threshold).
    """
    image, cropped = centre_and_resize(img, canvas_size, img_size)
    if cropped:
        log.warning("a signature larger than the %d×%d canvas was cropped", *canvas_size)
    return image


def centre_and_resize(img: np.ndarray, canvas_size: tuple[int, int],
                      img_size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """:func:`preprocess_signature` without its warning: the image, and whether it was cropped."""
    centred = centre_on_canvas(img, canvas_size)
    inverted = 255 - centred.canvas
    return resize_keeping_ratio(inverted, img_size, centred.region), centred.cropped


def centre_on_canvas(img: np.ndarray, canvas_size: tuple[int, int]) -> _Centred:
    """Steps 1–3 of docs/preprocessing.md#normalising-one-signature: find, centre, whiten."""
    img = np.asarray(img)
    if img.ndim != 2:
        raise InputError(f"expected a 2-D grey image, got shape {img.shape}",
                         "read images with sigcli.data.loader.read_gray")
    img = img.astype(np.uint8, copy=False)
    if img.size == 0 or img.min() == img.max():
        raise BlankImageError("the image has a single grey level, so no ink to centre")

    blurred = filters.gaussian(img, BLUR_SIGMA, preserve_range=True)
    threshold = ink_threshold(img, blurred)
    ink = blurred <= threshold
    ink_per_row = ink.sum(axis=1)
    ink_per_col = ink.sum(axis=0)
    n_ink = int(ink_per_row.sum())
    if n_ink == 0:
        raise BlankImageError("no pixel of the blurred image is at or below the Otsu threshold")
    # Means of the ink pixels' coordinates from per-row/column counts: exact integer sums, so
    # the same float as the mean of the coordinate list. Truncated like the reference.
    rows, cols = np.flatnonzero(ink_per_row), np.flatnonzero(ink_per_col)
    r_min, r_max, c_min, c_max = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    r_centre = int(int(np.dot(np.arange(len(ink_per_row)), ink_per_row)) / n_ink - r_min)
    c_centre = int(int(np.dot(np.arange(len(ink_per_col)), ink_per_col)) / n_ink - c_min)
    box = img[r_min:r_max, c_min:c_max]  # one short of the last ink row/column: reference quirk

    (r_start, r_keep), r_cut = _place(box.shape[0], canvas_size[0], r_centre)
    (c_start, c_keep), c_cut = _place(box.shape[1], canvas_size[1], c_centre)
    box = box[r_keep, c_keep]
    canvas = np.full(canvas_size, 255, dtype=np.uint8)
    region = (slice(r_start, r_start + box.shape[0]), slice(c_start, c_start + box.shape[1]))
    canvas[region] = np.where(box > threshold, np.uint8(255), box)  # background removal
    return _Centred(canvas, region, r_cut or c_cut)


def ink_threshold(img: np.ndarray, blurred: np.ndarray) -> float:
    """The level at or below which the blurred image is ink: Otsu's threshold of the image, as
    the reference computes it, unless that is the image's darkest level.

    That happens on a bilevel image (a clean black-and-white scan): with no grey between ink
    and paper, every threshold from the ink level up to just below the paper splits the
    histogram equally well and Otsu's takes the lowest, the ink level itself, which the blur
    lifts every stroke thinner than its kernel above: the image would look blank. There the
    threshold is Otsu's of the blurred image, whose grey (how much ink is near each pixel)
    the bilevel image lacks, at most :data:`BILEVEL_MIN_INK` of the way from paper to ink,
    so that a lone speck on an empty page still reads as blank. Grey scans keep the
    reference's bytes.
    """
    threshold = filters.threshold_otsu(img)
    darkest, lightest = int(img.min()), int(img.max())
    if threshold > darkest:
        return threshold
    return min(float(filters.threshold_otsu(blurred)), lightest - BILEVEL_MIN_INK * (lightest - darkest))


def _place(length: int, room: int, centre: int) -> tuple[tuple[int, slice], bool]:
    """Start on the canvas and kept part of a box side, so its centre of mass is centred.

    A side that would overflow is shifted back inside; one longer than the canvas keeps its
    middle ``room`` pixels and starts at 0 (the reported crop).
    """
    if length > room:
        cut = (length - room) // 2
        return (0, slice(cut, cut + room)), True
    start = room // 2 - centre
    start -= max(0, start + length - room)
    return (max(start, 0), slice(None)), False


def resize_keeping_ratio(img: np.ndarray, size: tuple[int, int],
                         ink_region: tuple[slice, slice] | None = None) -> np.ndarray:
    """docs/preprocessing.md#step-4-resize-without-distortion: fit the limiting side, crop the other's centre.

    ``ink_region`` (where ``img`` may be non-zero) lets the anti-aliasing blur skip the
    empty canvas; the result is the same to the byte.
    """
    height, width = size
    new_shape = resized_shape(img.shape, size)
    width_ratio, height_ratio = img.shape[1] / width, img.shape[0] / height
    if _WINDOWED_RESIZE and ink_region is not None:
        resized = _resize_windowed(img, new_shape, ink_region)
    else:
        resized = transform.resize(img, new_shape, mode="constant", anti_aliasing=True, preserve_range=True)
    resized = resized.astype(np.uint8)
    if width_ratio > height_ratio:
        start = int(round((new_shape[1] - width) / 2.0))
        return resized[:, start:start + width]
    start = int(round((new_shape[0] - height) / 2.0))
    return resized[start:start + height, :]


def _resize_windowed(img: np.ndarray, shape: tuple[int, int], ink_region: tuple[slice, slice]) -> np.ndarray:
    """``skimage.transform.resize(img, shape, mode='constant', anti_aliasing=True,
    preserve_range=True)`` for an image that is zero outside ``ink_region``.

    The anti-aliasing gaussian (separable, zero padding, columns then rows) is run on the
    region grown by the kernel radius only, and its row pass only on the rows the bilinear
    zoom reads: every other value is an exact 0.0 or never read, and each computed one sums
    the same products in the same order. The zoom and the clipping are resize()'s own.
    """
    factors = np.divide(img.shape, shape)
    sigmas = np.maximum(0, (factors - 1) / 2)
    window = tuple(_grow(part, int(4.0 * float(sigma) + 0.5), length)
                   for part, sigma, length in zip(ink_region, sigmas, img.shape))
    # Rows the bilinear zoom reads: each output row reads rows floor(c) and floor(c)+1 of its
    # source coordinate c; one more on each side keeps this a superset.
    base = np.floor((np.arange(shape[0]) + 0.5) * factors[0] - 0.5).astype(np.int64)
    rows = np.unique(np.clip(base[:, None] + np.arange(-1, 3), 0, img.shape[0] - 1))
    rows = rows[(rows >= window[0].start) & (rows < window[0].stop)] - window[0].start
    filtered = np.zeros(img.shape, dtype=np.float64)
    part = img[window].astype(np.float64)
    if part.size and rows.size:
        if sigmas[0] > 1e-15:  # gaussian_filter skips such axes
            part = ndimage.gaussian_filter1d(part, sigmas[0], axis=0, mode="grid-constant", cval=0.0)
        part = part[rows]
        if sigmas[1] > 1e-15:
            part = ndimage.gaussian_filter1d(part, sigmas[1], axis=1, mode="grid-constant", cval=0.0)
        filtered[rows + window[0].start, window[1]] = part
    out = ndimage.zoom(filtered, [1 / f for f in factors], order=1, mode="grid-constant", cval=0.0,
                       grid_mode=True)
    # resize() clips to the input's range, widened to hold cval (0) when the output reaches it.
    low, high = float(img.min()), float(img.max())
    if not low <= 0.0 <= high and out.min() <= 0.0 <= out.max():
        low, high = min(low, 0.0), max(high, 0.0)
    return np.clip(out, low, high, out=out)


def _grow(part: slice, margin: int, length: int) -> slice:
    return slice(max(part.start - margin, 0), min(part.stop + margin, length))


# ---------------------------------------------------------------------------- datasets
@dataclass
class PreprocessResult:
    """What a run wrote and what it had to leave out."""

    path: Path
    format: OutputFormat  # npz or folder, never auto
    dataset: str
    users: list[int]  # original ids of the processed users, in index order
    image_size: tuple[int, int]
    counts: dict[str, int]  # images written per kind: genuine, skilled, simple
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    cropped: list[str] = field(default_factory=list)  # files whose signature was cut to the canvas
    seconds: float = 0.0
    workers: int = 1
    options_path: Path | None = None

    @property
    def images(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "dataset": self.dataset,
                "users": len(self.users), "image_size": list(self.image_size), "counts": self.counts,
                "skipped": [list(item) for item in self.skipped], "cropped": self.cropped,
                "seconds": round(self.seconds, 3), "workers": self.workers}


class _Job(NamedTuple):
    path: Path
    user: int  # index in the processed range (y)
    kind: int  # 0 genuine, 1 skilled, 2 simple (yforg)


def process_dataset(options: PreprocessOptions, reporter: Reporter | None = None) -> PreprocessResult:
    """Preprocess every signature of a raw dataset into a signature set (docs/preprocessing.md#whole-datasets).

    Users are taken in the loader's order; for each, its genuine signatures, then skilled,
    then simple forgeries, as the reference does. ``y`` is the user's position in the
    processed range (0 for the first, as in the reference), ``user_mapping`` the original
    ids. Unreadable, blank and oversized images are skipped and reported; none usable is an
    InputError.
    The resolved options are saved beside the output (:func:`options_file`).
    """
    from sigcli.data.plugins import get_loader, origin, plugin_errors

    started = time.perf_counter()
    output = options.output
    check_output(output, overwrite=options.overwrite, inputs=[options.raw_path], owned=is_signature_set_folder)
    check_output(options_file(output), overwrite=options.overwrite, inputs=[options.raw_path])
    with plugin_errors(options.dataset):
        loader = get_loader(options.dataset).open(options.raw_path, options.loader_options)
        users = _select_users(loader, options.users)
        files_of = loader.signature_files(users, dedupe=options.dedupe)
        jobs = [_Job(file, index, kind) for index, user in enumerate(users)
                for kind, files in enumerate(files_of[user]) for file in files]
    if not jobs:
        raise InputError(f"{options.dataset}: no signature files for the selected users under {options.raw_path}")

    image_size = tuple(options.image_size)
    check_canvas(tuple(loader.canvas_size), image_size, f"the {options.dataset} canvas")
    folder = options.output_format == "folder"
    sink = (FolderWriter(output, len(jobs), image_size, overwrite=options.overwrite) if folder
            else _ArraySink(output, len(jobs), image_size, options.overwrite))
    worker = functools.partial(_preprocess_files, canvas_size=tuple(loader.canvas_size), img_size=image_size)
    chunks = [jobs[i:i + CHUNK_FILES] for i in range(0, len(jobs), CHUNK_FILES)]
    skipped: list[tuple[str, str]] = []
    cropped: list[str] = []
    counts = dict.fromkeys(FORGERY_KINDS.values(), 0)
    paths = ([job.path for job in chunk] for chunk in chunks)
    workers = min(options.workers, len(chunks))
    if workers > 1:
        _load_decoders(jobs[0].path)
    with worker_pool(workers) as pool, sink, \
            resolve(reporter).task(f"preprocess {options.dataset}", total=len(jobs)) as task:
        results = pool.imap(worker, paths) if pool else map(worker, paths)
        for chunk, (images, outcomes) in zip(chunks, results):
            kept = [job for job, outcome in zip(chunk, outcomes) if not isinstance(outcome, str)]
            for job, outcome in zip(chunk, outcomes):
                if isinstance(outcome, str):
                    skipped.append((str(job.path), outcome))
                    log.warning("skipped %s: %s", job.path, outcome)
                elif outcome:
                    cropped.append(str(job.path))
                    _warn_cropped(job.path, len(cropped), loader.canvas_size)
            if kept:
                sink.append(images, np.array([job.user for job in kept]), np.array([job.kind for job in kept]),
                            [loader.record_name(job.path) for job in kept])
                for job in kept:
                    counts[FORGERY_KINDS[job.kind]] += 1
            task.advance(len(chunk))
        if sink.count == 0:
            raise InputError(f"none of the {len(jobs)} images of {options.dataset} under {options.raw_path} "
                             f"could be preprocessed (first: {skipped[0][0]}: {skipped[0][1]})")
        sink.finish(np.asarray(users, dtype=np.int64))
    if len(cropped) > NAMED_WARNINGS:
        log.warning("%d images in all were cropped to the %d×%d canvas", len(cropped), *loader.canvas_size)

    result = PreprocessResult(path=output, format=options.output_format, dataset=options.dataset, users=users,
                              image_size=image_size, counts=counts, skipped=skipped, cropped=cropped,
                              seconds=time.perf_counter() - started, workers=options.workers)
    result.options_path = save_options(options, options_file(output), overwrite=options.overwrite,
                                       result=result.as_dict(), loader=origin(options.dataset))
    return result


def options_file(output: Path) -> Path:
    """Where a run's options go: ``NAME.json`` beside ``NAME.npz`` or the folder ``NAME/``
    (as `sig invert` does for its sets)."""
    return output.with_suffix(".json") if output.suffix == ".npz" else output.with_name(output.name + ".json")


def _select_users(loader: DatasetLoader, users: tuple[int, int] | None) -> list[int]:
    all_users = loader.users()
    if users is None:
        return all_users
    first, last = users
    if last > len(all_users):
        raise InputError(f"--users {first} {last} is beyond the {len(all_users)} users of {loader.name} "
                         f"under {loader.path}", f"give FIRST LAST with LAST <= {len(all_users)}")
    return all_users[first:last]


def _warn_cropped(path: Path, nth: int, canvas_size: tuple[int, int]) -> None:
    if nth <= NAMED_WARNINGS:
        log.warning("cropped %s: the signature is larger than the %d×%d canvas", path, *canvas_size)
    if nth == NAMED_WARNINGS:
        log.warning("further cropped images are only counted")


def read_signature(path: str | os.PathLike) -> np.ndarray:
    """An image file read as :func:`read_gray` reads it, or :class:`UnusableImageError` saying
    why it is left out: missing, too large (told from its header, before decoding) or not
    decodable. With :func:`normalise_signature`, what every command does to a file it may skip."""
    path = Path(path)
    if not path.exists():
        raise UnusableImageError("no such file")
    check_image_file(path)
    try:
        return read_gray(path)
    except Exception as exc:  # any decoder error means the same to the user: unreadable
        raise UnusableImageError(f"unreadable image ({type(exc).__name__}: {first_line(exc)})") from None


def normalise_signature(image: np.ndarray, canvas_size: tuple[int, int],
                        img_size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """:func:`centre_and_resize`, with every reason to leave the image out (blank, not a 2-D
    grey image, too large for memory) raised as :class:`UnusableImageError`."""
    try:
        return centre_and_resize(image, canvas_size, img_size)
    except UnusableImageError:
        raise
    except InputError as exc:  # not a 2-D image
        raise UnusableImageError(exc.message) from None
    except MemoryError:
        raise UnusableImageError(f"not enough memory to preprocess its {image.shape[0]}×{image.shape[1]} "
                                 "pixels") from None


def _preprocess_files(paths: list[Path], canvas_size: tuple[int, int],
                      img_size: tuple[int, int]) -> tuple[np.ndarray, list[bool | str]]:
    """Worker: read and preprocess files. Returns the images of those that worked and, per
    file, whether it was cropped (bool) or why it was skipped (str)."""
    images, outcomes = [], []
    for path in paths:
        try:
            image, cropped = normalise_signature(read_signature(path), canvas_size, img_size)
        except UnusableImageError as exc:
            outcomes.append(exc.message)
            continue
        images.append(image)
        outcomes.append(cropped)
    stacked = np.stack(images) if images else np.empty((0, *img_size), dtype=np.uint8)
    return stacked, outcomes


def _load_decoders(path: Path) -> None:
    """Read one image here: image decoders load on first use (~0.4 s), and forked workers
    then inherit them instead of each loading its own."""
    try:
        check_image_file(path)
        read_gray(path)
    except Exception:  # the worker reports it properly
        pass


class _ArraySink:
    """In-memory counterpart of :class:`FolderWriter` for the .npz format (saved atomically)."""

    def __init__(self, path: Path, capacity: int, image_size: tuple[int, int], overwrite: bool = False):
        self.path, self.overwrite = path, overwrite
        self.x = np.empty((capacity, 1, *image_size), dtype=np.uint8)
        self.y = np.empty(capacity, dtype=np.int64)
        self.yforg = np.empty(capacity, dtype=np.int64)
        self.filenames: list[str] = []
        self.count = 0

    def __enter__(self) -> "_ArraySink":
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def append(self, images: np.ndarray, y: np.ndarray, yforg: np.ndarray, filenames: list[str]) -> None:
        n = len(images)
        rows = slice(self.count, self.count + n)
        self.x[rows, 0], self.y[rows], self.yforg[rows] = images, y, yforg
        self.filenames.extend(filenames)
        self.count += n

    def finish(self, user_mapping: np.ndarray) -> Path:
        n = self.count
        return SignatureSet(self.x[:n], self.y[:n], self.yforg[:n], user_mapping,
                            np.asarray(self.filenames)).save(self.path, folder=False, overwrite=self.overwrite)


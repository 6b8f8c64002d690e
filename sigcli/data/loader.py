"""The dataset-loader contract: what a plugin in group ``sigcli.datasets`` provides.

A loader knows one raw dataset's on-disk layout. It lists users (sorted by number) and the
files of each user's genuine, skilled and simple signatures; reading and preprocessing are
done by sig itself, so a plugin is a few dozen lines. Register it in your package's
``pyproject.toml``::

    [project.entry-points."sigcli.datasets"]
    mydata = "mypackage.loader:MyLoader"

Optional parts, for data that is not one fixed, clean layout: a canvas measured from the
images (``canvas_size = CanvasFromData()``), options given on the command line
(``loader_options`` and ``__init__`` keywords, see :meth:`DatasetLoader.open`), a check for
files copied twice within a writer (``report_duplicates``) and the name an image keeps in
the signature set (:meth:`DatasetLoader.record_name`), and the names ``sig synth`` gives
synthetic files in this layout (:meth:`DatasetLoader.synth_path` and the ``synth_*``
attributes; docs/synthesis.md#layouts).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from sigcli.errors import DatasetLayoutError, InputError

ENTRY_POINT_GROUP = "sigcli.datasets"

#: File suffixes (lower case) taken for signature images; anything else in a folder is ignored.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
#: Percentile of the image heights and widths a measured canvas holds (see CanvasFromData).
CANVAS_PERCENTILE = 99.0
#: A measured canvas's height is rounded up to a multiple of this, so a few files more or
#: less rarely change it (and with it every preprocessed byte).
CANVAS_STEP = 10
#: Writers named one by one in a warning about their files before the rest are only counted.
NAMED_WRITERS = 10

log = logging.getLogger("sigcli.datasets")


class CanvasFromData:
    """``canvas_size = CanvasFromData()``: the canvas is measured from the dataset's images.

    Read on the class (``sig datasets``) it is ``None``, meaning "from the data"; read on a
    loader it is measured once by :meth:`DatasetLoader.measure_canvas`, from image headers
    only. A loader may still set ``self.canvas_size`` itself (e.g. from an option): an
    instance value wins.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    def __get__(self, loader: DatasetLoader | None, owner: type | None = None) -> tuple[int, int] | None:
        if loader is None:
            return None
        canvas = loader.measure_canvas()
        loader.__dict__[self.attribute] = canvas  # measured once per loader
        return canvas


class DatasetLoader(ABC):
    """One raw dataset layout. Subclasses set the class attributes and the three listings."""

    #: Short name, the entry point's name (``sig preprocess --dataset NAME``).
    name: ClassVar[str]
    #: Canvas (height, width) the signatures are centred in (docs/preprocessing.md#canvas-sizes), or
    #: ``CanvasFromData()`` to measure it from the images.
    canvas_size: ClassVar[tuple[int, int] | None]
    #: Expected numbers per user, used for checks and summaries (None: known only from the data).
    genuine_per_user: ClassVar[int | None]
    skilled_per_user: ClassVar[int | None]
    simple_per_user: ClassVar[int | None] = 0
    #: Options ``sig preprocess --loader-option KEY=VALUE`` may pass, name → help. Each is a
    #: keyword argument of ``__init__``, given as text; the loader parses and checks it.
    loader_options: ClassVar[dict[str, str]] = {}
    #: Look for byte-identical files within each writer and warn even without ``--dedupe``
    #: (for datasets whose circulating copies are known to hold such copies).
    report_duplicates: ClassVar[bool] = False

    # Synthesis (optional): how ``sig synth`` writes this layout and how its images were made.
    #: PIL format of the image files ("PNG", "JPEG", "BMP", "TIFF").
    synth_format: ClassVar[str] = "PNG"
    #: Scan resolution, dots per inch.
    synth_dpi: ClassVar[int] = 300
    #: Typical width of a signature on the paper, mm (the space the writers were given).
    synth_width_mm: ClassVar[float] = 50.0
    #: Pen families of the writers: "ballpoint", "felt-tip", "pencil".
    synth_pens: ClassVar[tuple[str, ...]] = ("ballpoint",)
    #: Share of writers who add a flourish to their name.
    synth_flourish: ClassVar[float] = 0.5
    #: Number of the first user, as the dataset numbers them.
    synth_first_user: ClassVar[int] = 1

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DatasetLayoutError(f"{self.name}: {self.path} is not a folder",
                                     f"point --path at the root of the {self.name} dataset")

    @classmethod
    def open(cls, path: str | os.PathLike, options: Mapping[str, str] | None = None) -> DatasetLoader:
        """The loader of the data at ``path``, with ``options`` (checked against
        ``loader_options``) passed as keyword arguments."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.loader_options))
        if unknown:
            takes = ", ".join(cls.loader_options) or "none"
            raise InputError(f"{cls.name}: no loader option {unknown[0]!r} (options it takes: {takes})",
                             f"see 'sig datasets {cls.name}'")
        return cls(path, **options)

    @abstractmethod
    def users(self) -> list[int]:
        """Original user ids, sorted by number. Raise DatasetLayoutError if none match."""

    @abstractmethod
    def genuine_files(self, user: int) -> list[Path]:
        """Genuine signature files of ``user``, in a stable order."""

    @abstractmethod
    def skilled_files(self, user: int) -> list[Path]:
        """Skilled forgeries of ``user``."""

    def simple_files(self, user: int) -> list[Path]:
        """Simple forgeries of ``user`` (only some datasets have them)."""
        return []

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        """Where ``user``'s ``index``-th (from 0) ``kind`` image goes, relative to the root.

        ``kind`` is "genuine", "skilled" or "simple". None where the layout has no such
        file (a kind it lacks, an index its names cannot hold, a user without forgeries).
        Implement it to let ``sig synth`` write this layout; the files it names must be the
        ones :meth:`genuine_files`, :meth:`skilled_files` and :meth:`simple_files` find.
        """
        return None

    @classmethod
    def can_synthesize(cls) -> bool:
        """Whether ``sig synth`` can write this layout (the loader implements :meth:`synth_path`)."""
        return cls.synth_path.__func__ is not DatasetLoader.synth_path.__func__

    @classmethod
    @abstractmethod
    def describe(cls) -> str:
        """How to obtain the data and what the folder must look like."""

    def writer_label(self, user: int) -> str:
        """How messages name writer ``user``: its id, unless the layout has names for writers."""
        return str(user)

    def record_name(self, path: Path) -> str:
        """The name ``path`` keeps in a signature set's ``filenames``; the file name unless a
        layout needs more (e.g. the writer's folder) to tell images apart."""
        return path.name

    def signature_files(self, users: list[int], dedupe: bool = False) -> dict[int, tuple[list[Path], ...]]:
        """Each user's genuine, skilled and simple files, as ``sig preprocess`` takes them.

        Byte-identical files of one user are looked for when ``dedupe`` is asked or the loader
        sets ``report_duplicates``, and reported; ``dedupe`` leaves out every copy but the
        first (genuine before skilled before simple).
        """
        listed = {user: (self.genuine_files(user), self.skilled_files(user), self.simple_files(user))
                  for user in users}
        if not (dedupe or self.report_duplicates):
            return listed
        found: dict[int, dict[Path, Path]] = {}
        for user, kinds in listed.items():
            copies = duplicate_files([file for files in kinds for file in files])
            if copies:
                found[user] = copies
                if dedupe:
                    listed[user] = tuple([file for file in files if file not in copies] for files in kinds)
        self._warn_duplicates(found, dedupe)
        return listed

    def measure_canvas(self) -> tuple[int, int]:
        """The canvas holding nearly all of this dataset's images (for ``CanvasFromData``).

        Heights and widths are read from image headers (no pixels decoded) over every file
        of every user, so the canvas depends neither on ``--users`` nor on ``--dedupe``. The
        canvas holds the CANVAS_PERCENTILE-th percentile height and width (not the largest:
        one page-sized scan or stray mark would shrink every other signature when the canvas
        is resized), with the preprocessed images' aspect ratio, its height rounded up to
        CANVAS_STEP. A larger image loses ink only if its ink box is larger, with a warning.
        """
        files = [file for user in self.users()
                 for file in (*self.genuine_files(user), *self.skilled_files(user), *self.simple_files(user))]
        shapes = [shape for shape in map(image_shape, files) if shape is not None]
        if not shapes:
            raise DatasetLayoutError(f"{self.name}: none of the {len(files)} image files under {self.path} "
                                     "has a readable header to measure the canvas from",
                                     "check the files, or give the canvas if the loader takes it")
        canvas = canvas_holding(shapes, percentile=CANVAS_PERCENTILE, step=CANVAS_STEP)
        log.info("%s: canvas %d×%d, holding the %gth percentile height and width of %d images",
                 self.name, *canvas, CANVAS_PERCENTILE, len(shapes))
        return canvas

    def _warn_duplicates(self, found: dict[int, dict[Path, Path]], dedupe: bool) -> None:
        for user in list(found)[:NAMED_WRITERS]:
            pairs = ", ".join(f"{self.record_name(copy)} = {self.record_name(first)}"
                              for copy, first in found[user].items())
            log.warning("%s writer %s: identical files %s", self.name, self.writer_label(user), pairs)
        if found:
            copies = sum(map(len, found.values()))
            what = "left out (--dedupe)" if dedupe else "kept; pass --dedupe to leave them out"
            named = f" ({NAMED_WRITERS} writers named above)" if len(found) > NAMED_WRITERS else ""
            log.warning("%s: %d file(s) in %d writer(s) are byte-identical copies of another file of "
                        "their writer%s: %s", self.name, copies, len(found), named, what)

    def layout_error(self, expected: str, where: Path | None = None) -> DatasetLayoutError:
        """The error for a folder that does not match: what was expected, what is there."""
        where = self.path if where is None else where
        return DatasetLayoutError(f"{self.name}: no {expected} under {where} (found: {found(where)})",
                                  f"see 'sig datasets {self.name}' for the expected layout")

    def no_user(self, user: int) -> InputError:
        """The error for a user id the dataset does not have."""
        users = self.users()
        have = f"{users[0]}..{users[-1]}" if users else "none"
        return InputError(f"{self.name}: no user {user} under {self.path} (users: {have})")

    # Iteration helpers: images as uint8 grey (ink dark on light paper) with their filenames.
    def iter_genuine(self, user: int) -> Iterator[tuple[np.ndarray, str]]:
        return _iter_images(self.genuine_files(user))

    def iter_skilled(self, user: int) -> Iterator[tuple[np.ndarray, str]]:
        return _iter_images(self.skilled_files(user))

    def iter_simple(self, user: int) -> Iterator[tuple[np.ndarray, str]]:
        return _iter_images(self.simple_files(user))


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 grey exactly as the reference loaders do (docs/preprocessing.md#reading-images).

    scikit-image's ``as_gray`` (luminance 0.2125/0.7154/0.0721 for colour, transparent
    pixels on white) then ``img_as_ubyte`` (16-bit scaled down); PIL's own grey conversion
    would give other bytes. What scikit-image cannot read as one 2-D image (content other
    than its name says, e.g. a PNG named .tif; several pages or frames; grey with alpha) is
    decoded by PIL from its content and given the same conversion.
    """
    from skimage import img_as_ubyte
    from skimage.io import imread

    try:
        image = imread(os.fspath(path), as_gray=True)
    except Exception as error:  # decoders fail in many ways; PIL gets a second try
        try:
            image = _read_gray_by_content(path)
        except Exception:
            raise error from None
    if image.ndim != 2:
        image = _read_gray_by_content(path)
    return img_as_ubyte(image)


def _read_gray_by_content(path: str | os.PathLike) -> np.ndarray:
    """The first page of any image PIL identifies, grey as scikit-image's ``as_gray`` makes it."""
    from PIL import Image

    with Image.open(path) as image:
        image.seek(0)
        return _gray_of_pil(image)


def _gray_of_pil(image) -> np.ndarray:
    """A PIL image as scikit-image's ``as_gray`` makes it (before ``img_as_ubyte``)."""
    from skimage.color import rgb2gray, rgba2rgb

    if image.mode == "1":
        image = image.convert("L")
    if image.mode in ("L", "I;16", "I;16L", "I;16B"):
        return np.asarray(image)
    if image.mode == "I":  # 16-bit grey some decoders widen to 32 bits
        pixels = np.asarray(image)
        if pixels.size and 0 <= pixels.min() and pixels.max() <= 0xFFFF:
            return pixels.astype(np.uint16)
    if "A" in image.mode or "transparency" in image.info:
        return rgb2gray(rgba2rgb(np.asarray(image.convert("RGBA"))))
    return rgb2gray(np.asarray(image.convert("RGB")))


def gray_image(image) -> np.ndarray:
    """An image held in memory (a numpy array or a PIL image) as uint8 grey, converted as
    :func:`read_gray` converts a file with the same pixels: a 2-D array is grey (uint8 as it
    is, 16-bit scaled down, floats in [0, 1]); an H×W×3 or H×W×4 array is RGB or RGBA."""
    from skimage import img_as_ubyte
    from skimage.color import rgb2gray, rgba2rgb

    if not isinstance(image, np.ndarray):
        return img_as_ubyte(_gray_of_pil(image))
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = rgb2gray(rgba2rgb(image) if image.shape[-1] == 4 else image)
    elif image.ndim != 2:
        raise ValueError(f"an array of shape {image.shape} is neither H×W grey nor H×W×3/4 colour")
    return img_as_ubyte(image)


def image_shape(path: Path) -> tuple[int, int] | None:
    """(height, width) of an image from its header, no pixels decoded; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # unreadable files are reported when they are read
        return None
    return height, width


def canvas_holding(shapes: list[tuple[int, int]], percentile: float = 100.0, step: int = 1,
                   image_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The smallest canvas with ``image_size``'s aspect ratio (default: the preprocessed
    images') holding the ``percentile``-th percentile height and width of ``shapes``, its
    height rounded up to a multiple of ``step`` (the width follows from the ratio)."""
    if image_size is None:
        from sigcli.preprocess import IMAGE_SIZE  # imports this module: imported late

        image_size = IMAGE_SIZE
    heights, widths = np.asarray(shapes).T
    height = float(np.percentile(heights, percentile, method="higher"))
    width = float(np.percentile(widths, percentile, method="higher"))
    ratio = image_size[1] / image_size[0]
    height = step * math.ceil(round(max(height, width / ratio), 6) / step)
    return height, math.ceil(round(height * ratio, 6))


def duplicate_files(files: list[Path]) -> dict[Path, Path]:
    """Files whose bytes equal an earlier file's in ``files``: copy → first file. Only files
    of one size are hashed; unreadable files are left to the reader to report."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for file in files:
        try:
            by_size[file.stat().st_size].append(file)
        except OSError:
            continue
    copies: dict[Path, Path] = {}
    for same_size in (group for group in by_size.values() if len(group) > 1):
        first_by_digest: dict[bytes, Path] = {}
        for file in same_size:
            try:
                digest = hashlib.blake2b(file.read_bytes(), digest_size=16).digest()
            except OSError:
                continue
            first = first_by_digest.setdefault(digest, file)
            if first != file:
                copies[file] = first
    order = {file: i for i, file in enumerate(files)}
    return dict(sorted(copies.items(), key=lambda item: order[item[0]]))


def warn_unexpected_counts(name: str, counts: Mapping[str, tuple[int, ...]], expected: tuple[int, ...]) -> None:
    """Warn about writers whose (genuine, skilled, simple) counts differ from ``expected``:
    one line for each of the first few, then one summary line."""
    kinds = ("genuine", "skilled", "simple")
    deviating = {writer: found for writer, found in counts.items() if tuple(found) != tuple(expected)}
    for writer, found in list(deviating.items())[:NAMED_WRITERS]:
        differences = ", ".join(f"{n} {kind} (expected {e})" for kind, n, e in zip(kinds, found, expected) if n != e)
        log.warning("%s writer %s: %s", name, writer, differences)
    if deviating:
        usual = " / ".join(f"{e} {kind}" for kind, e in zip(kinds, expected) if e or kind != "simple")
        named = f" ({NAMED_WRITERS} named above)" if len(deviating) > NAMED_WRITERS else ""
        log.warning("%s: %d of %d writer(s) do not have the expected %s%s", name, len(deviating), len(counts), usual,
                    named)


@lru_cache(maxsize=1)
def pil_image_suffixes() -> frozenset[str]:
    """File suffixes (lower case) of every image format this PIL can read."""
    from PIL import Image

    Image.init()
    return frozenset(suffix for suffix, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def natural_key(name: str) -> tuple:
    """Sort key reading digit runs as numbers ('c-2' before 'c-10'), case-insensitive."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), name


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order; hidden files (``.x``, temporaries) skipped."""
    return sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")
                   and entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()),
                  key=lambda entry: natural_key(entry.name))


def numbered_folders(root: Path) -> dict[int, Path]:
    """Sub-folders of ``root`` named by digits only, by number ('1000' after '200').

    Other entries are ignored; two names for one number ('7' and '007') are an error.
    """
    folders: dict[int, Path] = {}
    for entry in root.iterdir():
        if entry.name.isascii() and entry.name.isdigit() and entry.is_dir():
            number = int(entry.name)
            if number in folders:
                raise DatasetLayoutError(f"{root}: folders {folders[number].name}/ and {entry.name}/ "
                                         f"are both user {number}", "keep one of them")
            folders[number] = entry
    return dict(sorted(folders.items()))


def found(folder: Path, limit: int = 6) -> str:
    """A short listing of what ``folder`` holds, folders marked with '/'."""
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: natural_key(entry.name))
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
    if not names:
        return "nothing"
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _iter_images(files: list[Path]) -> Iterator[tuple[np.ndarray, str]]:
    for file in files:
        yield read_gray(file), file.name

"""Preprocessed signature sets: the `.npz` file and the memory-mapped folder (docs/formats.md#signature-sets).

A :class:`SignatureSet` holds ``x`` (N×1×H×W, ink bright on 0), ``y`` (user index 0..U-1),
``yforg`` (0 genuine, 1 skilled, 2 simple), ``user_mapping`` (index → original user id, or
``None`` when unavailable) and ``filenames``. Loading never unpickles unless asked to: a
reference file whose mapping is a pickled dict still loads, without its mapping.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from sigcli.errors import InputError
from sigcli.fileio import atomic_path, holds_only, remove

log = logging.getLogger(__name__)

KEYS = ("x", "y", "yforg", "user_mapping", "filenames")
REQUIRED_KEYS = ("x", "y", "yforg")
FORGERY_KINDS = {0: "genuine", 1: "skilled", 2: "simple"}
#: What a signature set holds: every error about a malformed one says it.
LAYOUT = ("a signature set holds x (N×1×H×W images, uint8 or float), y (N user indices, integers ≥ 0) "
          "and yforg (N forgery codes: 0 genuine, 1 skilled, 2 simple)")


@dataclass
class SignatureSet:
    x: np.ndarray
    y: np.ndarray
    yforg: np.ndarray
    user_mapping: np.ndarray | None = None
    filenames: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.x) != 4 or self.x.shape[1] != 1:
            raise InputError(f"signature images must be N×1×H×W, got shape {np.shape(self.x)}")
        if self.x.dtype != np.uint8 and self.x.dtype.kind != "f":
            raise InputError(f"signature images must be uint8 or float, got {self.x.dtype}")
        n = len(self.x)
        for name in ("y", "yforg", "filenames"):
            value = getattr(self, name)
            if value is not None and np.ndim(value) != 1:
                raise InputError(f"'{name}' must hold one entry per image, got shape {np.shape(value)}")
            if value is not None and len(value) != n:
                raise InputError(f"'{name}' has {len(value)} entries but 'x' has {n} images")

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self.x)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x.shape[2]), int(self.x.shape[3])

    @property
    def users(self) -> np.ndarray:
        """Sorted distinct user indices present in the set."""
        return np.unique(self.y)

    def counts(self) -> dict[str, int]:
        return {kind: int(np.count_nonzero(self.yforg == code)) for code, kind in FORGERY_KINDS.items()}

    def summary(self) -> str:
        """One line: users, genuine, skilled, simple, image size."""
        c = self.counts()
        h, w = self.image_size
        return (f"{len(self.users)} users, {c['genuine']} genuine, {c['skilled']} skilled, "
                f"{c['simple']} simple, {h}×{w} {self.x.dtype}")

    # ------------------------------------------------------------------ subsets
    def subset(self, index: np.ndarray | slice) -> "SignatureSet":
        """Rows ``index`` of every array. A slice keeps a memory-mapped ``x`` lazy."""
        return SignatureSet(
            x=self.x[index], y=self.y[index], yforg=self.yforg[index],
            user_mapping=self.user_mapping,
            filenames=None if self.filenames is None else self.filenames[index],
        )

    def select_users(self, first: int, last: int) -> "SignatureSet":
        """Signatures of users with index in ``[first, last)`` (docs/formats.md#user-ranges)."""
        if last <= first:
            raise InputError(f"empty user range [{first}, {last})", "give FIRST < LAST")
        return self.subset(_as_slice_if_contiguous(np.flatnonzero((self.y >= first) & (self.y < last))))

    def genuine_only(self) -> "SignatureSet":
        """Drop every forgery (skilled and simple)."""
        return self.subset(_as_slice_if_contiguous(np.flatnonzero(self.yforg == 0)))

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | os.PathLike, allow_pickle: bool = False) -> "SignatureSet":
        """Load a `.npz` file or a folder of `.npy` files (``x`` memory-mapped).

        ``allow_pickle`` lets a pickled ``user_mapping`` be read; only pass it for files you
        trust, since unpickling can run code.
        """
        path = Path(path)
        if path.is_dir():
            return cls._load_folder(path, allow_pickle)
        if not path.exists():
            raise InputError(f"no signature set at {path}", "give a .npz file or a folder made by 'sig preprocess'")
        _check_is_npz(path)
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path} is not a signature set (.npz): {exc}") from None
        with archive:
            missing = [k for k in REQUIRED_KEYS if k not in archive.files]
            if missing:
                raise InputError(f"{path} lacks the key(s) {', '.join(missing)} of a signature set",
                                 f"it has {', '.join(archive.files) or 'no arrays'}")
            arrays = {k: _read_member(path, k, lambda: archive[k], allow_pickle) for k in KEYS if k in archive.files}
            if allow_pickle:
                for key in KEYS:
                    if key in archive.files and arrays.get(key) is None:
                        with np.load(path, allow_pickle=True) as trusted:
                            arrays[key] = trusted[key]
        return cls._from_arrays(arrays, path)

    @classmethod
    def _load_folder(cls, folder: Path, allow_pickle: bool) -> "SignatureSet":
        missing = [k for k in REQUIRED_KEYS if not (folder / f"{k}.npy").exists()]
        if missing:
            raise InputError(f"{folder} is not a signature-set folder: no {', '.join(k + '.npy' for k in missing)}")
        arrays = {}
        for key in KEYS:
            file = folder / f"{key}.npy"
            if file.exists():
                mmap = "r" if key == "x" else None
                arrays[key] = _read_member(folder, key, lambda: np.load(file, mmap_mode=mmap, allow_pickle=False),
                                           allow_pickle)
                if arrays[key] is None and allow_pickle:
                    arrays[key] = np.load(file, allow_pickle=True)
        return cls._from_arrays(arrays, folder)

    @classmethod
    def _from_arrays(cls, arrays: dict, source: Path) -> "SignatureSet":
        """Check what a file holds before anything uses it: one line naming the first fault."""
        try:
            mapping = arrays.get("user_mapping")
            return cls(x=arrays["x"], y=label_array(arrays["y"], "y"),
                       yforg=label_array(arrays["yforg"], "yforg", FORGERY_KINDS),
                       user_mapping=None if mapping is None else _mapping_to_array(mapping),
                       filenames=arrays.get("filenames"))
        except InputError as exc:
            raise InputError(f"{source}: {exc.message}", LAYOUT) from None

    def save(self, path: str | os.PathLike, folder: bool | None = None, overwrite: bool = False) -> Path:
        """Write atomically as `.npz`, or as a folder when ``folder`` or ``path`` ends in '/'.

        An existing ``path`` is refused unless ``overwrite`` (then only a file or a
        signature-set folder is replaced, see :func:`sigcli.fileio.atomic_path`).
        """
        as_folder = str(path).endswith(("/", os.sep)) if folder is None else folder
        path = Path(path)
        if as_folder:
            with atomic_path(path, suffix="", overwrite=overwrite, owned=is_signature_set_folder) as tmp:
                tmp.mkdir()
                for key, value in self._arrays().items():
                    np.save(tmp / f"{key}.npy", value, allow_pickle=False)
        else:
            with atomic_path(path, suffix=".npz", overwrite=overwrite, owned=is_signature_set_folder) as tmp:
                np.savez(tmp, **self._arrays())
        return path

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"x": np.asarray(self.x), "y": self.y, "yforg": self.yforg}
        if self.user_mapping is not None:
            arrays["user_mapping"] = np.asarray(self.user_mapping, dtype=np.int64)
        if self.filenames is not None:
            arrays["filenames"] = np.asarray(self.filenames, dtype=str)
        return arrays


class FolderWriter:
    """Stream signatures into the folder format with memory that does not grow with N.

    Images are written straight to ``x.npy`` (plain file writes: a memory map would keep
    every written page in the process's resident memory), under a header sized for
    ``capacity`` images; :meth:`finish` rewrites the header for the number written and
    renames the folder into place. Leaving the ``with`` block on an exception removes
    everything.
    """

    def __init__(self, path: str | os.PathLike, capacity: int, image_size: tuple[int, int], dtype=np.uint8,
                 overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.capacity = capacity
        self.image_size = image_size
        self.dtype = np.dtype(dtype)
        self.count = 0
        self._y = array("q")
        self._yforg = array("q")
        self._filenames: list[str] = []

    def __enter__(self) -> "FolderWriter":
        self._atomic = atomic_path(self.path, suffix="", overwrite=self.overwrite, owned=is_signature_set_folder)
        self._tmp = self._atomic.__enter__()
        self._tmp.mkdir()
        self._x = open(self._tmp / "x.npy", "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.capacity, 1, *self.image_size)}
        np.lib.format.write_array_header_1_0(self._x, header)
        self._offset = self._x.tell()
        return self

    def append(self, images: np.ndarray, y: int | np.ndarray, yforg: int | np.ndarray, filenames) -> None:
        """Add images (n×H×W or n×1×H×W) with their user index, forgery kind and filenames."""
        images = np.asarray(images).reshape(-1, 1, *self.image_size)
        n = len(images)
        if self.count + n > self.capacity:
            raise ValueError(f"writer holds at most {self.capacity} images")
        self._x.write(np.ascontiguousarray(images, dtype=self.dtype).data)
        self._y.extend(np.broadcast_to(y, (n,)).tolist())
        self._yforg.extend(np.broadcast_to(yforg, (n,)).tolist())
        self._filenames.extend(list(filenames))
        self.count += n

    def finish(self, user_mapping: np.ndarray | None) -> Path:
        self._x.close()
        _shrink_npy(self._tmp / "x.npy", self._offset, (self.count, 1, *self.image_size), self.dtype)
        np.save(self._tmp / "y.npy", np.asarray(self._y, dtype=np.int64))
        np.save(self._tmp / "yforg.npy", np.asarray(self._yforg, dtype=np.int64))
        np.save(self._tmp / "filenames.npy", np.asarray(self._filenames, dtype=str))
        if user_mapping is not None:
            np.save(self._tmp / "user_mapping.npy", np.asarray(user_mapping, dtype=np.int64))
        self._finished = True
        return self.path

    def __exit__(self, exc_type, exc, tb) -> bool:
        unfinished = exc_type is None and not getattr(self, "_finished", False)
        if unfinished:
            exc_type, exc, tb = RuntimeError, RuntimeError("FolderWriter left without finish()"), None
        if exc_type is not None:
            self._x.close()
            remove(self._tmp)
            self._atomic.__exit__(exc_type, exc, tb)
            if unfinished:  # nothing else would tell the caller that no output was written
                raise exc
            return False
        return self._atomic.__exit__(None, None, None) or False


def is_signature_set_folder(path: Path) -> bool:
    """A folder holding the .npy files of a signature set and nothing else: one that
    ``--overwrite`` may replace."""
    return holds_only(path, lambda name: name in _FOLDER_FILES, (f"{key}.npy" for key in REQUIRED_KEYS))


_FOLDER_FILES = frozenset(f"{key}.npy" for key in KEYS)


def _shrink_npy(file: Path, offset: int, shape: tuple, dtype: np.dtype) -> None:
    """Rewrite an .npy header for a smaller first dimension and cut the file to match."""
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.lib.format.dtype_to_descr(dtype), shape)
    magic = np.lib.format.magic(1, 0)
    room = offset - len(magic) - 2
    body = header.ljust(room - 1) + "\n"
    if len(body) != room:
        raise ValueError("npy header does not fit")
    with open(file, "r+b") as fh:
        fh.write(magic + room.to_bytes(2, "little") + body.encode("latin1"))
        fh.truncate(offset + int(np.prod(shape)) * dtype.itemsize)


def _check_is_npz(path: Path) -> None:
    """Tell what a file is before numpy does: for anything that is not a zip or .npy file
    (an HTML error page, a truncated download) numpy suggests unpickling it, wrongly."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"PK"):
        return
    if head.startswith(b"\x93NUMPY"):
        raise InputError(f"{path} is a single .npy array, not a signature set (.npz with x, y, yforg)",
                         "give the .npz file, or the folder holding x.npy, y.npy and yforg.npy")
    what = "an HTML page" if head.lstrip()[:1] == b"<" else "neither a .npz nor a .npy file"
    raise InputError(f"{path} is not a signature set: {what} (it starts with {head[:20]!r})",
                     "give a .npz file or a folder made by 'sig preprocess'")


def _read_member(source: Path, key: str, read, allow_pickle: bool) -> np.ndarray | None:
    """Read one array without unpickling. A pickled one comes back as ``None``: the caller
    re-reads it when ``allow_pickle``; otherwise an optional array is dropped with one
    warning and a required one is an error."""
    try:
        return read()
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise InputError(f"{source}: cannot read '{key}': {exc}") from None
        if allow_pickle:
            return None
        if key in REQUIRED_KEYS:
            raise InputError(f"{source}: '{key}' is stored with pickle (unpickling can run code)",
                             "pass --allow-pickle if you trust this file") from None
        log.warning("%s: '%s' is stored with pickle and was not loaded (unpickling can run code); "
                    "pass --allow-pickle if you trust this file", source, key)
        return None


def label_array(values: np.ndarray, name: str, codes: dict[int, str] | None = None) -> np.ndarray:
    """``values`` as int64 labels, after checking they are labels: one per row (1-d), whole
    numbers ≥ 0 (a float array only when every value is one), and among ``codes`` if given.

    Casting first would turn NaN into -2^63 and a string into a crash.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise InputError(f"'{name}' has shape {values.shape}, not one label per row")
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2.0 ** 53)
        if not whole.all():
            raise InputError(f"'{name}' holds values that are not whole numbers "
                             f"({np.count_nonzero(~whole)} of {len(values)}, e.g. {values[~whole][0]})")
    elif values.dtype.kind not in "iu":
        raise InputError(f"'{name}' holds {kind_of_values(values.dtype)} values, not integers")
    values = values.astype(np.int64, copy=False)
    allowed = values >= 0 if codes is None else np.isin(values, list(codes))
    if not allowed.all():
        where = "below 0" if codes is None else f"outside {', '.join(map(str, codes))}"
        raise InputError(f"'{name}' holds values {where} ({np.count_nonzero(~allowed)} of {len(values)}, "
                         f"e.g. {values[~allowed][0]})")
    return values


def kind_of_values(dtype: np.dtype) -> str:
    """A dtype in words for error messages ("text" rather than "<U1")."""
    return {"U": "text", "S": "text", "b": "true/false", "O": "Python object"}.get(dtype.kind, str(dtype))


def _mapping_to_array(mapping: np.ndarray) -> np.ndarray:
    """Accept our int array or a reference dict (index → user id) read with opt-in pickle."""
    if mapping.dtype == object and mapping.ndim == 0 and isinstance(mapping.item(), dict):
        as_dict = mapping.item()
        mapping = np.asarray([as_dict[i] for i in sorted(as_dict)])
    return label_array(mapping, "user_mapping")


def _as_slice_if_contiguous(index: np.ndarray) -> np.ndarray | slice:
    if len(index) and index[-1] - index[0] + 1 == len(index):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


@dataclass(frozen=True)
class Canvas:
    """How a set's images were made: centred on a ``size`` canvas (the dataset's), resized to
    ``image_size``. A model scores images well only when they are made the same way, so the
    canvas is recorded with what is trained on a set (config.json, feature files, WI models)."""

    dataset: str | None
    size: tuple[int, int]
    image_size: tuple[int, int]

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "canvas_size": list(self.size), "image_size": list(self.image_size)}

    @classmethod
    def from_dict(cls, record: object) -> "Canvas | None":
        """The canvas of a record written by :meth:`as_dict`; ``None`` for anything else."""
        try:
            size = tuple(int(v) for v in record["canvas_size"])
            image_size = tuple(int(v) for v in record["image_size"])
            dataset = record.get("dataset")
        except (TypeError, KeyError, ValueError, AttributeError):
            return None
        if len(size) != 2 or len(image_size) != 2 or min(size + image_size) < 1:
            return None
        return cls(None if dataset is None else str(dataset), size, image_size)

    def describe(self) -> str:
        where = f"dataset {self.dataset}, " if self.dataset else ""
        return f"{where}canvas {self.size[0]}×{self.size[1]}"


def canvas_of(path: str | os.PathLike) -> Canvas | None:
    """The canvas a set was preprocessed on, from the options 'sig preprocess' saved beside it
    (``None`` when there are none, e.g. a set made by 'sig invert' or by other tools)."""
    from sigcli.preprocess import options_file

    record_file = options_file(Path(path))
    try:
        record = json.loads(record_file.read_text())
        options = record["options"]
        dataset = str(options["dataset"])
        image_size = options["image_size"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    size = record.get("canvas_size")
    if size is None:  # options files that do not record it: the dataset loader's
        from sigcli.data.plugins import get_loader
        from sigcli.errors import PluginError

        try:
            size = get_loader(dataset).canvas_size
        except PluginError:
            log.warning("%s names dataset %s, whose loader is not installed: its canvas is unknown",
                        record_file, dataset)
            return None
    return Canvas.from_dict({"dataset": dataset, "canvas_size": size, "image_size": image_size})


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))

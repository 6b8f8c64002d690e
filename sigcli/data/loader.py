"""The dataset-loader contract: what a plugin in group ``sigcli.datasets`` provides.

A loader knows one raw dataset's on-disk layout. It lists users (sorted by number) and the
files of each user's genuine, skilled and simple signatures; reading and preprocessing are
done by sig itself, so a plugin is a few dozen lines. Register it in your package's
``pyproject.toml``::

    [project.entry-points."sigcli.datasets"]
    mydata = "mypackage.loader:MyLoader"
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from sigcli.errors import DatasetLayoutError, InputError

ENTRY_POINT_GROUP = "sigcli.datasets"

#: File suffixes (lower case) taken for signature images; anything else in a folder is ignored.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


class DatasetLoader(ABC):
    """One raw dataset layout. Subclasses set the class attributes and the three listings."""

    #: Short name, the entry point's name (``sig preprocess --dataset NAME``).
    name: ClassVar[str]
    #: Canvas (height, width) the signatures are centred in (PROTOCOLS §2).
    canvas_size: ClassVar[tuple[int, int]]
    #: Expected numbers per user, used for checks and summaries.
    genuine_per_user: ClassVar[int]
    skilled_per_user: ClassVar[int]
    simple_per_user: ClassVar[int] = 0

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DatasetLayoutError(f"{self.name}: {self.path} is not a folder",
                                     f"point --path at the root of the {self.name} dataset")

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
    @abstractmethod
    def describe(cls) -> str:
        """How to obtain the data and what the folder must look like."""

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
    """Read an image as uint8 grey exactly as the reference loaders do (PROTOCOLS §2).

    scikit-image's ``as_gray`` (luminance 0.2125/0.7154/0.0721 for colour) then
    ``img_as_ubyte``; PIL's own grey conversion would give other bytes.
    """
    from skimage import img_as_ubyte
    from skimage.io import imread

    return img_as_ubyte(imread(os.fspath(path), as_gray=True))


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

"""Brazilian PUC-PR signatures: ``aUUU_KK.jpg``, KK 01-40 genuine, 41-50 simple, 51-60 skilled."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

from sigcli.data.loader import DatasetLoader, list_images
from sigcli.errors import DatasetLayoutError

_NAME = re.compile(r"a(\d+)_(\d+)\.\w+", re.IGNORECASE)
GENUINE = range(1, 41)
SIMPLE = range(41, 51)
SKILLED = range(51, 61)
#: Only the first 60 writers were forged; files 41-60 of later writers are not read.
LAST_FORGED_USER = 60


class BrazilianLoader(DatasetLoader):
    name = "brazilian"
    canvas_size = (700, 1000)
    genuine_per_user = 40
    skilled_per_user = 10
    simple_per_user = 10
    #: Writers above this number are left out (None: keep all).
    last_user: ClassVar[int | None] = None
    # Scanned at 300 dpi, stored as JPEG; ballpoint and felt-tip pens.
    synth_format = "JPEG"
    synth_width_mm = 60.0
    synth_pens = ("ballpoint", "felt-tip")
    synth_flourish = 0.4
    _numbers: ClassVar[dict[str, range]] = {"genuine": GENUINE, "simple": SIMPLE, "skilled": SKILLED}

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._files = _index(self.path, self.name)
        self._users = [user for user, files in self._files.items()
                       if any(k in files for k in GENUINE) and (self.last_user is None or user <= self.last_user)]
        if not self._users:
            raise self.layout_error("files named aUUU_KK.jpg (in the folder or one level below)")

    def users(self) -> list[int]:
        return self._users

    def genuine_files(self, user: int) -> list[Path]:
        return self._select(user, GENUINE)

    def skilled_files(self, user: int) -> list[Path]:
        return self._select(user, SKILLED) if user <= LAST_FORGED_USER else []

    def simple_files(self, user: int) -> list[Path]:
        return self._select(user, SIMPLE) if user <= LAST_FORGED_USER else []

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        numbers = cls._numbers.get(kind)
        if (numbers is None or index >= len(numbers) or (cls.last_user is not None and user > cls.last_user)
                or (kind != "genuine" and user > LAST_FORGED_USER)):
            return None
        return f"a{user:03d}_{numbers[index]:02d}.jpg"

    def _select(self, user: int, numbers: range) -> list[Path]:
        if user not in self._users:
            raise self.no_user(user)
        files = self._files[user]
        return [files[k] for k in sorted(files) if k in numbers]

    @classmethod
    def describe(cls) -> str:
        return f"""\
Brazilian PUC-PR signature database: 168 writers; 40 genuine each; writers 1-60 also have
10 simple and 10 skilled forgeries.

Obtain: collected at the Pontificia Universidade Catolica do Parana (PUC-PR, Curitiba) by
Freitas et al.; it is not published for download and is obtained by request to its
authors for research use. sig cannot download it.

Layout (--path points at the folder holding the images; images in per-writer sub-folders
one level down are found too):
  a001_01.jpg ... a001_40.jpg     genuine (KK 01-40)
  a001_41.jpg ... a001_50.jpg     simple forgeries (KK 41-50, writers 1-60)
  a001_51.jpg ... a001_60.jpg     skilled forgeries (KK 51-60, writers 1-60)
  ... a168_40.jpg
UUU and KK are read as numbers; other files are ignored. Canvas
{cls.canvas_size[0]}x{cls.canvas_size[1]}. The variant 'brazilian-nosimple' keeps writers
1-60 and leaves out the simple forgeries.
"""


class BrazilianNoSimpleLoader(BrazilianLoader):
    name = "brazilian-nosimple"
    simple_per_user = 0
    last_user = LAST_FORGED_USER
    _numbers = {"genuine": GENUINE, "skilled": SKILLED}

    def simple_files(self, user: int) -> list[Path]:
        return []


def _index(root: Path, name: str) -> dict[int, dict[int, Path]]:
    """user → {KK: file} over ``root`` and its visible sub-folders, users ascending."""
    folders = [root, *sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))]
    index: dict[int, dict[int, Path]] = {}
    for folder in folders:
        for file in list_images(folder):
            match = _NAME.fullmatch(file.name)
            if not match:
                continue
            user, number = int(match.group(1)), int(match.group(2))
            other = index.setdefault(user, {}).setdefault(number, file)
            if other != file:
                raise DatasetLayoutError(f"{name}: {other} and {file} are both writer {user} image {number}",
                                         "keep one of them")
    return dict(sorted(index.items()))

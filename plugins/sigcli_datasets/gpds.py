"""GPDS-960 grey and GPDS Synthetic: one folder per user, ``c-`` genuine and ``cf-`` forgeries."""

from __future__ import annotations

import os
from pathlib import Path

from sigcli.data.loader import DatasetLoader, list_images, numbered_folders


class GPDSLoader(DatasetLoader):
    name = "gpds"
    canvas_size = (952, 1360)
    genuine_per_user = 24
    skilled_per_user = 30
    # Scanned at 300 dpi; Spanish writers, most adding a flourish (rubric).
    synth_width_mm = 80.0
    synth_flourish = 0.7
    _suffix = "png"

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._folders = numbered_folders(self.path)
        if not self._folders:
            raise self.layout_error("user folders named NNN")

    def users(self) -> list[int]:
        return list(self._folders)

    def genuine_files(self, user: int) -> list[Path]:
        return [f for f in list_images(self._folder(user)) if f.name.lower().startswith("c-")]

    def skilled_files(self, user: int) -> list[Path]:
        return [f for f in list_images(self._folder(user)) if f.name.lower().startswith("cf")]

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        prefix = {"genuine": "c", "skilled": "cf"}.get(kind)
        return None if prefix is None else f"{user:03d}/{prefix}-{user:03d}-{index + 1:02d}.{cls._suffix}"

    def _folder(self, user: int) -> Path:
        try:
            return self._folders[user]
        except KeyError:
            raise self.no_user(user) from None

    @classmethod
    def describe(cls) -> str:
        return f"""\
GPDS-960 grey-level signatures (GPDS-300 is its first 300 users).

Obtain: collected and distributed by the GPDS group, Universidad de Las Palmas de Gran
Canaria (https://gpds.ulpgc.es). Access is by licence agreement for non-commercial
research, requested from the authors; the group has stopped distributing GPDS-960 itself,
so check what they currently offer. sig cannot download it.

Layout (--path points at the folder holding the user folders):
  001/c-001-01.png ... c-001-24.png     24 genuine signatures
  001/cf-001-01.png ... cf-001-30.png   30 skilled forgeries
  002/ ...
User folders are digits (any width); users are taken in numeric order. Files starting with
'c-' are genuine, 'cf' skilled forgeries, any image type (png, jpg, bmp, tif); other files
and folders are ignored. Canvas {cls.canvas_size[0]}x{cls.canvas_size[1]}.
"""


class GPDSSyntheticLoader(GPDSLoader):
    name = "gpds-synthetic"
    canvas_size = (2078, 3307)
    # Images of 600 dpi, stored as JPEG.
    synth_format = "JPEG"
    synth_dpi = 600
    synth_width_mm = 95.0
    _suffix = "jpg"

    @classmethod
    def describe(cls) -> str:
        return f"""\
GPDS Synthetic Signature Corpus: 10,000 synthetic writers, 24 genuine and 30 forgeries each.

Obtain: distributed by the GPDS group, Universidad de Las Palmas de Gran Canaria
(https://gpds.ulpgc.es) after signing their licence agreement (non-commercial research).
sig cannot download it. For a quick stand-in with the same layout, run
'sig synth --layout gpds-synthetic --users 50 --save-path DIR'.

Layout (--path points at the folder holding the user folders):
  001/c-001-01.jpg ... c-001-24.jpg     24 genuine signatures
  001/cf-001-01.jpg ... cf-001-30.jpg   30 forgeries
  ...
  10000/c-10000-01.jpg ...
Folder names may have different widths (001 ... 10000); users are taken in numeric order,
so 1000 comes after 200. Other files and folders are ignored. Canvas
{cls.canvas_size[0]}x{cls.canvas_size[1]}.
"""

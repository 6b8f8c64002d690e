"""MCYT-75 offline signatures: folders ``NNNN/``, genuine ``NNNNv..``, forgeries ``..NNNNf..``."""

from __future__ import annotations

import os
from pathlib import Path

from sigcli.data.loader import DatasetLoader, list_images, numbered_folders


class MCYTLoader(DatasetLoader):
    name = "mcyt"
    canvas_size = (600, 850)
    genuine_per_user = 15
    skilled_per_user = 15
    # Signed with one inking pen in a 37.5 × 17.5 mm box, scanned at 600 dpi, stored as BMP.
    synth_format = "BMP"
    synth_dpi = 600
    synth_width_mm = 28.0
    synth_pens = ("felt-tip",)
    synth_flourish = 0.7
    synth_first_user = 0

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._folders = numbered_folders(self.path)
        if not self._folders:
            raise self.layout_error("user folders named NNNN")

    def users(self) -> list[int]:
        return list(self._folders)

    def genuine_files(self, user: int) -> list[Path]:
        prefix = f"{user:04d}v"
        return [f for f in self._images(user) if f.name.lower().startswith(prefix)]

    def skilled_files(self, user: int) -> list[Path]:
        mark = f"{user:04d}f"
        return [f for f in self._images(user) if mark in f.name.lower()]

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        mark = {"genuine": "v", "skilled": "f"}.get(kind)
        return None if mark is None else f"{user:04d}/{user:04d}{mark}{index:02d}.bmp"

    def _images(self, user: int) -> list[Path]:
        try:
            return list_images(self._folders[user])
        except KeyError:
            raise self.no_user(user) from None

    @classmethod
    def describe(cls) -> str:
        return f"""\
MCYT-75 offline signature corpus: 75 users, 15 genuine and 15 skilled forgeries each.

Obtain: distributed by the Biometrics and Data Pattern Analytics Lab (BiDA Lab),
Universidad Autonoma de Madrid, under a licence agreement for research use, requested
from the lab (https://bida.uam.es). sig cannot download it.

Layout (--path points at the folder holding the user folders, e.g. MCYToffline75original):
  0000/0000v00.bmp ... 0000v14.bmp      genuine: names start with NNNNv
  0000/0000f00.bmp ... 0000f14.bmp      skilled forgeries: names contain NNNNf
  0001/ ...
Matching is case-insensitive; users are taken in numeric order; other files and folders
are ignored. Canvas {cls.canvas_size[0]}x{cls.canvas_size[1]}.
"""

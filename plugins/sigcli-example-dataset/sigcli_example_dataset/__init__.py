"""The 'toy' dataset layout: an example of a third-party dataset plugin for sig.

A loader lists users and their files; sig reads, preprocesses and stores the images.
Naming the file of each (user, kind, index) in ``synth_path`` also lets ``sig synth
--layout toy`` write synthetic signatures in this layout. Layout::

    writer1/genuine/*.png     genuine signatures of writer 1
    writer1/forged/*.png      skilled forgeries of writer 1
    writer2/...
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sigcli.data.loader import DatasetLoader, list_images

_WRITER = re.compile(r"writer(\d+)")


class ToyLoader(DatasetLoader):
    name = "toy"
    canvas_size = (600, 900)
    genuine_per_user = 5
    skilled_per_user = 3
    # How `sig synth` makes images like ours: pencil, scanned at 300 dpi, about 45 mm wide.
    synth_pens = ("pencil",)
    synth_width_mm = 45.0

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._writers = {int(m.group(1)): entry for entry in self.path.iterdir()
                         if entry.is_dir() and (m := _WRITER.fullmatch(entry.name))}
        if not self._writers:
            raise self.layout_error("folders named writerN")

    def users(self) -> list[int]:
        return sorted(self._writers)

    def genuine_files(self, user: int) -> list[Path]:
        return self._images(user, "genuine")

    def skilled_files(self, user: int) -> list[Path]:
        return self._images(user, "forged")

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        folder = {"genuine": "genuine", "skilled": "forged"}.get(kind)
        return None if folder is None else f"writer{user}/{folder}/{index + 1}.png"

    def _images(self, user: int, kind: str) -> list[Path]:
        if user not in self._writers:
            raise self.no_user(user)
        folder = self._writers[user] / kind
        return list_images(folder) if folder.is_dir() else []

    @classmethod
    def describe(cls) -> str:
        return """\
Toy signatures: an example layout for plugin authors, made with write_example().

Layout: writerN/genuine/*.png (genuine) and writerN/forged/*.png (skilled forgeries).
"""


def write_example(path: str | os.PathLike, users: int = 3, seed: int = 0) -> Path:
    """Write a small toy dataset with sig's synthetic signature generator (as ``sig synth --layout toy``)."""
    from sigcli.data.synth import synthesize

    return synthesize(ToyLoader, path, users=users, seed=seed).out

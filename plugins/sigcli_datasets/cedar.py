"""CEDAR signatures: ``full_org/original_U_K.png`` genuine, ``full_forg/forgeries_U_K.png`` forged."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from sigcli.data.loader import DatasetLoader, list_images

log = logging.getLogger("sigcli.datasets")  # shown by the CLI like sig's own warnings

_NAME = re.compile(r"(original|forgeries)_(\d+)_(\d+)\.\w+", re.IGNORECASE)


class CedarLoader(DatasetLoader):
    name = "cedar"
    canvas_size = (730, 1042)
    genuine_per_user = 24
    skilled_per_user = 24
    # Scanned at 300 dpi; American writers, few flourishes.
    synth_width_mm = 60.0
    synth_flourish = 0.25

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        genuine, forged = self.path / "full_org", self.path / "full_forg"
        if not genuine.is_dir():
            raise self.layout_error("folder full_org/ (and full_forg/)")
        self._genuine = _index(genuine, "original")
        if not self._genuine:
            raise self.layout_error("files named original_U_K.png", genuine)
        if forged.is_dir():
            self._skilled = _index(forged, "forgeries")
        else:
            log.warning("%s: no full_forg/ under %s, so no skilled forgeries", self.name, self.path)
            self._skilled = {}

    def users(self) -> list[int]:
        return list(self._genuine)

    def genuine_files(self, user: int) -> list[Path]:
        if user not in self._genuine:
            raise self.no_user(user)
        return self._genuine[user]

    def skilled_files(self, user: int) -> list[Path]:
        return self._skilled.get(user, [])

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        folder, stem = {"genuine": ("full_org", "original"), "skilled": ("full_forg", "forgeries")}.get(kind, (None, None))
        return None if folder is None else f"{folder}/{stem}_{user}_{index + 1}.png"

    @classmethod
    def describe(cls) -> str:
        return f"""\
CEDAR signature database: 55 users, 24 genuine and 24 skilled forgeries each.

Obtain: collected by the Center of Excellence for Document Analysis and Recognition
(CEDAR), University at Buffalo, and offered for research use on the CEDAR web site
(signatures.rar); check the terms there. sig cannot download it.

Layout (--path points at the folder holding full_org and full_forg):
  full_org/original_1_1.png ... original_55_24.png     genuine: original_U_K
  full_forg/forgeries_1_1.png ... forgeries_55_24.png  skilled forgeries: forgeries_U_K
Users and K are read as numbers (original_1_10 after original_1_9); other files are
ignored. Canvas {cls.canvas_size[0]}x{cls.canvas_size[1]}.
"""


def _index(folder: Path, kind: str) -> dict[int, list[Path]]:
    """user → files named ``<kind>_U_K``, users ascending, files by K."""
    numbered: dict[int, list[tuple[int, Path]]] = {}
    for file in list_images(folder):
        match = _NAME.fullmatch(file.name)
        if match and match.group(1).lower() == kind:
            numbered.setdefault(int(match.group(2)), []).append((int(match.group(3)), file))
    return {user: [file for _, file in sorted(files)] for user, files in sorted(numbered.items())}

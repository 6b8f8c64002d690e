"""BHSig260 Bengali and Hindi: ``<w>/B-S-<w>-G-<nn>.tif`` genuine, ``<w>/B-S-<w>-F-<nn>.tif`` forged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

from sigcli.data.loader import (CANVAS_PERCENTILE, CANVAS_STEP, CanvasFromData, DatasetLoader, list_images,
                                log, numbered_folders, warn_unexpected_counts)
from sigcli.errors import DatasetLayoutError

#: Letter of each kind in the file names.
KIND_LETTERS = {"genuine": "G", "skilled": "F"}
#: What a file name says: script letter (B or H), writer, kind letter, number. Separators
#: and case vary in circulating copies; the suffix is any image type (read by content).
_NAME = re.compile(r"(?P<script>[BH])[-_]S[-_](?P<writer>\d+)[-_](?P<kind>[GF])[-_](?P<number>\d+)\.\w+",
                   re.IGNORECASE)


def file_name(script: str, writer: int, kind: str, number: int) -> str:
    """A file's name in the distributed set, e.g. ``B-S-12-F-03.tif`` (``number`` from 1);
    :data:`_NAME` reads it back."""
    return f"{script}-S-{writer}-{KIND_LETTERS[kind]}-{number:02d}.tif"


class BHSigLoader(DatasetLoader):
    """One script of BHSig260; subclasses name the script and its folder."""

    #: Folder of this script under the BHSig260 root, and the script letter of its file names.
    folder: ClassVar[str]
    script: ClassVar[str]
    #: Writers of the full set, to warn about an incomplete copy.
    writers: ClassVar[int]
    canvas_size = CanvasFromData()
    genuine_per_user = 24
    skilled_per_user = 30
    report_duplicates = True
    # Grey TIFF scans at 300 dpi of ballpoint signatures, written in a small box.
    synth_format = "TIFF"
    synth_width_mm = 40.0
    synth_flourish = 0.3

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self.script_folder = self._script_folder()
        self._files = self._index()
        counts = {str(writer): (len(files["genuine"]), len(files["skilled"]), 0)
                  for writer, files in self._files.items()}
        warn_unexpected_counts(self.name, counts, (self.genuine_per_user, self.skilled_per_user, 0))
        if len(self._files) != self.writers:
            log.warning("%s: %d writers under %s; the full set has %d", self.name, len(self._files),
                        self.script_folder, self.writers)

    @classmethod
    def relative_path(cls, writer: int, kind: str, number: int) -> str:
        """Where image ``number`` (from 1) of ``kind`` by ``writer`` lies in the script folder."""
        return f"{writer}/{file_name(cls.script, writer, kind, number)}"

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        """``<script folder>/<w>/<name>``: the loader reads it from the BHSig260 root."""
        return None if kind not in KIND_LETTERS else f"{cls.folder}/{cls.relative_path(user, kind, index + 1)}"

    def users(self) -> list[int]:
        return list(self._files)

    def genuine_files(self, user: int) -> list[Path]:
        return self._writer(user)["genuine"]

    def skilled_files(self, user: int) -> list[Path]:
        return self._writer(user)["skilled"]

    def _writer(self, user: int) -> dict[str, list[Path]]:
        try:
            return self._files[user]
        except KeyError:
            raise self.no_user(user) from None

    def _script_folder(self) -> Path:
        """The path itself when it holds writer folders, else its one sub-folder named for the script."""
        if numbered_folders(self.path):
            return self.path
        named = [entry for entry in sorted(self.path.iterdir())
                 if entry.is_dir() and self.folder.lower() in entry.name.lower()]
        if len(named) > 1:
            raise DatasetLayoutError(f"{self.name}: {', '.join(e.name for e in named)} under {self.path} "
                                     f"all look like the {self.folder} folder", "point --path at one of them")
        if not named or not numbered_folders(named[0]):
            raise self.layout_error(f"writer folders (1/, 2/, ...) nor a {self.folder}/ folder holding them")
        return named[0]

    def _index(self) -> dict[int, dict[str, list[Path]]]:
        """writer → kind → files, by the number in the name; files named for another script are an error."""
        index: dict[int, dict[str, list[Path]]] = {}
        other_script, misplaced = [], []
        for writer, folder in numbered_folders(self.script_folder).items():
            numbered: dict[str, list[tuple[int, Path]]] = {"genuine": [], "skilled": []}
            for file in list_images(folder):
                match = _NAME.fullmatch(file.name)
                if not match:
                    continue
                if match["script"].upper() != self.script:
                    other_script.append(file)
                    continue
                if int(match["writer"]) != writer:
                    misplaced.append(file)
                kind = "genuine" if match["kind"].upper() == "G" else "skilled"
                numbered[kind].append((int(match["number"]), file))
            if any(numbered.values()):
                index[writer] = {kind: [file for _, file in sorted(files)] for kind, files in numbered.items()}
        if not index:
            if other_script:
                raise DatasetLayoutError(f"{self.name}: {self.script_folder} holds files of the other script "
                                         f"(e.g. {other_script[0].name})",
                                         "use the other bhsig loader, or point --path at this script's folder")
            raise self.layout_error(f"files named {self.relative_path(1, 'genuine', 1)} and the like",
                                    self.script_folder)
        if misplaced:
            log.warning("%s: %d file(s) lie in another writer's folder than their name says, e.g. %s; "
                        "the folder is taken as the writer", self.name, len(misplaced),
                        misplaced[0].relative_to(self.script_folder))
        return index

    @classmethod
    def describe(cls) -> str:
        def name(kind: str, number: int) -> str:
            return file_name(cls.script, 1, kind, number)

        return f"""\
BHSig260 {cls.folder} signatures: {cls.writers} writers, {cls.genuine_per_user} genuine and \
{cls.skilled_per_user} skilled forgeries each.
Grey TIFF scans; the loaders bhsig-bengali and bhsig-hindi read the set's two halves.

Obtain: collected by Pal et al. (2016) and shared for research use, e.g. through the SigNet
paper (Dey et al., 2017); copies also circulate on Kaggle and other mirrors. No licence is
stated: check the terms of the copy you download. sig cannot download it.

Layout (--path points at the BHSig260 folder holding {cls.folder}/, or at {cls.folder}/
itself; a folder whose name contains '{cls.folder}', e.g. BHSig260-{cls.folder}/, is taken too):
  {cls.folder}/1/{name('genuine', 1)} ... {name('genuine', cls.genuine_per_user)}    genuine: {cls.script}-S-<w>-G-<nn>
  {cls.folder}/1/{name('skilled', 1)} ... {name('skilled', cls.skilled_per_user)}    skilled forgeries: {cls.script}-S-<w>-F-<nn>
  {cls.folder}/2/ ...
Writers are the numbered folders, in numeric order; <nn> orders a writer's files. Case and
'-' or '_' separators may vary; .tif, .png, .jpg and .bmp names are taken, each file read
by its content. Other files (Thumbs.db, .DS_Store) are ignored. Writers without
{cls.genuine_per_user} genuine and {cls.skilled_per_user} forged files are reported, and so are files byte-identical to
another of their writer: 'sig preprocess --dedupe' leaves such copies out (kept by default).

Canvas: measured from the data: the {CANVAS_PERCENTILE:g}th percentile height and width of all
images, read from their headers (the largest few would shrink every other signature),
widened to the aspect of the preprocessed images, its height rounded up to {CANVAS_STEP}
pixels. 'sig preprocess' logs it.
"""


class BHSigBengaliLoader(BHSigLoader):
    name = "bhsig-bengali"
    folder = "Bengali"
    script = "B"
    writers = 100


class BHSigHindiLoader(BHSigLoader):
    name = "bhsig-hindi"
    folder = "Hindi"
    script = "H"
    writers = 160

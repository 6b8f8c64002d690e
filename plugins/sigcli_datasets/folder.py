"""Any folder of signatures: ``ROOT/<writer>/...``, forgeries told apart by a name pattern."""

from __future__ import annotations

import os
import re
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path

from sigcli.data.loader import (CANVAS_PERCENTILE, CanvasFromData, DatasetLoader, log, natural_key,
                                pil_image_suffixes, warn_unexpected_counts)
from sigcli.errors import InputError

DEFAULT_FORGED = "*forg*"
DEFAULT_GENUINE = "*"
_CANVAS = re.compile(r"\s*(\d+)\s*[x×,]\s*(\d+)\s*", re.IGNORECASE)


def default_path(writer: str, kind: str, number: int, suffix: str = "png") -> str:
    """Where image ``number`` (from 1) of ``kind`` by ``writer`` goes in the default layout:
    ``<writer>/genuine/NN.png`` or ``<writer>/forged/NN.png``."""
    return f"{writer}/{'genuine' if kind == 'genuine' else 'forged'}/{number:02d}.{suffix}"


class FolderLoader(DatasetLoader):
    name = "folder"
    canvas_size = CanvasFromData()
    genuine_per_user = None  # the most common count over the writers, once read
    skilled_per_user = None
    loader_options = {
        "forged": f"pattern of forgeries' paths within a writer's folder (default {DEFAULT_FORGED!r})",
        "genuine": f"pattern of genuine signatures' paths, among the rest (default {DEFAULT_GENUINE!r})",
        "canvas": "canvas as HEIGHTxWIDTH, e.g. 952x1360 (default: measured from the images)",
    }
    report_duplicates = True
    synth_pens = ("ballpoint", "felt-tip", "pencil")  # a practitioner's own scans: any pen

    @classmethod
    def synth_path(cls, user: int, kind: str, index: int) -> str | None:
        """The default layout, writer folders named by their number."""
        return None if kind not in ("genuine", "skilled") else default_path(str(user), kind, index + 1)

    def __init__(self, path: str | os.PathLike, forged: str = DEFAULT_FORGED, genuine: str = DEFAULT_GENUINE,
                 canvas: str | tuple[int, int] | None = None):
        super().__init__(path)
        self.forged_pattern, self.genuine_pattern = forged.lower(), genuine.lower()
        if canvas is not None:
            self.canvas_size = parse_canvas(canvas)
        folders = self._index()
        ids = writer_ids([folder.name for folder in folders])
        self._folders = dict(zip(ids, folders))
        self._files = dict(zip(ids, folders.values()))
        counts = {folder.name: (len(files[0]), len(files[1]), 0) for folder, files in folders.items()}
        self.genuine_per_user, self.skilled_per_user, _ = Counter(counts.values()).most_common(1)[0][0]
        warn_unexpected_counts(self.name, counts, (self.genuine_per_user, self.skilled_per_user, 0))

    def users(self) -> list[int]:
        return list(self._files)

    def genuine_files(self, user: int) -> list[Path]:
        return self._writer(user)[0]

    def skilled_files(self, user: int) -> list[Path]:
        return self._writer(user)[1]

    def writer_label(self, user: int) -> str:
        """The folder name of writer ``user``."""
        self._writer(user)
        return self._folders[user].name

    def record_name(self, path: Path) -> str:
        """``<writer folder>/<path within it>``: writer ids are numbers, the names stay here."""
        return path.relative_to(self.path).as_posix()

    def _writer(self, user: int) -> tuple[list[Path], list[Path]]:
        try:
            return self._files[user]
        except KeyError:
            raise self.no_user(user) from None

    def _index(self) -> dict[Path, tuple[list[Path], list[Path]]]:
        """Writer folder → (genuine, forged) files, folders and files in natural order."""
        suffixes = pil_image_suffixes()
        files: dict[Path, tuple[list[Path], list[Path]]] = {}
        empty = []
        for folder in sorted((entry for entry in self.path.iterdir()
                              if entry.is_dir() and not entry.name.startswith(".")),
                             key=lambda entry: natural_key(entry.name)):
            images = sorted((file for file in folder.rglob("*") if file.suffix.lower() in suffixes
                             and not any(part.startswith(".") for part in file.relative_to(folder).parts)
                             and file.is_file()),
                            key=lambda file: natural_key(file.relative_to(folder).as_posix()))
            genuine, forged = [], []
            for file in images:
                within = file.relative_to(folder).as_posix().lower()
                if fnmatchcase(within, self.forged_pattern):
                    forged.append(file)
                elif fnmatchcase(within, self.genuine_pattern):
                    genuine.append(file)
            if genuine or forged:
                files[folder] = (genuine, forged)
            else:
                empty.append(folder.name)
        if not files:
            raise self.layout_error("writer folders holding images (see 'sig datasets folder')")
        if empty:
            log.warning("%s: %d folder(s) under %s hold no signature images and are left out: %s", self.name,
                        len(empty), self.path, ", ".join(empty[:10]) + (", ..." if len(empty) > 10 else ""))
        return files

    @classmethod
    def describe(cls) -> str:
        return f"""\
Any folder of signatures: one folder per writer, e.g. your own scans. Use it with 'sig
preprocess --dataset folder --path ROOT', then 'sig wd', 'sig verify' and the rest.

Layout (--path points at ROOT; the defaults tell genuine and forged apart either way):
  ROOT/alice/genuine/01.png ...       genuine signatures
  ROOT/alice/forged/01.png ...        skilled forgeries
  ROOT/bob/01.jpg  bob_forgery_1.tif  or by name: paths containing 'forg' are forgeries
  ROOT/carol/ ...
Each folder under ROOT is a writer; every image below it (any sub-folder, any format PIL
reads, by its content) is one of its signatures. Inside a writer's folder, a path matching
the option 'forged' ({DEFAULT_FORGED!r}) is a skilled forgery, else one matching 'genuine' \
({DEFAULT_GENUINE!r})
is genuine, else it is ignored. Patterns are shell-style and case-insensitive, matched
against the path inside the writer's folder ('*' crosses '/'): forged='forgeries/*'
genuine='references/*' reads <w>/references/ and <w>/forgeries/ only. Hidden files and
folders (.DS_Store, ._x), non-image files (Thumbs.db) and folders without images
(__MACOSX) are ignored.

Writers: when every folder name is a number, that number is the writer id; otherwise
writers are numbered 0..N-1 in natural order of their names (w2 before w10). A signature
set keeps the ids in user_mapping and each image as '<writer folder>/<path>' in filenames.
The most common genuine/forged counts are taken as expected and writers that differ are
reported, as are byte-identical copies within a writer ('sig preprocess --dedupe' leaves
them out; kept by default).

Canvas: measured from the data unless given (the {CANVAS_PERCENTILE:g}th percentile height and \
width
of all images, widened to the aspect of the preprocessed images); 'sig preprocess' logs it.

Options ('sig preprocess --loader-option KEY=VALUE', repeatable):
""" + "".join(f"  {key}: {help}\n" for key, help in cls.loader_options.items())


def writer_ids(names: list[str]) -> list[int]:
    """The numbers themselves when every name is one (and no two are equal), else 0..N-1."""
    if all(name.isascii() and name.isdigit() for name in names) and len({int(n) for n in names}) == len(names):
        return [int(name) for name in names]
    return list(range(len(names)))


def parse_canvas(value: str | tuple[int, int]) -> tuple[int, int]:
    """``952x1360`` (or a (height, width) pair) as a canvas; InputError if not two positive sizes."""
    if isinstance(value, str):
        match = _CANVAS.fullmatch(value)
        sides = (int(match[1]), int(match[2])) if match else ()
    else:
        sides = tuple(int(side) for side in value)
    if len(sides) != 2 or min(sides) <= 0:
        raise InputError(f"folder: canvas {value!r} is not HEIGHTxWIDTH", "give e.g. canvas=952x1360")
    return sides

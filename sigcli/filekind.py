"""What a file is, told from its first bytes and, for a zip, its member names.

Errors about a file given in the wrong place (a feature file as a checkpoint, a pickle as a
WI classifier) then say what it is and what was expected, instead of the reader's own
message ("File is not a zip file", "enforce fail at inline_container.cc").
"""

from __future__ import annotations

import zipfile
from pathlib import Path

PYTORCH = "a PyTorch file"
SKOPS = "a skops file"
DAMAGED_ZIP = "a damaged or truncated zip archive"


def file_kind(path: str | Path) -> str:
    """A few words naming the kind of file at ``path``, e.g. ``"a NumPy .npz archive"``."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        return "an empty file"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return DAMAGED_ZIP
        if "schema.json" in names:
            return SKOPS
        if any(name.endswith("/data.pkl") for name in names):
            return PYTORCH
        if names and all(name.endswith(".npy") for name in names):
            return "a NumPy .npz archive"
        return "a zip archive of another kind"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy .npy array"
    if head[:1] == b"\x80":
        return "a Python pickle"
    if head.lstrip()[:1] == b"<":
        return "a web page (HTML)"
    return "a file of unknown format"

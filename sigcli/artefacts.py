"""The published artefacts, their cache, and how a file is recognised as one (docs/formats.md#download-cache-and-manifest).

A file is the artefact when its size and sha256 match what is known (the registry, else
the first verified download recorded in ``manifest.json``), a checkpoint loads with
``weights_only=True`` and a ``.npz`` holds ``x``, ``y``, ``yforg`` with sound CRCs. The
manifest also records the file's identity (inode, times): a file that is no longer that
very file is hashed again before it is used, so a swapped file is caught even at the same size.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple

import platformdirs

from sigcli.data.sigset import REQUIRED_KEYS
from sigcli.errors import DownloadError, InputError, first_line
from sigcli.fileio import atomic_path, clean_stale_temps, sha256_of

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artefact:
    """One published file. ``drive_ids`` lists the current link first, then older ones."""

    name: str
    description: str
    drive_ids: tuple[str, ...]
    filename: str
    kind: Literal["checkpoint", "npz"]
    size: int | None = None      # bytes, once known
    sha256: str | None = None    # once known

    @property
    def link(self) -> str:
        """The page a person opens in a browser to download the file by hand."""
        return f"https://drive.google.com/file/d/{self.drive_ids[0]}/view"


# Sizes and checksums are unknown until a first verified download records them in the
# cache's manifest; copy them here once they are confirmed.
REGISTRY: dict[str, Artefact] = {a.name: a for a in (
    Artefact("signet-distill", "SigNet teacher used for distillation (Viana et al.)",
             ("14FNyw5ay1PLqB_jRkKvhkylj51LDZ08B", "12Wg469rWpZ0jeZUxK8ZQDN8qv68OwYNx"),
             "signet-distill.pth", "checkpoint"),
    Artefact("inverted-data", "inverted distillation data data.npz (deep inversion with competition)",
             ("1El-9S-RKGMBmYy4G26dtvKEgAYoX2xpI", "1lFJBysBDiOog5Sk7rFHlpusrV9PD3jkA"),
             "inverted-data.npz", "npz"),
    Artefact("signet", "SigNet (Hafemann et al.)",
             ("1l8NFdxSvQSLb2QTv71E6bKcTgvShKPpx",), "signet.pth", "checkpoint"),
    Artefact("signet-f", "SigNet-F, λ = 0.95 (Hafemann et al.)",
             ("1ifaUiPtP1muMjt8Tkrv7yJj7we8ttncW",), "signet-f.pth", "checkpoint"),
)}


def cache_dir() -> Path:
    """Where artefacts are kept: ``$SIGCLI_HOME``, else the platform's user cache folder."""
    home = os.environ.get("SIGCLI_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_cache_dir("sigcli"))


def get_artefact(name: str) -> Artefact:
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown artefact '{name}'", f"known: {', '.join(REGISTRY)}") from None


def artefact_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The artefact's file in ``folder``, or in the cache (where ``distill`` and ``wd`` look)."""
    return (Path(folder).expanduser() if folder is not None else cache_dir()) / get_artefact(name).filename


def is_cached(name: str) -> bool:
    return artefact_path(name).is_file()


def list_artefacts() -> list[dict[str, Any]]:
    """Every registered artefact: name, description, kind, cached, size, sha256, path, link."""
    manifest = read_manifest()
    rows = []
    for artefact in REGISTRY.values():
        path, expected = artefact_path(artefact.name), expected_of(artefact, manifest)
        cached = path.is_file()
        rows.append({"name": artefact.name, "description": artefact.description, "kind": artefact.kind,
                     "cached": cached, "size": path.stat().st_size if cached else expected.size,
                     "sha256": expected.sha256, "path": str(path), "link": artefact.link})
    return rows


# ---------------------------------------------------------------------------- verification
class Expected(NamedTuple):
    size: int | None
    sha256: str | None
    origin: str  # where the figures come from, for messages


class NotTheArtefact(Exception):
    """The file is not the artefact; the message says what is wrong with it."""


def expected_of(artefact: Artefact, manifest: dict[str, Any]) -> Expected:
    if artefact.size is not None or artefact.sha256 is not None:
        return Expected(artefact.size, artefact.sha256, "the registry")
    entry = manifest.get(artefact.name, {})
    return Expected(entry.get("size"), entry.get("sha256"),
                    f"the download verified on {entry.get('verified', '?')}, recorded in {manifest_path()}")


def verify(artefact: Artefact, path: Path, expected: Expected) -> str:
    """Check ``path`` is the artefact; return its sha256 or raise :class:`NotTheArtefact`."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise NotTheArtefact(f"it has {size} bytes, {expected.origin} says {expected.size}")
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise NotTheArtefact("it is an HTML page, not the file")
    if artefact.kind == "checkpoint":
        _check_checkpoint(path)
    else:
        _check_npz(path)
    sha256 = sha256_of(path)
    if expected.sha256 is not None and sha256 != expected.sha256:
        raise NotTheArtefact(f"its sha256 is {sha256[:16]}…, {expected.origin} says {expected.sha256[:16]}…"
                             f" (if the publisher replaced the file, delete the '{artefact.name}' entry of "
                             f"{manifest_path()})")
    return sha256


def _check_checkpoint(path: Path) -> None:
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure means the file is not a safe checkpoint
        raise NotTheArtefact("it does not load as a PyTorch checkpoint with weights_only=True "
                             f"({first_line(exc)})") from None
    parts = content if isinstance(content, (tuple, list)) else [content]
    if not parts or not all(isinstance(p, Mapping) for p in parts):
        raise NotTheArtefact(f"it holds a {type(content).__name__}, not a state dict or a tuple of state dicts")


def _check_npz(path: Path) -> None:
    """Key names and every member's CRC, without reading arrays (so without unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            keys = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise NotTheArtefact(f"it is not a .npz archive ({first_line(exc)})") from None
    if broken is not None:
        raise NotTheArtefact(f"its member {broken} is corrupt (CRC mismatch)")
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise NotTheArtefact(f"it lacks the key(s) {', '.join(missing)} of a signature set "
                             f"(has {', '.join(sorted(keys)) or 'none'})")


def check_present(artefact: Artefact, final: Path, expected: Expected, manifest: dict[str, Any],
                  verify_cmd: str) -> Path:
    """A file already in place: trusted if it is the very file the manifest verified (same
    size, inode and modification and change times, which no rewrite keeps), else hashed now."""
    entry = manifest.get(artefact.name, {})
    if entry.get("path") == str(final) and entry.get("stat") == _identity(final) and (
            artefact.sha256 is None or entry.get("sha256") == artefact.sha256):
        return final
    try:
        sha256 = verify(artefact, final, expected)
    except NotTheArtefact as exc:
        raise DownloadError(f"{final} is not a usable '{artefact.name}': {exc}",
                            f"run '{verify_cmd} --overwrite' to download it again") from None
    record(manifest, artefact, final, sha256, "already present")
    return final


# ---------------------------------------------------------------------------- the manifest
def manifest_path() -> Path:
    return cache_dir() / MANIFEST


def read_manifest() -> dict[str, Any]:
    path = manifest_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return {}


def record(manifest: dict[str, Any], artefact: Artefact, path: Path, sha256: str, source: str) -> None:
    """Remember a verified file so later downloads are checked against it."""
    manifest[artefact.name] = {"file": artefact.filename, "size": path.stat().st_size, "sha256": sha256,
                               "source": source, "path": str(path), "stat": _identity(path),
                               "verified": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    clean_stale_temps(cache_dir(), MANIFEST)
    with atomic_path(manifest_path(), overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _identity(path: Path) -> list[int]:
    """What changes whenever a file's content does: size, device, inode, modification and
    change times (the change time cannot be set back, unlike the modification time)."""
    stat = path.stat()
    return [stat.st_size, stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]

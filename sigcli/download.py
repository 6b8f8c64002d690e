"""Published artefacts (docs/formats.md#download-cache-and-manifest): a registry, a cache, a careful Drive downloader.

The models and data of the reference papers are public Google Drive files. Drive puts large
files behind a virus-scan confirmation page, answers with an HTML page when a file's quota is
exceeded, drops connections, and links die. So a download here:

* follows the confirmation form (``confirm`` and ``uuid`` fields, or ``confirm=t``);
* recognises quota and error pages, says so in one line with the manual link, and tries the
  artefact's older links; an HTML page is never written to disk;
* streams into ``<file>.<source>.part`` beside the target and resumes it with ``Range``,
  accepting only a 206 reply that starts where the part ends (a 200 restarts from zero);
* verifies the complete part (size and sha256 when known; a checkpoint must load with
  ``weights_only=True``, a ``.npz`` must hold ``x``, ``y``, ``yforg`` and pass its CRCs) and
  only then renames it to its final name, recording size, sha256 and the file's identity
  (inode, times) in ``manifest.json``; a file that is no longer that very file is hashed
  again before it is used, so a swapped file is caught even at the same size.

Leftovers: a successful or failed-verification download leaves no ``.part``; an interrupted
transfer (connection lost after the retries, Ctrl-C) keeps its ``.part`` so that running the
same command again resumes it. Quota, dead-link and unreachable-server failures write nothing.

Artefacts live in :func:`cache_dir` (``$SIGCLI_HOME``, else the platform's user cache folder),
where :func:`artefact_path` is what ``distill`` and ``wd`` look for by default.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import platformdirs
import requests

from sigcli import __version__
from sigcli.data.sigset import REQUIRED_KEYS
from sigcli.errors import DownloadError, InputError, first_line
from sigcli.fileio import OutputExistsError, atomic_path, clean_stale_temps, make_folder, publish, sha256_of
from sigcli.progress import Reporter, resolve

log = logging.getLogger(__name__)

DRIVE_DOWNLOAD = "https://drive.usercontent.google.com/download"  # Drive's direct-download endpoint
MANIFEST = "manifest.json"
CHUNK_BYTES = 64 * 1024   # also the most a dropped connection can lose (urllib3 buffers a read)
RETRIES = 3            # failed attempts in a row (no new bytes) before a source is given up
BACKOFF_S = 0.5        # wait after the first failed attempt, doubled after each further one
TIMEOUT_S = (15, 60)   # connect, read (seconds without a byte)
MAX_HOPS = 5           # pages followed (confirmation, restarts) within one attempt
MAX_PAGE_BYTES = 1 << 20


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
        return drive_link(self.drive_ids[0])


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


# ---------------------------------------------------------------------------- public API
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


def drive_url(file_id: str) -> str:
    return f"{DRIVE_DOWNLOAD}?{urlencode({'id': file_id, 'export': 'download'})}"


def drive_link(file_id: str) -> str:
    """The page a person opens in a browser to download the file by hand."""
    return f"https://drive.google.com/file/d/{file_id}/view"


def list_artefacts() -> list[dict[str, Any]]:
    """Every registered artefact: name, description, kind, cached, size, sha256, path, link."""
    manifest = _read_manifest()
    rows = []
    for artefact in REGISTRY.values():
        path = artefact_path(artefact.name)
        expected = _expected(artefact, manifest)
        cached = path.is_file()
        rows.append({"name": artefact.name, "description": artefact.description, "kind": artefact.kind,
                     "cached": cached, "size": path.stat().st_size if cached else expected.size,
                     "sha256": expected.sha256, "path": str(path), "link": artefact.link})
    return rows


def download(name: str, folder: str | os.PathLike | None = None, url: str | None = None, overwrite: bool = False,
             reporter: Reporter | None = None, session: requests.Session | None = None,
             retries: int | None = None, backoff_s: float | None = None,
             timeout: float | tuple[float, float] = TIMEOUT_S) -> Path:
    """Fetch artefact ``name`` into ``folder`` (default the cache), verify it, return its path.

    A file already there is verified (then trusted while it is the very file verified: same
    size, inode and times in its manifest entry; else hashed again) and returned without
    network unless ``overwrite``, which replaces a file (never a folder). ``url`` replaces the Drive links (a mirror). ``retries``
    and ``backoff_s`` (default :data:`RETRIES`, :data:`BACKOFF_S`) bound the attempts after
    connection failures; an attempt that brought new bytes does not count.
    Raises :class:`DownloadError` with a one-line reason and how to place the file by hand.
    """
    artefact = get_artefact(name)
    final = artefact_path(name, folder)
    manifest = _read_manifest()
    expected = _expected(artefact, manifest)
    verify_cmd = f"sig download {name}" + (f" --save-path {folder}" if folder is not None else "")
    if (final.exists() or final.is_symlink()) and not final.is_file():
        raise DownloadError(f"{final} is in the way of the '{name}' download and is not a file; it is left alone",
                            "move it away, or give another --save-path")
    if final.exists() and not overwrite:
        return _check_present(artefact, final, expected, manifest, verify_cmd)

    sources = [url] if url else [drive_url(i) for i in artefact.drive_ids]
    manual = url or artefact.link
    hint = f"download {manual} in a browser, save it as {final}, then run '{verify_cmd}' to verify it"
    make_folder(final.parent, "--save-path" if folder is not None else "SIGCLI_HOME")
    if overwrite:
        _remove_parts(final)
    retries = RETRIES if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s

    refusals: list[_Refused] = []
    own_session = session is None
    session = session or _new_session()
    try:
        with ExitStack() as stack:
            progress = _Progress(resolve(reporter), name, stack)
            for source in sources:
                part = _part_path(final, source)
                try:
                    _fetch(session, source, part, expected.size, progress, retries, backoff_s, timeout)
                except _Refused as exc:
                    exc.source = source
                    refusals.append(exc)
                    log.warning("%s: %s", _describe_source(source), exc.reason)
                    continue
                except _Transient as exc:
                    raise _transient_error(name, source, part, exc, hint) from None
                try:
                    sha256 = _verify(artefact, part, expected)
                except _Invalid as exc:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"the download of '{name}' from {_describe_source(source)} failed "
                                        f"verification: {exc}; nothing was kept", hint) from None
                try:
                    publish(part, final, overwrite=overwrite)
                except OutputExistsError:  # another download of it finished meanwhile: check that one
                    part.unlink(missing_ok=True)
                    return _check_present(artefact, final, expected, manifest, verify_cmd)
                _remove_parts(final)
                _record(manifest, artefact, final, sha256, source)
                return final
    finally:
        if own_session:
            session.close()
    raise _refused_error(name, refusals, hint)


# ---------------------------------------------------------------------------- transfer
class _Refused(Exception):
    """This source will not give the file (quota, dead link, unexpected page): try the next."""

    def __init__(self, reason: str, kind: Literal["quota", "dead", "page"] = "page"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.source = ""


class _Transient(Exception):
    """Worth another attempt: the connection failed, dropped mid-file, or the server hiccuped."""

    def __init__(self, reason: str, connected: bool, retry: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.connected = connected
        self.retry = retry  # False when waiting cannot help (the host name does not resolve: offline)


class _Progress:
    """One bar per artefact across attempts and sources; it only moves forward."""

    def __init__(self, reporter: Reporter, description: str, stack: ExitStack):
        self._reporter, self._description, self._stack = reporter, description, stack
        self._task: Any = None
        self._shown = 0

    def start(self, total: int | None) -> None:
        if self._task is None:
            self._task = self._stack.enter_context(self._reporter.task(self._description, total))

    def update(self, done: int) -> None:
        if done > self._shown:
            self._task.advance(done - self._shown)
            self._shown = done


def _new_session() -> requests.Session:
    """A fresh session per download: whatever cookies Drive sets live in memory only."""
    session = requests.Session()
    session.headers["User-Agent"] = f"sigcli/{__version__} (+requests)"
    return session


def _fetch(session: requests.Session, url: str, part: Path, expected_size: int | None, progress: _Progress,
           retries: int, backoff_s: float, timeout: float | tuple[float, float]) -> None:
    """Complete ``part`` from ``url``, retrying transient failures with exponential backoff."""
    failures = 0
    while True:
        before = _size(part)
        try:
            _attempt(session, url, part, expected_size, progress, timeout)
            return
        except _Transient as exc:
            failures = 0 if _size(part) > before else failures + 1
            if failures > retries or not exc.retry:
                raise
            wait = backoff_s * 2 ** (failures - 1) if failures else 0.0
            log.warning("%s; retrying%s", exc.reason, f" in {wait:g} s" if wait else "")
            time.sleep(wait)


def _attempt(session: requests.Session, url: str, part: Path, expected_size: int | None, progress: _Progress,
             timeout: float | tuple[float, float]) -> None:
    """One request chain: follow confirmation pages, then stream the file into ``part``."""
    offset = _size(part)
    if offset:
        log.info("resuming %s at byte %d", part.name, offset)
    for _ in range(MAX_HOPS):
        headers = {"Accept-Encoding": "identity"}  # byte offsets must count the file's own bytes
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = session.get(url, headers=headers, stream=True, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = _short_reason(exc)
            raise _Transient(f"cannot connect to {_host(url)} ({reason})", connected=False,
                             retry=reason not in _NAME_ERRORS) from None
        except requests.RequestException as exc:
            raise _Refused(f"cannot request {url} ({_short_reason(exc)})") from None
        with response:
            if _is_html(response):
                url = _follow_page(response)
                continue
            status = response.status_code
            start, total = _content_range(response)
            if status == 416 or (status == 206 and start != offset):
                if status == 416 and offset and total == offset:
                    return  # the part already holds the whole file
                log.warning("%s does not match the server's file; downloading again from the start", part.name)
                part.unlink(missing_ok=True)
                offset = 0
                continue
            _check_status(response)
            if status == 206:
                mode = "ab" if offset else "wb"
            else:
                if offset:
                    log.warning("%s ignored the resume request (HTTP %d instead of 206); "
                                "downloading again from the start", _host(url), status)
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            if expected_size is not None and total is not None and total != expected_size:
                raise _Refused(f"the server offers {total} bytes instead of the {expected_size} of the "
                               "published file")
            _stream(response, part, mode, offset, total, progress)
            return
    raise _Refused(f"no file after {MAX_HOPS} pages or restarts")


def _stream(response: requests.Response, part: Path, mode: str, offset: int, total: int | None,
            progress: _Progress) -> None:
    progress.start(total)
    progress.update(offset)
    received = offset
    with open(part, mode) as fh:
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                fh.write(chunk)
                received += len(chunk)
                progress.update(received)
        except requests.RequestException as exc:
            raise _Transient(f"connection lost after {received} bytes ({_short_reason(exc)})",
                             connected=True) from None
    if total is not None and received < total:
        raise _Transient(f"connection closed after {received} of {total} bytes", connected=True)


def _check_status(response: requests.Response) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    if status == 429:
        raise _Refused("the server limits downloads right now (HTTP 429)", "quota")
    if status >= 500:
        raise _Transient(f"{_host(response.url)} answered HTTP {status}", connected=True)
    if status in (401, 403, 404, 410):
        raise _Refused(f"the link is dead or not public (HTTP {status})", "dead")
    raise _Refused(f"unexpected HTTP {status} {response.reason}")


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total) of a ``Content-Range: bytes A-B/T`` or ``bytes */T`` header."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


# ---------------------------------------------------------------------------- Drive's pages
_QUOTA_MARKERS = ("too many users have viewed or downloaded this file recently", "quota exceeded",
                  "download quota")
_DEAD_MARKERS = ("does not exist", "you need access", "not found", "has been removed",
                 "in violation of", "sign in")
_CONFIRM_MARKERS = ("can't scan this file for viruses", "virus scan warning", "too large for google to scan")


class _PageParser(HTMLParser):
    """The parts of a Drive page that matter: title, download form, confirm links, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.form_action: str | None = None
        self.form_fields: dict[str, str] = {}
        self.confirm_links: list[str] = []
        self.text: list[str] = []
        self._in_title = self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form" and a.get("id") == "download-form":
            self._in_form, self.form_action = True, a.get("action", "")
        elif tag == "input" and self._in_form and a.get("name"):
            self.form_fields[a["name"]] = a.get("value", "")
        elif tag == "a" and "confirm=" in a.get("href", ""):
            self.confirm_links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


def _is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _follow_page(response: requests.Response) -> str:
    """The URL a Drive page leads to (its confirmation form), or :class:`_Refused` saying which page."""
    body = b""
    try:
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) >= MAX_PAGE_BYTES:
                break
    except requests.RequestException as exc:
        raise _Transient(f"connection lost while reading a page ({_short_reason(exc)})", connected=True) from None
    page = _PageParser()
    page.feed(body.decode(response.encoding or "utf-8", errors="replace"))
    text = " ".join(" ".join(page.text).split()).lower()
    title = " ".join(page.title.split()) or "untitled"
    if any(marker in text for marker in _QUOTA_MARKERS):
        raise _Refused("Google Drive's download quota for this file is exceeded "
                       "('Too many users have viewed or downloaded this file recently')", "quota")
    if response.status_code >= 500 or response.status_code == 429:
        _check_status(response)
    if response.status_code >= 400:
        raise _Refused(f"the link is dead or not public (HTTP {response.status_code}, page '{title}')", "dead")
    if page.form_action is not None:
        action = urljoin(response.url, page.form_action)
        return f"{action.split('?')[0]}?{urlencode(page.form_fields)}" if page.form_fields else action
    if page.confirm_links:
        return urljoin(response.url, unescape(page.confirm_links[0]))
    if any(marker in text for marker in _CONFIRM_MARKERS):
        return _with_query(response.url, confirm="t")
    if any(marker in text for marker in _DEAD_MARKERS):
        raise _Refused(f"the link is dead or not public (page '{title}')", "dead")
    raise _Refused(f"the server sent an HTML page ('{title}') instead of the file")


def _with_query(url: str, **values: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if all(query.get(k) == v for k, v in values.items()):
        raise _Refused("the server kept asking for confirmation")
    query.update(values)
    return urlunsplit(parts._replace(query=urlencode(query)))


# ---------------------------------------------------------------------------- verification
class _Expected(NamedTuple):
    size: int | None
    sha256: str | None
    origin: str  # where the figures come from, for messages


class _Invalid(Exception):
    """The file is not the artefact; the message says what is wrong with it."""


def _expected(artefact: Artefact, manifest: dict[str, Any]) -> _Expected:
    if artefact.size is not None or artefact.sha256 is not None:
        return _Expected(artefact.size, artefact.sha256, "the registry")
    entry = manifest.get(artefact.name, {})
    return _Expected(entry.get("size"), entry.get("sha256"),
                    f"the download verified on {entry.get('verified', '?')}, recorded in {_manifest_path()}")


def _verify(artefact: Artefact, path: Path, expected: _Expected) -> str:
    """Check ``path`` is the artefact; return its sha256 or raise :class:`_Invalid`."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise _Invalid(f"it has {size} bytes, {expected.origin} says {expected.size}")
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise _Invalid("it is an HTML page, not the file")
    if artefact.kind == "checkpoint":
        _check_checkpoint(path)
    else:
        _check_npz(path)
    sha256 = sha256_of(path)
    if expected.sha256 is not None and sha256 != expected.sha256:
        raise _Invalid(f"its sha256 is {sha256[:16]}…, {expected.origin} says {expected.sha256[:16]}…"
                       f" (if the publisher replaced the file, delete the '{artefact.name}' entry of "
                       f"{_manifest_path()})")
    return sha256


def _check_checkpoint(path: Path) -> None:
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure means the file is not a safe checkpoint
        raise _Invalid("it does not load as a PyTorch checkpoint with weights_only=True "
                       f"({first_line(exc)})") from None
    parts = content if isinstance(content, (tuple, list)) else [content]
    if not parts or not all(isinstance(p, Mapping) for p in parts):
        raise _Invalid(f"it holds a {type(content).__name__}, not a state dict or a tuple of state dicts")


def _check_npz(path: Path) -> None:
    """Key names and every member's CRC, without reading arrays (so without unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            keys = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _Invalid(f"it is not a .npz archive ({first_line(exc)})") from None
    if broken is not None:
        raise _Invalid(f"its member {broken} is corrupt (CRC mismatch)")
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise _Invalid(f"it lacks the key(s) {', '.join(missing)} of a signature set "
                       f"(has {', '.join(sorted(keys)) or 'none'})")


def _check_present(artefact: Artefact, final: Path, expected: _Expected, manifest: dict[str, Any],
                   verify_cmd: str) -> Path:
    """A file already in place: trusted if it is the very file the manifest verified (same
    size, inode and modification and change times, which no rewrite keeps), else hashed now."""
    entry = manifest.get(artefact.name, {})
    if entry.get("path") == str(final) and entry.get("stat") == _identity(final) and (
            artefact.sha256 is None or entry.get("sha256") == artefact.sha256):
        return final
    try:
        sha256 = _verify(artefact, final, expected)
    except _Invalid as exc:
        raise DownloadError(f"{final} is not a usable '{artefact.name}': {exc}",
                            f"run '{verify_cmd} --overwrite' to download it again") from None
    _record(manifest, artefact, final, sha256, "already present")
    return final


# ---------------------------------------------------------------------------- cache bookkeeping
def _manifest_path() -> Path:
    return cache_dir() / MANIFEST


def _read_manifest() -> dict[str, Any]:
    path = _manifest_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return {}


def _record(manifest: dict[str, Any], artefact: Artefact, path: Path, sha256: str, source: str) -> None:
    """Remember a verified file so later downloads are checked against it."""
    manifest[artefact.name] = {"file": artefact.filename, "size": path.stat().st_size, "sha256": sha256,
                               "source": source, "path": str(path), "stat": _identity(path),
                               "verified": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    clean_stale_temps(cache_dir(), MANIFEST)
    with atomic_path(_manifest_path(), overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _identity(path: Path) -> list[int]:
    """What changes whenever a file's content does: size, device, inode, modification and
    change times (the change time cannot be set back, unlike the modification time)."""
    stat = path.stat()
    return [stat.st_size, stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]


def _part_path(final: Path, source: str) -> Path:
    """One partial file per source, so a resume never mixes bytes of two links."""
    key = hashlib.sha1(source.encode()).hexdigest()[:10]
    return final.with_name(f"{final.name}.{key}.part")


def _remove_parts(final: Path) -> None:
    for part in final.parent.glob(f"{glob.escape(final.name)}.*.part"):
        part.unlink(missing_ok=True)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# ---------------------------------------------------------------------------- messages
def _refused_error(name: str, refusals: list[_Refused], hint: str) -> DownloadError:
    reasons = "; ".join(f"{_describe_source(r.source)}: {r.reason}" for r in refusals)
    if any(r.kind == "quota" for r in refusals):
        hint += ", or try again later (Drive lifts a quota within 24 hours)"
    return DownloadError(f"cannot download '{name}': {reasons}", hint)


def _transient_error(name: str, source: str, part: Path, exc: _Transient, hint: str) -> DownloadError:
    done = _size(part)
    if done:
        return DownloadError(f"the download of '{name}' was interrupted at {done} bytes ({exc.reason}); "
                             f"the partial file {part} is kept: run the same command again to resume", hint)
    if not exc.connected:
        return DownloadError(f"cannot fetch '{name}': {exc.reason}; without network, place the file by hand",
                             hint)
    return DownloadError(f"cannot fetch '{name}' from {_describe_source(source)}: {exc.reason}", hint)


def _describe_source(url: str) -> str:
    """``Drive file <id>`` for Drive links, the URL otherwise."""
    query = dict(parse_qsl(urlsplit(url).query))
    return f"Drive file {query['id']}" if url.startswith(DRIVE_DOWNLOAD) and "id" in query else url


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


_NAME_ERRORS = ("name resolution failed", "Name or service not known", "Temporary failure in name resolution",
                "nodename nor servname provided, or not known", "No address associated with hostname",
                "getaddrinfo failed")


def _short_reason(exc: BaseException) -> str:
    """The useful end of requests' long messages: 'Connection refused', 'timed out', ..."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    if "NameResolution" in text or "getaddrinfo" in text:
        return "name resolution failed"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if "IncompleteRead" in text:
        return "incomplete read"
    return first_line(exc)

"""Fetch the published artefacts with gdown, then verify them (docs/formats.md#download-cache-and-manifest).

gdown moves the bytes: it follows Drive's confirmation page, streams into a ``.part`` file and
resumes it with ``Range``. Around it: a quota page or dead link ends a source (the older links
are tried), failures are retried with backoff, and the file is verified before it takes its
name (:func:`sigcli.artefacts.verify`). Only an interrupted transfer leaves its ``.part``.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import gdown
import requests
from gdown.exceptions import DownloadError as TransferError, FileURLRetrievalError

from sigcli import __version__
from sigcli.artefacts import (NotTheArtefact, artefact_path, check_present, expected_of, get_artefact, read_manifest,
                              record, verify)
from sigcli.errors import DownloadError, first_line
from sigcli.fileio import OutputExistsError, make_folder, publish
from sigcli.progress import Reporter, RunningCount

log = logging.getLogger(__name__)

DRIVE_DOWNLOAD = "https://drive.google.com/uc"  # the Drive link that gdown follows to the file
RETRIES = 3            # failed attempts in a row (no new bytes) before a source is given up
BACKOFF_S = 0.5        # wait after the first failed attempt, doubled after each further one
TIMEOUT_S = (15, 60)   # connect, read (seconds without a byte)
USER_AGENT = f"sigcli/{__version__} (+gdown)"


def download(name: str, folder: str | os.PathLike | None = None, url: str | None = None, overwrite: bool = False,
             reporter: Reporter | None = None, retries: int | None = None, backoff_s: float | None = None,
             timeout: float | tuple[float, float] = TIMEOUT_S) -> Path:
    """Fetch artefact ``name`` into ``folder`` (default the cache), verify it, return its path.

    A file already there is verified and returned without network unless ``overwrite`` (a
    file, never a folder). ``url`` replaces the Drive links (a mirror). Raises
    :class:`DownloadError` with a one-line reason and how to place the file by hand.
    """
    artefact, final = get_artefact(name), artefact_path(name, folder)
    manifest = read_manifest()
    expected = expected_of(artefact, manifest)
    verify_cmd = f"sig download {name}" + (f" --save-path {folder}" if folder is not None else "")
    if (final.exists() or final.is_symlink()) and not final.is_file():
        raise DownloadError(f"{final} is in the way of the '{name}' download and is not a file; it is left alone",
                            "move it away, or give another --save-path")
    if final.exists() and not overwrite:
        return check_present(artefact, final, expected, manifest, verify_cmd)
    hint = f"download {url or artefact.link} in a browser, save it as {final}, then run '{verify_cmd}' to verify it"
    make_folder(final.parent, "--save-path" if folder is not None else "SIGCLI_HOME")
    if overwrite:
        _remove_leftovers(final)
    refusals: list[tuple[str, _Refused]] = []
    with ExitStack() as stack:
        progress = RunningCount(reporter, name, stack)  # one bar across attempts and sources
        for source in [url] if url else [f"{DRIVE_DOWNLOAD}?{urlencode({'id': i})}" for i in artefact.drive_ids]:
            stage = _stage_path(final, source)
            try:
                _fetch(source, stage, expected.size, progress, RETRIES if retries is None else retries,
                       BACKOFF_S if backoff_s is None else backoff_s, timeout)
            except _Refused as exc:
                refusals.append((source, exc))
                log.warning("%s: %s", _describe(source), exc)
                continue
            except _Transient as exc:
                raise _transient_error(name, source, _part_of(stage), exc, hint) from None
            try:
                sha256 = verify(artefact, stage, expected)
                publish(stage, final, overwrite=overwrite)
            except NotTheArtefact as exc:
                stage.unlink()
                raise DownloadError(f"the download of '{name}' from {_describe(source)} failed verification: "
                                    f"{exc}; nothing was kept", hint) from None
            except OutputExistsError:  # another download of it finished meanwhile: check that one
                stage.unlink()
                return check_present(artefact, final, expected, manifest, verify_cmd)
            _remove_leftovers(final)
            record(manifest, artefact, final, sha256, source)
            return final
    reasons = "; ".join(f"{_describe(source)}: {exc}" for source, exc in refusals)
    if any(isinstance(exc, _Quota) for _, exc in refusals):
        hint += ", or try again later (Drive lifts a quota within 24 hours)"
    raise DownloadError(f"cannot download '{name}': {reasons}", hint)


class _Refused(Exception):
    """This source will not give the file (a dead link): try the next."""


class _Quota(_Refused):
    """Drive's download quota for the file is spent, for now."""


class _Transient(Exception):
    """Worth another attempt (``retry``, unless offline): the connection failed or dropped, or the
    server hiccuped; ``restart``: it ignored ``Range``, so the part starts over."""

    def __init__(self, reason: str, connected: bool = True, retry: bool = True, restart: bool = False):
        super().__init__(reason)
        self.connected, self.retry, self.restart = connected, retry, restart


def _fetch(source: str, stage: Path, size: int | None, progress: RunningCount, retries: int, backoff_s: float,
           timeout: float | tuple[float, float]) -> None:
    """Complete ``stage`` from ``source``, retrying transient failures with exponential backoff."""
    def report(done: int, total: int | None) -> None:
        if size is not None and total is not None and total != size:  # another file: its part goes
            _part_of(stage).unlink()
            raise _Refused(f"the server offers {total} bytes instead of the {size} of the published file")
        progress.update(done, total)

    failures = 0
    while True:
        before = _size(_part_of(stage))
        try:
            gdown.download(source, str(stage), quiet=True, use_cookies=False, resume=True, timeout=timeout,
                           progress=report, user_agent=USER_AGENT)
            return
        except FileURLRetrievalError as exc:  # Drive answered with a page instead of the file
            if "too many users" in str(exc).lower():
                raise _Quota("Google Drive's download quota for this file is exceeded ('Too many users have "
                             "viewed or downloaded this file recently')") from None
            raise _Refused("the link is dead or not public") from None
        except (TransferError, requests.RequestException) as exc:
            error = _transient(exc, source)
        part = _part_of(stage)
        failures = 0 if _size(part) > before else failures + 1
        if failures > retries or not error.retry:
            raise error
        if error.restart and part is not None:
            part.unlink()
        wait = backoff_s * 2 ** (failures - 1) if failures else 0.0
        log.warning("%s; retrying%s", error, f" in {wait:g} s" if wait else "")
        time.sleep(wait)


def _transient(exc: Exception, source: str) -> _Transient:
    """What a failed gdown attempt means: :class:`_Refused` is raised for a dead link or a quota."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code
        if status == 429:
            raise _Quota("the server limits downloads right now (HTTP 429)") from None
        if status < 500:
            raise _Refused(f"the link is dead or not public (HTTP {status})") from None
        return _Transient(f"{_host(source)} answered HTTP {status}")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        reason = _short_reason(exc)
        return _Transient(f"cannot connect to {_host(source)} ({reason})", connected=False,
                          retry=reason != "name resolution failed")
    if "did not honor the requested byte range" in str(exc):
        return _Transient(f"{_host(source)} ignored the resume request; starting the file over", restart=True)
    return _Transient(first_line(exc))


def _stage_path(final: Path, source: str) -> Path:
    """Where gdown writes ``source``: one file (and part) per source, so a resume never mixes two links' bytes."""
    return final.with_name(f"{final.name}.{hashlib.sha1(source.encode()).hexdigest()[:10]}")


def _part_of(stage: Path) -> Path | None:
    """gdown's partial file of ``stage``: its name, 8 random characters, ``.part``."""
    return next(iter(stage.parent.glob(f"{glob.escape(stage.name)}{'[a-z0-9_]' * 8}.part")), None)


def _remove_leftovers(final: Path) -> None:
    """The staged files and parts of ``final``, of every source (and nothing else)."""
    for path in final.parent.glob(f"{glob.escape(final.name)}.*"):
        if re.fullmatch(r"[0-9a-f]{10}([a-z0-9_]{8}\.part)?", path.name[len(final.name) + 1:]):
            path.unlink(missing_ok=True)


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _transient_error(name: str, source: str, part: Path | None, exc: _Transient, hint: str) -> DownloadError:
    if done := _size(part):
        return DownloadError(f"the download of '{name}' was interrupted at {done} bytes ({exc}); "
                             f"the partial file {part} is kept: run the same command again to resume", hint)
    if not exc.connected:
        return DownloadError(f"cannot fetch '{name}': {exc}; without network, place the file by hand", hint)
    return DownloadError(f"cannot fetch '{name}' from {_describe(source)}: {exc}", hint)


def _describe(url: str) -> str:
    """``Drive file <id>`` for Drive links, the URL otherwise."""
    query = dict(parse_qsl(urlsplit(url).query))
    return f"Drive file {query['id']}" if url.startswith(DRIVE_DOWNLOAD) and "id" in query else url


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _short_reason(exc: BaseException) -> str:
    """The useful end of requests' long messages: 'Connection refused', 'timed out', ..."""
    if any(mark in str(exc) for mark in ("NameResolution", "getaddrinfo", "Name or service not known")):
        return "name resolution failed"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return errno.group(1).strip() if errno else "timed out" if isinstance(exc, requests.Timeout) else first_line(exc)

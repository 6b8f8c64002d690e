"""Safe outputs: nothing is replaced unless asked, nothing we did not write is deleted.

Every command writes its outputs through this module:

- :func:`check_output`, before any work: an output that exists is refused unless
  ``--overwrite`` is given, and even then only a file, or a folder that the caller recognises
  as one of ours, may be replaced; an output that is (or holds) one of the command's inputs,
  or the current folder, never is.
- :func:`atomic_path`, for the write itself: the output appears under its final name only
  once complete, and (without ``overwrite``) through a rename that never replaces, so of two
  runs racing for one name the second fails instead of overwriting the first.
- :func:`exclusive_lock`, for a folder a run keeps writing into (a training log folder).

Temporary names carry their writer's host and process id (``.NAME.sig-HOST-PID-XXXXXXXX.tmp``),
so that a later run can recognise and remove those a killed process left behind
(:func:`clean_stale_temps`), and nothing else.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sigcli.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, runs are not guarded against each other there
    fcntl = None

log = logging.getLogger(__name__)

#: The lock file :func:`exclusive_lock` holds inside a folder.
LOCK_NAME = ".sig.lock"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_TEMP = re.compile(r"\.(?P<name>.+)\.sig-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp(?:\.[A-Za-z0-9]+)?")
_OVERWRITE_HINT = "pass --overwrite to replace it, or choose another {flag}"

Owned = Callable[[Path], bool]
"""Recognises a folder of our own format, the only kind of folder an output may replace."""


class OutputExistsError(InputError):
    """An output exists (or appeared while we wrote it) and may not be replaced."""


# ---------------------------------------------------------------------------- checks before the work
def check_output(path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike | None] = (),
                 flag: str = "--save-path", owned: Owned | None = None) -> Path:
    """Refuse, before any work, an output that could not or must not be written.

    Refused always: the current folder or a folder above it; an output equal to an input or
    holding one; a path under a file; a folder that ``owned`` does not recognise (an empty
    one counts as absent). Refused without ``overwrite``: anything that exists. Temporary
    files that a killed earlier run left for this output are removed.
    """
    path = Path(path)
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(f"{flag} {path} is the current folder or one above it, which is never replaced",
                         f"give a new file or folder as {flag}")
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if source == resolved or resolved in source.parents or _same_file(source, resolved):
            what = "is" if source == resolved or _same_file(source, resolved) else "holds"
            raise InputError(f"{flag} {path} {what} the input {given}, which an output never replaces",
                             f"choose another {flag}")
    _check_parent(path, flag)
    if path.is_dir() and not path.is_symlink():
        if not any(path.iterdir()):
            return path
        if not overwrite:
            raise OutputExistsError(f"{path} already exists", _OVERWRITE_HINT.format(flag=flag))
        if owned is None or not owned(path):
            raise InputError(f"{flag} {path} is a folder that sig did not write, which is never replaced",
                             f"choose another {flag}, or move that folder away yourself")
    elif path.is_symlink() or path.exists():
        if not overwrite:
            raise OutputExistsError(f"{path} already exists", _OVERWRITE_HINT.format(flag=flag))
        if path.exists() and not path.is_file():
            raise InputError(f"{flag} {path} is not a regular file, which is never replaced", f"choose another {flag}")
    clean_stale_temps(path.parent, path.name)
    return path


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None]], **kwargs) -> None:
    """:func:`check_output` for each ``(flag, path)`` of one command, and that no two paths coincide."""
    kwargs["inputs"] = tuple(kwargs.get("inputs", ()))  # read once per output
    seen: dict[Path, str] = {}
    for flag, path in outputs:
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise InputError(f"{flag} {path} is also where {seen[resolved]} writes", "give each output its own path")
        seen[resolved] = flag
        check_output(path, flag=flag, **kwargs)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_parent(path: Path, flag: str) -> None:
    """The nearest existing folder above ``path`` must be a folder we may write in."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: {parent} is a file, not a folder", f"choose another {flag}")
    probe = parent / f".probe.{_temp_tag()}.tmp"
    try:  # permissions alone do not tell (read-only mounts, /sys, quotas): try it
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot write in {parent} ({(exc.strerror or str(exc)).lower()})",
                         f"choose a {flag} in a folder you can write to") from None
    probe.unlink()


def make_folder(path: str | os.PathLike, flag: str) -> Path:
    """Create ``path`` (and its parents) or say in one line why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{flag} {path} is a file, not a folder", f"choose another {flag}") from None
    except OSError as exc:
        raise _cannot_write(path, exc, flag) from None
    return path


def _cannot_write(path: Path, exc: OSError, flag: str | None = None) -> InputError:
    what = f"{flag} {path}" if flag else str(path)
    reason = "a folder on the way is a file" if isinstance(exc, (NotADirectoryError, FileExistsError)) else (
        exc.strerror or type(exc).__name__).lower()
    return InputError(f"cannot write {what}: {reason}", "choose a path in a folder you can write to")


# ---------------------------------------------------------------------------- the write
@contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None, *, overwrite: bool = False,
                owned: Owned | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; publish it as ``final`` if the block succeeds.

    The block may create a file or a folder there. On any exception (Ctrl-C included) it is
    removed and ``final`` is left as it was. Without ``overwrite`` an existing ``final`` is
    refused, before the block and again at the rename, which never replaces (so a concurrent
    writer cannot be overwritten). With it, a file is replaced, and a folder only if ``owned``
    recognises it; an empty folder counts as absent.
    """
    final = Path(final)
    if not overwrite and _occupied(final):
        raise OutputExistsError(f"{final} already exists", _OVERWRITE_HINT.format(flag="path"))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    suffix = final.suffix if suffix is None else suffix
    tmp = final.with_name(f".{final.name}.{_temp_tag()}.tmp{suffix}")
    try:  # reserve the name, and learn now (not after the work) whether we may write here
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    tmp.unlink()
    try:
        yield tmp
        publish(tmp, final, overwrite=overwrite, owned=owned)
    except BaseException:
        remove(tmp)
        raise


def publish(tmp: Path, final: Path, *, overwrite: bool = False, owned: Owned | None = None) -> None:
    """Rename the complete ``tmp`` to ``final``, under the rules of :func:`atomic_path`."""
    if not overwrite:
        return _rename_new(tmp, final)
    if final.is_dir() and not final.is_symlink():
        if not any(final.iterdir()):
            return _rename_new(tmp, final)
        if owned is None or not owned(final):
            raise InputError(f"{final} is a folder that sig did not write, which is never replaced",
                             "choose another path, or move that folder away yourself")
    elif not tmp.is_dir() or not (final.exists() or final.is_symlink()):
        return os.replace(tmp, final)  # a file over a file (or nothing): one atomic step
    # A folder, or a file giving way to a folder: move the old one aside until the new one is in.
    aside = final.with_name(f".{final.name}.{_temp_tag()}.old")
    try:
        os.rename(final, aside)
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    try:
        _rename_new(tmp, final)
    except BaseException:
        os.rename(aside, final)
        raise
    remove(aside)


def _occupied(path: Path) -> bool:
    """Something is at ``path`` (a dangling link included), other than an empty folder."""
    if path.is_dir() and not path.is_symlink():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def _rename_new(tmp: Path, final: Path) -> None:
    """Rename without ever replacing: RENAME_NOREPLACE, else a hard link for files."""
    if final.is_dir() and not final.is_symlink():
        try:
            final.rmdir()  # an empty folder holds nothing to lose; a non-empty one stays and fails below
        except OSError:
            pass
    try:
        try:
            _rename_noreplace(tmp, final)
        except NotImplementedError:
            if tmp.is_dir():
                os.rename(tmp, final)  # POSIX refuses a non-empty folder or a file as the target
            else:
                _link_then_unlink(tmp, final)
    except OSError as exc:
        if isinstance(exc, (FileExistsError, IsADirectoryError, NotADirectoryError)) or exc.errno == errno.ENOTEMPTY:
            raise OutputExistsError(f"{final} appeared while this run was writing it (another run?); "
                                    "nothing was replaced", _OVERWRITE_HINT.format(flag="path")) from None
        raise _cannot_write(final, exc) from None


def _link_then_unlink(tmp: Path, final: Path) -> None:
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: check, then rename (a short race)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if final.exists() or final.is_symlink():
            raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Linux renameat2(RENAME_NOREPLACE); NotImplementedError where it does not exist."""
    renameat2 = _libc_renameat2()
    if renameat2 is None:
        raise NotImplementedError
    if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        raise NotImplementedError
    raise OSError(code, os.strerror(code), str(dst))


@functools.cache
def _libc_renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not Linux, or a C library older than glibc 2.28
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def remove(path: Path) -> None:
    """Remove a file or folder if it exists (only for what this run created itself)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- our own files
def _temp_tag() -> str:
    return f"sig-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary name of :func:`atomic_path`."""
    return _TEMP.fullmatch(name) is not None


def clean_stale_temps(folder: str | os.PathLike, name: str | None = None) -> int:
    """Remove the temporary files and folders in ``folder`` (those for output ``name`` only,
    if given) whose writer, a process on this host, no longer exists; return how many."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if (match is None or (name is not None and match["name"] != name) or match["host"] != _HOST
                or _alive(int(match["pid"]))):
            continue
        remove(Path(entry.path))
        removed += 1
    if removed:
        log.info("removed %d temporary file(s) left in %s by a run that was killed", removed, folder)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def holds_only(folder: Path, allowed: Callable[[str], bool], required: Iterable[str] = ()) -> bool:
    """A folder whose every entry is a file named as ``allowed`` says, with all of ``required``:
    how a folder of one of our formats is recognised before it may be replaced."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    names = {entry.name for entry in entries}
    return (all(entry.is_file(follow_symlinks=False) and allowed(entry.name) for entry in entries)
            and set(required) <= names)


# ---------------------------------------------------------------------------- locks
@contextmanager
def exclusive_lock(folder: str | os.PathLike, what: str, hint: str) -> Iterator[None]:
    """Hold ``folder/.sig.lock`` for the block; another holder is refused at once (one line).

    The lock is the kernel's (flock), so a killed holder releases it; the file is removed
    when the block ends.
    """
    lock = Path(folder) / LOCK_NAME
    if fcntl is None:
        yield
        return
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _cannot_write(lock, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise InputError(f"{what} {folder} is in use by another sig run"
                             + (f" (process {holder})" if holder.isdigit() else ""), hint) from None
        try:  # the previous holder may have removed the file between our open and our lock
            current = os.stat(lock)
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        try:
            os.unlink(lock)  # while still held: the next run then locks a fresh file
        except FileNotFoundError:
            pass
        os.close(fd)


# ---------------------------------------------------------------------------- identity of inputs
def sha256_of(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, or of a folder's files: their names and contents, in sorted order.

    Recorded as the provenance of inputs and checked on downloads; read in 1 MiB blocks.
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()

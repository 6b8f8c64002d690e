"""Dataset plugins: loaders registered in entry-point group ``sigcli.datasets``.

Built-in loaders and third-party ones are found the same way. Discovery maps each name to
its entry point and imports only the loader that is asked for, so one broken plugin never
stops the others. ``SIGCLI_LOAD_PLUGINS`` (comma-separated entry-point or distribution
names; empty: none) restricts which plugins are visible, e.g. ``SIGCLI_LOAD_PLUGINS=sigcli``
for the built-ins only. A name registered by two distributions is refused, naming both, so
that no installed package can silently stand in for another's loader (e.g. a built-in).
"""

from __future__ import annotations

import inspect
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Iterator

from sigcli.data.loader import ENTRY_POINT_GROUP, DatasetLoader
from sigcli.errors import PluginError, SigcliError

ENV_VAR = "SIGCLI_LOAD_PLUGINS"
_REQUIRED = ("canvas_size", "genuine_per_user", "skilled_per_user")


@dataclass(frozen=True)
class PluginInfo:
    """What ``sig datasets`` shows about one registered loader."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # "ok", "broken" (fails to load) or "duplicate" (its name is registered twice)
    error: str | None = None
    loader: type[DatasetLoader] | None = None

    def as_dict(self) -> dict:
        """JSON-ready record (``loader`` replaced by its canvas and per-user counts)."""
        record = {"name": self.name, "distribution": self.distribution, "version": self.version,
                  "status": self.status, "error": self.error}
        loader = self.loader
        # A canvas or count of None is measured from the data when a loader opens it.
        record.update(canvas_size=list(loader.canvas_size) if loader and loader.canvas_size else None,
                      genuine_per_user=loader.genuine_per_user if loader else None,
                      skilled_per_user=loader.skilled_per_user if loader else None,
                      simple_per_user=loader.simple_per_user if loader else None)
        return record


def registered() -> dict[str, list[EntryPoint]]:
    """Name → the visible entry points registering it, nothing imported. More than one for a
    name is a clash, refused by :func:`get_loader` rather than settled by discovery order:
    otherwise any installed package could silently replace a built-in loader."""
    allowed = _allowed()
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is None or _normalise(ep.name) in allowed or _normalise(_distribution(ep)) in allowed:
            found.setdefault(ep.name, []).append(ep)
    return dict(sorted(found.items()))


def get_loader(name: str) -> type[DatasetLoader]:
    """The loader class registered as ``name``; PluginError if unknown, broken or registered twice."""
    plugins = registered()
    if name not in plugins:
        hint = f"available: {', '.join(plugins) or 'none'}"
        if os.environ.get(ENV_VAR) is not None:
            hint += f"; {ENV_VAR}={os.environ[ENV_VAR]!r} restricts which plugins load"
        raise PluginError(f"no dataset loader named {name!r}", hint)
    if len(plugins[name]) > 1:
        raise _clash(name, plugins[name])
    return _load(plugins[name][0])


@contextmanager
def plugin_errors(name: str) -> Iterator[None]:
    """Around calls into the loader ``name`` (opening it on a folder, listing users and files).

    A loader raising anything but a :class:`SigcliError` (which says what is wrong with the
    data, and passes unchanged) has a bug: that becomes one PluginError naming the plugin
    and its distribution instead of a traceback.
    """
    try:
        yield
    except SigcliError:
        raise
    except Exception as exc:
        ep = _registration(name)
        where, hint = (f" ({ep.value}, {_release(ep)})", _blame(ep)) if ep else ("", None)
        raise PluginError(f"dataset plugin {name!r}{where} failed: {type(exc).__name__}: {_first_line(exc)}",
                          hint) from exc


def origin(name: str) -> dict[str, str | None]:
    """Where the loader ``name`` comes from (entry point, distribution, version), for the record
    a run saves beside its output; all None for a loader not registered as a plugin."""
    ep = _registration(name)
    return {"name": name, "entry_point": ep.value if ep else None, "distribution": _distribution(ep) if ep else None,
            "version": _version(ep) if ep else None}


def _registration(name: str) -> EntryPoint | None:
    eps = registered().get(name, [])
    return eps[0] if len(eps) == 1 else None


def list_plugins() -> list[PluginInfo]:
    """Every visible plugin, each loaded to report its status; never raises. A clashing name
    gives one record per registration, each with status ``duplicate``."""
    records = []
    for name, eps in registered().items():
        for ep in eps:
            base = {"name": name, "distribution": _distribution(ep), "version": _version(ep)}
            if len(eps) > 1:
                records.append(PluginInfo(**base, status="duplicate", error=_clash(name, eps).message))
                continue
            try:
                records.append(PluginInfo(**base, status="ok", loader=_load(ep)))
            except PluginError as exc:
                records.append(PluginInfo(**base, status="broken", error=exc.message))
    return records


def _load(ep: EntryPoint) -> type[DatasetLoader]:
    """Import one entry point and check it is a usable loader class."""
    try:
        loaded = ep.load()
    except (Exception, SystemExit) as exc:  # a plugin may fail in any way on import; report it, never crash
        raise PluginError(f"dataset plugin {ep.name!r} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", _blame(ep)) from exc
    if not (inspect.isclass(loaded) and issubclass(loaded, DatasetLoader)):
        raise PluginError(f"dataset plugin {ep.name!r} ({ep.value}) is not a DatasetLoader subclass "
                          f"(got {type(loaded).__name__})", _blame(ep))
    missing = [attr for attr in ("name", *_REQUIRED) if not hasattr(loaded, attr)]
    if inspect.isabstract(loaded) or missing:
        what = f"lacks {', '.join(missing)}" if missing else \
            f"leaves abstract {', '.join(sorted(loaded.__abstractmethods__))}"
        raise PluginError(f"dataset plugin {ep.name!r} ({ep.value}) {what}", _blame(ep))
    return loaded


def _clash(name: str, eps: list[EntryPoint]) -> PluginError:
    both = " and ".join(sorted(f"{_release(ep)} ({ep.value})" for ep in eps))
    return PluginError(f"dataset loader name {name!r} is registered by {both}; refusing to choose",
                       f"uninstall one, or make one visible with {ENV_VAR}=DISTRIBUTION[,...]")


def _release(ep: EntryPoint) -> str:
    """``distribution version`` of an entry point, as pip would name it."""
    return f"{ep.dist.name} {ep.dist.version}" if ep.dist else "no distribution"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {_normalise(part) for part in value.split(",") if part.strip()}


def _distribution(ep: EntryPoint) -> str | None:
    return ep.dist.name if ep.dist else None


def _version(ep: EntryPoint) -> str | None:
    return ep.dist.version if ep.dist else None


def _normalise(name: str | None) -> str:
    """Distribution names compare as pip does (case, '-', '_' and '.' alike); so do plugin names."""
    return re.sub(r"[-_.]+", "-", name or "").strip().lower()


def _blame(ep: EntryPoint) -> str:
    dist = _distribution(ep)
    return f"fix or uninstall the distribution {dist!r}" if dist else "fix or remove that entry point"

"""Option models shared by commands: validation with pydantic, saved next to outputs.

Each command's own options model lives in :mod:`sigcli.config` (e.g.
``sigcli.config.preprocess.PreprocessOptions``) and holds that command's defaults, once; the
command is derived from it (:mod:`sigcli.cli.derive`), so ``--help`` shows the same values.
"""

from __future__ import annotations

import json
from importlib import metadata
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sigcli import __version__
from sigcli.errors import InputError
from sigcli.fileio import atomic_path

M = TypeVar("M", bound=BaseModel)


class Options(BaseModel):
    """Base of every command's options: strict about unknown fields, paths as text in JSON, and
    no NaN or infinity in a number (``--threshold nan`` would decide nothing, silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def default(model: type[BaseModel], field: str) -> Any:
    """The default of ``model.field``, so the CLI and the library share one value."""
    return model.model_fields[field].default


def build(model: type[M], /, **values: Any) -> M:
    """Validate options; a pydantic error becomes one :class:`InputError` line."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        flag = "--" + where.replace("_", "-")
        raise InputError(f"{flag}: {first['msg']} (got {first.get('input')!r})") from None


def user_range(values: tuple[int, int] | list[int] | None, name: str) -> tuple[int, int] | None:
    """Check a ``[first, last)`` user range given as two integers."""
    if values is None:
        return None
    first, last = int(values[0]), int(values[1])
    if first < 0 or last <= first:
        raise InputError(f"{name} {first} {last} is an empty or negative user range",
                         "give FIRST LAST with 0 <= FIRST < LAST (LAST excluded)")
    return first, last


def require_users_within(users: tuple[int, int], present: Sequence[int], flag: str, data: str) -> None:
    """Refuse a ``[first, last)`` range that reaches beyond the users ``present`` in ``data``.

    Selecting would clip it silently, and the run would record the range asked for rather
    than the one used.
    """
    first, last = users
    if len(present) == 0:
        raise InputError(f"{flag} {first} {last}: there are no users in {data}")
    low, high = int(min(present)), int(max(present))
    if first < low or last > high + 1:
        raise InputError(f"{flag} {first} {last} reaches beyond the users of {data}, {low}–{high}",
                         f"give FIRST LAST within {low} {high + 1}; LAST is excluded")


def users_text(users: Sequence[int], shown: int = 8) -> str:
    """``"user 3"``, ``"users 0, 2, 7"`` or ``"users 0, 1, 2, 3, 4, 5, 6, 7 and 40 more"``, for messages."""
    listed = ", ".join(map(str, users[:shown])) + (f" and {len(users) - shown} more" if len(users) > shown else "")
    return f"user{'s' if len(users) > 1 else ''} {listed}"


def environment() -> dict[str, str]:
    """Versions that matter for reproducing a run; a library not yet imported is not imported to name it."""
    def version(name: str) -> str:
        module = sys.modules.get(name.replace("scikit-learn", "sklearn"))
        try:
            return module.__version__ if module is not None else metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"sigcli": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": version("numpy"), "torch": version("torch"), "scikit-learn": version("scikit-learn")}


def save_options(options: BaseModel, path: str | Path, *, overwrite: bool = False, **extra: Any) -> Path:
    """Write resolved options (plus ``extra``, e.g. a data fingerprint) and versions as JSON.

    An existing ``path`` is refused unless ``overwrite``.
    """
    record = {"options": json.loads(options.model_dump_json()), "environment": environment(), **extra}
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return Path(path)


class Cli:
    """Command-line facts of an option field that its name, type and default do not say.

    Put it in the field's ``Annotated`` type. ``names``: extra spellings (``"-r"``, or a
    reference tool's name); ``flag``: the main spelling when it is not ``--field-name`` (a
    field may not be called ``json``); ``argument``: positional instead of an option; ``default_text``:
    how ``--help`` shows a default that is computed or ``None``; ``skip``: set by code, not on
    the command line; ``text``: the option is read as text, which the model parses (``2^-11``
    for a float), and ``text(value)`` writes a value back. :mod:`sigcli.cli.derive` reads it.
    """

    def __init__(self, *names: str, flag: str | None = None, argument: bool = False, default_text: str | None = None,
                 hidden: bool = False, skip: bool = False, metavar: str | None = None,
                 text: Callable[[Any], str] | None = None):
        self.names, self.flag, self.argument, self.default_text = names, flag, argument, default_text
        self.hidden, self.skip, self.metavar, self.text = hidden, skip, metavar, text

    def __repr__(self) -> str:
        return f"Cli({', '.join(f'{k}={v!r}' for k, v in vars(self).items() if v)})"

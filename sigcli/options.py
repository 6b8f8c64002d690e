"""Option models shared by commands: validation with pydantic, saved next to outputs.

Each command's own options model lives beside its library function (e.g.
``sigcli.preprocess.PreprocessOptions``) and holds that command's defaults, once. The CLI
reads defaults from the model with :func:`default` so ``--help`` shows the same values.
"""

from __future__ import annotations

import json
from importlib import metadata
import platform
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from sigcli import __version__
from sigcli.errors import InputError
from sigcli.fileio import atomic_path

M = TypeVar("M", bound=BaseModel)


class Options(BaseModel):
    """Base of every command's options: strict about unknown fields, paths as text in JSON."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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


def environment() -> dict[str, str]:
    """Versions that matter for reproducing a run; torch is not imported just to name its version."""
    torch = sys.modules.get("torch")
    try:
        torch_version = torch.__version__ if torch is not None else metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {"sigcli": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": np.__version__, "torch": torch_version, "scikit-learn": metadata.version("scikit-learn")}


def save_options(options: BaseModel, path: str | Path, *, overwrite: bool = False, **extra: Any) -> Path:
    """Write resolved options (plus ``extra``, e.g. a data fingerprint) and versions as JSON.

    An existing ``path`` is refused unless ``overwrite``.
    """
    record = {"options": json.loads(options.model_dump_json()), "environment": environment(), **extra}
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return Path(path)

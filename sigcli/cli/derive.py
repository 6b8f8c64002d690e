"""Typer commands derived from pydantic options models, and command lines from options.

A command's options model is the one place where each option's name, type, default,
choices, validation and help live (see ``docs/vocabulary.md``). This module turns the model
into the Typer command's parameters (:func:`command`), an options object back into the
command line that produces it (:func:`argv`), and a command line into options
(:func:`parse`), so ``sig quickstart`` prints exactly what it runs and tests can check it.

A field's command-line specifics, when its name, type and default do not say them, are given
by a :class:`sigcli.options.Cli` marker in its ``Annotated`` type. A shared field type made
optional (``DataPath | None``) keeps its help and marker.
"""

from __future__ import annotations

import inspect
import shlex
import types
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Optional, TypeVar, Union

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sigcli.options import Cli, build

M = TypeVar("M", bound=BaseModel)


def flag(name: str, cli: Cli | None = None) -> str:
    """The option spelling of a field: ``save_path`` → ``--save-path``, unless its :class:`Cli` names one."""
    return cli.flag if cli is not None and cli.flag else "--" + name.replace("_", "-")


@dataclass
class _Param:
    """One field as a command-line parameter: its Typer annotation and how to read it back."""

    name: str
    field: FieldInfo
    cli: Cli
    annotation: Any
    default: Any
    to_model: Callable[[Any], Any]


def command(model: type[M], run: Callable[[M], Any], *, help: str | None = None) -> Callable[..., Any]:
    """A Typer command function whose parameters are ``model``'s fields; it validates and calls ``run``."""
    params = [_param(model, name, field) for name, field in model.model_fields.items()]
    params = [p for p in params if not p.cli.skip]

    def main(**values: Any) -> Any:
        return run(build(model, **{p.name: p.to_model(values[p.name]) for p in params}))

    main.__signature__ = inspect.Signature([
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default, annotation=p.annotation)
        for p in params])
    main.__annotations__ = {p.name: p.annotation for p in params}
    main.__doc__ = help or model.__doc__
    main.__name__ = model.__name__
    main.options_model = model   # what `sig quickstart` checks its printed commands against
    return main


def argv(options: BaseModel) -> list[str]:
    """The command-line words that give ``options`` (fields left at their default are omitted)."""
    words: list[str] = []
    positional: list[str] = []
    for name, field in type(options).model_fields.items():
        cli = _cli(field)
        value = getattr(options, name)
        if cli.skip or (not field.is_required() and _same(value, field.get_default(call_default_factory=True))):
            continue
        if cli.argument:
            positional += [_word(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        elif _base(field.annotation)[0] is bool:
            words.append(flag(name, cli) if value else "--no-" + flag(name, cli)[2:])
        elif value is None:
            raise ValueError(f"{name}=None cannot be written on a command line unless it is the default")
        elif cli.text is not None:
            words += [flag(name, cli), cli.text(value)]
        elif isinstance(value, list):
            for item in value:
                words += [flag(name, cli), _word(item)]
        elif isinstance(value, dict):
            for key, item in value.items():
                words += [flag(name, cli), f"{key}={_word(item)}"]
        elif isinstance(value, tuple):
            words += [flag(name, cli), *(_word(v) for v in value)]
        else:
            words += [flag(name, cli), _word(value)]
    return words + (["--", *positional] if any(p.startswith("-") for p in positional) else positional)


def command_line(name: str, options: BaseModel) -> str:
    """``sig NAME ...``: the shell command that runs ``options``."""
    return shlex.join(["sig", *name.split(), *argv(options)])


def parse(model: type[M], words: list[str]) -> M:
    """The options a command line gives, through the same Typer command users run."""
    captured: list[M] = []
    app = typer.Typer(add_completion=False)
    app.command()(command(model, captured.append))
    typer.main.get_command(app).main(list(words), standalone_mode=False)
    return captured[0]


def _param(model: type[BaseModel], name: str, field: FieldInfo) -> _Param:
    cli = _cli(field)
    base, optional = _base(field.annotation)
    to_model: Callable[[Any], Any] = lambda value: value
    if cli.text is not None:
        base = str    # the model parses the text
    elif typing.get_origin(base) is Literal:
        base = Enum(f"{model.__name__}_{name}", {str(v): v for v in typing.get_args(base)}, type=str)
        to_model = lambda value: value.value if isinstance(value, Enum) else value
    elif typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        base = list[item]
        to_model = lambda value: list(value) if value is not None else value
    elif typing.get_origin(base) is dict:   # a repeated KEY=VALUE option; the model parses the texts
        base = list[str]
        to_model = lambda value: list(value) if value is not None else value
    elif typing.get_origin(base) is tuple:   # Typer reads plain item types; the model checks the rest
        base = tuple[tuple(_base(item)[0] for item in typing.get_args(base))]
    annotation_type = Optional[base] if optional else base
    default = ... if field.is_required() else field.get_default(call_default_factory=True)
    if cli.text is not None and default not in (None, ...):
        default = cli.text(default)
    if isinstance(base, type) and issubclass(base, Enum) and default not in (None, ...):
        default = base(default)
    if typing.get_origin(base) is list and default in ([], {}):
        default = None   # Typer's multiple options default to empty
        annotation_type = Optional[base]
        inner = to_model
        to_model = lambda value: inner(value) or []
    help_text = field.description or next((m.description for m in _metadata(field) if isinstance(m, FieldInfo)), None)
    show_default: bool | str = cli.default_text or (default not in (None, ...))
    if cli.argument:
        info = typer.Argument(help=help_text, show_default=show_default, hidden=cli.hidden, metavar=cli.metavar)
    else:
        names = [flag(name, cli)]
        if base is bool and default is True:
            names = [f"{names[0]}/--no-{names[0][2:]}"]
        info = typer.Option(*names, *cli.names, help=help_text, show_default=show_default, hidden=cli.hidden,
                            metavar=cli.metavar)
    return _Param(name, field, cli, Annotated[annotation_type, info], default, to_model)


def _cli(field: FieldInfo) -> Cli:
    return next((m for m in _metadata(field) if isinstance(m, Cli)), Cli())


def _metadata(field: FieldInfo) -> list[Any]:
    """The field's own markers, then those of an ``Annotated`` type it makes optional
    (pydantic applies the latter's validators, but not its help)."""
    inner = _optional_of(field.annotation)
    return [*field.metadata, *(typing.get_args(inner)[1:] if typing.get_origin(inner) is Annotated else ())]


def _optional_of(annotation: Any) -> Any:
    """``X`` of ``X | None`` and ``Optional[X]``; ``None`` for any other type."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _base(annotation: Any) -> tuple[Any, bool]:
    """``X`` and whether ``None`` is allowed, for ``X``, ``X | None`` and ``Optional[X]`` (markers dropped)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    inner = _optional_of(annotation)
    if inner is None:
        return annotation, False
    return (typing.get_args(inner)[0] if typing.get_origin(inner) is Annotated else inner), True


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(default, Enum):
        default = default.value
    if isinstance(value, tuple) and isinstance(default, list) or isinstance(value, list) and isinstance(default, tuple):
        return list(value) == list(default)
    return value == default


def _word(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)

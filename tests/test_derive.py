"""Typer commands derived from options models: parameters, help, and command lines both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import pytest
import typer
from pydantic import Field, PositiveInt, field_validator
from typer.testing import CliRunner

from sigcli.cli.derive import argv, command, command_line, parse
from sigcli.config.common import DataPath, Device, Json, UserRange, Workers
from sigcli.errors import InputError
from sigcli.options import Cli, Options


class Demo(Options):
    """A demo command."""

    data_path: Path = Field(description="Input set.")
    save_path: Annotated[Path | None, Cli("-o")] = Field(None, description="Output file.")
    users: UserRange = None
    exp_users: tuple[int, int] = Field((0, 300), description="Exploitation users.")
    svm_type: Literal["rbf", "linear"] = Field("rbf", description="SVM kernel.")
    lamb: float = Field(0.95, description="Weight.")
    forg: bool = Field(False, description="Also forgeries.")
    nesterov: bool = Field(True, description="Nesterov momentum.")
    device: Device = "auto"
    workers: Workers = None
    as_json: Json = False
    queries: Annotated[list[Path], Cli(argument=True, metavar="QUERY...")] = Field(default_factory=list,
                                                                                   description="Queries.")
    internal: Annotated[int, Cli(skip=True)] = 3


def _run(*args: str) -> tuple[int, str, list[Demo]]:
    got: list[Demo] = []
    app = typer.Typer()
    app.command("demo")(command(Demo, got.append))
    app.command("other")(lambda: None)    # two commands, so "demo" is a subcommand as in `sig`
    result = CliRunner().invoke(app, ["demo", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output, got


def test_fields_become_options_with_their_help_defaults_and_choices():
    code, output, _ = _run("--help")
    assert code == 0
    for text in ("--data-path", "Input set.", "--save-path", "-o", "--svm-type", "rbf|linear", "[default: rbf]",
                 "--nesterov", "--no-nesterov", "--forg", "[default: (all)]", "LAST excluded", "one per CPU core", "QUERY...",
                 "Torch device"):
        assert text in output
    assert "--internal" not in output and "PydanticUndefined" not in output


def test_values_are_validated_into_the_model():
    code, output, got = _run("--data-path", "a.npz", "--svm-type", "linear", "--users", "1", "5", "--forg",
                             "--no-nesterov", "-o", "out.pkl", "--json", "q1.png", "q2.png")
    assert code == 0, output
    (options,) = got
    assert options.svm_type == "linear" and options.users == (1, 5) and options.forg and not options.nesterov
    assert options.save_path == Path("out.pkl") and options.queries == [Path("q1.png"), Path("q2.png")]
    assert options.internal == 3 and options.workers >= 1 and options.as_json


def test_a_bad_choice_or_value_is_refused():
    code, output, got = _run("--data-path", "a.npz", "--svm-type", "poly")
    assert code == 2 and not got and "poly" in output
    with pytest.raises(InputError, match="is not one of auto"):
        Demo(data_path="a", device="tpu")
    with pytest.raises(InputError, match="empty or negative"):
        Demo(data_path="a", users=(5, 1))


def test_a_command_line_gives_back_the_same_options():
    options = Demo(data_path="a b.npz", save_path="o.pkl", users=(2, 9), svm_type="linear", lamb=0.1 + 0.2,
                   forg=True, nesterov=False, device="cpu", workers=3, as_json=True, queries=["-odd.png", "q.png"])
    assert parse(Demo, argv(options)) == options
    line = command_line("demo", options)
    assert line.startswith("sig demo --data-path 'a b.npz'") and "--lamb 0.30000000000000004" in line
    assert "--exp-users" not in line and " --json " in line    # defaults are left out


def test_defaults_give_an_empty_command_line_besides_required_fields():
    assert argv(Demo(data_path="x", workers=2)) == ["--data-path", "x", "--workers", "2"]


class Shared(Options):
    """Shared field types made optional, a number read as text, a tuple of constrained items."""

    data_path: Optional[DataPath] = None
    gamma: Annotated[float, Cli(text=lambda value: f"1/{round(1 / value)}")] = Field(
        0.25, description="A fraction.")
    size: Optional[tuple[PositiveInt, PositiveInt]] = Field(None, description="Height and width.")

    @field_validator("gamma", mode="before")
    @classmethod
    def _fraction(cls, value: object) -> object:
        return 1 / float(value[2:]) if isinstance(value, str) and value.startswith("1/") else value


def test_an_optional_shared_field_keeps_its_help_and_spellings():
    result = CliRunner().invoke(_app(Shared), ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--data-path,--dataset-path" in result.output and "a .npz file or a memory-mapped folder" in result.output
    assert parse(Shared, ["--dataset-path", "d.npz"]).data_path == Path("d.npz")
    assert parse(Shared, []).data_path is None


def test_a_text_field_is_parsed_by_the_model_and_written_back_as_text():
    result = CliRunner().invoke(_app(Shared), ["--help"], env={"COLUMNS": "200"})
    assert "[default: 1/4]" in result.output
    options = parse(Shared, ["--gamma", "1/8", "--size", "3", "5"])
    assert options.gamma == 0.125 and options.size == (3, 5)
    assert argv(options) == ["--gamma", "1/8", "--size", "3", "5"] and parse(Shared, argv(options)) == options
    with pytest.raises(InputError, match="--size"):
        parse(Shared, ["--size", "0", "5"])


def _app(model: type[Options]) -> typer.Typer:
    app = typer.Typer()
    app.command()(command(model, lambda options: None))
    return app

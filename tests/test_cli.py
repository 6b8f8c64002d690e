"""The root command: versions, help, one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
import typer
from typer.testing import CliRunner

import sigcli
from sigcli import __version__
from sigcli.cli import app as app_module
from sigcli.errors import InputError

runner = CliRunner()   # for the throwaway apps below; `sig` itself runs through the cli fixture
COMMAND_NAMES = [name for name, _ in app_module.COMMANDS]
HEAVY_LIBRARIES = ("torch", "sklearn", "scipy")


def test_version_names_torch_and_numpy(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert f"sig {__version__}" in result.output
    assert torch.__version__ in result.output and numpy.__version__ in result.output


def test_help_lists_every_registered_command(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name, _ in app_module.COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_has_help_with_its_usage_line(cli, name):
    result = cli(name, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: sig {name} [OPTIONS]" in result.stdout


# Runs `sig ARGS` in a fresh interpreter, its help swallowed, and prints the heavy libraries loaded.
_IMPORTS_AFTER = f"""
import contextlib, io, sys
from sigcli.cli.app import app
with contextlib.redirect_stdout(io.StringIO()):
    try:
        app(sys.argv[1:])
    except SystemExit as exit:
        assert exit.code in (0, None), exit.code
print(" ".join(name for name in {HEAVY_LIBRARIES!r} if name in sys.modules))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], *([name, "--help"] for name in COMMAND_NAMES)],
                         ids=" ".join)
def test_help_and_version_import_no_heavy_library(args):
    """Help must stay fast: command modules defer torch, scikit-learn and scipy to the run itself."""
    done = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, *args], capture_output=True, text=True,
                          cwd=Path(sigcli.__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"sig {' '.join(args)} imported {done.stdout.strip()}"


def test_python_dash_m_runs_the_same_app():
    done = subprocess.run([sys.executable, "-m", "sigcli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and f"sig {__version__}" in done.stdout


def _failing_app() -> typer.Typer:
    """A throwaway app using the root's group, with one command that raises a library error."""
    app = typer.Typer(cls=app_module._Group)
    app.callback()(app_module.root)

    @app.command()
    def boom() -> None:
        raise InputError("the thing [a] is broken", "pass --fixed")

    return app


def test_library_error_is_one_line_and_exit_2():
    result = runner.invoke(_failing_app(), ["boom"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: the thing [a] is broken (pass --fixed)"]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback():
    result = runner.invoke(_failing_app(), ["--debug", "boom"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)


def test_paths_with_brackets_are_printed_as_they_are(tmp_path, cli):
    """Paths are shown literally, not read as rich markup (which crashed on '[/b]' and hid '[b]')."""
    raw, out = tmp_path / "raw[/b]", tmp_path / "set[b].npz"
    made = cli("synth", "--layout", "mcyt", "--save-path", raw, "--users", 1, "--genuine", 2, "--skilled", 0,
               env={"COLUMNS": "400"})
    assert made.exit_code == 0, made.output
    assert f"in {raw} (" in made.stdout and f"--raw-path {raw} " in made.stderr
    done = cli("preprocess", "--dataset", "mcyt", "--raw-path", raw, "--save-path", out, "--workers", 1,
               env={"COLUMNS": "400"})
    assert done.exit_code == 0, done.output
    assert f"mcyt → {out}" in done.stdout and str(out.with_suffix(".json")) in done.stdout

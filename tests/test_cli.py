"""The root command: versions, help, one-line errors with exit code 2."""

import subprocess
import sys

import numpy
import torch
import typer
from typer.testing import CliRunner

from sigcli import __version__
from sigcli.cli import app as app_module
from sigcli.errors import InputError

runner = CliRunner()


def test_version_names_torch_and_numpy():
    result = runner.invoke(app_module.app, ["--version"])
    assert result.exit_code == 0
    assert f"sig {__version__}" in result.output
    assert torch.__version__ in result.output and numpy.__version__ in result.output


def test_help_lists_every_registered_command():
    result = runner.invoke(app_module.app, ["--help"])
    assert result.exit_code == 0
    for name, _ in app_module.COMMANDS:
        assert name in result.output


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
    made = cli("synth", "--layout", "mcyt", "--out", raw, "--users", 1, "--genuine", 2, "--skilled", 0,
               env={"COLUMNS": "400"})
    assert made.exit_code == 0, made.output
    assert f"in {raw} (" in made.stdout and f"--path {raw} " in made.stderr
    done = cli("preprocess", "--dataset", "mcyt", "--raw-path", raw, "--save-path", out, "--workers", 1,
               env={"COLUMNS": "400"})
    assert done.exit_code == 0, done.output
    assert f"mcyt → {out}" in done.stdout and str(out.with_suffix(".json")) in done.stdout

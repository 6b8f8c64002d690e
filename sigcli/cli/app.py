"""Root of the `sig` command: assembles the subcommands and turns errors into one line.

Every user mistake raised by the library is a :class:`sigcli.errors.SigcliError`; here it
becomes ``error: <what is wrong> (<how to fix it>)`` on stderr and exit code 2. ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import importlib
import inspect
import signal
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.models import CommandInfo

from sigcli import __version__
from sigcli.cli import console
from sigcli.errors import SigcliError

# Subcommands, in the order `sig --help` lists them: (command name, module under sigcli.cli).
COMMANDS: list[tuple[str, str]] = [
    ("quickstart", "quickstart"),
    ("datasets", "datasets"),
    ("synth", "synth"),
    ("preprocess", "preprocess"),
    ("invert", "invert"),
    ("download", "download"),
    ("train", "train"),
    ("distill", "distill"),
    ("meta", "meta"),
    ("extract", "extract"),
    ("attack", "attack"),
    ("wd", "wd"),
    ("wi", "wi"),
    ("report", "report"),
    ("verify", "verify"),
    ("info", "info"),
]

_state = {"debug": False}
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _Group(TyperGroup):
    """Load each subcommand's module only when it is asked for; catch library errors in one place.

    Command modules import only typer, rich and the options models: the library (torch,
    scikit-learn) is imported when a command runs, so ``--help`` and ``--version`` start fast.
    """

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [name for name, _ in COMMANDS] + sorted(set(self.commands) - set(dict(COMMANDS)))

    def get_command(self, ctx: typer.Context, name: str):
        module = dict(COMMANDS).get(name)
        if module is None:
            return super().get_command(ctx, name)
        cli = importlib.import_module(f"sigcli.cli.{module}")
        info = CommandInfo(name, callback=cli.main, help=_reflow(cli.__doc__),
                           context_settings=CONTEXT_SETTINGS)
        return typer.main.get_command_from_info(info, pretty_exceptions_short=False, rich_markup_mode="rich")

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SigcliError as exc:
            if _state["debug"]:
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            console.err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None


def fail(message: str) -> None:
    """Print one error line and exit with code 2."""
    console.err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


app = typer.Typer(
    cls=_Group,
    name="sig",
    help="Offline handwritten signature verification: preprocess datasets, train SigNet, "
         "distill, and evaluate with writer-dependent and writer-independent classifiers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings=CONTEXT_SETTINGS,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from sigcli.options import environment

        versions = environment()   # read from the installed metadata: nothing heavy is imported
        console.out.print(f"sig {__version__} (torch {versions['torch']}, numpy {versions['numpy']})")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the versions of sig, torch and numpy.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    _state["debug"] = debug
    console.setup_logging(debug)


def _reflow(doc: str) -> str:
    """A module docstring as help text: each paragraph on one line, so rich wraps it evenly."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _terminate(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so atomic writes remove their temporary files. Only this
    process: worker processes restore the default action (see :mod:`sigcli.parallel`)."""
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    app()

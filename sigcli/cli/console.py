"""Rendering for the CLI: consoles, progress bars and one-line messages.

Tables and results go to stdout; progress, warnings and errors to stderr, so output stays
pipeable (``sig datasets --json | jq``). Strings printed through rich are markup: anything
that comes from outside (a path, a file's contents, a plugin's message) goes through
:func:`literal` first, or ``[/b]`` in a file name would crash the print and ``[b]`` vanish.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

out = Console()
err = Console(stderr=True)


class RichReporter:
    """A :class:`sigcli.progress.Reporter` drawing one rich progress bar per long step."""

    def __init__(self, console: Console = err):
        self.console = console

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"), console=self.console, transient=False)
        with progress:
            task_id = progress.add_task(literal(description), total=total, info="")

            class _Task:
                def advance(self, n: int = 1, **fields: Any) -> None:
                    info = literal("  ".join(f"{k}={_fmt(v)}" for k, v in fields.items()))
                    progress.update(task_id, advance=n, info=info)

            yield _Task()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def setup_logging(debug: bool) -> None:
    """Library warnings (logger ``sigcli``) are shown on stderr, one line each."""
    logger = logging.getLogger("sigcli")
    logger.handlers.clear()
    handler = RichHandler(console=err, show_time=False, show_path=debug, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def facts_table(title: str, justify: str = "left") -> Table:
    """A headerless two-column table of what a command did: a bold name, its value."""
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify=justify)
    return table


def literal(value: Any) -> str:
    """``value`` as text to put in rich markup (f-strings, table cells, titles): shown as it is."""
    return escape(str(value))


def step(command: str) -> None:
    """Print the equivalent `sig` command of a stage, so users learn the real commands."""
    err.print(f"[dim]$[/dim] [cyan]{literal(command)}[/cyan]", highlight=False)


def metric_cell(name: str, value: Any) -> str:
    """A training metric for a table: accuracies and scores in %, the learning rate short."""
    if value is None:
        return ""
    if name.endswith(("acc", "score")):
        return f"{100 * value:.1f}%"
    if name == "lr":
        return f"{value:.0e}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)

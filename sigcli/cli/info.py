"""Describe a file sig made or reads: a signature set, a feature file or a checkpoint.

Example: sig info data/gpds.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sigcli.cli import console
from sigcli.info import describe


def main(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to describe.")],
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read a pickled user_mapping "
                                                                      "(trusted files only).")] = False,
) -> None:
    for path in paths:
        console.out.print(f"[bold]{console.literal(path)}[/bold]: {console.literal(describe(path, allow_pickle))}",
                          highlight=False, soft_wrap=True)

"""Download the published models and data into the cache (what distill and wd use by default).

Artefacts: signet-distill (teacher for distillation), inverted-data (its inverted data),
signet and signet-f (Hafemann et al.). Google Drive's confirmation and quota pages are
recognised, broken transfers resume, and every file is verified before it takes its final
name. The cache is $SIGCLI_HOME, else the user cache folder; `sig download --list` shows it.
Without network, the error line says where to save a file downloaded by hand.

Example: sig download signet-distill inverted-data
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.table import Table

from sigcli import download as library
from sigcli.cli import console
from sigcli.errors import DownloadError, InputError


class DownloadReporter:
    """A :class:`sigcli.progress.Reporter` whose bars count bytes: size, speed and time left."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(), console=console.err)
        with progress:
            task_id = progress.add_task(description, total=total)

            class _Task:
                def advance(self, n: int = 1, **fields: Any) -> None:
                    progress.update(task_id, advance=n)

            yield _Task()


def main(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME", help="Artefacts to fetch (see --list).", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Fetch every artefact.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Show each artefact: cached?, size, path.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --list: print JSON instead of a table.")] = False,
    dest: Annotated[Path | None, typer.Option(help="Save into this folder instead of the cache.",
                                              file_okay=False, show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the file is already there.")] = False,
    url: Annotated[str | None, typer.Option(help="Fetch from this URL (a mirror) instead of Google Drive; "
                                                 "one NAME only.", show_default=False)] = None,
) -> None:
    names = names or []
    if list_:
        if names or all_:
            raise InputError("--list shows every artefact; give no NAME and no --all with it")
        return _show(library.list_artefacts(), json_)
    if json_:
        raise InputError("--json goes with --list")
    if all_ == bool(names):
        raise InputError("name the artefacts to fetch or pass --all (not both)",
                         f"known: {', '.join(library.REGISTRY)}")
    if url and (all_ or len(names) != 1):
        raise InputError("--url replaces the link of one artefact: give exactly one NAME with it")
    for name in names:
        library.get_artefact(name)  # unknown names fail before anything is fetched

    failures: list[DownloadError] = []
    for name in list(library.REGISTRY) if all_ else names:
        present = library.artefact_path(name, dest).exists() and not force
        try:
            path = library.download(name, dest=dest, url=url, force=force, reporter=DownloadReporter())
        except DownloadError as exc:
            failures.append(exc)
            continue
        state = "already there, verified" if present else "downloaded, verified"
        console.out.print(f"{name}: {path} ({decimal(path.stat().st_size)}, {state})", markup=False,
                          highlight=False, soft_wrap=True)
    for exc in failures[:-1]:
        console.err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if failures:
        raise failures[-1]  # the root prints it and exits with code 2


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        console.out.print(json.dumps(rows, indent=2, ensure_ascii=False), markup=False, highlight=False,
                          soft_wrap=True)
        return
    table = Table("name", "description", "cached", "size")
    table.add_column("path", overflow="fold")
    for row in rows:
        size = decimal(row["size"]) if row["size"] is not None else "unknown"
        table.add_row(row["name"], escape(row["description"]), "yes" if row["cached"] else "no", size,
                      escape(row["path"]))
    console.out.print(table)
    console.err.print(f"[dim]cache: {escape(str(library.cache_dir()))} (set SIGCLI_HOME to move it)[/dim]")

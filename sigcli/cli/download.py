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
from typing import Any, Iterator

from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.download import DownloadOptions
from sigcli.errors import DownloadError


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


def run(options: DownloadOptions) -> None:
    from sigcli import artefacts, download as library

    if options.show_list:
        return _show(artefacts.list_artefacts(), artefacts.cache_dir(), options.as_json)
    for name in options.names:
        artefacts.get_artefact(name)  # unknown names fail before anything is fetched

    fetched: list[dict[str, Any]] = []
    failures: list[DownloadError] = []
    for name in list(artefacts.REGISTRY) if options.fetch_all else options.names:
        present = artefacts.artefact_path(name, options.save_path).exists() and not options.overwrite
        try:
            path = library.download(name, folder=options.save_path, url=options.url, overwrite=options.overwrite,
                                    reporter=DownloadReporter())
        except DownloadError as exc:
            failures.append(exc)
            continue
        fetched.append({"name": name, "path": str(path), "size": path.stat().st_size,
                        "state": "already there" if present else "downloaded"})
        if not options.as_json:
            console.out.print(f"{name}: {path} ({decimal(fetched[-1]['size'])}, {fetched[-1]['state']}, verified)",
                              markup=False, highlight=False, soft_wrap=True)
    if options.as_json:
        _print_json(fetched)
    for exc in failures[:-1]:
        console.err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if failures:
        raise failures[-1]  # the root prints it and exits with code 2


def _show(rows: list[dict[str, Any]], cache: Any, as_json: bool) -> None:
    if as_json:
        return _print_json(rows)
    table = Table("name", "description", "cached", "size")
    table.add_column("path", overflow="fold")
    for row in rows:
        size = decimal(row["size"]) if row["size"] is not None else "unknown"
        table.add_row(row["name"], escape(row["description"]), "yes" if row["cached"] else "no", size,
                      escape(row["path"]))
    console.out.print(table)
    console.err.print(f"[dim]cache: {escape(str(cache))} (set SIGCLI_HOME to move it)[/dim]")


def _print_json(rows: list[dict[str, Any]]) -> None:
    console.out.print(json.dumps(rows, indent=2, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)


main = command(DownloadOptions, run)

"""Preprocess a raw signature dataset into a signature set (.npz file or memory-mapped folder).

Each signature is centred on the dataset's canvas, its background removed, inverted (ink
bright on 0) and resized to --image-size, byte for byte as the reference sigver does.
Users come in the loader's order, each with its genuine signatures, then skilled and
simple forgeries. Unreadable, blank or oversized (over 50 M pixels) images are skipped and
listed; --dedupe also leaves out byte-identical copies of a writer's files (kept by
default). A --save-path ending in '/' (or --format folder) writes the folder format, whose
memory stays flat however large the set. The resolved options are saved beside it, with
the loader's distribution and version: NAME.json for NAME.npz or NAME/.

Example: sig preprocess --dataset cedar --path ~/data/CEDAR --save-path cedar.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sigcli.cli import console
from sigcli.options import build, default
from sigcli.preprocess import OutputFormat, PreprocessOptions, PreprocessResult, process_dataset

_O = PreprocessOptions
_LISTED_SKIPS = 20


def main(
    dataset: Annotated[str, typer.Option(help="Dataset loader name (see `sig datasets`), e.g. gpds, cedar.")],
    path: Annotated[Path, typer.Option(help="Root folder of the raw dataset.")],
    save_path: Annotated[str, typer.Option(
        help="Output: a .npz file, or a folder of .npy files when it ends with '/'.")],
    users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="Only users at positions FIRST..LAST-1 of the dataset's sorted user list. \\[default: all]")]
        = default(_O, "users"),
    image_size: Annotated[tuple[int, int], typer.Option(help="Height and width of the saved images.")]
        = default(_O, "image_size"),
    workers: Annotated[Optional[int], typer.Option(
        help="Worker processes; the output is the same for any number. \\[default: one per CPU]")]
        = default(_O, "workers"),
    format: Annotated[OutputFormat, typer.Option(
        help="npz, folder, or auto (folder when --save-path ends with '/').")] = default(_O, "format"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
        = default(_O, "overwrite"),
    dedupe: Annotated[bool, typer.Option("--dedupe", help=(
        "Leave out files byte-identical to an earlier file of the same writer (off by default: "
        "copies are kept, and reported for datasets known to hold them)."))] = default(_O, "dedupe"),
    loader_option: Annotated[Optional[list[str]], typer.Option(
        "--loader-option", metavar="KEY=VALUE",
        help="An option of the dataset loader, e.g. canvas=952x1360 for 'folder'; repeatable. "
             "`sig datasets NAME` lists a loader's options.")] = None,
) -> None:
    options = build(PreprocessOptions, dataset=dataset, path=path, save_path=save_path, users=users,
                    image_size=image_size, workers=workers, format=format, overwrite=overwrite, dedupe=dedupe,
                    loader_options=loader_option or {})
    result = process_dataset(options, console.RichReporter())
    console.out.print(summary_table(result))
    if result.skipped:
        console.out.print(skipped_table(result))


def summary_table(result: PreprocessResult) -> Table:
    table = Table(title=console.literal(f"{result.dataset} → {result.path}"), show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    first, last = result.users[0], result.users[-1]
    table.add_row("users", f"{len(result.users)} (ids {first}..{last})")
    for kind, count in result.counts.items():
        table.add_row(kind, str(count))
    table.add_row("skipped", str(len(result.skipped)), style="yellow" if result.skipped else None)
    table.add_row("cropped to canvas", str(len(result.cropped)), style="yellow" if result.cropped else None)
    table.add_row("images", f"{result.images} × {result.image_size[0]}×{result.image_size[1]} uint8")
    table.add_row("format", result.format.value)
    rate = result.images / result.seconds if result.seconds > 0 else 0.0
    table.add_row("time", f"{result.seconds:.1f} s ({rate:.1f} images/s, {result.workers} workers)")
    table.add_row("options", console.literal(result.options_path))
    return table


def skipped_table(result: PreprocessResult) -> Table:
    table = Table(title=f"skipped images ({len(result.skipped)})")
    table.add_column("file")
    table.add_column("reason")
    for file, reason in result.skipped[:_LISTED_SKIPS]:
        table.add_row(console.literal(file), console.literal(reason))
    if len(result.skipped) > _LISTED_SKIPS:
        table.add_row(f"... {len(result.skipped) - _LISTED_SKIPS} more", console.literal(f"see {result.options_path}"))
    return table

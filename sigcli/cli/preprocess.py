"""Preprocess a raw signature dataset into a signature set (.npz file or memory-mapped folder).

Each signature is centred on the dataset's canvas, its background removed, inverted (ink
bright on 0) and resized to --image-size, byte for byte as the reference sigver does.
Users come in the loader's order, each with its genuine signatures, then skilled and
simple forgeries. Unreadable, blank or oversized (over 50 M pixels) images are skipped and
listed; --dedupe also leaves out byte-identical copies of a writer's files (kept by
default). A --save-path ending in '/' (or --format folder) writes the folder format, whose
memory stays flat however large the set. The resolved options are saved beside it, with
the loader's distribution and version: NAME.json for NAME.npz or NAME/.

Example: sig preprocess --dataset cedar --raw-path ~/data/CEDAR --save-path cedar.npz
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.preprocess import PreprocessOptions

if TYPE_CHECKING:
    from sigcli.preprocess import PreprocessResult

_LISTED_SKIPS = 20


def run(options: PreprocessOptions) -> None:
    from sigcli.preprocess import process_dataset

    result = process_dataset(options, console.RichReporter())
    if options.as_json:
        summary = {**result.as_dict(), "options_path": str(result.options_path)}
        console.out.print(json.dumps(summary, indent=2, ensure_ascii=False), markup=False, highlight=False,
                          soft_wrap=True)
        return
    console.out.print(summary_table(result))
    if result.skipped:
        console.out.print(skipped_table(result))


def summary_table(result: PreprocessResult) -> Table:
    table = console.facts_table(console.literal(f"{result.dataset} → {result.path}"), justify="right")
    first, last = result.users[0], result.users[-1]
    table.add_row("users", f"{len(result.users)} (ids {first}..{last})")
    for kind, count in result.counts.items():
        table.add_row(kind, str(count))
    table.add_row("skipped", str(len(result.skipped)), style="yellow" if result.skipped else None)
    table.add_row("cropped to canvas", str(len(result.cropped)), style="yellow" if result.cropped else None)
    table.add_row("images", f"{result.images} × {result.image_size[0]}×{result.image_size[1]} uint8")
    table.add_row("format", result.format)
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


main = command(PreprocessOptions, run)

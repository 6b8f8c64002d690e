"""Write synthetic signatures in a real dataset's layout and file format.

Each writer has a persistent style; genuine samples vary naturally around it; skilled
forgeries copy it with an imitator's errors (proportions off, tremor, slower and thicker
strokes); simple forgeries (brazilian) are another hand writing a name of the same length.
The dataset's loader reads the result, so it stands in for a licensed set in tests and
tutorials. The same --seed gives the same files, whatever --workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sigcli.cli import console
from sigcli.data.synth import Layout, SynthOptions, synthesize
from sigcli.options import default


def main(
    layout: Annotated[Layout, typer.Option(help="Dataset whose layout, file names and format to write.")],
    out: Annotated[Path, typer.Option(help="Folder to write (a new or empty one).")],
    users: Annotated[int, typer.Option(help="Number of writers.")] = default(SynthOptions, "users"),
    genuine: Annotated[int | None, typer.Option(
        help="Genuine signatures per user (default: the dataset's, e.g. 24 for gpds).")] = None,
    skilled: Annotated[int | None, typer.Option(
        help="Skilled forgeries per user (default: the dataset's, e.g. 30 for gpds).")] = None,
    simple: Annotated[int | None, typer.Option(
        help="Simple forgeries per user, brazilian only (default: 10).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = default(SynthOptions, "seed"),
    first_user: Annotated[int | None, typer.Option(
        help="Number of the first writer (default: the dataset's first, 1; 0 for mcyt).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = default(SynthOptions, "workers"),
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an --out folder that 'sig synth' wrote before.")] = False,
) -> None:
    result = synthesize(layout, out, users=users, genuine=genuine, skilled=skilled, simple=simple, seed=seed,
                        first_user=first_user, workers=workers, reporter=console.RichReporter(), overwrite=overwrite)
    console.out.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
    console.err.print(f"[dim]next:[/dim] sig preprocess --dataset {result.layout} --path {console.literal(result.out)} "
                      f"--save-path {result.layout}.npz", highlight=False, soft_wrap=True)

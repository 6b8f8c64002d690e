"""Run the whole method on built-in synthetic data: the README's main job.

Synthesises a GPDS-layout and an MCYT-layout set, preprocesses them, trains a SigNet
teacher, distils a student that also learns the MCYT-layout writers, evaluates both with
writer-dependent (wd) and writer-independent (wi) classifiers on held-out writers, and
compares them in a report with DET/ROC plots. Each stage shows the `sig` command it stands
for; running again reuses finished stages. --fast takes under 3 minutes on 2 CPU cores.

Example: sig quickstart --fast --workdir sig-quickstart
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sigcli.cli import console
from sigcli.cli.report import comparison_table
from sigcli.options import build, default
from sigcli.quickstart import QuickstartOptions, Stage, run_quickstart

_O = QuickstartOptions


def main(
    workdir: Annotated[Path, typer.Option(help="Folder for every artefact (data, checkpoints, results).")]
        = default(_O, "workdir"),
    fast: Annotated[bool, typer.Option("--fast", help="A smaller run: under 3 minutes on 2 CPU cores.")]
        = default(_O, "fast"),
    seed: Annotated[int, typer.Option(help="Seed of the data, the training and the evaluation.")]
        = default(_O, "seed"),
    workers: Annotated[int, typer.Option(help="Processes for synthesis and preprocessing, and SVM jobs.")]
        = default(_O, "workers"),
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu, cuda or cuda:N.")]
        = default(_O, "device"),
) -> None:
    options = build(QuickstartOptions, workdir=workdir, fast=fast, seed=seed, workers=workers, device=device)

    def announce(stage: Stage, reused: bool) -> None:
        if reused:
            console.err.print(f"[dim]✓ {stage.name}: reusing {console.literal(stage.outputs[0])}[/dim]", highlight=False)
        else:
            console.err.rule(f"[bold]{stage.name}", align="left")
            console.step(stage.command_line)

    result = run_quickstart(options, console.RichReporter(), announce)
    console.out.print(comparison_table(result.rows))
    for row in result.rows:
        m = row["metrics"]
        verdict = ("ok" if m["EER"]["mean"] < 50 and m["FAR_random"]["mean"] <= m["FAR_skilled"]["mean"]
                   else "check: the method did not separate writers")
        console.out.print(f"{row['run']}: skilled EER {m['EER']['mean']:.1f} %, FAR random "
                          f"{m['FAR_random']['mean']:.1f} % ≤ FAR skilled {m['FAR_skilled']['mean']:.1f} % — {verdict}",
                          highlight=False)
    console.out.print(f"plots: {result.plot}   artefacts: {result.workdir}   ({result.seconds:.0f} s)", markup=False,
                      highlight=False)

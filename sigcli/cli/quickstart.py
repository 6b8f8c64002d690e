"""Run the whole method on built-in synthetic data: the README's main job.

Synthesises a GPDS-layout and an MCYT-layout set (other writers), preprocesses them, trains
a SigNet teacher, distils a student that also learns the MCYT-layout writers, and evaluates
teacher, student and an untrained network of the same architecture (the baseline training
must beat) with writer-dependent (wd) and writer-independent (wi) classifiers on held-out
writers, compared in a report with DET/ROC plots. Each stage prints the `sig` command it
runs, exactly: typing the printed commands repeats the run. Running again reuses finished
stages. --fast takes under 3 minutes on 2 CPU cores.

Example: sig quickstart --fast --logdir sig-quickstart
"""

from __future__ import annotations

import json

import numpy as np

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.quickstart import QuickstartOptions


def run(options: QuickstartOptions) -> None:
    from sigcli.cli.report import comparison_table
    from sigcli.quickstart import Stage, run_quickstart

    def announce(stage: Stage, reused: bool) -> None:
        if reused:
            console.err.print(f"[dim]✓ {stage.name}: reusing {console.literal(stage.outputs[0])}[/dim]", highlight=False)
        else:
            console.err.rule(f"[bold]{stage.name}", align="left")
            console.step(stage.command_line)

    result = run_quickstart(options, console.RichReporter(), announce)
    if options.as_json:
        console.out.print_json(json.dumps({"logdir": str(result.logdir), "seconds": round(result.seconds, 1),
                                           "plot": str(result.plot), "reused": result.reused, "runs": result.rows,
                                           "against_untrained": result.against_untrained},
                                          default=str))
        return
    console.out.print(comparison_table(result.rows))
    for row in result.rows:
        m = row["metrics"]
        verdict = ("ok" if m["EER"]["mean"] < 50 and m["FAR_random"]["mean"] <= m["FAR_skilled"]["mean"]
                   else "check: these features do not separate writers")
        console.out.print(f"{row['run']}: skilled EER {m['EER']['mean']:.1f} %, FAR random "
                          f"{m['FAR_random']['mean']:.1f} % ≤ FAR skilled {m['FAR_skilled']['mean']:.1f} % — {verdict}",
                          markup=False, highlight=False)
    for row in result.against_untrained:
        console.out.print(f"{row['protocol']}: {row['network']} {_mean_std(row['eer'])} vs untrained "
                          f"{_mean_std(row['untrained'])} skilled EER — lower in {row['wins']} of {len(row['eer'])} "
                          "folds", markup=False, highlight=False, soft_wrap=True)
    console.out.print(f"plots: {result.plot}   artefacts: {result.logdir}   ({result.seconds:.0f} s)", markup=False,
                      highlight=False)


main = command(QuickstartOptions, run)


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values):.1f} %"

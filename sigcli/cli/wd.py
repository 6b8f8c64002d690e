"""Writer-dependent evaluation: one SVM per exploitation user, its metrics over folds.

Each exploitation user's SVM learns from its training genuines against random forgeries
(genuines of development users); it is then tested on its own genuines, skilled forgeries
and other users' genuines. --test-mode sampled (default) follows Viana et al. 2024, full
follows Hafemann et al. 2017. The features come from a feature file (--features-path) or
are extracted for the exploitation and development users only (--model-path with
--data-path). The same --seed draws the same splits as the reference tools; --workers
changes the speed, never the numbers. --fast-approx (not the reference) fits one scaler per
fold instead of per user: much faster, metrics move slightly.

Example: sig wd --features-path features.npz --exp-users 0 300 --dev-users 300 881 --save-path wd.pkl
"""

from __future__ import annotations

import json
from pathlib import Path

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.cli.report import summary_table
from sigcli.config.evaluation import EvaluationOptions, WDOptions


def run(options: WDOptions) -> None:
    from sigcli.protocols.wd import run_wd

    show_results("wd", run_wd(options, console.RichReporter()), options)


def show_results(name: str, folds: list[dict], options: EvaluationOptions, **outputs: Path | None) -> None:
    """Print where the results went, and their summary: a table, or JSON with ``--json``."""
    from sigcli.results import json_path, summarise

    save_path = options.save_path
    if save_path is not None:
        console.err.print(f"results: {save_path} (summary {json_path(save_path)})", markup=False, highlight=False)
    summary = summarise(folds)
    if options.as_json:
        record = {"command": name, "folds": len(folds), "summary": summary,
                  "save_path": None if save_path is None else str(save_path),
                  **{key: None if path is None else str(path) for key, path in outputs.items()}}
        console.out.print_json(json.dumps(record))
    else:
        console.out.print(summary_table(summary, f"sig {name}: {len(folds)} folds, mean ± std (%)"))
    if save_path is not None:
        console.step(f"sig report {save_path} --plot {Path(save_path).with_suffix('.png')}")


main = command(WDOptions, run)

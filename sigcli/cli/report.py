"""Compare evaluation runs: a row per results file, mean ± std over folds (%).

Reads the results pickles of 'sig wd' / 'sig wi' or of the reference tools, without
running any code they might contain (the JSON summary of sig beside a pickle stands for
it). --plot draws DET and ROC curves (genuine vs skilled forgeries) and every run's score
distributions; it is checked before anything is printed.

Results of 'sig attack --system wd' (their .json) are reported instead as attack success
rates per L2 budget, a row per run and kind of attack; --plot then draws success rate
against budget, a curve per run.

Example: sig report wd.pkl wi.pkl --sort-by EER --format markdown --plot runs.png

Example: sig report plain_attack.json madry_attack.json --plot robustness.png
"""

from __future__ import annotations

import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.report import SUMMARY_METRICS, ReportOptions


def run(options: ReportOptions) -> None:
    from sigcli.adversarial.report import load_attack_runs
    from sigcli.report import check_plot_path, comparison_rows, load_runs, plot_runs, render, sort_rows

    attack_runs = load_attack_runs(options.results)
    if attack_runs is not None:
        report_attacks(attack_runs, options)
        return
    runs = load_runs(options.results)
    if options.plot is not None:
        check_plot_path(options.plot, runs, options.overwrite)
    rows = sort_rows(comparison_rows(runs), options.sort_by)
    if options.as_json:
        console.out.print_json(json.dumps(rows))
    elif options.format == "table":
        console.out.print(comparison_table(rows))
    else:
        console.out.print(render(rows, options.format), end="", markup=False, highlight=False, soft_wrap=True)
    if options.plot is not None:
        console.err.print(f"plot: {plot_runs(runs, options.plot, options.overwrite)}", markup=False, highlight=False)


def report_attacks(runs: list, options: ReportOptions) -> None:
    """Results of 'sig attack --system wd': success rate per budget, and its plot."""
    from sigcli.adversarial.report import (all_budgets, attack_rows, check_attack_plot_path, percent, plot_attacks,
                                           render_attacks)
    from sigcli.errors import InputError

    if options.sort_by not in (None, "run"):
        raise InputError(f"attack results cannot be sorted by {options.sort_by}", "use --sort-by run, or leave it out")
    if options.plot is not None:
        check_attack_plot_path(options.plot, runs, options.overwrite)
    rows = attack_rows(runs)
    if options.sort_by == "run":
        rows.sort(key=lambda row: row["run"])
    budgets = all_budgets(runs)
    if options.as_json:
        console.out.print_json(json.dumps(rows, default=str))
    elif options.format == "table":
        table = Table(title="attack success rate (%) per L2 budget")
        for header in ("run", "attack", "error without attack", *(f"L2 ≤ {b:g}" for b in budgets)):
            table.add_column(header, justify="left" if header in ("run", "attack") else "right",
                             no_wrap=header == "attack")
        for row in rows:
            table.add_row(console.literal(row["run"]), row["attack"], percent(row["clean_error"]),
                          *(percent(row["success_rate"].get(b)) for b in budgets))
        console.out.print(table)
    else:
        console.out.print(render_attacks(rows, budgets, options.format), end="", markup=False, highlight=False,
                          soft_wrap=True)
    if options.plot is not None:
        console.err.print(f"plot: {plot_attacks(runs, options.plot, options.overwrite)}", markup=False,
                          highlight=False)


def comparison_table(rows: list[dict]) -> Table:
    from sigcli.report import mean_std

    table = Table(title="mean ± std over folds (%)")
    table.add_column("run", no_wrap=True)  # names stay whole; the metric columns wrap instead
    for header in ("folds", *SUMMARY_METRICS.values()):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(console.literal(row["run"]), str(row["folds"]), *(mean_std(row["metrics"][k]) for k in SUMMARY_METRICS))
    return table


def summary_table(summary: dict[str, dict[str, float]], title: str) -> Table:
    """One run's metrics (fractions in ``summary``) as mean ± std in percent."""
    from sigcli.report import mean_std

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean ± std (%)", justify="right")
    for key, name in SUMMARY_METRICS.items():
        table.add_row(name, mean_std({k: 100 * v for k, v in summary[key].items()}))
    return table


main = command(ReportOptions, run)

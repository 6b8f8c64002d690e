"""Compare evaluation runs: a row per results file, mean ± std over folds (%).

Reads the results pickles of 'sig wd' / 'sig wi' or of the reference tools, without
running any code they might contain (the JSON summary of sig beside a pickle stands for
it). --plot draws DET and ROC curves (genuine vs skilled forgeries) and every run's score
distributions; it is checked before anything is printed.

Example: sig report wd.pkl wi.pkl --sort-by EER --format markdown --plot runs.png
"""

from __future__ import annotations

import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.report import SUMMARY_METRICS, ReportOptions


def run(options: ReportOptions) -> None:
    from sigcli.report import check_plot_path, comparison_rows, load_runs, plot_runs, render, sort_rows

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

"""Compare evaluation runs: a row per results file, mean ± std over folds (%).

Reads the results pickles of 'sig wd' / 'sig wi' or of the reference tools, without
running any code they might contain. --plot draws DET and ROC curves (genuine vs skilled
forgeries) and every run's score distributions.

Example: sig report wd.pkl wi.pkl --sort-by EER --format markdown --plot runs.png
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sigcli.cli import console
from sigcli.report import FORMATS, SORT_KEYS, comparison_rows, load_runs, mean_std, plot_runs, render, sort_rows
from sigcli.results import SUMMARY_METRICS

Format = Enum("Format", {name: name for name in FORMATS}, type=str)
SortKey = Enum("SortKey", {name: name for name in SORT_KEYS}, type=str)


def main(
    results: Annotated[list[Path], typer.Argument(help="Results pickles (R.pkl) to compare.")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format("table"),
    sort_by: Annotated[Optional[SortKey], typer.Option(
        help="Order rows best first by this metric (or by run name). \\[default: as given]")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        help="Write DET / ROC curves and score distributions to this image (.png, .pdf, .svg).")] = None,
) -> None:
    runs = load_runs(results)
    rows = sort_rows(comparison_rows(runs), sort_by.value if sort_by else None)
    if fmt.value == "table":
        console.out.print(comparison_table(rows))
    else:
        console.out.print(render(rows, fmt.value), end="", markup=False, highlight=False, soft_wrap=True)
    if plot is not None:
        console.err.print(f"plot: {plot_runs(runs, plot)}", markup=False, highlight=False)


def comparison_table(rows: list[dict]) -> Table:
    table = Table(title="mean ± std over folds (%)")
    table.add_column("run", no_wrap=True)  # names stay whole; the metric columns wrap instead
    for header in ("folds", *SUMMARY_METRICS.values()):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(console.literal(row["run"]), str(row["folds"]), *(mean_std(row["metrics"][k]) for k in SUMMARY_METRICS))
    return table


def summary_table(summary: dict[str, dict[str, float]], title: str) -> Table:
    """One run's metrics (fractions in ``summary``) as mean ± std in percent."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean ± std (%)", justify="right")
    for key, name in SUMMARY_METRICS.items():
        table.add_row(name, mean_std({k: 100 * v for k, v in summary[key].items()}))
    return table

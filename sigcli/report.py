"""Compare evaluation runs: results files → rows (mean ± std per metric), text formats, plots.

Any results pickle is accepted, ours or the reference tools', read without running code
(:func:`sigcli.results.load_results`), and so is our JSON summary in its place. That summary,
when present, adds the command and options to the row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sigcli.config.report import SUMMARY_METRICS, ReportOptions, SortKey, check_plot_suffix
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output
from sigcli.metrics import det_points, roc_points
from sigcli.results import PREDICTION_KEYS, json_path, load_results, summarise

log = logging.getLogger(__name__)

SORT_KEYS = typing.get_args(SortKey)
HIGHER_IS_BETTER = {"mean_AUC"}


@dataclass
class Run:
    name: str
    path: Path
    folds: list[dict]
    info: dict = field(default_factory=dict)   # our JSON summary, if any

    def scores(self) -> dict[str, np.ndarray] | None:
        """Genuine, skilled and random scores pooled over folds and users, finite ones only
        (None without predictions, or when a kind has no finite score)."""
        if any(fold.get("predictions") is None for fold in self.folds):
            return None
        pooled = {}
        for key, kind in zip(PREDICTION_KEYS, ("genuine", "random", "skilled")):
            arrays = [np.asarray(a, dtype=np.float64).ravel() for fold in self.folds for a in fold["predictions"][key]]
            scores = np.concatenate(arrays) if arrays else np.empty(0)
            pooled[kind] = scores[np.isfinite(scores)]
        return pooled if all(len(scores) for scores in pooled.values()) else None


def load_runs(paths: list[str | os.PathLike]) -> list[Run]:
    """One :class:`Run` per results file, named by file stem (or parent/stem when stems repeat)."""
    if not paths:
        raise InputError("no results files given", "pass one or more R.pkl of 'sig wd' / 'sig wi'")
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    runs = []
    for path, stem in zip(paths, stems):
        name = f"{path.parent.name}/{stem}" if stems.count(stem) > 1 else stem
        runs.append(Run(name, path, load_results(path), _summary_json(path)))
    return runs


def _summary_json(path: Path) -> dict:
    try:
        info = json.loads(json_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def comparison_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """A row per run: name, command, folds, and ``{metric: {"mean", "std"}}`` in percent."""
    rows = []
    for run in runs:
        summary = summarise(run.folds)
        rows.append({"run": run.name, "command": run.info.get("command", ""), "folds": len(run.folds),
                     "metrics": {key: {"mean": 100 * v["mean"], "std": 100 * v["std"]} for key, v in summary.items()}})
    return rows


def sort_rows(rows: list[dict], by: str | None) -> list[dict]:
    """Best first: ascending error rates, descending AUC; ``run`` sorts by name."""
    if by is None:
        return rows
    if by not in SORT_KEYS:
        raise InputError(f"cannot sort by '{by}'", f"choose one of {', '.join(SORT_KEYS)}")
    if by == "run":
        return sorted(rows, key=lambda row: row["run"])
    sign = -1 if by in HIGHER_IS_BETTER else 1
    return sorted(rows, key=lambda row: sign * row["metrics"][by]["mean"])


def render(rows: list[dict], fmt: str) -> str:
    """Rows as csv or markdown text (``table`` is drawn by the CLI)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["run", "command", "folds", *(f"{k}{s}" for k in SUMMARY_METRICS for s in ("", "_std"))])
        for row in rows:
            writer.writerow([row["run"], row["command"], row["folds"],
                             *(f"{row['metrics'][k][s]:.4f}" for k in SUMMARY_METRICS for s in ("mean", "std"))])
        return buffer.getvalue()
    if fmt == "markdown":
        header = ["run", "folds", *(f"{name} (%)" for name in SUMMARY_METRICS.values())]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        for row in rows:
            cells = [row["run"], str(row["folds"]), *(mean_std(row["metrics"][k]) for k in SUMMARY_METRICS)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    raise InputError(f"unknown format '{fmt}'", "choose csv or markdown")


def mean_std(value: dict[str, float]) -> str:
    return f"{value['mean']:.2f} ± {value['std']:.2f}"


def check_plot_path(path: str | os.PathLike, runs: list[Run], overwrite: bool = False) -> Path:
    """Refuse, before anything is drawn or printed, a plot file that cannot or may not be written,
    or a plot with nothing to draw."""
    path = check_plot_suffix(Path(path))
    if all(run.scores() is None for run in runs):
        raise InputError("none of the results files has predictions to plot",
                         "leave out --plot: the curves need the scores ('predictions') of the folds")
    return check_output(path, overwrite=overwrite, inputs=[run.path for run in runs], flag="--plot")


def plot_runs(runs: list[Run], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """DET and ROC curves (genuine vs skilled) of every run, and each run's score distributions.

    An existing ``path`` is refused unless ``overwrite``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.stats import norm

    path = check_plot_path(path, runs, overwrite)
    fmt = path.suffix.lstrip(".").lower()
    with_scores = [(run, run.scores()) for run in runs]
    missing = [run.name for run, scores in with_scores if scores is None]
    if missing:
        log.warning("no (finite) predictions in %s: left out of the plots", ", ".join(missing))
    with_scores = [(run, scores) for run, scores in with_scores if scores is not None]

    rows = 1 + (len(with_scores) + 1) // 2
    figure = Figure(figsize=(11, 4.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    det, roc = figure.add_subplot(rows, 2, 1), figure.add_subplot(rows, 2, 2)
    ticks = np.array([0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    for run, scores in with_scores:
        far, frr, _ = det_points(scores["genuine"], scores["skilled"])
        det.plot(norm.ppf(np.clip(far, 1e-4, 1 - 1e-4)), norm.ppf(np.clip(frr, 1e-4, 1 - 1e-4)), label=run.name)
        fpr, tpr, _ = roc_points(scores["genuine"], scores["skilled"])
        line, = roc.plot(fpr, tpr, label=f"{run.name} (skilled)")
        fpr, tpr, _ = roc_points(scores["genuine"], scores["random"])
        roc.plot(fpr, tpr, linestyle="--", color=line.get_color(), label=f"{run.name} (random)")
    det.set(xticks=norm.ppf(ticks), yticks=norm.ppf(ticks), xlim=norm.ppf([5e-4, 0.6]), ylim=norm.ppf([5e-4, 0.6]),
            xlabel="FAR (skilled)", ylabel="FRR", title="DET")
    det.set_xticklabels([f"{100 * t:g}%" for t in ticks])
    det.set_yticklabels([f"{100 * t:g}%" for t in ticks])
    roc.set(xlabel="FAR", ylabel="1 - FRR", title="ROC", xlim=(0, 1), ylim=(0, 1))
    for axes in (det, roc):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    for index, (run, scores) in enumerate(with_scores):
        axes = figure.add_subplot(rows, 2, 3 + index)
        every = np.concatenate(list(scores.values()))
        bins = np.linspace(every.min(), every.max(), 50)
        for kind in ("genuine", "skilled", "random"):
            axes.hist(scores[kind], bins=bins, density=True, alpha=0.5, label=kind)
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set(title=f"{run.name}: scores", xlabel="decision value", ylabel="density")
        axes.legend(fontsize="small")
    with atomic_path(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format=fmt, dpi=110)
    return path


def run_report(options: ReportOptions, reporter: Any = None) -> Path | None:
    """``sig report``'s files: the runs read and their plot written (when asked for)."""
    runs = load_runs(options.results)
    return None if options.plot is None else plot_runs(runs, options.plot, options.overwrite)

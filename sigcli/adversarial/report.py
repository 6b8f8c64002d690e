"""``sig report`` of WD attack results (docs/adversarial.md#comparing-models): success rate
against the L2 budget, one row per run and kind of attack, one curve per run.

A results file of ``sig attack --system wd`` is our JSON (docs/adversarial.md#results-of-a-wd-attack);
it is recognised by its ``command`` and ``system`` entries. Runs may sweep different budgets:
the table has a column per budget of any run, empty where a run did not try it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigcli.config.attack import WD_KIND_NAMES
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output


@dataclass
class AttackRun:
    name: str
    path: Path
    record: dict

    @property
    def attacks(self) -> dict[str, dict]:
        return self.record["attacks"]


def read_attack_record(path: str | os.PathLike) -> dict | None:
    """The results of ``sig attack --system wd`` in ``path``; ``None`` for any other file."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and record.get("command") == "attack" and record.get("system") == "wd":
        return record
    return None


def load_attack_runs(paths: list[str | os.PathLike]) -> list[AttackRun] | None:
    """One run per file when every file holds WD attack results; ``None`` when none does (they
    are evaluation results); an error for a mixture, which no one table or plot can show."""
    records = [read_attack_record(p) for p in paths]
    if all(record is None for record in records):
        return None
    if any(record is None for record in records):
        other = next(Path(p) for p, record in zip(paths, records) if record is None)
        raise InputError(f"{other} is not a result of 'sig attack --system wd' but other files are",
                         "report attack results and evaluation results separately")
    stems = [Path(p).stem for p in paths]
    runs = []
    for path, stem, record in zip(map(Path, paths), stems, records):
        if not _well_formed(record):
            raise InputError(f"{path} is an attack result without its budgets and success rates",
                             "write it again with 'sig attack --system wd'")
        name = f"{path.parent.name}/{stem}" if stems.count(stem) > 1 else stem
        runs.append(AttackRun(name, path, record))
    return runs


def _well_formed(record: dict) -> bool:
    budgets, attacks = record.get("budgets"), record.get("attacks")
    return (isinstance(budgets, list) and isinstance(attacks, dict) and
            all(isinstance(a, dict) and len(a.get("success_rate", ())) == len(budgets)
                and len(a.get("median_l2", ())) == len(budgets) for a in attacks.values()))


def all_budgets(runs: list[AttackRun]) -> list[float]:
    return sorted({float(b) for run in runs for b in run.record["budgets"]})


def attack_rows(runs: list[AttackRun]) -> list[dict[str, Any]]:
    """A row per run and kind: ``{budget: success rate}`` and ``{budget: median L2}`` (fractions,
    ``None`` where nothing was counted), and the error without attack."""
    rows = []
    for run in runs:
        budgets = [float(b) for b in run.record["budgets"]]
        for kind, attack in run.attacks.items():
            rows.append({"run": run.name, "kind": kind, "attack": WD_KIND_NAMES.get(kind, kind),
                         "clean_error": attack.get("clean_error"),
                         "success_rate": dict(zip(budgets, attack["success_rate"])),
                         "median_l2": dict(zip(budgets, attack["median_l2"]))})
    return rows


def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def render_attacks(rows: list[dict], budgets: list[float], fmt: str) -> str:
    """Success rates (%) per budget as csv or markdown text."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["run", "kind", "clean_error", *(f"success_{b:g}" for b in budgets),
                         *(f"median_l2_{b:g}" for b in budgets)])
        for row in rows:
            writer.writerow([row["run"], row["kind"], percent(row["clean_error"]),
                             *(percent(row["success_rate"].get(b)) for b in budgets),
                             *("" if row["median_l2"].get(b) is None else f"{row['median_l2'][b]:.4g}"
                               for b in budgets)])
        return buffer.getvalue()
    if fmt == "markdown":
        header = ["run", "attack", "error without attack (%)", *(f"L2 ≤ {b:g} (%)" for b in budgets)]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|"]
        for row in rows:
            cells = [row["run"], row["attack"], percent(row["clean_error"]),
                     *(percent(row["success_rate"].get(b)) for b in budgets)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    raise InputError(f"unknown format '{fmt}'", "choose csv or markdown")


def check_attack_plot_path(path: str | os.PathLike, runs: list[AttackRun], overwrite: bool = False) -> Path:
    return check_output(path, overwrite=overwrite, inputs=[run.path for run in runs], flag="--plot")


def plot_attacks(runs: list[AttackRun], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Success rate against the L2 budget: a panel per kind of attack, a curve per run.

    An existing ``path`` is refused unless ``overwrite``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = check_attack_plot_path(path, runs, overwrite)
    kinds = list(dict.fromkeys(kind for run in runs for kind in run.attacks))
    figure = Figure(figsize=(4.2 * len(kinds), 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    for index, kind in enumerate(kinds):
        axes = figure.add_subplot(1, len(kinds), index + 1)
        for run in runs:
            attack = run.attacks.get(kind)
            if attack is None:
                continue
            points = [(float(b), 100 * r) for b, r in zip(run.record["budgets"], attack["success_rate"])
                      if r is not None]
            if points:
                axes.plot(*zip(*sorted(points)), marker="o", label=run.name)
        axes.set(title=WD_KIND_NAMES.get(kind, kind), xlabel="L2 budget", ylabel="success rate (%)", ylim=(-2, 102))
        axes.grid(alpha=0.3)
        if axes.get_lines():
            axes.legend(fontsize="small")
    with atomic_path(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".").lower(), dpi=110)
    return path

"""Run every benchmark (bench/bench_*.py) and print one table.

``python -m bench [--quick] [--only NAME ...] [--json FILE] [--device DEVICE]``. Every ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> list[dict]``; each row is one
measured step: ``step``, ``work`` (its size), ``ours_s`` and ``baseline_s`` (seconds, both
measured in the same run), ``ratio`` and ``ceiling``, optionally ``note`` and any other
figures (kept in ``--json`` only). Unless a row's note says otherwise, ``ratio`` is
``baseline_s / ours_s`` (the speed-up, > 1 when ours is faster) and ``ceiling`` the largest
ratio the step allows where one is measured (the baseline over the bare operation, e.g.
the network alone, or what a second process can gain on this machine).

Each module runs in turn in this process; one that fails is shown as a failed row and the
others still run (exit code 1 at the end). ``--device cuda`` is passed to the modules whose
``run`` takes a ``device``. Run from the repository root.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sigcli.fileio import atomic_path

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"


def available() -> list[str]:
    """Benchmark names (``bench_wd.py`` → ``wd``), alphabetical."""
    return sorted(path.stem[len(PREFIX):] for path in BENCH_DIR.glob(f"{PREFIX}*.py"))


def run_benchmark(name: str, quick: bool, device: str | None = None) -> list[dict]:
    """The rows of one benchmark, each with its ``bench`` name; a failure becomes one row."""
    began = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{PREFIX}{name}")
        kwargs = {"device": device} if device and "device" in inspect.signature(module.run).parameters else {}
        rows = module.run(quick, **kwargs)
    except Exception as exc:  # a broken benchmark must not hide the others' figures
        traceback.print_exc()
        return [{"bench": name, "step": "failed", "work": "", "ours_s": None, "baseline_s": None, "ratio": None,
                 "ceiling": None, "note": f"{type(exc).__name__}: {exc}", "failed": True,
                 "bench_s": round(time.perf_counter() - began, 1)}]
    seconds = round(time.perf_counter() - began, 1)
    return [{"bench": name, **row, "bench_s": seconds} for row in rows]


def table(rows: list[dict], title: str) -> Table:
    result = Table(title=title, caption="ratio: baseline / ours (speed-up) unless noted; ceiling: the largest "
                                        "ratio the step allows, where measured", show_lines=False)
    for column, justify in (("bench", "left"), ("step", "left"), ("work", "left"), ("ours (s)", "right"),
                            ("baseline (s)", "right"), ("ratio", "right"), ("ceiling", "right"), ("note", "left")):
        result.add_column(column, justify=justify, overflow="fold")
    previous = None
    for row in rows:
        name = f"{row['bench']} ({row['bench_s']:.0f} s)" if row["bench"] != previous else ""
        previous = row["bench"]
        style = "red" if row.get("failed") else None
        result.add_row(escape(name), escape(str(row["step"])), escape(str(row.get("work", ""))),
                       _number(row.get("ours_s")), _number(row.get("baseline_s")), _number(row.get("ratio")),
                       _number(row.get("ceiling")), escape(str(row.get("note", ""))), style=style)
    return result


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (minutes instead of tens of minutes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=names,
                        help=f"run only these ({', '.join(names)})")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save every row (all fields) as JSON")
    parser.add_argument("--device", help="cpu, cuda or cuda:N for the benchmarks that take one [default: cpu]")
    args = parser.parse_args(argv)

    rows: list[dict] = []
    began = time.perf_counter()
    for name in args.only or names:
        print(f"# bench {name}", file=sys.stderr, flush=True)
        rows += run_benchmark(name, args.quick, args.device)
    total = time.perf_counter() - began
    title = f"benchmarks{' (--quick)' if args.quick else ''}: {total:.0f} s"
    Console(width=max(160, Console().width)).print(table(rows, title))
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 1 if any(row.get("failed") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up: `sig --help`, `sig --version` and every `sig CMD --help` against importing typer and rich.

Each command runs in a fresh interpreter (as a user's shell would start it), best of a few
runs; the baseline is ``python -c "import typer, rich"`` measured in the same run, so the
ratio says how much `sig` adds to the bare CLI toolkit (1.0: nothing). The note names any
heavy library (torch, scikit-learn, scipy) the command imported, which it should not.

Run: python -m bench.bench_startup [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time

HEAVY = ("torch", "sklearn", "scipy")
COMMANDS = ["quickstart", "datasets", "synth", "preprocess", "invert", "download", "train", "distill", "extract",
            "wd", "wi", "report", "verify", "info"]


def _best(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def _heavy_imports(args: list[str]) -> list[str]:
    """Heavy top-level packages imported while running ``sig ARGS``."""
    code = ("import contextlib, io, sys; from sigcli.cli.app import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: app({args!r})\n    except SystemExit: pass\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in done.stdout.strip().split(",") if name]


def run(quick: bool) -> list[dict]:
    repeats = 2 if quick else 5
    baseline = _best("import typer, rich", repeats)
    cases = [["--help"], ["--version"]] + [[name, "--help"] for name in (COMMANDS[:4] if quick else COMMANDS)]
    rows = []
    for args in cases:
        ours = _best(f"import sys; from sigcli.cli.app import app\ntry: app({args!r})\nexcept SystemExit: pass",
                     repeats)
        heavy = _heavy_imports(args)
        rows.append({"step": "sig " + " ".join(args), "work": f"best of {repeats}", "ours_s": round(ours, 3),
                     "baseline_s": round(baseline, 3), "ratio": round(ours / baseline, 2), "ceiling": None,
                     "note": "ratio: ours / import typer, rich (lower is better)"
                             + (f"; imports {', '.join(heavy)}" if heavy else "")})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['step']:<28} {row['ours_s']:>7.3f} s  baseline {row['baseline_s']:.3f} s  "
              f"ratio {row['ratio']:>5.2f}  {row['note']}")

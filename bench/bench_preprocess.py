"""Benchmark of `sig preprocess` on synthetic GPDS-layout data (952×1360 canvas).

Rows:
- ``preprocess_signature``: our normalisation against the reference's calls (scikit-image
  resize over the whole canvas), same bytes asserted;
- ``process_dataset workers``: 2 worker processes against 1 on the same set, identical
  output asserted (goal: ratio ≥ 1.8 on 2 idle cores). The ceiling is what 2 processes
  gain on a pure-Python loop on this machine at that moment: on shared CPUs it can be far
  below 2, and the ratio is to be read against it;
- ``memory growth``: how much the resident memory of a fresh process grows while it
  preprocesses a small and a 4× larger set, folder format (goal: flat, ratio ≈ 1) and,
  for contrast, .npz (which holds the images in memory until it saves: it grows by
  ``added_images_mb``).

Run: ``python -m bench.bench_preprocess [--quick]``.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sigcli import preprocess
from sigcli.data.loader import read_gray
from sigcli.data.plugins import get_loader
from sigcli.data.sigset import SignatureSet
from sigcli.data.synth import synthesize
from sigcli.options import build
from sigcli.config.common import cpu_count
from sigcli.config.preprocess import PreprocessOptions
from sigcli.preprocess import preprocess_signature, process_dataset

# A fresh process preprocesses one set and prints its resident memory before the run and
# the most it reached during the run (sampled at every progress step, from /proc), so that
# the growth of the run itself shows, undisturbed by the peak of the imports. torch is
# loaded first (save_options records its version).
_MEMORY_RUN = """
import json, os, sys
from contextlib import contextmanager
from sigcli.options import build, environment
from sigcli.config.preprocess import PreprocessOptions
from sigcli.preprocess import process_dataset

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

class PeakReporter:
    peak = 0.0
    @contextmanager
    def task(self, description, total):
        reporter = self
        class Task:
            def advance(self, n=1, **fields):
                reporter.peak = max(reporter.peak, rss_mb())
        yield Task()

environment()
before = rss_mb()
reporter = PeakReporter()
result = process_dataset(build(PreprocessOptions, **json.loads(sys.argv[1])), reporter)
print(json.dumps({"images": result.images, "seconds": result.seconds, "before_mb": before,
                  "peak_mb": reporter.peak}))
"""


def run(quick: bool) -> list[dict]:
    users = 4 if quick else 40
    per_user = {"genuine": 8, "skilled": 4}
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        raw = Path(tmp) / "gpds"
        synthesize("gpds", raw, users=users, **per_user, workers=min(2, cpu_count()))
        canvas = get_loader("gpds").canvas_size
        return [_single_image(raw, canvas, 6 if quick else 30),
                _workers(raw, Path(tmp), users, 1 if quick else 2),
                *_memory(raw, Path(tmp), users)]


def _single_image(raw: Path, canvas: tuple[int, int], count: int) -> dict:
    images = [read_gray(path) for path in sorted(raw.glob("*/c-*.png"))[:count]]
    started = time.perf_counter()
    ours = [preprocess_signature(img, canvas) for img in images]
    ours_s = time.perf_counter() - started
    plain = preprocess._WINDOWED_RESIZE
    preprocess._WINDOWED_RESIZE = False
    try:
        started = time.perf_counter()
        reference = [preprocess_signature(img, canvas) for img in images]
        baseline_s = time.perf_counter() - started
    finally:
        preprocess._WINDOWED_RESIZE = plain
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference)), "bytes differ from the reference path"
    return _row("preprocess_signature", f"{len(images)} images, canvas {canvas[0]}×{canvas[1]}",
                ours_s, baseline_s, None)


def _workers(raw: Path, tmp: Path, users: int, repeats: int) -> dict:
    timings, outputs = {1: [], 2: []}, {}
    for workers in (1, 2) * repeats:  # interleaved, best of each: shared CPUs are noisy
        options = build(PreprocessOptions, dataset="gpds", raw_path=raw, save_path=str(tmp / f"w{workers}.npz"),
                        workers=workers, overwrite=True)
        started = time.perf_counter()
        result = process_dataset(options)
        timings[workers].append(time.perf_counter() - started)
        outputs[workers] = SignatureSet.load(result.path)
    timings = {workers: min(seconds) for workers, seconds in timings.items()}
    same = all(np.array_equal(np.asarray(getattr(outputs[1], key)), np.asarray(getattr(outputs[2], key)))
               for key in ("x", "y", "yforg", "user_mapping", "filenames"))
    assert same, "the output depends on the number of workers"
    images = len(outputs[1])
    row = _row("process_dataset workers 2 vs 1", f"{images} images ({users} users), .npz",
               timings[2], timings[1], _parallel_ceiling())
    row["images_per_s"] = {1: round(images / timings[1], 1), 2: round(images / timings[2], 1)}
    return row


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _parallel_ceiling() -> float:
    """Speed-up of 2 forked processes over 1 on independent pure-Python work, right now."""
    work = [2_000_000] * 8
    started = time.perf_counter()
    for n in work:
        _burn(n)
    serial = time.perf_counter() - started
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_burn, work, chunksize=1)
        parallel = time.perf_counter() - started
    return round(serial / parallel, 2)


def _memory(raw: Path, tmp: Path, users: int) -> list[dict]:
    small = max(1, users // 4)
    rows = []
    for fmt in ("folder", "npz"):
        peaks = {}
        for count in (small, users):
            options = {"dataset": "gpds", "raw_path": str(raw), "save_path": str(tmp / f"m{fmt}{count}"),
                       "users": [0, count], "workers": 1, "format": fmt}
            done = subprocess.run([sys.executable, "-c", _MEMORY_RUN, json.dumps(options)],
                                  capture_output=True, text=True, check=True)
            peaks[count] = json.loads(done.stdout.strip().splitlines()[-1])
        first, last = peaks[small], peaks[users]
        growth = {run["images"]: round(run["peak_mb"] - run["before_mb"], 1) for run in (first, last)}
        rows.append({"step": f"memory growth, {fmt}", "work": f"{first['images']} → {last['images']} images",
                     "ours_s": round(last["seconds"], 3), "baseline_s": None,
                     "ratio": round(growth[last["images"]] / max(growth[first["images"]], 1.0), 2),
                     "ceiling": None, "note": "ratio: memory growth, larger set over smaller (goal ≈ 1)",
                     "growth_mb": growth, "rss_before_mb": round(first["before_mb"], 1),
                     "added_images_mb": round((last["images"] - first["images"]) * 170 * 242 / 2**20, 1)})
    return rows


def _row(step: str, work: str, ours_s: float, baseline_s: float, ceiling: float | None) -> dict:
    return {"step": step, "work": work, "ours_s": round(ours_s, 3), "baseline_s": round(baseline_s, 3),
            "ratio": round(baseline_s / ours_s, 2), "ceiling": ceiling}


def show(rows: list[dict]) -> None:
    print(f"{'step':<34} {'ours_s':>8} {'baseline_s':>11} {'ratio':>7} {'ceiling':>8}  work")
    for r in rows:
        baseline = f"{r['baseline_s']:.2f}" if r["baseline_s"] is not None else "-"
        ceiling = f"{r['ceiling']:.2f}" if r["ceiling"] else "-"
        extra = {k: v for k, v in r.items() if k not in ("step", "work", "ours_s", "baseline_s", "ratio", "ceiling")}
        print(f"{r['step']:<34} {r['ours_s']:>8.2f} {baseline:>11} {r['ratio']:>7.2f} {ceiling:>8}  {r['work']}"
              + (f"  {json.dumps(extra, ensure_ascii=False)}" if extra else ""))


if __name__ == "__main__":
    show(run(quick="--quick" in sys.argv))

"""Stress check of the worker pool's shutdown: consecutive parallel runs under CPU load; none may hang.

Ours is :func:`sigcli.parallel.worker_pool`; the baseline is the pool as it was before
(:func:`old_worker_pool`: workers keep the CLI's SIGTERM handler, and a finished run
terminates the pool), measured in the same run, interleaved, under the same load.

Rows:
- ``worker_pool cycles``: one process with the CLI's SIGTERM handler opens a 2-worker pool,
  maps a few small tasks and leaves it, over and over; a cycle not done within
  ``CYCLE_TIMEOUT_S`` counts as hung (its workers are then killed so the next can start);
- ``sig preprocess|synth --workers 2``: consecutive CLI runs on a small raw set, each a
  fresh process; one still alive after ``RUN_TIMEOUT_S`` counts as hung (and is killed).

While they run, one busy-looping process per CPU competes for the cores: the hang needs a
worker to be held up between being woken and waiting again. ``ours_s``/``baseline_s``:
wall time of all cycles or runs; ``hung``/``hung_baseline``: how many did not finish
(goal: 0 for ours). ``ratio`` is not a speed-up here: see the note.

Run: ``python -m bench --only pool_stress [--quick]`` or ``python -m bench.bench_pool_stress``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sigcli
from sigcli.parallel import worker_pool

CYCLE_TIMEOUT_S = 10.0
RUN_TIMEOUT_S = 60.0
CYCLE_TASKS = 16
# A small raw set: 4 users × 6 images of MCYT (600×850 canvas), 3 preprocessing chunks.
RAW = {"layout": "mcyt", "users": 4, "genuine": 4, "skilled": 2}
# Replaces the library's pool in a CLI process for the baseline, before any command imports it.
_OLD_CLI = ("import sys, sigcli.parallel, bench.bench_pool_stress as b; sigcli.parallel.worker_pool = b.old_worker_pool; "
            "sys.argv[0] = 'sig'; from sigcli.cli.app import main; main()")
_CYCLES = "import sys; from bench.bench_pool_stress import cycles; cycles(int(sys.argv[1]), sys.argv[2])"


@contextmanager
def old_worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """``sigcli.parallel.worker_pool`` before the fix: the baseline."""
    if workers <= 1:
        yield None
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_interrupts)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(quick: bool) -> list[dict]:
    n_cycles, n_runs = (60, 4) if quick else (300, 40)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(sigcli.__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1]),
         os.environ.get("PYTHONPATH", "")])}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    load = f"{len(hogs)} busy processes on {os.cpu_count()} CPUs"
    try:
        rows = [_cycle_row(n_cycles, env, load)]
        with tempfile.TemporaryDirectory(prefix="bench-pool-stress-") as tmp:
            rows += _cli_rows(Path(tmp), n_runs, env, load)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return rows


def cycles(count: int, variant: str) -> None:
    """In a fresh process: ``count`` pool cycles with the CLI's SIGTERM handler; prints JSON."""
    from sigcli.cli.app import _terminate  # the handler `sig` installs

    signal.signal(signal.SIGTERM, _terminate)
    pool_of = worker_pool if variant == "ours" else old_worker_pool
    hung = 0
    began = time.perf_counter()
    for _ in range(count):
        done, fired = threading.Event(), []
        watchdog = threading.Thread(target=_kill_children_unless, args=(done, fired, CYCLE_TIMEOUT_S))
        watchdog.start()
        with pool_of(2) as pool:
            assert sum(pool.imap(abs, range(-CYCLE_TASKS, 0))) == CYCLE_TASKS * (CYCLE_TASKS + 1) // 2
        done.set()
        watchdog.join()
        hung += bool(fired)
    print(json.dumps({"cycles": count, "hung": hung, "seconds": time.perf_counter() - began}))


def _kill_children_unless(done: threading.Event, fired: list, timeout: float) -> None:
    """A hung cycle waits on its workers forever: kill them so that the next cycle starts."""
    if not done.wait(timeout):
        fired.append(True)
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)


def _cycle_row(count: int, env: dict, load: str) -> dict:
    results = {}
    for variant in ("ours", "old"):
        done = subprocess.run([sys.executable, "-c", _CYCLES, str(count), variant], env=env,
                              capture_output=True, text=True, check=True)
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, old = results["ours"], results["old"]
    return {"step": "worker_pool cycles, SIGTERM handler installed",
            "work": f"{count} cycles × 2 workers, {CYCLE_TASKS} tasks each; {load}",
            "ours_s": round(ours["seconds"], 2), "baseline_s": round(old["seconds"], 2), "ratio": None,
            "ceiling": None, "hung": ours["hung"], "hung_baseline": old["hung"],
            "note": f"hung: ours {ours['hung']}/{count}, before {old['hung']}/{count} "
                    f"(a hang costs {CYCLE_TIMEOUT_S:.0f} s)"}


def _cli_rows(tmp: Path, runs: int, env: dict, load: str) -> list[dict]:
    raw = tmp / "raw"
    subprocess.run([sys.executable, "-m", "sigcli", "synth", "--layout", RAW["layout"], "--out", str(raw),
                    "--users", str(RAW["users"]), "--genuine", str(RAW["genuine"]), "--skilled", str(RAW["skilled"]),
                    "--workers", "1"], env=env, capture_output=True, check=True)
    commands = {
        "preprocess": lambda i: ["preprocess", "--dataset", RAW["layout"], "--raw-path", str(raw),
                                 "--save-path", str(tmp / f"pre-{i}.npz"), "--workers", "2"],
        "synth": lambda i: ["synth", "--layout", RAW["layout"], "--out", str(tmp / f"synth-{i}"),
                            "--users", str(RAW["users"]), "--genuine", str(RAW["genuine"]),
                            "--skilled", str(RAW["skilled"]), "--workers", "2"],
    }
    tally = {(name, variant): {"runs": 0, "hung": 0, "failed": 0, "seconds": 0.0}
             for name in commands for variant in ("ours", "old")}
    for i in range(runs):
        name = ("preprocess", "synth")[i % 2]
        for variant in ("ours", "old"):
            launcher = ["-m", "sigcli"] if variant == "ours" else ["-c", _OLD_CLI]
            outcome = _timed_run([sys.executable, *launcher, *commands[name](f"{variant}-{i}")], env)
            entry = tally[name, variant]
            entry["runs"] += 1
            entry["seconds"] += outcome["seconds"]
            entry["hung"] += outcome["hung"]
            entry["failed"] += outcome["failed"]
    rows = []
    for name in commands:
        ours, old = tally[name, "ours"], tally[name, "old"]
        failed = f"; failed (exit ≠ 0): ours {ours['failed']}, before {old['failed']}" \
            if ours["failed"] or old["failed"] else ""
        rows.append({"step": f"sig {name} --workers 2, consecutive runs",
                     "work": f"{ours['runs']} runs each, {RAW['users'] * (RAW['genuine'] + RAW['skilled'])} images; "
                             f"{load}",
                     "ours_s": round(ours["seconds"], 1), "baseline_s": round(old["seconds"], 1), "ratio": None,
                     "ceiling": None, "hung": ours["hung"], "hung_baseline": old["hung"],
                     "note": f"hung: ours {ours['hung']}/{ours['runs']}, before {old['hung']}/{old['runs']} "
                             f"(a hang is cut at {RUN_TIMEOUT_S:.0f} s){failed}"})
    return rows


def _timed_run(command: list[str], env: dict) -> dict:
    """One CLI run in its own process group, killed with its workers if it outlives the timeout."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        code = process.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return {"seconds": time.perf_counter() - began, "hung": 1, "failed": 0}
    return {"seconds": time.perf_counter() - began, "hung": 0, "failed": int(code != 0)}


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['step']:<48} ours {row['ours_s']:8.1f} s  before {row['baseline_s']:8.1f} s  {row['note']}"
              f"  [{row['work']}]")

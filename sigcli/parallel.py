"""Worker processes shared by the commands that parallelise over files (synth, preprocess)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import signal
import sys
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """Worker processes, or ``None`` for one worker (this process).

    Forked on Linux (they start at once, with everything already imported; spawned workers
    would each import the whole CLI again), spawned elsewhere. Enter it before anything
    starts threads (the progress bar). Workers ignore Ctrl-C: the main process gets it and
    ends them.
    """
    if workers <= 1:
        yield None
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = multiprocessing.get_context(method).Pool(workers, initializer=_ignore_interrupts)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

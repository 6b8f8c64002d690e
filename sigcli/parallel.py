"""Worker processes shared by the commands that parallelise over files (synth, preprocess).

Workers must die the moment they are sent SIGTERM. ``Pool.terminate()`` takes the task
queue's read lock for good and then SIGTERMs the workers, relying on the default action.
A worker forked from the CLI would inherit its Python SIGTERM handler instead, and a Python
handler only sets a flag that the interpreter acts on later: a worker that gets the signal
while it is not inside the blocking ``sem_wait`` call itself (e.g. just woken by the other
worker releasing that lock) goes back to waiting on the lock the main process now holds,
never runs the handler, and the main process waits for it forever. So workers restore the
default SIGTERM action before anything can reach them, and a run that ends normally closes
the pool (workers leave on their own) instead of terminating it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import signal
import sys
from contextlib import contextmanager
from typing import Iterator

#: Signals held back while workers are forked, so none reaches a worker before it has set
#: its own handling (they are delivered once it has).
_WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_MASKABLE = hasattr(signal, "pthread_sigmask")


@contextmanager
def worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """Worker processes, or ``None`` for one worker (this process).

    Forked on Linux (they start at once, with everything already imported; spawned workers
    would each import the whole CLI again), spawned elsewhere. Enter it before anything
    starts threads (the progress bar). Workers ignore Ctrl-C and die at once on SIGTERM:
    the main process gets both, unwinds, and ends them. Leaving the block normally waits
    for the workers to finish their queued tasks and exit; leaving it by an exception
    (error, Ctrl-C, SIGTERM) ends them at once.
    """
    if workers <= 1:
        yield None
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    # The pool's own threads, which fork replacement workers, inherit the blocked mask too.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS) if _MASKABLE else None
    try:
        pool = multiprocessing.get_context(method).Pool(workers, initializer=_worker_signals)
    finally:
        if _MASKABLE:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _worker_signals() -> None:
    """In each worker: SIGTERM kills (the default action), Ctrl-C is left to the main process."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _MASKABLE:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)

"""A reporter for benchmarks: notes when each unit of work is done (the gap between two is one unit)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator


class StepClock:
    def __init__(self) -> None:
        self.stamps: list[float] = []

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        clock = self

        class Task:
            def advance(self, n: int = 1, **fields: Any) -> None:
                clock.stamps.append(time.perf_counter())

        yield Task()

"""Progress reporting without rendering: the library calls a Reporter, the CLI draws bars.

Library functions take ``reporter: Reporter | None``; ``None`` means silent. The CLI passes
a :class:`sigcli.cli.console.RichReporter`. Tests can pass a :class:`RecordingReporter`.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, Protocol


class Task(Protocol):
    def advance(self, n: int = 1, **fields: Any) -> None:
        """Mark ``n`` more units done; ``fields`` (e.g. loss=0.3) are shown beside the bar."""


class Reporter(Protocol):
    def task(self, description: str, total: int | None) -> Any:
        """A context manager yielding a :class:`Task` for one long step."""


class _NullTask:
    def advance(self, n: int = 1, **fields: Any) -> None:
        pass


class NullReporter:
    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        yield _NullTask()


class RecordingReporter:
    """Keeps what was reported: ``steps`` maps description → (total, units done, last fields)."""

    def __init__(self) -> None:
        self.steps: dict[str, list[Any]] = {}

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        record = self.steps.setdefault(description, [total, 0, {}])

        class _Task:
            def advance(self, n: int = 1, **fields: Any) -> None:
                record[1] += n
                record[2] = fields

        yield _Task()


def resolve(reporter: Reporter | None) -> Reporter:
    return reporter if reporter is not None else NullReporter()


class RunningCount:
    """A task opened at the first count, once the total is known, that only moves forward: for
    work reported as a running count that can restart (a download resumed or started over)."""

    def __init__(self, reporter: Reporter | None, description: str, stack: ExitStack):
        self._reporter, self._description, self._stack = resolve(reporter), description, stack
        self._task: Any = None
        self._shown = 0

    def update(self, done: int, total: int | None) -> None:
        if self._task is None:
            self._task = self._stack.enter_context(self._reporter.task(self._description, total))
        if done > self._shown:
            self._task.advance(done - self._shown)
            self._shown = done

"""TensorBoard event files of a run, beside its metrics.csv (``--tensorboard``, docs/training.md#tensorboard).

Written with torch's :class:`~torch.utils.tensorboard.SummaryWriter` (which needs the
``tensorboard`` package, imported only when asked for). No server is needed to write them:
``tensorboard --logdir runs`` shows every run folder under ``runs`` as one run.
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path
from typing import Any, Mapping, Sequence

from sigcli.errors import InputError

#: How TensorBoard's event files are named; a run's own files, removed with it by --overwrite.
EVENT_PREFIX = "events.out.tfevents."


def require_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise InputError("--tensorboard needs the tensorboard package",
                         "pip install 'sigcli[tensorboard]', or leave --tensorboard out")


def is_event_file(name: str) -> bool:
    return name.startswith(EVENT_PREFIX)


def events_beside(output: Path) -> Path:
    """The event folder of a run whose output is one file: ``OUT.tensorboard/`` beside ``OUT.npz``."""
    return output.with_suffix(".tensorboard")


def remove_event_files(folder: Path) -> None:
    """The event files of an earlier run in ``folder`` (and nothing else), before a run starts over."""
    for path in folder.glob(f"{EVENT_PREFIX}*") if folder.is_dir() else ():
        path.unlink(missing_ok=True)


class EventLog:
    """Scalars into ``folder``: one tag per metric, the step given by the caller (an epoch, a
    step). The file is opened at the first write, so a run that stops before it leaves none;
    a disabled log (no --tensorboard) writes nothing, so callers need no condition."""

    def __init__(self, folder: str | Path, enabled: bool = True):
        if enabled:
            require_tensorboard()
        self.folder, self.enabled = Path(folder), enabled
        self._writer: Any = None

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Each number of ``scalars`` at ``step`` (other values, e.g. flags, are skipped), then flushed."""
        self.write_series(step, {tag: [value] for tag, value in scalars.items()
                                 if isinstance(value, numbers.Real) and not isinstance(value, bool)})

    def write_series(self, first_step: int, series: Mapping[str, Sequence[float]]) -> None:
        """Each tag's values at consecutive steps from ``first_step``, then flushed."""
        if not self.enabled:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder))
        for tag, values in series.items():
            for offset, value in enumerate(values):
                self._writer.add_scalar(tag, float(value), first_step + offset)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

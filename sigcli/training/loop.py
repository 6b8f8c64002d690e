"""One training loop for every objective: SigNet / SigNet-F and distillation (docs/training.md).

What differs between them is an :class:`Objective` (its modules, batches, loss, validation,
best-epoch rule and checkpoint). What they share lives here, once: SGD with the reference
defaults, the step learning-rate schedule, gradient-value clipping, mixed precision on CUDA,
a progress bar per epoch, ``metrics.csv``, ``model_last.pth`` / ``model_best.pth`` in the
reference format, ``config.json``, resuming (``train_state.pth``), Ctrl-C, NaN losses, and
data-parallel training under ``torchrun`` (DistributedDataParallel; only rank 0 writes).

Files in the log folder:

- ``model_last.pth`` / ``model_best.pth``: the reference 3-tuple of state dicts;
- ``train_state.pth``: what ``--resume`` needs (modules, optimiser, epoch, best, history, RNG);
- ``metrics.csv``: one row per epoch; ``config.json``: resolved options, versions, data.
"""

from __future__ import annotations

import atexit
import csv
import inspect
import json
import logging
import os
import signal
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel
from torch import nn

from sigcli import progress
from sigcli.config.training import Schedule
from sigcli.device import resolve_device
from sigcli.errors import InputError, SigcliError, first_line
from sigcli.eventlog import EventLog, is_event_file
from sigcli.fileio import LOCK_NAME, atomic_path, clean_stale_temps, exclusive_lock, make_folder
from sigcli.models.checkpoint import save_checkpoint
from sigcli.options import save_options
from sigcli.progress import Reporter

log = logging.getLogger(__name__)

BEST, LAST, STATE, METRICS, CONFIG = "model_best.pth", "model_last.pth", "train_state.pth", "metrics.csv", "config.json"
# The first metrics of train_step's dict are shown beside the progress bar (all go to metrics.csv).
BAR_METRICS = 3
# Options that may change when a run is resumed (the rest must equal the saved config).
RESUMABLE_CHANGES = {"epochs", "device", "amp", "resume", "overwrite", "logdir", "as_json", "tensorboard"}
# Options renamed since a run may have started: the name in its config.json → the name now.
RENAMED_OPTIONS = {"dataset_path": "data_path", "s_checkpoint": "s_model_path", "c_dataset": "c_data_path",
                   "d_dataset": "d_data_path"}


def learning_rate(epoch: int, schedule: Schedule) -> float:
    """Learning rate of 0-based ``epoch``: StepLR's, step ``max(1, epochs // lr_decay_times)``.

    The reference computes the step as ``epochs // lr_decay_times``, which is 0 for short runs
    and crashes at the end of the first epoch; at least 1 keeps a 1-epoch run working.
    """
    lr = schedule.lr
    if schedule.lr_decay_times:
        for _ in range(epoch // max(1, schedule.epochs // schedule.lr_decay_times)):
            lr *= schedule.lr_decay  # repeated products, exactly as StepLR computes them
    return lr


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's batches: a resumed run draws exactly what an uninterrupted one did."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]))


# --------------------------------------------------------------------------- distribution
@dataclass(frozen=True)
class DistributedInfo:
    """This process's place in a ``torchrun`` job (rank 0 of 1 otherwise) and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and draws progress bars."""
        return self.rank == 0

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's equal share of ``indices``, padded by wrap-around like DistributedSampler.

        Every rank must take the same number of steps, or the gradient all-reduce would hang.
        """
        if self.world_size == 1:
            return indices
        total = -(-len(indices) // self.world_size) * self.world_size
        return np.resize(indices, total)[self.rank::self.world_size]

    def split(self, indices: np.ndarray) -> np.ndarray:
        """This rank's part of ``indices`` without padding (for sums such as validation counts)."""
        return indices[self.rank::self.world_size]

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over all ranks (unchanged on a single process)."""
        if self.world_size == 1 or not values:
            return values
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        totals = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        return dict(zip(values, totals.tolist()))


def init_distributed(device: str = "auto") -> DistributedInfo:
    """Join the ``torchrun`` job if there is one (NCCL on GPUs, gloo on CPU) and pick the device.

    Safe to call more than once: the process group is created on the first call only.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
        atexit.register(_leave_process_group)
    return DistributedInfo(rank, world_size, local_rank, resolved)


def is_main_process() -> bool:
    """True outside ``torchrun`` and on its rank 0: the process that writes and renders."""
    return not dist.is_initialized() or dist.get_rank() == 0


def _leave_process_group() -> None:
    """Leave together: a rank that tears gloo down while another still writes its checkpoints
    can abort at exit ("terminate called without an active exception"). The barrier is
    bounded, so a rank that died does not keep the others waiting."""
    if dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=120))
            else:
                dist.barrier()
        except RuntimeError:
            pass   # a peer is gone: nothing left to wait for
        dist.destroy_process_group()


# --------------------------------------------------------------------------- contract
class Objective(Protocol):
    """What differs between SigNet/SigNet-F training and distillation."""

    def modules(self) -> dict[str, nn.Module]:
        """Trainable modules by role, e.g. ``{"features": ..., "classifier": ..., "forgery": ...}``.

        Return the same dict object on every call, and call the modules through it in
        :meth:`train_step` and :meth:`validate`: under DDP, :func:`fit` replaces its entries
        in place with wrapped modules (it checks, and stops with an error otherwise).
        """

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Any]:
        """This epoch's training batches, drawn with ``generator`` only (this rank's shard)."""

    def num_train_batches(self) -> int:
        """Batches :meth:`train_batches` yields per epoch (the progress bar's total)."""

    def train_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss to backpropagate and metrics (means over the batch) for metrics.csv; the first
        :data:`BAR_METRICS` are shown beside the progress bar."""

    def validate(self) -> dict[str, float]:
        """Validation metrics (summed over ranks where sharded); must include ``score``."""

    def is_better(self, current: dict[str, float], best: dict[str, float] | None) -> bool:
        """Whether ``current`` validation metrics make a new best epoch (``best`` None: first)."""

    def checkpoint(self) -> tuple[dict, dict | None, dict | None]:
        """The reference 3-tuple of state dicts (features, user head, forgery head)."""

    # Optional, for an objective that is not optimised like SigNet (e.g. meta-learning):
    # ``optimizer(params)`` makes the optimiser instead of the Schedule's SGD, ``learning_rate(epoch)``
    # gives 0-based epoch's rate instead of the step schedule, and ``save_checkpoint(path)``
    # writes model_best/model_last in the objective's own format instead of the 3-tuple.


@dataclass
class FitResult:
    best_epoch: int | None
    best_metrics: dict[str, float] | None
    last_metrics: dict[str, float]
    paths: dict[str, Path]
    history: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        """The run as plain data (``--json``): best epoch and its metrics, files, and one row per epoch."""
        return {"best_epoch": self.best_epoch, "best_metrics": self.best_metrics, "last_metrics": self.last_metrics,
                "paths": {name: str(path) for name, path in self.paths.items()}, "history": self.history}


# --------------------------------------------------------------------------- the loop
def fit(objective: Objective, schedule: Schedule, logdir: str | os.PathLike, *, resume: bool = False,
        overwrite: bool = False, options: BaseModel | None = None, extra_config: dict | None = None,
        inputs: Iterable[str | os.PathLike | None] = (), reporter: Reporter | None = None,
        companions: Iterable[str] = ()) -> FitResult:
    """Train ``objective`` for ``schedule.epochs`` epochs, writing the run into ``logdir``.

    Epochs are numbered from 1 in files and messages. With ``resume`` the run continues
    after the last completed epoch in ``logdir`` and ends with the weights an uninterrupted
    run would have (on CPU with the same options). Ctrl-C stops at the next step, saves the
    current weights as ``model_last.pth`` and re-raises :class:`KeyboardInterrupt`.

    ``logdir`` is locked for the whole run, so a second run into it stops at once. A folder
    that already holds a run is refused unless ``resume`` or ``overwrite`` (which removes
    only the run's own files); a folder holding other files, or one of ``inputs``, always is.
    ``companions`` names entries of ``logdir`` that belong to the run but that another run
    writes (e.g. a pre-training run folder): they are neither refused nor removed.
    """
    info = init_distributed(schedule.device)
    run = _Run(objective, schedule, Path(logdir), info,
               progress.resolve(reporter) if info.is_main else progress.NullReporter())
    config_options = options if options is not None else schedule
    claim = _claim_logdir(run.logdir, resume, overwrite, config_options, inputs, companions)
    with claim if info.is_main else nullcontext():
        if resume and run.paths["state"].exists():
            run.restore(config_options)
        if info.world_size > 1:
            _wrap_distributed(objective, run.modules, info)
        if info.is_main:
            extra = dict(extra_config or {}, world_size=info.world_size, device=str(info.device))
            if not isinstance(config_options, Schedule):
                extra["schedule"] = schedule.model_dump()
            save_options(config_options, run.paths["config"], overwrite=True, **extra)
        if info.is_main and getattr(config_options, "tensorboard", False):
            run.events = EventLog(run.logdir)
        try:
            return _train(run, objective, schedule, info)
        except Exception:
            if info.is_main and not run.history:  # nothing to resume: leave the folder free for a new run
                run.paths["config"].unlink(missing_ok=True)
            raise
        finally:
            if run.events is not None:
                run.events.close()


def _train(run: "_Run", objective: Objective, schedule: Schedule, info: DistributedInfo) -> FitResult:
    """The epochs of :func:`fit`, from the first one not done yet."""
    try:
        with _graceful_interrupt() as interrupted:
            for epoch in range(len(run.history), schedule.epochs):
                row, val = run.train_epoch(epoch, interrupted)
                improved = objective.is_better(val, run.best)
                if improved:
                    run.best_epoch, run.best = epoch + 1, val
                run.history.append({**row, "best": improved})
                if info.is_main:
                    run.save(improved)
                if interrupted():
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if info.is_main:
            _save_weights(objective, run.paths["last"])
            log.warning("interrupted: %s holds the weights at that point; --resume continues after epoch %d",
                        run.paths["last"], len(run.history))
        raise
    last = {k[4:]: v for k, v in run.history[-1].items() if k.startswith("val_")} if run.history else {}
    return FitResult(run.best_epoch, run.best, last, run.paths, run.history)


class _Run:
    """The state of one training run: optimiser, history, best epoch, and the files in logdir."""

    def __init__(self, objective: Objective, schedule: Schedule, logdir: Path, info: DistributedInfo,
                 reporter: Reporter):
        self.objective, self.schedule, self.logdir = objective, schedule, logdir
        self.info, self.reporter = info, reporter
        self.paths = {"best": logdir / BEST, "last": logdir / LAST, "state": logdir / STATE,
                      "metrics": logdir / METRICS, "config": logdir / CONFIG}
        self.modules = objective.modules()  # the objective's own dict: DDP wrappers replace its entries
        self.originals = dict(self.modules)
        for module in self.originals.values():
            if info.device.type == "cuda":
                module.to(info.device, memory_format=torch.channels_last)
            else:
                module.to(info.device)
        self.params = [p for m in self.originals.values() for p in m.parameters() if p.requires_grad]
        make_optimizer = getattr(objective, "optimizer", None)
        self.optimizer = make_optimizer(self.params) if make_optimizer else torch.optim.SGD(
            self.params, lr=schedule.lr, momentum=schedule.momentum, nesterov=schedule.nesterov,
            weight_decay=schedule.weight_decay)
        self.use_amp = schedule.amp and info.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best: dict[str, float] | None = None
        self.events: EventLog | None = None   # --tensorboard

    def train_epoch(self, epoch: int, interrupted) -> tuple[dict[str, Any], dict[str, float]]:
        """Train one epoch and validate; returns the metrics.csv row and the validation metrics."""
        started = time.perf_counter()
        rate_of = getattr(self.objective, "learning_rate", None)
        lr = rate_of(epoch) if rate_of else learning_rate(epoch, self.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for module in self.modules.values():
            module.train()
        sums: dict[str, float] = defaultdict(float)
        steps = 0
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()
        total = self.objective.num_train_batches()
        with self.reporter.task(f"epoch {epoch + 1}/{self.schedule.epochs}", total) as task:
            for batch in self.objective.train_batches(epoch, epoch_generator(self.schedule.seed, epoch)):
                with autocast:
                    loss, metrics = self.objective.train_step(batch)
                if not torch.isfinite(loss.detach()).all():
                    raise self._nan_error(epoch, steps)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.schedule.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_value_(self.params, self.schedule.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                steps += 1
                for key, value in metrics.items():
                    sums[key] += float(value)
                task.advance(1, **{k: sums[k] / steps for k in list(sums)[:BAR_METRICS]})
                if interrupted():
                    raise KeyboardInterrupt
        totals = self.info.sum({**sums, "__steps": steps})
        train = {f"train_{k}": v / max(1.0, totals["__steps"]) for k, v in totals.items() if k != "__steps"}
        for module in self.modules.values():
            module.eval()
        with torch.no_grad():
            val = self.objective.validate()
        if "score" not in val:
            raise TypeError(f"{type(self.objective).__name__}.validate() must return a 'score'")
        row = {"epoch": epoch + 1, "lr": lr, **train, **{f"val_{k}": v for k, v in val.items()},
               "seconds": round(time.perf_counter() - started, 3)}
        return row, val

    def save(self, improved: bool) -> None:
        """Write the checkpoints, metrics.csv and the resume state of a finished epoch (atomically)."""
        _save_weights(self.objective, self.paths["last"])
        if improved:
            _save_weights(self.objective, self.paths["best"])
        _write_metrics(self.paths["metrics"], self.history)
        state = {"epoch": len(self.history), "modules": {k: m.state_dict() for k, m in self.originals.items()},
                 "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "best_epoch": self.best_epoch, "best": self.best, "history": self.history,
                 "seed": self.schedule.seed, "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        with atomic_path(self.paths["state"], overwrite=True) as tmp:
            torch.save(state, tmp)
        if self.events is not None:  # after the state: a resumed run does not log an epoch twice
            row = self.history[-1]
            self.events.write(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})

    def restore(self, options: BaseModel) -> None:
        """Continue from ``train_state.pth``: modules, optimiser, history, best epoch and RNG.

        A damaged or foreign state (garbage, an empty file, a missing part) is one line.
        """
        _check_same_options(self.paths["config"], options)
        path = self.paths["state"]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file fails in many ways (zip, pickle, EOF)
            raise _damaged(path, _unreadable(path, exc)) from None
        if not isinstance(state, dict):
            raise _damaged(path, f"it holds a {type(state).__name__}, not a training state")
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise _damaged(path, f"it lacks {', '.join(missing)}")
        try:
            for name, module in self.originals.items():
                module.load_state_dict(state["modules"][name])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["torch_rng"])
            if "cuda_rng" in state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        except Exception as exc:  # shapes, names or types that do not fit this run
            raise _damaged(path, f"it does not fit this run ({first_line(exc)})") from None
        self.history, self.best_epoch, self.best = state["history"], state["best_epoch"], state["best"]

    def _nan_error(self, epoch: int, step: int) -> SigcliError:
        kept = (f"{self.paths['last']} holds epoch {len(self.history)}, the last good one" if self.history
                else "no checkpoint was written")
        return SigcliError(f"the loss became NaN or infinite in epoch {epoch + 1}, step {step + 1}; training "
                           f"stopped and {kept}", "lower --lr, or check the data for empty or corrupted images")


def _save_weights(objective: Objective, path: Path) -> None:
    """The objective's weights as ``path``: in its own format if it has one, else the reference 3-tuple."""
    save = getattr(objective, "save_checkpoint", None)
    if save is not None:
        save(path)
    else:
        save_checkpoint(path, *objective.checkpoint(), overwrite=True)


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


# ------------------------------------------------------------------------------ the log folder
#: Every file a run writes into its log folder: what ``--overwrite`` removes, and nothing else.
RUN_FILES = (BEST, LAST, STATE, METRICS, CONFIG)
_STATE_KEYS = ("modules", "optimizer", "scaler", "history", "best_epoch", "best", "torch_rng")
_START_OVER = "pass --overwrite instead of --resume to start the run over, or give another --logdir"


@contextmanager
def _claim_logdir(logdir: Path, resume: bool, overwrite: bool, options: BaseModel,
                  inputs: Iterable[str | os.PathLike | None], companions: Iterable[str] = ()) -> Iterator[None]:
    """Lock ``logdir`` for the run and make it ready: refuse what must not be touched, remove
    temporary files of killed runs, and (``overwrite``, or ``resume`` without a finished
    epoch) the previous run's own files."""
    if resume and overwrite:
        raise InputError("--resume continues the run in --logdir and --overwrite starts it over", "give one of them")
    for given in inputs:
        if given is not None and (Path(given).resolve() == logdir.resolve()
                                  or logdir.resolve() in Path(given).resolve().parents):
            raise InputError(f"--logdir {logdir} holds the input {given}, which a run never writes over",
                             "give another --logdir, or move the input out of it")
    if resume and not any((logdir / name).exists() for name in RUN_FILES):
        raise InputError(f"--resume: no completed epoch to resume from ({logdir / STATE} does not exist)",
                         "start the run again without --resume")
    make_folder(logdir, "--logdir")
    with exclusive_lock(logdir, "--logdir", "wait for that run to end, or give another --logdir"):
        clean_stale_temps(logdir)
        present = set(os.listdir(logdir)) - {LOCK_NAME, *companions}
        ours = {name for name in present if name in RUN_FILES or is_event_file(name)}
        if present and not ours:
            raise InputError(f"--logdir {logdir} holds other files ({', '.join(sorted(present)[:3])}"
                             f"{', ...' if len(present) > 3 else ''}), not a run of sig",
                             "give a new or empty --logdir")
        if resume and STATE not in ours:
            _check_same_options(logdir / CONFIG, options)
            log.warning("%s holds no completed epoch (the run stopped in its first one): starting it over", logdir)
        elif ours and not resume:
            if not overwrite:
                hint = ("pass --resume to continue it, --overwrite to start it over, or give another --logdir"
                        if STATE in ours else "it has no completed epoch: pass --overwrite to start it over, "
                                              "or give another --logdir")
                raise InputError(f"{logdir} already holds a training run", hint)
            _read_config(logdir / CONFIG, f"--overwrite leaves {logdir} alone, as it is not recognisably a run")
        if ours and not (resume and STATE in ours):
            for name in ours:
                (logdir / name).unlink(missing_ok=True)
        yield


def _read_config(path: Path, refusal: str) -> dict:
    """The ``options`` of a run's ``config.json``; a missing or damaged one is one line,
    ``refusal`` saying what cannot be done without it."""
    hint = "delete the folder yourself if it holds nothing you need, or give another --logdir"
    try:
        record = json.loads(path.read_text())
        saved = record["options"]
        if not isinstance(saved, dict) or "sigcli" not in record["environment"]:
            raise ValueError("not the configuration of a run of sig")
    except FileNotFoundError:
        raise InputError(f"{refusal}: {path} is missing", hint) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{refusal}: {path} is damaged ({first_line(exc)})", hint) from None
    return saved


def _unreadable(path: Path, exc: Exception) -> str:
    """Why a state file does not load, in words (torch's own messages are pages long)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        return "it is empty"
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        return f"it is not a PyTorch file (it starts with {head!r})"
    return f"it is damaged ({first_line(exc, 100)})"


def _damaged(path: Path, why: str) -> InputError:
    return InputError(f"cannot resume from {path}: {why}", _START_OVER)


def _check_same_options(config_path: Path, options: BaseModel) -> None:
    """A resumed run must use the options it started with (only a few may change); a run
    started before an option was renamed resumes under the new name, and one started before an
    option existed resumes with that option at its default."""
    saved = {RENAMED_OPTIONS.get(k, k): v for k, v in _read_config(config_path, "cannot resume").items()}
    current = json.loads(options.model_dump_json())
    changed = [k for k in current if k not in RESUMABLE_CHANGES
               and (saved[k] != current[k] if k in saved else not _is_default(options, k))]
    if changed:
        described = ", ".join(f"--{k.replace('_', '-')} {current[k]} (was {saved.get(k)})" for k in changed)
        raise InputError(f"--resume with other options than the run started with: {described}",
                         "resume with the original options, or start a new run in another --logdir")


def _is_default(options: BaseModel, name: str) -> bool:
    field = type(options).model_fields[name]
    return not field.is_required() and getattr(options, name) == field.get_default(call_default_factory=True)


def _wrap_distributed(objective: Objective, modules: dict[str, nn.Module], info: DistributedInfo) -> None:
    """Wrap each trainable module in DistributedDataParallel, in the objective's own dict.

    Buffers (batch-norm statistics) are not broadcast at each forward, so that validation
    needs no collective; rank 0's statistics are the ones saved, as DDP's broadcast would make them.
    """
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device] if info.device.type == "cuda" else None
    # The option's name changed in torch 2.x; both mean "no buffer sync at each forward".
    renamed = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if renamed else {"broadcast_buffers": False}
    for name, module in list(modules.items()):
        if any(p.requires_grad for p in module.parameters()):
            modules[name] = DistributedDataParallel(module, device_ids=device_ids, **no_sync)
    if objective.modules() is not modules:
        raise TypeError(f"{type(objective).__name__}.modules() must return the same dict on every call "
                        "(fit wraps its entries for DistributedDataParallel)")


@contextmanager
def _graceful_interrupt() -> Iterator[Any]:
    """Turn the first Ctrl-C into a flag checked between steps; a second one interrupts at once."""
    flag = {"set": False}

    def handler(signum, frame):
        flag["set"] = True
        signal.signal(signal.SIGINT, previous or signal.default_int_handler)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C arrives as KeyboardInterrupt as usual
        yield lambda: False
        return
    try:
        yield lambda: flag["set"]
    finally:
        signal.signal(signal.SIGINT, previous or signal.default_int_handler)

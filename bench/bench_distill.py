"""Benchmark of `sig distill` training steps: samples per second against the networks' ceiling.

One step is one D batch (inverted data, float 150×220) and one C batch (uint8 170×242,
random crops), a SigNet teacher and a SigNet student. Three ways of running the same steps,
interleaved in the same run:

- ``ceiling``: the bare networks on tensors already cropped and in memory (teacher forward,
  student forward/backward on D and C, the loss, clipping and the SGD step);
- ``ours``: :func:`sigcli.training.loop.fit` with
  :class:`~sigcli.training.distill.DistillObjective` (reads and crops the batches from the
  arrays in a background thread);
- ``reference``: the reference's loop: DataLoaders with a per-sample PIL crop
  (ToPILImage → RandomCrop → ToTensor) for C, a with-replacement sampler for D, two teacher
  passes per step.

The three run in turn, ``rounds`` times; a way's step time is its fastest step over all
rounds (the first step of each run, a warm-up, left out). Model building, validation and
checkpoint writing are left out of all three. Goal on CPU: ours ≥ 95% of the ceiling's
samples/s. Fields: ``ratio`` = reference / ours (speed-up), ``ceiling`` = reference / bare
networks (the most any loop could reach), ``of_ceiling`` = bare networks / ours, and
``of_ceiling_cpu`` the same with the CPU time the process spends per step (all threads).

On a shared machine, other load moves step times by tens of percent from one run to the
next, more than the few milliseconds a loop adds. So a second row times the data path
alone (reading, cropping and scaling one D and one C batch, no network) for ours and for
the reference's DataLoaders, over many steps; ``of_ceiling_bound`` = bare step / (bare step
+ our data path) is what ours would reach even if none of its reading overlapped the
networks' work (it runs in a background thread, so it mostly does).

Run: ``python -m bench.bench_distill [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset
from torchvision import transforms

from sigcli.data.sigset import SignatureSet
from sigcli.models import INPUT_SIZE, create_model
from sigcli.models.checkpoint import Checkpoint
from sigcli.training.data import Rows
from sigcli.config.distill import DistillOptions
from sigcli.config.training import Schedule
from sigcli.training.distill import DistillObjective, LossWeights, Part, Student, distillation_loss
from sigcli.training.loop import DistributedInfo, fit
from sigcli.training.teacher import FrozenClassifier

K, C_USERS = 20, 10


def run(quick: bool, device: str = "cpu") -> list[dict]:
    batch, steps, rounds = (8, 4, 2) if quick else (32, 5, 3)
    dev = torch.device(device)
    d_set, c_set = _data(batch, steps)
    teacher_checkpoint = _teacher()
    ways = {"ceiling": _ceiling, "ours": _ours, "reference": _reference}
    steps_s: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            steps_s[name] += _durations(way(teacher_checkpoint, d_set, c_set, batch, steps, dev))
    timings = {name: min(wall for wall, _ in durations) for name, durations in steps_s.items()}
    cpu = {name: min(c for _, c in durations) for name, durations in steps_s.items()}
    samples = 2 * batch
    row = {"step": f"distill step on {dev.type}", "work": f"D {batch} + C {batch} per step, SigNet teacher and "
                                                          f"student, {rounds}×{steps} steps",
           "ours_s": round(timings["ours"], 4), "baseline_s": round(timings["reference"], 4),
           "ratio": round(timings["reference"] / timings["ours"], 3),
           "ceiling": round(timings["reference"] / timings["ceiling"], 3),
           "of_ceiling": round(timings["ceiling"] / timings["ours"], 3),
           "of_ceiling_cpu": round(cpu["ceiling"] / cpu["ours"], 3),
           "samples_per_s": {name: round(samples / seconds, 1) for name, seconds in timings.items()},
           "median_step_s": {name: round(float(np.median([w for w, _ in d])), 4) for name, d in steps_s.items()},
           "threads": torch.get_num_threads()}
    data_steps = 20 if quick else 100
    ours_data = min(_durations(_ours_data_path(d_set, c_set, batch, data_steps)))[0]
    reference_data = min(_durations(_reference_data_path(d_set, c_set, batch, data_steps)))[0]
    data_row = {"step": "data path per step (no network)", "work": f"D {batch} + C {batch}, {data_steps} steps",
                "ours_s": round(ours_data, 5), "baseline_s": round(reference_data, 5),
                "ratio": round(reference_data / ours_data, 2), "ceiling": None,
                "of_ceiling_bound": round(timings["ceiling"] / (timings["ceiling"] + ours_data), 4)}
    return [row, data_row]


def _data(batch: int, steps: int) -> tuple[SignatureSet, SignatureSet]:
    rng = np.random.default_rng(0)
    n_c = batch * (steps + 2)          # steps + 1 training batches (one warm-up), one validation batch
    n_d = 10 * K
    d = SignatureSet(rng.random((n_d, 1, *INPUT_SIZE), dtype=np.float32), np.arange(n_d) % K,
                     np.zeros(n_d, dtype=np.int64))
    c = SignatureSet(rng.integers(0, 256, (n_c, 1, 170, 242), dtype=np.uint8), np.arange(n_c) % C_USERS,
                     np.zeros(n_c, dtype=np.int64))
    return d, c


WEIGHTS = LossWeights.of(DistillOptions())  # the reference's weights


def _teacher() -> Checkpoint:
    torch.manual_seed(1)
    features = create_model("signet")
    return Checkpoint("signet", features.state_dict(), nn.Linear(features.feature_space_size, K).state_dict())


def _student(seed: int = 2) -> Student:
    torch.manual_seed(seed)
    features = create_model("signet")
    return Student(features, nn.Linear(features.feature_space_size, K + C_USERS))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _durations(stamps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each step but the first (warm-up), from the times steps ended."""
    return [tuple(b - a for a, b in zip(first, second)) for first, second in zip(stamps[1:], stamps[2:])]


# ---------------------------------------------------------------------------- the bare networks


def _ceiling(teacher_checkpoint: Checkpoint, d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int,
             device: torch.device) -> list[tuple[float, float]]:
    teacher, student = FrozenClassifier(teacher_checkpoint, device), _student().to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    d_x = torch.from_numpy(d_set.x[:batch]).to(device)
    c_x = torch.from_numpy(c_set.x[:batch, :, 10:160, 11:231]).float().div(255).to(device)
    c_y = torch.from_numpy(c_set.y[:batch]).to(device)
    stamps = []
    for _ in range(steps + 1):
        s_d, s_c = student(d_x, c_x)
        t = teacher(torch.cat([d_x, c_x]))
        loss, _ = distillation_loss(s_d, t[:batch], WEIGHTS, student_c=s_c, teacher_c=t[batch:], c_labels=c_y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_value_(student.parameters(), 10)
        optimizer.step()
        loss.item()
        _sync(device)
        stamps.append((time.perf_counter(), time.process_time()))
    return stamps


# ---------------------------------------------------------------------------- ours: fit + the objective


class _Stamps:
    """A reporter that records when each training step ends."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        stamps = self.stamps

        class _Task:
            def advance(self, n: int = 1, **fields: Any) -> None:
                stamps.append((time.perf_counter(), time.process_time()))

        yield _Task()


def _objective(teacher: FrozenClassifier | None, d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int,
               device: torch.device) -> DistillObjective:
    """D: all but one batch for training; C: ``steps + 1`` training batches, the rest validation."""
    d_rows, c_rows = Rows.select(d_set), Rows.select(c_set)
    d_train, d_val = np.arange(len(d_rows) - batch), np.arange(len(d_rows) - batch, len(d_rows))
    n_c_train = batch * (steps + 1)
    c_train, c_val = np.arange(n_c_train), np.arange(n_c_train, len(c_rows))
    return DistillObjective(_student(), teacher, Part(d_rows, d_train, d_val, batch, False),
                            Part(c_rows, c_train, c_val, batch, True), WEIGHTS, DistributedInfo(device=device))


def _ours(teacher_checkpoint: Checkpoint, d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int,
          device: torch.device) -> list[tuple[float, float]]:
    objective = _objective(FrozenClassifier(teacher_checkpoint, device), d_set, c_set, batch, steps, device)
    reporter = _Stamps()
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as logdir:
        fit(objective, Schedule(epochs=1, device=device.type), Path(logdir) / "run", reporter=reporter)
    return reporter.stamps


def _ours_data_path(d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int) -> list[tuple[float, float]]:
    """Our batches of one epoch, read and cropped, and nothing else."""
    objective = _objective(None, d_set, _repeat(c_set, batch * (steps + 2)), batch, steps, torch.device("cpu"))
    stamps = []
    for _ in objective.train_batches(0, torch.Generator().manual_seed(0)):
        stamps.append((time.perf_counter(), time.process_time()))
    return stamps


# ---------------------------------------------------------------------------- the reference's loop


class _PerSample(Dataset):
    """A dataset whose images go through a torchvision transform one by one (reference style)."""

    def __init__(self, base: TensorDataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y, yforg = self.base[index]
        return self.transform(x), y, yforg


def _reference_loaders(d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int):
    """The reference's D and C DataLoaders over ``steps + 1`` batches."""
    n_c = batch * (steps + 1)
    crops = transforms.Compose([transforms.ToPILImage(), transforms.RandomCrop(INPUT_SIZE), transforms.ToTensor()])
    c_train = _PerSample(TensorDataset(torch.from_numpy(c_set.x[:n_c]), torch.from_numpy(c_set.y[:n_c]),
                                       torch.from_numpy(c_set.yforg[:n_c])), crops)
    d_train = TensorDataset(torch.from_numpy(d_set.x), torch.from_numpy(d_set.y), torch.from_numpy(d_set.yforg))
    c_loader = DataLoader(c_train, batch_size=batch, shuffle=True)
    d_loader = DataLoader(d_train, batch_size=batch, sampler=RandomSampler(d_train, replacement=True, num_samples=n_c))
    return d_loader, c_loader


def _reference_data_path(d_set: SignatureSet, c_set: SignatureSet, batch: int,
                         steps: int) -> list[tuple[float, float]]:
    d_loader, c_loader = _reference_loaders(d_set, _repeat(c_set, batch * (steps + 2)), batch, steps)
    stamps = []
    for _, _ in zip(d_loader, c_loader):
        stamps.append((time.perf_counter(), time.process_time()))
    return stamps


def _repeat(sigset: SignatureSet, size: int) -> SignatureSet:
    """The set tiled to at least ``size`` signatures (data-path runs are longer than network runs)."""
    times = max(1, -(-size // len(sigset)))
    return SignatureSet(np.concatenate([sigset.x] * times), np.tile(sigset.y, times), np.tile(sigset.yforg, times))


def _reference(teacher_checkpoint: Checkpoint, d_set: SignatureSet, c_set: SignatureSet, batch: int, steps: int,
               device: torch.device) -> list[tuple[float, float]]:
    teacher, student = FrozenClassifier(teacher_checkpoint, device), _student().to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    d_loader, c_loader = _reference_loaders(d_set, c_set, batch, steps)
    c_batches = iter(c_loader)
    stamps = []
    for d_x, _, _ in d_loader:
        c_x, c_y, _ = next(c_batches)
        d_x, c_x, c_y = d_x.float().to(device), c_x.float().to(device), c_y.long().to(device)
        with torch.no_grad():
            t_d = teacher(d_x)
        s_d = student.classifier(student.features(d_x))
        s_c = student.classifier(student.features(c_x))
        with torch.no_grad():
            t_c = teacher(c_x)
        loss = (F.kl_div(F.log_softmax(s_d, 1), F.softmax(F.pad(t_d, (0, C_USERS)), 1), reduction="batchmean")
                + F.cross_entropy(s_c[:, K:], c_y)
                + 1.7 * F.kl_div(F.log_softmax(s_c[:, :K], 1), F.softmax(t_c, 1), reduction="batchmean"))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_value_(student.parameters(), 10)
        optimizer.step()
        loss.item()
        _sync(device)
        stamps.append((time.perf_counter(), time.process_time()))
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batches of 8 and 4 steps, for a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for row in run(args.quick, args.device):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Benchmark of `sig train`: training steps per second against the network's ceiling, and memory.

Speed: the same SigNet steps (batch of 170×242 uint8 images from a memory-mapped folder,
random 150×220 crops, cross-entropy over the users, backward, value clipping, SGD with
Nesterov momentum) three ways, interleaved ``rounds`` times in the same run:

- ``ceiling``: the network alone on one batch already cropped, scaled and in memory;
- ``ours``: :func:`sigcli.training.loop.fit` with the SigNet objective (reads, crops and
  scales each batch from the memory-mapped folder in a background thread);
- ``reference``: the reference's loop: a DataLoader with a per-sample PIL random crop
  (ToPILImage → RandomCrop → ToTensor) over the whole set loaded in memory, batch 32.

A way's step time is its fastest step over all rounds (the first step of each run left
out), robust to other load on a shared machine. Model building, validation and checkpoint
writing are left out of all three. Goal on CPU: ours ≥ 95% of the ceiling. Fields:
``ratio`` = reference / ours (speed-up), ``ceiling`` = reference / the network alone (the
largest speed-up any loop could reach), ``ceiling_s`` = the network alone (s per step),
``of_ceiling`` = network alone / ours.

Memory: a fresh process trains a tiny network (so that the data pipeline, not the network,
is what runs) for one epoch over a memory-mapped folder set of two sizes (4× apart) and
reports how much its resident memory grows (sampled at every step, from /proc). Goal:
flat (ratio ≈ 1). For contrast, the same runs with batches indexed from the memory map
(whose read pages count as process memory) instead of read from its file.

Run: ``python -m bench.bench_train [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms

from bench.clock import StepClock
from sigcli.data.sigset import SignatureSet
from sigcli.models import INPUT_SIZE, create_model
from sigcli.training.data import Rows, crop, random_offsets, to_unit
from sigcli.config.training import Schedule
from sigcli.training.loop import fit
from sigcli.training.supervised import SupervisedObjective

USERS = 20


def run(quick: bool, device: str = "cpu") -> list[dict]:
    batch, steps, rounds = (8, 4, 2) if quick else (32, 5, 3)
    sizes = (2000, 8000) if quick else (4000, 16000)
    return [_speed(batch, steps, rounds, torch.device(device)), *_memory(sizes)]


# --------------------------------------------------------------------------- speed
def _speed(batch: int, steps: int, rounds: int, device: torch.device) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sigset = _data(Path(tmp) / "set", batch * steps + 2)
        durations: dict[str, list[float]] = {"ceiling": [], "ours": [], "reference": []}
        for round_ in range(rounds):
            durations["ceiling"] += _ceiling(sigset, batch, steps, device)
            durations["ours"] += _ours(sigset, batch, steps, device, Path(tmp) / f"run{round_}")
            durations["reference"] += _reference(sigset, batch, steps, device)
    step = {name: min(values) for name, values in durations.items()}
    return {"step": "train steps (signet)",
            "work": f"batch {batch}, {rounds}×{steps} steps, {USERS} users, memory-mapped folder, {device}",
            "ours_s": round(step["ours"], 4), "baseline_s": round(step["reference"], 4),
            "ratio": round(step["reference"] / step["ours"], 2),
            "ceiling": round(step["reference"] / step["ceiling"], 2), "ceiling_s": round(step["ceiling"], 4),
            "of_ceiling": round(step["ceiling"] / step["ours"], 3),
            "images_per_s": {name: round(batch / value, 1) for name, value in step.items()}}


def _data(folder: Path, n: int) -> SignatureSet:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 1, 170, 242), dtype=np.uint8)
    SignatureSet(x, np.arange(n) % USERS, np.zeros(n, dtype=np.int64)).save(folder, folder=True)
    return SignatureSet.load(folder)


def _network(device: torch.device) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return create_model("signet").to(device), nn.Linear(2048, USERS).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ceiling(sigset: SignatureSet, batch: int, steps: int, device: torch.device) -> list[float]:
    """The bare step on one resident, cropped, scaled batch."""
    features, classifier = _network(device)
    params = [*features.parameters(), *classifier.parameters()]
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    images = torch.from_numpy(np.array(sigset.x[:batch]))
    images = to_unit(crop(images, *random_offsets(batch, images.shape[2:], INPUT_SIZE, generator))).to(device)
    labels = torch.from_numpy(sigset.y[:batch]).to(device)
    durations = []
    for _ in range(steps + 1):
        _sync(device)
        start = time.perf_counter()
        loss = F.cross_entropy(classifier(features(images)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_value_(params, 10)
        optimizer.step()
        loss.item()
        _sync(device)
        durations.append(time.perf_counter() - start)
    return durations[1:]


def _ours(sigset: SignatureSet, batch: int, steps: int, device: torch.device, logdir: Path) -> list[float]:
    features, _ = _network(device)
    rows = Rows.select(sigset)
    train, val = np.arange(batch * steps), np.arange(batch * steps, len(rows))
    objective = SupervisedObjective(features, rows, train, val, USERS, batch_size=batch)
    clock = StepClock()
    fit(objective, Schedule(epochs=1, device=str(device)), logdir, reporter=clock)
    return list(np.diff(clock.stamps))


class _TransformDataset(Dataset):
    """The reference's TransformDataset: a per-sample transform of the image."""

    def __init__(self, base: TensorDataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        item = self.base[index]
        return (self.transform(item[0]), *item[1:])


def _reference(sigset: SignatureSet, batch: int, steps: int, device: torch.device) -> list[float]:
    """The reference's train_epoch over a DataLoader with per-sample PIL random crops."""
    features, classifier = _network(device)
    params = [*features.parameters(), *classifier.parameters()]
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    n = batch * steps
    data = _TransformDataset(TensorDataset(torch.from_numpy(np.array(sigset.x[:n])), torch.from_numpy(sigset.y[:n])),
                             transforms.Compose([transforms.ToPILImage(), transforms.RandomCrop(INPUT_SIZE),
                                                 transforms.ToTensor()]))
    stamps = []
    for x, y in DataLoader(data, batch_size=batch, shuffle=True):
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(classifier(features(x)), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_value_(params, 10)
        optimizer.step()
        loss.item()
        _sync(device)
        stamps.append(time.perf_counter())
    return list(np.diff(stamps))


# --------------------------------------------------------------------------- memory
# A fresh process trains the tiny network for one epoch and prints its resident memory
# before the run and the most it reached during it (sampled at every step).
_MEMORY_RUN = """
import json, os, sys, time
from collections import OrderedDict
from contextlib import contextmanager
from torch import nn
import sigcli.training.data as data
from sigcli.models import register_model
from sigcli.config.training import TrainOptions
from sigcli.training.supervised import train_signet

@register_model("bench-tiny")
def tiny():
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 11, stride=8), pool=nn.AdaptiveAvgPool2d((2, 2)),
                                      flat=nn.Flatten(), fc=nn.Linear(16, 8), bn=nn.BatchNorm1d(8)))
    model.feature_space_size = 8
    return model

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

folder, logdir, from_file = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if not from_file:  # contrast: batches indexed from the memory map itself
    data._file_location = lambda x: None
before = rss_mb()
reporter = PeakReporter()
start = time.perf_counter()
train_signet(TrainOptions(data_path=folder, logdir=logdir, model="bench-tiny", epochs=1, device="cpu"), reporter)
seconds = time.perf_counter() - start
print(json.dumps({"before_mb": before, "peak_mb": max(reporter.peak, rss_mb()), "seconds": seconds}))
"""


def _memory(sizes: tuple[int, int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            _data(Path(tmp) / f"set{n}", n)
        for from_file in (True, False):
            growth, seconds = {}, 0.0
            for n in sizes:
                done = subprocess.run([sys.executable, "-c", _MEMORY_RUN, str(Path(tmp) / f"set{n}"),
                                       str(Path(tmp) / f"run{n}{from_file}"), "1" if from_file else "0"],
                                      capture_output=True, text=True, check=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                growth[n] = round(result["peak_mb"] - result["before_mb"], 1)
                seconds = result["seconds"]
            small, large = sizes
            rows.append({"step": "memory growth" + ("" if from_file else ", indexing the map (contrast)"),
                         "work": f"1 epoch, tiny network, memory-mapped folder of {small} → {large} images",
                         "ours_s": round(seconds, 2), "baseline_s": None,
                         "ratio": round(growth[large] / max(growth[small], 1.0), 2), "ceiling": None,
                         "note": "ratio: memory growth, larger set over smaller (goal ≈ 1)",
                         "growth_mb": growth,
                         "set_mb": {n: round(n * 170 * 242 / 2**20, 1) for n in sizes}})
    return rows


def show(rows: list[dict]) -> None:
    print(f"{'step':<40} {'ours_s':>8} {'baseline_s':>11} {'ratio':>6} {'ceiling':>8} {'of_ceiling':>11}  work")
    for r in rows:
        baseline = f"{r['baseline_s']:.4f}" if r["baseline_s"] is not None else "-"
        ceiling = f"{r['ceiling']:.2f}" if r["ceiling"] is not None else "-"
        of_ceiling = f"{r['of_ceiling']:.3f}" if "of_ceiling" in r else "-"
        extra = {k: v for k, v in r.items()
                 if k not in ("step", "work", "ours_s", "baseline_s", "ratio", "ceiling", "of_ceiling")}
        print(f"{r['step']:<40} {r['ours_s']:>8.4f} {baseline:>11} {r['ratio']:>6.2f} {ceiling:>8} {of_ceiling:>11}  "
              f"{r['work']}  {json.dumps(extra, ensure_ascii=False)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    show(run(arguments.quick, arguments.device))

"""Benchmark of feature extraction (`sig extract`, and wd / wi): images per second against the network's ceiling.

The same SigNet (eval mode, inference mode) over the same 170×242 uint8 set, stored as a
memory-mapped folder, three ways, interleaved ``rounds`` times in the same run:

- ``ceiling``: the network alone on one batch already cropped, scaled and in memory;
- ``ours``: :func:`sigcli.features.extract_features` (reads, crops and scales each batch
  from the memory-mapped folder in a background thread, writes into the result array);
- ``reference``: the reference's extraction: a DataLoader with a per-sample PIL centre
  crop (ToPILImage → CenterCrop → ToTensor), batch 32, features concatenated at the end.

A way's time per image is its fastest batch over all rounds divided by the batch size
(robust to other load on a shared machine); whole-pass throughputs are given as well.
Goal on CPU: ours ≥ 97% of the ceiling. Row fields: ``ratio`` = reference / ours
(speed-up), ``ceiling`` = reference / the network alone (the largest speed-up any
extraction could reach), ``ceiling_s`` = the network alone (s per image),
``of_ceiling`` = network alone / ours.

Run: ``python -m bench.bench_extract [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms

from bench.clock import StepClock
from sigcli.data.sigset import SignatureSet
from sigcli.features import extract_features
from sigcli.models import INPUT_SIZE, create_model
from sigcli.training.data import center_crop, to_unit

REFERENCE_BATCH = 32


def run(quick: bool, device: str = "cpu") -> list[dict]:
    batch, batches_per_pass, rounds = (32, 3, 2) if quick else (128, 4, 3)
    device = torch.device(device)
    torch.manual_seed(0)
    model = create_model("signet").to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        sigset = _data(Path(tmp), batch * batches_per_pass)
        per_batch: dict[str, list[float]] = {"ceiling": [], "ours": [], "reference": []}
        passes: dict[str, list[float]] = {"ours": [], "reference": []}
        for _ in range(rounds):
            # as many timed batches as a pass of ours yields (its first one is left out)
            per_batch["ceiling"] += _ceiling(model, sigset, batch, batches_per_pass - 1, device)
            seconds, durations = _ours(model, sigset, batch, device)
            passes["ours"].append(seconds)
            per_batch["ours"] += durations
            seconds, durations = _reference(model, sigset, device)
            passes["reference"].append(seconds)
            per_batch["reference"] += durations
    n = len(sigset)
    per_image = {"ceiling": min(per_batch["ceiling"]) / batch, "ours": min(per_batch["ours"]) / batch,
                 "reference": min(per_batch["reference"]) / REFERENCE_BATCH}
    return [{
        "step": "extract features (signet)",
        "work": f"{n} images 170×242 uint8, memory-mapped folder, batch {batch} (reference {REFERENCE_BATCH}), "
                f"{rounds} rounds, {device}",
        "ours_s": round(per_image["ours"], 5), "baseline_s": round(per_image["reference"], 5),
        "ratio": round(per_image["reference"] / per_image["ours"], 2),
        "ceiling": round(per_image["reference"] / per_image["ceiling"], 2), "ceiling_s": round(per_image["ceiling"], 5),
        "of_ceiling": round(per_image["ceiling"] / per_image["ours"], 3),
        "images_per_s": {"ceiling": round(1 / per_image["ceiling"], 1), "ours": round(1 / per_image["ours"], 1),
                         "reference": round(1 / per_image["reference"], 1)},
        "whole_pass_images_per_s": {"ours": round(n / min(passes["ours"]), 1),
                                    "reference": round(n / min(passes["reference"]), 1)},
    }]


def _data(folder: Path, n: int) -> SignatureSet:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 1, 170, 242), dtype=np.uint8)
    SignatureSet(x, np.arange(n) // 10, np.zeros(n, dtype=np.int64)).save(folder / "set", folder=True)
    return SignatureSet.load(folder / "set")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ceiling(model: torch.nn.Module, sigset: SignatureSet, batch: int, repeats: int,
             device: torch.device) -> list[float]:
    """The network alone: one resident, cropped, scaled batch, fed ``repeats`` times."""
    images = to_unit(center_crop(torch.from_numpy(np.array(sigset.x[:batch])))).contiguous().to(device)
    durations = []
    with torch.inference_mode():
        model(images)  # warm-up
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            model(images).float().cpu().numpy()
            _sync(device)
            durations.append(time.perf_counter() - start)
    return durations


def _ours(model: torch.nn.Module, sigset: SignatureSet, batch: int, device: torch.device) -> tuple[float, list[float]]:
    clock = StepClock()
    start = time.perf_counter()
    extract_features(model, sigset, batch_size=batch, device=device, reporter=clock)
    seconds = time.perf_counter() - start
    return seconds, list(np.diff(clock.stamps))  # the first batch (thread start-up) left out


class _TransformDataset(Dataset):
    """The reference's TransformDataset: a per-sample transform of the image."""

    def __init__(self, base: TensorDataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        item = self.base[index]
        return (self.transform(item[0]), *item[1:])


def _reference(model: torch.nn.Module, sigset: SignatureSet, device: torch.device) -> tuple[float, list[float]]:
    """The reference's extract_features: the whole x through a DataLoader with PIL centre crops."""
    start = time.perf_counter()
    data = _TransformDataset(TensorDataset(torch.from_numpy(np.array(sigset.x))), transforms.Compose([
        transforms.ToPILImage(), transforms.CenterCrop(INPUT_SIZE), transforms.ToTensor()]))
    result, stamps = [], []
    with torch.no_grad():
        for (images,) in DataLoader(data, batch_size=REFERENCE_BATCH):
            result.append(model(images.to(device)))
            stamps.append(time.perf_counter())
    torch.cat(result).cpu().numpy()
    return time.perf_counter() - start, list(np.diff(stamps))


def show(rows: list[dict]) -> None:
    print(f"{'step':<28} {'ours_s':>9} {'baseline_s':>11} {'ratio':>6} {'ceiling':>9} {'of_ceiling':>11}  work")
    for r in rows:
        extra = {k: v for k, v in r.items()
                 if k not in ("step", "work", "ours_s", "baseline_s", "ratio", "ceiling", "of_ceiling")}
        print(f"{r['step']:<28} {r['ours_s']:>9.5f} {r['baseline_s']:>11.5f} {r['ratio']:>6.2f} {r['ceiling']:>9.2f} "
              f"{r['of_ceiling']:>11.3f}  {r['work']}  {json.dumps(extra, ensure_ascii=False)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    show(run(arguments.quick, arguments.device))

"""What the attack and inversion benchmarks share: their networks (SigNet, or a tiny conv/BN
net), GPU sync, and the timing of our way against the reference and the ceiling."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from sigcli.models import create_model


def classifier(arch: str, classes: int) -> nn.Sequential:
    """Feature extractor + ``classes``-way head, freshly initialised from torch's current seed."""
    if arch == "signet":
        features = create_model("signet")
    else:
        features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, 16, 7, stride=4, bias=False)), ("bn1", nn.BatchNorm2d(16)), ("relu1", nn.ReLU()),
            ("pool", nn.MaxPool2d(3, 2)),
            ("conv2", nn.Conv2d(16, 32, 3, padding=1, bias=False)), ("bn2", nn.BatchNorm2d(32)),
            ("relu2", nn.ReLU()), ("avg", nn.AdaptiveAvgPool2d((3, 5))), ("flat", nn.Flatten()),
            ("fc", nn.Linear(480, 64, bias=False)), ("bn3", nn.BatchNorm1d(64)), ("relu3", nn.ReLU())]))
        features.feature_space_size = 64
    return nn.Sequential(features, nn.Linear(features.feature_space_size, classes))


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(ways: dict[str, Callable[[], list[float]]], rounds: int) -> dict[str, float]:
    """Each way's fastest time over ``rounds`` rounds, the ways' order rotated every round
    (no way always runs first, on a cold or a warm machine)."""
    names = list(ways)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            times[name] += ways[name]()
    return {name: min(values) for name, values in times.items()}


def against_reference(best: dict[str, float]) -> dict[str, float]:
    """The row fields comparing ``ours`` with the ``reference`` and the ``ceiling`` (seconds)."""
    return {"ours_s": round(best["ours"], 5), "baseline_s": round(best["reference"], 5),
            "ratio": round(best["reference"] / best["ours"], 3),
            "ceiling": round(best["reference"] / best["ceiling"], 3),
            "of_ceiling": round(best["ceiling"] / best["ours"], 3)}

"""Tiny preprocessed-like signature sets, and the tiny networks tests train and load.

The networks are registered through the public registry, exactly as a third party adds an
architecture, but only while a test runs (``tests/conftest.py`` wraps every test in
:func:`networks_registered`), so no registration outlives a test and what a test sees of the
registry does not depend on which tests ran before. A child process (``torchrun``, a run
killed on purpose) calls :func:`register_networks` instead.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from contextlib import ExitStack, contextmanager
from typing import Iterator

import numpy as np
import pytest
import torch
from pydantic import BaseModel
from torch import nn

from sigcli.data.sigset import SignatureSet
from sigcli.models import ModelFactory, register_model, registered

TINY = "tiny-test"
DISTILL_TINY, DISTILL_TINY_WIDE = "distill-tiny", "distill-tiny-wide"
INVERT_TINY_BN = "tiny-bn-invert-test"
VERIFY_NET = "verify-test-net"


def tiny_net() -> nn.Module:
    """A few hundred parameters with SigNet's interface: 1×150×220 in, 16 features out."""
    model = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(1, 4, 11, stride=4, bias=False)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d((3, 5))), ("flat", nn.Flatten()), ("fc", nn.Linear(60, 16)),
    ]))
    model.feature_space_size = 16
    return model


class TinyNet(nn.Module):
    """1×150×220 in, 8 features out, a few hundred parameters: a distillation run of a few epochs takes a second."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv_layers = nn.Sequential(nn.Conv2d(1, channels, 5, stride=5, bias=False), nn.BatchNorm2d(channels),
                                         nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.fc_layers = nn.Sequential(nn.Linear(4 * channels, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU())
        self.feature_space_size = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_layers(torch.flatten(self.conv_layers(x), 1))


def tiny_bn_features() -> nn.Module:
    """conv → BN → ReLU → pool → conv → BN → ReLU → pool → fc → BN1d → ReLU: 16-d features (inversion)."""
    features = nn.Sequential(
        nn.Conv2d(1, 6, 7, stride=4, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(6, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.AdaptiveAvgPool2d((3, 4)),
        nn.Flatten(), nn.Linear(144, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU())
    features.feature_space_size = 16
    return features


def small_net() -> nn.Module:
    """Three conv blocks and a 64-d feature layer: ~25k parameters, ~5 M multiply-adds per image (verify)."""
    def block(channels_in: int, channels_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(channels_in, channels_out, kernel, stride, bias=False), nn.BatchNorm2d(channels_out),
                nn.ReLU()]

    model = nn.Sequential(*block(1, 8, 5, 2), nn.MaxPool2d(2), *block(8, 16, 3), nn.MaxPool2d(2), *block(16, 32, 3),
                          nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(192, 64), nn.BatchNorm1d(64),
                          nn.ReLU())
    model.feature_space_size = 64
    return model


NETWORKS: dict[str, ModelFactory] = {TINY: tiny_net, DISTILL_TINY: lambda: TinyNet(4),
                                     DISTILL_TINY_WIDE: lambda: TinyNet(6), INVERT_TINY_BN: tiny_bn_features,
                                     VERIFY_NET: small_net}


@contextmanager
def networks_registered() -> Iterator[None]:
    """Every test network registered for the block only; the registry is as it was afterwards."""
    with ExitStack() as stack:
        for name, factory in NETWORKS.items():
            stack.enter_context(registered(name, factory))
        yield


def register_networks() -> None:
    """Every test network registered for the rest of the process (a child process of a test)."""
    for name, factory in NETWORKS.items():
        register_model(name)(factory)


def flags_missing_from_help(model: type[BaseModel], help_text: str) -> list[str]:
    """The options of ``model`` (``--flag``, or an argument's metavar) that ``--help`` does not name."""
    from sigcli.cli.derive import flag
    from sigcli.options import Cli

    missing = []
    for name, field in model.model_fields.items():
        cli = next((m for m in field.metadata if isinstance(m, Cli)), None)
        if cli is not None and cli.skip:
            continue
        shown = (cli.metavar or name.upper()) if cli is not None and cli.argument else flag(name, cli)
        if not re.search(re.escape(shown) + r"(?![\w-])", help_text):
            missing.append(shown)
    return missing


def signature_set(users: int = 4, genuine: int = 5, skilled: int = 0, seed: int = 0,
                  size: tuple[int, int] = (170, 242)) -> SignatureSet:
    """Ink bright on 0: each user's stroke at its own height; skilled forgeries fainter."""
    rng = np.random.default_rng(seed)
    height, width = size
    images, y, yforg = [], [], []
    for user in range(users):
        for k in range(genuine + skilled):
            image = rng.integers(0, 20, size, dtype=np.uint8)
            row = 20 + (height - 50) * user // max(1, users - 1)
            image[row:row + 12, width // 6:width - width // 6] = 220 if k < genuine else 90
            images.append(image)
            y.append(user)
            yforg.append(0 if k < genuine else 1)
    n = len(images)
    return SignatureSet(np.stack(images)[:, None], np.asarray(y), np.asarray(yforg),
                        user_mapping=np.arange(100, 100 + users), filenames=np.asarray([f"s{i}.png" for i in range(n)]))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: with several threads, synchronisation costs more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class StopAfter:
    """A reporter that interrupts a run (like Ctrl-C) once ``batches`` batches are written."""

    def __init__(self, batches: int):
        self.batches = batches

    @contextmanager
    def task(self, description, total):
        outer = self

        class _Task:
            def advance(self, n=1, **fields):
                if n:
                    outer.batches -= n
                    if outer.batches == 0:
                        raise KeyboardInterrupt

        yield _Task()

"""Tiny preprocessed-like signature sets and a tiny registered network for training tests.

``TINY`` is registered through the public :func:`sigcli.models.register_model`, exactly as a
third party would add an architecture: one decorated factory, nothing else to touch.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from torch import nn

from sigcli.data.sigset import SignatureSet
from sigcli.models import register_model

TINY = "tiny-test"


@register_model(TINY)
def tiny_net() -> nn.Module:
    """A few hundred parameters with SigNet's interface: 1×150×220 in, 16 features out."""
    model = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(1, 4, 11, stride=4, bias=False)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d((3, 5))), ("flat", nn.Flatten()), ("fc", nn.Linear(60, 16)),
    ]))
    model.feature_space_size = 16
    return model


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

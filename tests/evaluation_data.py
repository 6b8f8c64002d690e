"""Small synthetic feature sets for the evaluation tests (wd, wi, report), and what a command's
``--help`` must name."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from pydantic import BaseModel

from sigcli.features import FeatureSet
from sigcli.options import Cli


def option_names(model: type[BaseModel]) -> Iterator[str]:
    """Each field's flag (its ``Cli`` marker's, else ``--field-name``), or its metavar if positional."""
    for name, field in model.model_fields.items():
        cli = next((m for m in field.metadata if isinstance(m, Cli)), Cli())
        if not cli.skip:
            yield cli.metavar if cli.argument else cli.flag or "--" + name.replace("_", "-")


def synthetic_features(n_users: int = 14, dim: int = 16, genuine: int = 8, skilled: int = 6,
                       seed: int = 0, first_user: int = 0) -> FeatureSet:
    """Users ``first_user..`` with their own mean; skilled forgeries lie between the mean and others.

    Features are float32 and non-negative like SigNet's (ReLU outputs), so the SVMs separate
    users imperfectly and the metrics are neither 0 nor 1.
    """
    rng = np.random.RandomState(seed)
    centres = rng.randn(n_users, dim) * 1.5
    rows, y, yforg = [], [], []
    for user in range(n_users):
        gen = centres[user] + rng.randn(genuine, dim)
        forg = 0.5 * centres[user] + 0.5 * centres[rng.randint(n_users)] + rng.randn(skilled, dim)
        rows += [gen, forg]
        y += [first_user + user] * (genuine + skilled)
        yforg += [0] * genuine + [1] * skilled
    features = np.maximum(np.concatenate(rows), 0).astype(np.float32)
    return FeatureSet(features, np.asarray(y, dtype=np.int64), np.asarray(yforg, dtype=np.int64))

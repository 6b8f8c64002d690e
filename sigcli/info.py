"""One-line descriptions of sig's files, whatever their kind (``sig info``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from sigcli.errors import InputError


def describe(path: Path, allow_pickle: bool = False) -> str:
    """Say what ``path`` holds: a signature set, a feature file or a checkpoint."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.suffix == ".pth":
        from sigcli.models.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        heads = f"{checkpoint.num_classes} users" if checkpoint.num_classes is not None else "no user head"
        return f"{checkpoint.arch} checkpoint, {heads}"
    if path.is_file() and zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as data:
            if "features" in data.files:
                from sigcli.features import FeatureSet

                features = FeatureSet.load(path)
                users = len(np.unique(features.y))
                return f"feature file: {len(features.y)} signatures of {users} users, {features.dim}-d"
    from sigcli.data.sigset import SignatureSet

    return "signature set: " + SignatureSet.load(path, allow_pickle=allow_pickle).summary()

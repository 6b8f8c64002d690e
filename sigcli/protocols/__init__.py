"""Evaluation protocols: writer-dependent (:mod:`.wd`) and writer-independent (:mod:`.wi`) SVMs.

This module holds what both share: reading the features an evaluation runs on, with the
provenance of its inputs, and the checks on a feature set before any draw. Their options
are :mod:`sigcli.config.evaluation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sigcli.config.evaluation import EvaluationOptions
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.fileio import sha256_of
from sigcli.options import require_users_within, users_text
from sigcli.progress import Reporter


def users_of(features: FeatureSet, first_last: tuple[int, int], role: str) -> np.ndarray:
    """Users of ``[first, last)`` present in ``features``, ascending; an error if the range
    reaches beyond the features' users or holds none of them."""
    first, last = first_last
    flag = f"--{role[:3]}-users"
    present = np.unique(features.y)
    require_users_within(first_last, present, flag, "the features")
    users = present[(present >= first) & (present < last)]
    if len(users) == 0:
        raise InputError(f"no {role} users in [{first}, {last}): the features have {users_text(present)}",
                         f"choose {flag} among them")
    return users


def require_counts(features: FeatureSet, users: np.ndarray, kind: int, needed: int, why: str) -> None:
    """Every user has at least ``needed`` signatures of ``kind`` (0 genuine, 1 skilled)."""
    names = {0: "genuine signatures", 1: "skilled forgeries"}
    counts = np.bincount(features.y[features.yforg == kind], minlength=int(users.max()) + 1)[users]
    short = np.flatnonzero(counts < needed)
    if len(short):
        user = int(users[short[0]])
        more = f" (and {len(short) - 1} more users)" if len(short) > 1 else ""
        raise InputError(f"user {user} has {counts[short[0]]} {names[kind]}{more}; {why} need {needed}")


def evaluation_features(options: EvaluationOptions,
                        reporter: Reporter | None = None) -> tuple[FeatureSet, dict[str, Any]]:
    """The features an evaluation runs on, and the provenance of its inputs (paths, sha256).

    Either a feature file (``features_path``) or a checkpoint and a signature set; then only
    the exploitation and development users' signatures are extracted.
    """
    o = options
    if o.features_path is not None:
        feature_set = FeatureSet.load(o.features_path)
        return feature_set, {"features": {**_provenance(o.features_path), "source": feature_set.source}}
    if o.model_path is None or o.data_path is None:
        raise InputError("no features to evaluate",
                         "give --features-path F.npz, or --model-path M with --data-path D")
    from sigcli.data.sigset import SignatureSet, canvas_of
    from sigcli.features import extract_feature_set
    from sigcli.models.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(o.model_path, allow_unsafe=o.allow_unsafe_checkpoint)
    signatures = SignatureSet.load(o.data_path, allow_pickle=o.allow_pickle)
    present = np.unique(signatures.y)
    for flag, users in (("--exp-users", o.exp_users), ("--dev-users", o.dev_users)):
        require_users_within(users, present, flag, str(o.data_path))
    parts = [extract_feature_set(checkpoint, signatures, users, o.batch_size, o.device, reporter)
             for users in (o.exp_users, o.dev_users)]
    feature_set = FeatureSet(
        np.concatenate([p.features for p in parts]), np.concatenate([p.y for p in parts]),
        np.concatenate([p.yforg for p in parts]), parts[0].user_mapping,
        None if any(p.filenames is None for p in parts) else np.concatenate([p.filenames for p in parts]),
        parts[0].source, canvas_of(o.data_path))
    return feature_set, {"model": _provenance(o.model_path), "data": _provenance(o.data_path)}


def _provenance(path: Path) -> dict[str, str]:
    return {"path": str(path), "sha256": sha256_of(path)}

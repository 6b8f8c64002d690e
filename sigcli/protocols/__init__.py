"""Evaluation protocols: writer-dependent (:mod:`.wd`) and writer-independent (:mod:`.wi`) SVMs.

This module holds what both share: the options every evaluation has (user ranges, SVM,
folds, seed) and the checks on a feature set before any draw.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from sigcli.device import check_device
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.options import Options, require_users_within, user_range, users_text
from sigcli.progress import Reporter
from sigcli.results import fingerprint


class EvaluationOptions(Options):
    """Options shared by ``sig wd`` and ``sig wi``; defaults are the references'."""

    exp_users: tuple[int, int] = (0, 300)       # exploitation users [first, last): the evaluated writers
    dev_users: tuple[int, int] = (300, 881)     # development users: negatives / WI training
    gen_for_train: int = Field(12, ge=1)        # genuine signatures per user for training
    gen_for_test: int = Field(10, ge=1)         # genuine signatures per user for testing
    svm_type: Literal["rbf", "linear"] = "rbf"
    svm_c: float = Field(1.0, gt=0)
    svm_gamma: float = Field(2.0 ** -11, gt=0)  # RBF width; accepts "2^-11"
    folds: int = Field(10, ge=1)                # repetitions, all drawn from one generator
    seed: int = 1234                            # the references' fixed seed
    threshold: float = 0.0                      # decision threshold of FRR / FAR

    @field_validator("svm_gamma", mode="before")
    @classmethod
    def _gamma(cls, value: Any) -> Any:
        return parse_gamma(value) if isinstance(value, str) else value

    @field_validator("exp_users", "dev_users", mode="before")
    @classmethod
    def _range(cls, value: Any, info) -> Any:
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return user_range(value, "--" + info.field_name.replace("_", "-"))
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> "EvaluationOptions":
        (e0, e1), (d0, d1) = self.exp_users, self.dev_users
        if max(e0, d0) < min(e1, d1):
            raise InputError(f"--exp-users {e0} {e1} and --dev-users {d0} {d1} overlap "
                             f"(users {max(e0, d0)}..{min(e1, d1) - 1} are in both)",
                             "exploitation and development users must be disjoint")
        return self


def parse_gamma(text: str) -> float:
    """``"2^-11"``, ``"2**-11"`` or a plain number.

    >>> parse_gamma("2^-11") == 2 ** -11, parse_gamma("0.5")
    (True, 0.5)
    """
    match = re.fullmatch(r"\s*([0-9.]+)\s*(?:\^|\*\*)\s*([-+]?[0-9.]+)\s*", text)
    try:
        return float(match[1]) ** float(match[2]) if match else float(text)
    except (ValueError, OverflowError):
        raise ValueError(f"'{text}' is not a number or a power like 2^-11") from None


def gamma_text(value: float) -> str:
    """Show a power of two as ``2^k`` (how the literature writes gamma), others as a number."""
    exponent = math.log2(value) if value > 0 else 0.5
    return f"2^{int(exponent)}" if exponent == int(exponent) else repr(value)


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


def evaluation_features(options: EvaluationOptions, features: Path | None = None, model_path: Path | None = None,
                        data_path: Path | None = None, batch_size: int | None = None, device: str | None = None,
                        reporter: Reporter | None = None) -> tuple[FeatureSet, dict[str, Any]]:
    """The features an evaluation runs on, and the provenance of its inputs (paths, sha256).

    Either a feature file (``features``) or a checkpoint and a signature set; then only the
    exploitation and development users' signatures are extracted.
    """
    if device is not None:
        check_device(device)
    if features is not None and (model_path is not None or data_path is not None):
        raise InputError("give either --features or --model-path with --data-path, not both")
    if features is not None:
        feature_set = FeatureSet.load(features)
        return feature_set, {"features": {**_provenance(features), "source": feature_set.source}}
    if model_path is None or data_path is None:
        raise InputError("no features to evaluate", "give --features F.npz, or --model-path M with --data-path D")
    from sigcli.data.sigset import SignatureSet, canvas_of
    from sigcli.features import extract_feature_set
    from sigcli.models.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(model_path)
    signatures = SignatureSet.load(data_path)
    present = np.unique(signatures.y)
    for flag, users in (("--exp-users", options.exp_users), ("--dev-users", options.dev_users)):
        require_users_within(users, present, flag, str(data_path))
    given = {"batch_size": batch_size, "device": device}
    extract = {key: value for key, value in given.items() if value is not None}  # else extraction's defaults
    parts = [extract_feature_set(checkpoint, signatures, users, reporter=reporter, **extract)
             for users in (options.exp_users, options.dev_users)]
    feature_set = FeatureSet(
        np.concatenate([p.features for p in parts]), np.concatenate([p.y for p in parts]),
        np.concatenate([p.yforg for p in parts]), parts[0].user_mapping,
        None if any(p.filenames is None for p in parts) else np.concatenate([p.filenames for p in parts]),
        parts[0].source, canvas_of(data_path))
    return feature_set, {"model": _provenance(model_path), "data": _provenance(data_path)}


def _provenance(path: Path) -> dict[str, str]:
    return {"path": str(path), "sha256": fingerprint(path)}

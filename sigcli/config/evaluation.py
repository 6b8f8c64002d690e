"""Options of ``sig wd`` and ``sig wi``: what both evaluations share, then each one's own.

The protocols' defaults are the reference tools' (user ranges of GPDS, 12 training genuines,
10 folds, seed 1234, an RBF SVM with C = 1 and gamma = 2^-11).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from sigcli.config.common import (AllowPickle, AllowUnsafeCheckpoint, DataPath, Device, Fusion, Json, ModelPath,
                                  Overwrite, Seed, Workers)
from sigcli.config.extract import EXTRACT_BATCH_SIZE
from sigcli.errors import InputError
from sigcli.options import Cli, Options, user_range


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
    """A power of two as ``2^k`` (how the literature writes gamma), any other number as itself;
    :func:`parse_gamma` reads either back to the same float."""
    exponent = round(math.log2(value)) if value > 0 else 0
    return f"2^{exponent}" if value > 0 and 2.0 ** exponent == value else repr(value)


class EvaluationOptions(Options):
    """Options shared by ``sig wd`` and ``sig wi``."""

    features_path: Optional[Path] = Field(None, description="Feature file of 'sig extract' (instead of --model-path "
                                                            "and --data-path).")
    model_path: Optional[ModelPath] = None
    data_path: Optional[DataPath] = None
    save_path: Optional[Path] = Field(None, description="Results pickle (the reference's format); a JSON summary is "
                                                        "written beside it.")
    exp_users: Annotated[tuple[int, int], Cli(metavar="FIRST LAST")] = Field(
        (0, 300), description="Exploitation users FIRST LAST, the writers evaluated (LAST excluded).")
    dev_users: Annotated[tuple[int, int], Cli(metavar="FIRST LAST")] = Field(
        (300, 881), description="Development users FIRST LAST, disjoint from the exploitation users (LAST excluded).")
    gen_for_train: int = Field(12, ge=1, description="Genuine signatures per user for training.")
    gen_for_test: int = Field(10, ge=1, description="Genuine signatures per user for testing (and skilled forgeries "
                                                    "and random forgeries in sampled tests).")
    svm_type: Literal["rbf", "linear"] = Field("rbf", description="SVM kernel.")
    svm_c: float = Field(1.0, gt=0, description="SVM regularisation C.")
    svm_gamma: Annotated[float, Cli(text=gamma_text)] = Field(
        2.0 ** -11, gt=0, description="RBF gamma: a number or a power such as 2^-11.")
    folds: int = Field(10, ge=1, description="Repetitions with new random splits (one generator for all).")
    seed: Seed = 1234
    threshold: float = Field(0.0, description="Decision threshold of FRR and FAR.")
    batch_size: int = Field(EXTRACT_BATCH_SIZE, ge=1, description="Signatures per forward pass when extracting "
                                                                   "(with --model-path).")
    device: Device = "auto"
    overwrite: Overwrite = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    allow_pickle: AllowPickle = False
    as_json: Json = False

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
    def _consistent(self) -> "EvaluationOptions":
        if self.features_path is not None and (self.model_path is not None or self.data_path is not None):
            raise InputError("give either --features-path or --model-path with --data-path, not both")
        (e0, e1), (d0, d1) = self.exp_users, self.dev_users
        if max(e0, d0) < min(e1, d1):
            raise InputError(f"--exp-users {e0} {e1} and --dev-users {d0} {d1} overlap "
                             f"(users {max(e0, d0)}..{min(e1, d1) - 1} are in both)",
                             "exploitation and development users must be disjoint")
        return self


class WDOptions(EvaluationOptions):
    """Options of ``sig wd``: one SVM per exploitation user."""

    forg_from_dev: int = Field(14, ge=0, description="Random forgeries (genuines) taken from each development user "
                                                     "as negatives.")
    forg_from_exp: int = Field(0, ge=0, description="Random forgeries taken from each other exploitation user's "
                                                    "training genuines.")
    test_mode: Literal["sampled", "full"] = Field(
        "sampled", description="sampled: Viana et al. 2024 (--gen-for-test signatures of each kind per user); full: "
                               "Hafemann et al. 2017 (every test signature).")
    fast_approx: bool = Field(False, description="One scaler per fold on the development negatives instead of one "
                                                 "per user, so their kernel is computed once: much faster, not the "
                                                 "reference.")
    svm_backend: Literal["auto", "precomputed", "libsvm"] = Field(
        "auto", description="precomputed: numpy computes the kernel matrix (fast, equal to libsvm to ~1e-12); "
                            "libsvm: the reference's own fit; auto: precomputed when the matrices fit in memory.")
    workers: Workers = None

    @model_validator(mode="after")
    def _negatives(self) -> "WDOptions":
        if self.forg_from_dev == 0 and self.forg_from_exp == 0:
            raise InputError("--forg-from-dev 0 and --forg-from-exp 0 leave the SVMs without negatives",
                             "give at least one of them > 0")
        if self.forg_from_exp > self.gen_for_train:
            raise InputError(f"--forg-from-exp {self.forg_from_exp} exceeds --gen-for-train {self.gen_for_train}",
                             "random forgeries from exploitation users come from their training genuines")
        if self.fast_approx and self.forg_from_dev == 0:
            raise InputError("--fast-approx shares the development negatives between users",
                             "it needs --forg-from-dev > 0")
        return self


class WIOptions(EvaluationOptions):
    """Options of ``sig wi``: one SVM on signature pairs for every writer."""

    save_model: Optional[Path] = Field(None, description="Keep the first fold's classifier (scaler + SVM, skops "
                                                         "format) for 'sig verify'.")
    gen_for_ref: int = Field(12, ge=1, description="Genuine references per exploitation user.")
    fusion: Fusion = "max"

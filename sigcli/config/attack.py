"""Options of ``sig attack``: the attack, and the system it attacks (docs/adversarial.md).

``--system classifier`` attacks a checkpoint's feature extractor and user classifier with one
L2 budget (``--max-l2``) and writes the adversarial images. ``--system wd`` attacks a
writer-dependent verification system (features + one SVM per user, built as ``sig wd``
builds them) over a sweep of budgets (``--budgets``) and writes success rates. Each
system's own options are refused with the other one, so a command line never carries an
option that silently does nothing.
"""

from __future__ import annotations

import re
from copy import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, create_model, field_validator, model_validator

from sigcli.config.common import (AllowPickle, AllowUnsafeCheckpoint, DataPath, Device, Json, ModelPath, Overwrite,
                                  Seed, UserRange)
from sigcli.config.evaluation import WDOptions, parse_gamma
from sigcli.errors import InputError
from sigcli.options import Cli, Options, build

System = Literal["classifier", "wd"]
#: Signatures attacked on a WD system: genuine ones made to be rejected (Type I), skilled and
#: random forgeries made to be accepted (Type II).
WD_KINDS = ("genuine", "skilled", "random")
#: How reports name each kind of attack.
WD_KIND_NAMES = {"genuine": "Type I (genuine)", "skilled": "Type II (skilled)", "random": "Type II (random)"}
#: Options of ``sig wd`` that build the attacked WD system, taken with their defaults and help.
WD_SYSTEM_FIELDS = ("exp_users", "dev_users", "gen_for_train", "gen_for_test", "forg_from_dev", "forg_from_exp",
                    "test_mode", "svm_type", "svm_c", "svm_gamma", "threshold")
#: Options that only the classifier system reads.
CLASSIFIER_FIELDS = ("users", "max_l2", "targeted")
#: Options that only the WD system reads (with :data:`WD_SYSTEM_FIELDS`).
WD_FIELDS = ("budgets", "kinds", *WD_SYSTEM_FIELDS)


def parse_numbers(value: Any) -> Any:
    """``"1,2,5"`` or ``"1 2 5"`` as a list of floats (other values as they are, for pydantic)."""
    if isinstance(value, str):
        words = [w for w in re.split(r"[,\s]+", value) if w]
        try:
            return [float(w) for w in words]
        except ValueError:
            raise InputError(f"--budgets '{value}' is not a list of numbers", "give e.g. --budgets 1,2,5,10") from None
    return value


def numbers_text(values: list[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def _is_default(options: Options, name: str) -> bool:
    """Whether a field holds its default (a tuple equals the same list: the CLI gives either)."""
    value, default = getattr(options, name), type(options).model_fields[name].get_default(call_default_factory=True)
    if isinstance(value, (tuple, list)) and isinstance(default, (tuple, list)):
        return list(value) == list(default)
    return value == default


def _wd_system_field(name: str) -> tuple[Any, Any]:
    """A field of ``sig wd`` as ``sig attack --system wd`` takes it: same type, default and check."""
    field = copy(WDOptions.model_fields[name])
    field.description = f"wd: {field.description}"
    return field.annotation, field


class _AttackOptions(Options):
    """Options of ``sig attack`` but those that build the WD system (added below, so that
    ``--help`` lists them last)."""

    model_path: ModelPath
    data_path: DataPath
    steps: int = Field(100, ge=1, description="PGD steps.")
    schedule: Literal["step", "linear"] = Field(
        "step", description="step: learning rate 1, times 0.3 every quarter of the steps; linear: 1 down to 0.01 "
                            "with each image's gradient normalised (the reference's fast attack).")
    loss_reduction: Literal["sum", "mean"] = Field(
        "sum", description="sum: each image's attack is independent of its batch; mean: the reference's "
                           "batch-averaged cross-entropy (step schedule: depends on --batch-size).")
    save_path: Path = Field(description="classifier: adversarial signature set to write (.npz), options and "
                                        "statistics beside it (.json); wd: results to write (.json).")
    system: System = Field("classifier", description="classifier: the checkpoint's features + user classifier; "
                                                     "wd: features + writer-dependent SVMs (Type I and II attacks).")
    users: UserRange = Field(None, description="classifier: the users FIRST..LAST-1 the checkpoint was trained on "
                                               "(their signatures are attacked; LAST excluded).")
    max_l2: Optional[float] = Field(None, ge=0, description="classifier: largest L2 norm of a perturbation (pixels "
                                                            "in [0, 1]).")
    targeted: bool = Field(False, description="classifier: push each image to a random other user (drawn from "
                                              "--seed) instead of away from its own.")
    budgets: Annotated[list[float], Cli(text=numbers_text, metavar="L2,L2,...")] = Field(
        [], description="wd: the L2 budgets swept, e.g. 1,2,5,10 (one attack per budget).")
    kinds: Annotated[list[Literal[WD_KINDS]], Cli(text=",".join, metavar="KIND,...")] = Field(
        list(WD_KINDS), description="wd: signatures attacked: genuine (made to be rejected, Type I), skilled and "
                                    "random forgeries (made to be accepted, Type II).")
    seed: Seed = 1234
    batch_size: int = Field(32, ge=1, description="Images attacked together.")
    device: Device = "auto"
    overwrite: Overwrite = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    allow_pickle: AllowPickle = False
    as_json: Json = False

    @field_validator("svm_gamma", mode="before", check_fields=False)
    @classmethod
    def _gamma(cls, value: Any) -> Any:
        return parse_gamma(value) if isinstance(value, str) else value

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        return parse_numbers(value)

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        return [w for w in re.split(r"[,\s]+", value) if w] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_system(self) -> "_AttackOptions":
        foreign = CLASSIFIER_FIELDS if self.system == "wd" else WD_FIELDS
        given = [name for name in foreign if not _is_default(self, name)]
        if given:
            other = "classifier" if self.system == "wd" else "wd"
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise InputError(f"{flags} {'is an option' if len(given) == 1 else 'are options'} of --system {other}, "
                             f"not of --system {self.system}", f"drop it, or pass --system {other}")
        if self.system == "classifier" and self.max_l2 is None:
            raise InputError("--system classifier needs --max-l2", "give the largest L2 norm, e.g. --max-l2 5")
        if self.system == "wd":
            if not self.budgets:
                raise InputError("--system wd needs --budgets", "give the L2 budgets to sweep, e.g. --budgets 1,2,5,10")
            if min(self.budgets) < 0:
                raise InputError(f"--budgets {numbers_text(self.budgets)} holds a negative budget",
                                 "L2 budgets are >= 0")
            if not self.kinds:
                raise InputError("--kinds is empty", f"give one or more of {', '.join(WD_KINDS)}")
            self.wd_options()  # the system must be one 'sig wd' can build
        return self

    def wd_options(self) -> WDOptions:
        """The ``sig wd`` options that build the attacked system (one fold, drawn from ``seed``)."""
        return build(WDOptions, **{name: getattr(self, name) for name in WD_SYSTEM_FIELDS}, folds=1, seed=self.seed,
                     svm_backend="precomputed")


AttackOptions = create_model("AttackOptions", __base__=_AttackOptions, __module__=__name__,
                             __doc__="Options of ``sig attack``.",
                             **{name: _wd_system_field(name) for name in WD_SYSTEM_FIELDS})

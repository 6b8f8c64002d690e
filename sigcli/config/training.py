"""Options of ``sig train``, and the optimisation schedule it shares with ``sig distill``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from sigcli.config.common import (AllowPickle, AllowUnsafeCheckpoint, DataPath, Device, Json, Overwrite, Seed,
                                  Tensorboard, UserRange)
from sigcli.errors import InputError
from sigcli.options import Cli, Options, default

#: The architectures sig itself registers. ``--help`` names them without importing torch to
#: build the registry; a test keeps this equal to ``sigcli.models.BUILTIN_MODELS``, and a
#: name is checked against the registry (plugins included) when the command runs.
BUILTIN_MODELS = ("signet", "signet-thin", "signet-smaller")
ARCHITECTURE = f"a registered architecture, e.g. {', '.join(BUILTIN_MODELS)}"

Logdir = Annotated[Path, Field(description="Run folder: checkpoints (model_best.pth, model_last.pth), metrics.csv, "
                                           "config.json and the resume state.")]
Resume = Annotated[bool, Field(description="Continue the interrupted run in --logdir, with the options it started "
                                           "with (only --epochs, --device and --amp may change).")]
START_OVER = "Start over in a --logdir that holds a run (only the run's own files are removed)."
#: SigNet-F's user loss: over the genuine signatures (L2) or over all (L1) (docs/training.md#signet-and-signet-f-objectives).
LossType = Literal["L1", "L2"]
#: Adversarial training (docs/training.md#adversarial-training).
Adversarial = Literal["none", "madry", "ensadv"]
#: The options of one kind of adversarial training: their flag and that kind.
_ADVERSARIAL_OPTIONS = {"attack_steps": ("--attack-steps", "madry"), "attack_l2": ("--attack-l2", "madry"),
                        "adv_models": ("--adv-model", "ensadv"), "eps": ("--eps", "ensadv"),
                        "alpha": ("--alpha", "ensadv")}


class Schedule(Options):
    """How to optimise, whatever the objective; the defaults are the reference's (docs/training.md)."""

    epochs: int = Field(20, ge=1, description="Passes over the training set.")
    lr: float = Field(1e-3, gt=0, description="Initial learning rate of SGD.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = Field(True, description="Nesterov momentum.")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty on every parameter.")
    lr_decay: float = Field(0.1, gt=0, le=1, description="Factor the learning rate is multiplied by at each decay.")
    lr_decay_times: int = Field(3, ge=0, description=(
        "Spacing of the learning-rate decays: the rate is multiplied by --lr-decay every max(1, EPOCHS // "
        "LR_DECAY_TIMES) epochs, so (EPOCHS - 1) // that step times in a run (3 times in 20 epochs, twice in "
        "60); 0 keeps it constant."))
    grad_clip: Optional[float] = Field(10.0, gt=0, description="Clip every gradient value to ±this.")
    seed: Seed = 42
    device: Device = "auto"
    amp: bool = Field(False, description="Mixed precision (float16) on CUDA; ignored on the CPU.")


class TrainOptions(Schedule):
    """Options of ``sig train`` (the optimisation ones come from :class:`Schedule`)."""

    data_path: DataPath
    logdir: Annotated[Optional[Logdir], Cli(default_text="none; required unless --test")] = None
    model: str = Field("signet", description=f"Architecture: {ARCHITECTURE}.")
    users: UserRange = Field(None, description="Train on users FIRST..LAST-1, by index in the set (LAST excluded).")
    forg: bool = Field(False, description="SigNet-F: also learn to tell skilled forgeries.")
    lamb: float = Field(0.95, ge=0, le=1, description="SigNet-F: weight λ of the forgery loss.")
    loss_type: LossType = Field("L2", description=(
        "SigNet-F's user cross-entropy: L2 over the genuine signatures (the paper's Eq. 4), L1 over all signatures, "
        "a forgery labelled with the writer it imitates (Eq. 3)."))
    batch_size: int = Field(32, ge=2, description="Signatures per step (per process under torchrun).")
    adversarial: Adversarial = Field("none", description=(
        "Adversarial training: none; madry, every training batch replaced by its PGD adversarial images "
        "(--attack-steps, --attack-l2); ensadv, ensemble adversarial training (--adv-model, --eps, --alpha)."))
    attack_steps: int = Field(200, ge=1, description="madry: PGD steps per training batch.")
    attack_l2: float = Field(20.0, gt=0, description="madry: largest L2 norm of a PGD perturbation (pixels in [0, 1]).")
    adv_models: Annotated[list[Path], Cli("--adv-models", flag="--adv-model", metavar="PATH",
                                          default_text="none: the model being trained only")] = Field(
        [], description="ensadv: a frozen checkpoint that makes adversarial images too, in turn with the model being "
                        "trained (its architecture is read from the file; repeat for more).")
    eps: float = Field(5.0, gt=0, description="ensadv: L2 norm of the one-step (FGM) perturbation.")
    alpha: float = Field(0.5, ge=0, le=1, description="ensadv: weight of the clean loss; the adversarial "
                                                      "cross-entropy gets 1 - alpha.")
    test: bool = Field(False, description="Only evaluate --checkpoint on the validation split of these options "
                                          "(--data-path, --users, --forg, --seed); train nothing, write nothing.")
    model_path: Annotated[Optional[Path], Cli("--checkpoint", default_text="none")] = Field(
        None, description="Checkpoint that --test evaluates (model_best.pth of a 'sig train' run).")
    resume: Resume = False
    tensorboard: Tensorboard = False
    overwrite: Overwrite = Field(False, description=START_OVER)
    allow_pickle: AllowPickle = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    as_json: Json = Field(False, description="Print the per-epoch summary (with --test, the validation metrics) as "
                                             "JSON on stdout instead of a table.")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainOptions":
        if self.loss_type == "L1" and not self.forg:
            raise InputError("--loss-type L1 changes SigNet-F's loss, and without --forg there are no forgeries "
                             "(both losses are the same)", "add --forg, or leave --loss-type out")
        if self.test:
            if self.model_path is None:
                raise InputError("--test evaluates a trained network", "give its --checkpoint (model_best.pth)")
        else:
            if self.model_path is not None:
                raise InputError("--checkpoint is the network --test evaluates; training starts from new weights",
                                 "add --test, or leave --checkpoint out")
            if self.logdir is None:
                raise InputError("training writes into a run folder", "give --logdir (or --test --checkpoint)")
        unused = [flag for name, (flag, kind) in _ADVERSARIAL_OPTIONS.items()
                  if self.adversarial != kind and getattr(self, name) != default(type(self), name)]
        if unused:
            raise InputError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used with "
                             f"--adversarial {self.adversarial}",
                             "give --adversarial madry (--attack-steps, --attack-l2) or ensadv (--adv-model, --eps, "
                             "--alpha), or leave them out")
        return self

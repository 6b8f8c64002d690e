"""Options of ``sig meta``: meta-learning a writer-adaptable network (Hafemann et al., TIFS 2019).

Reference option names are kept (``--num-updates``, ``--num-gen``, ``--train-lr``, ...). Two
checkpoint flags read two kinds of file, as ``docs/vocabulary.md`` asks of ``--model-path``:
``--model-path`` is a feature extractor of ``sig train`` (the reference 3-tuple) that
initialises a SigNet, ``--checkpoint`` a meta-learner written by ``sig meta`` itself (the
reference's name for it), to test with ``--test`` or to continue from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, model_validator

from sigcli.config.common import (AllowPickle, AllowUnsafeCheckpoint, DataPath, Device, Json, Overwrite, Seed,
                                  Tensorboard, check_user_range)
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Architectures a meta-learner can have (``sigcli.meta.models`` builds them).
META_MODELS = ("signet", "smallcnn")
#: Architecture of a new meta-learner when neither ``--model`` nor ``--checkpoint`` says one.
DEFAULT_META_MODEL = "signet"


def _users(description: str):
    return Annotated[tuple[int, int], AfterValidator(check_user_range), Cli(metavar="FIRST LAST"),
                     Field(description=description)]


class MetaOptions(Options):
    """Options of ``sig meta``: meta-train a network that adapts to a writer in a few gradient steps."""

    data_path: DataPath
    logdir: Optional[Path] = Field(None, description="Run folder for checkpoints, metrics.csv and config.json "
                                                     "(required unless --test).")
    model: Annotated[Optional[Literal["signet", "smallcnn"]], Cli(default_text=f"{DEFAULT_META_MODEL}, or the "
                                                                               "--checkpoint's")] = Field(
        None, description="Architecture of the meta-learner (one logit out); checked against --checkpoint.")
    model_path: Optional[Path] = Field(None, description="Checkpoint (.pth) of a SigNet feature extractor "
                                                         "trained with 'sig train', to start --model signet from.")
    checkpoint: Optional[Path] = Field(None, description="Meta-learner checkpoint of 'sig meta' (model_best.pth): "
                                                         "tested with --test, else meta-training starts from it.")
    test: bool = Field(False, description="Only test --checkpoint on --exp-users (no training).")
    save_path: Annotated[Optional[Path], Cli(default_text="LOGDIR/results.pkl")] = Field(
        None, description="Results pickle of the test (a JSON summary is written beside it); required with --test.")
    dev_users: _users("Meta-training writers FIRST..LAST-1 (LAST excluded); also the pre-training "
                      "users.") = (350, 881)
    val_users: _users("Validation writers FIRST..LAST-1: each epoch adapts to them and keeps the best "
                      "epoch.") = (300, 350)
    exp_users: Annotated[Optional[tuple[int, int]], AfterValidator(check_user_range),
                         Cli(default_text="none: no test", metavar="FIRST LAST")] = Field(
        None, description="Test writers FIRST..LAST-1, adapted to and scored after training (or with --test).")
    num_updates: int = Field(5, ge=1, description="Gradient steps K that adapt the network to a writer.")
    num_gen: int = Field(5, ge=1, description="Genuine signatures of the writer to adapt with.")
    num_rf: int = Field(10, ge=0, description="Random forgeries to adapt with: one genuine signature of each of "
                                              "as many other writers.")
    num_gen_test: int = Field(10, ge=1, description="Genuine signatures of the writer to score after adapting.")
    num_rf_test: int = Field(10, ge=0, description="Random forgeries to score: one genuine signature of each of "
                                                   "as many further writers.")
    num_sk_test: int = Field(10, ge=0, description="Skilled forgeries of the writer to score (the test needs at "
                                                   "least 1).")
    train_lr: float = Field(1e-3, gt=0, description="Learning rate of the adaptation steps (initial value when "
                                                    "--learn-task-lr).")
    learn_task_lr: bool = Field(False, description="Meta-learn one adaptation learning rate per step and per "
                                                   "weight tensor.")
    first_order: bool = Field(False, description="First-order MAML: do not differentiate through the adaptation "
                                                 "gradients (faster, less memory).")
    meta_batch_size: int = Field(4, ge=1, description="Writers (tasks) per meta-training step.")
    meta_batch_mode: Literal["auto", "vmap", "loop"] = Field(
        "auto", description="How a meta-batch is computed: vmap (its tasks together), loop (one at a time, "
                            "least memory) or auto (vmap on a GPU when it fits in half its free memory, "
                            "else loop).")
    meta_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the meta-training steps.")
    meta_min_lr: float = Field(1e-5, ge=0, description="Learning rate the cosine annealing ends at.")
    msl_epochs: int = Field(15, ge=0, description="Epochs over which the multi-step loss moves its weight to the "
                                                  "last step (0: last step only).")
    epochs: int = Field(100, ge=1, description="Meta-training epochs (each visits every meta-training writer once).")
    pretrain_epochs: int = Field(0, ge=0, description="Epochs of supervised pre-training (SigNet loss, the loop "
                                                      "of 'sig train') before meta-training.")
    pretrain_forg: bool = Field(False, description="Pre-train with the SigNet-F loss (skilled forgeries too).")
    pretrain_forg_lambda: float = Field(0.95, ge=0, le=1, description="Weight of the forgery loss in SigNet-F "
                                                                      "pre-training.")
    folds: int = Field(10, ge=1, description="Test repetitions, all drawn from one generator seeded with --seed.")
    seed: Seed = 1234
    device: Device = "auto"
    amp: bool = Field(False, description="Mixed precision (float16) on CUDA; ignored on CPU.")
    resume: bool = Field(False, description="Continue the run in --logdir after its last finished epoch.")
    tensorboard: Tensorboard = False
    overwrite: Overwrite = False
    allow_pickle: AllowPickle = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    as_json: Json = False

    @model_validator(mode="after")
    def _consistent(self) -> "MetaOptions":
        if self.test:
            if self.checkpoint is None:
                raise InputError("--test tests a trained meta-learner", "give its --checkpoint (model_best.pth)")
            if self.exp_users is None:
                raise InputError("--test needs the writers to test", "give --exp-users FIRST LAST")
            if self.save_path is None:
                raise InputError("--test needs where to write the results", "give --save-path")
        elif self.logdir is None:
            raise InputError("meta-training writes into a run folder", "give --logdir (or --test --checkpoint)")
        if self.model_path is not None and self.checkpoint is not None:
            raise InputError("--model-path (a SigNet to start from) and --checkpoint (a meta-learner) both give "
                             "the starting weights", "give one of them")
        if self.model_path is not None and self.model not in (None, "signet"):
            raise InputError(f"--model-path initialises a SigNet, not --model {self.model}",
                             "use --model signet, or leave --model-path out")
        ranges = {"--dev-users": self.dev_users, "--val-users": self.val_users, "--exp-users": self.exp_users}
        named = [(flag, users) for flag, users in ranges.items() if users is not None and not self.test]
        for i, (flag_a, (a0, a1)) in enumerate(named):
            for flag_b, (b0, b1) in named[i + 1:]:
                if max(a0, b0) < min(a1, b1):
                    raise InputError(f"{flag_a} {a0} {a1} and {flag_b} {b0} {b1} overlap "
                                     f"(users {max(a0, b0)}..{min(a1, b1) - 1} are in both)",
                                     "meta-training, validation and test writers must be disjoint")
        return self

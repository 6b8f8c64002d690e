"""Options of ``sig distill``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field

from sigcli.config.common import AllowPickle, AllowUnsafeCheckpoint, Json, Overwrite, Tensorboard, UserRange
from sigcli.config.training import ARCHITECTURE, START_OVER, Logdir, Resume, Schedule
from sigcli.options import Cli

#: What is done to D images before they reach the networks.
DTransform = Literal["none", "crop", "center-crop"]


class DistillOptions(Schedule):
    """Options of ``sig distill`` (the optimisation ones come from :class:`Schedule`)."""

    logdir: Logdir = Path("runs/distill")
    epochs: int = Field(60, ge=1, description="Passes over the continual set (over D without one).")
    s_model: str = Field("signet", description=f"Student architecture: {ARCHITECTURE}.")
    t_model_path: Annotated[Optional[Path], Cli(default_text="the downloaded signet-distill")] = Field(
        None, description="Teacher checkpoint, with its user-classification head.")
    s_model_path: Annotated[Optional[Path], Cli(default_text="a new student")] = Field(
        None, description="Student checkpoint to start from: its feature extractor and the teacher-users' rows of "
                          "its head (the whole head with --test).")
    d_data_path: Annotated[Optional[Path],
                           Cli("--d-dataset-path", default_text="the downloaded inverted-data")] = Field(
        None, description="Distillation set D: a .npz file or a memory-mapped folder.")
    d_users: UserRange = Field(None, description="D users FIRST..LAST-1, the teacher's classes in order (LAST "
                                                 "excluded).")
    d_transform: DTransform = Field("none", description=(
        "What is done to D images: none, used as they are (at the network's 150×220 input, e.g. inverted data); "
        "crop, random crops in training and the centre crop in validation; center-crop, the centre crop "
        "everywhere (e.g. a teacher's 170×242 training set as D)."))
    c_data_path: Annotated[Optional[Path],
                           Cli("--c-dataset-path", default_text="none, plain distillation")] = Field(
        None, description="Continual set C of new users to learn (170×242): a .npz file or a memory-mapped folder.")
    c_users: UserRange = Field(None, description="C users FIRST..LAST-1, by index in the set (LAST excluded).")
    d_lamb: float = Field(1.0, ge=0, description="Weight of the KL divergence to the teacher on D.")
    c_lamb: float = Field(1.0, ge=0, description="Weight of the cross-entropy on C.")
    p_lamb: float = Field(1.7, ge=0, description="Weight of the KL divergence to the teacher on C (keeps the "
                                                 "teacher's users).")
    temperature: float = Field(1.0, gt=0, description="Softmax temperature of the KL terms.")
    d_batch_size: int = Field(32, ge=2, description="D signatures per step (per process under torchrun).")
    c_batch_size: int = Field(32, ge=2, description="C signatures per step (per process under torchrun).")
    joint_bn: bool = Field(False, description="Pass D and C through the student as one batch, so batch norm's "
                                              "running statistics match training (the reference passes them "
                                              "separately).")
    resume: Resume = False
    tensorboard: Tensorboard = False
    overwrite: Overwrite = Field(False, description=START_OVER)
    test: bool = Field(False, description="Only evaluate the --s-model-path student on D-val and C-val; write "
                                          "nothing.")
    allow_pickle: AllowPickle = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    as_json: Json = Field(False, description="Print the per-epoch summary (with --test, the student's metrics) as "
                                             "JSON on stdout instead of a table.")

"""Options of ``sig invert``: how one batch is optimised, and the whole set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from sigcli.config.common import AllowUnsafeCheckpoint, Device, Json, Overwrite, Seed, Tensorboard, check_user_range
from sigcli.options import Cli, Options


class InversionSettings(Options):
    """How one batch is optimised. The defaults were measured on SigNet and SigNet-F teachers
    trained with ``sig train`` (docs/training.md#inversion-loss-terms)."""

    iterations: int = Field(100, gt=0, description="Adam steps per batch.")
    lr: float = Field(0.1, gt=0, description="Adam learning rate, decayed to 0 over the iterations (cosine).")
    batch_size: int = Field(64, gt=0, description="Images optimised together (their batch statistics need many).")
    init_scale: float = Field(0.1, gt=0, le=1, description=(
        "The images start as uniform noise in [0, INIT_SCALE]: preprocessed signatures are mostly 0 "
        "(background) with sparse bright ink."))
    bn_weight: float = Field(0.3, ge=0, description=(
        "Weight of the batch-norm statistics term (per layer, the distance of the batch's mean and standard "
        "deviation from the running ones, in units of the running standard deviation)."))
    bn_first_weight: float = Field(10.0, ge=0, description=(
        "Extra factor on the first batch-norm layer's term: the first layer sees the pixels, and matching its "
        "statistics shapes the strokes."))
    # The priors are means over pixels: on real preprocessed signatures each weighted prior is
    # about 0.04, far below the class term.
    tv_weight: float = Field(10.0, ge=0, description="Weight of the total-variation prior (mean squared "
                                                     "difference of neighbouring pixels).")
    l2_weight: float = Field(10.0, ge=0, description="Weight of the L2 prior (mean squared intensity).")
    competition_weight: float = Field(1.0, ge=0, description="Weight of the competition term 1 − JS(teacher, "
                                                             "student) (needs --s-model-path).")
    jitter: int = Field(0, ge=0, description=(
        "Largest random shift, in pixels, applied to the images at each step (SigNet's fully connected layers "
        "depend on position: shifts slow the class term down)."))


class InvertOptions(InversionSettings):
    """Options of ``sig invert``."""

    t_model_path: Path = Field(description="Teacher checkpoint, with its user-classification head.")
    save_path: Path = Field(description="Signature set to write (.npz); its options go beside it as .json.")
    per_user: int = Field(gt=0, description="Images to synthesise per teacher user.")
    users: Annotated[Optional[tuple[int, int]], AfterValidator(check_user_range),
                     Cli(default_text="0 and the number of classes", metavar="FIRST LAST")] = Field(
        None, description="User indices the teacher's classes become: class k is user FIRST+k (LAST excluded).")
    s_model_path: Optional[Path] = Field(None, description="Student checkpoint: adds the competition term (images "
                                                           "where the student disagrees with the teacher).")
    seed: Seed = 1234
    device: Device = "auto"
    preview: Optional[Path] = Field(None, description="PNG contact sheet to write of some images per user.")
    tensorboard: Tensorboard = Field(False, description="Also write each batch's loss terms, step by step, as "
                                                        "TensorBoard event files into OUT.tensorboard/ beside "
                                                        "--save-path (needs the tensorboard package).")
    overwrite: Overwrite = Field(False, description=(
        "Replace an existing --save-path (and its .json and --preview), and discard finished batches that were "
        "made with other options instead of stopping."))
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    as_json: Json = Field(False, description="Print the summary as JSON on stdout instead of a table.")

"""Options of ``sig invert``: how one batch is optimised, and the whole set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from sigcli.config.common import AllowUnsafeCheckpoint, Device, Json, Overwrite, Seed, Tensorboard, check_user_range
from sigcli.options import Cli, Options


class InversionSettings(Options):
    """How one batch is optimised. Defaults suit small teachers on a CPU; SigNet wants more
    iterations (2000 in DeepInversion) and a GPU."""

    iterations: int = Field(200, gt=0, description="Adam steps per batch.")
    lr: float = Field(0.05, gt=0, description="Adam learning rate, decayed to 0 over the iterations (cosine).")
    batch_size: int = Field(64, gt=0, description="Images optimised together (their batch statistics need many).")
    bn_weight: float = Field(1.0, ge=0, description="Weight of the batch-norm statistics term.")
    # The priors are means over pixels, hence the large weights: they keep the background at 0
    # and the strokes smooth, as in real (ink bright on 0) signatures.
    tv_weight: float = Field(100.0, ge=0, description="Weight of the total-variation prior (mean squared "
                                                      "difference of neighbouring pixels).")
    l2_weight: float = Field(1000.0, ge=0, description="Weight of the L2 prior (mean squared intensity).")
    competition_weight: float = Field(1.0, ge=0, description="Weight of the competition term (needs "
                                                             "--s-model-path).")
    jitter: int = Field(8, ge=0, description="Largest random shift, in pixels, applied to the images at each step.")


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

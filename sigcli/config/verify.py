"""Options of ``sig verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, PositiveInt, field_validator, model_validator

from sigcli.config.preprocess import IMAGE_SIZE, check_canvas
from sigcli.config.extract import EXTRACT_BATCH_SIZE
from sigcli.config.common import AllowUnsafeCheckpoint, Device, Fusion, Json, ModelPath
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Scoring without a classifier: cosine similarity of the features, or minus their Euclidean distance.
Metric = Literal["cosine", "euclidean"]
DEFAULT_METRIC: Metric = "cosine"
#: Fusion over the references when scoring by distance (a classifier brings its own).
DISTANCE_FUSION = "mean"
_RECORDED = "recorded with the model, else from the images"


class VerifierOptions(Options):
    """How a :class:`sigcli.verify.Verifier` scores: the options of ``sig verify`` that are not its inputs."""

    model_path: ModelPath
    classifier_path: Annotated[Optional[Path], Cli(default_text="score by --metric")] = Field(
        None, description="Writer-independent classifier (.skops) of 'sig wi --save-model'.")
    metric: Annotated[Optional[Metric], Cli(default_text=DEFAULT_METRIC)] = Field(
        None, description="Feature distance without --classifier-path.")
    fusion: Annotated[Optional[Fusion], Cli(default_text=f"the classifier's, else {DISTANCE_FUSION}")] = None
    threshold: Annotated[Optional[float], Cli(default_text="0 with --classifier-path, else the lowest leave-one-out "
                                                           "score of the references")] = Field(
        None, description="Scores at or above it are genuine.")
    dataset: Annotated[Optional[str], Cli(default_text=_RECORDED)] = Field(
        None, description="Use this dataset's canvas (see 'sig datasets').")
    canvas: Annotated[Optional[tuple[PositiveInt, PositiveInt]], Cli(default_text=_RECORDED, metavar="H W")] = Field(
        None, description="Canvas height and width.")
    override_canvas: bool = Field(False, description="Use --dataset or --canvas even where they contradict the canvas "
                                                     "recorded with the model or the classifier.")
    model: Annotated[Optional[str], Cli(default_text="detected")] = Field(
        None, description="Architecture; checked against the checkpoint.")
    device: Device = "auto"
    batch_size: int = Field(EXTRACT_BATCH_SIZE, ge=1, description="Images per forward pass.")
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False

    @field_validator("canvas")
    @classmethod
    def _canvas_fits(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None:
            check_canvas(value, IMAGE_SIZE, "--canvas")
        return value

    @model_validator(mode="after")
    def _one_meaning(self) -> "VerifierOptions":
        if self.dataset is not None and self.canvas is not None:
            raise InputError("--dataset and --canvas both set the canvas", "give one of them")
        if self.classifier_path is not None and self.metric is not None:
            raise InputError(f"--metric {self.metric} has no effect with --classifier-path, which scores by its SVM",
                             "leave out one of them")
        return self


class VerifyOptions(VerifierOptions):
    """Options of ``sig verify``."""

    queries: Annotated[list[Path], Cli(argument=True, metavar="QUERY")] = Field(
        min_length=1, description="Questioned images, or folders of them.")
    references: Annotated[list[Path], Cli("-r", flag="--reference", metavar="IMAGE|FOLDER")] = Field(
        min_length=1, description="A genuine reference image or a folder of them; repeat for more.")
    as_json: Json = False

"""Options of ``sig verify``."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, PositiveInt, field_validator, model_validator

from sigcli.config.preprocess import IMAGE_SIZE, check_canvas
from sigcli.config.extract import EXTRACT_BATCH_SIZE
from sigcli.config.common import AllowUnsafeCheckpoint, Device, Fusion, Json, ModelPath, Overwrite
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Scoring without a classifier: cosine similarity of the features, or minus their Euclidean distance.
Metric = Literal["cosine", "euclidean"]
DEFAULT_METRIC: Metric = "cosine"
#: Fusion over the references when scoring by distance (a classifier brings its own).
DISTANCE_FUSION = "mean"
_RECORDED = "recorded with the model, else from the images"
#: Target FARs at which 'sig wi --save-model' calibrates thresholds (docs/evaluation.md#calibrated-operating-points).
FAR_TARGETS = (0.01, 0.001)
_OPERATING_POINT = re.compile(r"(?:(skilled|random):)?(eer|boundary|far=(.+))")
OPERATING_POINT_HELP = ("eer, far=0.01 or far=0.001 against skilled forgeries (random:eer, ... against random "
                        "ones), or boundary (the SVM's, 0), as calibrated by 'sig wi --save-model'")


def operating_point_name(text: str) -> str:
    """The canonical name of an operating point: ``eer``, ``far=0.01``, ``random:eer``, ...
    (``skilled:`` is the default and dropped; a FAR is written as Python's shortest float).

    >>> operating_point_name("skilled:far=0.010"), operating_point_name("random:eer")
    ('far=0.01', 'random:eer')
    """
    match = _OPERATING_POINT.fullmatch(text.strip().lower())
    far = None
    if match and match[3] is not None:
        try:
            far = float(match[3])
        except ValueError:
            match = None
    if not match or (far is not None and not 0 < far < 1):
        raise InputError(f"--operating-point {text!r} is not one of {OPERATING_POINT_HELP}")
    prefix = "random:" if match[1] == "random" and match[2] != "boundary" else ""
    return prefix + (f"far={far!r}" if far is not None else match[2])


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
    operating_point: Annotated[Optional[str], Cli(default_text="boundary with --classifier-path",
                                                  metavar="NAME")] = Field(
        None, description=f"A threshold calibrated with --classifier-path: {OPERATING_POINT_HELP}.")
    dataset: Annotated[Optional[str], Cli(default_text=_RECORDED)] = Field(
        None, description="Use this dataset's canvas (see 'sig datasets').")
    canvas: Annotated[Optional[tuple[PositiveInt, PositiveInt]], Cli(default_text=_RECORDED, metavar="H W")] = Field(
        None, description="Canvas height and width.")
    override_canvas: bool = Field(False, description="Use --dataset or --canvas even where they contradict the canvas "
                                                     "recorded with the model or the classifier.")
    allow_classifier_mismatch: bool = Field(
        False, description="Use --classifier-path even when it was trained on features of another checkpoint, or "
                           "of images made on another canvas than the model's (scores and calibration then mislead).")
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

    @field_validator("operating_point")
    @classmethod
    def _known_point(cls, value: str | None) -> str | None:
        return None if value is None else operating_point_name(value)

    @model_validator(mode="after")
    def _one_meaning(self) -> "VerifierOptions":
        if self.dataset is not None and self.canvas is not None:
            raise InputError("--dataset and --canvas both set the canvas", "give one of them")
        if self.classifier_path is not None and self.metric is not None:
            raise InputError(f"--metric {self.metric} has no effect with --classifier-path, which scores by its SVM",
                             "leave out one of them")
        if self.operating_point is not None and self.threshold is not None:
            raise InputError("--operating-point and --threshold both set the threshold", "give one of them")
        if self.operating_point is not None and self.classifier_path is None:
            raise InputError(f"--operating-point {self.operating_point} needs --classifier-path: the thresholds are "
                             "calibrated with a WI classifier by 'sig wi --save-model'", "give --threshold instead")
        return self


class VerifyOptions(VerifierOptions):
    """Options of ``sig verify``: queries against one writer's references, or a list of pairs."""

    queries: Annotated[list[Path], Cli(argument=True, metavar="QUERY")] = Field(
        [], description="Questioned images, or folders of them.")
    references: Annotated[list[Path], Cli("-r", flag="--reference", metavar="IMAGE|FOLDER")] = Field(
        [], description="A genuine reference image or a folder of them; repeat for more.")
    pairs: Annotated[Optional[Path], Cli(metavar="CSV")] = Field(
        None, description="CSV file with a header reference,query[,label]: a reference folder (or image), a query "
                          "image, 1 genuine / 0 forgery (optional); relative paths are read from the CSV's folder.")
    save_path: Annotated[Optional[Path], Cli(metavar="FILE.csv|FILE.json")] = Field(
        None, description="With --pairs: write every row's score and decision (CSV), or the whole record (JSON).")
    overwrite: Overwrite = False
    as_json: Json = False

    @model_validator(mode="after")
    def _inputs(self) -> "VerifyOptions":
        if self.pairs is not None and (self.queries or self.references):
            raise InputError("--pairs gives the references and queries; QUERY and -r are for one writer",
                             "give either --pairs or -r with QUERY images")
        if self.pairs is None and not (self.queries and self.references):
            missing = "QUERY images" if self.references else "-r references" if self.queries else "QUERY and -r"
            raise InputError(f"no {missing} given", "give -r IMAGE|FOLDER and QUERY images, or --pairs pairs.csv")
        if self.save_path is not None:
            if self.pairs is None:
                raise InputError("--save-path writes the results of --pairs", "use --json for one writer's queries")
            if self.save_path.suffix.lower() not in (".csv", ".json"):
                raise InputError(f"--save-path {self.save_path} must end in .csv or .json",
                                 "the suffix sets the format")
        return self

"""Verify questioned signatures against a writer's genuine references (`sig verify`).

Raw images are read as the dataset loaders read them (:func:`read_gray`), normalised on one
canvas (docs/preprocessing.md#normalising-one-signature) and passed through the feature extractor in one batch (centre
150×220 crop, eval mode). Each query is then scored against every reference, higher
meaning more genuine:

- with a writer-independent classifier (``sig wi --save-model``): the SVM's decision value
  of ``|f(query) - f(reference)|``, exactly as ``sig wi`` scores its test signatures;
- otherwise the cosine similarity of the two feature vectors, or minus their Euclidean
  distance (``metric``).

The per-reference scores are fused into the query's score (the classifier's own fusion,
``mean`` for the distances; ``fusion`` overrides) and the reference with the highest score
is the query's nearest. A query is judged genuine when its score is at or above the
threshold (docs/evaluation.md#verifying-signatures), by default:

- with a classifier, 0: the SVM's decision boundary, as ``sig wi`` counts errors;
- otherwise the lowest leave-one-out score among the references (each reference scored
  against the others, fused alike): a query is accepted when it is at least as close to
  the references as the least typical reference is to the rest. This adapts to the model
  and the writer, but is a heuristic; give ``threshold`` for a calibrated one. With one
  reference there is none and queries get no decision.

Canvas: images must be made as the model's training images were, or the scores mean
little (a genuine query can flip to a forgery). The canvas recorded with the model is used:
the WI classifier's (``sig wi --save-model`` records the canvas of its features' set), else
the one in the config.json that ``sig train`` / ``sig distill`` wrote beside the
checkpoint, with the image size recorded with it. A ``dataset`` or ``canvas`` that
contradicts the record is refused unless ``override_canvas``. With nothing recorded (a
renamed or published checkpoint): the ``dataset``'s canvas, an explicit ``canvas``, or
else, with a warning, one computed from the images given: the smallest canvas with the
170×242 aspect ratio (so the resize crops nothing) that holds every image, enlarged by
``CANVAS_MARGIN``. A computed canvas depends on the largest image given, so the same query
can score slightly differently beside other images. No canvas may exceed
``sigcli.config.preprocess.MAX_CANVAS_PIXELS``.

Unreadable files and blank images (no ink) are logged one line each, listed in
:attr:`VerifyResult.skipped` and left out; no usable reference or query is an
:class:`InputError`.

Every image is held in memory and the network sees them in one batch: this is for one
writer's references and a few queries; whole datasets go through ``sig preprocess``,
``sig extract`` and ``sig wi``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from sigcli import progress
from sigcli.config.preprocess import check_canvas
from sigcli.config.verify import DEFAULT_METRIC, DISTANCE_FUSION, Metric, VerifyOptions
from sigcli.data.loader import list_images
from sigcli.data.plugins import get_loader
from sigcli.data.sigset import Canvas, SignatureSet
from sigcli.device import resolve_device
from sigcli.errors import InputError
from sigcli.features import NON_FINITE_MODEL_HINT, extract_features
from sigcli.models.checkpoint import load_checkpoint, training_canvases
from sigcli.preprocess import IMAGE_SIZE, UnusableImageError, normalise_signature, read_signature
from sigcli.progress import Reporter
from sigcli.protocols.wi import FUSIONS, WIModel, load_wi_model
from sigcli.training.data import check_image_size
from sigcli.training.loop import CONFIG

log = logging.getLogger(__name__)

#: Room added around the largest image when the canvas is computed from the images: the
#: datasets' canvases hold their largest signature, most signatures use far less of it.
CANVAS_MARGIN = 0.2
WI_SCORING = "wi-svm"


@dataclass
class Skipped:
    """An input image left out, and why."""

    file: str
    role: Literal["reference", "query"]
    reason: str


@dataclass
class QueryScore:
    file: str
    score: float  # fused over the references; higher: more genuine
    genuine: bool | None  # score >= threshold; None without a threshold
    nearest: str  # the reference with the highest score
    nearest_score: float


@dataclass
class VerifyResult:
    scoring: str  # "wi-svm", "cosine" or "euclidean"
    fusion: str
    threshold: float | None
    threshold_from: str  # where the threshold comes from, in words
    canvas: tuple[int, int]
    canvas_from: str
    image_size: tuple[int, int]  # what each image is resized to after centring on the canvas
    model: str  # the checkpoint's identity (architecture:sha256 prefix)
    references: list[str]  # the references used
    queries: list[QueryScore]
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready record."""
        record = asdict(self)
        record["canvas"], record["image_size"] = list(self.canvas), list(self.image_size)
        return record


def verify(options: VerifyOptions, reporter: Reporter | None = None) -> VerifyResult:
    """Score each query against the references; see the module docstring."""
    metric = _check(options)
    checkpoint = load_checkpoint(options.model_path, options.model, options.allow_unsafe_checkpoint)
    identity = checkpoint.identity()
    classifier = load_wi_model(options.classifier_path) if options.classifier_path is not None else None
    if classifier is not None:
        _check_classifier(classifier, checkpoint.feature_dim, identity, options.classifier_path)

    skipped: list[Skipped] = []
    recorded, recorded_in = (([classifier.canvas], str(options.classifier_path)) if classifier and classifier.canvas
                             else (training_canvases(options.model_path), str(options.model_path.parent / CONFIG)))
    canvas, image_size, canvas_from = _canvas(options, recorded, recorded_in)
    references = _read_all(options.references, "reference", skipped)
    queries = _read_all(options.queries, "query", skipped)
    if canvas is None:
        canvas, canvas_from = _computed_canvas([image for _, image in references + queries], options.model_path)
    check_canvas(canvas, image_size, f"the canvas ({canvas_from})")
    check_image_size(image_size)
    with progress.resolve(reporter).task("preprocess images", len(references) + len(queries)) as task:
        references = _normalise_all(references, "reference", canvas, image_size, skipped, task)
        queries = _normalise_all(queries, "query", canvas, image_size, skipped, task)
    for role, kept in (("reference", references), ("query", queries)):
        if not kept:
            left_out = sum(s.role == role for s in skipped)
            raise InputError(f"no usable {role} image: all {left_out} given were left out (see the warnings above)",
                             f"give {role} images with a visible signature")

    device = resolve_device(options.device)
    images = np.stack([image for _, image in references + queries])[:, None]
    zeros = np.zeros(len(images), dtype=np.int64)
    features = extract_features(checkpoint.build_model(device), SignatureSet(images, zeros, zeros),
                                batch_size=len(images), device=device, reporter=reporter)
    unusable = ~np.isfinite(features).all(axis=1)
    if unusable.any():
        raise InputError(f"the checkpoint {options.model_path} gives NaN or inf features for {unusable.sum()} of "
                         f"{len(features)} images", NON_FINITE_MODEL_HINT)
    ref_features, query_features = features[:len(references)], features[len(references):]

    scoring = WI_SCORING if classifier is not None else metric
    fusion = options.fusion or (classifier.fusion if classifier is not None else DISTANCE_FUSION)
    pairs = pair_scores(query_features, ref_features, classifier, metric)
    scores = FUSIONS[fusion](pairs, axis=1)
    threshold, threshold_from = _threshold(options, ref_features, classifier, metric, fusion)
    nearest = pairs.argmax(axis=1)
    ref_names = [name for name, _ in references]
    results = [QueryScore(name, float(score), None if threshold is None else bool(score >= threshold),
                          ref_names[best], float(pairs[i, best]))
               for i, ((name, _), score, best) in enumerate(zip(queries, scores, nearest))]
    return VerifyResult(scoring, fusion, threshold, threshold_from, canvas, canvas_from, image_size, identity,
                        ref_names, results, skipped)


def pair_scores(queries: np.ndarray, references: np.ndarray, classifier: WIModel | None,
                metric: Metric = DEFAULT_METRIC) -> np.ndarray:
    """Score of every query × reference pair (q×r), higher meaning more genuine."""
    if classifier is not None:
        return classifier.pair_scores(queries, references)
    queries, references = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    if metric == "cosine":
        return _unit_rows(queries) @ _unit_rows(references).T
    squared = (np.einsum("ij,ij->i", queries, queries)[:, None] + np.einsum("ij,ij->i", references, references)
               - 2 * queries @ references.T)
    return -np.sqrt(np.maximum(squared, 0))


def canvas_for(shapes: list[tuple[int, int]], image_size: tuple[int, int] = IMAGE_SIZE,
               margin: float = CANVAS_MARGIN) -> tuple[int, int]:
    """The smallest canvas with ``image_size``'s aspect ratio holding every shape, times ``1 + margin``.

    Sides are rounded up, after rounding away float noise (a side of exactly 600 stays 600).
    """
    ratio = image_size[1] / image_size[0]
    height = max(max(h, w / ratio) for h, w in shapes) * (1 + margin)
    return math.ceil(round(height, 6)), math.ceil(round(height * ratio, 6))


def _check(options: VerifyOptions) -> Metric:
    if options.dataset is not None and get_loader(options.dataset).canvas_size is None:
        raise InputError(f"dataset {options.dataset} has no fixed canvas: it is measured from its images",
                         "give --canvas H W instead, e.g. the canvas 'sig preprocess' logged for your data")
    return options.metric or DEFAULT_METRIC


def _check_classifier(classifier: WIModel, feature_dim: int, identity: str, path: Path) -> None:
    if classifier.feature_dim != feature_dim:
        raise InputError(f"the WI classifier {path} takes {classifier.feature_dim} features, the checkpoint "
                         f"gives {feature_dim}", "use the checkpoint whose features trained the classifier")
    source = classifier.info.get("source")
    if source and source != identity:
        log.warning("the WI classifier %s was trained on features of %s, not of this checkpoint (%s)",
                    path, source, identity)


def _read_all(paths: list[Path], role: str, skipped: list[Skipped]) -> list[tuple[str, np.ndarray]]:
    """Each readable image as (name, grey image); a folder stands for the images in it."""
    images = []
    for path in paths:
        files = list_images(path) if path.is_dir() else [path]
        if not files:
            _skip(skipped, str(path), role, "a folder with no images (.png, .jpg, .bmp, .tif)")
        for file in files:
            try:
                images.append((str(file), read_signature(file)))
            except UnusableImageError as exc:
                _skip(skipped, str(file), role, exc.message)
    return images


def _normalise_all(images: list[tuple[str, np.ndarray]], role: str, canvas: tuple[int, int],
                   image_size: tuple[int, int], skipped: list[Skipped],
                   task: progress.Task) -> list[tuple[str, np.ndarray]]:
    normalised = []
    for name, image in images:
        try:
            result, cropped = normalise_signature(image, canvas, image_size)
        except UnusableImageError as exc:
            _skip(skipped, name, role, exc.message)
        else:
            if cropped:
                log.warning("%s %s: the signature is larger than the %d×%d canvas and was cropped",
                            role, name, *canvas)
            normalised.append((name, result))
        task.advance(1)
    return normalised


def _skip(skipped: list[Skipped], name: str, role: str, reason: str) -> None:
    log.warning("skipped %s %s: %s", role, name, reason)
    skipped.append(Skipped(name, role, reason))


def _canvas(options: VerifyOptions, recorded: list[Canvas],
            recorded_in: str) -> tuple[tuple[int, int] | None, tuple[int, int], str]:
    """Canvas, image size and where they come from (see the module docstring); a canvas of
    ``None`` is computed from the images by the caller."""
    given, given_from, flag = None, "", ""
    if options.canvas is not None:
        given, given_from, flag = tuple(options.canvas), "--canvas", "--canvas"
    elif options.dataset is not None:
        given = tuple(get_loader(options.dataset).canvas_size)
        given_from, flag = f"dataset {options.dataset}", f"--dataset {options.dataset}"
    described = "; ".join(canvas.describe() for canvas in recorded)
    if given is not None:
        match = next((canvas for canvas in recorded if canvas.size == given), None)
        if recorded and match is None and not options.override_canvas:
            raise InputError(f"{flag} gives the canvas {given[0]}×{given[1]}, but the model's images were made "
                             f"on another ({described}, recorded in {recorded_in})",
                             "leave out --canvas and --dataset to use the recorded one, or pass --override-canvas")
        return given, match.image_size if match else IMAGE_SIZE, given_from
    if len(recorded) > 1:
        raise InputError(f"the model was trained on sets with different canvases ({described}, recorded in "
                         f"{recorded_in})", "choose one with --dataset or --canvas")
    if recorded:
        canvas = recorded[0]
        source = f"dataset {canvas.dataset}, " if canvas.dataset else ""
        return canvas.size, canvas.image_size, f"{source}recorded in {recorded_in}"
    return None, IMAGE_SIZE, ""


def _computed_canvas(images: list[np.ndarray], model_path: Path) -> tuple[tuple[int, int], str]:
    if not images:  # nothing readable: the caller reports it
        return IMAGE_SIZE, "none"
    log.warning("no canvas is recorded with %s (a config.json of 'sig train' beside it, or a WI classifier's): "
                "it is computed from the images, and the scores are only meaningful if the model's training images "
                "were made alike; give --dataset or --canvas", model_path)
    return canvas_for([image.shape for image in images]), "the images"


def _threshold(options: VerifyOptions, references: np.ndarray, classifier: WIModel | None, metric: Metric,
               fusion: str) -> tuple[float | None, str]:
    if options.threshold is not None:
        return options.threshold, "--threshold"
    if classifier is not None:
        return 0.0, "the SVM's decision boundary"
    if len(references) < 2:
        return None, "none with one reference (give --threshold)"
    scores = pair_scores(references, references, None, metric)
    others = scores[~np.eye(len(references), dtype=bool)].reshape(len(references), -1)
    return float(FUSIONS[fusion](others, axis=1).min()), "lowest leave-one-out score of the references"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)

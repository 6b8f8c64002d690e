"""Verify questioned signatures against a writer's genuine references: :class:`Verifier`
(the Python API, docs/api.md) and ``sig verify``, a thin layer over it.

A :class:`Verifier` loads the checkpoint (and a WI classifier) once, on the GPU when there
is one. Images (paths, numpy arrays or PIL images) are read as the dataset loaders read
them (:func:`sigcli.preprocess.read_signature`), normalised on one canvas
(docs/preprocessing.md#normalising-one-signature) and passed through the feature extractor
in batches (centre 150×220 crop, eval mode). A writer's references are enrolled once
(:meth:`Verifier.enroll`). Each query is then scored against every reference, higher
meaning more genuine:

- with a writer-independent classifier (``sig wi --save-model``): the SVM's decision value
  of ``|f(query) - f(reference)|``, exactly as ``sig wi`` scores its test signatures;
- otherwise the cosine similarity of the two feature vectors, or minus their Euclidean
  distance (``metric``).

The per-reference scores are fused into the query's score (the classifier's own fusion,
``mean`` for the distances; ``fusion`` overrides) and the reference with the highest score
is the query's nearest. A query is judged genuine when its score is at or above the
threshold (docs/evaluation.md#verifying-signatures), by default:

- ``threshold``, or the classifier's ``operating_point`` calibrated by ``sig wi
  --save-model`` (docs/evaluation.md#calibrated-operating-points), whose error rates on the
  development data come with the result;
- with a classifier, 0: the SVM's decision boundary, as ``sig wi`` counts errors;
- otherwise the lowest leave-one-out score among the references (each reference scored
  against the others, fused alike): a query is accepted when it is at least as close to
  the references as the least typical reference is to the rest. This adapts to the model
  and the writer, but is a heuristic. With one reference there is none and queries get no
  decision.

A classifier trained on features of another checkpoint (its recorded fingerprint), or on
images of another canvas than the checkpoint's, is refused unless
``allow_classifier_mismatch``.

Canvas: images must be made as the model's training images were, or the scores mean
little (a genuine query can flip to a forgery). The canvas recorded with the model is used:
the WI classifier's (``sig wi --save-model`` records the canvas of its features' set), else
the one in the config.json that ``sig train`` / ``sig distill`` wrote beside the
checkpoint, with the image size recorded with it. A ``dataset`` or ``canvas`` that
contradicts the record is refused unless ``override_canvas``. With nothing recorded (a
renamed or published checkpoint): the ``dataset``'s canvas, an explicit ``canvas``, or,
for references and queries given together (``sig verify``), with a warning, one computed
from those images: the smallest canvas with the 170×242 aspect ratio (so the resize crops
nothing) that holds every image, enlarged by ``CANVAS_MARGIN``. A computed canvas depends
on the largest image given, so the same query can score slightly differently beside other
images; enrolling a writer needs a known canvas. No canvas may exceed
``sigcli.config.preprocess.MAX_CANVAS_PIXELS``.

Unreadable files and blank images (no ink) are logged one line each, listed in
:attr:`VerifyResult.skipped` and left out; no usable reference or query is an
:class:`InputError`. Lists of (reference folder, query) pairs go through
:mod:`sigcli.verify_pairs` (``sig verify --pairs``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence, Union

import numpy as np

from sigcli import progress
from sigcli.config.preprocess import check_canvas
from sigcli.config.verify import DEFAULT_METRIC, DISTANCE_FUSION, Metric, VerifierOptions, VerifyOptions
from sigcli.data.loader import gray_image, list_images
from sigcli.data.plugins import get_loader
from sigcli.data.sigset import Canvas, SignatureSet
from sigcli.device import resolve_device
from sigcli.errors import InputError, first_line
from sigcli.features import NON_FINITE_MODEL_HINT, extract_features
from sigcli.models.checkpoint import load_checkpoint, training_canvases
from sigcli.options import build
from sigcli.preprocess import IMAGE_SIZE, UnusableImageError, normalise_signature, read_signature
from sigcli.progress import Reporter
from sigcli.protocols.calibration import OperatingPoint
from sigcli.protocols.wi import FUSIONS, WIModel, load_wi_model
from sigcli.training.data import check_image_size
from sigcli.training.loop import CONFIG

if TYPE_CHECKING:
    import PIL.Image

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
    #: The calibrated point the decisions follow, with its error rates on the classifier's
    #: development data and how many scores they were measured on (None: uncalibrated).
    operating_point: dict | None = None

    @property
    def scores(self) -> np.ndarray:
        """The queries' scores, in order."""
        return np.array([query.score for query in self.queries])

    def as_dict(self) -> dict:
        """JSON-ready record."""
        record = asdict(self)
        record["canvas"], record["image_size"] = list(self.canvas), list(self.image_size)
        return record


ImageInput = Union[str, os.PathLike, np.ndarray, "PIL.Image.Image"]


@dataclass
class Writer:
    """A writer enrolled once (:meth:`Verifier.enroll`): the features of its references, made by
    ``model`` from images normalised on ``canvas``, for any number of queries."""

    references: list[str]  # the references used
    features: np.ndarray  # r×D
    model: str  # identity of the checkpoint that made the features
    canvas: tuple[int, int]
    skipped: list[Skipped] = field(default_factory=list)


class Verifier:
    """A feature extractor, and optionally a WI classifier, loaded once to score many queries
    (docs/api.md). Build it with :meth:`load`; images are paths (a folder stands for the images
    in it), numpy arrays or PIL images, ink dark on light paper."""

    def __init__(self, options: VerifierOptions, reporter: Reporter | None = None):
        self.options, self.reporter = options, reporter
        self.metric = _check(options)
        self.checkpoint = load_checkpoint(options.model_path, options.model, options.allow_unsafe_checkpoint)
        self.identity = self.checkpoint.identity()
        self.classifier = load_wi_model(options.classifier_path) if options.classifier_path is not None else None
        if self.classifier is not None:
            _check_classifier(self.classifier, self.checkpoint.feature_dim, self.identity, options)
        recorded, recorded_in = (([self.classifier.canvas], str(options.classifier_path))
                                 if self.classifier is not None and self.classifier.canvas
                                 else (training_canvases(options.model_path), str(options.model_path.parent / CONFIG)))
        self.canvas, self.image_size, self.canvas_from = _canvas(options, recorded, recorded_in)
        if self.canvas is not None:
            check_canvas(self.canvas, self.image_size, f"the canvas ({self.canvas_from})")
        check_image_size(self.image_size)
        self.scoring = WI_SCORING if self.classifier is not None else self.metric
        self.fusion = options.fusion or (self.classifier.fusion if self.classifier is not None else DISTANCE_FUSION)
        self.operating_point = _operating_point(options, self.classifier, self.fusion)
        self.threshold, self.threshold_from = _fixed_threshold(options, self.classifier, self.operating_point)
        self.device = resolve_device(options.device)
        self.network = self.checkpoint.build_model(self.device)

    @classmethod
    def load(cls, model_path: str | os.PathLike, classifier_path: str | os.PathLike | None = None,
             reporter: Reporter | None = None, **options: Any) -> "Verifier":
        """A verifier of the checkpoint ``model_path`` (and the WI classifier of ``sig wi --save-model``);
        ``options`` are :class:`~sigcli.config.verify.VerifierOptions` fields, e.g. ``canvas=(952, 1360)``,
        ``dataset="gpds"``, ``metric="euclidean"``, ``threshold=0.8``, ``operating_point="far=0.01"``,
        ``device="cpu"``."""
        return cls(build(VerifierOptions, model_path=model_path, classifier_path=classifier_path, **options), reporter)

    @property
    def operating_points(self) -> dict[str, OperatingPoint]:
        """The classifier's calibrated operating points by name (empty without a calibration)."""
        calibration = self.classifier.calibration if self.classifier is not None else None
        return dict(calibration.points) if calibration is not None else {}

    def enroll(self, references: ImageInput | Sequence[ImageInput], skipped: list[Skipped] | None = None) -> Writer:
        """Read, normalise and extract a writer's references once, for any number of :meth:`verify` calls.

        The images left out are listed in the writer's ``skipped``, and in ``skipped`` when given
        (there even when none is usable and :class:`InputError` is raised)."""
        skipped = [] if skipped is None else skipped
        images = self.prepare(references, "reference", skipped)
        _require(images, "reference", skipped)
        return Writer([name for name, _ in images], self.extract([image for _, image in images]), self.identity,
                      self.known_canvas(), skipped)

    def verify(self, writer: Writer | ImageInput | Sequence[ImageInput],
               queries: ImageInput | Sequence[ImageInput]) -> VerifyResult:
        """Score each query against an enrolled :class:`Writer`, or against references given here
        (then, with no canvas recorded or given, the canvas is computed from all the images, as
        ``sig verify`` does; see the module docstring)."""
        if isinstance(writer, Writer):
            self._check_writer(writer)
            skipped = list(writer.skipped)
            images = self.prepare(queries, "query", skipped)
            _require(images, "query", skipped)
            query_features, canvas_from = self.extract([image for _, image in images]), self.canvas_from
        else:
            skipped = []
            references = _read_all(_as_list(writer), "reference", skipped)
            images = _read_all(_as_list(queries), "query", skipped)
            canvas, canvas_from = self.canvas, self.canvas_from
            if canvas is None:
                canvas, canvas_from = _computed_canvas([image for _, image in references + images],
                                                       self.options.model_path)
                check_canvas(canvas, self.image_size, f"the canvas ({canvas_from})")
            with progress.resolve(self.reporter).task("preprocess images", len(references) + len(images)) as task:
                references = _normalise_all(references, "reference", canvas, self.image_size, skipped, task)
                images = _normalise_all(images, "query", canvas, self.image_size, skipped, task)
            _require(references, "reference", skipped)
            _require(images, "query", skipped)
            features = self.extract([image for _, image in references + images])
            writer = Writer([name for name, _ in references], features[:len(references)], self.identity, canvas)
            query_features = features[len(references):]
        pairs = self.pair_scores(query_features, writer.features)
        scores = FUSIONS[self.fusion](pairs, axis=1)
        nearest = pairs.argmax(axis=1)
        threshold, threshold_from = self.threshold_for(writer)
        results = [QueryScore(name, float(score), None if threshold is None else bool(score >= threshold),
                              writer.references[best], float(pairs[i, best]))
                   for i, ((name, _), score, best) in enumerate(zip(images, scores, nearest))]
        return VerifyResult(self.scoring, self.fusion, threshold, threshold_from, writer.canvas, canvas_from,
                            self.image_size, self.identity, writer.references, results, skipped,
                            self.operating_point_record())

    def scores(self, writer: Writer, query_features: np.ndarray) -> np.ndarray:
        """Fused score of each query (features, q×D) against the writer's references."""
        self._check_writer(writer)
        return FUSIONS[self.fusion](self.pair_scores(query_features, writer.features), axis=1)

    def pair_scores(self, queries: np.ndarray, references: np.ndarray) -> np.ndarray:
        """Score of every query × reference pair of features (q×r), higher meaning more genuine."""
        return pair_scores(queries, references, self.classifier, self.metric)

    def threshold_for(self, writer: Writer) -> tuple[float | None, str]:
        """The threshold the writer's queries are judged by, and where it comes from: the fixed one
        (given, calibrated or the SVM's boundary), else the lowest leave-one-out score of its
        references (each scored against the others, fused alike); none with one reference."""
        if self.threshold is not None:
            return self.threshold, self.threshold_from
        if len(writer.features) < 2:
            return None, "none with one reference (give --threshold)"
        count = len(writer.features)
        scores = self.pair_scores(writer.features, writer.features)
        others = scores[~np.eye(count, dtype=bool)].reshape(count, -1)
        return float(FUSIONS[self.fusion](others, axis=1).min()), "lowest leave-one-out score of the references"

    def operating_point_record(self) -> dict | None:
        """The calibrated operating point the decisions follow, with the counts it was calibrated on."""
        if self.operating_point is None:
            return None
        calibration = self.classifier.calibration
        return {**asdict(self.operating_point),
                "calibrated_on": {key: getattr(calibration, key)
                                  for key in ("users", "references", "genuine", "skilled", "random")}}

    def features(self, images: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """Features (N×D) of the images, normalised on the verifier's canvas; an image that cannot
        be used is an :class:`InputError` naming it."""
        skipped: list[Skipped] = []
        prepared = self.prepare(images, "query", skipped)
        if skipped:
            raise InputError(f"{skipped[0].file}: {skipped[0].reason}", "give images with a visible signature")
        return self.extract([image for _, image in prepared]) if prepared else \
            np.empty((0, self.checkpoint.feature_dim), np.float32)

    def prepare(self, images: ImageInput | Sequence[ImageInput], role: str,
                skipped: list[Skipped]) -> list[tuple[str, np.ndarray]]:
        """Each usable image as (name, normalised image) on the verifier's canvas; the others are
        logged and added to ``skipped``."""
        canvas = self.known_canvas()
        read = _read_all(_as_list(images), role, skipped)
        with progress.resolve(self.reporter).task(f"preprocess {role} images", len(read)) as task:
            return _normalise_all(read, role, canvas, self.image_size, skipped, task)

    def extract(self, images: list[np.ndarray]) -> np.ndarray:
        """Features of normalised images, in batches of ``batch_size`` on the verifier's device."""
        stacked = np.stack(images)[:, None]
        zeros = np.zeros(len(stacked), dtype=np.int64)
        features = extract_features(self.network, SignatureSet(stacked, zeros, zeros),
                                    batch_size=self.options.batch_size, device=self.device, reporter=self.reporter)
        unusable = ~np.isfinite(features).all(axis=1)
        if unusable.any():
            raise InputError(f"the checkpoint {self.options.model_path} gives NaN or inf features for "
                             f"{unusable.sum()} of {len(features)} images", NON_FINITE_MODEL_HINT)
        return features

    def known_canvas(self) -> tuple[int, int]:
        """The canvas images are made on; an :class:`InputError` when none is recorded or given."""
        if self.canvas is None:
            raise InputError(f"no canvas is recorded with {self.options.model_path} (a config.json of 'sig train' "
                             "beside it, or a WI classifier's), so references and queries cannot be made alike",
                             "give canvas=(H, W) or dataset=NAME (--canvas or --dataset)")
        return self.canvas

    def _check_writer(self, writer: Writer) -> None:
        if (writer.model, writer.canvas) != (self.identity, self.canvas):
            raise InputError(f"the writer was enrolled with {writer.model} on the canvas {writer.canvas[0]}×"
                             f"{writer.canvas[1]}, this verifier uses {self.identity} on {self.canvas}",
                             "enroll the writer again with this verifier")


def verify(options: VerifyOptions, reporter: Reporter | None = None) -> VerifyResult:
    """``sig verify``: score each query against the references; see the module docstring."""
    return Verifier(verifier_options(options), reporter).verify(options.references, options.queries)


def verifier_options(options: VerifyOptions) -> VerifierOptions:
    """The options of ``sig verify`` that make its :class:`Verifier`."""
    return VerifierOptions(**{name: getattr(options, name) for name in VerifierOptions.model_fields})


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


def _check(options: VerifierOptions) -> Metric:
    if options.dataset is not None and get_loader(options.dataset).canvas_size is None:
        raise InputError(f"dataset {options.dataset} has no fixed canvas: it is measured from its images",
                         "give --canvas H W instead, e.g. the canvas 'sig preprocess' logged for your data")
    return options.metric or DEFAULT_METRIC


def _check_classifier(classifier: WIModel, feature_dim: int, identity: str, options: VerifierOptions) -> None:
    """Refuse a classifier made for another feature extractor or canvas (unless the user allows
    it): its scores, and its calibrated thresholds, would not mean what they say."""
    path = options.classifier_path
    if classifier.feature_dim != feature_dim:
        raise InputError(f"the WI classifier {path} takes {classifier.feature_dim} features, the checkpoint "
                         f"gives {feature_dim}", "use the checkpoint whose features trained the classifier")
    hint = "use the checkpoint whose features trained the classifier, or pass --allow-classifier-mismatch"
    if classifier.fingerprint is None:
        log.warning("the WI classifier %s does not record which checkpoint its features came from: it cannot be "
                    "checked against %s", path, options.model_path)
    elif classifier.fingerprint != identity:
        if not options.allow_classifier_mismatch:
            raise InputError(f"the WI classifier {path} was trained on features of {classifier.fingerprint}, not of "
                             f"{options.model_path} ({identity})", hint)
        log.warning("the WI classifier %s was trained on features of %s, not of this checkpoint (%s)",
                    path, classifier.fingerprint, identity)
    trained_on = training_canvases(options.model_path)
    if classifier.canvas is not None and trained_on and all(
            (canvas.size, canvas.image_size) != (classifier.canvas.size, classifier.canvas.image_size)
            for canvas in trained_on):
        described = "; ".join(canvas.describe() for canvas in trained_on)
        if not options.allow_classifier_mismatch:
            raise InputError(f"the WI classifier {path} was trained on images made on another canvas "
                             f"({classifier.canvas.describe()}) than the model ({described})", hint)
        log.warning("the WI classifier %s was trained on images made on %s, the model on %s", path,
                    classifier.canvas.describe(), described)


def _operating_point(options: VerifierOptions, classifier: WIModel | None, fusion: str) -> OperatingPoint | None:
    """The calibrated point the decisions follow: the one asked for, else the SVM's boundary when
    the threshold is left at 0 and the classifier has a calibration (its rates are then known)."""
    calibration = classifier.calibration if classifier is not None else None
    name = options.operating_point
    if name is None:
        usable = calibration is not None and options.threshold is None and fusion == classifier.fusion
        return calibration.points.get("boundary") if usable else None
    path = options.classifier_path
    if calibration is None:
        raise InputError(f"--operating-point {name}: the WI classifier {path} has no calibrated thresholds (it was "
                         "saved by an older sig, or its development users had no signatures to spare)",
                         "save it again with 'sig wi --save-model', or give --threshold")
    if fusion != classifier.fusion:
        raise InputError(f"--operating-point {name} was calibrated with the classifier's fusion, "
                         f"{classifier.fusion}, not --fusion {fusion}", "leave out --fusion or give --threshold")
    if name not in calibration.points:
        raise InputError(f"--operating-point {name} is not calibrated in {path}",
                         f"it has: {', '.join(calibration.points)}")
    return calibration.points[name]


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """One image or a sequence of them (an array is one image, a list of arrays many)."""
    if isinstance(images, (str, os.PathLike, np.ndarray)) or not isinstance(images, Iterable):
        return [images]
    return list(images)


def _read_all(items: list[ImageInput], role: str, skipped: list[Skipped]) -> list[tuple[str, np.ndarray]]:
    """Each readable image as (name, grey image); a folder stands for the images in it, and an
    image held in memory is named by its position (``array 0``, ``image 1``)."""
    images = []
    for position, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            name = f"{'array' if isinstance(item, np.ndarray) else 'image'} {position}"
            try:
                images.append((name, gray_image(item)))
            except Exception as exc:  # whatever the object is, it is not an image we can read
                _skip(skipped, name, role, f"not an image ({first_line(exc)})")
            continue
        path = Path(item)
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


def _canvas(options: VerifierOptions, recorded: list[Canvas],
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


def _fixed_threshold(options: VerifierOptions, classifier: WIModel | None,
                     point: OperatingPoint | None) -> tuple[float | None, str]:
    """The threshold of every writer, or ``None`` when each writer's own references set it
    (:meth:`Verifier.threshold_for`)."""
    if options.threshold is not None:
        return options.threshold, "--threshold"
    if options.operating_point is not None:
        return point.threshold, f"operating point {point.name}, calibrated by 'sig wi --save-model'"
    if classifier is not None:
        return 0.0, "the SVM's decision boundary"
    return None, ""


def _require(kept: list, role: str, skipped: list[Skipped]) -> None:
    if not kept:
        left_out = sum(s.role == role for s in skipped)
        raise InputError(f"no usable {role} image: all {left_out} given were left out (see the warnings above)",
                         f"give {role} images with a visible signature")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)

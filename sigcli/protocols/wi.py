"""Writer-independent evaluation (docs/evaluation.md#writer-independent-protocol): one SVM in the dissimilarity space.

The SVM learns from pairs of development users' signatures, ``|f(a) - f(b)|`` (same user:
genuine pair; different users: forgery pair), and then verifies any writer: a query is
scored against each of the writer's references and the decision values are fused (max,
min, mean or median).

Scoring is vectorised: all query × reference pairs of a user are built at once and
scored by one kernel expansion against the support vectors (BLAS), equal to the
reference's per-query ``decision_function`` loop to ~1e-12. The trained classifier
(scaler + SVM) can be saved with skops for ``sig verify``; loading admits only the
scikit-learn types it consists of, so a model file cannot run code.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sigcli import progress
from sigcli.config.evaluation import WIOptions
from sigcli.data.sigset import Canvas, kind_of_values
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.metrics import fold_results
from sigcli.filekind import SKOPS, file_kind
from sigcli.fileio import atomic_path
from sigcli.progress import Reporter
from sigcli.protocols import evaluation_features, require_counts, splits, users_of
from sigcli.protocols.calibration import Calibration, calibrate_wi
from sigcli.protocols.svm import KernelSVM, from_pipeline, reference_pipeline
from sigcli.results import check_results_path, save_results

log = logging.getLogger(__name__)

FUSIONS = {"max": np.max, "min": np.min, "mean": np.mean, "median": np.median}
MODEL_FORMAT = "sigcli-wi-model"
#: 2 adds ``fingerprint`` and ``calibration``; files of version 1 load without them.
MODEL_VERSION = 2
#: What a WI model file is, said when something else is given.
MODEL_HINT = "expected a .skops file written by 'sig wi --save-model'"
VALUES_HINT = ("'sig wi --save-model' writes a scaler and an rbf or linear SVM with finite numbers, shaped for its "
               "features; save the classifier again")
# The only types a WI model file may contain beyond builtins and numpy arrays.
TRUSTED_TYPES = ["sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
                 "sklearn.svm._classes.SVC"]


@dataclass
class WIFold:
    """Every random choice of one fold (rows of the feature set)."""

    references: list[np.ndarray]     # per exploitation user
    tests: list[splits.TestDraw]     # per exploitation user
    pair_a: np.ndarray               # training pairs (development users)
    pair_b: np.ndarray
    labels: np.ndarray               # +1 same writer, -1 different writers
    kept: np.ndarray                 # per development user (ascending), its training genuines


@dataclass
class WIRun:
    folds: list[dict]                                   # docs/formats.md#results-pickle, one dict per fold
    classifier: Pipeline = field(repr=False)            # the first fold's scaler + SVM
    fold: WIFold = field(repr=False)                    # the first fold's draws
    calibration: Calibration | None = None              # the saved classifier's operating points (--save-model)


@dataclass
class WIModel:
    """A trained writer-independent classifier, as ``sig wi --save-model`` keeps it."""

    classifier: Pipeline
    fusion: str
    feature_dim: int
    info: dict
    canvas: Canvas | None = None  # how the images of its training features were made, when known
    fingerprint: str | None = None  # the checkpoint its features came from (Checkpoint.identity()), when known
    calibration: Calibration | None = None  # its operating points on the development data (version 2 files)

    def score(self, queries: np.ndarray, references: np.ndarray, fusion: str | None = None) -> np.ndarray:
        """Fused score of each query against one writer's references (higher: more genuine)."""
        self._check_dims(queries, references)
        return score_queries(from_pipeline(self.classifier), queries, references, fusion or self.fusion)

    def pair_scores(self, queries: np.ndarray, references: np.ndarray) -> np.ndarray:
        """Decision value of every query × reference pair (q×r), before fusion."""
        self._check_dims(queries, references)
        return pair_decisions(from_pipeline(self.classifier), queries, references)

    def _check_dims(self, queries: np.ndarray, references: np.ndarray) -> None:
        for name, x in (("query", queries), ("reference", references)):
            if np.ndim(x) != 2 or np.shape(x)[1] != self.feature_dim:
                raise InputError(f"{name} features have shape {np.shape(x)}, the model expects "
                                 f"N×{self.feature_dim}", "extract them with the model the WI classifier was trained on")


def check_wi(features: FeatureSet, options: WIOptions) -> tuple[np.ndarray, np.ndarray]:
    """Exploitation and development users, after checking they can run the protocol."""
    o = options
    exp_users = users_of(features, o.exp_users, "exploitation")
    dev_users = users_of(features, o.dev_users, "development")
    require_counts(features, exp_users, 0, o.gen_for_ref + o.gen_for_test,
                   f"--gen-for-ref {o.gen_for_ref} + --gen-for-test {o.gen_for_test}")
    require_counts(features, exp_users, 1, o.gen_for_test, f"sampled tests (--gen-for-test {o.gen_for_test})")
    if len(exp_users) <= o.gen_for_test:
        raise InputError(f"sampled tests draw --gen-for-test {o.gen_for_test} other exploitation users as "
                         f"random forgeries, but there are only {len(exp_users)} exploitation users",
                         f"use at least {o.gen_for_test + 1} users")
    if o.gen_for_train < 2:
        raise InputError("--gen-for-train 1 makes no genuine pairs", "give at least 2")
    require_counts(features, dev_users, 0, o.gen_for_train, f"--gen-for-train {o.gen_for_train}")
    if len(dev_users) <= o.gen_for_train // 2:
        raise InputError(f"each development user is paired with --gen-for-train // 2 = {o.gen_for_train // 2} "
                         f"other users, but there are only {len(dev_users)} development users")
    return exp_users, dev_users


def draw_fold(features: FeatureSet, exp_users: np.ndarray, dev_users: np.ndarray, options: WIOptions,
              rng: np.random.RandomState) -> WIFold:
    """All draws of one fold, in the reference's order (docs/evaluation.md#draws-of-one-wi-fold)."""
    y, yforg = features.y, features.yforg
    shuffled = splits.shuffled_genuines(y, yforg, exp_users, rng)
    references, test_genuines = splits.head_tail(shuffled, options.gen_for_ref, options.gen_for_test)
    skilled = [splits.skilled_rows(y, yforg, user) for user in exp_users]
    kept = np.stack([rows[:options.gen_for_train] for rows in splits.shuffled_genuines(y, yforg, dev_users, rng)])
    pair_a, pair_b, labels = splits.wi_training_pairs(kept, rng)
    tests = splits.sampled_tests(test_genuines, skilled, options.gen_for_test, rng)
    return WIFold(references, tests, pair_a, pair_b, labels, kept)


def dissimilarities(features: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|f(a) - f(b)|`` in float64, as the reference builds its training pairs."""
    out = features[a].astype(np.float64)
    out -= features[b]
    return np.abs(out, out=out)


def fit_wi(features: FeatureSet, fold: WIFold, options: WIOptions) -> Pipeline:
    """The reference's classifier (scaler + unweighted SVM) on the fold's training pairs."""
    pairs = dissimilarities(features.features, fold.pair_a, fold.pair_b)
    return reference_pipeline(options.svm_type, options.svm_c, options.svm_gamma).fit(pairs, fold.labels)


def score_queries(svm: KernelSVM, queries: np.ndarray, references: np.ndarray, fusion: str) -> np.ndarray:
    """Fused decision values of ``queries`` (q×D) against one writer's ``references`` (r×D).

    All q·r pairs ``|query - reference|`` (in the features' dtype, like the reference) are
    scored in one kernel expansion, then fused along the references.
    """
    if fusion not in FUSIONS:
        raise InputError(f"unknown fusion '{fusion}'", f"choose one of {', '.join(FUSIONS)}")
    if len(queries) == 0:
        return np.empty(0)
    return FUSIONS[fusion](pair_decisions(svm, queries, references), axis=1)


def pair_decisions(svm: KernelSVM, queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Decision values of every pair ``|query - reference|`` (q×r), in one kernel expansion."""
    queries, references = np.asarray(queries), np.asarray(references)
    pairs = np.abs(queries[:, None, :] - references[None, :, :]).reshape(-1, queries.shape[1])
    return svm.decision(pairs).reshape(len(queries), len(references))


def run_wi(options: WIOptions, reporter: Reporter | None = None) -> WIRun:
    """``sig wi``: the features of ``options``' inputs evaluated, the first fold's classifier and
    the results saved when asked (outputs are checked before any work)."""
    check_results_path(options.save_path, options.overwrite,
                       inputs=(options.features_path, options.model_path, options.data_path),
                       others=[("--save-model", options.save_model)])
    features, inputs = evaluation_features(options, reporter)
    run = evaluate_wi(features, options, reporter)
    if options.save_model is not None:
        run.calibration = calibration = calibrate(features, run, options, reporter)
        if calibration is None:
            log.warning("no development user has genuine signatures beyond --gen-for-train %d: the classifier is "
                        "saved without calibrated thresholds (lower --gen-for-train to keep some for calibration)",
                        options.gen_for_train)
        save_wi_model(options.save_model, run.classifier, options, features.dim, features.canvas,
                      calibration=calibration, overwrite=options.overwrite, source=features.source, inputs=inputs)
    if options.save_path is not None:
        save_results(run.folds, options.save_path, options, "wi", inputs, options.overwrite)
    return run


def evaluate_wi(features: FeatureSet, options: WIOptions, reporter: Reporter | None = None) -> WIRun:
    """Run every fold; return the results (docs/formats.md#results-pickle) and the first fold's classifier."""
    exp_users, dev_users = check_wi(features, options)
    rng = np.random.RandomState(options.seed)
    reporter = progress.resolve(reporter)
    folds, first, first_fold = [], None, None
    x = features.features
    with reporter.task("wi: training and scoring", options.folds * (1 + len(exp_users))) as task:
        for index in range(options.folds):
            fold = draw_fold(features, exp_users, dev_users, options, rng)
            classifier = fit_wi(features, fold, options)
            if first is None:
                first, first_fold = classifier, fold
            where = f"{index + 1}/{options.folds}"
            task.advance(1, fold=where)
            svm = from_pipeline(classifier)
            scores = []
            for refs, test in zip(fold.references, fold.tests):
                scores.append(tuple(score_queries(svm, x[rows], x[refs], options.fusion)
                                    for rows in (test.genuine, test.random, test.skilled)))
                task.advance(1, fold=where)
            folds.append(fold_results(scores, options.threshold))
    return WIRun(folds, first, first_fold)


def calibrate(features: FeatureSet, run: WIRun, options: WIOptions,
              reporter: Reporter | None = None) -> Calibration | None:
    """The operating points of the run's saved (first fold's) classifier on its development users."""
    svm = from_pipeline(run.classifier)
    dev_users = users_of(features, options.dev_users, "development")
    return calibrate_wi(lambda queries, references: score_queries(svm, queries, references, options.fusion),
                        features.features, features.y, features.yforg, dev_users, run.fold.kept, options, reporter)


def save_wi_model(path: str | os.PathLike, classifier: Pipeline, options: WIOptions, feature_dim: int,
                  canvas: Canvas | None = None, *, calibration: Calibration | None = None, overwrite: bool = False,
                  **info: Any) -> Path:
    """Write the classifier with skops (no pickle), with its fusion, feature size, the canvas its
    features' images were made on and the fingerprint of their checkpoint (``info["source"]``),
    both checked by 'sig verify', its calibrated operating points and provenance
    (docs/formats.md#wi-classifier-files); an existing file is refused unless ``overwrite``."""
    import skops.io

    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "classifier": classifier, "fusion": options.fusion,
               "feature_dim": int(feature_dim), "options": options.model_dump(mode="json"),
               "canvas": None if canvas is None else canvas.as_dict(), "fingerprint": info.get("source") or None,
               "calibration": None if calibration is None else calibration.as_dict(), "info": info}
    with atomic_path(path, suffix=".skops", overwrite=overwrite) as tmp:
        skops.io.dump(payload, tmp)
    return Path(path)


def load_wi_model(path: str | os.PathLike) -> WIModel:
    """Read a model of ``sig wi --save-model``; any type beyond the expected ones is refused,
    and so are values that would not score as ``sig wi`` does (see :func:`_check_model`)."""
    import skops.io

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no WI model at {path}", MODEL_HINT)
    kind = file_kind(path)
    if kind != SKOPS:
        raise InputError(f"{path} is not a WI classifier: it is {kind}", MODEL_HINT)
    try:
        untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise InputError(f"{path} contains types a WI model never has ({', '.join(untrusted[:3])}); "
                             "refused without loading them")
        payload = skops.io.load(path, trusted=TRUSTED_TYPES)
    except InputError:
        raise
    except Exception as exc:  # skops raises many kinds on a file that is not its format
        raise InputError(f"{path} is not a WI model file: {exc}", MODEL_HINT) from None
    try:
        return _check_model(payload)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}", VALUES_HINT) from None


def _check_model(payload: Any) -> WIModel:
    """The model a payload holds, after checking every value scoring uses: the file may have
    been edited, and scikit-learn would score odd values silently (or read out of bounds)."""
    classifier = payload.get("classifier") if isinstance(payload, dict) else None
    if (payload.get("format") if isinstance(payload, dict) else None) != MODEL_FORMAT \
            or not isinstance(classifier, Pipeline) or len(classifier.steps) != 2 \
            or not isinstance(classifier[0], StandardScaler) or not isinstance(classifier[-1], SVC):
        raise InputError("not a WI model file: no StandardScaler + SVC classifier in a sigcli-wi-model payload")
    scaler, svc = classifier[0], classifier[-1]
    dim = payload.get("feature_dim")
    if not isinstance(dim, int) or dim < 1:
        raise InputError(f"feature_dim is {dim!r}, not a positive integer")
    if payload.get("fusion") not in FUSIONS:
        raise InputError(f"fusion is {payload.get('fusion')!r}, not one of {', '.join(FUSIONS)}")
    if svc.kernel not in ("rbf", "linear"):
        raise InputError(f"the SVM's kernel is {svc.kernel!r}; 'sig wi' trains rbf or linear SVMs only")
    if svc.kernel == "rbf" and not _positive_number(svc.gamma):
        raise InputError(f"the SVM's gamma is {svc.gamma!r}, not a positive number as 'sig wi' saves it")
    support = _array(svc, "support_vectors_", 2)
    count = len(support)
    for name, shape in (("dual_coef_", (1, count)), ("intercept_", (1,)), ("classes_", (2,))):
        _array(svc, name, len(shape), shape)
    if support.shape[1] != dim:
        raise InputError(f"the SVM's support vectors have {support.shape[1]} features, feature_dim says {dim}")
    if not np.array_equal(svc.classes_, [-1, 1]):
        raise InputError(f"the SVM's classes are {svc.classes_.tolist()}, not [-1, 1] (forgery, genuine)")
    for name, wanted in (("scale_", scaler.with_std), ("mean_", scaler.with_mean)):
        if wanted:
            _array(scaler, name, 1, (dim,))
    if scaler.with_std and not np.all(scaler.scale_ > 0):
        raise InputError("the scaler's scale_ holds values that are not positive")
    info = payload.get("info", {})
    fingerprint = payload.get("fingerprint", info.get("source") if isinstance(info, dict) else None)  # version 1
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise InputError(f"fingerprint is {fingerprint!r}, not the text of a checkpoint's identity")
    calibration = payload.get("calibration")
    return WIModel(classifier, str(payload["fusion"]), dim, {"options": payload.get("options", {}), **info},
                   Canvas.from_dict(payload.get("canvas")), fingerprint or None,
                   None if calibration is None else Calibration.from_dict(calibration))


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value) \
        and value > 0


def _array(owner: Any, name: str, ndim: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``owner.name`` as a finite numeric array of ``ndim`` dimensions (and ``shape``, if given)."""
    value = getattr(owner, name, None)
    where = f"the {'scaler' if isinstance(owner, StandardScaler) else 'SVM'}'s {name}"
    if not isinstance(value, np.ndarray):
        raise InputError(f"{where} is {type(value).__name__}, not a numeric array")
    if value.dtype.kind not in "fiu":
        raise InputError(f"{where} holds {kind_of_values(value.dtype)} values, not numbers")
    if value.ndim != ndim or (shape is not None and value.shape != shape):
        raise InputError(f"{where} has shape {value.shape}, expected {shape or f'{ndim} dimensions'}")
    if not np.all(np.isfinite(value)):
        raise InputError(f"{where} holds NaN or inf")
    return value

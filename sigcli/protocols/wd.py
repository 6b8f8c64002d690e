"""Writer-dependent evaluation (docs/evaluation.md#writer-dependent-protocol): one SVM per exploitation user.

Per fold, every random choice is drawn first, in the reference's order (:mod:`.splits`);
then the users' SVMs are fitted and scored, in parallel threads when ``workers > 1`` (libsvm
and BLAS release the GIL), each user's work single-threaded, so that results do not depend
on ``workers`` to the last bit.

Three ways to fit, all on the reference's training set (the user's training genuines, then
random forgeries from other exploitation users, then those of the development users):

- ``precomputed`` (default when the n×n kernel fits in memory): the same scaler and SVM
  with the kernel matrix computed by one BLAS product; decision values equal the
  reference's to ~1e-12.
- ``libsvm``: the reference's own fit (libsvm computes kernel rows itself), for
  training sets too large for a kernel matrix.
- ``fast_approx`` (opt-in, not the reference): one scaler per fold fitted on the shared
  development negatives instead of one per user, so their kernel block is computed once per
  fold and each user only adds its own rows. Much faster; the metrics move slightly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from sigcli import progress
from sigcli.config.evaluation import WDOptions
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.metrics import fold_results
from sigcli.progress import Reporter
from sigcli.protocols import evaluation_features, require_counts, splits, users_of
from sigcli.protocols.svm import KernelSVM, fit_gram, fit_libsvm, fit_precomputed, kernel_matrix, new_scaler, scaled
from sigcli.results import check_results_path, save_results

log = logging.getLogger(__name__)

# Share of available memory the kernel matrices of the running workers may take.
MEMORY_SHARE = 0.5


@dataclass
class WDFold:
    """Every random choice of one fold (rows of the feature set)."""

    train: list[np.ndarray]          # per user: training genuines, in shuffled order
    exp_negatives: list[np.ndarray]  # per user: genuines of other exploitation users
    dev_negatives: np.ndarray        # shared by all users
    tests: list[splits.TestDraw]     # per user: what is scored

    def training_rows(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and labels (+1 genuine, -1 forgery) of a user's training set, reference order."""
        rows = np.concatenate([self.train[user], self.exp_negatives[user], self.dev_negatives])
        labels = np.full(len(rows), -1)
        labels[:len(self.train[user])] = 1
        return rows, labels


def check_wd(features: FeatureSet, options: WDOptions) -> tuple[np.ndarray, np.ndarray]:
    """Exploitation and development users, after checking they can run the protocol."""
    exp_users = users_of(features, options.exp_users, "exploitation")
    o = options
    require_counts(features, exp_users, 0, o.gen_for_train + o.gen_for_test,
                   f"--gen-for-train {o.gen_for_train} + --gen-for-test {o.gen_for_test}")
    if o.test_mode == "sampled":
        require_counts(features, exp_users, 1, o.gen_for_test, f"sampled tests (--gen-for-test {o.gen_for_test})")
        if len(exp_users) <= o.gen_for_test:
            raise InputError(f"sampled tests draw --gen-for-test {o.gen_for_test} other exploitation users as "
                             f"random forgeries, but there are only {len(exp_users)} exploitation users",
                             f"use at least {o.gen_for_test + 1} users or --test-mode full")
    else:
        require_counts(features, exp_users, 1, 1, "the EER and AUC")
        if len(exp_users) < 2:
            raise InputError("one exploitation user has no random forgeries to test on",
                             "use at least 2 exploitation users")
    if o.forg_from_dev == 0:
        return exp_users, np.empty(0, dtype=np.int64)
    dev_users = users_of(features, options.dev_users, "development")
    require_counts(features, dev_users, 0, o.forg_from_dev, f"--forg-from-dev {o.forg_from_dev}")
    return exp_users, dev_users


def draw_fold(features: FeatureSet, exp_users: np.ndarray, dev_users: np.ndarray, options: WDOptions,
              rng: np.random.RandomState) -> WDFold:
    """All draws of one fold, in the reference's order (docs/evaluation.md#draws-of-one-wd-fold)."""
    y, yforg = features.y, features.yforg
    shuffled = splits.shuffled_genuines(y, yforg, exp_users, rng)
    train, test_genuines = splits.head_tail(shuffled, options.gen_for_train, options.gen_for_test)
    skilled = [splits.skilled_rows(y, yforg, user) for user in exp_users]
    dev = splits.dev_negatives(y, yforg, dev_users, options.forg_from_dev, rng)
    exp = splits.exp_negatives(train, options.forg_from_exp, rng)
    if options.test_mode == "sampled":
        tests = splits.sampled_tests(test_genuines, skilled, options.gen_for_test, rng)
    else:
        tests = splits.full_tests(test_genuines, skilled)
    return WDFold(train, exp, dev, tests)


def run_wd(options: WDOptions, reporter: Reporter | None = None) -> list[dict]:
    """``sig wd``: the features of ``options``' inputs evaluated, the results saved when asked
    (outputs are checked before any work); returns the results of each fold."""
    check_results_path(options.save_path, options.overwrite,
                       inputs=(options.features_path, options.model_path, options.data_path))
    features, inputs = evaluation_features(options, reporter)
    results = evaluate_wd(features, options, reporter)
    if options.save_path is not None:
        save_results(results, options.save_path, options, "wd", inputs, options.overwrite)
    return results


def evaluate_wd(features: FeatureSet, options: WDOptions, reporter: Reporter | None = None) -> list[dict]:
    """Run every fold; return the results of docs/formats.md#results-pickle (one dict per fold)."""
    exp_users, dev_users = check_wd(features, options)
    rng = np.random.RandomState(options.seed)
    reporter = progress.resolve(reporter)
    results = []
    with reporter.task("wd: fitting writer-dependent SVMs", options.folds * len(exp_users)) as task:
        for fold_index in range(options.folds):
            fold = draw_fold(features, exp_users, dev_users, options, rng)
            scores = score_fold(features, fold, options,
                                lambda: task.advance(1, fold=f"{fold_index + 1}/{options.folds}"))
            results.append(fold_results(scores, options.threshold))
    return results


def score_fold(features: FeatureSet, fold: WDFold, options: WDOptions,
               done: Callable[[], None] = lambda: None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fit and score every user of a fold; ``(genuine, random, skilled)`` scores per user."""
    fit = _approx_fitter(features, fold, options) if options.fast_approx else _exact_fitter(features, fold, options)

    def user_scores(user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        svm = fit(user)
        test = fold.tests[user]
        values = svm.decision(features.features[np.concatenate([test.genuine, test.random, test.skilled])])
        cut = np.cumsum([len(test.genuine), len(test.random)])
        return tuple(np.split(values, cut))

    scores = []
    # Each user's kernel is computed single-threaded whatever --workers is: BLAS results depend
    # on its thread count in the last bits, and --workers must not change a single score.
    with threadpool_limits(limits=1, user_api="blas"):
        for result in Parallel(n_jobs=options.workers, backend="threading", return_as="generator")(
                delayed(user_scores)(user) for user in range(len(fold.train))):
            scores.append(result)
            done()
    return scores


def _exact_fitter(features: FeatureSet, fold: WDFold, options: WDOptions) -> Callable[[int], KernelSVM]:
    n = len(fold.training_rows(0)[0])
    backend = options.svm_backend
    if backend == "auto":
        backend = "precomputed" if _kernel_bytes(n, options.workers) <= MEMORY_SHARE * _available_memory() \
            else "libsvm"
        if backend == "libsvm":
            log.info("training sets of %d signatures: kernel matrices too large for memory, libsvm computes them", n)
    fit_one = fit_precomputed if backend == "precomputed" else fit_libsvm

    def fit(user: int) -> KernelSVM:
        rows, labels = fold.training_rows(user)
        return fit_one(features.features[rows], labels, options.svm_type, options.svm_c, options.svm_gamma, True)

    return fit


def _approx_fitter(features: FeatureSet, fold: WDFold, options: WDOptions) -> Callable[[int], KernelSVM]:
    """One scaler per fold on the development negatives; their kernel block computed once."""
    kind, gamma = options.svm_type, options.svm_gamma
    shared_raw = features.features[fold.dev_negatives]
    scaler = new_scaler().fit(shared_raw)
    shared = scaled(scaler, shared_raw)
    m = len(fold.train[0]) + len(fold.exp_negatives[0])
    n = m + len(shared)
    needed = _kernel_bytes(n, options.workers + 1)
    if needed > MEMORY_SHARE * _available_memory():
        raise InputError(f"--fast-approx needs {needed / 2**30:.1f} GiB for kernel matrices of {n} signatures, "
                         f"more than {MEMORY_SHARE:.0%} of the available memory",
                         "lower --workers, or drop --fast-approx")
    shared_gram = kernel_matrix(shared, None, kind, gamma)
    local = threading.local()

    def fit(user: int) -> KernelSVM:
        gram = getattr(local, "gram", None)
        if gram is None:  # one buffer per thread, its shared block filled once
            gram = local.gram = np.empty((n, n))
            gram[m:, m:] = shared_gram
        rows, labels = fold.training_rows(user)
        own = scaled(scaler, features.features[rows[:m]])
        gram[:m, :m] = kernel_matrix(own, None, kind, gamma)
        cross = kernel_matrix(own, shared, kind, gamma)
        gram[:m, m:] = cross
        gram[m:, :m] = cross.T
        return fit_gram(gram, labels, _RowsOf(own, shared), scaler, kind, options.svm_c, gamma, True)

    return fit


class _RowsOf:
    """Rows of ``vstack([head, tail])`` without building it (only support vectors are taken)."""

    def __init__(self, head: np.ndarray, tail: np.ndarray):
        self.head, self.tail = head, tail

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), self.head.shape[1]))
        in_head = index < len(self.head)
        out[in_head] = self.head[index[in_head]]
        out[~in_head] = self.tail[index[~in_head] - len(self.head)]
        return out


def _kernel_bytes(n: int, copies: int) -> int:
    return n * n * 8 * copies


def _available_memory() -> int:
    """Bytes of memory available (MemAvailable on Linux; 4 GiB when unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30

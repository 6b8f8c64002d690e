"""WD at GPDS scale: seconds per fold of `sig wd` vs the reference's sequential libsvm loop.

GPDS protocol: 300 exploitation users, 581 development users, 2048-d features, 24 genuine
and 30 skilled signatures each; every user's SVM sees 12 genuines + 581×14 negatives.
Features are random but shaped like SigNet's (non-negative, user-dependent). The
reference loop (scaler + rbf SVC fitted by libsvm, scored, per user) and our exact mode
are timed on some users and extrapolated to the fold (--whole-fold times ours on every
user); --fast-approx is timed on the whole fold, and its effect on every metric printed.

Run: python -m bench.bench_wd [--quick] [--whole-fold]
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sigcli.config.evaluation import WDOptions
from sigcli.config.report import SUMMARY_METRICS
from sigcli.features import FeatureSet
from sigcli.metrics import compute_metrics
from sigcli.options import build
from sigcli.protocols.wd import WDFold, check_wd, draw_fold, score_fold

NOISE, SKILL = 1.6, 0.7   # noise around a user's centre; how close skilled forgeries get to it


def signet_like(n_exp: int, n_dev: int, dim: int, genuine: int = 24, skilled: int = 30, seed: int = 0) -> FeatureSet:
    """Non-negative features around a per-user centre; skilled forgeries between it and another user's."""
    rng = np.random.default_rng(seed)
    n_users = n_exp + n_dev
    per_user = genuine + skilled
    centres = np.maximum(rng.standard_normal((n_users, dim), dtype=np.float32), 0)
    features = np.empty((n_users * per_user, dim), dtype=np.float32)
    for user in range(n_users):
        block = features[user * per_user:(user + 1) * per_user]
        block[:] = rng.standard_normal((per_user, dim), dtype=np.float32) * NOISE
        block[:genuine] += centres[user]
        block[genuine:] += SKILL * centres[user] + (1 - SKILL) * centres[rng.integers(n_users)]
        np.maximum(block, 0, out=block)
    y = np.repeat(np.arange(n_users), per_user)
    yforg = np.tile(np.r_[np.zeros(genuine, int), np.ones(skilled, int)], n_users)
    return FeatureSet(features, y, yforg)


def reference_user_seconds(features: FeatureSet, fold: WDFold, options: WDOptions, users: list[int]) -> float:
    """Mean seconds per user of the reference: Pipeline(scaler, rbf SVC).fit, then decision_function."""
    x = features.features
    start = time.perf_counter()
    for user in users:
        rows, labels = fold.training_rows(user)
        weight = {1: np.sum(labels == -1) / float(np.sum(labels == 1))}
        model = Pipeline([("scaler", StandardScaler(with_mean=False)),
                          ("classifier", SVC(C=options.svm_c, gamma=options.svm_gamma, class_weight=weight))])
        model.fit(x[rows], labels)
        test = fold.tests[user]
        for part in (test.genuine, test.random, test.skilled):
            model.decision_function(x[part])
    return (time.perf_counter() - start) / len(users)


def first_users(fold: WDFold, k: int) -> WDFold:
    return WDFold(fold.train[:k], fold.exp_negatives[:k], fold.dev_negatives, fold.tests[:k])


def metrics_of(scores) -> dict:
    genuine, random, skilled = (list(s) for s in zip(*scores))
    return compute_metrics(genuine, random, skilled)


def run(quick: bool, whole_fold: bool = False) -> list[dict]:
    n_exp, n_dev, dim = (40, 120, 512) if quick else (300, 581, 2048)
    probe, timed = (3, 30) if not whole_fold else (3, n_exp)
    features = signet_like(n_exp, n_dev, dim)
    options = build(WDOptions, exp_users=(0, n_exp), dev_users=(n_exp, n_exp + n_dev), folds=1, workers=2)
    fold = draw_fold(features, *check_wd(features, options), options, np.random.RandomState(options.seed))
    n_train = len(fold.training_rows(0)[0])
    work = f"{n_exp} users × SVM on {n_train}×{dim}"
    print(f"# {work}; seconds per fold. Extrapolated to the fold: the reference loop and --workers 1 "
          f"(timed on {probe} users), exact --workers 2 (timed on {timed} users)", flush=True)
    rows = []

    note = f"baseline extrapolated from {probe} users"

    def add(step: str, seconds: float, measured: str) -> None:
        rows.append({"step": step, "work": work, "ours_s": seconds, "baseline_s": baseline,
                     "ratio": baseline / seconds, "ceiling": None, "note": f"{note}; {measured}"})
        print(f"#   {step}: {seconds:.1f} s", flush=True)

    baseline = reference_user_seconds(features, fold, options, list(range(probe))) * n_exp
    add("reference loop (libsvm rbf, sequential)", baseline, f"timed on {probe} users")

    start = time.perf_counter()
    sequential = score_fold(features, first_users(fold, probe), options.model_copy(update={"workers": 1}))
    workers1 = (time.perf_counter() - start) / probe * n_exp
    add("exact, --workers 1", workers1, f"timed on {probe} users")

    start = time.perf_counter()
    exact = score_fold(features, first_users(fold, timed), options)
    add("exact, --workers 2", (time.perf_counter() - start) / timed * n_exp, f"timed on {timed} users")
    rows[-1]["ceiling"] = 2 * baseline / workers1  # two cores: at best twice --workers 1
    identical = all(np.array_equal(a, b) for s, t in zip(sequential, exact[:probe]) for a, b in zip(s, t))
    print(f"# --workers 1 and --workers 2 scores bit-identical on the first {probe} users: {identical}", flush=True)

    start = time.perf_counter()
    approx = score_fold(features, fold, options.model_copy(update={"fast_approx": True}))
    add("--fast-approx, --workers 2 (whole fold)", time.perf_counter() - start, "timed on the whole fold")

    m_exact, m_approx = metrics_of(exact), metrics_of(approx[:timed])
    print(f"# on the first {timed} users, exact: "
          + ", ".join(f"{name} {100 * m_exact[key]:.2f}%" for key, name in SUMMARY_METRICS.items()))
    print("# --fast-approx minus exact, percentage points: "
          + ", ".join(f"{name} {100 * (m_approx[key] - m_exact[key]):+.3f}" for key, name in SUMMARY_METRICS.items()))
    return rows


def show(rows: list[dict]) -> None:
    print(f"{'step':<55} {'ours_s':>9} {'baseline_s':>11} {'ratio':>7} {'ceiling':>8}  work")
    for r in rows:
        ceiling = f"{r['ceiling']:.1f}" if r.get("ceiling") else "-"
        print(f"{r['step']:<55} {r['ours_s']:>9.1f} {r['baseline_s']:>11.1f} {r['ratio']:>7.1f} {ceiling:>8}  {r['work']}")


if __name__ == "__main__":
    show(run(quick="--quick" in sys.argv, whole_fold="--whole-fold" in sys.argv))

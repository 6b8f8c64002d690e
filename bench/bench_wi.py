"""WI scoring: vectorised kernel expansion vs the reference's per-query decision_function loop.

A writer-independent SVM is trained on development pairs (as `sig wi` does, on fewer
development users so that the fit takes under a minute); then every exploitation user's
sampled test (10 genuine, 10 skilled, 10 random queries against 12 references) is scored.
The reference calls ``decision_function`` once per query; one call per user over all
query × reference pairs gives bit-identical scores; ours scores all pairs of a user with
one BLAS kernel expansion against the support vectors. The slow variants are timed on a
few users and extrapolated to all of them.

Run: python -m bench.bench_wi [--quick]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench.bench_wd import show, signet_like
from sigcli.config.evaluation import WIOptions
from sigcli.options import build
from sigcli.protocols.svm import from_pipeline
from sigcli.protocols.wi import FUSIONS, check_wi, draw_fold, fit_wi, score_queries


def run(quick: bool) -> list[dict]:
    n_exp, n_dev, dim, probe = (40, 20, 512, 5) if quick else (300, 60, 2048, 5)
    features = signet_like(n_exp, n_dev, dim)
    options = build(WIOptions, exp_users=(0, n_exp), dev_users=(n_exp, n_exp + n_dev), folds=1)
    fold = draw_fold(features, *check_wi(features, options), options, np.random.RandomState(options.seed))
    start = time.perf_counter()
    classifier = fit_wi(features, fold, options)
    print(f"# WI SVM on {len(fold.labels)} pairs × {dim}: {time.perf_counter() - start:.1f} s, "
          f"{len(classifier[-1].support_)} support vectors")
    x, fuse = features.features, FUSIONS[options.fusion]
    queries = [(x[refs], [x[rows] for rows in (t.genuine, t.random, t.skilled)])
               for refs, t in zip(fold.references, fold.tests)]
    n_queries = sum(len(q) for _, parts in queries for q in parts)
    work = f"{n_exp} users, {n_queries} queries × {options.gen_for_ref} references"
    print(f"# per-query loop and one-call-per-user timed on {probe} users and extrapolated")

    start = time.perf_counter()
    loop = [[np.array([fuse(classifier.decision_function(np.absolute(q - refs))) for q in part]) for part in parts]
            for refs, parts in queries[:probe]]
    baseline = (time.perf_counter() - start) / probe * n_exp

    start = time.perf_counter()
    one_call = []
    for refs, parts in queries[:probe]:
        stacked = np.concatenate(parts)
        pairs = np.absolute(stacked[:, None, :] - refs[None]).reshape(-1, dim)
        fused = fuse(classifier.decision_function(pairs).reshape(len(stacked), len(refs)), axis=1)
        one_call.append(np.split(fused, np.cumsum([len(p) for p in parts])[:-1]))
    one_call_s = (time.perf_counter() - start) / probe * n_exp

    svm = from_pipeline(classifier)
    start = time.perf_counter()
    ours = [[score_queries(svm, part, refs, options.fusion) for part in parts] for refs, parts in queries]
    ours_s = time.perf_counter() - start

    same = all(np.array_equal(a, b) for u, v in zip(loop, one_call) for a, b in zip(u, v))
    diff = max(float(np.max(np.abs(a - b))) for u, v in zip(loop, ours) for a, b in zip(u, v))
    print(f"# one call per user == per-query loop, bit for bit: {same}; ours vs loop: max |diff| {diff:.1e}")
    note = f"baseline extrapolated from {probe} users"
    return [
        {"step": "reference per-query loop", "work": work, "ours_s": baseline, "baseline_s": baseline,
         "ratio": 1.0, "ceiling": None, "note": note},
        {"step": "one decision_function per user", "work": work, "ours_s": one_call_s, "baseline_s": baseline,
         "ratio": baseline / one_call_s, "ceiling": None, "note": f"{note}; identical scores: {same}"},
        {"step": "ours: kernel expansion per user (all users)", "work": work, "ours_s": ours_s,
         "baseline_s": baseline, "ratio": baseline / ours_s, "ceiling": None,
         "note": f"{note}; max |score - reference| {diff:.1e}"},
    ]


if __name__ == "__main__":
    show(run(quick="--quick" in sys.argv))

"""Verification metrics (docs/evaluation.md#metrics), equal to the reference definitions for the same scores.

Scores are SVM decision values, higher meaning "more genuine". Per-user inputs are lists
with one 1-d array per user. Genuine signatures are the positive class; a signature is
accepted when its score is at or above the threshold, so

- FRR(t) = share of genuine scores below ``t``,
- FAR(t) = share of forgery (random or skilled) scores at or above ``t``.

The EER threshold is the ROC threshold (scikit-learn's :func:`~sklearn.metrics.roc_curve`)
minimising ``|FPR - (1 - TPR)|``, the first one on ties. Every rate is computed with the
same arithmetic as the reference (``1 - mean(score >= t)``, not ``mean(score < t)``), so
figures match to the last bit.

Examples
--------
>>> import numpy as np
>>> m = compute_metrics([np.array([1.0, 2.0])], [np.array([-1.0])], [np.array([0.5, -2.0])])
>>> m["FRR"], m["FAR_skilled"], m["EER"], m["mean_AUC"]
(0.0, 0.5, 0.0, 1.0)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import sklearn.metrics as sk_metrics

from sigcli.errors import InputError

#: Keys of ``all_metrics`` in a results file, in the reference's order.
METRIC_KEYS = ("FRR", "FAR_random", "FAR_skilled", "mean_AUC", "EER", "EER_userthresholds",
               "auc_list", "global_threshold")


def compute_metrics(genuine_preds: Sequence[np.ndarray], random_preds: Sequence[np.ndarray],
                    skilled_preds: Sequence[np.ndarray], threshold: float = 0.0) -> dict:
    """All metrics of one fold: the ``all_metrics`` dict of a results file.

    Parameters
    ----------
    genuine_preds, random_preds, skilled_preds : list of ndarray, one (n_u,) array per user
        Scores of each user's test genuines, random forgeries and skilled forgeries.
    threshold : float
        Decision threshold of FRR, FAR_random and FAR_skilled.

    Returns
    -------
    dict
        ``FRR``, ``FAR_random``, ``FAR_skilled`` (at ``threshold``), ``EER`` and
        ``global_threshold`` (the EER's threshold), ``EER_userthresholds``, ``auc_list``
        (one AUC per user) and ``mean_AUC``.
    """
    genuine_preds, random_preds, skilled_preds = _check_users(genuine_preds, random_preds, skilled_preds)
    all_genuine = np.concatenate(genuine_preds)
    frr, far_random, far_skilled = error_rates(all_genuine, np.concatenate(random_preds),
                                               np.concatenate(skilled_preds), threshold)
    aucs, mean_auc = user_aucs(genuine_preds, skilled_preds)
    eer, eer_threshold = equal_error_rate(all_genuine, np.concatenate(skilled_preds))
    return {"FRR": frr, "FAR_random": far_random, "FAR_skilled": far_skilled, "mean_AUC": mean_auc,
            "EER": eer, "EER_userthresholds": eer_user_thresholds(genuine_preds, skilled_preds),
            "auc_list": aucs, "global_threshold": eer_threshold}


def fold_results(scores: list[tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float) -> dict:
    """The per-fold dict of a results file from per-user (genuine, random, skilled) scores."""
    genuine, random, skilled = (list(s) for s in zip(*scores))
    return {"all_metrics": compute_metrics(genuine, random, skilled, threshold),
            "predictions": {"genuinePreds": genuine, "randomPreds": random, "skilledPreds": skilled}}


def error_rates(genuine: np.ndarray, random: np.ndarray, skilled: np.ndarray,
                threshold: float = 0.0) -> tuple[float, float, float]:
    """``(FRR, FAR_random, FAR_skilled)`` of pooled scores at ``threshold``.

    >>> error_rates(np.array([-1.0, 0.0, 2.0]), np.array([0.0, -3.0]), np.array([1.0]))
    (0.33333333333333337, 0.5, 1.0)
    """
    frr = 1 - np.mean(np.asarray(genuine) >= threshold)
    far_random = 1 - np.mean(np.asarray(random) < threshold)
    far_skilled = 1 - np.mean(np.asarray(skilled) < threshold)
    return float(frr), float(far_random), float(far_skilled)


def equal_error_rate(genuine: np.ndarray, skilled: np.ndarray) -> tuple[float, float]:
    """``(EER, threshold)`` with one threshold for all users (pooled scores).

    The EER is the mean of FRR and FAR_skilled at the chosen ROC threshold.

    >>> equal_error_rate(np.array([3.0, 1.0]), np.array([2.0, 0.0]))
    (0.5, 2.0)
    """
    genuine, skilled = np.asarray(genuine), np.asarray(skilled)
    t = _eer_threshold(genuine, skilled)
    genuine_errors = 1 - np.mean(genuine >= t).item()
    skilled_errors = 1 - np.mean(skilled < t).item()
    return (genuine_errors + skilled_errors) / 2.0, float(t)


def threshold_at_far(forgeries: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most ``⌊far·n⌋`` of the ``n`` forgery scores are accepted
    (score ≥ threshold): just above the ``(⌊far·n⌋ + 1)``-th highest score. With fewer than
    ``1 / far`` forgeries, it accepts none of them.

    >>> threshold_at_far(np.array([0.0, 1.0, 2.0, 3.0]), 0.25)  # accepts 3.0 only: 1 of 4
    2.0000000000000004
    """
    scores = np.sort(np.asarray(forgeries, dtype=np.float64))[::-1]
    if not 0 < far < 1 or len(scores) == 0:
        raise InputError(f"a threshold at FAR {far} needs 0 < FAR < 1 and forgery scores (got {len(scores)})")
    allowed = int(np.floor(far * len(scores) + 1e-9))  # 1e-9: 0.29 × 100 is 28.999999999999996 in floats
    return float(np.nextafter(scores[allowed], np.inf))


def eer_user_thresholds(genuine_preds: Sequence[np.ndarray], skilled_preds: Sequence[np.ndarray]) -> float:
    """EER with each user's own EER threshold; errors are summed over users, then averaged.

    >>> eer_user_thresholds([np.array([1.0]), np.array([0.0])], [np.array([0.0]), np.array([1.0])])
    0.5
    """
    genuine_errors = skilled_errors = n_genuine = n_skilled = 0
    for genuine, skilled in zip(genuine_preds, skilled_preds):
        t = _eer_threshold(genuine, skilled)
        genuine_errors += int(np.sum(genuine < t))
        skilled_errors += int(np.sum(skilled >= t))
        n_genuine += len(genuine)
        n_skilled += len(skilled)
    return (float(genuine_errors) / n_genuine + float(skilled_errors) / n_skilled) / 2.0


def user_aucs(genuine_preds: Sequence[np.ndarray], skilled_preds: Sequence[np.ndarray]) -> tuple[list[float], float]:
    """Per-user ROC AUC of genuine vs skilled scores (ties count one half) and their mean.

    >>> user_aucs([np.array([1.0, 0.0])], [np.array([0.0])])
    ([0.75], 0.75)
    """
    aucs = [float(sk_metrics.roc_auc_score(*_labels(genuine, skilled)))
            for genuine, skilled in zip(genuine_preds, skilled_preds)]
    return aucs, np.mean(aucs).item()


def rates_at(genuine: np.ndarray, forgeries: np.ndarray, thresholds: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``(FAR, FRR)`` at each threshold: FAR = share of forgeries ``>= t``, FRR = genuines ``< t``.

    >>> rates_at(np.array([1.0, 3.0]), np.array([0.0, 2.0]), np.array([0.0, 2.0, 4.0]))
    (array([1. , 0.5, 0. ]), array([0. , 0.5, 1. ]))
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    genuine, forgeries = np.sort(np.asarray(genuine)), np.sort(np.asarray(forgeries))
    frr = np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    far = 1 - np.searchsorted(forgeries, thresholds, side="left") / len(forgeries)
    return far, frr


def roc_points(genuine: np.ndarray, forgeries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(FPR, TPR, thresholds)`` of the ROC of genuine (positive) vs forgery scores."""
    return sk_metrics.roc_curve(*_labels(genuine, forgeries))


def det_points(genuine: np.ndarray, forgeries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(FAR, FRR, thresholds)`` of the DET curve of genuine vs forgery scores."""
    return sk_metrics.det_curve(*_labels(genuine, forgeries))


def _eer_threshold(genuine: np.ndarray, skilled: np.ndarray) -> float:
    fpr, tpr, thresholds = sk_metrics.roc_curve(*_labels(genuine, skilled))
    return thresholds[int(np.argmin(np.abs(fpr - (1 - tpr))))]


def _labels(genuine: np.ndarray, forgeries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, scores)``: genuine labelled 1 first, forgeries -1, as the reference orders them."""
    y_true = np.ones(len(genuine) + len(forgeries))
    y_true[len(genuine):] = -1
    return y_true, np.concatenate([genuine, forgeries])


def _check_users(*per_user: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    names = ("genuine", "random-forgery", "skilled-forgery")
    lists = [[np.asarray(s, dtype=np.float64).ravel() for s in scores] for scores in per_user]
    n_users = {len(scores) for scores in lists}
    if len(n_users) != 1:
        raise InputError("genuine, random and skilled scores cover different numbers of users "
                         f"({', '.join(str(len(s)) for s in lists)})")
    if not lists[0]:
        raise InputError("no users to compute metrics on")
    for name, scores in zip(names, lists):
        for user, s in enumerate(scores):
            if len(s) == 0 and name != "random-forgery":
                raise InputError(f"user {user} has no {name} scores; FRR, EER and AUC need both "
                                 "genuine and skilled scores for every user")
            if not np.all(np.isfinite(s)):
                raise InputError(f"user {user} has non-finite {name} scores")
    if not sum(len(s) for s in lists[1]):
        raise InputError("no random-forgery scores at all; FAR_random is undefined")
    return lists

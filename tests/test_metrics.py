"""Metrics (docs/evaluation.md#metrics) on hand-computed 2–3-sample cases, ties and degenerate users."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sigcli.errors import InputError
from sigcli.metrics import (METRIC_KEYS, compute_metrics, det_points, eer_user_thresholds, equal_error_rate,
                            error_rates, rates_at, roc_points, user_aucs)

A = np.array


@pytest.mark.parametrize("genuine, random, skilled, threshold, expected", [
    # a score equal to the threshold is accepted: genuine 0 is no error, random 0 is one
    (A([-1.0, 0.0, 2.0]), A([0.0, -3.0]), A([1.0]), 0.0, (1 - 2 / 3, 0.5, 1.0)),
    (A([1.0, 2.0]), A([-1.0, -2.0]), A([-0.5, 3.0]), 0.0, (0.0, 0.0, 0.5)),
    (A([1.0, 2.0]), A([-1.0, -2.0]), A([-0.5, 3.0]), 1.5, (0.5, 0.0, 0.5)),
    (A([0.1, 0.2, 0.3]), A([0.3]), A([0.25, 0.3]), 0.3, (1 - 1 / 3, 1.0, 0.5)),
])
def test_error_rates_at_a_threshold(genuine, random, skilled, threshold, expected):
    assert error_rates(genuine, random, skilled, threshold) == expected


def test_rates_use_the_references_arithmetic_to_the_last_bit():
    # FRR is 1 - mean(accepted), not mean(rejected): 1 - 2/3 != 1/3 in floating point
    frr, _, _ = error_rates(A([-1.0, 1.0, 1.0]), A([0.0]), A([0.0]))
    assert frr == 1 - 2 / 3 and frr != 1 / 3


@pytest.mark.parametrize("genuine, skilled, expected_eer, expected_threshold", [
    # perfectly separated: threshold at the lowest genuine, no errors
    (A([3.0, 2.0]), A([1.0, 0.0]), 0.0, 2.0),
    # interleaved g s g s: ROC points (0,.5) (.5,.5) (.5,1); |fpr-(1-tpr)| is 0 at threshold 2
    (A([3.0, 1.0]), A([2.0, 0.0]), 0.5, 2.0),
    # two thresholds equally close (4 and 2 after sklearn drops the collinear 3): the first wins
    (A([4.0, 1.0]), A([3.0, 2.0]), 0.25, 4.0),
    # perfectly inverted: the ROC runs (0,0) (1,0) (1,1); it meets the EER line at (1,0),
    # threshold 2, where every genuine is rejected and every forgery accepted
    (A([0.0, 1.0]), A([2.0, 3.0]), 1.0, 2.0),
    # a genuine and a forgery tie at the chosen threshold: both accepted
    (A([2.0, 1.0]), A([1.0, 0.0]), 0.25, 2.0),
])
def test_equal_error_rate_hand_cases(genuine, skilled, expected_eer, expected_threshold):
    assert equal_error_rate(genuine, skilled) == (expected_eer, expected_threshold)


def test_all_equal_scores_give_eer_one_half_at_an_infinite_threshold():
    # ROC has only (0,0) and (1,1), both 1 away from the EER line: the first, threshold +inf
    # (scikit-learn >= 1.3; older versions put max + 1 there, with the same EER)
    eer, threshold = equal_error_rate(A([1.0, 1.0]), A([1.0, 1.0, 1.0]))
    assert eer == 0.5 and math.isinf(threshold) and threshold > 0


def test_user_thresholds_sum_errors_over_users_before_the_rates():
    genuine = [A([3.0, 1.0]), A([5.0, 4.0, 0.0])]
    skilled = [A([2.0, 0.0]), A([1.0])]
    # user 0: threshold 2 → genuine 1 rejected (1 error), skilled 2 accepted (1 error)
    # user 1: ROC points (0,2/3)@4 and (1,2/3)@1 (sklearn drops the collinear 5); best t=4:
    #         genuine 0 rejected (1 error), skilled 1 below 4 (0 errors)
    # genuine errors 2 of 5, skilled errors 1 of 3 → (0.4 + 1/3) / 2
    assert eer_user_thresholds(genuine, skilled) == (2 / 5 + 1 / 3) / 2


@pytest.mark.parametrize("genuine, skilled, expected", [
    (A([2.0, 3.0]), A([0.0, 1.0]), 1.0),          # perfectly separated
    (A([0.0, 1.0]), A([2.0, 3.0]), 0.0),          # inverted
    (A([1.0, 1.0]), A([1.0]), 0.5),               # all equal: every pair a tie
    (A([1.0, 0.0]), A([0.0]), 0.75),              # one win, one tie
    (A([2.0, 0.0, 1.0]), A([1.0, 3.0]), 1.5 / 6),  # 6 pairs: one win (2,1), one tie (1,1)
])
def test_auc_per_user_counts_ties_as_one_half(genuine, skilled, expected):
    aucs, mean_auc = user_aucs([genuine], [skilled])
    assert aucs == [pytest.approx(expected, abs=1e-15)] and mean_auc == pytest.approx(expected, abs=1e-15)


def test_mean_auc_is_the_plain_mean_over_users():
    aucs, mean_auc = user_aucs([A([2.0]), A([0.0])], [A([1.0]), A([1.0])])
    assert aucs == [1.0, 0.0] and mean_auc == 0.5 and isinstance(mean_auc, float)


def test_compute_metrics_keys_values_and_plain_types():
    genuine = [A([1.0, 2.0]), A([0.5, -0.5])]
    random = [A([-1.0]), A([-2.0, 0.0])]
    skilled = [A([0.5, -2.0]), A([1.0])]
    m = compute_metrics(genuine, random, skilled)
    assert tuple(m) == METRIC_KEYS
    assert m["FRR"] == 1 - 3 / 4 and m["FAR_random"] == 1 - 2 / 3 and m["FAR_skilled"] == 1 - 1 / 3
    assert m["auc_list"] == [1.0, 0.0] and m["mean_AUC"] == 0.5
    assert (m["EER"], m["global_threshold"]) == equal_error_rate(np.concatenate(genuine), np.concatenate(skilled))
    assert m["EER_userthresholds"] == eer_user_thresholds(genuine, skilled)
    assert all(isinstance(m[k], float) for k in METRIC_KEYS if k != "auc_list")


def test_compute_metrics_threshold_moves_only_the_rates_at_it():
    genuine, random, skilled = [A([1.0, 2.0])], [A([0.5])], [A([1.5])]
    at_zero, at_one = compute_metrics(genuine, random, skilled), compute_metrics(genuine, random, skilled, 1.0)
    assert (at_zero["FRR"], at_zero["FAR_random"]) == (0.0, 1.0)
    assert (at_one["FRR"], at_one["FAR_random"]) == (0.0, 0.0)
    assert at_zero["EER"] == at_one["EER"]


def test_rates_and_curve_points():
    far, frr = rates_at(A([1.0, 3.0]), A([0.0, 2.0]), A([0.0, 2.0, 4.0]))
    assert far.tolist() == [1.0, 0.5, 0.0] and frr.tolist() == [0.0, 0.5, 1.0]
    fpr, tpr, thresholds = roc_points(A([1.0, 3.0]), A([0.0, 2.0]))
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and len(thresholds) == len(fpr)
    det_far, det_frr, det_thresholds = det_points(A([1.0, 3.0]), A([0.0, 2.0]))
    far_again, frr_again = rates_at(A([1.0, 3.0]), A([0.0, 2.0]), det_thresholds)
    assert np.array_equal(det_far, far_again) and np.array_equal(det_frr, frr_again)


@pytest.mark.parametrize("genuine, random, skilled, message", [
    ([A([1.0])], [A([0.0])], [A([0.0]), A([1.0])], "different numbers of users"),
    ([A([1.0])], [A([0.0])], [A([])], "user 0 has no skilled-forgery scores"),
    ([A([1.0]), A([])], [A([0.0]), A([0.0])], [A([0.0]), A([0.0])], "user 1 has no genuine scores"),
    ([A([np.nan])], [A([0.0])], [A([0.0])], "non-finite genuine scores"),
    ([], [], [], "no users"),
])
def test_bad_scores_raise_one_clear_error(genuine, random, skilled, message):
    with pytest.raises(InputError, match=message):
        compute_metrics(genuine, random, skilled)

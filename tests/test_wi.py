"""Writer-independent protocol: draw order, pairs, vectorised scoring, model files, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import skops.io

from evaluation_data import synthetic_features
from sigcli.config.evaluation import WIOptions
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.options import build
from sigcli.protocols.svm import from_pipeline
from sigcli.protocols.wi import (FUSIONS, TRUSTED_TYPES, check_wi, dissimilarities, draw_fold, evaluate_wi, fit_wi,
                                 load_wi_model, save_wi_model, score_queries)

SMALL = dict(exp_users=(0, 6), dev_users=(6, 14), gen_for_train=4, gen_for_ref=4, gen_for_test=3,
             svm_gamma=2 ** -4, folds=2)


@pytest.fixture(scope="module")
def features() -> FeatureSet:
    return synthetic_features()


@pytest.fixture(scope="module")
def trained(features):
    options = build(WIOptions, **SMALL)
    fold = draw_fold(features, *check_wi(features, options), options, np.random.RandomState(7))
    return options, fold, fit_wi(features, fold, options)


def test_draws_follow_the_reference_sequence_of_random_calls():
    # exploitation users 0-2: 4 genuine rows and 2 skilled each; development users 3-5: 3 genuine
    y = np.array([0] * 6 + [1] * 6 + [2] * 6 + [3] * 3 + [4] * 3 + [5] * 3)
    yforg = np.array(([0] * 4 + [1] * 2) * 3 + [0] * 9)
    fs = FeatureSet(np.zeros((len(y), 2), np.float32), y, yforg)
    options = build(WIOptions, exp_users=(0, 3), dev_users=(3, 6), gen_for_train=3, gen_for_ref=2, gen_for_test=2)
    fold = draw_fold(fs, *check_wi(fs, options), options, np.random.RandomState(1234))

    rng = np.random.RandomState(1234)
    # 1. exploitation users' genuines shuffled; 2. development users' genuines shuffled
    g0, g1, g2 = np.array([0, 1, 2, 3]), np.array([6, 7, 8, 9]), np.array([12, 13, 14, 15])
    d3, d4, d5 = np.array([18, 19, 20]), np.array([21, 22, 23]), np.array([24, 25, 26])
    for rows in (g0, g1, g2, d3, d4, d5):
        rng.shuffle(rows)
    # 3. per development user, 3 // 2 = 1 other user, then one of its first 2 genuines
    other3 = rng.choice(np.array([1, 2]), 1, replace=False)[0]
    pick3 = rng.randint(2)
    other4 = rng.choice(np.array([0, 2]), 1, replace=False)[0]
    pick4 = rng.randint(2)
    other5 = rng.choice(np.array([0, 1]), 1, replace=False)[0]
    pick5 = rng.randint(2)
    # 5. sampled tests, as in WD
    tests = []
    for skilled, tail, others in ((np.array([4, 5]), g0[-2:], np.array([1, 2])),
                                  (np.array([10, 11]), g1[-2:], np.array([0, 2])),
                                  (np.array([16, 17]), g2[-2:], np.array([0, 1]))):
        chosen_skilled = rng.choice(skilled, 2, replace=False)
        chosen_genuine = rng.choice(tail, 2, replace=False)
        chosen_users = rng.choice(others, 2, replace=False)
        tests.append((chosen_genuine, chosen_skilled, [rng.choice((g0, g1, g2)[u][-2:]) for u in chosen_users]))

    assert [r.tolist() for r in fold.references] == [g0[:2].tolist(), g1[:2].tolist(), g2[:2].tolist()]
    for test, (genuine, skilled, random) in zip(fold.tests, tests):
        assert (test.genuine.tolist(), test.skilled.tolist(), test.random.tolist()) == \
               (genuine.tolist(), skilled.tolist(), list(random))
    kept = (d3, d4, d5)
    positives = [(d[k], d[j]) for d in kept for j in range(3) for k in range(j + 1, 3)]
    negatives = [(kept[i][s], kept[other][pick]) for i, other, pick in
                 ((0, other3, pick3), (1, other4, pick4), (2, other5, pick5)) for s in range(2)]
    assert list(zip(fold.pair_a.tolist(), fold.pair_b.tolist())) == positives + negatives
    assert fold.labels.tolist() == [1.0] * 9 + [-1.0] * 6


def test_training_pairs_are_the_references_float64_dissimilarities(features):
    a, b = np.array([0, 5, 7]), np.array([1, 5, 2])
    pairs = dissimilarities(features.features, a, b)
    expected = np.stack([np.absolute(features.features[i].astype(np.float64) - features.features[j]) for i, j in
                         zip(a, b)])
    assert pairs.dtype == np.float64 and np.array_equal(pairs, expected)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_vectorised_scores_equal_the_per_query_loop(features, trained, fusion):
    _, _, classifier = trained
    queries, references = features.features[:9], features.features[20:24]
    loop = np.array([FUSIONS[fusion](classifier.decision_function(np.absolute(q - references))) for q in queries])
    ours = score_queries(from_pipeline(classifier), queries, references, fusion)
    np.testing.assert_allclose(ours, loop, rtol=0, atol=1e-9)


def test_evaluation_scores_equal_the_reference_loop_on_the_same_draws(features):
    options = build(WIOptions, **SMALL, fusion="median")
    run = evaluate_wi(features, options)
    rng = np.random.RandomState(options.seed)
    x = features.features
    for fold_result in run.folds:
        fold = draw_fold(features, *check_wi(features, options), options, rng)
        classifier = fit_wi(features, fold, options)
        for user, (refs, test) in enumerate(zip(fold.references, fold.tests)):
            for key, rows in (("genuinePreds", test.genuine), ("randomPreds", test.random),
                              ("skilledPreds", test.skilled)):
                loop = [np.median(classifier.decision_function(np.absolute(x[q] - x[refs]))) for q in rows]
                np.testing.assert_allclose(fold_result["predictions"][key][user], loop, rtol=0, atol=1e-9)
    assert 0 < run.folds[0]["all_metrics"]["mean_AUC"] <= 1


def test_saved_model_loads_with_skops_and_scores_the_same(features, trained, tmp_path):
    options, _, classifier = trained
    path = save_wi_model(tmp_path / "wi.skops", classifier, options, features.dim, source="test")
    model = load_wi_model(path)
    assert model.fusion == "max" and model.feature_dim == 16 and model.info["source"] == "test"
    queries, references = features.features[:5], features.features[30:34]
    assert np.array_equal(model.score(queries, references),
                          score_queries(from_pipeline(classifier), queries, references, "max"))
    with pytest.raises(InputError, match="expects N×16"):
        model.score(queries[:, :8], references)


def test_model_file_with_foreign_types_is_refused_without_loading(tmp_path):
    path = tmp_path / "evil.skops"
    skops.io.dump({"format": "sigcli-wi-model", "classifier": np.testing.assert_equal}, path)
    with pytest.raises(InputError, match="contains types a WI model never has"):
        load_wi_model(path)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.skops is not a WI classifier: it is a file of unknown format"):
        load_wi_model(tmp_path / "junk.skops")


def test_other_kinds_of_file_given_as_a_classifier_are_named(features, tmp_path):
    import pickle

    import torch

    with open(tmp_path / "wi.pkl", "wb") as fh:
        pickle.dump({"classifier": None}, fh)
    features.save(tmp_path / "f.npz")
    torch.save({"w": torch.zeros(2)}, tmp_path / "m.pth")
    for name, kind in (("wi.pkl", "a Python pickle"), ("f.npz", "a NumPy .npz archive"), ("m.pth", "a PyTorch file")):
        with pytest.raises(InputError) as info:
            load_wi_model(tmp_path / name)
        assert info.value.message == f"{tmp_path / name} is not a WI classifier: it is {kind}"
        assert info.value.hint == "expected a .skops file written by 'sig wi --save-model'"


def _edit(classifier, tmp_path, options, dim, **changes):
    """Save a copy of the classifier after ``changes``: ``svc__x`` / ``scaler__x`` map an attribute's value,
    other keys replace payload entries."""
    import copy

    edited = copy.deepcopy(classifier)
    payload_changes = {}
    for key, value in changes.items():
        owner, _, attribute = key.partition("__")
        if attribute:
            setattr(edited[0] if owner == "scaler" else edited[-1], attribute,
                    value(getattr(edited[0] if owner == "scaler" else edited[-1], attribute)))
        else:
            payload_changes[key] = value
    path = save_wi_model(tmp_path / "edited.skops", edited, options, dim)
    if payload_changes:
        payload = skops.io.load(path, trusted=TRUSTED_TYPES)
        skops.io.dump({**payload, **payload_changes}, path)
    return path


@pytest.mark.parametrize("changes, message", [
    (dict(svc__gamma=lambda _: "scale"), "the SVM's gamma is 'scale', not a positive number"),
    (dict(svc__gamma=lambda _: -1.0), "the SVM's gamma is -1.0, not a positive number"),
    (dict(svc__kernel=lambda _: "poly"), "the SVM's kernel is 'poly'; 'sig wi' trains rbf or linear SVMs only"),
    (dict(svc__support_vectors_=lambda v: v[:, :5]), "the SVM's support vectors have 5 features, feature_dim says 16"),
    (dict(svc__dual_coef_=lambda v: v[:, :3]), r"the SVM's dual_coef_ has shape \(1, 3\), expected \(1, \d+\)"),
    (dict(svc__intercept_=lambda v: v * np.nan), "the SVM's intercept_ holds NaN or inf"),
    (dict(svc__classes_=lambda v: np.array([0, 1])), r"the SVM's classes are \[0, 1\], not \[-1, 1\]"),
    (dict(svc__support_vectors_=lambda v: v.astype(str)), "the SVM's support_vectors_ holds text values"),
    (dict(scaler__scale_=lambda v: v[:3]), r"the scaler's scale_ has shape \(3,\), expected \(16,\)"),
    (dict(feature_dim=5), "the SVM's support vectors have 16 features, feature_dim says 5"),
    (dict(fusion="vote"), "fusion is 'vote', not one of max, min, mean, median"),
])
def test_a_classifier_file_with_values_sig_wi_never_writes_is_refused(features, trained, tmp_path, changes, message):
    options, _, classifier = trained
    path = _edit(classifier, tmp_path, options, features.dim, **changes)
    with pytest.raises(InputError, match=message) as info:
        load_wi_model(path)
    assert info.value.message.startswith(f"{path}: ") and "save the classifier again" in info.value.hint


def test_a_linear_classifier_is_scored_with_its_own_kernel(features, tmp_path):
    options = build(WIOptions, **{**SMALL, "svm_type": "linear"})
    fold = draw_fold(features, *check_wi(features, options), options, np.random.RandomState(7))
    classifier = fit_wi(features, fold, options)
    model = load_wi_model(save_wi_model(tmp_path / "linear.skops", classifier, options, features.dim))
    queries, references = features.features[:4], features.features[30:33]
    pairs = np.abs(queries[:, None] - references[None]).reshape(-1, features.dim)
    np.testing.assert_allclose(model.pair_scores(queries, references).ravel(), classifier.decision_function(pairs),
                               rtol=0, atol=1e-9)


def test_cli_saves_results_and_model(features, tmp_path, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    args = ["wi", "--features-path", str(path), "--exp-users", "0", "6", "--dev-users", "6", "14", "--gen-for-train", "4",
            "--gen-for-ref", "4", "--gen-for-test", "3", "--svm-gamma", "2^-4", "--folds", "1", "--fusion", "mean",
            "--save-path", str(tmp_path / "wi.pkl"), "--save-model", str(tmp_path / "wi.skops")]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "wi.pkl").is_file() and (tmp_path / "wi.json").is_file()
    assert load_wi_model(tmp_path / "wi.skops").fusion == "mean"
    assert "EER (global)" in result.stdout

    again = cli(*args, "--overwrite", "--json")
    assert again.exit_code == 0, again.output
    record = json.loads(again.stdout)
    assert record["command"] == "wi" and record["folds"] == 1 and record["save_model"] == str(tmp_path / "wi.skops")
    assert record["summary"] == json.loads((tmp_path / "wi.json").read_text())["summary"]


@pytest.mark.parametrize("args, message", [
    (["--gen-for-train", "1"], "--gen-for-train 1 makes no genuine pairs"),
    (["--gen-for-ref", "6"], "user 0 has 8 genuine signatures \\(and 5 more users\\); --gen-for-ref 6 \\+ --gen-for-test 3 need 9"),
    (["--dev-users", "6", "8", "--gen-for-train", "6"], "only 2 development users"),
    (["--fusion", "vote"], "Invalid value"),
    (["--dev-users", "6", "300"], "--dev-users 6 300 reaches beyond the users of the features, 0–13"),
])
def test_cli_bad_input_exits_2(features, tmp_path, args, message, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    base = ["wi", "--features-path", str(path), "--exp-users", "0", "6", "--dev-users", "6", "14", "--gen-for-train", "4",
            "--gen-for-ref", "4", "--gen-for-test", "3"]
    result = cli(*base, *args)
    assert result.exit_code == 2
    assert re.search(message, result.stderr), result.stderr


def test_cli_refuses_non_finite_feature_rows(features, tmp_path, cli):
    broken = features.features.copy()
    broken[np.flatnonzero(features.y == 7)[0]] = np.nan
    path = tmp_path / "f.npz"
    FeatureSet(broken, features.y, features.yforg).save(path)
    result = cli("wi", "--features-path", str(path), "--exp-users", "0", "6", "--dev-users", "6", "14",
                 "--gen-for-train", "4", "--gen-for-ref", "4", "--gen-for-test", "3")
    assert result.exit_code == 2
    assert f"{path}: 1 of {len(features.y)} feature rows hold NaN or inf (user 7)" in result.stderr


# --------------------------------------------------------------------------- calibrated operating points
def test_threshold_at_far_is_the_lowest_threshold_meeting_the_target():
    from sigcli.metrics import threshold_at_far

    forgeries = np.round(np.random.RandomState(3).randn(250), 1)  # many ties
    for far in (0.001, 0.01, 0.05, 0.3):
        t = threshold_at_far(forgeries, far)
        assert np.mean(forgeries >= t) <= far
        assert np.mean(forgeries >= np.nextafter(t, -np.inf)) > far  # any lower threshold accepts too many
    assert threshold_at_far(forgeries, 0.001) > forgeries.max()  # 250 forgeries: none may be accepted


def test_the_saved_classifier_carries_its_fingerprint_and_thresholds_calibrated_on_held_out_development_data(
        features, tmp_path, cli):
    """Recomputed here from the documented rules (docs/evaluation.md#calibrated-operating-points) with
    scikit-learn's own decision_function, one development user at a time."""
    from sigcli.metrics import equal_error_rate
    from sigcli.protocols.splits import genuine_rows, skilled_rows

    features.source = "tiny:0123456789abcdef"
    features.save(tmp_path / "f.npz")
    result = cli("wi", "--features-path", tmp_path / "f.npz", *_SMALL_ARGS, "--folds", "2",
                 "--save-model", tmp_path / "wi.skops")
    assert result.exit_code == 0, result.output
    model = load_wi_model(tmp_path / "wi.skops")
    assert model.fingerprint == "tiny:0123456789abcdef"
    assert "with thresholds calibrated on 8 development users" in " ".join(result.stderr.split())

    options = build(WIOptions, **{**SMALL, "svm_gamma": 2 ** -4})
    fold = draw_fold(features, *check_wi(features, options), options, np.random.RandomState(options.seed))
    x, y, yforg = features.features, features.y, features.yforg
    dev = list(range(6, 14))
    held = {u: sorted(set(genuine_rows(y, yforg, u)) - set(kept)) for u, kept in zip(dev, fold.kept)}
    fused = lambda rows, u: [model.classifier.decision_function(np.abs(x[q] - x[fold.kept[dev.index(u)][:4]])).max()
                             for q in rows]
    genuine = np.concatenate([fused(held[u][:3], u) for u in dev])
    skilled = np.concatenate([fused(skilled_rows(y, yforg, u)[:3], u) for u in dev])
    random = np.concatenate([fused([held[dev[(i + k) % 8]][0] for k in (1, 2, 3)], u) for i, u in enumerate(dev)])
    calibration = model.calibration
    assert (calibration.users, calibration.references, calibration.genuine, calibration.skilled,
            calibration.random) == (8, 4, 24, 24, 24)
    points = calibration.points
    assert list(points) == ["boundary", "eer", "far=0.01", "far=0.001", "random:eer", "random:far=0.01",
                            "random:far=0.001"]
    assert points["eer"].threshold == pytest.approx(equal_error_rate(genuine, skilled)[1], abs=1e-9)
    assert points["random:eer"].threshold == pytest.approx(equal_error_rate(genuine, random)[1], abs=1e-9)
    assert points["far=0.01"].threshold == pytest.approx(skilled.max(), abs=1e-9)  # 24 forgeries: accept none
    for point in points.values():  # a score within 1e-9 of a threshold may fall either side of it here
        t = point.threshold
        assert any(point.frr == pytest.approx(np.mean(genuine < t + e)) for e in (-1e-9, 1e-9))
        assert any(point.far_skilled == pytest.approx(np.mean(skilled >= t + e)) for e in (-1e-9, 1e-9))
        assert any(point.far_random == pytest.approx(np.mean(random >= t + e)) for e in (-1e-9, 1e-9))
    assert points["boundary"].threshold == 0 and points["far=0.01"].far_skilled == 0


def test_a_classifier_file_of_version_1_loads_without_calibration(features, trained, tmp_path):
    _, _, classifier = trained
    payload = {"format": "sigcli-wi-model", "version": 1, "classifier": classifier, "fusion": "max",
               "feature_dim": features.dim, "options": {}, "canvas": None, "info": {"source": "tiny:00ff"}}
    skops.io.dump(payload, tmp_path / "old.skops")
    model = load_wi_model(tmp_path / "old.skops")
    assert (model.fingerprint, model.calibration, model.fusion) == ("tiny:00ff", None, "max")


def test_a_calibration_sig_wi_never_writes_is_refused(features, trained, tmp_path):
    from sigcli.protocols.calibration import operating_points

    options, _, classifier = trained
    calibration = {"points": [dict(vars(point)) for point in operating_points(np.ones(3), np.zeros(3),
                                                                                np.zeros(3)).values()],
                   "users": 1, "references": 2, "genuine": 3, "skilled": 3, "random": 3}
    calibration["points"][1]["threshold"] = float("nan")
    path = _edit(classifier, tmp_path, options, features.dim, calibration=calibration)
    with pytest.raises(InputError, match="operating point 'eer' holds a threshold or rates that are not finite"):
        load_wi_model(path)


_SMALL_ARGS = ["--exp-users", "0", "6", "--dev-users", "6", "14", "--gen-for-train", "4", "--gen-for-ref", "4",
               "--gen-for-test", "3", "--svm-gamma", "2^-4"]

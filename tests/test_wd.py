"""Writer-dependent protocol: draw order, equality with the reference's procedure, --workers, CLI."""

from __future__ import annotations

import hashlib
import json
import pickle
import re

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from evaluation_data import option_names, synthetic_features
from sigcli.cli.derive import argv, parse
from sigcli.config.evaluation import WDOptions, WIOptions
from sigcli.errors import InputError
from sigcli.features import FeatureSet
from sigcli.metrics import METRIC_KEYS
from sigcli.options import build
from sigcli.progress import RecordingReporter
from sigcli.protocols import svm
from sigcli.protocols.wd import check_wd, draw_fold, evaluate_wd, score_fold

SMALL = dict(exp_users=(0, 6), dev_users=(6, 14), gen_for_train=4, gen_for_test=3, forg_from_dev=5,
             svm_gamma=2 ** -4, folds=2)


@pytest.fixture(scope="module")
def features() -> FeatureSet:
    return synthetic_features()


def tiny_set() -> FeatureSet:
    """Exploitation users 0-2 (4 genuine rows, 2 skilled each), development users 3-4 (3 genuine)."""
    y = np.array([0] * 6 + [1] * 6 + [2] * 6 + [3] * 3 + [4] * 3)
    yforg = np.array(([0] * 4 + [1] * 2) * 3 + [0] * 6)
    return FeatureSet(np.zeros((len(y), 2), np.float32), y, yforg)


def test_draws_follow_the_reference_sequence_of_random_calls():
    options = build(WDOptions, exp_users=(0, 3), dev_users=(3, 5), gen_for_train=2, gen_for_test=2,
                    forg_from_dev=2, forg_from_exp=1, folds=1)
    fs = tiny_set()
    fold = draw_fold(fs, *check_wd(fs, options), options, np.random.RandomState(1234))

    rng = np.random.RandomState(1234)
    # 1. each exploitation user's genuine rows shuffled, users ascending
    g0, g1, g2 = np.array([0, 1, 2, 3]), np.array([6, 7, 8, 9]), np.array([12, 13, 14, 15])
    rng.shuffle(g0)
    rng.shuffle(g1)
    rng.shuffle(g2)
    # 2. two distinct genuines of each development user, then one training genuine of every
    #    other exploitation user, for user 0, 1, 2
    dev = np.concatenate([rng.choice(np.array([18, 19, 20]), 2, replace=False),
                          rng.choice(np.array([21, 22, 23]), 2, replace=False)])
    exp0 = [rng.choice(g1[:2], 1, replace=False), rng.choice(g2[:2], 1, replace=False)]
    exp1 = [rng.choice(g0[:2], 1, replace=False), rng.choice(g2[:2], 1, replace=False)]
    exp2 = [rng.choice(g0[:2], 1, replace=False), rng.choice(g1[:2], 1, replace=False)]
    # 4. sampled tests, user 0: its skilled, a permutation of its test genuines, two other
    #    users and one test genuine of each
    skilled0 = rng.choice(np.array([4, 5]), 2, replace=False)
    genuine0 = rng.choice(g0[-2:], 2, replace=False)
    others0 = rng.choice(np.array([1, 2]), 2, replace=False)
    random0 = [rng.choice([g0[-2:], g1[-2:], g2[-2:]][o]) for o in others0]
    skilled1 = rng.choice(np.array([10, 11]), 2, replace=False)
    genuine1 = rng.choice(g1[-2:], 2, replace=False)
    others1 = rng.choice(np.array([0, 2]), 2, replace=False)
    random1 = [rng.choice([g0[-2:], g1[-2:], g2[-2:]][o]) for o in others1]
    skilled2 = rng.choice(np.array([16, 17]), 2, replace=False)
    genuine2 = rng.choice(g2[-2:], 2, replace=False)
    others2 = rng.choice(np.array([0, 1]), 2, replace=False)
    random2 = [rng.choice([g0[-2:], g1[-2:], g2[-2:]][o]) for o in others2]

    assert [t.tolist() for t in fold.train] == [g0[:2].tolist(), g1[:2].tolist(), g2[:2].tolist()]
    assert fold.dev_negatives.tolist() == dev.tolist()
    assert [e.tolist() for e in fold.exp_negatives] == [np.concatenate(e).tolist() for e in (exp0, exp1, exp2)]
    expected = [(genuine0, skilled0, random0), (genuine1, skilled1, random1), (genuine2, skilled2, random2)]
    for test, (genuine, skilled, random) in zip(fold.tests, expected):
        assert test.genuine.tolist() == genuine.tolist()
        assert test.skilled.tolist() == skilled.tolist()
        assert test.random.tolist() == list(random)
    rows, labels = fold.training_rows(1)
    assert rows.tolist() == [*g1[:2], *np.concatenate(exp1), *dev] and labels.tolist() == [1, 1] + [-1] * 6


def test_full_mode_tests_every_test_genuine_of_the_others_and_draws_nothing_more():
    options = build(WDOptions, exp_users=(0, 3), dev_users=(3, 5), gen_for_train=2, gen_for_test=2,
                    forg_from_dev=2, test_mode="full", folds=1)
    fs = tiny_set()
    rng = np.random.RandomState(5)
    fold = draw_fold(fs, *check_wd(fs, options), options, rng)
    tails = [fold.tests[u].genuine for u in range(3)]
    assert fold.tests[1].random.tolist() == [*tails[0], *tails[2]]
    assert fold.tests[2].skilled.tolist() == [16, 17]
    replay = np.random.RandomState(5)
    for _ in range(3):
        replay.shuffle(np.arange(4))
    for _ in range(2):
        replay.choice(3, 2, replace=False)
    assert rng.randint(10 ** 9) == replay.randint(10 ** 9)  # the same number of draws, nothing else


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_precomputed_kernel_svm_equals_the_plain_libsvm_pipeline(kind):
    rng = np.random.RandomState(0)
    x = np.maximum(rng.randn(80, 16) + (np.arange(80) < 10)[:, None], 0).astype(np.float32)
    y = np.where(np.arange(80) < 10, 1, -1)
    test = np.maximum(rng.randn(30, 16), 0).astype(np.float32)
    reference = Pipeline([("scaler", StandardScaler(with_mean=False)),
                          ("classifier", SVC(kernel=kind, C=1.0, gamma=2 ** -4, class_weight={1: 70 / 10}))])
    expected = reference.fit(x, y).decision_function(test)
    fitted = svm.fit_precomputed(x, y, kind, 1.0, 2 ** -4, weighted=True)
    np.testing.assert_allclose(fitted.decision(test), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(svm.from_pipeline(reference).decision(test), expected, rtol=0, atol=1e-9)
    assert len(fitted.support_vectors) == reference[-1].support_vectors_.shape[0]


def reference_wd(fs: FeatureSet, options: WDOptions) -> list[list[tuple[np.ndarray, ...]]]:
    """The reference tools' procedure, written out on arrays: scores per fold, user, kind."""
    o = options
    rng = np.random.RandomState(o.seed)
    exp = (fs.y >= o.exp_users[0]) & (fs.y < o.exp_users[1])
    dev = (fs.y >= o.dev_users[0]) & (fs.y < o.dev_users[1])
    ex, ey, ef = fs.features[exp], fs.y[exp], fs.yforg[exp]
    dx, dy, df = fs.features[dev], fs.y[dev], fs.yforg[dev]
    users = np.unique(ey)
    folds = []
    for _ in range(o.folds):
        train_idx, test_idx = [], []
        for u in users:
            g = np.flatnonzero((ey == u) & (ef == 0))
            rng.shuffle(g)
            train_idx += g[:o.gen_for_train].tolist()
            test_idx += g[-o.gen_for_test:].tolist() + np.flatnonzero((ey == u) & (ef == 1)).tolist()
        tx, ty = ex[train_idx], ey[train_idx]
        sx, sy, sf = ex[test_idx], ey[test_idx], ef[test_idx]
        negatives = np.concatenate([dx[rng.choice(np.flatnonzero((dy == u) & (df == 0)), o.forg_from_dev,
                                                  replace=False)] for u in np.unique(dy)])
        models = {}
        for u in users:
            pos = tx[ty == u]
            parts = [pos]
            if o.forg_from_exp:
                parts += [tx[rng.choice(np.flatnonzero(ty == v), o.forg_from_exp, replace=False)]
                          for v in users if v != u]
            x = np.concatenate(parts + [negatives])
            labels = np.r_[np.ones(len(pos)), -np.ones(len(x) - len(pos))]
            svc = SVC(C=o.svm_c, gamma=o.svm_gamma, class_weight={1: (len(x) - len(pos)) / float(len(pos))})
            models[u] = Pipeline([("scaler", StandardScaler(with_mean=False)), ("classifier", svc)]).fit(x, labels)
        fold = []
        for u in users:
            skilled = np.flatnonzero((sy == u) & (sf == 1))
            genuine = np.flatnonzero((sy == u) & (sf == 0))
            if o.test_mode == "sampled":
                skilled = rng.choice(skilled, o.gen_for_test, replace=False)
                genuine = rng.choice(genuine, o.gen_for_test, replace=False)
                chosen = rng.choice(np.delete(users, np.where(users == u)), o.gen_for_test, replace=False)
                random = np.array([rng.choice(np.flatnonzero((sy == v) & (sf == 0))) for v in chosen])
            else:
                random = np.flatnonzero((sy != u) & (sf == 0))
            fold.append(tuple(models[u].decision_function(sx[rows]) for rows in (genuine, random, skilled)))
        folds.append(fold)
    return folds


@pytest.mark.parametrize("extra", [{}, {"test_mode": "full", "forg_from_exp": 1}])
def test_scores_and_metrics_equal_the_reference_procedure(features, extra):
    options = build(WDOptions, **{**SMALL, **extra})
    ours = evaluate_wd(features, options)
    expected = reference_wd(features, options)
    for fold, reference_fold in zip(ours, expected):
        for key, index in (("genuinePreds", 0), ("randomPreds", 1), ("skilledPreds", 2)):
            for user, scores in enumerate(fold["predictions"][key]):
                np.testing.assert_allclose(scores, reference_fold[user][index], rtol=0, atol=1e-9)
        assert 0 < fold["all_metrics"]["EER"] < 0.5


def test_workers_and_backends_do_not_change_the_results(features):
    base = build(WDOptions, **SMALL, workers=1)
    sequential = evaluate_wd(features, base)
    parallel = evaluate_wd(features, base.model_copy(update={"workers": 2}))
    libsvm = evaluate_wd(features, base.model_copy(update={"svm_backend": "libsvm"}))
    for a, b, c in zip(sequential, parallel, libsvm):
        for key in ("genuinePreds", "randomPreds", "skilledPreds"):
            for x, y, z in zip(a["predictions"][key], b["predictions"][key], c["predictions"][key]):
                assert np.array_equal(x, y)
                np.testing.assert_allclose(x, z, rtol=0, atol=1e-9)
        assert a["all_metrics"] == b["all_metrics"]


def test_fast_approx_scales_by_the_development_negatives_once_per_fold(features):
    options = build(WDOptions, **SMALL, fast_approx=True)
    exp_users, dev_users = check_wd(features, options)
    fold = draw_fold(features, exp_users, dev_users, options, np.random.RandomState(3))
    scores = score_fold(features, fold, options)
    x = features.features
    scaler = StandardScaler(with_mean=False).fit(x[fold.dev_negatives])
    for user in (0, 4):
        rows, labels = fold.training_rows(user)
        svc = SVC(C=1.0, gamma=options.svm_gamma, class_weight={1: np.sum(labels == -1) / np.sum(labels == 1)})
        svc.fit(scaler.transform(x[rows]), labels)
        np.testing.assert_allclose(scores[user][0], svc.decision_function(scaler.transform(x[fold.tests[user].genuine])),
                                   rtol=0, atol=1e-9)
    exact = score_fold(features, fold, options.model_copy(update={"fast_approx": False}))
    assert not np.allclose(scores[0][0], exact[0][0])


def test_progress_counts_users_over_folds(features):
    reporter = RecordingReporter()
    evaluate_wd(features, build(WDOptions, **SMALL), reporter)
    assert reporter.steps["wd: fitting writer-dependent SVMs"][:2] == [12, 12]


def cli_args(path, **overrides) -> list[str]:
    values = {"exp-users": "0 6", "dev-users": "6 14", "gen-for-train": 4, "gen-for-test": 3, "forg-from-dev": 5,
              "svm-gamma": "2^-4", "folds": 2, **overrides}
    args = ["wd", "--features-path", str(path)]
    for key, value in values.items():
        args += [f"--{key}", *str(value).split()]
    return args


def test_cli_writes_reference_pickle_and_json_summary(features, tmp_path, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    result = cli(*cli_args(path), "--save-path", str(tmp_path / "r.pkl"), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "EER (user thresholds)" in result.stdout and "mean AUC" in result.stdout
    with open(tmp_path / "r.pkl", "rb") as fh:
        folds = pickle.load(fh)
    assert isinstance(folds, list) and len(folds) == 2
    for fold in folds:
        assert type(fold) is dict and set(fold) == {"all_metrics", "predictions"}
        assert tuple(fold["all_metrics"]) == METRIC_KEYS
        assert set(fold["predictions"]) == {"genuinePreds", "randomPreds", "skilledPreds"}
        assert all(type(s) is np.ndarray and s.shape == (3,) for s in fold["predictions"]["genuinePreds"])
        assert len(fold["predictions"]["skilledPreds"]) == 6
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["command"] == "wd" and summary["seed"] == 1234 and summary["options"]["svm_gamma"] == 2 ** -4
    assert summary["inputs"]["features"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["summary"]["EER"]["mean"] == pytest.approx(np.mean([f["all_metrics"]["EER"] for f in folds]))
    assert len(summary["per_fold"]) == 2 and "numpy" in summary["environment"] and summary["scikit_learn"]


@pytest.mark.parametrize("gamma, text", [(2.0 ** -5, "2^-5"), (4.0, "2^2"), (0.3, "0.3"),
                                         (2.0 ** -11 * (1 + 2.0 ** -52), repr(2.0 ** -11 * (1 + 2.0 ** -52)))])
def test_gamma_is_written_on_a_command_line_as_it_reads_back(gamma, text):
    options = WDOptions(features_path="f.npz", svm_gamma=gamma, workers=1)
    words = argv(options)
    assert words[words.index("--svm-gamma") + 1] == text and parse(WDOptions, words) == options


def test_json_prints_the_summary_that_is_saved(features, tmp_path, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    result = cli(*cli_args(path), "--save-path", str(tmp_path / "r.pkl"), "--json")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r.json").read_text())
    assert json.loads(result.stdout) == {"command": "wd", "folds": 2, "summary": saved["summary"],
                                         "save_path": str(tmp_path / "r.pkl")}
    assert saved["options"]["features_path"] == str(path) and saved["options"]["workers"] >= 1


@pytest.mark.parametrize("command, model", [("wd", WDOptions), ("wi", WIOptions)])
def test_help_names_every_option(cli, command, model):
    result = cli(command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in option_names(model):
        assert re.search(rf"(?<![\w-]){name}(?![\w-])", result.stdout), name


@pytest.mark.parametrize("overrides, message", [
    ({"exp-users": "0 8", "dev-users": "6 14"}, "overlap"),
    ({"exp-users": "3 3"}, "empty or negative user range"),
    ({"gen-for-train": 6}, "user 0 has 8 genuine signatures .*--gen-for-train 6 \\+ --gen-for-test 3 need 9"),
    ({"gen-for-test": 4, "gen-for-train": 2, "exp-users": "0 4", "dev-users": "6 14"},
     "only 4 exploitation users"),
    ({"forg-from-dev": 9}, "user 6 has 8 genuine signatures.*--forg-from-dev 9 need 9"),
    ({"svm-gamma": "two"}, "--svm-gamma"),
    ({"exp-users": "20 30", "dev-users": "30 40"}, "--exp-users 20 30 reaches beyond the users of the features, 0–13 "
                                                   "\\(give FIRST LAST within 0 14; LAST is excluded\\)"),
    ({"dev-users": "6 300"}, "--dev-users 6 300 reaches beyond the users of the features, 0–13"),
    ({"forg-from-dev": 0}, "without negatives"),
])
def test_cli_bad_input_is_one_line_and_exit_2(features, tmp_path, overrides, message, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    result = cli(*cli_args(path, **overrides))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert re.search(message, lines[0]), lines[0]


def _with_non_finite_rows(features: FeatureSet, path) -> None:
    """Save ``features`` with NaN in two rows of user 1 and an inf in one row of user 9."""
    broken = features.features.copy()
    broken[np.flatnonzero(features.y == 1)[:2]] = np.nan
    broken[np.flatnonzero(features.y == 9)[0], 3] = np.inf
    FeatureSet(broken, features.y, features.yforg).save(path)


@pytest.mark.parametrize("seed", [1, 2, 3, 1234])
def test_non_finite_feature_rows_are_refused_whatever_the_seed(features, tmp_path, seed, cli):
    path = tmp_path / "f.npz"
    _with_non_finite_rows(features, path)
    result = cli(*cli_args(path, seed=seed))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: {path}: 3 of {len(features.y)} feature rows hold NaN or inf (users 1, 9) "
                                     "(extract them again with a model that gives finite features)")


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.full(5, np.nan)}, "'y' holds values that are not whole numbers"),
    ({"yforg": np.array([0, 1, 5, 0, 0])}, "'yforg' holds values outside 0, 1, 2"),
    ({"features": np.array(["a"] * 5)}, "'features' holds text values, not numbers"),
])
def test_malformed_feature_files_are_refused_saying_what_they_hold(tmp_path, arrays, message):
    np.savez(tmp_path / "f.npz", **{"features": np.zeros((5, 2), np.float32), "y": np.arange(5),
                                    "yforg": np.zeros(5, np.int64), **arrays})
    with pytest.raises(InputError, match=message) as info:
        FeatureSet.load(tmp_path / "f.npz")
    assert info.value.hint.startswith("a feature file holds features (N×D numbers)")


def test_too_few_skilled_forgeries_for_sampled_tests_names_the_user(features):
    skilled_of_2 = np.flatnonzero((features.y == 2) & (features.yforg == 1))
    keep = ~np.isin(np.arange(len(features.y)), skilled_of_2[2:])
    fewer = FeatureSet(features.features[keep], features.y[keep], features.yforg[keep])
    with pytest.raises(InputError, match="user 2 has 2 skilled forgeries; sampled tests"):
        evaluate_wd(fewer, build(WDOptions, **SMALL))
    evaluate_wd(fewer, build(WDOptions, **SMALL, test_mode="full"))  # full mode takes what there is


def test_features_and_model_are_exclusive_and_one_is_needed(features, tmp_path, cli):
    path = tmp_path / "f.npz"
    features.save(path)
    both = cli(*cli_args(path), "--model-path", "m.pth", "--data-path", "d.npz")
    assert both.exit_code == 2 and "either --features-path or --model-path" in both.stderr
    neither = cli("wd", "--exp-users", "0", "6", "--dev-users", "6", "14")
    assert neither.exit_code == 2 and "no features to evaluate" in neither.stderr


def test_model_and_data_extract_only_the_evaluated_users(tmp_path):
    import torch

    from sigcli.data.sigset import SignatureSet
    from sigcli.features import extract_feature_set
    from sigcli.models import create_model
    from sigcli.models.checkpoint import load_checkpoint, save_checkpoint
    from sigcli.protocols import evaluation_features

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pth", create_model("signet-smaller").state_dict())
    # users 0-1 exploitation (3 genuine + 1 skilled), 2-3 development (2 genuine), 4 in neither
    y = np.array([0] * 4 + [1] * 4 + [2] * 2 + [3] * 2 + [4] * 3)
    yforg = np.array([0, 0, 0, 1] * 2 + [0] * 7)
    x = np.random.RandomState(0).randint(0, 255, (len(y), 1, 150, 220)).astype(np.uint8)
    SignatureSet(x, y, yforg).save(tmp_path / "d.npz")
    options = build(WDOptions, exp_users=(0, 2), dev_users=(2, 4), gen_for_train=2, gen_for_test=1,
                    forg_from_dev=1, test_mode="full", folds=2, model_path=tmp_path / "m.pth",
                    data_path=tmp_path / "d.npz", device="cpu")
    reporter = RecordingReporter()
    fs, inputs = evaluation_features(options, reporter)
    assert reporter.steps["extract features"][1] == 12 and sorted(set(fs.y.tolist())) == [0, 1, 2, 3]
    assert set(inputs) == {"model", "data"} and len(inputs["data"]["sha256"]) == 64
    everything = extract_feature_set(load_checkpoint(tmp_path / "m.pth"), SignatureSet.load(tmp_path / "d.npz"),
                                     device="cpu")
    for ours, full in zip(evaluate_wd(fs, options), evaluate_wd(everything, options)):
        for key in ("genuinePreds", "randomPreds", "skilledPreds"):
            for a, b in zip(ours["predictions"][key], full["predictions"][key]):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_checkpoint_that_gives_nan_features_is_refused_before_any_draw(tmp_path):
    import torch

    from sigcli.data.sigset import SignatureSet
    from sigcli.models import create_model
    from sigcli.models.checkpoint import save_checkpoint
    from sigcli.protocols import evaluation_features

    state = create_model("signet-smaller").state_dict()
    first_weight = next(key for key in state if key.endswith("weight"))
    state[first_weight] = torch.full_like(state[first_weight], float("nan"))
    save_checkpoint(tmp_path / "m.pth", state)
    y = np.repeat(np.arange(4), 2)
    SignatureSet(np.zeros((len(y), 1, 150, 220), np.uint8), y, np.zeros(len(y), np.int64)).save(tmp_path / "d.npz")
    options = build(WDOptions, exp_users=(0, 2), dev_users=(2, 4), gen_for_train=1, gen_for_test=1,
                    forg_from_dev=1, test_mode="full", folds=1, model_path=tmp_path / "m.pth",
                    data_path=tmp_path / "d.npz", device="cpu")
    with pytest.raises(InputError, match=r"m.pth: 4 of 4 feature rows hold NaN or inf \(users 0, 1\)") as info:
        evaluation_features(options)
    assert "diverged" in info.value.hint


def test_ranges_beyond_the_set_are_refused_before_extraction(tmp_path, cli):
    from sigcli.data.sigset import SignatureSet
    from sigcli.models import create_model
    from sigcli.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.pth", create_model("signet-smaller").state_dict())
    y = np.repeat(np.arange(5), 2)
    SignatureSet(np.zeros((len(y), 1, 150, 220), np.uint8), y, np.zeros(len(y), np.int64)).save(tmp_path / "d.npz")
    result = cli("wd", "--model-path", str(tmp_path / "m.pth"), "--data-path", str(tmp_path / "d.npz"),
                 "--exp-users", "0", "2", "--dev-users", "2", "300", "--device", "cpu")
    assert result.exit_code == 2
    assert f"--dev-users 2 300 reaches beyond the users of {tmp_path / 'd.npz'}, 0–4" in result.stderr


def test_a_range_between_the_features_users_names_them(features):
    keep = (features.y < 6) | (features.y >= 10)
    gapped = FeatureSet(features.features[keep], features.y[keep], features.yforg[keep])
    options = build(WDOptions, **{**SMALL, "exp_users": (6, 10), "dev_users": (10, 14)})
    with pytest.raises(InputError, match=r"no exploitation users in \[6, 10\): the features have users "
                                         r"0, 1, 2, 3, 4, 5, 10, 11 and 2 more \(choose --exp-users among them\)"):
        check_wd(gapped, options)

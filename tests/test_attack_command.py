"""`sig attack`: the classifier system (adversarial images written as a set) and the WD system
(Type I and II attacks over budgets), on tiny networks and a few generated signatures."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from sigcli.adversarial.attacks import pgd_max_l2
from sigcli.adversarial.wd import FORGERY, TorchSVM, WriterSystem
from sigcli.data.sigset import SignatureSet
from sigcli.models import INPUT_SIZE, create_model
from sigcli.models.checkpoint import save_checkpoint
from sigcli.protocols.svm import fit_precomputed, from_pipeline, reference_pipeline
from sigcli.training.data import center_crop, to_unit
from conftest import run_sig
from training_data import TINY, one_thread, signature_set, tiny_net  # noqa: F401 (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> tuple:
    """A tiny feature extractor with a 3-user head, and a set of those 3 users (users 0..2)."""
    folder = tmp_path_factory.mktemp("attack")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        features = tiny_net()
        head = nn.Linear(16, 3)
    path = save_checkpoint(folder / "model.pth", features.state_dict(), head.state_dict())
    data = signature_set(users=3, genuine=3, skilled=1).save(folder / "set.npz")
    return path, data, folder


def test_classifier_attack_writes_a_set_of_bounded_perturbations(cli, tiny_checkpoint, tmp_path):
    model, data, _ = tiny_checkpoint
    out = tmp_path / "adv.npz"
    result = cli("attack", "--model-path", model, "--data-path", data, "--max-l2", 3, "--steps", 6,
                 "--batch-size", 5, "--device", "cpu", "--save-path", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    original = SignatureSet.load(data)
    attacked = SignatureSet.load(out)
    assert attacked.x.shape == (len(original), 1, *INPUT_SIZE) and attacked.x.dtype == np.float32
    assert attacked.x.min() >= 0 and attacked.x.max() <= 1
    np.testing.assert_array_equal(attacked.y, original.y)
    np.testing.assert_array_equal(attacked.yforg, original.yforg)
    np.testing.assert_array_equal(attacked.filenames, original.filenames)
    clean = to_unit(center_crop(torch.from_numpy(np.asarray(original.x)))).numpy()
    norms = np.linalg.norm((attacked.x - clean).reshape(len(clean), -1), axis=1)
    assert norms.max() <= 3 * (1 + 1e-5) and norms.max() > 0
    record = json.loads(out.with_suffix(".json").read_text())
    per_image = record["per_image"]
    np.testing.assert_allclose(per_image["l2"], norms, rtol=1e-5)
    correct = np.equal(per_image["clean_prediction"], per_image["label"])
    fooled = np.not_equal(per_image["prediction"], per_image["label"])
    assert record["success_rate"] == pytest.approx(fooled[correct].mean())
    assert summary["success_rate"] == record["success_rate"]
    assert record["options"]["max_l2"] == 3 and "torch" in record["environment"]
    again = cli("attack", "--model-path", model, "--data-path", data, "--max-l2", 3, "--save-path", out)
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_targeted_classifier_attack_aims_at_other_users(cli, tiny_checkpoint, tmp_path):
    model, data, _ = tiny_checkpoint
    out = tmp_path / "targeted.npz"
    result = cli("attack", "--model-path", model, "--data-path", data, "--max-l2", 50, "--steps", 30,
                 "--schedule", "linear", "--targeted", "--device", "cpu", "--save-path", out)
    assert result.exit_code == 0, result.output
    per_image = json.loads(out.with_suffix(".json").read_text())["per_image"]
    assert not np.any(np.equal(per_image["target"], per_image["label"]))
    assert np.mean(np.equal(per_image["prediction"], per_image["target"])) >= 0.5


def test_a_user_range_that_does_not_match_the_head_is_refused(cli, tiny_checkpoint, tmp_path):
    model, data, _ = tiny_checkpoint
    result = cli("attack", "--model-path", model, "--data-path", data, "--users", 0, 2, "--max-l2", 1,
                 "--save-path", tmp_path / "a.npz")
    assert result.exit_code == 2 and "3 classes" in result.stderr
    result = cli("attack", "--model-path", model, "--data-path", data, "--budgets", "1,2", "--max-l2", 1,
                 "--save-path", tmp_path / "a.npz")
    assert result.exit_code == 2 and "--budgets is an option of --system wd" in result.stderr


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_the_torch_decision_function_equals_scikit_learn(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 16)).astype(np.float32) * rng.uniform(0.5, 3, 16).astype(np.float32)
    y = np.where(rng.random(40) < 0.3, 1, -1)
    pipeline = reference_pipeline(kind, 1.0, 2.0 ** -4).fit(x, y)
    queries = rng.normal(size=(9, 16)).astype(np.float32)
    ours = TorchSVM(from_pipeline(pipeline))(torch.from_numpy(queries)).numpy()
    np.testing.assert_allclose(ours, pipeline.decision_function(queries), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_the_wd_attack_raises_a_forgerys_decision_value(kind):
    sigset = signature_set(users=3, genuine=4, skilled=2)
    images = to_unit(center_crop(torch.from_numpy(sigset.x)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        extractor = create_model(TINY).eval().requires_grad_(False)
    with torch.no_grad():
        features = extractor(images).numpy()
    genuine = (sigset.y == 0) & (sigset.yforg == 0)
    training = genuine | (sigset.y == 2)
    svm = fit_precomputed(features[training], np.where(genuine[training], 1, -1), kind, 1.0, 2.0 ** -3, True)
    system = WriterSystem(extractor, TorchSVM(svm), threshold=0.0)
    forgeries = images[(sigset.y == 0) & (sigset.yforg == 1)]
    labels = torch.full((len(forgeries),), FORGERY)
    with torch.no_grad():
        before = system.decision(forgeries)
        np.testing.assert_allclose(before.numpy(), svm.decision(features[(sigset.y == 0) & (sigset.yforg == 1)]),
                                   rtol=1e-6, atol=1e-6)
    adversarial = pgd_max_l2(system, forgeries, labels, steps=10, max_l2=5.0, schedule="linear")
    with torch.no_grad():
        assert (system.decision(adversarial) > before).all()


@pytest.fixture(scope="module")
def wd_attack(tiny_checkpoint, tmp_path_factory) -> tuple:
    """``sig attack --system wd`` on 4 exploitation and 3 development users: the JSON path and stdout."""
    model, _, folder = tiny_checkpoint
    data = signature_set(users=7, genuine=5, skilled=2, seed=3).save(folder / "wd_set.npz")
    out = tmp_path_factory.mktemp("wd-attack") / "wd_attack.json"
    result = run_sig("attack", "--system", "wd", "--model-path", model, "--data-path", data, "--budgets", "0,2,40",
                     "--exp-users", 0, 4, "--dev-users", 4, 7, "--gen-for-train", 3, "--gen-for-test", 2,
                     "--forg-from-dev", 3, "--svm-type", "linear", "--steps", 8, "--schedule", "linear",
                     "--device", "cpu", "--save-path", out, "--json")
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_wd_system_attack_reports_success_per_budget(wd_attack):
    out, stdout = wd_attack
    record = json.loads(out.read_text())
    assert record["budgets"] == [0, 2, 40] and set(record["attacks"]) == {"genuine", "skilled", "random"}
    for kind, attack in record["attacks"].items():
        signatures = record["signatures"][kind]
        assert attack["signatures"] == 4 * 2 == len(signatures["clean"])
        attacked_set = SignatureSet.load(record["options"]["data_path"])
        assert np.all(attacked_set.yforg[signatures["row"]] == (1 if kind == "skilled" else 0))
        same_writer = attacked_set.y[signatures["row"]] == np.asarray(signatures["user"])
        assert same_writer.all() if kind != "random" else not same_writer.any()
        assert attack["successes"][0] == 0   # a budget of 0 changes nothing
        np.testing.assert_allclose(np.asarray(signatures["adversarial"])[:, 0], signatures["clean"], atol=1e-5)
        assert np.all(np.asarray(signatures["l2"]) <= np.asarray([0, 2, 40]) * (1 + 1e-5) + 1e-6)
        if attack["attacked"]:
            assert attack["success_rate"][-1] == attack["successes"][-1] / attack["attacked"]
    assert sum(attack["successes"][-1] for attack in record["attacks"].values()) > 0
    assert json.loads(stdout)["attacks"]["skilled"]["name"] == "Type II (skilled)"
    assert record["options"]["system"] == "wd" and "torch" in record["environment"]


def test_report_compares_attack_results_and_plots_them(wd_attack, tmp_path, cli):
    out, _ = wd_attack
    other = tmp_path / "madry.json"
    other.write_text(out.read_text())
    result = cli("report", out, other, "--format", "csv", "--plot", tmp_path / "robustness.png")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    record = json.loads(out.read_text())
    assert [(row["run"], row["kind"]) for row in rows] == [(run, kind) for run in ("wd_attack", "madry")
                                                           for kind in ("genuine", "skilled", "random")]
    for row in rows:
        rate = record["attacks"][row["kind"]]["success_rate"][-1]
        assert row["success_40"] == ("" if rate is None else f"{100 * rate:.1f}")
    assert (tmp_path / "robustness.png").stat().st_size > 0
    (tmp_path / "wd.json").write_text(json.dumps({"command": "wd"}))
    mixed = cli("report", out, tmp_path / "wd.json")
    assert mixed.exit_code == 2 and "report attack results and evaluation results separately" in mixed.stderr


def test_attack_options_round_trip_through_the_command_line():
    from sigcli.cli.derive import argv, parse
    from sigcli.config.attack import AttackOptions

    options = AttackOptions(model_path="m.pth", data_path="d.npz", save_path="r.json", system="wd",
                            budgets="0.5, 2,10", kinds="genuine,random", svm_gamma="2^-5", exp_users=(0, 4),
                            dev_users=(4, 9), steps=7)
    assert options.budgets == [0.5, 2.0, 10.0] and options.kinds == ["genuine", "random"]
    assert parse(AttackOptions, argv(options)) == options
    with pytest.raises(Exception, match="--max-l2 is an option of --system classifier"):
        AttackOptions(model_path="m.pth", data_path="d.npz", save_path="r.json", system="wd", budgets="1", max_l2=2)

"""`sig info`: what each artefact sig writes holds, in one line, and its facts with --json."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from evaluation_data import synthetic_features
from sigcli.data.sigset import SignatureSet
from sigcli.features import FeatureSet
from sigcli.invert import invert, parts_folder
from sigcli.config.invert import InvertOptions
from sigcli.models import create_model
from sigcli.models.checkpoint import save_checkpoint
from training_data import INVERT_TINY_BN, TINY, StopAfter, signature_set


def info_json(cli, *paths) -> dict:
    """``sig info --json`` of ``paths``: path → its record."""
    result = cli("info", "--json", *map(str, paths))
    assert result.exit_code == 0, result.output
    return {record["path"]: record for record in json.loads(result.stdout)}


def test_info_describes_sets_features_and_checkpoints(tmp_path, cli):
    x = np.zeros((5, 1, 170, 242), np.uint8)
    SignatureSet(x, np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 0, 2])).save(tmp_path / "set.npz")
    FeatureSet(np.zeros((3, 4), np.float32), np.array([0, 1, 1]), np.zeros(3, int)).save(tmp_path / "f.npz")
    model = create_model("signet-smaller")
    save_checkpoint(tmp_path / "m.pth", model.state_dict(), torch.nn.Linear(model.feature_space_size, 7).state_dict())
    result = cli("info", str(tmp_path / "set.npz"), str(tmp_path / "f.npz"), str(tmp_path / "m.pth"))
    assert result.exit_code == 0, result.output
    assert "2 users, 3 genuine, 1 skilled, 1 simple, 170×242" in result.output
    assert "feature file: 3 signatures of 2 users, 4-d" in result.output
    assert "signet-smaller checkpoint, 7 users" in result.output
    records = info_json(cli, tmp_path / "f.npz", tmp_path / "m.pth")
    features, checkpoint = records[str(tmp_path / "f.npz")], records[str(tmp_path / "m.pth")]
    assert (features["kind"], features["description"]) == ("feature file", "feature file: 3 signatures of 2 users, 4-d")
    assert features["details"] == {"signatures": 3, "users": 2, "dim": 4, "source": ""}
    assert checkpoint["description"] == "signet-smaller checkpoint, 7 users"
    assert checkpoint["details"]["feature_dim"] == 2048 and checkpoint["details"]["users"] == 7
    assert checkpoint["details"]["fingerprint"].startswith("signet-smaller:")


def test_wi_results_and_classifier_files(tmp_path, cli):
    synthetic_features(n_users=10, dim=8).save(tmp_path / "features.npz")
    result = cli("wi", "--features-path", str(tmp_path / "features.npz"), "--exp-users", "0", "5", "--dev-users",
                 "5", "10", "--gen-for-train", "4", "--gen-for-ref", "4", "--gen-for-test", "3", "--folds", "2",
                 "--save-path", str(tmp_path / "wi.pkl"), "--save-model", str(tmp_path / "wi.skops"))
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "wi.json").read_text())
    records = info_json(cli, tmp_path / "wi.pkl", tmp_path / "wi.json", tmp_path / "wi.skops")
    pickle_record, summary, classifier = (records[str(tmp_path / name)] for name in ("wi.pkl", "wi.json", "wi.skops"))
    eer = written["summary"]["EER"]
    assert pickle_record["kind"] == "results pickle" and pickle_record["details"]["folds"] == 2
    assert pickle_record["details"]["summary"]["EER"]["mean"] == pytest.approx(eer["mean"])
    assert f"2 folds, EER {eer['mean']:.2%}" in pickle_record["description"]
    assert summary["kind"] == "results summary (wi)" and "pickle wi.pkl" in summary["description"]
    assert classifier["kind"] == "WI classifier" and classifier["details"]["feature_dim"] == 8
    assert classifier["details"]["fusion"] == written["options"]["fusion"]
    assert classifier["details"]["support_vectors"] > 0 and "rbf SVM" in classifier["description"]


def test_a_run_folder_its_files_and_its_event_file(tmp_path, cli):
    data = signature_set(users=3, genuine=4, skilled=2).save(tmp_path / "set.npz")
    run = tmp_path / "run"
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    result = cli("train", "--model", TINY, "--data-path", str(data), "--epochs", "2", "--batch-size", "4",
                 "--device", "cpu", "--logdir", str(run), *(["--tensorboard"] if tensorboard else []))
    assert result.exit_code == 0, result.output
    records = info_json(cli, run, run / "metrics.csv", run / "config.json", run / "train_state.pth",
                        run / "model_best.pth")
    folder = records[str(run)]
    state = torch.load(run / "train_state.pth", weights_only=True)
    best = state["best_epoch"]
    assert folder["kind"] == "run folder (train)" and folder["details"]["epochs"] == 2
    assert folder["details"]["best_epoch"] == best and folder["details"]["planned_epochs"] == 2
    assert folder["details"]["best_metrics"]["val_score"] == pytest.approx(state["best"]["score"])
    assert folder["details"]["tensorboard"] is tensorboard and "stopped" not in folder["description"]
    assert f"2 epochs, best epoch {best}" in folder["description"]
    assert records[str(run / "metrics.csv")]["details"]["best_epoch"] == best
    assert records[str(run / "config.json")]["description"].startswith("the options of a train run")
    assert records[str(run / "train_state.pth")]["description"] == (
        f"resume state of a run: 2 epochs done, best epoch {best}")
    assert records[str(run / "model_best.pth")]["details"]["arch"] == TINY
    if tensorboard:
        [events] = run.glob("events.out.tfevents.*")
        assert "val_score" in info_json(cli, events)[str(events)]["details"]["tags"]


def test_inversion_outputs_finished_and_unfinished(tmp_path, cli):
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    save_checkpoint(teacher, create_model(INVERT_TINY_BN).state_dict(), torch.nn.Linear(16, 4).state_dict())
    options = InvertOptions(t_model_path=teacher, save_path=tmp_path / "inv.npz", per_user=2, iterations=3,
                            batch_size=4, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        invert(options, StopAfter(1))
    parts = info_json(cli, parts_folder(tmp_path / "inv.npz"))[str(parts_folder(tmp_path / "inv.npz"))]
    assert parts["kind"] == "unfinished inversion" and parts["details"]["batches_done"] == 1
    invert(options)
    records = info_json(cli, tmp_path / "inv.npz", tmp_path / "inv.json")
    data, options_file = records[str(tmp_path / "inv.npz")], records[str(tmp_path / "inv.json")]
    accuracy = json.loads((tmp_path / "inv.json").read_text())["teacher_accuracy"]
    assert data["kind"] == "inverted signature set" and data["details"]["inversion"]["teacher_accuracy"] == accuracy
    assert data["details"]["users"] == 4 and data["details"]["genuine"] == 8
    assert options_file["description"].startswith("the options of 'sig invert'")


def test_a_torchscript_export_and_the_download_cache(tmp_path, cli, monkeypatch):
    """(An ONNX export is described in tests/test_export.py, which writes one anyway.)"""
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "tiny.pth", create_model(TINY).state_dict())
    exported = cli("export", "--model-path", str(checkpoint), "--format", "torchscript", "--save-path",
                   str(tmp_path / "tiny.pt"))
    assert exported.exit_code == 0, exported.output
    assert info_json(cli, tmp_path / "tiny.pt")[str(tmp_path / "tiny.pt")]["kind"] == "torchscript"

    from sigcli import artefacts

    monkeypatch.setenv("SIGCLI_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    placed = tmp_path / "cache" / "signet.pth"
    placed.write_bytes(checkpoint.read_bytes())
    artefacts.record({}, artefacts.REGISTRY["signet"], placed, "0" * 64, "already present")
    cache = info_json(cli, tmp_path / "cache")[str(tmp_path / "cache")]
    assert cache["kind"] == "download cache" and set(cache["details"]["artefacts"]) == {"signet"}
    assert "1 verified artefacts (signet)" in cache["description"]


def test_files_sig_did_not_write_are_named_not_refused(tmp_path, cli):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    (tmp_path / "page.pth").write_text("<!DOCTYPE html><html><title>Quota</title></html>")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    records = info_json(cli, tmp_path / "other.npz", tmp_path / "mine", tmp_path / "page.pth")
    assert records[str(tmp_path / "other.npz")]["description"] == "a NumPy .npz archive that sig did not write (arrays: a)"
    assert records[str(tmp_path / "mine")]["description"] == "a folder sig did not write (1 entry)"
    assert records[str(tmp_path / "page.pth")]["description"] == "a web page (HTML)"


def test_info_on_a_missing_file_is_one_line(tmp_path, cli):
    result = cli("info", str(tmp_path / "nope.npz"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_info_prints_paths_with_brackets_as_they_are(tmp_path, cli):
    x = np.zeros((3, 1, 4, 4), np.uint8)
    (tmp_path / "a[").mkdir()
    paths = [tmp_path / "a[" / "b].npz", tmp_path / "a[b].npz", tmp_path / "[bold]x[/bold].npz"]
    for path in paths:
        SignatureSet(x, np.array([0, 0, 1]), np.zeros(3, int)).save(path)
    result = cli("info", *map(str, paths), env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{path}: signature set: 2 users, 3 genuine, 0 skilled, 0 simple, 4×4 uint8"
                                          for path in paths]

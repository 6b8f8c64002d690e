"""--tensorboard: event files beside metrics.csv (train, distill, meta) or beside OUT.npz (invert)
that hold what metrics.csv holds, read back with TensorBoard's own reader."""

from __future__ import annotations

import csv
import importlib.util
import json
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from sigcli import eventlog
from sigcli.eventlog import EVENT_PREFIX, events_beside
from sigcli.meta.models import ARCHITECTURES, SmallCNN
from sigcli.models import create_model
from sigcli.models.checkpoint import save_checkpoint
from training_data import INVERT_TINY_BN, TINY, signature_set

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                reason="needs tensorboard (pip install 'sigcli[tensorboard]')")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``folder``: tag → [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})   # 0: keep every point
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{EVENT_PREFIX}*"))


def metrics_columns(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as tag → [(epoch, value)], its numeric columns only (as the event files hold them)."""
    with open(logdir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: [(int(row["epoch"]), float(row[key])) for row in rows]
            for key in rows[0] if key not in ("epoch", "best")}


def assert_same_as_metrics_csv(logdir: Path) -> None:
    logged, expected = scalars(logdir), metrics_columns(logdir)
    assert set(logged) == set(expected) and "val_score" in logged
    for tag, points in expected.items():
        assert [step for step, _ in logged[tag]] == [step for step, _ in points]
        assert [value for _, value in logged[tag]] == pytest.approx([value for _, value in points], rel=1e-6)


def test_train_writes_the_metrics_csv_columns_and_overwrite_starts_them_over(tmp_path, cli):
    data = signature_set(users=4, genuine=4, skilled=2).save(tmp_path / "set.npz")
    logdir = tmp_path / "run"
    args = ["train", "--model", TINY, "--data-path", str(data), "--epochs", "2", "--batch-size", "4",
            "--device", "cpu", "--logdir", str(logdir), "--tensorboard"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    [first] = event_files(logdir)
    assert_same_as_metrics_csv(logdir)
    again = cli(*args, "--overwrite", "--epochs", "1")
    assert again.exit_code == 0, again.output
    [second] = event_files(logdir)
    assert second != first and [step for step, _ in scalars(logdir)["val_score"]] == [1]


def test_without_the_flag_nothing_is_written(tmp_path, cli):
    data = signature_set(users=3, genuine=3).save(tmp_path / "set.npz")
    result = cli("train", "--model", TINY, "--data-path", str(data), "--epochs", "1", "--batch-size", "4",
                 "--device", "cpu", "--logdir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert event_files(tmp_path / "run") == []


def test_invert_logs_every_step_of_every_batch_and_distill_its_epochs(tmp_path, cli):
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    save_checkpoint(teacher, create_model(INVERT_TINY_BN).state_dict(), nn.Linear(16, 4).state_dict())
    out = tmp_path / "inverted.npz"
    result = cli("invert", "--t-model-path", str(teacher), "--save-path", str(out), "--iterations", "5",
                 "--batch-size", "4", "--per-user", "2", "--device", "cpu", "--tensorboard")
    assert result.exit_code == 0, result.output
    logged = scalars(events_beside(out))
    assert {"loss", "ce", "bn", "tv", "l2"} <= set(logged)
    assert [step for step, _ in logged["loss"]] == list(range(1, 2 * 5 + 1))   # 2 batches × 5 steps
    distilled = cli("distill", "--t-model-path", str(teacher), "--d-data-path", str(out), "--s-model", INVERT_TINY_BN,
                    "--epochs", "1", "--d-batch-size", "4", "--device", "cpu", "--logdir", str(tmp_path / "student"),
                    "--tensorboard")
    assert distilled.exit_code == 0, distilled.output
    assert_same_as_metrics_csv(tmp_path / "student")


def test_invert_refuses_an_existing_event_folder_it_would_start_over(tmp_path, cli):
    teacher = tmp_path / "teacher.pth"
    save_checkpoint(teacher, create_model(INVERT_TINY_BN).state_dict(), nn.Linear(16, 4).state_dict())
    out = tmp_path / "inverted.npz"
    foreign = events_beside(out) / "events.out.tfevents.someone-else"
    foreign.parent.mkdir()
    foreign.write_bytes(b"not ours")
    args = ("invert", "--t-model-path", str(teacher), "--save-path", str(out), "--iterations", "2",
            "--batch-size", "4", "--per-user", "1", "--device", "cpu", "--tensorboard")
    refused = cli(*args)
    assert refused.exit_code == 2 and "already exists" in refused.output and foreign.read_bytes() == b"not ours"
    assert not out.exists()
    assert cli(*args, "--overwrite").exit_code == 0 and not foreign.exists()


def test_meta_training_logs_its_epochs(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "smallcnn", partial(SmallCNN, channels=2, hidden=8, features=4,
                                                           input_size=(70, 90)))
    data = signature_set(users=10, genuine=4, skilled=2).save(tmp_path / "set.npz")
    result = cli("meta", "--data-path", str(data), "--model", "smallcnn", "--num-updates", "1", "--num-gen", "2",
                 "--num-rf", "1", "--num-gen-test", "1", "--num-rf-test", "1", "--num-sk-test", "1",
                 "--dev-users", "0", "6", "--val-users", "6", "10", "--epochs", "2", "--meta-batch-size", "2",
                 "--device", "cpu", "--logdir", str(tmp_path / "run"), "--tensorboard")
    assert result.exit_code == 0, result.output
    assert_same_as_metrics_csv(tmp_path / "run")
    described = cli("info", "--json", str(tmp_path / "run"), str(tmp_path / "run" / "model_best.pth"))
    run, best = json.loads(described.stdout)   # sig info tells the meta run and its checkpoint
    assert run["kind"] == "run folder (meta)" and run["details"]["epochs"] == 2 and run["details"]["tensorboard"]
    assert best["kind"] == "meta-learner checkpoint" and best["details"]["architecture"] == "smallcnn"


def test_a_missing_tensorboard_package_is_one_line_before_any_work(tmp_path, cli, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(eventlog.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    result = cli("train", "--model", TINY, "--data-path", str(tmp_path / "nothing.npz"), "--logdir",
                 str(tmp_path / "run"), "--tensorboard")
    assert result.exit_code == 2
    assert "--tensorboard needs the tensorboard package" in result.output and "sigcli[tensorboard]" in result.output
    assert not (tmp_path / "run").exists()

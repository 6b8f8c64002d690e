"""`sig info`: what a file holds, in one line."""

import json

import numpy as np
import torch

from sigcli.data.sigset import SignatureSet
from sigcli.features import FeatureSet
from sigcli.models import create_model
from sigcli.models.checkpoint import save_checkpoint


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
    as_json = cli("info", "--json", str(tmp_path / "f.npz"), str(tmp_path / "m.pth"))
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [
        {"path": str(tmp_path / "f.npz"), "description": "feature file: 3 signatures of 2 users, 4-d"},
        {"path": str(tmp_path / "m.pth"), "description": "signet-smaller checkpoint, 7 users"}]


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

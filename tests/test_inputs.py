"""Inputs a careless user or a hostile file can give: refused in one line that says what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sigcli.data.sigset import SignatureSet
from sigcli.device import ACCEPTED, resolve_device
from sigcli.errors import InputError

# Each command with the least it needs to reach its options check; the paths need not exist.
COMMANDS = {
    "extract": ["extract", "--model-path", "m.pth", "--data-path", "d.npz", "--save-path", "f.npz"],
    "verify": ["verify", "--model-path", "m.pth", "-r", "a.png", "q.png"],
    "train": ["train", "--dataset-path", "d.npz", "--logdir", "run"],
    "distill": ["distill", "--c-data-path", "d.npz", "--logdir", "run"],
    "invert": ["invert", "--t-model-path", "t.pth", "--save-path", "i.npz", "--per-user", "1"],
    "quickstart": ["quickstart", "--workdir", "qs"],
    "wd": ["wd", "--features-path", "f.npz"],
    "wi": ["wi", "--features-path", "f.npz"],
    "attack": ["attack", "--model-path", "m.pth", "--data-path", "d.npz", "--max-l2", "1", "--save-path", "a.npz"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", "CPU"])
def test_a_misspelt_device_lists_the_accepted_ones_in_one_line(cli, tmp_path, monkeypatch, command, spec):
    monkeypatch.chdir(tmp_path)
    result = cli(*COMMANDS[command], "--device", spec)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: --device '{spec}' is not one of {ACCEPTED} (auto takes a CUDA GPU when one is present, else the CPU)"]
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_one_line(spec):
    with pytest.raises(InputError, match=f"--device {spec}: no CUDA GPU is available here"):
        resolve_device(spec)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_index_beyond_the_machines_gpus_is_one_line():
    count = torch.cuda.device_count()
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(InputError, match=f"--device cuda:{count}: this machine has {count} GPU"):
        resolve_device(f"cuda:{count}")


def test_auto_and_cpu_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_resolve_device_lives_in_one_place():
    import sigcli.training.loop

    assert sigcli.training.loop.resolve_device is resolve_device  # imported, not a copy


def test_extract_refuses_users_beyond_the_set(cli, tmp_path):
    from sigcli.models import create_model
    from sigcli.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.pth", create_model("signet-smaller").state_dict())
    y = np.repeat(np.arange(12), 1)
    SignatureSet(np.zeros((12, 1, 150, 220), np.uint8), y, np.zeros(12, np.int64)).save(tmp_path / "d.npz")
    result = cli("extract", "--model-path", tmp_path / "m.pth", "--data-path", tmp_path / "d.npz",
                 "--save-path", tmp_path / "f.npz", "--users", 4, 500, "--device", "cpu")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --users 4 500 reaches beyond the users of the set, 0–11 "
                                     "(give FIRST LAST within 0 12; LAST is excluded)")
    assert not (tmp_path / "f.npz").exists()


@pytest.mark.parametrize("command", ["wd", "wi", "verify"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_a_finite_number_is_refused(cli, tmp_path, monkeypatch, command, value):
    monkeypatch.chdir(tmp_path)
    result = cli(*COMMANDS[command], "--threshold", value)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --threshold: Input should be a finite number (got {value})"


def test_extract_records_the_sets_canvas_in_the_feature_file(cli, tmp_path):
    from sigcli.data.sigset import Canvas
    from sigcli.features import FeatureSet
    from sigcli.models import create_model
    from sigcli.models.checkpoint import save_checkpoint
    from sigcli.options import save_options
    from sigcli.config.preprocess import PreprocessOptions
    from sigcli.preprocess import options_file
    from training_data import TINY, signature_set

    save_checkpoint(tmp_path / "m.pth", create_model(TINY).state_dict())
    data = signature_set(users=2, genuine=2).save(tmp_path / "set.npz")
    save_options(PreprocessOptions(dataset="cedar", raw_path=tmp_path, save_path=str(data)), options_file(data))
    result = cli("extract", "--model-path", tmp_path / "m.pth", "--data-path", data, "--save-path", tmp_path / "f.npz",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert FeatureSet.load(tmp_path / "f.npz").canvas == Canvas("cedar", (730, 1042), (170, 242))

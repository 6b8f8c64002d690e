"""`sig export`: the exported feature extractor gives PyTorch's features (within 1e-4) without sig."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from sigcli.config.export import ExportOptions
from sigcli.export import INPUT_NAME, OUTPUT_NAME, sample_batch
from sigcli.models import create_model
from sigcli.models.checkpoint import load_checkpoint, save_checkpoint
from training_data import TINY, flags_missing_from_help

ONNX_MISSING = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny network whose batch-norm statistics moved, so eval mode differs from train mode."""
    path = tmp_path_factory.mktemp("export") / "tiny.pth"
    torch.manual_seed(0)
    model = create_model(TINY)
    model.train()(torch.rand(8, 1, 150, 220) * 0.5)
    save_checkpoint(path, model.state_dict())
    return path


def _pytorch_features(checkpoint, batch):
    with torch.inference_mode():
        return load_checkpoint(checkpoint).build_model().eval()(batch).numpy()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_loads_without_sig_and_matches(checkpoint, tmp_path, cli):
    out = tmp_path / "tiny.pt"
    result = cli("export", "--model-path", str(checkpoint), "--format", "torchscript", "--save-path", str(out),
                 "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "torchscript" and summary["dim"] == 16 and summary["max_difference"] <= 1e-4
    batch = sample_batch(5, seed=7)   # another batch size than the one traced
    exported = torch.jit.load(str(out))(batch).detach().numpy()
    assert exported.shape == (5, 16)
    assert abs(exported - _pytorch_features(checkpoint, batch)).max() <= 1e-4


@pytest.mark.skipif(bool(ONNX_MISSING), reason=f"needs {', '.join(ONNX_MISSING)} (pip install 'sigcli[onnx]')")
def test_onnx_export_runs_in_onnxruntime_and_matches(checkpoint, tmp_path, cli):
    import onnxruntime

    out = tmp_path / "tiny.onnx"
    result = cli("export", "--model-path", str(checkpoint), "--format", "onnx", "--save-path", str(out))
    assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.stdout and [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    batch = sample_batch(4, seed=7)
    [exported] = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    assert abs(exported - _pytorch_features(checkpoint, batch)).max() <= 1e-4
    described = json.loads(cli("info", "--json", str(out)).stdout)[0]   # sig info reads the graph's interface
    assert described["kind"] == "onnx" and described["details"]["inputs"] == {INPUT_NAME: ["batch", 1, 150, 220]}
    assert described["details"]["outputs"] == {OUTPUT_NAME: ["batch", 16]}


def test_an_existing_output_needs_overwrite_and_a_bad_checkpoint_is_one_line(checkpoint, tmp_path, cli):
    out = tmp_path / "taken.pt"
    out.write_bytes(b"mine")
    result = cli("export", "--model-path", str(checkpoint), "--format", "torchscript", "--save-path", str(out))
    assert result.exit_code == 2 and "already exists" in result.output and out.read_bytes() == b"mine"
    (tmp_path / "page.pth").write_text("<html>quota</html>")
    result = cli("export", "--model-path", str(tmp_path / "page.pth"), "--format", "onnx", "--save-path",
                 str(tmp_path / "x.onnx"))
    assert result.exit_code == 2 and result.output.count("error:") == 1 and not (tmp_path / "x.onnx").exists()


def test_help_names_every_option(cli):
    result = cli("export", "--help", env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert flags_missing_from_help(ExportOptions, result.output) == []


def test_onnx_without_its_packages_is_one_line_before_any_work(checkpoint, tmp_path, cli, monkeypatch):
    from sigcli import export

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    result = cli("export", "--model-path", str(checkpoint), "--format", "onnx", "--save-path", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "needs the package(s) onnxscript" in result.output
    assert "sigcli[onnx]" in result.output and list(tmp_path.iterdir()) == []

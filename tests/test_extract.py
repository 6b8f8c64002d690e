"""sig extract / extract_features: centre crop, eval mode, labels carried, streamed, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from conftest import run_sig
from sigcli.data.sigset import SignatureSet
from sigcli.features import FeatureSet, extract_feature_set, extract_features
from sigcli.models import create_model
from sigcli.models.checkpoint import load_checkpoint, save_checkpoint
from sigcli.progress import RecordingReporter
from training_data import TINY, signature_set


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny trained-looking checkpoint (batch-norm statistics moved) and a set as npz and folder."""
    root = tmp_path_factory.mktemp("extract")
    torch.manual_seed(0)
    model = create_model(TINY)
    model.train()(torch.rand(8, 1, 150, 220))  # non-trivial running statistics
    save_checkpoint(root / "tiny.pth", model.state_dict(), torch.nn.Linear(16, 4).state_dict())
    data = signature_set(users=4, genuine=3, skilled=2, seed=1)
    data.save(root / "set.npz")
    data.save(root / "folder", folder=True)
    return root, data


def _extract(root, *args):
    return run_sig("extract", "--model-path", str(root / "tiny.pth"), "--save-path",
                   str(root / "out.npz"), "--overwrite", "--device", "cpu", *map(str, args))


def test_cli_writes_features_with_labels(files):
    root, data = files
    result = _extract(root, "--data-path", root / "folder", "--batch-size", 7)
    assert result.exit_code == 0, result.output
    features = FeatureSet.load(root / "out.npz")
    assert features.features.shape == (20, 16) and features.features.dtype == np.float32
    assert np.array_equal(features.y, data.y) and np.array_equal(features.yforg, data.yforg)
    assert np.array_equal(features.user_mapping, data.user_mapping)
    assert list(features.filenames) == list(data.filenames)
    assert features.source.startswith(f"{TINY}:")

    model = load_checkpoint(root / "tiny.pth").build_model()
    with torch.no_grad():
        expected = model(TF.center_crop(torch.from_numpy(data.x), [150, 220]).float() / 255).numpy()
    np.testing.assert_allclose(features.features, expected, rtol=1e-5, atol=1e-6)


def test_cli_users_subset(files):
    root, data = files
    assert _extract(root, "--data-path", root / "set.npz", "--users", 1, 3).exit_code == 0
    features = FeatureSet.load(root / "out.npz")
    keep = (data.y >= 1) & (data.y < 3)
    assert features.features.shape == (10, 16)
    assert np.array_equal(features.y, data.y[keep]) and list(features.filenames) == list(data.filenames[keep])


def test_cli_wrong_model_names_both(files):
    root, _ = files
    result = _extract(root, "--data-path", root / "set.npz", "--model", "signet")
    assert result.exit_code == 2
    assert "--model signet does not match" in result.output and f"holds a {TINY} network" in result.output


def test_extraction_is_deterministic_and_independent_of_batching_and_storage(files):
    root, _ = files
    checkpoint = load_checkpoint(root / "tiny.pth")
    model = checkpoint.build_model()
    folder, npz = SignatureSet.load(root / "folder"), SignatureSet.load(root / "set.npz")
    assert isinstance(folder.x, np.memmap)
    reporter = RecordingReporter()
    first = extract_features(model, folder, batch_size=4, reporter=reporter)
    assert reporter.steps["extract features"][:2] == [20, 20]
    assert np.array_equal(first, extract_features(model, folder, batch_size=4))
    assert np.array_equal(first, extract_features(model, npz, batch_size=4))
    np.testing.assert_allclose(first, extract_features(model, npz, batch_size=64), rtol=1e-5, atol=1e-6)
    model.train()
    extract_features(model, npz)
    assert not model.training  # extraction always runs in eval mode


def test_signet_features_are_2048_wide(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "signet.pth", create_model("signet").state_dict())
    data = signature_set(users=2, genuine=2, skilled=1)
    features = extract_feature_set(load_checkpoint(tmp_path / "signet.pth"), data, device="cpu")
    assert features.features.shape == (6, 2048) and np.isfinite(features.features).all()
    assert (features.features >= 0).all()  # the last layer is a ReLU

"""`sig extract --model NAME --seed S` without a checkpoint: the untrained baseline, reproducible."""

from __future__ import annotations

import numpy as np
import torch

from sigcli.features import FeatureSet
from sigcli.models import create_model
from training_data import TINY, signature_set


def test_an_untrained_network_is_drawn_from_its_seed(cli, tmp_path):
    data = signature_set(users=3, genuine=2, skilled=1, seed=2)
    data.save(tmp_path / "set.npz")

    def extract(seed: int, name: str) -> FeatureSet:
        result = cli("extract", "--model", TINY, "--seed", seed, "--data-path", tmp_path / "set.npz",
                     "--save-path", tmp_path / name, "--device", "cpu")
        assert result.exit_code == 0, result.output
        return FeatureSet.load(tmp_path / name)

    first, again, other = extract(3, "a.npz"), extract(3, "b.npz"), extract(4, "c.npz")
    assert np.array_equal(first.features, again.features) and not np.allclose(first.features, other.features)
    assert first.source == f"{TINY}:untrained-seed-3"

    torch.manual_seed(3)
    model = create_model(TINY).eval()
    x = torch.from_numpy(data.x[:, :, 10:160, 11:231]).float() / 255
    with torch.no_grad():
        np.testing.assert_allclose(first.features, model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_drawing_the_weights_leaves_the_global_generator_alone():
    from sigcli.models.checkpoint import untrained_checkpoint

    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    checkpoint = untrained_checkpoint(TINY, 3)
    assert torch.equal(torch.rand(3), before) and checkpoint.identity() == f"{TINY}:untrained-seed-3"


def test_without_a_checkpoint_or_an_architecture_there_is_nothing_to_extract_with(cli, tmp_path):
    result = cli("extract", "--data-path", tmp_path / "set.npz", "--save-path", tmp_path / "f.npz")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: no network to extract with (give --model-path CHECKPOINT, or --model "
                                     "NAME for an untrained network (a baseline))")

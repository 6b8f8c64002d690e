"""Model registry, the SigNet family's reference layout, and safe checkpoint loading."""

from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from sigcli.errors import CheckpointError, InputError
from sigcli.models import BUILTIN_MODELS, INPUT_SIZE, available_models, create_model, registered
from sigcli.models.checkpoint import (UNSAFE_FLAG, Checkpoint, detect_architecture, load_checkpoint,
                                      save_checkpoint)

# docs/training.md#architectures, written out by hand: (conv name, out, in, kernel) and (fc name, out, in).
REFERENCE_LAYOUT = {
    "signet": ([("conv1", 96, 1, 11), ("conv2", 256, 96, 5), ("conv3", 384, 256, 3), ("conv4", 384, 384, 3),
                ("conv5", 256, 384, 3)], [("fc1", 2048, 3840), ("fc2", 2048, 2048)]),
    "signet-thin": ([("conv1", 96, 1, 11), ("conv2", 128, 96, 5), ("conv3", 128, 128, 3), ("conv4", 128, 128, 3),
                     ("conv5", 128, 128, 3)], [("fc1", 1024, 1920), ("fc2", 1024, 1024)]),
    "signet-smaller": ([("conv1", 96, 1, 11), ("conv2", 256, 96, 5), ("conv3", 384, 256, 3), ("conv5", 256, 384, 3)],
                       [("fc1", 2048, 3840)]),
}


def reference_state_dict(arch: str, with_batch_counters: bool = True) -> OrderedDict:
    """A state dict named and shaped as the reference code writes it, with random values."""
    convs, fcs = REFERENCE_LAYOUT[arch]
    state = OrderedDict()

    def bn(prefix: str, n: int) -> None:
        state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"] = torch.rand(n), torch.rand(n)
        state[f"{prefix}.bn.running_mean"], state[f"{prefix}.bn.running_var"] = torch.rand(n), torch.rand(n) + 0.5
        if with_batch_counters:
            state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(7)

    for name, out, inp, k in convs:
        state[f"conv_layers.{name}.conv.weight"] = torch.randn(out, inp, k, k) * 0.01
        bn(f"conv_layers.{name}", out)
    for name, out, inp in fcs:
        state[f"fc_layers.{name}.fc.weight"] = torch.randn(out, inp) * 0.01
        bn(f"fc_layers.{name}", out)
    return state


def test_the_signet_family_is_registered():
    assert {"signet", "signet-thin", "signet-smaller"} <= set(available_models())


@pytest.mark.parametrize("arch", sorted(REFERENCE_LAYOUT))
def test_reference_names_and_shapes(arch):
    model = create_model(arch)
    expected = reference_state_dict(arch)
    assert list(model.state_dict()) == list(expected)
    model.load_state_dict(expected)  # strict: same names, same shapes
    assert detect_architecture(expected) == arch
    assert model.feature_space_size == REFERENCE_LAYOUT[arch][1][-1][1]
    assert [n for n, m in model.conv_layers.named_children() if isinstance(m, nn.MaxPool2d)] == \
        ["maxpool1", "maxpool2", "maxpool3"]


@pytest.mark.parametrize("arch", BUILTIN_MODELS)
def test_every_registered_model_runs_forward_and_backward(arch):
    torch.manual_seed(0)
    model = create_model(arch)
    out = model(torch.rand(2, 1, *INPUT_SIZE))
    assert out.shape == (2, model.feature_space_size)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(out).all()


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(InputError, match="unknown model 'alexnet'.*signet, signet-thin, signet-smaller"):
        create_model("alexnet")


def _save_random(path, arch="signet-smaller", classes=5, forgery=True):
    torch.manual_seed(1)
    model = create_model(arch)
    dim = model.feature_space_size
    heads = nn.Linear(dim, classes), nn.Linear(dim, 1)
    save_checkpoint(path, model.state_dict(), heads[0].state_dict(), heads[1].state_dict() if forgery else None)
    return model, heads


def test_checkpoint_round_trip_in_the_reference_format(tmp_path):
    path = tmp_path / "m.pth"
    model, (classifier, forgery) = _save_random(path)
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw, tuple) and len(raw) == 3  # what the reference unpacks
    assert list(raw[0]) == list(model.state_dict()) and list(raw[1]) == ["weight", "bias"]

    checkpoint = load_checkpoint(path)
    assert checkpoint.arch == "signet-smaller" and checkpoint.num_classes == 5 and checkpoint.feature_dim == 2048
    for key, value in model.state_dict().items():
        assert torch.equal(checkpoint.features_state[key], value)
    built = checkpoint.build_model()
    assert not built.training
    x = torch.rand(3, 1, *INPUT_SIZE)
    assert torch.equal(built(x), model.eval()(x))
    loaded_classifier, loaded_forgery = checkpoint.build_heads()
    assert torch.equal(loaded_classifier.weight, classifier.weight)
    assert torch.equal(loaded_forgery.bias, forgery.bias)


def test_signet_without_forgery_head_writes_an_empty_dict(tmp_path):
    path = tmp_path / "m.pth"
    _save_random(path, forgery=False)
    assert torch.load(path, weights_only=True)[2] == {}
    assert load_checkpoint(path).forgery_state is None


def test_published_layout_with_wrapper_prefix_and_no_batch_counters_loads(tmp_path):
    """Older files lack num_batches_tracked; DataParallel-saved ones prefix every key with 'module.'."""
    state = reference_state_dict("signet-thin", with_batch_counters=False)
    path = tmp_path / "published.pth"
    torch.save((OrderedDict(("module." + k, v) for k, v in state.items()), {"weight": torch.rand(3, 1024),
                                                                            "bias": torch.rand(3)}, {}), path)
    checkpoint = load_checkpoint(path, model="signet-thin")
    assert checkpoint.arch == "signet-thin" and checkpoint.num_classes == 3
    built = checkpoint.build_model()
    assert torch.equal(built.state_dict()["conv_layers.conv2.conv.weight"], state["conv_layers.conv2.conv.weight"])


def test_wrong_model_names_both(tmp_path):
    path = tmp_path / "m.pth"
    _save_random(path, arch="signet-smaller")
    with pytest.raises(CheckpointError, match="--model signet does not match .* holds a signet-smaller network"):
        load_checkpoint(path, model="signet")


def test_an_architecture_registered_elsewhere_is_recognised(tmp_path):
    def net() -> nn.Module:
        model = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 3, 5), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten()))
        model.feature_space_size = 3
        return model

    path = tmp_path / "m.pth"
    save_checkpoint(path, net().state_dict())
    with registered("test-registry-net", net):
        checkpoint = load_checkpoint(path)
        assert checkpoint.arch == "test-registry-net" and checkpoint.num_classes is None
        assert checkpoint.build_model()(torch.rand(2, 1, *INPUT_SIZE)).shape == (2, 3)
    assert "test-registry-net" not in available_models()


def _bad_files(tmp_path):
    good = tmp_path / "good.pth"
    _save_random(good)
    data = good.read_bytes()
    files = {
        "web page": ("<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>", "web page"),
        "truncated": (data[: len(data) // 2], "truncated"),
        "random bytes": (b"\x13" + np.random.default_rng(0).bytes(4095), "not a PyTorch checkpoint"),
        "empty": (b"", "empty"),
    }
    for name, (content, _) in files.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pth"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        yield path, files[name][1]


def test_bad_files_get_one_clear_line(tmp_path):
    for path, message in _bad_files(tmp_path):
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    not_a_network = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_network)
    with pytest.raises(CheckpointError, match="not a checkpoint of a network"):
        load_checkpoint(not_a_network)
    unknown = tmp_path / "linear.pth"
    torch.save((nn.Linear(3, 2).state_dict(), {}, {}), unknown)
    with pytest.raises(CheckpointError, match="matches no known architecture.*signet"):
        load_checkpoint(unknown)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pth")


def test_other_kinds_of_file_given_as_a_checkpoint_are_named(tmp_path):
    import skops.io

    np.savez(tmp_path / "features.npz", features=np.zeros((2, 3)), y=np.zeros(2))
    skops.io.dump({"a": 1}, tmp_path / "wi.skops")
    for name, kind in (("features.npz", "a NumPy .npz archive"), ("wi.skops", "a skops file")):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        assert info.value.message == f"{tmp_path / name} is not a PyTorch checkpoint: it is {kind}"
        assert "inline_container" not in str(info.value) and "'sig train'" in info.value.hint


def test_a_file_needing_unsafe_unpickling_is_refused_unless_allowed(tmp_path):
    model, _ = _save_random(tmp_path / "m.pth")
    path = tmp_path / "with_args.pth"
    torch.save({"state_dict": (model.state_dict(), {}, {}), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError,
                       match=f"needs unsafe unpickling \\(it stores argparse.Namespace\\).*{UNSAFE_FLAG}"):
        load_checkpoint(path)
    assert load_checkpoint(path, allow_unsafe=True).arch == "signet-smaller"


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path, cli):
    page = tmp_path / "model.pth"
    page.write_text("<html><body>Too many users have viewed or downloaded this file recently</body></html>")
    result = cli("extract", "--model-path", str(page), "--data-path", str(tmp_path / "x.npz"),
                 "--save-path", str(tmp_path / "f.npz"))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "web page" in lines[0]
    assert not (tmp_path / "f.npz").exists()


def test_checkpoint_identity_names_arch_and_content(tmp_path):
    _save_random(tmp_path / "a.pth")
    identity = load_checkpoint(tmp_path / "a.pth").identity()
    assert identity.startswith("signet-smaller:") and len(identity.split(":")[1]) == 16
    assert Checkpoint("signet", {}).identity() == "signet:unsaved"

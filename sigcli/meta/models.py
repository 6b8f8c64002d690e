"""Meta-learners: networks with one logit whose every weight adapts to a writer.

The two architectures of the reference (SmallCNN and SigNet with batch norm without
affine parameters, a bias added after it) are modules whose parameters are the adaptable
weights, named as the reference names them (``conv1``, ``b1``, ..., ``w8``, ``b8``), so
that :func:`torch.func.functional_call` runs them with any weights (a writer's adapted
ones, or a meta-batch of them under :func:`torch.func.vmap`).

Batch norm is written out rather than taken from ``nn.BatchNorm``: with ``stats=True`` a
forward in training mode returns the updated running statistics instead of writing them
into its buffers, which is what a transformed (vmapped) function may do. A plain forward
updates the buffers in place, as ``nn.BatchNorm`` does, so the module also trains as an
ordinary network (supervised pre-training).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sigcli.errors import CheckpointError
from sigcli.models import INPUT_SIZE
from sigcli.models.checkpoint import Checkpoint

BN_MOMENTUM, BN_EPS = 0.1, 1e-5   # nn.BatchNorm's defaults, as the reference uses them


class MetaNet(nn.Module):
    """Base of the meta-learners: weights as parameters, running statistics as buffers.

    ``forward(x)`` gives one logit per image (N,); ``features(x)`` the layer before it.
    ``architecture`` and ``spec`` (the constructor's arguments) rebuild the same network.
    """

    architecture: str
    feature_space_size: int
    head: tuple[str, str]   # names of the output layer's weight and bias

    def __init__(self, **spec: Any):
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor, *, training: bool | None = None, stats: bool = False):
        """Logits (N,). ``training`` (default: the module's mode) selects batch statistics and
        dropout. With ``stats``, returns ``(logits, running)``: the updated running statistics
        (training) or the current ones (eval), the buffers left untouched."""
        training = self.training if training is None else training
        running: dict[str, torch.Tensor] | None = {} if stats else None
        weight, bias = (getattr(self, name) for name in self.head)
        logits = F.linear(self._features(x, training, running), weight, bias).squeeze(1)
        if not stats:
            return logits
        return logits, {name: running.get(name, buffer) for name, buffer in self.named_buffers()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The representation the logit is read from (what pre-training learns)."""
        return self._features(x, self.training, None)

    def _features(self, x: torch.Tensor, training: bool, running: dict | None) -> torch.Tensor:
        raise NotImplementedError

    def _weight(self, name: str, *shape: int) -> None:
        """A xavier-uniform weight (the reference's initialisation)."""
        self.register_parameter(name, nn.Parameter(nn.init.xavier_uniform_(torch.empty(shape))))

    def _bias(self, name: str, size: int) -> None:
        self.register_parameter(name, nn.Parameter(torch.zeros(size)))

    def _batch_norm_buffers(self, name: str, size: int) -> None:
        self.register_buffer(f"{name}_mean", torch.zeros(size))
        self.register_buffer(f"{name}_var", torch.ones(size))

    def _batch_norm(self, x: torch.Tensor, name: str, training: bool, running: dict | None) -> torch.Tensor:
        """Batch norm without affine parameters (``nn.BatchNorm(affine=False)``'s arithmetic)."""
        mean_name, var_name = f"{name}_mean", f"{name}_var"
        running_mean, running_var = getattr(self, mean_name), getattr(self, var_name)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if not training:
            return (x - running_mean.view(shape)) * torch.rsqrt(running_var.view(shape) + BN_EPS)
        dims = [0, *range(2, x.ndim)]
        mean, var = x.mean(dims), x.var(dims, correction=0)
        count = x.numel() // x.shape[1]
        new_mean = (1 - BN_MOMENTUM) * running_mean + BN_MOMENTUM * mean.detach()
        new_var = (1 - BN_MOMENTUM) * running_var + BN_MOMENTUM * var.detach() * (count / max(count - 1, 1))
        if running is None:
            with torch.no_grad():
                running_mean.copy_(new_mean)
                running_var.copy_(new_var)
        else:
            running[mean_name], running[var_name] = new_mean, new_var
        return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + BN_EPS)


class SmallCNN(MetaNet):
    """conv ``channels``@5×5 → max pool 5 → conv ``channels``@5×5 → max pool 5 → fc ``hidden`` →
    dropout → fc ``features`` → dropout → fc 1; ReLU after each hidden layer (no batch norm)."""

    architecture, head = "smallcnn", ("w5", "b5")

    def __init__(self, channels: int = 32, hidden: int = 1024, features: int = 256, dropout: float = 0.2,
                 input_size: tuple[int, int] = INPUT_SIZE):
        super().__init__(channels=channels, hidden=hidden, features=features, dropout=dropout,
                         input_size=tuple(input_size))
        self.feature_space_size, self.dropout = features, dropout
        # conv 5×5 → pool 5 → conv 5×5 → pool 5: 5×7 positions for 150×220
        grid = [_after(_after(_after(_after(size, 5, 1), 5, 5), 5, 1), 5, 5) for size in input_size]
        self._weight("conv1", channels, 1, 5, 5)
        self._bias("b1", channels)
        self._weight("conv2", channels, channels, 5, 5)
        self._bias("b2", channels)
        self._weight("w3", hidden, channels * math.prod(grid))
        self._bias("b3", hidden)
        self._weight("w4", features, hidden)
        self._bias("b4", features)
        self._weight("w5", 1, features)
        self._bias("b5", 1)


    def _features(self, x: torch.Tensor, training: bool, running: dict | None) -> torch.Tensor:
        x = F.max_pool2d(F.relu(F.conv2d(x, self.conv1, self.b1)), 5, 5)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.conv2, self.b2)), 5, 5)
        x = F.dropout(F.relu(F.linear(x.flatten(1), self.w3, self.b3)), self.dropout, training)
        return F.dropout(F.relu(F.linear(x, self.w4, self.b4)), self.dropout, training)


class MetaSigNet(MetaNet):
    """SigNet (conv1..conv5, two fc layers) with a one-logit head; each layer's batch norm has
    no affine parameters and the layer's bias ``bK`` is added after it (the reference's layout)."""

    architecture, head = "signet", ("w8", "b8")
    # name → (kernel, stride, padding); 3×3 max pools (stride 2) follow conv1, conv2 and conv5.
    _GEOMETRY = {"conv1": (11, 4, 0), "conv2": (5, 1, 2), "conv3": (3, 1, 1), "conv4": (3, 1, 1), "conv5": (3, 1, 1)}
    _POOLED = ("conv1", "conv2", "conv5")

    CHANNELS, FC = (96, 256, 384, 384, 256), 2048   # the reference's widths
    REFERENCE_SPEC = {"channels": CHANNELS, "fc": FC, "input_size": INPUT_SIZE}

    def __init__(self, channels: tuple[int, ...] = CHANNELS, fc: int = FC, input_size: tuple[int, int] = INPUT_SIZE):
        super().__init__(channels=tuple(channels), fc=fc, input_size=tuple(input_size))
        self.feature_space_size = fc
        inputs, grid = 1, list(input_size)
        for index, (name, out) in enumerate(zip(self._GEOMETRY, channels), start=1):
            kernel, stride, pad = self._GEOMETRY[name]
            self._weight(name, out, inputs, kernel, kernel)
            self._bias(f"b{index}", out)
            self._batch_norm_buffers(f"bn{index}", out)
            inputs = out
            grid = [_after(size, kernel, stride, pad) for size in grid]
            if name in self._POOLED:
                grid = [_after(size, 3, 2) for size in grid]   # 3×5 at the end for 150×220
        self._weight("w6", fc, inputs * math.prod(grid))
        self._bias("b6", fc)
        self._batch_norm_buffers("bn6", fc)
        self._weight("w7", fc, fc)
        self._bias("b7", fc)
        self._batch_norm_buffers("bn7", fc)
        self._weight("w8", 1, fc)
        self._bias("b8", 1)


    def _features(self, x: torch.Tensor, training: bool, running: dict | None) -> torch.Tensor:
        for index, (name, (_, stride, pad)) in enumerate(self._GEOMETRY.items(), start=1):
            x = F.conv2d(x, getattr(self, name), None, stride, pad)
            x = F.relu(self._batch_norm(x, f"bn{index}", training, running) + getattr(self, f"b{index}").view(1, -1, 1, 1))
            if name in self._POOLED:
                x = F.max_pool2d(x, 3, 2)
        x = x.flatten(1)
        for index in (6, 7):
            x = F.linear(x, getattr(self, f"w{index}"))
            x = F.relu(self._batch_norm(x, f"bn{index}", training, running) + getattr(self, f"b{index}"))
        return x


def _after(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """Length of one axis after a convolution or pooling."""
    return (size + 2 * pad - kernel) // stride + 1


#: Architecture name → class; a checkpoint records the name and the class's ``spec``.
ARCHITECTURES: dict[str, type[MetaNet]] = {"signet": MetaSigNet, "smallcnn": SmallCNN}


def build(architecture: str, spec: dict[str, Any] | None = None) -> MetaNet:
    """A new, randomly initialised meta-learner (seed torch first for the same weights)."""
    return ARCHITECTURES[architecture](**(spec or {}))


class FeatureView(nn.Module):
    """A meta-learner seen as a feature extractor (``forward`` = its features), sharing its
    parameters, so the supervised objective of ``sig train`` pre-trains it unchanged."""

    def __init__(self, net: MetaNet):
        super().__init__()
        self.net = net
        self.feature_space_size = net.feature_space_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


# SigNet layers of ``sig train``'s network, in order, with the meta-learner's names for them.
_SIGNET_LAYERS = (("conv_layers.conv1", "conv1", "bn1", "b1"), ("conv_layers.conv2", "conv2", "bn2", "b2"),
                  ("conv_layers.conv3", "conv3", "bn3", "b3"), ("conv_layers.conv4", "conv4", "bn4", "b4"),
                  ("conv_layers.conv5", "conv5", "bn5", "b5"), ("fc_layers.fc1", "w6", "bn6", "b6"),
                  ("fc_layers.fc2", "w7", "bn7", "b7"))


@torch.no_grad()
def load_signet_features(net: MetaSigNet, checkpoint: Checkpoint) -> None:
    """Set ``net``'s layers to a trained SigNet's, so that ``net`` computes ``w8 · SigNet(x) + b8``.

    Batch norm here has no scale γ, so each layer's γ moves into the weights around it:
    ``relu(γ·n + β) = |γ| · relu(s·n + β/|γ|)`` with ``s = sign(γ)``. The sign flips the
    layer's weights (which flips ``n``, and its running mean); ``β/|γ|`` is the bias; ``|γ|``
    scales the next layer's input columns (the head's for the last layer, which starts from
    its own random weights). Exact for every γ ≠ 0 (|γ| is kept at least 1e-8).
    """
    if not isinstance(net, MetaSigNet) or net.spec != MetaSigNet.REFERENCE_SPEC:
        raise CheckpointError(f"{checkpoint.path} is a SigNet; it initialises only --model signet")
    state = checkpoint.features_state
    scale_next = None
    for source, weight_name, bn_name, bias_name in _SIGNET_LAYERS:
        weight = state[f"{source}.{'conv' if 'conv' in weight_name else 'fc'}.weight"].clone().float()
        gamma, beta = state[f"{source}.bn.weight"].float(), state[f"{source}.bn.bias"].float()
        sign, magnitude = torch.where(gamma < 0, -1.0, 1.0), gamma.abs().clamp_min(1e-8)
        if scale_next is not None:
            weight *= _columns(scale_next, weight)
        weight *= sign.view(-1, *([1] * (weight.ndim - 1)))
        getattr(net, weight_name).copy_(weight)
        getattr(net, bias_name).copy_(beta / magnitude)
        getattr(net, f"{bn_name}_mean").copy_(sign * state[f"{source}.bn.running_mean"].float())
        getattr(net, f"{bn_name}_var").copy_(state[f"{source}.bn.running_var"].float())
        scale_next = magnitude
    net.w8.mul_(scale_next.view(1, -1))


def _columns(scale: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``scale`` per input channel, shaped to multiply ``weight``'s input columns (a flattened
    C×H×W input repeats each channel's factor over its H·W positions)."""
    if weight.ndim == 4:
        return scale.view(1, -1, 1, 1)
    return scale.repeat_interleave(weight.shape[1] // len(scale)).view(1, -1)

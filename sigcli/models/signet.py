"""The SigNet family (Hafemann et al. 2017), with the reference layer names (docs/training.md#architectures).

Each block is conv (or linear) without bias → batch norm → ReLU, named so that a state dict
reads ``conv_layers.conv1.conv.weight``, ``fc_layers.fc1.bn.running_mean``…: published
weights load here, and our checkpoints load in the reference code.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from sigcli.models.registry import INPUT_SIZE, register_model

# name → (kernel, stride, padding) of every convolution the family uses.
_CONV_GEOMETRY = {"conv1": (11, 4, 0), "conv2": (5, 1, 2), "conv3": (3, 1, 1), "conv4": (3, 1, 1),
                  "conv5": (3, 1, 1)}
# 3×3 max pools (stride 2) follow these convolutions.
_POOL_AFTER = {"conv1": "maxpool1", "conv2": "maxpool2", "conv5": "maxpool3"}


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1, pad: int = 0) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, out_channels, kernel, stride, pad, bias=False)),
        ("bn", nn.BatchNorm2d(out_channels)),
        ("relu", nn.ReLU()),
    ]))


def linear_bn_relu(in_features: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("fc", nn.Linear(in_features, out_features, bias=False)),  # batch norm supplies the bias
        ("bn", nn.BatchNorm1d(out_features)),
        ("relu", nn.ReLU()),
    ]))


class SigNet(nn.Module):
    """Convolutions ``conv_channels`` (by reference name), then fully connected ``fc_sizes``.

    The last fc size is the feature dimension (``feature_space_size``).
    """

    def __init__(self, conv_channels: dict[str, int], fc_sizes: tuple[int, ...]):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        channels, (height, width) = 1, INPUT_SIZE
        for name, out_channels in conv_channels.items():
            kernel, stride, pad = _CONV_GEOMETRY[name]
            layers.append((name, conv_bn_relu(channels, out_channels, kernel, stride, pad)))
            height, width = _out(height, kernel, stride, pad), _out(width, kernel, stride, pad)
            if name in _POOL_AFTER:
                layers.append((_POOL_AFTER[name], nn.MaxPool2d(3, 2)))
                height, width = _out(height, 3, 2, 0), _out(width, 3, 2, 0)
            channels = out_channels
        self.conv_layers = nn.Sequential(OrderedDict(layers))

        flat = channels * height * width  # 256 × 3 × 5 for SigNet
        sizes = (flat, *fc_sizes)
        self.fc_layers = nn.Sequential(OrderedDict(
            (f"fc{i + 1}", linear_bn_relu(sizes[i], sizes[i + 1])) for i in range(len(fc_sizes))))
        self.feature_space_size = fc_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_layers(torch.flatten(self.conv_layers(x), 1))


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a convolution or pooling along one axis."""
    return (size + 2 * pad - kernel) // stride + 1


@register_model("signet")
def signet() -> SigNet:
    """SigNet: 2048-d features."""
    return SigNet({"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256}, (2048, 2048))


@register_model("signet-thin")
def signet_thin() -> SigNet:
    """SigNet-thin: 128 channels in conv2..5, 1024-d features."""
    return SigNet({"conv1": 96, "conv2": 128, "conv3": 128, "conv4": 128, "conv5": 128}, (1024, 1024))


@register_model("signet-smaller")
def signet_smaller() -> SigNet:
    """SigNet-smaller: no conv4, a single fc layer."""
    return SigNet({"conv1": 96, "conv2": 256, "conv3": 384, "conv5": 256}, (2048,))

"""A checkpoint's user classifier, frozen: the teacher that distillation learns from and that
inversion (with a student's, for the competition term) makes images for."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sigcli.errors import CheckpointError
from sigcli.models.checkpoint import Checkpoint, load_checkpoint


def classifier_checkpoint(path: Path, role: str, purpose: str, allow_unsafe: bool) -> Checkpoint:
    """The checkpoint at ``path``, which must have a user-classification head (``role`` and
    ``purpose`` name it in the error, e.g. "teacher" and "distillation")."""
    checkpoint = load_checkpoint(path, allow_unsafe=allow_unsafe)
    if checkpoint.num_classes is None:
        raise CheckpointError(f"the {role} {path} has no user-classification head, which {purpose} needs",
                              "give a checkpoint saved by 'sig train' or 'sig distill'")
    return checkpoint


class FrozenClassifier(nn.Module):
    """Feature extractor and user head of a checkpoint as one network, images → user logits.

    Frozen: always in eval mode (batch norm uses its running statistics) and without parameter
    gradients. Gradients still flow to its input, which inversion optimises.
    """

    def __init__(self, checkpoint: Checkpoint, device: torch.device):
        super().__init__()
        self.features = checkpoint.build_model(device)
        self.classifier = checkpoint.build_heads(device)[0]
        if device.type == "cuda":
            self.to(memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def train(self, mode: bool = True) -> "FrozenClassifier":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

"""A meta-learner (network + inner-loop learning rates) and its checkpoint file.

A checkpoint of ``sig meta`` is a dict saved with ``torch.save`` and read with
``weights_only=True`` (plain data and tensors, nothing that runs code)::

    {"format": "sig-meta", "version": 1, "architecture": "signet", "spec": {...},
     "weights": {...}, "task_lr": K×T tensor, "learn_task_lr": bool, "num_updates": K,
     "seen_writers": {"meta-trained": [[first, last], ...], "validated": [[first, last], ...]}}

``architecture`` and ``spec`` rebuild the network, so a checkpoint is tested without
saying what it is; a feature extractor of ``sig train`` given instead is recognised and
named as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sigcli.errors import CheckpointError
from sigcli.filekind import file_kind
from sigcli.fileio import atomic_path
from sigcli.meta.maml import TaskLearningRates
from sigcli.meta.models import ARCHITECTURES, MetaNet, build

FORMAT, VERSION = "sig-meta", 1


@dataclass
class MetaLearner:
    """The network whose weights adapt, and the learning rates that adapt them."""

    net: MetaNet
    rates: TaskLearningRates
    seen_writers: dict[str, list[list[int]]]   # user ranges it was meta-trained and validated on

    @classmethod
    def new(cls, architecture: str, steps: int, train_lr: float, learn_task_lr: bool,
            seen_writers: dict[str, list[list[int]]], spec: dict[str, Any] | None = None) -> "MetaLearner":
        """Fresh weights (xavier-uniform, zero biases: seed torch first) and rates ``train_lr``."""
        net = build(architecture, spec)
        rates = TaskLearningRates(steps, len(list(net.parameters())), train_lr, learn_task_lr)
        return cls(net, rates, seen_writers)

    @property
    def num_updates(self) -> int:
        return len(self.rates.rates)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically, replacing an earlier one (a run's model_last / model_best)."""
        record = {"format": FORMAT, "version": VERSION, "architecture": self.net.architecture,
                  "spec": dict(self.net.spec), "weights": {k: v.detach().cpu().clone()
                                                          for k, v in self.net.state_dict().items()},
                  "task_lr": self.rates.rates.detach().cpu().clone(),
                  "learn_task_lr": self.rates.rates.requires_grad, "num_updates": self.num_updates,
                  "seen_writers": self.seen_writers}
        with atomic_path(path, overwrite=True) as tmp:
            torch.save(record, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, model: str | None = None) -> "MetaLearner":
        """Read a checkpoint of ``sig meta``; one line for anything else, or for another ``model``."""
        path = Path(path)
        record = _read(path)
        architecture = record["architecture"]
        if architecture not in ARCHITECTURES:
            raise CheckpointError(f"{path} holds a meta-learner of unknown architecture {architecture!r}",
                                  f"known: {', '.join(ARCHITECTURES)}")
        if model is not None and model != architecture:
            raise CheckpointError(f"--checkpoint {path} holds a {architecture} meta-learner, not --model {model}",
                                  f"use --model {architecture}, or leave --model out")
        try:
            net = build(architecture, record["spec"])
            net.load_state_dict(record["weights"])
            rates = TaskLearningRates(*record["task_lr"].shape, 0.0, bool(record["learn_task_lr"]))
            rates.rates.data.copy_(record["task_lr"])
        except Exception as exc:  # shapes or names that do not fit the architecture
            raise CheckpointError(f"{path} does not fit a {architecture} meta-learner "
                                  f"({str(exc).strip().splitlines()[0][:120]})", "write it again with sig meta")
        return cls(net, rates, dict(record.get("seen_writers") or {}))


def _read(path: Path) -> dict:
    expected = "expected a model_best.pth or model_last.pth written by 'sig meta'"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", expected)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file fails inside the reader in many ways
        raise CheckpointError(f"{path} is not a checkpoint of sig meta: it is {file_kind(path)}", expected) from None
    if isinstance(record, (tuple, list)) and record and isinstance(record[0], dict):
        raise CheckpointError(f"{path} is a feature extractor in the 3-tuple format of 'sig train', not a "
                              "meta-learner", "give it as --model-path to start a SigNet meta-learner from it")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a checkpoint of sig meta", expected)
    missing = [key for key in ("architecture", "spec", "weights", "task_lr", "learn_task_lr") if key not in record]
    if missing:
        raise CheckpointError(f"{path} is a damaged checkpoint of sig meta: it lacks {', '.join(missing)}")
    return record

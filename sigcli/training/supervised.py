"""SigNet and SigNet-F feature learning (docs/training.md): the objective and ``train_signet``.

SigNet: cross-entropy over the users. SigNet-F with λ: (1 − λ)·cross-entropy over the
batch's genuine signatures (``--loss-type L2``, the paper's Eq. 4) or over all of them,
forgeries labelled with the writer they imitate (``L1``, Eq. 3) + λ·binary cross-entropy of
a one-output forgery head over all of them. Users of the selected range are re-encoded 0..U−1 (in ascending order), the
signatures split 90/10 at random into training and validation, the best epoch chosen by
validation accuracy (an equal accuracy replaces the best, as in the reference). Skilled and
simple forgeries are both "forged" (target 1) for the forgery head; the reference would
pass a simple forgery's code 2 as a binary target.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sigcli.config.training import LossType, TrainOptions
from sigcli.data.sigset import SignatureSet, canvas_of
from sigcli.errors import CheckpointError, InputError
from sigcli.models import create_model
from sigcli.models.checkpoint import load_checkpoint, same_architecture
from sigcli.options import require_users_within
from sigcli.progress import Reporter
from sigcli.training.data import Batch, Rows, batches, check_image_size, num_batches, set_digest, split_train_val
from sigcli.training.loop import DistributedInfo, FitResult, fit, init_distributed


class SupervisedObjective:
    """The SigNet objective over ``rows`` (labels 0..classes−1), or SigNet-F with its weight ``lamb``."""

    def __init__(self, features: nn.Module, rows: Rows, train: np.ndarray, val: np.ndarray, num_classes: int, *,
                 batch_size: int, lamb: float | None = None, loss_type: LossType = "L2",
                 info: DistributedInfo | None = None):
        self.rows, self.train, self.val = rows, train, val
        self.forg, self.lamb, self.batch_size, self.loss_type = lamb is not None, lamb, batch_size, loss_type
        self.info = info or DistributedInfo()
        dim = features.feature_space_size
        self.nets: dict[str, nn.Module] = {"features": features, "classifier": nn.Linear(dim, num_classes)}
        if self.forg:
            self.nets["forgery"] = nn.Linear(dim, 1)

    def modules(self) -> dict[str, nn.Module]:
        return self.nets

    def _epoch_order(self, generator: torch.Generator) -> np.ndarray:
        return self.info.shard(self.train[torch.randperm(len(self.train), generator=generator).numpy()])

    def train_batches(self, epoch: int, generator: torch.Generator):
        return batches(self.rows, self._epoch_order(generator), self.batch_size, self.info.device,
                       generator=generator)

    def num_train_batches(self) -> int:
        return num_batches(len(self.info.shard(self.train)), self.batch_size, training=True)

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss(batch.x, batch)

    def user_samples(self, batch: Batch) -> torch.Tensor:
        """Which of the batch's samples the user cross-entropy is over: the genuine ones (L2, the
        paper's Eq. 4), or all of them, a forgery labelled with the writer it imitates (L1, Eq. 3)."""
        return torch.ones_like(batch.yforg, dtype=torch.bool) if self.loss_type == "L1" else batch.yforg == 0

    def loss(self, images: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The SigNet (or SigNet-F) loss of ``images`` with the labels of ``batch``, and its metrics."""
        features = self.nets["features"](images)
        users = self.user_samples(batch)
        # SigNet sees genuine signatures only, so the mask keeps all of them there.
        logits = self.nets["classifier"](features[users])
        labels = batch.y[users]
        # An all-forgery batch has no user loss, but keeps the head in the graph (DDP needs it).
        class_loss = F.cross_entropy(logits, labels) if len(labels) else logits.sum() * 0
        metrics = {"acc": (logits.argmax(1) == labels).sum().item() / max(1, len(labels))}
        if not self.forg:
            return class_loss, {"loss": class_loss.item(), **metrics}
        forg_logits = self.nets["forgery"](features).squeeze(1)
        forged = (batch.yforg > 0).float()
        forg_loss = F.binary_cross_entropy_with_logits(forg_logits, forged)
        loss = (1 - self.lamb) * class_loss + self.lamb * forg_loss
        forg_acc = ((forg_logits > 0).float() == forged).float().mean().item()
        return loss, {"loss": loss.item(), **metrics, "forg_acc": forg_acc, "class_loss": class_loss.item(),
                      "forg_loss": forg_loss.item()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss and accuracy over the validation genuines (and the forgery head over all), centre crops."""
        sums = dict.fromkeys(("loss", "correct", "genuine", "forg_loss", "forg_correct", "count"), 0.0)
        for batch in batches(self.rows, self.info.split(self.val), self.batch_size, self.info.device):
            features = self.nets["features"](batch.x)
            genuine = batch.yforg == 0
            logits = self.nets["classifier"](features[genuine]).float()
            sums["loss"] += F.cross_entropy(logits, batch.y[genuine], reduction="sum").item()
            sums["correct"] += (logits.argmax(1) == batch.y[genuine]).sum().item()
            sums["genuine"] += genuine.sum().item()
            sums["count"] += len(batch.y)
            if self.forg:
                forg_logits = self.nets["forgery"](features).squeeze(1).float()
                forged = (batch.yforg > 0).float()
                sums["forg_loss"] += F.binary_cross_entropy_with_logits(forg_logits, forged, reduction="sum").item()
                sums["forg_correct"] += ((forg_logits > 0).float() == forged).sum().item()
        sums = self.info.sum(sums)
        genuine = sums["genuine"] or float("nan")
        result = {"loss": sums["loss"] / genuine, "acc": sums["correct"] / genuine}
        if self.forg:
            result.update(forg_loss=sums["forg_loss"] / sums["count"], forg_acc=sums["forg_correct"] / sums["count"])
        return {**result, "score": result["acc"]}

    def is_better(self, current: dict[str, float], best: dict[str, float] | None) -> bool:
        return best is None or current["score"] >= best["score"]

    def checkpoint(self) -> tuple[dict, dict, dict]:
        forgery = self.nets["forgery"].state_dict() if self.forg else {}
        return self.nets["features"].state_dict(), self.nets["classifier"].state_dict(), forgery


def train_signet(options: TrainOptions, reporter: Reporter | None = None) -> FitResult:
    """Train SigNet (or SigNet-F with ``options.forg``) on a preprocessed set, adversarially with
    ``options.adversarial``; see :func:`fit`."""
    info = init_distributed(options.device)
    objective, config = build_objective(options, info)
    return fit(objective, options, options.logdir, resume=options.resume, overwrite=options.overwrite,
               options=options, extra_config=config, inputs=[options.data_path, *options.adv_models],
               reporter=reporter)


def evaluate_checkpoint(options: TrainOptions) -> dict[str, float]:
    """``--test``: the validation metrics of the ``--checkpoint`` network on the validation split
    that training with these options uses (clean images); nothing is written."""
    info = init_distributed(options.device)
    objective, _ = build_objective(options, info)
    _load_trained(objective, options)
    for module in objective.modules().values():
        module.to(info.device).eval()
    with torch.no_grad():
        return objective.validate()


def build_objective(options: TrainOptions, info: DistributedInfo) -> tuple[SupervisedObjective, dict]:
    """The run's objective (the plain one with ``--test``) and what config.json records of its data."""
    users = options.users
    sigset = SignatureSet.load(options.data_path, allow_pickle=options.allow_pickle)
    check_image_size(sigset.image_size)
    if users is not None:
        require_users_within(users, np.unique(sigset.y), "--users", str(options.data_path))
    rows = Rows.select(sigset, users, genuine_only=not options.forg)
    where = f"users [{users[0]}, {users[1]})" if users else "the set"
    if len(rows) == 0:
        kind = "signatures" if options.forg else "genuine signatures"
        raise InputError(f"{options.data_path} has no {kind} of {where}",
                         f"it has user indices {int(sigset.y.min())}..{int(sigset.y.max())}" if len(sigset) else None)
    if options.forg and not np.any(rows.yforg > 0):
        raise InputError(f"--forg needs forgeries, and {where} in {options.data_path} has none",
                         "train without --forg, or on a set with skilled forgeries")
    classes, rows.y = np.unique(rows.y, return_inverse=True)
    train, val = split_train_val(len(rows), options.seed)
    torch.manual_seed(options.seed)
    arguments = (create_model(options.model), rows, train, val, len(classes))
    settings = dict(batch_size=options.batch_size, lamb=options.lamb if options.forg else None,
                    loss_type=options.loss_type, info=info)
    config: dict = {"data": {"path": str(options.data_path), "fingerprint": set_digest(sigset),
                             "users": len(classes), "signatures": len(rows), "train": len(train),
                             "validation": len(val)}}
    if options.adversarial == "none" or options.test:
        objective = SupervisedObjective(*arguments, **settings)
    else:
        from sigcli.training.adversarial import adversarial_objective

        objective, config["adversarial"] = adversarial_objective(options, arguments, settings, info)
    canvas = canvas_of(options.data_path)  # for 'sig verify', which must make its images the same way
    config["canvases"] = [canvas.as_dict()] if canvas else []
    return objective, config


def _load_trained(objective: SupervisedObjective, options: TrainOptions) -> None:
    """The ``--checkpoint`` weights into the objective's modules; each part must fit these options."""
    path = options.model_path
    checkpoint = load_checkpoint(path, allow_unsafe=options.allow_unsafe_checkpoint)
    features = objective.nets["features"]
    if not same_architecture(features, checkpoint.features_state):
        raise CheckpointError(f"--checkpoint {path} holds a {checkpoint.arch} network, not --model {options.model}",
                              f"pass --model {checkpoint.arch}")
    features.load_state_dict(checkpoint.features_state, strict=False)
    classes = objective.nets["classifier"].out_features
    if checkpoint.num_classes != classes:
        head = "no user head" if checkpoint.num_classes is None else f"a {checkpoint.num_classes}-user head"
        raise CheckpointError(f"--checkpoint {path} has {head}, and these options select {classes} users",
                              "give the --data-path and --users it was trained with")
    objective.nets["classifier"].load_state_dict(checkpoint.classifier_state)
    if objective.forg:
        if checkpoint.forgery_state is None:
            raise CheckpointError(f"--checkpoint {path} has no forgery head (it was trained without --forg)",
                                  "leave --forg out")
        objective.nets["forgery"].load_state_dict(checkpoint.forgery_state)

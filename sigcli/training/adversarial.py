"""Adversarial training as objectives of the one training loop (docs/training.md#adversarial-training).

- ``madry`` (Madry et al., ICLR 2018): every training batch is replaced by its PGD
  adversarial images, made against the model being trained (features + user head, in train
  mode, user labels), and the SigNet / SigNet-F loss is computed on them only.
- ``ensadv`` (Tramèr et al., ICLR 2018): each batch also gets one-step FGM adversarial
  images, made in turn by the model being trained or by one of the frozen ``--adv-model``
  networks (in eval mode); loss = α · clean loss + (1 − α) · user cross-entropy of the
  adversarial images.

Validation, checkpoints and resuming are the supervised objective's: clean images, the
reference 3-tuple. The attacks are deterministic (δ starts at 0), so a resumed run ends
with the weights of an uninterrupted one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sigcli.adversarial.attacks import fgm_l2, pgd_max_l2
from sigcli.config.training import TrainOptions
from sigcli.errors import CheckpointError
from sigcli.training.data import Batch
from sigcli.training.loop import DistributedInfo
from sigcli.training.supervised import SupervisedObjective
from sigcli.training.teacher import FrozenClassifier, classifier_checkpoint

#: The PGD schedule of Madry training: the reference's ``fast`` attack (linear decay, normalised gradients).
MADRY_SCHEDULE = "linear"


class _Attacked(SupervisedObjective):
    """A supervised objective whose own network is attacked: the attack runs through the modules
    themselves, not through the data-parallel wrappers that :func:`fit` may put in ``nets``
    (one wrapped forward per step, as DistributedDataParallel expects)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.own = dict(self.nets)

    def user_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.own["classifier"](self.own["features"](images))


class MadryObjective(_Attacked):
    """The SigNet / SigNet-F loss of each batch's PGD adversarial images only."""

    def __init__(self, *args: Any, steps: int, max_l2: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.steps, self.max_l2 = steps, max_l2

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        # The model stays in train mode during the attack, as in the reference: batch norm
        # normalises with the statistics of the attacked batch (and updates its running ones).
        adversarial = pgd_max_l2(self.user_logits, batch.x, batch.y, steps=self.steps, max_l2=self.max_l2,
                                 schedule=MADRY_SCHEDULE)
        return self.loss(adversarial, batch)


class EnsembleAdversarialObjective(_Attacked):
    """α · the clean SigNet / SigNet-F loss + (1 − α) · the user cross-entropy of one-step
    adversarial images; the attacker of the i-th batch of an epoch is the model being trained
    (i mod (1 + len(attackers)) = 0) or ``attackers[i mod (1 + len(attackers)) − 1]``."""

    def __init__(self, *args: Any, attackers: Sequence[nn.Module], eps: float, alpha: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.attackers, self.eps, self.alpha = list(attackers), eps, alpha

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[tuple[int, Batch]]:
        return enumerate(super().train_batches(epoch, generator))

    def train_step(self, numbered: tuple[int, Batch]) -> tuple[torch.Tensor, dict[str, float]]:
        step, batch = numbered
        turn = step % (1 + len(self.attackers))
        if turn == 0:
            with _eval_mode(self.own["features"], self.own["classifier"]):
                adversarial = fgm_l2(self.user_logits, batch.x, batch.y, eps=self.eps)
        else:
            adversarial = fgm_l2(self.attackers[turn - 1], batch.x, batch.y, eps=self.eps)
        clean_loss, metrics = self.loss(batch.x, batch)
        users = self.user_samples(batch)
        # Through the modules themselves: the wrappers already took this step's forward (the
        # gradients of both passes still add up before the wrappers average them). The whole
        # batch goes through, so batch norm sees the batch the reference's does.
        logits = self.user_logits(adversarial)[users]
        labels = batch.y[users]
        adv_loss = F.cross_entropy(logits, labels) if len(labels) else logits.sum() * 0
        loss = self.alpha * clean_loss + (1 - self.alpha) * adv_loss
        adv_acc = (logits.argmax(1) == labels).sum().item() / max(1, len(labels))
        return loss, {"loss": loss.item(), "acc": metrics["acc"], "adv_acc": adv_acc,
                      "clean_loss": metrics["loss"], "adv_loss": adv_loss.item(),
                      **{k: v for k, v in metrics.items() if k not in ("loss", "acc")}}


@contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run the block with ``modules`` in eval mode, then put back the mode each had."""
    modes = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


def adversarial_objective(options: TrainOptions, arguments: tuple, settings: dict,
                          info: DistributedInfo) -> tuple[_Attacked, dict]:
    """The objective of ``--adversarial madry|ensadv`` from the supervised objective's
    ``arguments`` and ``settings``, and what config.json records of the attack."""
    if options.adversarial == "madry":
        objective = MadryObjective(*arguments, steps=options.attack_steps, max_l2=options.attack_l2, **settings)
        return objective, {"kind": "madry", "steps": options.attack_steps, "max_l2": options.attack_l2,
                           "schedule": MADRY_SCHEDULE}
    classes = arguments[-1]
    attackers, identities = [], []
    with torch.random.fork_rng(devices=[]):  # building a network draws weights: keep the run's random stream
        for path in options.adv_models:
            checkpoint = classifier_checkpoint(path, "--adv-model", "ensemble adversarial training",
                                               options.allow_unsafe_checkpoint)
            if checkpoint.num_classes != classes:
                raise CheckpointError(f"--adv-model {path} classifies {checkpoint.num_classes} users, and this run "
                                      f"has {classes}", "give checkpoints trained on the same --data-path and --users")
            attackers.append(FrozenClassifier(checkpoint, info.device))
            identities.append(checkpoint.identity())
    objective = EnsembleAdversarialObjective(*arguments, attackers=attackers, eps=options.eps, alpha=options.alpha,
                                             **settings)
    return objective, {"kind": "ensadv", "eps": options.eps, "alpha": options.alpha, "adv_models": identities}

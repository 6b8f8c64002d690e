"""``sig attack --system classifier``: adversarial images against a checkpoint's user classifier.

Every signature of the selected users (centre crop, docs/preprocessing.md#crops-at-the-network) is
attacked through the checkpoint's feature extractor and user-classification head, in eval
mode, with its user's class as the label (users re-encoded 0..U−1 in ascending order, as
training encodes them) or, with ``targeted``, a random other class. The adversarial images
are written as a signature set (docs/adversarial.md#outputs), with ``y``, ``yforg``,
``user_mapping`` and ``filenames`` of the originals, and the statistics beside it as JSON.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sigcli import progress
from sigcli.adversarial.attacks import l2_norms, pgd_max_l2
from sigcli.config.attack import AttackOptions
from sigcli.data.sigset import SignatureSet
from sigcli.device import resolve_device
from sigcli.errors import InputError
from sigcli.fileio import check_outputs
from sigcli.models import INPUT_SIZE
from sigcli.options import require_users_within, save_options
from sigcli.training.data import Rows, batches, check_image_size
from sigcli.training.teacher import FrozenClassifier, classifier_checkpoint


@dataclass
class ClassifierAttackReport:
    save_path: Path
    images: int
    users: int
    clean_accuracy: float
    """Share of the images the classifier assigns to their user before the attack."""
    adversarial_accuracy: float
    success_rate: float | None
    """Share of the images classified correctly before the attack that the attack fooled
    (untargeted: now another user; targeted: now the target)."""
    l2: dict[str, float | None]
    """Mean, median and largest L2 norm of the perturbations."""
    seconds: float
    device: str


def l2_summary(norms: np.ndarray) -> dict[str, float | None]:
    """Mean, median and largest of some L2 norms (``None`` for none: JSON has no NaN)."""
    if len(norms) == 0:
        return {"mean": None, "median": None, "max": None}
    return {"mean": float(norms.mean()), "median": float(np.median(norms)), "max": float(norms.max())}


def class_labels(y: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """Each signature's class: its user's rank among the users present (training's encoding)."""
    users, labels = np.unique(y, return_inverse=True)
    if len(users) != num_classes:
        raise InputError(f"{where} has {len(users)} users but the checkpoint's classifier has {num_classes} classes",
                         f"give --users FIRST LAST spanning the {num_classes} users it was trained on")
    return labels


def random_targets(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """A class other than each label, uniformly drawn from ``seed``."""
    if num_classes < 2:
        raise InputError("a targeted attack needs a classifier of 2 or more users", "drop --targeted")
    shift = np.random.default_rng(seed).integers(1, num_classes, len(labels))
    return (labels + shift) % num_classes


def attack_classifier(options: AttackOptions, reporter: progress.Reporter | None = None) -> ClassifierAttackReport:
    """Attack every signature of ``options.users``; write the set and its JSON; return the figures."""
    started = time.perf_counter()
    save_path = Path(options.save_path)
    if save_path.suffix != ".npz":
        raise InputError(f"--save-path {save_path} must end in .npz", "adversarial images are written as a .npz set")
    json_path = save_path.with_suffix(".json")
    check_outputs([("--save-path", save_path), ("--save-path", json_path)], overwrite=options.overwrite,
                  inputs=(options.model_path, options.data_path))
    device = resolve_device(options.device)
    checkpoint = classifier_checkpoint(options.model_path, "model", "the attack", options.allow_unsafe_checkpoint)
    network = FrozenClassifier(checkpoint, device)
    sigset = SignatureSet.load(options.data_path, allow_pickle=options.allow_pickle)
    check_image_size(sigset.image_size)
    if options.users is not None:
        require_users_within(options.users, np.unique(sigset.y), "--users", str(options.data_path))
    selected = Rows.select(sigset, options.users)
    if len(selected) == 0:
        raise InputError(f"{options.data_path} has no signatures of users {options.users}")
    labels = class_labels(selected.y, network.num_classes, str(options.data_path) if options.users is None
                          else f"--users {options.users[0]} {options.users[1]}")
    goals = random_targets(labels, network.num_classes, options.seed) if options.targeted else labels
    rows = Rows(selected.x, selected.rows, goals, selected.yforg)

    n = len(rows)
    adversarial = np.empty((n, 1, *INPUT_SIZE), dtype=np.float32)
    clean_predictions, predictions, norms = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64))
    order = np.arange(n)
    done = 0

    def fooled_among(count: int) -> np.ndarray:
        """Which of the first ``count`` signatures (in batch order) that were classified right
        the attack fooled."""
        seen = order[:count]
        seen = seen[clean_predictions[seen] == labels[seen]]
        return predictions[seen] == goals[seen] if options.targeted else predictions[seen] != labels[seen]

    with progress.resolve(reporter).task("attacking", n) as task:
        for batch in batches(rows, order, options.batch_size, device):
            attacked = pgd_max_l2(network, batch.x, batch.y, steps=options.steps, max_l2=options.max_l2,
                                  schedule=options.schedule, targeted=options.targeted,
                                  reduction=options.loss_reduction)
            with torch.no_grad():
                clean_predictions[batch.index] = network(batch.x).argmax(1).cpu().numpy()
                predictions[batch.index] = network(attacked).argmax(1).cpu().numpy()
            norms[batch.index] = l2_norms(attacked - batch.x).cpu().numpy()
            adversarial[batch.index] = attacked.cpu().numpy()
            done += len(batch.index)
            fooled = fooled_among(done)
            task.advance(len(batch.index), fooled=f"{fooled.mean():.0%}" if len(fooled) else "–")

    correct = clean_predictions == labels
    fooled = fooled_among(n)
    success_rate = float(fooled.mean()) if len(fooled) else None
    filenames = None if sigset.filenames is None else np.asarray(sigset.filenames)[rows.rows]
    SignatureSet(adversarial, selected.y, selected.yforg, sigset.user_mapping, filenames).save(
        save_path, overwrite=options.overwrite)
    report = ClassifierAttackReport(save_path, n, network.num_classes, float(correct.mean()),
                                    float((predictions == labels).mean()), success_rate, l2_summary(norms),
                                    time.perf_counter() - started, str(device))
    save_options(options, json_path, overwrite=options.overwrite, model=checkpoint.identity(),
                 images=n, users=network.num_classes, clean_accuracy=report.clean_accuracy,
                 adversarial_accuracy=report.adversarial_accuracy, success_rate=success_rate, l2=report.l2,
                 per_image={"label": labels.tolist(), "target": goals.tolist() if options.targeted else None,
                            "clean_prediction": clean_predictions.tolist(), "prediction": predictions.tolist(),
                            "l2": norms.tolist()})
    return report

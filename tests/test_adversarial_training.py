"""sig train --adversarial madry|ensadv: the losses by hand, and runs through the shared loop that resume."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sigcli.adversarial.attacks import fgm_l2, pgd_max_l2
from sigcli.config.training import TrainOptions
from sigcli.errors import SigcliError
from sigcli.models import create_model
from sigcli.models.checkpoint import Checkpoint, load_checkpoint
from sigcli.training.adversarial import EnsembleAdversarialObjective, MadryObjective
from sigcli.training.data import Rows, batches
from sigcli.training.supervised import train_signet
from sigcli.training.teacher import FrozenClassifier
from training_data import TINY, signature_set


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """4 users × 5 genuine + 3 skilled, as a memory-mapped folder."""
    return signature_set(users=4, genuine=5, skilled=3).save(tmp_path_factory.mktemp("data") / "set", folder=True)


def _batch(forg: bool):
    torch.manual_seed(0)
    rows = Rows.select(signature_set(users=2, genuine=3, skilled=2), genuine_only=not forg)
    return rows, next(iter(batches(rows, np.arange(len(rows)), len(rows))))


def _copy(objective):
    """The objective's network as separate modules (features, user head, forgery head)."""
    nets = copy.deepcopy(objective.nets)
    return nets["features"], nets["classifier"], nets.get("forgery")


@pytest.mark.parametrize("forg", [False, True], ids=["signet", "signet-f"])
def test_madry_loss_is_the_loss_of_the_pgd_images_made_in_train_mode(forg):
    rows, batch = _batch(forg)
    objective = MadryObjective(create_model(TINY), rows, np.arange(len(rows)), np.arange(len(rows)), 2,
                               batch_size=len(rows), lamb=0.6 if forg else None, steps=3, max_l2=2.0)
    for module in objective.modules().values():
        module.train()
    features, classifier, forgery = _copy(objective)
    loss, metrics = objective.train_step(batch)

    adversarial = pgd_max_l2(lambda x: classifier(features(x)), batch.x, batch.y, steps=3, max_l2=2.0,
                             schedule="linear")
    assert not torch.equal(adversarial, batch.x)
    out = features(adversarial)
    genuine = batch.yforg == 0
    expected = F.cross_entropy(classifier(out[genuine]), batch.y[genuine])
    if forg:
        bce = F.binary_cross_entropy_with_logits(forgery(out).squeeze(1), (batch.yforg > 0).float())
        expected = 0.4 * expected + 0.6 * bce
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["loss"] == pytest.approx(expected.item(), rel=1e-5)
    # Train mode during the attack: batch norm's running statistics moved with each of the 3 steps and the loss.
    ours, theirs = objective.nets["features"].state_dict(), features.state_dict()
    assert int(ours["bn.num_batches_tracked"]) == 4
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("loss_type", ["L1", "L2"])
def test_ensadv_loss_and_the_round_robin_of_attackers(loss_type):
    """α·clean + (1 − α)·CE of the FGM images; the model (in eval mode) attacks batch 0, the frozen one batch 1."""
    rows, batch = _batch(forg=True)
    n = len(rows)
    torch.manual_seed(1)
    other = create_model(TINY)
    frozen_state = (other.state_dict(), torch.nn.Linear(16, 2).state_dict())
    frozen = FrozenClassifier(Checkpoint(TINY, *frozen_state), torch.device("cpu"))
    objective = EnsembleAdversarialObjective(create_model(TINY), rows, np.arange(n), np.arange(n), 2, batch_size=n,
                                             lamb=0.6, loss_type=loss_type, attackers=[frozen], eps=3.0, alpha=0.3)
    for module in objective.modules().values():
        module.train()
    frozen_before = copy.deepcopy(frozen.state_dict())

    for step in (0, 1):
        features, classifier, forgery = _copy(objective)
        loss, metrics = objective.train_step((step, batch))
        assert all(m.training for m in objective.modules().values())
        if step == 0:
            features.eval()
            classifier.eval()
            adversarial = fgm_l2(lambda x: classifier(features(x)), batch.x, batch.y, eps=3.0)
            features.train()
            classifier.train()
        else:
            adversarial = fgm_l2(frozen, batch.x, batch.y, eps=3.0)
        assert torch.linalg.vector_norm((adversarial - batch.x).flatten(1), dim=1).max() <= 3.0 + 1e-4
        users = torch.ones(n, dtype=torch.bool) if loss_type == "L1" else batch.yforg == 0
        out = features(batch.x)
        clean = 0.4 * F.cross_entropy(classifier(out[users]), batch.y[users]) + \
            0.6 * F.binary_cross_entropy_with_logits(forgery(out).squeeze(1), (batch.yforg > 0).float())
        adversarial_ce = F.cross_entropy(classifier(features(adversarial))[users], batch.y[users])
        assert loss.item() == pytest.approx((0.3 * clean + 0.7 * adversarial_ce).item(), rel=1e-5)
        assert metrics["clean_loss"] == pytest.approx(clean.item(), rel=1e-5)
        assert metrics["adv_loss"] == pytest.approx(adversarial_ce.item(), rel=1e-5)
    assert all(torch.equal(v, frozen_before[k]) for k, v in frozen.state_dict().items())


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _same_weights(a: Path, b: Path) -> bool:
    first, second = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(first, second))


def test_madry_and_ensadv_run_through_the_shared_loop_and_resume_bit_identically(small_set, tmp_path, cli):
    def options(logdir: Path, epochs: int, **kind) -> TrainOptions:
        return TrainOptions(data_path=small_set, logdir=logdir, model=TINY, epochs=epochs, batch_size=8, lr=0.05,
                            forg=True, device="cpu", resume=epochs == 2 and "resumed" in logdir.name, **kind)

    attacker = tmp_path / "plain"
    train_signet(options(attacker, 1))
    kinds = {"madry": dict(adversarial="madry", attack_steps=3, attack_l2=2.0),
             "ensadv": dict(adversarial="ensadv", adv_models=[attacker / "model_last.pth"], eps=3.0)}
    for name, kind in kinds.items():
        straight = train_signet(options(tmp_path / f"{name}-straight", 2, **kind))
        train_signet(options(tmp_path / f"{name}-resumed", 1, **kind))
        train_signet(options(tmp_path / f"{name}-resumed", 2, **kind))
        for file in ("model_last.pth", "model_best.pth"):
            assert _same_weights(tmp_path / f"{name}-straight" / file, tmp_path / f"{name}-resumed" / file)
        assert _rows(tmp_path / f"{name}-straight" / "metrics.csv") == _rows(tmp_path / f"{name}-resumed" / "metrics.csv")
        checkpoint = load_checkpoint(tmp_path / f"{name}-straight" / "model_best.pth")
        assert checkpoint.num_classes == 4 and checkpoint.forgery_state is not None
        config = json.loads((tmp_path / f"{name}-straight" / "config.json").read_text())
        assert config["adversarial"]["kind"] == name and config["options"]["adversarial"] == name
        assert not _same_weights(tmp_path / f"{name}-straight" / "model_last.pth", attacker / "model_last.pth")
        assert len(straight.history) == 2
    assert "train_adv_acc" in straight.history[0]
    ensadv = json.loads((tmp_path / "ensadv-straight" / "config.json").read_text())["adversarial"]
    assert ensadv["adv_models"] == [load_checkpoint(attacker / "model_last.pth").identity()]

    # An attacker of other users is refused in one line, as is a file without a user head.
    other = tmp_path / "other"
    train_signet(TrainOptions(data_path=small_set, logdir=other, model=TINY, epochs=1, batch_size=8, device="cpu",
                              users=(0, 2)))
    result = cli("train", "--model", TINY, "--data-path", str(small_set), "--logdir", str(tmp_path / "refused"),
                 "--adversarial", "ensadv", "--adv-model", str(other / "model_last.pth"), "--device", "cpu")
    assert result.exit_code == 2 and "classifies 2 users, and this run has 4" in result.output
    assert not (tmp_path / "refused" / "config.json").exists()
    with pytest.raises(SigcliError, match="holds the input"):   # an attacker inside the run folder
        train_signet(options(attacker, 1, **kinds["ensadv"]))

"""``sig attack --system wd``: attacks on a writer-dependent verification system
(docs/adversarial.md#attacks-on-a-wd-system).

The system is the checkpoint's feature extractor (eval mode) followed by one SVM per
exploitation user, fitted exactly as ``sig wd`` fits them (one fold drawn from ``--seed``).
Each SVM's decision function is rewritten in torch (:class:`TorchSVM`), so that gradients
flow from the decision value back to the pixels. For a user ``u`` the attacked network is

    image → features → d_u(features) − threshold → logits (0, d_u − threshold)

so "accepted as u" is class 1 and the attacks of :mod:`sigcli.adversarial.attacks` apply
unchanged: a genuine signature is pushed to class 0 (Type I: the system rejects its own
writer), a skilled or random forgery to class 1 (Type II: the system accepts a forger).
Every signature is attacked once per L2 budget; a perturbation is frozen at the first step
where it succeeds, so its norm says what the attack needed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sigcli import progress
from sigcli.adversarial.attacks import l2_norms, pgd_max_l2
from sigcli.adversarial.classifier import l2_summary
from sigcli.config.attack import WD_KIND_NAMES, AttackOptions
from sigcli.data.sigset import SignatureSet
from sigcli.device import resolve_device
from sigcli.errors import InputError
from sigcli.features import FeatureSet, extract_features
from sigcli.fileio import check_output
from sigcli.models import INPUT_SIZE
from sigcli.models.checkpoint import load_checkpoint
from sigcli.options import require_users_within, save_options
from sigcli.protocols.svm import KernelSVM, fit_precomputed
from sigcli.protocols.wd import check_wd, draw_fold
from sigcli.training.data import Rows, batches, check_image_size

GENUINE, FORGERY = 1, 0   # the classes of the two-logit network


class TorchSVM(nn.Module):
    """A fitted :class:`~sigcli.protocols.svm.KernelSVM`'s decision function in torch (float64),
    differentiable in the raw features: the scaler, then the kernel expansion
    ``K(x, support vectors) @ dual_coef + intercept`` (linear or RBF).

    The features are scaled in their own dtype (float32 for a network's features) and then
    widened, as :func:`~sigcli.protocols.svm.scaled` does for libsvm, so the values equal
    ``KernelSVM.decision`` (and scikit-learn's ``decision_function``) to rounding.
    """

    def __init__(self, svm: KernelSVM, device: torch.device | str = "cpu"):
        super().__init__()
        scale = svm.scaler.scale_
        self.register_buffer("scale", torch.as_tensor(np.ones(svm.support_vectors.shape[1]) if scale is None
                                                      else scale, dtype=torch.float64, device=device))
        self.register_buffer("support_vectors", torch.as_tensor(svm.support_vectors, dtype=torch.float64,
                                                                device=device))
        self.register_buffer("dual_coef", torch.as_tensor(svm.dual_coef, dtype=torch.float64, device=device))
        self.intercept, self.kind, self.gamma = float(svm.intercept), svm.kind, float(svm.gamma)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features / self.scale.to(features.dtype)).double()
        products = scaled @ self.support_vectors.T
        if self.kind == "linear":
            kernel = products
        else:
            squared = (scaled.square().sum(1, keepdim=True) + self.support_vectors.square().sum(1)
                       - 2 * products).clamp_min(0)
            kernel = torch.exp(-self.gamma * squared)
        return kernel @ self.dual_coef + self.intercept


class WriterSystem(nn.Module):
    """Features, then one writer's SVM, as two logits ``(0, d − threshold)``: class 1 is "accepted"."""

    def __init__(self, features: nn.Module, svm: TorchSVM, threshold: float):
        super().__init__()
        self.features, self.svm, self.threshold = features, svm, threshold

    def decision(self, images: torch.Tensor) -> torch.Tensor:
        return self.svm(self.features(images).float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        margin = self.decision(images) - self.threshold
        return torch.stack([torch.zeros_like(margin), margin], 1)


def attack_wd(options: AttackOptions, reporter: progress.Reporter | None = None) -> dict:
    """Attack every exploitation user's SVM at every budget; write and return the results
    (docs/adversarial.md#results-of-a-wd-attack)."""
    started = time.perf_counter()
    save_path = Path(options.save_path)
    if save_path.suffix != ".json":
        raise InputError(f"--save-path {save_path} must end in .json", "WD attack results are written as JSON")
    check_output(save_path, overwrite=options.overwrite, inputs=(options.model_path, options.data_path))
    wd_options = options.wd_options()
    device = resolve_device(options.device)
    checkpoint = load_checkpoint(options.model_path, allow_unsafe=options.allow_unsafe_checkpoint)
    extractor = checkpoint.build_model(device).requires_grad_(False)
    sigset = SignatureSet.load(options.data_path, allow_pickle=options.allow_pickle)
    check_image_size(sigset.image_size)
    present = np.unique(sigset.y)
    for flag, users in (("--exp-users", wd_options.exp_users), ("--dev-users", wd_options.dev_users)):
        require_users_within(users, present, flag, str(options.data_path))
    in_range = [(sigset.y >= first) & (sigset.y < last) for first, last in (wd_options.exp_users, wd_options.dev_users)]
    set_rows = np.flatnonzero(in_range[0] | in_range[1])   # feature row i is signature set_rows[i]
    rows = Rows(sigset.x, set_rows, np.asarray(sigset.y)[set_rows], np.asarray(sigset.yforg)[set_rows])
    features = FeatureSet(extract_features(extractor, rows, options.batch_size, device, reporter), rows.y, rows.yforg,
                          source=checkpoint.identity())
    features.require_finite(f"the checkpoint {options.model_path}")
    exp_users, dev_users = check_wd(features, wd_options)
    fold = draw_fold(features, exp_users, dev_users, wd_options, np.random.RandomState(options.seed))

    budgets = torch.tensor(options.budgets, dtype=torch.float32)
    records = {kind: {"row": [], "user": [], "clean": [], "adversarial": [], "l2": []} for kind in options.kinds}
    with progress.resolve(reporter).task("attacking WD system", len(exp_users) * len(options.kinds)) as task:
        for index, user in enumerate(exp_users):
            training, labels = fold.training_rows(index)
            svm = fit_precomputed(features.features[training], labels, wd_options.svm_type, wd_options.svm_c,
                                  wd_options.svm_gamma, True)
            system = WriterSystem(extractor, TorchSVM(svm, device), wd_options.threshold)
            test = fold.tests[index]
            for kind in options.kinds:
                attacked = getattr(test, kind)
                clean, adversarial, norms = attack_signatures(system, rows, attacked, GENUINE if kind == "genuine"
                                                              else FORGERY, budgets, options, device)
                record = records[kind]
                record["row"] += rows.rows[attacked].tolist()
                record["user"] += [int(user)] * len(attacked)
                record["clean"] += clean.tolist()
                record["adversarial"] += adversarial.tolist()
                record["l2"] += norms.tolist()
                task.advance(1, user=int(user))

    attacks = {kind: summarise_kind(kind, record, options.budgets, wd_options.threshold)
               for kind, record in records.items()}
    result = {"command": "attack", "system": "wd", "save_path": str(save_path), "model": checkpoint.identity(),
              "budgets": list(options.budgets), "threshold": wd_options.threshold, "users": len(exp_users),
              "attacks": attacks, "seconds": time.perf_counter() - started, "device": str(device)}
    save_options(options, save_path, overwrite=options.overwrite, **result,
                 signatures={kind: record for kind, record in records.items()})
    return result


def attack_signatures(system: WriterSystem, rows: Rows, attacked: np.ndarray, label: int, budgets: torch.Tensor,
                      options: AttackOptions, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attack feature rows ``attacked`` (of ``rows``) once per budget, all budgets in one batch.

    Returns the clean decision values (n), and the adversarial ones and perturbation norms
    (n × budgets).
    """
    n, b = len(attacked), len(budgets)
    if n == 0:
        return np.empty(0), np.empty((0, b)), np.empty((0, b))
    chosen = Rows(rows.x, rows.rows[attacked], rows.y[attacked], rows.yforg[attacked])
    images = torch.empty((n, 1, *INPUT_SIZE), device=device)
    for batch in batches(chosen, np.arange(n), n, device):
        images[batch.index] = batch.x   # (a batch reads its rows in file order)
    with torch.no_grad():
        clean = system.decision(images)
    stacked = images.repeat(b, 1, 1, 1)   # budget-major: budget k is images k·n .. (k+1)·n
    max_l2 = budgets.to(device).repeat_interleave(n)
    labels = torch.full((n * b,), label, dtype=torch.long, device=device)
    decisions, norms = [], []
    for start in range(0, n * b, options.batch_size):
        part = slice(start, start + options.batch_size)
        adversarial = pgd_max_l2(system, stacked[part], labels[part], steps=options.steps, max_l2=max_l2[part],
                                 schedule=options.schedule, reduction=options.loss_reduction, stop_on_success=True)
        with torch.no_grad():
            decisions.append(system.decision(adversarial))
        norms.append(l2_norms(adversarial - stacked[part]))
    as_matrix = lambda parts: torch.cat(parts).view(b, n).T.cpu().numpy()  # noqa: E731
    return clean.cpu().numpy(), as_matrix(decisions), as_matrix(norms)


def summarise_kind(kind: str, record: dict, budgets: list[float], threshold: float) -> dict:
    """Success rate per budget among the signatures the system decided right without attack,
    and the L2 norms of the successful perturbations (``None`` where there is nothing to count)."""
    clean = np.asarray(record["clean"], dtype=np.float64)
    adversarial = np.asarray(record["adversarial"], dtype=np.float64).reshape(len(clean), len(budgets))
    norms = np.asarray(record["l2"], dtype=np.float64).reshape(len(clean), len(budgets))
    accepted_clean, accepted = clean >= threshold, adversarial >= threshold
    if kind == "genuine":
        right, fooled = accepted_clean, ~accepted
    else:
        right, fooled = ~accepted_clean, accepted
    fooled &= right[:, None]
    attacked = int(right.sum())
    stats = [l2_summary(norms[fooled[:, k], k]) for k in range(len(budgets))]
    return {"name": WD_KIND_NAMES[kind], "signatures": len(clean), "attacked": attacked,
            "clean_error": float(1 - right.mean()) if len(clean) else None,
            "successes": fooled.sum(0).tolist(),
            "success_rate": (fooled.sum(0) / attacked).tolist() if attacked else [None] * len(budgets),
            "median_l2": [s["median"] for s in stats], "mean_l2": [s["mean"] for s in stats]}

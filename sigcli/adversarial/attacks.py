"""Gradient attacks bounded in L2 norm (docs/adversarial.md#the-attacks).

Both attacks take ``forward(images) -> logits`` (e.g. features then the user classifier)
and images in [0, 1]; they return adversarial images, detached, in [0, 1]. The network is
called as it is: its train/eval mode is the caller's choice and is left untouched, and
only the perturbation's gradient is computed (no parameter gradient is accumulated).

A perturbation whose gradient or norm is zero stays zero: every division by a norm is
guarded, where the reference divides 0 by 0 and produces NaN.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]
Schedule = Literal["step", "linear"]
Reduction = Literal["sum", "mean"]

#: The linear schedule's final learning rate (the reference's ``fast`` attack).
LINEAR_FINAL_LR = 0.01
#: The step schedule multiplies the learning rate by this every quarter of the steps.
STEP_GAMMA = 0.3


def l2_norms(x: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each sample of a batch (shape ``(n,)``)."""
    return torch.linalg.vector_norm(x.flatten(1), dim=1)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.ndim - 1)))


def _safe(norms: torch.Tensor) -> torch.Tensor:
    """Norms to divide by: a zero norm (a zero vector) becomes tiny, so zero / it stays zero."""
    return norms.clamp_min(torch.finfo(norms.dtype).tiny)


def normalised(x: torch.Tensor) -> torch.Tensor:
    """Each sample divided by its L2 norm; a zero sample stays zero."""
    return x / _per_sample(_safe(l2_norms(x)), x)


def project_l2(delta: torch.Tensor, max_l2: float | torch.Tensor) -> torch.Tensor:
    """Each sample scaled down to L2 norm ``max_l2`` (a number, or one per sample) if it is longer.

    Equals the reference's ``sign(δ)·min(|δ|, |δ·max_l2/‖δ‖₂|)`` (the scale is one positive
    number per sample), without its NaN for a zero δ.
    """
    scale = (max_l2 / _safe(l2_norms(delta))).clamp(max=1.0)
    return delta * _per_sample(scale, delta)


def learning_rates(steps: int, schedule: Schedule) -> list[float]:
    """The SGD learning rate of each step, the scheduler stepping before the optimiser as in
    the reference (so step ``i`` uses the schedule's value at ``i + 1``).

    ``linear``: from 1 down to 0.01 linearly (reaching 0.01 at the last step). ``step``: 1,
    times 0.3 every ``steps // 4`` steps (every step when ``steps < 4``, where the reference's
    StepLR would divide by zero).
    """
    if schedule == "linear":
        return [(steps - t) / steps * (1 - LINEAR_FINAL_LR) + LINEAR_FINAL_LR for t in range(1, steps + 1)]
    if schedule == "step":
        period = max(1, steps // 4)
        return [STEP_GAMMA ** (t // period) for t in range(1, steps + 1)]
    raise ValueError(f"unknown schedule {schedule!r}")


def pgd_max_l2(forward: Forward, images: torch.Tensor, labels: torch.Tensor, *, steps: int,
               max_l2: float | torch.Tensor,
               schedule: Schedule = "step", targeted: bool = False, reduction: Reduction = "sum",
               stop_on_success: bool = False) -> torch.Tensor:
    """Projected gradient descent on the cross-entropy, the perturbation truncated to L2 norm
    ``max_l2`` (a number, or a tensor of one budget per image) and the image kept in [0, 1]
    after every step.

    Untargeted: the cross-entropy of the true ``labels`` is raised; targeted: that of the
    target ``labels`` lowered. ``schedule="linear"`` also normalises each sample's gradient to
    unit L2 norm (the reference's ``fast`` attack). ``reduction="sum"`` makes each image's
    attack independent of the others in its batch; ``"mean"`` (the reference) divides every
    gradient by the batch size, which matters for the ``step`` schedule only.

    ``stop_on_success`` freezes an image's perturbation at the first step where the attack
    succeeds (:func:`success` of that step's logits), so that its norm measures what the
    attack needed rather than the budget; the reference never stops.
    """
    images = images.detach()
    if torch.is_tensor(max_l2):
        max_l2 = max_l2.to(images.device, images.dtype)
    if steps < 0 or bool((torch.as_tensor(max_l2) < 0).any()):
        raise ValueError("steps and max_l2 must be >= 0")
    labels = labels.to(images.device)
    sign = 1.0 if targeted else -1.0
    delta = torch.zeros_like(images)
    done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    with torch.enable_grad():
        for lr in learning_rates(steps, schedule):
            delta.requires_grad_(True)
            logits = forward(images + delta)
            loss = sign * F.cross_entropy(logits, labels, reduction=reduction)
            (gradient,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta = delta.detach()
                if stop_on_success:
                    done |= success(logits, labels, targeted)
                    if done.all():
                        break
                if schedule == "linear":
                    gradient = normalised(gradient)
                stepped = torch.add(images, delta.add(gradient, alpha=-lr)).clamp_(0.0, 1.0).sub_(images)
                stepped = project_l2(stepped, max_l2)
                delta = torch.where(_per_sample(done, delta), delta, stepped) if stop_on_success else stepped
    return (images + delta).clamp_(0.0, 1.0)


def fgm_l2(forward: Forward, images: torch.Tensor, labels: torch.Tensor, *, eps: float,
           targeted: bool = False) -> torch.Tensor:
    """One step of L2 length ``eps`` along each image's cross-entropy gradient (the fast
    gradient method): ``clamp(x ± eps·∇CE/‖∇CE‖₂, 0, 1)``, up the cross-entropy of the true
    label, or down that of the target when ``targeted``."""
    images = images.detach()
    with torch.enable_grad():
        x = images.clone().requires_grad_(True)
        loss = F.cross_entropy(forward(x), labels.to(images.device), reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x)
    step = -eps if targeted else eps
    return (images + step * normalised(gradient)).clamp_(0.0, 1.0)


def success(logits: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """Which attacks succeeded: the prediction is the target (targeted) or is not the true label."""
    predictions = logits.argmax(1)
    return predictions == labels if targeted else predictions != labels


__all__ = ["Forward", "fgm_l2", "l2_norms", "learning_rates", "normalised", "pgd_max_l2", "project_l2", "success"]

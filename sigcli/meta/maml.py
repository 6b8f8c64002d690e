"""MAML for writer adaptation: the inner loop, one task's meta-loss, and a meta-batch of tasks.

A task is one writer: the network adapts to its support set (genuine signatures, label 1,
and random forgeries, label 0) in K SGD steps on the balanced binary cross-entropy, and is
then scored on its query set. The meta-loss is the query loss after each step, weighted by
the multi-step-loss weights of Antoniou et al. (How to train your MAML, ICLR 2019).

Everything is a function of explicit weights (:func:`torch.func.functional_call`), and the
inner gradients come from :func:`torch.func.grad`, so one task's computation runs unchanged
for a whole meta-batch under :func:`torch.func.vmap`. Second order by default: the outer
backward differentiates through the inner gradients; ``first_order`` detaches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from sigcli.meta.models import MetaNet

Weights = dict[str, torch.Tensor]
MetaBatchMode = Literal["vmap", "loop"]


def balanced_bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy in which both classes weigh one half: weight ``y/(2·n_pos) + (1−y)/(2·n_neg)``,
    summed; the plain mean when a class is absent. Branch-free, so it runs under vmap."""
    positives = y.sum()
    negatives = y.shape[-1] - positives
    both = (positives > 0) & (negatives > 0)
    balanced = y / (2 * positives.clamp_min(1)) + (1 - y) / (2 * negatives.clamp_min(1))
    weight = torch.where(both, balanced, torch.full_like(y, 1.0 / y.shape[-1]))
    return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum")


def msl_weights(steps: int, msl_epochs: int, epoch: int) -> np.ndarray:
    """Weights of the query losses after steps 1..K in 0-based ``epoch`` (multi-step loss).

    They start equal (1/K) and move linearly, over ``msl_epochs`` epochs, to the last step:
    non-final ones ``max(1/K − e/(K·m), 0.03/K)``, the final one
    ``min(1/K + e·(K−1)/(K·m), 1 − (K−1)·0.03/K)``; ``msl_epochs`` 0 weighs the last step only.
    """
    if msl_epochs == 0:
        return np.eye(steps)[-1]
    decay, floor = 1.0 / steps / msl_epochs, 0.03 / steps
    weights = np.full(steps, max(1.0 / steps - epoch * decay, floor))
    weights[-1] = min(1.0 / steps + epoch * (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return weights


class TaskLearningRates(nn.Module):
    """Learning rates of the inner loop: one per step and per weight tensor (K × tensors),
    meta-learned when ``learn`` (else fixed at ``initial``)."""

    def __init__(self, steps: int, tensors: int, initial: float, learn: bool):
        super().__init__()
        self.rates = nn.Parameter(torch.full((steps, tensors), float(initial)), requires_grad=learn)


@dataclass
class TaskOutcome:
    """What adapting to tasks gives; each tensor has a leading task dimension in a meta-batch."""

    meta_loss: torch.Tensor   # weighted query losses after each step (what meta-training minimises)
    losses: torch.Tensor      # query loss before adaptation and after each step: (K + 1,)
    accuracy: torch.Tensor    # query accuracy (logit > 0 ⇔ genuine), same layout
    logits: torch.Tensor      # query logits after the last step
    running: Weights          # batch-norm running statistics after the adaptation steps


def adapt(net: MetaNet, weights: Weights, buffers: Weights, rates: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
          *, training: bool, first_order: bool = False) -> tuple[list[Weights], Weights]:
    """Weights after each of ``len(rates)`` SGD steps on ``(x, y)``, and the running statistics after them.

    Step k: ``w ← w − rates[k, i] · ∂loss/∂w`` for the i-th weight tensor. ``training`` runs the
    steps with batch statistics and dropout (meta-training), else in eval mode (testing).
    """
    def support_loss(fast: Weights, running: Weights) -> tuple[torch.Tensor, Weights]:
        logits, running = functional_call(net, (fast, running), (x,), {"training": training, "stats": True})
        return balanced_bce(logits, y), running

    step = grad(support_loss, has_aux=True)
    fast, trace = weights, []
    for k in range(len(rates)):
        grads, buffers = step(fast, buffers)
        fast = {name: value - rates[k, i] * (grads[name].detach() if first_order else grads[name])
                for i, (name, value) in enumerate(fast.items())}
        trace.append(fast)
    return trace, buffers


def task_outcome(net: MetaNet, weights: Weights, buffers: Weights, rates: torch.Tensor, support_x: torch.Tensor,
                 support_y: torch.Tensor, query_x: torch.Tensor, query_y: torch.Tensor, loss_weights: torch.Tensor,
                 *, training: bool, first_order: bool) -> tuple:
    """One task: adapt on the support set, score the query set (in eval mode, as the reference)
    before adaptation and after each step. Returns the fields of :class:`TaskOutcome` as a tuple
    (what :func:`torch.func.vmap` maps)."""
    trace, running = adapt(net, weights, buffers, rates, support_x, support_y, training=training,
                           first_order=first_order)
    losses, accuracy = [], []
    for fast in [{name: value.detach() for name, value in weights.items()}, *trace]:
        logits = functional_call(net, (fast, running), (query_x,), {"training": False})
        losses.append(balanced_bce(logits, query_y))
        accuracy.append(((logits > 0).to(query_y.dtype) == query_y).to(logits.dtype).mean())
    meta_loss = (loss_weights * torch.stack(losses[1:])).sum()
    return meta_loss, torch.stack(losses).detach(), torch.stack(accuracy).detach(), logits.detach(), running


def run_meta_batch(net: MetaNet, rates: torch.Tensor, support_x: torch.Tensor, support_y: torch.Tensor,
                   query_x: torch.Tensor, query_y: torch.Tensor, loss_weights: torch.Tensor, *, training: bool,
                   first_order: bool, mode: MetaBatchMode,
                   gradients_of: list[torch.Tensor] | None = None) -> TaskOutcome:
    """A meta-batch of B tasks (tensors B×n×...): their outcomes, ``meta_loss`` their mean.

    ``vmap`` computes the tasks together; ``loop`` one at a time, as the reference does. With
    ``gradients_of`` in a loop (its way to need the memory of one task only), each task's
    graph is differentiated and freed at once, and ``meta_loss`` is :func:`carrying` the
    gradients of the mean with respect to those tensors.
    """
    weights, buffers = dict(net.named_parameters()), dict(net.named_buffers())
    one_task = partial(task_outcome, net, training=training, first_order=first_order)
    if mode == "vmap":
        mapped = vmap(one_task, in_dims=(None, None, None, 0, 0, 0, 0, None), randomness="different")
        meta_loss, losses, accuracy, logits, running = mapped(weights, buffers, rates, support_x, support_y, query_x,
                                                              query_y, loss_weights)
        return TaskOutcome(meta_loss.mean(), losses, accuracy, logits, running)
    outcomes, total = [], None
    for task in range(len(support_x)):
        outcome = one_task(weights, buffers, rates, support_x[task], support_y[task], query_x[task], query_y[task],
                           loss_weights)
        if gradients_of is not None:
            grads = torch.autograd.grad(outcome[0] / len(support_x), gradients_of, allow_unused=True)
            total = grads if total is None else [_add(a, b) for a, b in zip(total, grads)]
            outcome = (outcome[0].detach(), *outcome[1:])
        outcomes.append(outcome)
    meta_loss, losses, accuracy, logits = (torch.stack(parts) for parts in list(zip(*outcomes))[:4])
    running = {name: torch.stack([outcome[4][name] for outcome in outcomes]) for name in buffers}
    meta_loss = meta_loss.mean() if total is None else carrying(meta_loss.mean(), gradients_of, total)
    return TaskOutcome(meta_loss, losses, accuracy, logits, running)


def carrying(value: torch.Tensor, tensors: list[torch.Tensor], gradients: list[torch.Tensor | None]) -> torch.Tensor:
    """A scalar equal to ``value`` whose gradient with respect to ``tensors`` is ``gradients``:
    ``value + Σ⟨t, g⟩ − Σ⟨t, g⟩`` with the subtracted copy detached (zero, exactly, in value)."""
    inner = sum(((tensor * g).sum() for tensor, g in zip(tensors, gradients) if g is not None), value.new_zeros(()))
    return value.detach() + inner - inner.detach()


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b

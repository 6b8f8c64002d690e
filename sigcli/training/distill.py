"""Knowledge distillation with continual learning (PROTOCOLS §4), as an objective of the one loop.

A student learns from a frozen teacher on a distillation set D (inverted data, labels
``0..K-1``) while learning C new users from a continual set (labels ``K..K+C-1`` in its
head). Each step pairs one D batch with one C batch:

    loss = d_lamb·KL_D + c_lamb·CE_C + p_lamb·KL_P          (KL_D alone without C)

KL is KL(teacher ‖ student) on softmax(z/T), averaged over the batch, with the teacher's
K logits padded with zeros to the student's K+C columns on D (a reference quirk kept so
numbers stay comparable).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------- loss terms


def kl_teacher_student(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)), summed over classes and averaged over the batch.

    A teacher narrower than the student is padded with zero logits on the right, as the
    reference does on D (those columns then get probability ``exp(0)/Σ``, not zero). No T²
    factor. Computed in float32 so mixed precision does not change the value.
    """
    student_logits, teacher_logits = student_logits.float(), teacher_logits.float()
    missing = student_logits.shape[1] - teacher_logits.shape[1]
    if missing > 0:
        teacher_logits = F.pad(teacher_logits, (0, missing))
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(teacher_logits / temperature, dim=1), reduction="batchmean")


def distillation_loss(student_d: torch.Tensor, teacher_d: torch.Tensor, *,
                      student_c: torch.Tensor | None = None, teacher_c: torch.Tensor | None = None,
                      c_labels: torch.Tensor | None = None, d_lamb: float = 1.0, c_lamb: float = 1.0,
                      p_lamb: float = 1.7, temperature: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one step and its terms (PROTOCOLS §4).

    Parameters
    ----------
    student_d, teacher_d : (n_d, K+C) and (n_d, K) logits on the D batch.
    student_c, teacher_c : (n_c, K+C) and (n_c, K) logits on the C batch, or ``None`` for
        plain distillation (then the loss is KL_D alone, whatever ``d_lamb``).
    c_labels : (n_c,) continual labels in ``0..C-1``.
    """
    kl_d = kl_teacher_student(student_d, teacher_d, temperature)
    if student_c is None:
        return kl_d, {"kl_d": kl_d.item()}
    k = teacher_c.shape[1]
    kl_p = kl_teacher_student(student_c[:, :k], teacher_c, temperature)
    ce_c = F.cross_entropy(student_c[:, k:].float(), c_labels)
    loss = d_lamb * kl_d + c_lamb * ce_c + p_lamb * kl_p
    return loss, {"kl_d": kl_d.item(), "ce_c": ce_c.item(), "kl_p": kl_p.item()}


# ---------------------------------------------------------------------------- validation score


def validation_score(d_acc: float, c_acc: float | None) -> tuple[float, float]:
    """(score, spread): the mean of the D-val and C-val accuracies and their standard deviation.

    Without a continual set the score is the D-val accuracy and the spread 0.
    """
    if c_acc is None:
        return float(d_acc), 0.0
    return (d_acc + c_acc) / 2.0, float(np.std([d_acc, c_acc]))


def is_better_score(current: dict[str, float], best: dict[str, float] | None) -> bool:
    """Best-epoch rule: a higher score wins; an equal score wins when its spread is not larger."""
    if best is None:
        return True
    if current["score"] != best["score"]:
        return current["score"] > best["score"]
    return current["spread"] <= best["spread"]


# ---------------------------------------------------------------------------- data pairing


def paired_batches(n_c: int, c_batch_size: int, n_d: int, d_batch_size: int,
                   generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (C indices, D indices) pairs: C walked once in a random order, D drawn
    with replacement so that every step has a D batch.

    Full C batches get full D batches; the last, shorter C batch gets a D batch shortened
    in the same proportion, so with equal batch sizes D contributes exactly ``n_c`` samples
    per epoch, as in the reference (whose sampler draws ``len(C)`` D samples). Unlike the
    reference this never runs out of C batches when they are larger than D's.
    """
    steps = math.ceil(n_c / c_batch_size)
    c_order = torch.randperm(n_c, generator=generator)
    c_batches = list(c_order.split(c_batch_size))
    last_d = max(1, round(len(c_batches[-1]) * d_batch_size / c_batch_size))
    d_index = torch.randint(n_d, ((steps - 1) * d_batch_size + last_d,), generator=generator)
    d_batches = list(d_index.split(d_batch_size))
    return list(zip(c_batches, d_batches))


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of index batches over ``range(n)`` in a random order (plain distillation)."""
    return list(torch.randperm(n, generator=generator).split(batch_size))

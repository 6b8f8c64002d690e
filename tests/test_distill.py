"""`sig distill`: loss terms, data pairing, best-epoch rule, and the command end to end."""

from __future__ import annotations

import math

import pytest
import torch

from sigcli.training import distill as D

LN = math.log


# ---------------------------------------------------------------------------- loss terms

def test_kl_pads_teacher_logits_with_zeros_to_the_student_width():
    student = torch.tensor([[0.0, LN(2), 0.0]])            # softmax = 1/4, 2/4, 1/4
    teacher = torch.tensor([[LN(3), 0.0]])                  # padded to [ln3, 0, 0] -> 3/5, 1/5, 1/5
    expected = 0.6 * LN(0.6 / 0.25) + 0.2 * LN(0.2 / 0.5) + 0.2 * LN(0.2 / 0.25)
    assert D.kl_teacher_student(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_teacher_to_student_and_a_batch_mean():
    student = torch.tensor([[0.0, LN(3)], [0.0, 0.0]])     # 1/4, 3/4 ; 1/2, 1/2
    teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]])       # 1/2, 1/2 twice
    kl_teacher_student = 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)
    kl_student_teacher = 0.25 * LN(0.25 / 0.5) + 0.75 * LN(0.75 / 0.5)
    value = D.kl_teacher_student(student, teacher, 1.0).item()
    assert value == pytest.approx(kl_teacher_student / 2, rel=1e-6)   # second row adds 0, mean over 2
    assert value != pytest.approx(kl_student_teacher / 2, rel=1e-3)


def test_temperature_divides_logits_without_a_t_squared_factor():
    student = torch.tensor([[0.0, 2 * LN(3)]])
    teacher = torch.tensor([[0.0, 0.0]])
    at_t2 = D.kl_teacher_student(student, teacher, 2.0).item()
    assert at_t2 == pytest.approx(0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75), rel=1e-6)


def test_continual_loss_splits_k_teacher_and_c_new_columns():
    # K = 2 teacher users, C = 2 continual users: student columns [k0 k1 | c0 c1]
    student_c = torch.tensor([[LN(3), 0.0, LN(4), 0.0]])
    teacher_c = torch.tensor([[0.0, 0.0]])
    labels = torch.tensor([0])
    student_d = torch.tensor([[0.0, LN(2), 0.0, 0.0]])
    teacher_d = torch.tensor([[0.0, LN(2)]])                # padded -> [0, ln2, 0, 0]: KL_D = 0
    loss, parts = D.distillation_loss(student_d, teacher_d, student_c=student_c, teacher_c=teacher_c,
                                      c_labels=labels, d_lamb=3.0, c_lamb=0.5, p_lamb=1.7)
    kl_p = 0.5 * LN(0.5 / 0.75) + 0.5 * LN(0.5 / 0.25)     # teacher vs student's first K columns
    ce_c = -LN(4 / 5)                                       # last C columns, label 0
    assert parts["kl_d"] == pytest.approx(0.0, abs=1e-7)
    assert parts["kl_p"] == pytest.approx(kl_p, rel=1e-6)
    assert parts["ce_c"] == pytest.approx(ce_c, rel=1e-6)
    assert loss.item() == pytest.approx(0.5 * ce_c + 1.7 * kl_p, rel=1e-6)


def test_plain_distillation_is_kl_d_alone_whatever_d_lamb():
    student = torch.tensor([[0.0, LN(3)]])
    teacher = torch.tensor([[0.0, 0.0]])
    loss, parts = D.distillation_loss(student, teacher, d_lamb=5.0)
    assert set(parts) == {"kl_d"}
    assert loss.item() == pytest.approx(0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75), rel=1e-6)


def test_loss_backpropagates_to_the_student_only():
    student = torch.zeros(2, 4, requires_grad=True)
    teacher = torch.randn(2, 2)
    loss, _ = D.distillation_loss(student, teacher, student_c=student * 2, teacher_c=teacher,
                                  c_labels=torch.tensor([1, 0]))
    loss.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


# ---------------------------------------------------------------------------- score and tie-break

def test_score_is_the_mean_and_spread_the_population_std():
    assert D.validation_score(0.8, 0.6) == pytest.approx((0.7, 0.1))
    assert D.validation_score(0.9, None) == (0.9, 0.0)


@pytest.mark.parametrize("current, best, expected", [
    ((0.70, 0.10), None, True),                 # first epoch is always best
    ((0.71, 0.30), (0.70, 0.00), True),         # higher score wins whatever the spread
    ((0.69, 0.00), (0.70, 0.10), False),        # lower score loses whatever the spread
    ((0.70, 0.05), (0.70, 0.10), True),         # tie: smaller spread replaces
    ((0.70, 0.10), (0.70, 0.10), True),         # tie: equal spread replaces (<=)
    ((0.70, 0.20), (0.70, 0.10), False),        # tie: larger spread does not
])
def test_best_epoch_rule(current, best, expected):
    as_metrics = lambda pair: None if pair is None else {"score": pair[0], "spread": pair[1]}
    assert D.is_better_score(as_metrics(current), as_metrics(best)) is expected


# ---------------------------------------------------------------------------- data pairing

@pytest.mark.parametrize("n_c, c_bs, n_d, d_bs", [(10, 4, 7, 4), (10, 8, 50, 2), (9, 3, 5, 6), (1, 32, 3, 32)])
def test_pairing_walks_c_once_with_one_d_batch_per_step(n_c, c_bs, n_d, d_bs):
    pairs = D.paired_batches(n_c, c_bs, n_d, d_bs, torch.Generator().manual_seed(0))
    assert len(pairs) == math.ceil(n_c / c_bs)
    assert sorted(torch.cat([c for c, _ in pairs]).tolist()) == list(range(n_c))
    d_all = torch.cat([d for _, d in pairs])
    assert all(len(d) >= 1 for _, d in pairs) and int(d_all.max()) < n_d
    assert all(len(d) == d_bs for _, d in pairs[:-1])


def test_pairing_with_equal_batch_sizes_draws_len_c_d_samples_with_replacement():
    pairs = D.paired_batches(100, 8, 5, 8, torch.Generator().manual_seed(1))
    d_all = torch.cat([d for _, d in pairs])
    assert len(d_all) == 100 and len(d_all.unique()) == 5           # replacement: 100 draws of 5
    again = D.paired_batches(100, 8, 5, 8, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(pairs, again))

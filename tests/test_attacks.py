"""The attacks of sigcli.adversarial.attacks on tiny networks and small images."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sigcli.adversarial.attacks import fgm_l2, l2_norms, learning_rates, pgd_max_l2, project_l2, success
from training_data import one_thread  # noqa: F401 (an autouse fixture)

SHAPE = (1, 12, 16)
CLASSES = 5


def tiny_classifier(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 5 * 7, CLASSES))
    return net.to(dtype).eval()


def batch(n: int = 6, seed: int = 1, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand((n, *SHAPE), generator=generator, dtype=dtype),
            torch.randint(0, CLASSES, (n,), generator=generator))


def unrolled_reference(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int, max_l2: float,
                       fast: bool, targeted: bool, reduction: str) -> torch.Tensor:
    """The reference's PGD_max_l2_truncate written out with torch's own optimiser and schedulers."""
    multiplier = 1 if targeted else -1
    delta = torch.zeros_like(inputs, requires_grad=True)
    optimizer = torch.optim.SGD([delta], lr=1)
    if fast:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: (steps - i) / steps * 0.99 + 0.01)
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps // 4, gamma=0.3)
    with warnings.catch_warnings():  # the reference steps the scheduler before the optimiser
        warnings.simplefilter("ignore")
        for _ in range(steps):
            scheduler.step()
            loss = multiplier * F.cross_entropy(model(inputs + delta), labels, reduction=reduction)
            optimizer.zero_grad()
            loss.backward()
            if fast:
                delta.grad.div_(delta.grad.view(len(delta), -1).norm(p=2, dim=1).view(-1, 1, 1, 1))
            optimizer.step()
            new_delta = torch.clamp(inputs + delta, 0, 1) - inputs
            normalised = new_delta * max_l2 / new_delta.view(len(new_delta), -1).norm(dim=1).view(-1, 1, 1, 1)
            delta.data.copy_(torch.min(new_delta.abs(), normalised.abs()) * torch.sign(new_delta))
    return (inputs + delta).detach()


@pytest.mark.parametrize("schedule, reduction, targeted", [("step", "mean", False), ("step", "sum", False),
                                                           ("linear", "mean", True), ("linear", "sum", False)])
def test_pgd_equals_the_unrolled_reference_loop(schedule, reduction, targeted):
    model = tiny_classifier()
    images, labels = batch()
    ours = pgd_max_l2(model, images, labels, steps=12, max_l2=1.5, schedule=schedule, targeted=targeted,
                      reduction=reduction)
    reference = unrolled_reference(model, images, labels, 12, 1.5, schedule == "linear", targeted, reduction)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    assert not torch.equal(ours, images)


def test_learning_rates_follow_the_reference_schedulers():
    assert learning_rates(8, "step") == pytest.approx([1, 0.3, 0.3, 0.09, 0.09, 0.027, 0.027, 0.0081])
    linear = learning_rates(4, "linear")
    assert linear == pytest.approx([0.7525, 0.505, 0.2575, 0.01])
    assert len(learning_rates(3, "step")) == 3  # fewer than 4 steps: no division by zero


def test_sum_reduction_makes_an_attack_independent_of_its_batch():
    model = tiny_classifier()
    images, labels = batch(6)
    together = pgd_max_l2(model, images, labels, steps=8, max_l2=2.0, schedule="step")
    alone = torch.cat([pgd_max_l2(model, images[i:i + 1], labels[i:i + 1], steps=8, max_l2=2.0, schedule="step")
                       for i in range(len(images))])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-12)
    meaned = pgd_max_l2(model, images, labels, steps=8, max_l2=2.0, schedule="step", reduction="mean")
    assert not torch.allclose(meaned, together)


@pytest.mark.parametrize("schedule", ["step", "linear"])
@pytest.mark.parametrize("max_l2", [0.0, 0.05, 3.0, 50.0])
def test_the_l2_bound_and_the_box_always_hold(schedule, max_l2):
    model = tiny_classifier(seed=3, dtype=torch.float32)
    images, labels = batch(8, seed=4, dtype=torch.float32)
    images[0] = 0.0  # black and white images: the box is active from the first step
    images[1] = 1.0
    adversarial = pgd_max_l2(model, images, labels, steps=10, max_l2=max_l2, schedule=schedule)
    assert torch.isfinite(adversarial).all()
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert (l2_norms(adversarial - images) <= max_l2 * (1 + 1e-5) + 1e-6).all()


@pytest.mark.parametrize("schedule", ["step", "linear"])
def test_a_zero_gradient_leaves_the_image_unchanged_and_finite(schedule):
    images, labels = batch(3)

    def constant(x: torch.Tensor) -> torch.Tensor:  # logits that do not depend on the image
        return x.flatten(1)[:, :CLASSES] * 0.0

    adversarial = pgd_max_l2(constant, images, labels, steps=6, max_l2=1.0, schedule=schedule)
    assert torch.equal(adversarial, images)
    assert torch.equal(fgm_l2(constant, images, labels, eps=1.0), images)


def test_project_l2_scales_long_perturbations_only():
    delta = torch.zeros(3, 1, 2, 2, dtype=torch.float64)
    delta[1] = 0.1
    delta[2, 0, 0, 0], delta[2, 0, 1, 1] = 3.0, -4.0
    projected = project_l2(delta, 1.0)
    assert torch.equal(projected[:2], delta[:2])
    torch.testing.assert_close(projected[2], delta[2] / 5)


@pytest.mark.parametrize("targeted", [False, True])
def test_fgm_equals_the_formula(targeted):
    model = tiny_classifier()
    images, labels = batch()
    x = images.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    direction = gradient / gradient.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    expected = (images + (-0.7 if targeted else 0.7) * direction).clamp(0, 1)
    torch.testing.assert_close(fgm_l2(model, images, labels, eps=0.7, targeted=targeted), expected,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("schedule", ["step", "linear"])
def test_targeted_attacks_reach_their_target(schedule):
    model = tiny_classifier(seed=5)
    images, labels = batch(10, seed=6)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    targets = (predicted + 1 + labels % (CLASSES - 1)) % CLASSES  # never the current prediction
    adversarial = pgd_max_l2(model, images, targets, steps=60, max_l2=10.0, schedule=schedule, targeted=True)
    with torch.no_grad():
        assert success(model(adversarial), targets, targeted=True).all()
        assert not success(model(images), targets, targeted=True).any()


def test_untargeted_attacks_change_the_prediction_and_leave_the_model_alone():
    model = tiny_classifier(seed=7).train()
    images, _ = batch(10, seed=8)
    with torch.no_grad():
        labels = model(images).argmax(1)
    adversarial = pgd_max_l2(model, images, labels, steps=40, max_l2=10.0, schedule="linear")
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert success(model(adversarial), labels, targeted=False).float().mean() >= 0.9


def test_stop_on_success_keeps_the_first_successful_perturbation():
    model = tiny_classifier(seed=7)
    images, _ = batch(10, seed=9)
    with torch.no_grad():
        labels = model(images).argmax(1)
    full = pgd_max_l2(model, images, labels, steps=30, max_l2=8.0, schedule="linear")
    stopped = pgd_max_l2(model, images, labels, steps=30, max_l2=8.0, schedule="linear", stop_on_success=True)
    with torch.no_grad():
        fooled = success(model(stopped), labels, targeted=False)
    assert fooled.float().mean() >= 0.9
    assert (l2_norms(stopped - images)[fooled] < l2_norms(full - images)[fooled]).all()

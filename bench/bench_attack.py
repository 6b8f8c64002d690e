"""Benchmark of the attacks (sigcli.adversarial.attacks): PGD steps per second.

One PGD step is a forward and backward pass of the attacked network (features + user
classifier) through a batch of images, then the update and the projections of the
perturbation. Three ways of running the same steps, interleaved:

- ``ceiling``: forward, cross-entropy and the gradient with respect to the images only,
  nothing else: the most any attack loop reaches;
- ``ours``: :func:`sigcli.adversarial.attacks.pgd_max_l2` (step schedule);
- ``reference``: a plain port of the reference's loop (docs/adversarial.md#differences-from-the-reference):
  an SGD optimiser and a StepLR scheduler on the perturbation, ``loss.backward()`` (which
  also computes every parameter's gradient), then the box clamp and the L2 truncation
  written with sign / abs / min, and ``delta.data.copy_``.

A way's step time is (time of 1 + ``steps`` steps − time of 1 step) / ``steps`` (set-up and
warm-up left out), the fastest of ``rounds`` rounds run in rotating order (robust to other
load on a shared machine). Rows: ``ratio`` = reference / ours (speed-up), ``ceiling`` =
reference / bare gradient, ``of_ceiling`` = bare gradient / ours, ``image_steps_per_s`` =
batch / step time of each way.

Run: ``python -m bench.bench_attack [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from sigcli.adversarial.attacks import pgd_max_l2
from bench.networks import against_reference, best_times, classifier, sync
from sigcli.models import INPUT_SIZE

K = 20
MAX_L2 = 5.0


def run(quick: bool, device: str = "cpu") -> list[dict]:
    dev = torch.device(device)
    batch, steps, rounds = (8, 3, 2) if quick else (32, 5, 3)
    rows = []
    for arch in (["tiny"] if quick else ["tiny", "signet"]):
        model = _network(arch).to(dev)
        images = torch.rand(batch, 1, *INPUT_SIZE, generator=torch.Generator().manual_seed(0)).pow(8).to(dev)
        labels = (torch.arange(batch) % K).to(dev)
        ways = {"ceiling": _ceiling, "ours": _ours, "reference": _reference}
        best = best_times({name: lambda way=way: [_per_step(way, model, images, labels, steps, dev)]
                           for name, way in ways.items()}, rounds)
        rows.append({
            "step": f"PGD step, {arch} network, {dev.type}",
            "work": f"batch {batch}, {K} classes, {rounds}×{steps} steps",
            **against_reference(best),
            "image_steps_per_s": {name: round(batch / s, 1) for name, s in best.items()},
            "threads": torch.get_num_threads(),
        })
    return rows


def _network(arch: str) -> nn.Module:
    """Feature extractor + K-way head in eval mode, parameters trainable (as the reference finds them)."""
    torch.manual_seed(0)
    return classifier(arch, K).eval()


def _per_step(way, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
              device: torch.device) -> float:
    """(time of 1 + ``steps`` steps − time of 1 step) / ``steps``; a first call warms up."""
    seconds = []
    for count in (1, 1, steps + 1):
        sync(device)
        start = time.perf_counter()
        way(model, images, labels, count)
        sync(device)
        seconds.append(time.perf_counter() - start)
    return (seconds[2] - seconds[1]) / steps


def _ceiling(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
    x = images.clone().requires_grad_(True)
    for _ in range(steps):
        (gradient,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)


def _ours(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
    pgd_max_l2(model, images, labels, steps=steps, max_l2=MAX_L2, schedule="step")


def _reference(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
    """The reference's PGD_max_l2_truncate.attack, untargeted, without ``fast``."""
    import warnings

    delta = torch.zeros_like(images, requires_grad=True)
    optimizer = torch.optim.SGD([delta], lr=1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 4), gamma=0.3)
    with warnings.catch_warnings():   # it steps the scheduler before the optimiser
        warnings.simplefilter("ignore")
        for _ in range(steps):
            scheduler.step()
            loss = -1 * F.cross_entropy(model(images + delta), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            new_delta = torch.clamp(images + delta, 0, 1) - images
            norms = (new_delta.view(new_delta.shape[0], -1) ** 2).sum(1).sqrt()
            normalised = new_delta * MAX_L2 / norms.view(-1, 1, 1, 1)
            new_delta = torch.min(torch.abs(new_delta), torch.abs(normalised)) * torch.sign(new_delta)
            delta.data.copy_(new_delta)
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(run(args.quick, args.device), indent=2))


if __name__ == "__main__":
    main()

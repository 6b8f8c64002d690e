"""Benchmark of `sig invert`: inversion steps per second against the teacher's ceiling.

One inversion step is a forward and backward pass of the teacher (and, with competition,
of a student) through a batch of images, plus the loss terms and an Adam step on the
images. Three ways of running the same steps, interleaved:

- ``ceiling``: the bare teacher: forward, cross-entropy, backward to the images, Adam step
  (no batch-norm hooks, priors, shifts or clamping): the most any inversion loop reaches;
- ``ours``: :func:`sigcli.invert.invert_batch`;
- ``reference``: the loop of the DeepInversion authors' code, adapted to one channel and
  [0, 1] images (per-layer hooks computing the variance through permute/contiguous/view,
  four-direction total variation, ``loss.item()`` and a best-loss copy at every step).

A way's step time is the mean over ``steps`` steps (after a warm-up step), the fastest of
``rounds`` rounds run in rotating order (robust to other load on a shared machine). Rows: ``ratio`` = reference / ours (speed-up), ``ceiling`` = reference / bare
teacher, ``of_ceiling`` = bare teacher / ours; ``images_per_s`` = image-steps per second
(batch / step time), ``steps_per_s`` = batch steps per second of each way (``ours``
against ``ceiling``, the bare teacher's forward and backward, in the same run) and
``finished_images_per_s`` = images completed per second at the default number of iterations.

Run: ``python -m bench.bench_invert [--quick] [--arch tiny|signet] [--device cuda] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from sigcli.config.invert import InversionSettings
from sigcli.invert import batch_generator, invert_batch
from bench.networks import against_reference, best_times, classifier, sync
from sigcli.models import INPUT_SIZE

K = 20


def run(quick: bool, device: str = "cpu", archs: list[str] | None = None) -> list[dict]:
    dev = torch.device(device)
    batch, steps, rounds = (8, 3, 2) if quick else (32, 5, 3)
    rows = []
    for arch in archs or (["tiny"] if quick else ["tiny", "signet"]):
        for competition in (False, True):
            teacher = _network(arch, seed=1).to(dev)
            student = _network(arch, seed=2).to(dev) if competition else None
            ways = {"ceiling": _ceiling, "ours": _ours, "reference": _reference}
            best = best_times({name: lambda way=way: way(teacher, student, batch, steps, dev)
                               for name, way in ways.items()}, rounds)
            iterations = InversionSettings().iterations
            rows.append({
                "step": f"inversion step, {arch} teacher{' + student (competition)' if competition else ''}, {dev.type}",
                "work": f"batch {batch}, {K} classes, {rounds}×{steps} steps",
                **against_reference(best),
                "steps_per_s": {name: round(1 / s, 3) for name, s in best.items()},
                "images_per_s": {name: round(batch / s, 1) for name, s in best.items()},
                "finished_images_per_s": round(batch / (best["ours"] * iterations), 3),
                "default_iterations": iterations,
                "threads": torch.get_num_threads(),
            })
    return rows


def _network(arch: str, seed: int) -> nn.Module:
    """Feature extractor + K-way head in eval mode: SigNet, or a tiny conv/BN net (a small teacher)."""
    torch.manual_seed(seed)
    model = classifier(arch, K)
    # running statistics of something image-like rather than the initial 0/1
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 1, *INPUT_SIZE).pow(8))
    return model.eval()


def _timed_steps(step, steps: int, device: torch.device) -> list[float]:
    """The mean duration of ``steps`` calls of ``step`` after one warm-up call."""
    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return [(time.perf_counter() - start) / steps]


def _ceiling(teacher: nn.Module, student: nn.Module | None, batch: int, steps: int, device: torch.device) -> list[float]:
    teacher.requires_grad_(False)
    images = torch.rand(batch, 1, *INPUT_SIZE, device=device, requires_grad=True)
    targets = torch.arange(batch, device=device) % K
    optimiser = torch.optim.Adam([images], lr=0.05)

    def step() -> None:
        loss = F.cross_entropy(teacher(images), targets)
        if student is not None:
            loss = loss + student(images).logsumexp(1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return _timed_steps(step, steps, device)


def _ours(teacher: nn.Module, student: nn.Module | None, batch: int, steps: int, device: torch.device) -> list[float]:
    """(time of 1 + steps iterations − time of 1 iteration) / steps: the set-up, the first
    (warm-up) step and the final classification are left out, as in the other ways."""
    seconds = []
    for iterations in (1, 1, steps + 1):  # the first call warms up
        settings = InversionSettings(iterations=iterations, batch_size=batch)
        start = time.perf_counter()
        invert_batch(teacher, torch.arange(batch) % K, settings, batch_generator(0, 0), student=student,
                     device=device)
        sync(device)
        seconds.append(time.perf_counter() - start)
    return [(seconds[2] - seconds[1]) / steps]


class _ReferenceHook:
    """The authors' statistics hook (CIFAR code), unchanged in substance."""

    def __init__(self, module: nn.Module):
        self.hook = module.register_forward_hook(self.hook_fn)

    def hook_fn(self, module, inputs, output):
        x = inputs[0]
        nch = x.shape[1]
        if x.ndim == 4:
            mean = x.mean([0, 2, 3])
            var = x.permute(1, 0, 2, 3).contiguous().view([nch, -1]).var(1, unbiased=False)
        else:
            mean = x.mean(0)
            var = x.var(0, unbiased=False)
        self.r_feature = torch.norm(module.running_var.data - var, 2) + torch.norm(module.running_mean.data - mean, 2)


def _reference(teacher: nn.Module, student: nn.Module | None, batch: int, steps: int,
               device: torch.device) -> list[float]:
    teacher.requires_grad_(False)
    hooks = [_ReferenceHook(m) for m in teacher.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    images = torch.rand(batch, 1, *INPUT_SIZE, device=device, requires_grad=True)
    targets = torch.arange(batch, device=device) % K
    optimiser = torch.optim.Adam([images], lr=0.05, betas=(0.5, 0.9))
    kl = nn.KLDivLoss(reduction="batchmean")
    state = {"best_cost": 1e6, "best": None}

    def step() -> None:
        off = torch.randint(-8, 9, (2,)).tolist()
        jittered = torch.roll(images, shifts=tuple(off), dims=(2, 3))
        optimiser.zero_grad()
        outputs = teacher(jittered)
        loss = F.cross_entropy(outputs, targets)
        if student is not None:
            p = F.softmax(student(jittered) / 3.0, dim=1)
            q = F.softmax(outputs / 3.0, dim=1)
            m = (0.5 * (p + q)).clamp(0.01, 0.99)
            js = 0.5 * kl(torch.log(p.clamp(0.01, 0.99)), m) + 0.5 * kl(torch.log(q.clamp(0.01, 0.99)), m)
            loss = loss + 1.0 - torch.clamp(js, 0.0, 1.0)
        d1 = jittered[:, :, :, :-1] - jittered[:, :, :, 1:]
        d2 = jittered[:, :, :-1, :] - jittered[:, :, 1:, :]
        d3 = jittered[:, :, 1:, :-1] - jittered[:, :, :-1, 1:]
        d4 = jittered[:, :, :-1, :-1] - jittered[:, :, 1:, 1:]
        loss = loss + 1e-4 * (torch.norm(d1) + torch.norm(d2) + torch.norm(d3) + torch.norm(d4))
        loss = loss + 0.05 * sum(h.r_feature for h in hooks)
        loss = loss + 1e-4 * torch.norm(jittered, 2)
        if state["best_cost"] > loss.item():
            state["best_cost"], state["best"] = loss.item(), images.data.clone()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            images.clamp_(0, 1)

    try:
        return _timed_steps(step, steps, device)
    finally:
        for h in hooks:
            h.hook.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny teacher only, few steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--arch", choices=["tiny", "signet"], action="append",
                        help="teacher(s) to time (default: tiny with --quick, else both)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for row in run(args.quick, args.device, args.arch):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

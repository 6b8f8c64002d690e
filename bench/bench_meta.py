"""Benchmark of `sig meta`: one meta-training step (a meta-batch of tasks), three ways, and its memory.

The same step (second-order MAML, K inner SGD steps on each task's support set, the
multi-step query loss, backward, gradients clipped by value, Adam) on the same meta-batch
of random 150×220 images, three ways, each in a fresh process, interleaved ``rounds`` times
in the same run:

- ``vmap`` (ours, :func:`sigcli.meta.maml.run_meta_batch` with ``mode="vmap"``): the tasks
  of the meta-batch computed together (:func:`torch.func.vmap` over
  :func:`torch.func.grad`), one backward;
- ``loop`` (ours, ``mode="loop"``): one task at a time, each task's graph differentiated and
  freed at once (``--meta-batch-mode loop``, and ``auto`` on a CPU; memory of one task);
- ``reference``: the reference's step (sigver's ``MAML.meta_learning_step``): per task,
  ``torch.autograd.grad(create_graph=True)`` on a dict of weights, ``loss.backward()``, then the
  gradients divided by the meta-batch size.

A way's step time is its fastest step over all rounds (the first step of each process left
out: it pays for vmap's and the allocator's warm-up). ``ratio`` = reference / vmap
(speed-up); ``loop_ratio`` = reference / loop. ``cpu_s`` and ``cpu_ratio``: the same with the
CPU time the process used (user + system, all threads), which other load on a shared
machine does not inflate. Memory of a meta-batch: the peak resident
memory of the process during its steps minus before them (CPU, from getrusage), or the peak
of torch's CUDA allocator; ``mem_ratio`` = vmap's / reference's. ``estimate_mb`` is what
``--meta-batch-mode auto`` estimates for the meta-batch (:func:`sigcli.meta.train.task_bytes`).

Run: ``python -m bench.bench_meta [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_STEP_RUN = r"""
import json, resource, sys, time
import torch
import torch.nn.functional as F
from torch.func import functional_call
from sigcli.meta.maml import TaskLearningRates, balanced_bce, msl_weights, run_meta_batch
from sigcli.meta.models import build

way, architecture, tasks, support, query, steps, repeats, device = json.loads(sys.argv[1])
device = torch.device(device)
torch.manual_seed(0)
net = build(architecture).to(device)
rates = TaskLearningRates(steps, len(list(net.parameters())), 1e-3, learn=True).to(device).rates
params = [*net.parameters(), rates]
optimizer = torch.optim.Adam(params, lr=1e-3)
g = torch.Generator().manual_seed(1)
support_x = torch.rand(tasks, support, 1, 150, 220, generator=g).to(device)
query_x = torch.rand(tasks, query, 1, 150, 220, generator=g).to(device)
support_y = (torch.arange(support) < support // 2).float().repeat(tasks, 1).to(device)
query_y = (torch.arange(query) < query // 3).float().repeat(tasks, 1).to(device)
loss_weights = torch.tensor(msl_weights(steps, 15, 0), dtype=torch.float32, device=device)


def reference_step():
    # sigver's MAML.meta_learning_step: tasks one by one, create_graph=True, backward per task
    weights = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    def query_loss(w, task):
        return balanced_bce(functional_call(net, (w, buffers), (query_x[task],), {"training": False}), query_y[task])

    for task in range(tasks):
        fast, trace = weights, []
        for k in range(steps):
            logits = functional_call(net, (fast, buffers), (support_x[task],), {"training": True})
            grads = torch.autograd.grad(balanced_bce(logits, support_y[task]), list(fast.values()), create_graph=True)
            fast = {name: w - rates[k, i] * gr for i, ((name, w), gr) in enumerate(zip(fast.items(), grads))}
            trace.append(fast)
        query_loss(weights, task).item()   # the pre-update loss the reference monitors
        sum(loss_weights[k] * query_loss(w, task) for k, w in enumerate(trace)).backward()
    for p in params:
        p.grad.div_(tasks)


def our_step(mode):
    outcome = run_meta_batch(net, rates, support_x, support_y, query_x, query_y, loss_weights, training=True,
                             first_order=False, mode=mode, gradients_of=params if mode == "loop" else None)
    outcome.meta_loss.backward()


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
durations, cpu = [], []
for _ in range(repeats + 1):
    sync()
    start, start_cpu = time.perf_counter(), time.process_time()
    optimizer.zero_grad(set_to_none=True)
    reference_step() if way == "reference" else our_step(way)
    torch.nn.utils.clip_grad_value_(params, 10)
    optimizer.step()
    sync()
    durations.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
if device.type == "cuda":
    peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
print(json.dumps({"durations": durations[1:], "cpu": cpu[1:], "memory_mb": peak}))
"""


def run(quick: bool, device: str = "cpu") -> list[dict]:
    """Quick: SmallCNN, 4 tasks of 3 + 3 signatures to adapt on and 4 + 2 + 2 to score, K = 1.
    Full: the reference's tasks (5 + 10, 10 + 10 + 10), K = 1; SigNet too on a GPU."""
    if quick:
        cases = [("smallcnn", 4, 6, 8, 1)]
    else:
        cases = [("smallcnn", 4, 15, 30, 1)]
        if device.startswith("cuda"):
            cases.append(("signet", 4, 15, 30, 1))
    rounds, repeats = (1, 2) if quick else (2, 3)
    return [_case(*case, rounds, repeats, device) for case in cases]


def _case(architecture: str, tasks: int, support: int, query: int, steps: int, rounds: int, repeats: int,
          device: str) -> dict:
    ways = ("vmap", "loop", "reference")
    durations: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    memory: dict[str, float] = {way: 0.0 for way in ways}
    for _ in range(rounds):
        for way in ways:
            args = json.dumps([way, architecture, tasks, support, query, steps, repeats, device])
            out = subprocess.run([sys.executable, "-c", _STEP_RUN, args], capture_output=True, text=True, check=True)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            durations[way] += measured["durations"]
            cpu[way] += measured["cpu"]
            memory[way] = max(memory[way], measured["memory_mb"])
    step = {way: min(values) for way, values in durations.items()}
    cpu_step = {way: min(values) for way, values in cpu.items()}
    return {"step": f"meta-batch step ({architecture}, second order)",
            "work": f"{tasks} tasks × ({support} support + {query} query) 150×220, K={steps}, {device}",
            "ours_s": round(step["vmap"], 3), "baseline_s": round(step["reference"], 3),
            "ratio": round(step["reference"] / step["vmap"], 2), "ceiling": None,
            "loop_s": round(step["loop"], 3), "loop_ratio": round(step["reference"] / step["loop"], 2),
            "cpu_s": {way: round(value, 3) for way, value in cpu_step.items()},
            "cpu_ratio": round(cpu_step["reference"] / cpu_step["vmap"], 2),
            "memory_mb": {way: round(value, 1) for way, value in memory.items()},
            "mem_ratio": round(memory["vmap"] / max(memory["reference"], 1e-9), 2),
            "estimate_mb": round(_estimate(architecture, tasks, support, query, steps) / 2 ** 20, 1),
            "note": "ratio: reference / vmap; loop_ratio: reference / loop; memory: peak during the steps"}


def _estimate(architecture: str, tasks: int, support: int, query: int, steps: int) -> int:
    from sigcli.meta.learner import MetaLearner
    from sigcli.meta.tasks import TaskSizes
    from sigcli.meta.train import task_bytes

    learner = MetaLearner.new(architecture, steps, 1e-3, True, {})
    sizes = TaskSizes(support // 2, support - support // 2, query // 3, query - query // 3, 0)
    return tasks * task_bytes(learner, sizes, first_order=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for row in run(args.quick, args.device):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

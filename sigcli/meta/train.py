"""``sig meta``: meta-train a writer-adaptable network on the loop of ``sig train``, then test it.

Meta-training is an objective of :func:`sigcli.training.loop.fit` (its run folder, best and
last checkpoints, metrics.csv, config.json, resume, Ctrl-C and the run-folder lock): an
epoch visits every meta-training writer once, in meta-batches of ``meta_batch_size`` tasks;
a step's loss is the meta-batch's mean multi-step query loss, its gradients are clipped by
value at 10 and applied by Adam, whose learning rate anneals along a cosine from
``meta_lr`` to ``meta_min_lr`` over the epochs. Each epoch adapts to the validation writers
(in eval mode) and keeps the epoch with the best query accuracy after the last step.

Optional supervised pre-training runs first, as its own ``sig train`` run (the SigNet or
SigNet-F objective of :mod:`sigcli.training.supervised`) in ``LOGDIR/pretrain``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from sigcli.config.meta import DEFAULT_META_MODEL, MetaOptions
from sigcli.config.training import Schedule, TrainOptions
from sigcli.data.sigset import SignatureSet, canvas_of
from sigcli.errors import InputError
from sigcli.fileio import LOCK_NAME, sha256_of
from sigcli.meta.evaluate import accuracy_summary, adapt_tasks, check_test_sizes, evaluate_folds
from sigcli.meta.learner import MetaLearner
from sigcli.meta.maml import MetaBatchMode, msl_weights, run_meta_batch, task_outcome
from sigcli.meta.models import FeatureView, build, load_signet_features
from sigcli.meta.tasks import TaskBatch, TaskSizes, WriterPool, draw_tasks, read_tasks
from sigcli.models import registered
from sigcli.models.checkpoint import load_checkpoint
from sigcli.progress import Reporter
from sigcli.results import check_results_path, save_results
from sigcli.training.data import check_image_size, set_digest
from sigcli.training.loop import CONFIG, RUN_FILES, FitResult, fit, init_distributed
from sigcli.training.supervised import train_signet

log = logging.getLogger(__name__)

#: Outer-loop gradient values are clipped to ±this (the reference's).
GRAD_CLIP = 10.0
#: Share of a GPU's free memory a vmapped meta-batch may take (``--meta-batch-mode auto``).
MEMORY_SHARE = 0.5
#: The reference's supervised pre-training: SGD lr 0.01 without decay, weight decay 1e-3, batches of 32.
PRETRAIN = {"lr": 0.01, "lr_decay_times": 1, "weight_decay": 1e-3, "batch_size": 32}
PRETRAIN_FOLDER = "pretrain"
#: Keys of a checkpoint's ``seen_writers``.
TRAINED, VALIDATED = "meta-trained", "validated"


class MetaObjective:
    """Meta-training as an objective of :func:`~sigcli.training.loop.fit` (one batch = one meta-batch)."""

    def __init__(self, learner: MetaLearner, x: np.ndarray, pool: WriterPool, val_tasks: np.ndarray,
                 sizes: TaskSizes, options: MetaOptions, device: torch.device, mode: MetaBatchMode):
        self.learner, self.x, self.pool, self.val_tasks, self.sizes = learner, x, pool, val_tasks, sizes
        self.options, self.device, self.mode = options, device, mode
        self.nets = {"net": learner.net, "task_lr": learner.rates}
        self.loss_weights = torch.ones(learner.num_updates) / learner.num_updates

    def modules(self) -> dict[str, torch.nn.Module]:
        return self.nets

    def optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.options.meta_lr)

    def learning_rate(self, epoch: int) -> float:
        """Cosine annealing from ``meta_lr`` to ``meta_min_lr`` over the epochs (torch's
        ``CosineAnnealingLR`` stepped once per epoch, in closed form)."""
        low, high = self.options.meta_min_lr, self.options.meta_lr
        return low + (high - low) * (1 + math.cos(math.pi * epoch / self.options.epochs)) / 2

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[TaskBatch]:
        """The writers in a random order, each one's task drawn from this epoch's generator."""
        self.loss_weights = torch.tensor(msl_weights(self.learner.num_updates, self.options.msl_epochs, epoch),
                                         dtype=torch.float32, device=self.device)
        task_seed, crop_seed = torch.randint(0, 2 ** 31 - 1, (2,), generator=generator).tolist()
        rng = np.random.RandomState(task_seed)
        tasks = draw_tasks(self.pool, rng.permutation(len(self.pool)), self.sizes, rng)
        return read_tasks(self.x, tasks, self.sizes, self.options.meta_batch_size, self.device,
                          torch.Generator().manual_seed(crop_seed), self.learner.net.spec["input_size"])

    def num_train_batches(self) -> int:
        return -(-len(self.pool) // self.options.meta_batch_size)

    def train_step(self, batch: TaskBatch) -> tuple[torch.Tensor, dict[str, float]]:
        net = self.learner.net
        trained = [p for module in self.nets.values() for p in module.parameters() if p.requires_grad]
        outcome = run_meta_batch(net, self.learner.rates.rates, batch.support_x, batch.support_y, batch.query_x,
                                 batch.query_y, self.loss_weights, training=True, first_order=self.options.first_order,
                                 mode=self.mode, gradients_of=trained if self.mode == "loop" else None)
        with torch.no_grad():   # each task's running statistics after its steps, averaged over the tasks
            for name, buffer in net.named_buffers():
                buffer.copy_(outcome.running[name].mean(0))
        accuracy = outcome.accuracy.mean(0)
        return outcome.meta_loss, {"loss": outcome.meta_loss.item(), "acc": accuracy[-1].item(),
                                   "acc_before": accuracy[0].item(), "query_loss": outcome.losses[:, -1].mean().item()}

    def validate(self) -> dict[str, float]:
        """Query loss and accuracy of the validation writers after adaptation (the same tasks every epoch)."""
        adapted = adapt_tasks(self.learner, self.x, self.val_tasks, self.sizes, self.options.meta_batch_size,
                              self.device, self.mode)
        accuracy, loss = adapted.accuracy.mean(0), adapted.loss.mean(0)
        steps = {f"acc_step{k}": float(accuracy[k]) for k in range(1, len(accuracy) - 1)}
        return {"loss": float(loss[-1]), "acc": float(accuracy[-1]), "acc_before": float(accuracy[0]), **steps,
                "score": float(accuracy[-1])}

    def is_better(self, current: dict[str, float], best: dict[str, float] | None) -> bool:
        return best is None or current["score"] > best["score"]   # the reference keeps the first of equals

    def save_checkpoint(self, path: Path) -> None:
        self.learner.save(path)


@dataclass
class MetaResult:
    """What ``sig meta`` did: the training run (if any), the test (if any) and where it went."""

    fit: FitResult | None = None
    folds: list[dict] | None = None
    query_accuracy: np.ndarray | None = None   # folds × (K + 1): before adaptation, after each step
    paths: dict[str, Path] = field(default_factory=dict)
    mode: str = ""


def run_meta(options: MetaOptions, reporter: Reporter | None = None) -> MetaResult:
    """Meta-train (unless ``options.test``), then test on ``options.exp_users`` if given."""
    info = init_distributed(options.device)
    if info.world_size > 1:
        raise InputError("sig meta runs in one process", "run it without torchrun")
    sigset = SignatureSet.load(options.data_path, allow_pickle=options.allow_pickle)
    check_image_size(sigset.image_size)
    sizes = TaskSizes(options.num_gen, options.num_rf, options.num_gen_test, options.num_rf_test, options.num_sk_test)
    source = str(options.data_path)
    test_pool = None
    if options.exp_users is not None:
        check_test_sizes(sizes)
        test_pool = WriterPool.select(sigset, options.exp_users, "--exp-users", sizes, source)
    save_path = options.save_path or (options.logdir / "results.pkl" if test_pool is not None else None)
    # A resumed run writes its results where it would have; --overwrite would start the training over.
    replace_results = options.overwrite or (options.resume and options.save_path is None)
    inputs = [options.data_path, options.model_path, options.checkpoint]
    if save_path is not None:
        check_results_path(save_path, replace_results, inputs=inputs)
    result = MetaResult()
    if options.test:
        learner = _checked_learner(options.checkpoint, options)
        _refuse_trained_writers(learner, options.exp_users)
    else:
        result.fit = _meta_train(options, sigset, sizes, info.device, reporter, result)
        learner = MetaLearner.load(result.fit.paths["best"])   # test the best epoch, as the reference
    if test_pool is None:
        return result
    learner.net.to(info.device)
    learner.rates.to(info.device)
    result.mode = result.mode or choose_mode(options, learner, sizes, info.device)
    result.folds, result.query_accuracy = evaluate_folds(learner, sigset.x, test_pool, sizes, options.folds,
                                                         options.seed, options.meta_batch_size, info.device,
                                                         result.mode, reporter)
    provenance = {"data": {"path": str(options.data_path), "sha256": sha256_of(options.data_path)}}
    if options.test:
        provenance["checkpoint"] = {"path": str(options.checkpoint), "sha256": sha256_of(options.checkpoint)}
    result.paths["results"], result.paths["summary"] = save_results(
        result.folds, save_path, options, "meta", provenance, overwrite=replace_results,
        query_accuracy=accuracy_summary(result.query_accuracy), architecture=learner.net.architecture)
    return result


def _meta_train(options: MetaOptions, sigset: SignatureSet, sizes: TaskSizes, device: torch.device,
                reporter: Reporter | None, result: MetaResult) -> FitResult:
    source = str(options.data_path)
    train_pool = WriterPool.select(sigset, options.dev_users, "--dev-users", sizes, source)
    val_pool = WriterPool.select(sigset, options.val_users, "--val-users", sizes, source)
    torch.manual_seed(options.seed)
    if options.checkpoint is not None:
        learner = _checked_learner(options.checkpoint, options)
    else:
        learner = MetaLearner.new(options.model or DEFAULT_META_MODEL, options.num_updates, options.train_lr,
                                  options.learn_task_lr, {})
    for role, users in ((TRAINED, options.dev_users), (VALIDATED, options.val_users)):
        learner.seen_writers.setdefault(role, []).append(list(users))
    if options.model_path is not None:
        load_signet_features(learner.net, load_checkpoint(options.model_path, model="signet",
                                                          allow_unsafe=options.allow_unsafe_checkpoint))
    _require_free_logdir(options.logdir)
    if options.pretrain_epochs:
        pretrain(learner, options, reporter)
    val_tasks = draw_tasks(val_pool, np.arange(len(val_pool)), sizes, np.random.RandomState(options.seed))
    learner.net.to(device)
    learner.rates.to(device)
    resume = options.resume and _holds_run(options.logdir)
    # A resumed run computes its meta-batches as it started to (dropout draws differ between the two).
    result.mode = (resume and _recorded_mode(options) or choose_mode(options, learner, sizes, device))
    objective = MetaObjective(learner, sigset.x, train_pool, val_tasks, sizes, options, device, result.mode)
    schedule = Schedule(epochs=options.epochs, lr=options.meta_lr, grad_clip=GRAD_CLIP, seed=options.seed,
                        device=options.device, amp=options.amp)
    data = {"path": source, "fingerprint": set_digest(sigset), "dev_writers": len(train_pool),
            "val_writers": len(val_pool)}
    canvas = canvas_of(options.data_path)
    return fit(objective, schedule, options.logdir, resume=resume,
               overwrite=options.overwrite, options=options,
               inputs=[options.data_path, options.model_path, options.checkpoint],
               extra_config={"data": data, "meta_batch_mode": result.mode, "architecture": learner.net.architecture,
                             "canvases": [canvas.as_dict()] if canvas else []},
               reporter=reporter, companions=(PRETRAIN_FOLDER,))


def pretrain(learner: MetaLearner, options: MetaOptions, reporter: Reporter | None) -> FitResult:
    """Supervised pre-training of the meta-learner's features on the meta-training writers:
    ``sig train``'s own run (SigNet, or SigNet-F with ``pretrain_forg``) in ``LOGDIR/pretrain``,
    with the reference's settings; meta-training starts from its last epoch, as in the reference."""
    name = f"meta-{learner.net.architecture}"
    view = FeatureView(learner.net)
    folder = options.logdir / PRETRAIN_FOLDER
    with registered(name, lambda: view):
        return train_signet(TrainOptions(
            data_path=options.data_path, logdir=folder, model=name, users=options.dev_users,
            forg=options.pretrain_forg, lamb=options.pretrain_forg_lambda, epochs=options.pretrain_epochs,
            seed=options.seed, device=options.device, amp=options.amp, resume=options.resume and _holds_run(folder),
            overwrite=options.overwrite, allow_pickle=options.allow_pickle, **PRETRAIN), reporter)


def choose_mode(options: MetaOptions, learner: MetaLearner, sizes: TaskSizes, device: torch.device) -> MetaBatchMode:
    """``--meta-batch-mode``; ``auto`` is vmap on a GPU when a meta-batch's estimated memory fits
    in :data:`MEMORY_SHARE` of its free memory, else the loop (one task at a time). On a CPU
    the loop is faster as well as smaller (bench/bench_meta.py: 1.2× the vmap's speed, a
    quarter of its memory): batching tasks saves kernel launches, which a CPU does not pay."""
    if options.meta_batch_mode != "auto":
        return options.meta_batch_mode
    if device.type != "cuda":
        return "loop"
    needed = options.meta_batch_size * task_bytes(learner, sizes, options.first_order)
    mode = "vmap" if needed <= MEMORY_SHARE * free_memory(device) else "loop"
    log.debug("a meta-batch needs about %.1f GiB: %s", needed / 2 ** 30, mode)
    return mode


def task_bytes(learner: MetaLearner, sizes: TaskSizes, first_order: bool) -> int:
    """Bytes of every tensor that one meta-training task computes, counted on the meta device
    (no memory, no arithmetic): an upper bound of what its graph keeps alive."""
    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Count.total += sum(t.numel() * t.element_size() for t in tree_flatten(out)[0]
                               if isinstance(t, torch.Tensor))
            return out

    with torch.device("meta"):
        net = build(learner.net.architecture, learner.net.spec)
        rates = torch.empty_like(learner.rates.rates, device="meta")
        support = torch.empty(sizes.support, 1, *net.spec["input_size"])
        query = torch.empty(sizes.query, 1, *net.spec["input_size"])
        with Count():
            task_outcome(net, dict(net.named_parameters()), dict(net.named_buffers()), rates, support,
                         torch.empty(sizes.support), query, torch.empty(sizes.query), torch.empty(len(rates)),
                         training=True, first_order=first_order)
    return Count.total


def free_memory(device: torch.device) -> int:
    """Free bytes on a CUDA ``device``."""
    return torch.cuda.mem_get_info(device)[0]


def _checked_learner(path: Path, options: MetaOptions) -> MetaLearner:
    learner = MetaLearner.load(path, options.model)
    if learner.num_updates != options.num_updates:
        raise InputError(f"--checkpoint {path} adapts in {learner.num_updates} steps (its learning rates are per "
                         f"step), not --num-updates {options.num_updates}",
                         f"give --num-updates {learner.num_updates}")
    return learner


def _refuse_trained_writers(learner: MetaLearner, exp_users: tuple[int, int]) -> None:
    """Testing on writers the meta-learner was trained or validated on would flatter it."""
    (a0, a1) = exp_users
    for role, ranges in learner.seen_writers.items():
        for b0, b1 in ranges:
            if max(a0, b0) < min(a1, b1):
                raise InputError(f"--exp-users {a0} {a1} overlaps the writers the checkpoint was {role} on "
                                 f"({b0} {b1})", "test on writers it has not seen")


def _recorded_mode(options: MetaOptions) -> MetaBatchMode | None:
    """The meta-batch mode ``auto`` chose when the run in ``--logdir`` started, if it says."""
    if options.meta_batch_mode != "auto":
        return None
    try:
        return json.loads((options.logdir / CONFIG).read_text()).get("meta_batch_mode")
    except (OSError, ValueError, AttributeError):
        return None


def _holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_FILES)


def _require_free_logdir(logdir: Path) -> None:
    """Refuse at once a --logdir that the training run would refuse, before pre-training spends time."""
    present = set(p.name for p in logdir.iterdir()) - {LOCK_NAME, PRETRAIN_FOLDER} if logdir.is_dir() else set()
    if present and not present & set(RUN_FILES):
        raise InputError(f"--logdir {logdir} holds other files ({', '.join(sorted(present)[:3])}), not a run of sig",
                         "give a new or empty --logdir")

"""Adapting a meta-learner to writers and scoring them: validation, and the test protocol.

Test protocol (the reference's): ``folds`` repetitions drawn from one
``np.random.RandomState(seed)``; in each, every test writer in ascending order gets a task
(:mod:`sigcli.meta.tasks`, centre crops), the network adapts to its support set in K steps
in eval mode, and the logits of its query set after the last step are the scores of its
genuine signatures, random forgeries and skilled forgeries. A fold's metrics are those of
``sig wd`` at threshold 0 (:func:`sigcli.metrics.fold_results`), so the results file is the
WD one and ``sig report`` compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sigcli import progress
from sigcli.errors import InputError
from sigcli.meta.learner import MetaLearner
from sigcli.meta.maml import MetaBatchMode, run_meta_batch
from sigcli.meta.tasks import GENUINE, RANDOM, SKILLED, TaskSizes, WriterPool, draw_tasks, read_tasks
from sigcli.metrics import fold_results
from sigcli.progress import Reporter

#: Decision threshold of the test's FRR and FAR: the logit's sign, as the reference decides.
THRESHOLD = 0.0


@dataclass
class Adaptation:
    """Query results of adapted tasks: logits after the last step (tasks × query) and, per task,
    the query accuracy and loss before adaptation and after each step (tasks × (K + 1))."""

    logits: np.ndarray
    accuracy: np.ndarray
    loss: np.ndarray


@torch.no_grad()
def adapt_tasks(learner: MetaLearner, x: np.ndarray, tasks: np.ndarray, sizes: TaskSizes, tasks_per_batch: int,
                device: torch.device, mode: MetaBatchMode) -> Adaptation:
    """Adapt to each task of ``tasks`` (rows) in eval mode, centre crops, and score its query set.

    The inner gradients come from :func:`torch.func.grad`, which works under ``no_grad``:
    nothing of the outer graph is kept.
    """
    rates = learner.rates.rates
    last_step = torch.eye(learner.num_updates, device=device)[-1]
    logits, accuracy, loss = [], [], []
    for batch in read_tasks(x, tasks, sizes, tasks_per_batch, device, input_size=learner.net.spec["input_size"]):
        outcome = run_meta_batch(learner.net, rates, batch.support_x, batch.support_y, batch.query_x, batch.query_y,
                                 last_step, training=False, first_order=True, mode=mode)
        logits.append(outcome.logits.float().cpu().numpy())
        accuracy.append(outcome.accuracy.float().cpu().numpy())
        loss.append(outcome.losses.float().cpu().numpy())
    return Adaptation(np.concatenate(logits), np.concatenate(accuracy), np.concatenate(loss))


def check_test_sizes(sizes: TaskSizes) -> None:
    """The test's metrics need skilled forgeries (EER, AUC) and random ones (FAR random)."""
    if sizes.num_sk_test < 1:
        raise InputError("the test scores skilled forgeries (EER and AUC need them), and --num-sk-test is 0",
                         "give --num-sk-test 1 or more")
    if sizes.num_rf_test < 1:
        raise InputError("the test scores random forgeries (FAR random needs them), and --num-rf-test is 0",
                         "give --num-rf-test 1 or more")


def evaluate_folds(learner: MetaLearner, x: np.ndarray, pool: WriterPool, sizes: TaskSizes, folds: int, seed: int,
               tasks_per_batch: int, device: torch.device, mode: MetaBatchMode,
               reporter: Reporter | None = None) -> tuple[list[dict], np.ndarray]:
    """The results of every fold (the WD results format) and the mean query accuracy of each
    fold's writers before adaptation and after each step (folds × (K + 1))."""
    check_test_sizes(sizes)
    rng = np.random.RandomState(seed)
    kinds = sizes.query_kinds()
    results, accuracy = [], []
    with progress.resolve(reporter).task("meta: adapting to the test writers", folds * len(pool)) as task:
        for fold in range(folds):
            tasks = draw_tasks(pool, np.arange(len(pool)), sizes, rng)
            adapted = adapt_tasks(learner, x, tasks, sizes, tasks_per_batch, device, mode)
            scores = [(row[kinds == GENUINE], row[kinds == RANDOM], row[kinds == SKILLED]) for row in adapted.logits]
            results.append(fold_results(scores, THRESHOLD))
            accuracy.append(adapted.accuracy.mean(axis=0))
            task.advance(len(pool), fold=f"{fold + 1}/{folds}")
    return results, np.stack(accuracy)


def accuracy_summary(per_fold: np.ndarray) -> dict:
    """Query accuracy before adaptation and after each step, mean ± std over folds, for the JSON summary."""
    def stats(values: np.ndarray) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    return {"before_adaptation": stats(per_fold[:, 0]),
            "after_step": [{"step": k, **stats(per_fold[:, k])} for k in range(1, per_fold.shape[1])],
            "per_fold": per_fold.tolist()}

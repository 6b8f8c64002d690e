"""Tasks of meta-learning: one writer's support set (to adapt on) and query set (to score).

A task for writer u of a pool of writers (the meta-training, validation or test writers):

- u's genuine signatures, shuffled: the first ``num_gen`` go to the support set (label 1),
  the next ``num_gen_test`` to the query set (label 1);
- ``num_rf + num_rf_test`` other writers of the pool, distinct, and one genuine signature
  of each: the first ``num_rf`` are the support set's random forgeries (label 0), the rest
  the query set's;
- the first ``num_sk_test`` of u's skilled forgeries, shuffled, end the query set (label 0).

Draws are the reference's calls in its order (``shuffle``, ``choice(others, n,
replace=False)``, ``choice(rows, 1)`` per other writer, ``shuffle``) on one seeded
``np.random.RandomState``; other writers are taken in ascending order. Images are read as
the training batches of ``sig train`` are (:func:`sigcli.training.data.batches`): random
150×220 crops from a seeded generator when meta-training, centre crops otherwise, /255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from sigcli.data.sigset import SignatureSet
from sigcli.errors import InputError
from sigcli.models import INPUT_SIZE
from sigcli.options import require_users_within, users_text
from sigcli.training.data import Rows, batches

#: Kinds of query signatures (``TaskBatch.query_kind``).
GENUINE, RANDOM, SKILLED = 0, 1, 2


@dataclass(frozen=True)
class TaskSizes:
    """How many signatures of each kind a task holds (the reference's ``--num-*`` options)."""

    num_gen: int
    num_rf: int
    num_gen_test: int
    num_rf_test: int
    num_sk_test: int

    @property
    def support(self) -> int:
        return self.num_gen + self.num_rf

    @property
    def query(self) -> int:
        return self.num_gen_test + self.num_rf_test + self.num_sk_test

    def support_labels(self) -> np.ndarray:
        return np.repeat(np.float32([1, 0]), [self.num_gen, self.num_rf])

    def query_kinds(self) -> np.ndarray:
        return np.repeat([GENUINE, RANDOM, SKILLED], [self.num_gen_test, self.num_rf_test, self.num_sk_test])


@dataclass
class WriterPool:
    """Writers of a user range, ascending, with the rows of their genuine signatures and skilled forgeries."""

    users: np.ndarray
    genuine: list[np.ndarray]
    skilled: list[np.ndarray]

    @classmethod
    def select(cls, sigset: SignatureSet, first_last: tuple[int, int], flag: str, sizes: TaskSizes,
               source: str) -> "WriterPool":
        """The writers of ``[first, last)`` in ``sigset``, checked to make tasks of ``sizes``.

        A writer with fewer genuine signatures or skilled forgeries than a task takes, or a
        range with fewer other writers than a task's random forgeries, is one line.
        """
        first, last = first_last
        present = np.unique(sigset.y)
        require_users_within(first_last, present, flag, source)
        users = present[(present >= first) & (present < last)]
        if len(users) == 0:
            raise InputError(f"{flag} {first} {last}: no writers of {source} are in this range",
                             f"it has {users_text(list(present))}")
        genuine = _rows_by_user(sigset, users, 0)
        skilled = _rows_by_user(sigset, users, 1)
        s = sizes
        _require(users, genuine, s.num_gen + s.num_gen_test, "genuine signatures",
                 f"--num-gen {s.num_gen} + --num-gen-test {s.num_gen_test}", flag)
        if s.num_sk_test:
            _require(users, skilled, s.num_sk_test, "skilled forgeries", f"--num-sk-test {s.num_sk_test}", flag)
        others = s.num_rf + s.num_rf_test
        if len(users) - 1 < others:
            raise InputError(f"{flag} {first} {last} holds {len(users)} writers, but each task takes its random "
                             f"forgeries from --num-rf {s.num_rf} + --num-rf-test {s.num_rf_test} = {others} others",
                             f"give a range of at least {others + 1} writers, or lower --num-rf / --num-rf-test")
        return cls(users, genuine, skilled)

    def __post_init__(self) -> None:
        self.all_genuine = np.concatenate(self.genuine)
        self.genuine_count = np.array([len(rows) for rows in self.genuine])
        self.genuine_start = np.cumsum(self.genuine_count) - self.genuine_count

    def __len__(self) -> int:
        return len(self.users)


def _rows_by_user(sigset: SignatureSet, users: np.ndarray, kind: int) -> list[np.ndarray]:
    """Per user, its rows of ``kind`` (0 genuine, 1 skilled) in ascending order."""
    rows = np.flatnonzero(np.isin(sigset.y, users) & (sigset.yforg == kind))
    rows = rows[np.argsort(sigset.y[rows], kind="stable")]
    return np.split(rows, np.cumsum(np.bincount(np.searchsorted(users, sigset.y[rows]), minlength=len(users)))[:-1])


def _require(users: np.ndarray, rows: list[np.ndarray], needed: int, what: str, why: str, flag: str) -> None:
    counts = np.array([len(r) for r in rows])
    short = np.flatnonzero(counts < needed)
    if len(short):
        more = f" (and {len(short) - 1} more writers)" if len(short) > 1 else ""
        raise InputError(f"writer {int(users[short[0]])} of {flag} has {counts[short[0]]} {what}{more}; "
                         f"a task takes {why} = {needed}",
                         f"lower those options, or choose {flag} among writers with enough")


def draw_task(pool: WriterPool, index: int, sizes: TaskSizes, rng: np.random.RandomState) -> np.ndarray:
    """Rows of the task of the pool's ``index``-th writer: support set, then query set."""
    genuine = pool.genuine[index].copy()
    rng.shuffle(genuine)
    others = rng.choice(np.delete(np.arange(len(pool)), index), sizes.num_rf + sizes.num_rf_test, replace=False)
    # One genuine of each: the reference's choice(rows, 1) per writer, drawn as one randint (the same stream).
    forgeries = pool.all_genuine[pool.genuine_start[others] + rng.randint(0, pool.genuine_count[others])]
    skilled = pool.skilled[index].copy()
    if sizes.num_sk_test:
        rng.shuffle(skilled)
    g, rf = sizes.num_gen, sizes.num_rf
    return np.concatenate([genuine[:g], forgeries[:rf], genuine[g:g + sizes.num_gen_test], forgeries[rf:],
                           skilled[:sizes.num_sk_test]])


def draw_tasks(pool: WriterPool, order: np.ndarray, sizes: TaskSizes, rng: np.random.RandomState) -> np.ndarray:
    """Rows of the tasks of the writers at ``order`` (tasks × signatures), drawn in that order."""
    return np.stack([draw_task(pool, int(index), sizes, rng) for index in order]) if len(order) else \
        np.empty((0, sizes.support + sizes.query), dtype=np.int64)


@dataclass
class TaskBatch:
    """Tensors of B tasks: support and query images (B×n×1×150×220) and labels (B×n, 1 genuine)."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    query_kind: np.ndarray   # (query,) GENUINE / RANDOM / SKILLED, the same for every task

    def __len__(self) -> int:
        return len(self.support_x)


def read_tasks(x: np.ndarray, tasks: np.ndarray, sizes: TaskSizes, tasks_per_batch: int,
               device: torch.device | str = "cpu", crops: torch.Generator | None = None,
               input_size: tuple[int, int] = INPUT_SIZE) -> Iterator[TaskBatch]:
    """The images of ``tasks`` (rows, tasks × signatures), ``tasks_per_batch`` tasks at a time,
    read ahead in a background thread; random ``input_size`` crops drawn from ``crops``, else
    centre crops."""
    per_task = sizes.support + sizes.query
    flat = tasks.reshape(-1)
    rows = Rows(x, flat, np.zeros(len(flat), dtype=np.int64), np.zeros(len(flat), dtype=np.int64))
    support_y = torch.from_numpy(sizes.support_labels()).to(device)
    query_y = torch.from_numpy((sizes.query_kinds() == GENUINE).astype(np.float32)).to(device)
    for batch in batches(rows, np.arange(len(flat)), tasks_per_batch * per_task, device, generator=crops,
                         input_size=input_size):
        order = torch.from_numpy(np.argsort(batch.index, kind="stable")).to(batch.x.device)
        images = batch.x[order].reshape(-1, per_task, *batch.x.shape[1:])   # back to task order
        count = len(images)
        yield TaskBatch(images[:, :sizes.support], support_y.expand(count, -1), images[:, sizes.support:],
                        query_y.expand(count, -1), sizes.query_kinds())

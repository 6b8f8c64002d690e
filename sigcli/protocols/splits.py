"""Random draws of the WD and WI protocols (docs/evaluation.md), in the reference's exact order.

Every function takes the one ``np.random.RandomState`` of a run, shared by all folds, and
calls it exactly as the reference tools do (``shuffle``, ``choice(..., replace=False)``,
``choice(a)``, ``randint``) on arrays of the same length and order, so the same seed draws
the same splits. Users are always visited in ascending order. Indices returned are rows
of the feature set the caller passed ``y`` / ``yforg`` of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TestDraw:
    """Rows scored for one exploitation user: genuines, skilled and random forgeries."""

    genuine: np.ndarray
    skilled: np.ndarray
    random: np.ndarray


def genuine_rows(y: np.ndarray, yforg: np.ndarray, user: int) -> np.ndarray:
    return np.flatnonzero((y == user) & (yforg == 0))


def skilled_rows(y: np.ndarray, yforg: np.ndarray, user: int) -> np.ndarray:
    return np.flatnonzero((y == user) & (yforg == 1))


def shuffled_genuines(y: np.ndarray, yforg: np.ndarray, users: np.ndarray,
                      rng: np.random.RandomState) -> list[np.ndarray]:
    """Per user (ascending), its genuine rows shuffled in place by ``rng.shuffle``."""
    shuffled = []
    for user in users:
        rows = genuine_rows(y, yforg, user)
        rng.shuffle(rows)
        shuffled.append(rows)
    return shuffled


def head_tail(shuffled: list[np.ndarray], n_head: int, n_tail: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``n_head`` (training or reference) and last ``n_tail`` (test) of each user's shuffle."""
    return [rows[:n_head] for rows in shuffled], [rows[len(rows) - n_tail:] for rows in shuffled]


def dev_negatives(y: np.ndarray, yforg: np.ndarray, dev_users: np.ndarray, n: int,
                  rng: np.random.RandomState) -> np.ndarray:
    """``n`` distinct genuine rows of every development user, concatenated (WD step 2)."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([rng.choice(genuine_rows(y, yforg, user), n, replace=False) for user in dev_users])


def exp_negatives(train: list[np.ndarray], n: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Per exploitation user, ``n`` distinct training genuines of every other one (WD step 2).

    ``train[i]`` holds user i's training rows in their shuffled order.
    """
    if n == 0:
        return [np.empty(0, dtype=np.int64) for _ in train]
    return [np.concatenate([rng.choice(train[other], n, replace=False)
                            for other in range(len(train)) if other != user])
            for user in range(len(train))]


def sampled_tests(test_genuines: list[np.ndarray], skilled: list[np.ndarray], n: int,
                  rng: np.random.RandomState) -> list[TestDraw]:
    """Sampled test sets (Viana 2024), drawn user by user.

    Per user: ``n`` of its skilled forgeries, a permutation of ``n`` of its test genuines,
    ``n`` other users and one test genuine of each as random forgeries.
    """
    users = np.arange(len(test_genuines))
    draws = []
    for user in users:
        chosen_skilled = rng.choice(skilled[user], n, replace=False)
        chosen_genuine = rng.choice(test_genuines[user], n, replace=False)
        others = rng.choice(np.delete(users, user), n, replace=False)
        chosen_random = np.array([rng.choice(test_genuines[other]) for other in others], dtype=np.int64)
        draws.append(TestDraw(chosen_genuine, chosen_skilled, chosen_random))
    return draws


def full_tests(test_genuines: list[np.ndarray], skilled: list[np.ndarray]) -> list[TestDraw]:
    """Full test sets (Hafemann 2017): every test genuine of the other users is a random forgery."""
    draws = []
    for user in range(len(test_genuines)):
        others = [rows for other, rows in enumerate(test_genuines) if other != user]
        random = np.concatenate(others) if others else np.empty(0, dtype=np.int64)
        draws.append(TestDraw(test_genuines[user], skilled[user], random))
    return draws


def wi_training_pairs(kept: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pairs ``(a, b)`` and labels of the WI training set (docs/evaluation.md#draws-of-one-wi-fold, step 3).

    ``kept`` is U×g: each development user's kept genuine rows in shuffled order. Positives
    (label 1): every pair ``j < k`` of a user's g genuines, ordered by j then k. Negatives
    (label -1): per user i, ``g // 2`` distinct other users j, and per j one random genuine
    among its first g − 1, paired with each of i's first g − 1 genuines.
    """
    n_users, g = kept.shape
    first, second = np.triu_indices(g, k=1)
    pos_a, pos_b = kept[:, second].ravel(), kept[:, first].ravel()
    neg_a, neg_b = [], []
    for user in range(n_users):
        for other in rng.choice(np.delete(np.arange(n_users), user), g // 2, replace=False):
            neg_a.append(kept[user, :g - 1])
            neg_b.append(np.full(g - 1, kept[other, rng.randint(g - 1)]))
    a = np.concatenate([pos_a, *neg_a])
    b = np.concatenate([pos_b, *neg_b])
    labels = np.concatenate([np.ones(len(pos_a)), np.full(len(a) - len(pos_a), -1.0)])
    return a, b, labels

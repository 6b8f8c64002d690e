"""Calibrated operating points of a WI classifier (docs/evaluation.md#calibrated-operating-points).

``sig wi --save-model`` scores held-out signatures of the development users with the saved
(first fold's) classifier, as ``sig verify`` scores a writer's queries, and keeps the
threshold of each operating point with the error rates it gives there; ``sig verify
--operating-point`` picks one. The development users are the classifier's own data, never
the exploitation users whose results ``sig wi`` reports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from sigcli import progress
from sigcli.config.evaluation import WIOptions
from sigcli.config.verify import FAR_TARGETS
from sigcli.errors import InputError
from sigcli.metrics import equal_error_rate, rates_at, threshold_at_far
from sigcli.progress import Reporter
from sigcli.protocols.splits import genuine_rows, skilled_rows

FORGERY_KINDS = ("skilled", "random")


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the error rates it gives on the calibration scores (``None``: no such forgeries)."""

    name: str
    threshold: float
    frr: float
    far_skilled: float | None
    far_random: float | None


@dataclass(frozen=True)
class Calibration:
    """The operating points of a classifier and the counts of scores they were calibrated on."""

    points: dict[str, OperatingPoint]
    users: int        # development users that gave genuine queries
    references: int   # references per user
    genuine: int      # scores of each kind, pooled over the users
    skilled: int
    random: int

    def as_dict(self) -> dict:
        """Builtins only, as the WI classifier file stores it."""
        record = asdict(self)
        record["points"] = [asdict(point) for point in self.points.values()]
        return record

    @classmethod
    def from_dict(cls, record: Any) -> "Calibration":
        """A calibration read back from a classifier file; anything :meth:`as_dict` never writes is refused."""
        counts = {key: record.get(key) if isinstance(record, dict) else None
                  for key in ("users", "references", "genuine", "skilled", "random")}
        if not all(isinstance(value, int) and value >= 0 for value in counts.values()) \
                or not isinstance(record.get("points"), list):
            raise InputError("its calibration is not the record 'sig wi --save-model' writes")
        points = {}
        for entry in record["points"]:
            try:
                point = OperatingPoint(**entry)
            except TypeError:
                raise InputError(f"its calibration holds an operating point {entry!r} 'sig wi' never writes") from None
            rates = (point.frr, point.far_skilled, point.far_random)
            if not isinstance(point.name, str) or not _finite(point.threshold) \
                    or not all(rate is None or (_finite(rate) and 0 <= rate <= 1) for rate in rates) \
                    or point.frr is None:
                raise InputError(f"its calibrated operating point {point.name!r} holds a threshold or rates that "
                                 "are not finite numbers (rates within 0..1)")
            points[point.name] = point
        return cls(points, **counts)


def calibrate_wi(score: Callable[[np.ndarray, np.ndarray], np.ndarray], features: np.ndarray, y: np.ndarray,
                 yforg: np.ndarray, dev_users: np.ndarray, kept: np.ndarray, options: WIOptions,
                 reporter: Reporter | None = None) -> Calibration | None:
    """Operating points of a classifier on the development users' held-out signatures; ``None``
    when no development user has a genuine signature beyond the ``--gen-for-train`` the
    classifier was trained on. ``score(queries, references)`` gives the fused scores of
    query features against one writer's reference features.

    ``kept`` holds each development user's training genuines (row i: ``dev_users[i]``), in
    the order of the fold's shuffle. Per user u: references are the first ``--gen-for-ref``
    of them; genuine queries are u's other genuines, skilled forgeries u's own, random
    forgeries one held-out genuine of each of the next users, ``--gen-for-test`` of each kind
    at most (docs/evaluation.md#calibrated-operating-points).
    """
    n = options.gen_for_test
    held_out = [np.setdiff1d(genuine_rows(y, yforg, user), rows) for user, rows in zip(dev_users, kept)]
    givers = [index for index, rows in enumerate(held_out) if len(rows)]
    if not givers:
        return None
    references = min(options.gen_for_ref, kept.shape[1])
    scores: dict[str, list[np.ndarray]] = {"genuine": [], "skilled": [], "random": []}
    with progress.resolve(reporter).task("wi: calibrating thresholds", len(givers)) as task:
        for position, index in enumerate(givers):
            others = [givers[(position + step) % len(givers)] for step in range(1, min(n, len(givers) - 1) + 1)]
            queries = {"genuine": held_out[index][:n], "skilled": skilled_rows(y, yforg, dev_users[index])[:n],
                       "random": np.array([held_out[other][0] for other in others], dtype=np.int64)}
            for kind, rows in queries.items():
                if len(rows):
                    scores[kind].append(score(features[rows], features[kept[index][:references]]))
            task.advance(1)
    genuine, skilled, random = (np.concatenate(scores[kind]) if scores[kind] else np.empty(0)
                                for kind in ("genuine", "skilled", "random"))
    return Calibration(operating_points(genuine, skilled, random), len(givers), references,
                       len(genuine), len(skilled), len(random))


def operating_points(genuine: np.ndarray, skilled: np.ndarray, random: np.ndarray) -> dict[str, OperatingPoint]:
    """``boundary`` (0, the SVM's), then ``eer`` and ``far=α`` for each target FAR against
    skilled forgeries, and the same prefixed ``random:`` against random forgeries (where there
    are such scores), each with FRR and both FARs at its threshold."""
    forgeries = dict(zip(FORGERY_KINDS, (skilled, random)))
    names, thresholds = ["boundary"], [0.0]
    for kind, scores in forgeries.items():
        if len(scores):
            prefix = "" if kind == "skilled" else f"{kind}:"
            names += [f"{prefix}eer", *(f"{prefix}far={far!r}" for far in FAR_TARGETS)]
            thresholds += [equal_error_rate(genuine, scores)[1], *(threshold_at_far(scores, far)
                                                                   for far in FAR_TARGETS)]
    far = {kind: rates_at(genuine, scores, thresholds)[0] if len(scores) else [None] * len(thresholds)
           for kind, scores in forgeries.items()}
    _, frr = rates_at(genuine, skilled if len(skilled) else random, thresholds)
    return {name: OperatingPoint(name, float(threshold), float(frr[i]), _rate(far["skilled"][i]),
                                 _rate(far["random"][i]))
            for i, (name, threshold) in enumerate(zip(names, thresholds))}


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

"""Knowledge distillation with continual learning (docs/training.md), as an objective of the one loop.

A student learns from a frozen teacher on a distillation set D (inverted data, labels
``0..K-1``) while learning C new users from a continual set (labels ``K..K+C-1`` in its
head). Each step pairs one D batch with one C batch:

    loss = d_lamb·KL_D + c_lamb·CE_C + p_lamb·KL_P          (KL_D alone without C)

KL is KL(teacher ‖ student) on softmax(z/T), averaged over the batch, with the teacher's
K logits padded with zeros to the student's K+C columns on D (a reference quirk kept so
numbers stay comparable). The teacher's K comes from its checkpoint and the D label offset
from ``--d-users``; nothing is hard-coded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sigcli.config.distill import DistillOptions
from sigcli.data.sigset import SignatureSet, canvas_of
from sigcli.errors import CheckpointError, InputError
from sigcli.models import INPUT_SIZE, create_model
from sigcli.models.checkpoint import load_checkpoint, training_canvases
from sigcli.options import require_users_within
from sigcli.progress import Reporter
from sigcli.training.data import (Batch, Rows, batches, check_image_size, num_batches, prefetch, set_digest,
                                  split_train_val)
from sigcli.training.loop import DistributedInfo, FitResult, fit, init_distributed
from sigcli.training.teacher import FrozenClassifier, classifier_checkpoint

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- loss terms


def kl_teacher_student(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)), summed over classes and averaged over the batch.

    A teacher narrower than the student is padded with zero logits on the right, as the
    reference does on D (those columns then get probability ``exp(0)/Σ``, not zero). No T²
    factor. Computed in float32 so mixed precision does not change the value.
    """
    student_logits, teacher_logits = student_logits.float(), teacher_logits.float()
    missing = student_logits.shape[1] - teacher_logits.shape[1]
    if missing > 0:
        teacher_logits = F.pad(teacher_logits, (0, missing))
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(teacher_logits / temperature, dim=1), reduction="batchmean")


def distillation_loss(student_d: torch.Tensor, teacher_d: torch.Tensor, weights: LossWeights, *,
                      student_c: torch.Tensor | None = None, teacher_c: torch.Tensor | None = None,
                      c_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one step and its terms (docs/training.md#distillation-loss).

    Parameters
    ----------
    student_d, teacher_d : (n_d, K+C) and (n_d, K) logits on the D batch.
    weights : the terms' weights and the temperature.
    student_c, teacher_c : (n_c, K+C) and (n_c, K) logits on the C batch, or ``None`` for
        plain distillation (then the loss is KL_D alone, whatever ``d_lamb``).
    c_labels : (n_c,) continual labels in ``0..C-1``.
    """
    kl_d = kl_teacher_student(student_d, teacher_d, weights.temperature)
    if student_c is None:
        return kl_d, {"kl_d": kl_d.item()}
    k = teacher_c.shape[1]
    kl_p = kl_teacher_student(student_c[:, :k], teacher_c, weights.temperature)
    ce_c = F.cross_entropy(student_c[:, k:].float(), c_labels)
    loss = weights.d_lamb * kl_d + weights.c_lamb * ce_c + weights.p_lamb * kl_p
    return loss, {"kl_d": kl_d.item(), "ce_c": ce_c.item(), "kl_p": kl_p.item()}


# ---------------------------------------------------------------------------- validation score


def validation_score(d_acc: float, c_acc: float | None) -> tuple[float, float]:
    """(score, spread): the mean of the D-val and C-val accuracies and their standard deviation.

    Without a continual set the score is the D-val accuracy and the spread 0.
    """
    if c_acc is None:
        return float(d_acc), 0.0
    return (d_acc + c_acc) / 2.0, float(np.std([d_acc, c_acc]))


def is_better_score(current: dict[str, float], best: dict[str, float] | None) -> bool:
    """Best-epoch rule: a higher score wins; an equal score wins when its spread is not larger."""
    if best is None:
        return True
    if current["score"] != best["score"]:
        return current["score"] > best["score"]
    return current["spread"] <= best["spread"]


# ---------------------------------------------------------------------------- data pairing


def paired_batches(n_c: int, c_batch_size: int, n_d: int, d_batch_size: int,
                   generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (C indices, D indices) pairs: C walked once in a random order, D drawn
    with replacement so that every step has a D batch.

    Full C batches get full D batches; the last, shorter C batch gets a D batch shortened
    in the same proportion, so with equal batch sizes D contributes exactly ``n_c`` samples
    per epoch, as in the reference (whose sampler draws ``len(C)`` D samples). Unlike the
    reference this never runs out of C batches when they are larger than D's. A last C
    batch of one signature is dropped, and no D batch is smaller than two: batch norm
    cannot train on a single sample.
    """
    c_batches = shuffled_batches(n_c, c_batch_size, generator)
    last_c = len(c_batches[-1])
    last_d = min(d_batch_size, max(2, round(last_c * d_batch_size / c_batch_size)))
    d_index = torch.randint(n_d, ((len(c_batches) - 1) * d_batch_size + last_d,), generator=generator)
    return list(zip(c_batches, d_index.split(d_batch_size)))


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of index batches over ``range(n)`` in a random order, without a final batch of one
    (:func:`~sigcli.training.data.num_batches`); plain distillation's steps, and C's in :func:`paired_batches`."""
    return list(torch.randperm(n, generator=generator).split(batch_size))[:num_batches(n, batch_size, training=True)]


# ---------------------------------------------------------------------------- networks


class Student(nn.Module):
    """Feature extractor and a K+C-way user head.

    One call takes the D and the C batch (so the data-parallel wrapper sees one forward per
    step) and, as in the reference, runs each through the network on its own: batch norm
    normalises each set with its own statistics. Its running statistics, which evaluation
    and feature extraction use, then mix both sets, which C's features were not trained
    with. ``joint=True`` runs the batches as one, so training and evaluation agree.
    """

    def __init__(self, features: nn.Module, classifier: nn.Linear, joint: bool = False):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.joint = joint

    def forward(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.joint and len(images) > 1:
            logits = self.classifier(self.features(torch.cat(images)))
            return tuple(logits.split([len(x) for x in images]))
        return tuple(self.classifier(self.features(x)) for x in images)


# ---------------------------------------------------------------------------- the objective


class Part(NamedTuple):
    """One data set of the run: its rows (labels already final), split and batch size."""

    rows: Rows
    train: np.ndarray  # positions into rows
    val: np.ndarray
    batch_size: int
    random_crop: bool  # training crops drawn at random (else the centre crop, a no-op at 150×220)


class LossWeights(NamedTuple):
    """The weights of the loss terms and the softmax temperature (``sig distill``'s options)."""

    d_lamb: float
    c_lamb: float
    p_lamb: float
    temperature: float

    @classmethod
    def of(cls, options: DistillOptions) -> "LossWeights":
        return cls(options.d_lamb, options.c_lamb, options.p_lamb, options.temperature)


class DistillObjective:
    """Distillation (with a continual set ``c``, or plain with ``c=None``) for :func:`fit`."""

    def __init__(self, student: Student, teacher: FrozenClassifier, d: Part, c: Part | None, weights: LossWeights,
                 info: DistributedInfo | None = None):
        self.student, self.teacher, self.d, self.c, self.weights = student, teacher, d, c, weights
        self.info = info or DistributedInfo()
        self.nets: dict[str, nn.Module] = {"student": student}

    def modules(self) -> dict[str, nn.Module]:
        return self.nets

    def _steps(self, generator: torch.Generator) -> list[tuple[torch.Tensor | None, torch.Tensor]]:
        """This rank's (C, D) index pairs of one epoch (C None in plain distillation)."""
        if self.c is None:
            steps = [(None, d) for d in shuffled_batches(len(self.d.train), self.d.batch_size, generator)]
        else:
            steps = paired_batches(len(self.c.train), self.c.batch_size, len(self.d.train), self.d.batch_size,
                                   generator)
        return [steps[i] for i in self.info.shard(np.arange(len(steps)))]

    def num_train_batches(self) -> int:
        lead = self.c or self.d
        return len(self.info.shard(np.arange(num_batches(len(lead.train), lead.batch_size, training=True))))

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[tuple[Batch | None, Batch]]:
        steps = self._steps(generator)

        def read() -> Iterator[tuple[Batch | None, Batch]]:
            for c_index, d_index in steps:
                c = None if c_index is None else _read(self.c, self.c.train[c_index.numpy()], self.info.device,
                                                       generator)
                d = _read(self.d, self.d.train[d_index.numpy()], self.info.device,
                          generator if self.d.random_crop else None)
                yield c, d

        return prefetch(read())

    def train_step(self, batch: tuple[Batch | None, Batch]) -> tuple[torch.Tensor, dict[str, float]]:
        c, d = batch
        if c is None:
            (student_d,) = self.nets["student"](d.x)
            loss, terms = distillation_loss(student_d, self.teacher(d.x), self.weights)
        else:
            student_d, student_c = self.nets["student"](d.x, c.x)
            teacher = self.teacher(torch.cat([d.x, c.x]))  # eval mode: one pass gives the same logits
            loss, terms = distillation_loss(student_d, teacher[:len(d.x)], self.weights, student_c=student_c,
                                            teacher_c=teacher[len(d.x):], c_labels=c.y)
        return loss, {"loss": loss.item(), **terms}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """D-val and C-val accuracy and loss (each a mean of per-batch means), score and spread."""
        metrics = self._evaluate(self.d, 0, "d")
        if self.c is not None:
            metrics.update(self._evaluate(self.c, self.teacher.num_classes, "c"))
        score, spread = validation_score(metrics["d_acc"], metrics.get("c_acc"))
        return {**metrics, "score": score, "spread": spread}

    def _evaluate(self, part: Part, label_offset: int, name: str) -> dict[str, float]:
        """Centre crops, labels shifted by ``label_offset``, over the whole K+C head.

        Accuracy and loss are averaged per batch (a reference quirk: a short last batch
        weighs as much as a full one). Under torchrun each rank takes every world-th batch,
        so the sums, and the result, equal a single process's.
        """
        chunks = [part.val[i:i + part.batch_size] for i in range(0, len(part.val), part.batch_size)]
        mine = chunks[self.info.rank::self.info.world_size]
        sums = {"acc": 0.0, "loss": 0.0, "batches": 0.0}
        for batch in prefetch(_read(part, positions, self.info.device, None) for positions in mine):
            (logits,) = self.nets["student"](batch.x)
            labels = batch.y + label_offset
            sums["acc"] += (logits.argmax(1) == labels).float().mean().item()
            sums["loss"] += F.cross_entropy(logits.float(), labels).item()
            sums["batches"] += 1
        sums = self.info.sum(sums)
        return {f"{name}_acc": sums["acc"] / sums["batches"], f"{name}_loss": sums["loss"] / sums["batches"]}

    def is_better(self, current: dict[str, float], best: dict[str, float] | None) -> bool:
        return is_better_score(current, best)

    def checkpoint(self) -> tuple[dict, dict, dict]:
        return self.student.features.state_dict(), self.student.classifier.state_dict(), {}


def _read(part: Part, positions: np.ndarray, device: torch.device, generator: torch.Generator | None) -> Batch:
    """One batch of ``part`` at ``positions``: cropped (random with ``generator``), in [0, 1]."""
    one = batches(part.rows, positions, len(positions), device, generator=generator, prefetch_depth=0)
    try:
        return next(one)
    finally:
        one.close()  # releases the file a memory-mapped set is read from


# ---------------------------------------------------------------------------- options and entry points


def distill(options: DistillOptions, reporter: Reporter | None = None) -> FitResult:
    """Distil the teacher into a new student while it learns the continual set; see :func:`fit`."""
    info = init_distributed(options.device)
    objective, config = build_objective(options, info)
    inputs = [config["teacher"]["path"], config["d"]["path"], options.s_model_path, options.c_data_path]
    return fit(objective, options, options.logdir, resume=options.resume, overwrite=options.overwrite,
               options=options, extra_config=config, inputs=inputs, reporter=reporter)


def evaluate_student(options: DistillOptions) -> dict[str, float]:
    """``--test``: the validation metrics of the ``--s-model-path`` student, nothing written."""
    if options.s_model_path is None:
        raise InputError("--test evaluates a trained student, and no --s-model-path was given",
                         "pass --s-model-path model_best.pth")
    info = init_distributed(options.device)
    objective, _ = build_objective(options, info)
    objective.student.to(info.device).eval()
    with torch.no_grad():
        return objective.validate()


def build_objective(options: DistillOptions, info: DistributedInfo) -> tuple[DistillObjective, dict]:
    """Load teacher, D, C and student, check they fit together; also the run's data record."""
    teacher_path = _input_path(options.t_model_path, "signet-distill", "--t-model-path", "the teacher")
    teacher_checkpoint = classifier_checkpoint(teacher_path, "teacher", "distillation",
                                               options.allow_unsafe_checkpoint)
    k = teacher_checkpoint.num_classes
    d_path = _input_path(options.d_data_path, "inverted-data", "--d-data-path", "the distillation set")
    d, d_record = _distillation_part(d_path, options, k)
    c, c_record = (None, None) if options.c_data_path is None else _continual_part(options)
    num_c = 0 if c is None else c_record["users"]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        features = create_model(options.s_model)
        student = Student(features, nn.Linear(features.feature_space_size, k + num_c), joint=options.joint_bn)
    if options.s_model_path is not None:
        _initialise(student, options, k)
    teacher = FrozenClassifier(teacher_checkpoint, info.device)
    config = {"teacher": {"path": str(teacher_path), "fingerprint": teacher_checkpoint.identity(),
                          "classes": k}, "d": d_record, "c": c_record,
              "canvases": _canvases(teacher_path, d_path, options.c_data_path)}
    return DistillObjective(student, teacher, d, c, LossWeights.of(options), info), config


def _canvases(teacher: Path, d_path: Path, c_path: Path | None) -> list[dict]:
    """The distinct canvases of D and C, for 'sig verify'. A D set with none recorded (the
    teacher's inverted images) stands for the teacher's own training canvases."""
    canvas_d = canvas_of(d_path)
    found = [canvas_d] if canvas_d else training_canvases(teacher)
    found.append(canvas_of(c_path) if c_path is not None else None)
    return [canvas.as_dict() for canvas in dict.fromkeys(c for c in found if c is not None)]


def _input_path(given: Path | None, artefact: str, flag: str, what: str) -> Path:
    """The given path, else the downloaded artefact (with the command that fetches it)."""
    if given is not None:
        return given
    from sigcli.download import artefact_path

    path = artefact_path(artefact)
    if not path.exists():
        raise InputError(f"{what} is not given and the published one is not downloaded ({path} is missing)",
                         f"run 'sig download {artefact}', or pass {flag}")
    return path


def _distillation_part(path: Path, options: DistillOptions, k: int) -> tuple[Part, dict]:
    """D: users ``--d-users`` relabelled 0..K-1 (a range that must span the teacher's K classes)."""
    sigset = SignatureSet.load(path, allow_pickle=options.allow_pickle)
    size = sigset.image_size
    if options.d_transform == "none" and size != INPUT_SIZE:
        raise InputError(f"--d-data-path {path}: images are {size[0]}×{size[1]}, not the network's "
                         f"{INPUT_SIZE[0]}×{INPUT_SIZE[1]} input",
                         "pass --d-transform center-crop (or crop, for random training crops)")
    _check_size(sigset, path, "--d-data-path")
    users = _users(options.d_users, "--d-users", sigset, path)
    if users[1] - users[0] != k:
        raise InputError(f"--d-users {users[0]} {users[1]} spans {users[1] - users[0]} users but the teacher "
                         f"has {k} classes", f"give a range of {k} users, the ones the teacher was trained on")
    rows = Rows.select(sigset, users, genuine_only=True, labels=sigset.y - users[0])
    train, val = _split(rows, path, users, options.seed + 1)
    part = Part(rows, train, val, options.d_batch_size, options.d_transform == "crop")
    record = {"path": str(path), "fingerprint": set_digest(sigset), "users": list(users), "signatures": len(rows),
              "train": len(train), "validation": len(val), "transform": options.d_transform}
    return part, record


def _continual_part(options: DistillOptions) -> tuple[Part, dict]:
    """C: genuine signatures of ``--c-users``, relabelled 0..C-1 in ascending user order."""
    path = options.c_data_path
    sigset = SignatureSet.load(path, allow_pickle=options.allow_pickle)
    _check_size(sigset, path, "--c-data-path")
    users = _users(options.c_users, "--c-users", sigset, path)
    rows = Rows.select(sigset, users, genuine_only=True)
    present, rows.y = np.unique(rows.y, return_inverse=True)
    train, val = _split(rows, path, users, options.seed)
    part = Part(rows, train, val, options.c_batch_size, True)
    record = {"path": str(path), "fingerprint": set_digest(sigset), "users": len(present),
              "user_range": list(users), "signatures": len(rows), "train": len(train), "validation": len(val)}
    return part, record


def _users(given: tuple[int, int] | None, flag: str, sigset: SignatureSet, path: Path) -> tuple[int, int]:
    """The range ``flag`` gives, within the set's users; all of them when not given."""
    present = np.unique(sigset.y)
    if given is None:
        return (int(present[0]), int(present[-1]) + 1) if len(present) else (0, 0)
    require_users_within(given, present, flag, str(path))
    return given


def _check_size(sigset: SignatureSet, path: Path, flag: str) -> None:
    try:
        check_image_size(sigset.image_size)
    except InputError as exc:
        raise InputError(f"{flag} {path}: {exc.message}", exc.hint) from None


def _split(rows: Rows, path: Path, users: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(rows) == 0:
        raise InputError(f"{path} has no genuine signatures of users [{users[0]}, {users[1]})",
                         "check the user range against the set ('sig info' shows its users)")
    return split_train_val(len(rows), seed)


def _initialise(student: Student, options: DistillOptions, k: int) -> None:
    """--s-model-path: its feature extractor, and the first K rows of its head (all rows with --test)."""
    path = options.s_model_path
    checkpoint = load_checkpoint(path, allow_unsafe=options.allow_unsafe_checkpoint)
    ours = {name: tuple(v.shape) for name, v in student.features.state_dict().items()}
    theirs = {name: tuple(v.shape) for name, v in checkpoint.features_state.items()}
    if {n: s for n, s in theirs.items() if not n.endswith("num_batches_tracked")} != \
            {n: s for n, s in ours.items() if not n.endswith("num_batches_tracked")}:
        raise CheckpointError(f"--s-model-path {path} holds a {checkpoint.arch} network, not --s-model "
                              f"{options.s_model}", f"pass --s-model {checkpoint.arch}")
    student.features.load_state_dict(checkpoint.features_state, strict=False)
    head, total = checkpoint.classifier_state, student.classifier.out_features
    rows = 0 if head is None else int(head["weight"].shape[0])
    if options.test:
        if rows != total:
            raise CheckpointError(f"--test: the student {path} has a {rows}-output head, but the teacher's {k} "
                                  f"users plus the continual set's {total - k} make {total}",
                                  "give the same --c-data-path and --c-users the student was distilled with")
        student.classifier.load_state_dict(head)
    elif head is None:
        log.warning("--s-model-path %s has no user head: only its feature extractor initialises the student", path)
    elif rows < k:
        raise CheckpointError(f"--s-model-path {path} has a {rows}-output head, fewer than the teacher's {k} users",
                              "give a student of this teacher, or a checkpoint without head rows to copy")
    else:
        with torch.no_grad():
            student.classifier.weight[:k] = head["weight"][:k]
            if "bias" in head:
                student.classifier.bias[:k] = head["bias"][:k]

"""Deep inversion with competition: distillation data synthesised from a trained teacher.

Distillation (docs/training.md#distillation-data) needs images that carry the teacher's knowledge without
the teacher's (licensed) training signatures. Following DeepInversion and its adaptive
variant (Yin et al., CVPR 2020) a batch of images, started from dark noise, is optimised
with Adam so that

    loss = CE(teacher(x), targets)                  the teacher sees its target users
         + bn_weight · Σ_layers w_l · (d_mean + d_std)
                                                    feature statistics of real data, each layer's
                                                    distance in units of its running std
         + tv_weight · TV(x) + l2_weight · mean(x²) image priors
         + competition_weight · (1 − JS(teacher ‖ student))
                                                    adaptive DeepInversion's competition

with the statistics read by forward hooks on every batch-norm layer of the (eval-mode)
teacher (w_1 = bn_first_weight, the others 1), an optional random shift (``torch.roll``)
at every step, and the images clamped to [0, 1] after every step. The competition term
rewards images on which a student disagrees with the teacher, so they cover what the
student has not learned yet. Every term is scale-free so that one set of weights suits
any teacher; the defaults keep each below the class term (docs/training.md#inversion-loss-terms).

:func:`invert` writes the result as a signature set (docs/formats.md#inverted-distillation-data: ``x`` float32 in
[0, 1] at 150×220, ``y`` the teacher's user index, ``yforg`` 0), resumably: finished
batches are kept in ``OUT.parts/`` until the set is assembled. ``OUT.json`` says, per batch
and for the set, how often the teacher agrees, each term's share of the loss, and how far
the set's batch-norm statistics are from the teacher's.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import zipfile
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sigcli import progress
from sigcli.config.invert import InversionSettings, InvertOptions
from sigcli.device import resolve_device
from sigcli.errors import InputError
from sigcli.eventlog import EventLog, events_beside, remove_event_files
from sigcli.fileio import (LOCK_NAME, atomic_path, check_outputs, clean_stale_temps, exclusive_lock, holds_only,
                           is_temp_name, make_folder, remove)
from sigcli.models import INPUT_SIZE
from sigcli.models.checkpoint import Checkpoint
from sigcli.options import save_options
from sigcli.training.teacher import FrozenClassifier, classifier_checkpoint

log = logging.getLogger(__name__)

COMPETITION_TEMPERATURE = 3.0
"""Softmax temperature of the competition term, as in the DeepInversion authors' code."""

HISTORY_TERMS = ("loss", "ce", "bn", "tv", "l2", "competition")
WEIGHTED_TERMS = HISTORY_TERMS[1:]


# ---------------------------------------------------------------------------- loss terms


def batch_norm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """``(name, layer)`` of every batch-norm layer with running statistics, in forward order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def standardised_distance(mean: torch.Tensor, var: torch.Tensor,
                          layer: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """How far statistics (per channel) are from a layer's running ones, in units of the running
    standard deviation σ: the root mean square over channels of (μ − μ_run)/σ, and of (s − σ)/σ
    with s the standard deviation. Raw norms grow with a layer's width and activation scale
    (from 3 to 470 across a trained SigNet's layers), so no single weight would suit them all."""
    sigma = (layer.running_var.float() + layer.eps).sqrt()
    d_mean = ((mean - layer.running_mean.float()) / sigma).square().mean().sqrt()
    d_std = (((var + layer.eps).sqrt() - sigma) / sigma).square().mean().sqrt()
    return d_mean, d_std


class BatchNormStatistics:
    """Forward hooks on every batch-norm layer of ``model`` measuring how far the statistics
    of each layer's input batch are from the layer's running statistics.

    Use as a context manager (hooks are removed on exit); :meth:`collect` returns, per layer,
    the :func:`standardised_distance` d_mean + d_std of the forward pass since the last call,
    except passes made under :meth:`paused` (a student sharing layers with the teacher, a
    final classification). Under :meth:`measuring`, each layer's per-channel mean and mean
    square are kept instead (:attr:`moments`), to compare a whole set with the teacher.
    """

    def __init__(self, model: nn.Module):
        named = batch_norm_layers(model)
        self.names = [name for name, _ in named]
        self.layers = [layer for _, layer in named]
        self.moments: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._terms: list[torch.Tensor] = []
        self._handles: list = []
        self._mode = "loss"

    def __enter__(self) -> "BatchNormStatistics":
        self._handles = [layer.register_forward_hook(self._hook) for layer in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextmanager
    def _switched(self, mode: str) -> Iterator[None]:
        self._mode = mode
        try:
            yield
        finally:
            self._mode = "loss"

    def paused(self):
        return self._switched("paused")

    def measuring(self):
        self.moments = []
        return self._switched("moments")

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if self._mode == "paused":
            return
        x = inputs[0].float()
        dims = [0, *range(2, x.ndim)]
        if self._mode == "moments":
            self.moments.append((x.mean(dims), x.square().mean(dims)))
            return
        var, mean = torch.var_mean(x, dims, unbiased=False)
        self._terms.append(sum(standardised_distance(mean, var, module)))

    def collect(self) -> torch.Tensor:
        """Each layer's distance for the forward pass since the last call (empty without layers)."""
        terms = torch.stack(self._terms) if self._terms else torch.zeros(0)
        self._terms = []
        return terms


def layer_weights(n_layers: int, first: float, device: torch.device) -> torch.Tensor:
    """Per-layer weights of the statistics term: ``first`` on the first layer, 1 on the others."""
    weights = torch.ones(n_layers, device=device)
    if n_layers:
        weights[0] = first
    return weights


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertically and horizontally adjacent pixels."""
    return ((images[..., 1:, :] - images[..., :-1, :]).square().mean()
            + (images[..., :, 1:] - images[..., :, :-1]).square().mean())


def jensen_shannon(logits_a: torch.Tensor, logits_b: torch.Tensor,
                   temperature: float = COMPETITION_TEMPERATURE) -> torch.Tensor:
    """Jensen–Shannon divergence of softmax(a/T) and softmax(b/T), averaged over the batch.

    Computed from the probabilities so that identical logits give exactly 0 (at most ln 2).
    """
    p = F.softmax(logits_a.float() / temperature, dim=1)
    q = F.softmax(logits_b.float() / temperature, dim=1)
    m = 0.5 * (p + q)
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(1)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(1)
    return (0.5 * (kl_pm + kl_qm)).mean()


def competition(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Adaptive DeepInversion's competition term 1 − JS(teacher, student): minimising it seeks
    images on which the student disagrees with the teacher."""
    return 1.0 - jensen_shannon(teacher_logits, student_logits)


# ---------------------------------------------------------------------------- one batch


@dataclass
class BatchResult:
    images: torch.Tensor
    """(n, 1, H, W) float32 in [0, 1], on the CPU."""
    predictions: torch.Tensor
    """The teacher's class for each final (unshifted) image."""
    agreement: float
    """Share of the final images the teacher classifies as their target."""
    history: dict[str, list[float]] = field(default_factory=dict)
    """Each loss term (unweighted) at every step: ``loss``, ``ce``, ``bn``, ``tv``, ``l2``, ``competition``."""
    shares: dict[str, float] = field(default_factory=dict)
    """Each weighted term's share of the loss at the last step (they sum to 1)."""
    moments: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    """Per batch-norm layer of the teacher, the per-channel mean and mean square of its input
    over the final images (and positions): the batch's part of the set's statistics."""


def batch_generator(seed: int, batch_index: int) -> torch.Generator:
    """The generator of one batch: independent of the others, so a resumed run draws the same."""
    state = np.random.SeedSequence([seed, batch_index]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def invert_batch(teacher: nn.Module, targets: torch.Tensor, settings: InversionSettings,
                 generator: torch.Generator, student: nn.Module | None = None,
                 device: torch.device | str = "cpu",
                 on_step: Callable[[int, dict[str, float]], None] | None = None) -> BatchResult:
    """Optimise ``len(targets)`` images so that ``teacher`` classifies them as ``targets``.

    ``teacher`` (and ``student``) map (n, 1, 150, 220) images in [0, 1] to class logits; both
    are used in eval mode and left unchanged. A student's first K columns (K = the teacher's
    classes) are compared with the teacher, so a student with extra (continual) users works.
    ``generator`` (CPU) draws the initial noise and the shifts. ``on_step(step, terms)`` is
    called every few steps with the current (unweighted) loss terms, for progress display.
    """
    device = torch.device(device)
    teacher_modes = _freeze(teacher)
    student_modes = _freeze(student) if student is not None else None
    try:
        images = (settings.init_scale * torch.rand((len(targets), 1, *INPUT_SIZE), generator=generator)).to(device)
        images.requires_grad_(True)
        shifts = torch.randint(-settings.jitter, settings.jitter + 1, (settings.iterations, 2), generator=generator)
        targets = targets.to(device)
        optimiser = torch.optim.Adam([images], lr=settings.lr, betas=(0.5, 0.9))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.iterations)
        use_competition = student is not None and settings.competition_weight > 0
        weights = dict(zip(WEIGHTED_TERMS, (1.0, settings.bn_weight, settings.tv_weight, settings.l2_weight,
                                            settings.competition_weight)))
        zero = torch.zeros((), device=device)
        history = []
        with BatchNormStatistics(teacher) as statistics:
            per_layer = layer_weights(len(statistics.layers), settings.bn_first_weight, device)
            for step in range(settings.iterations):
                shifted = (torch.roll(images, shifts=tuple(shifts[step].tolist()), dims=(2, 3))
                           if settings.jitter else images)
                logits = teacher(shifted)
                terms = {"ce": F.cross_entropy(logits, targets), "bn": (per_layer * statistics.collect()).sum(),
                         "tv": total_variation(shifted), "l2": shifted.square().mean(), "competition": zero}
                if use_competition:
                    with statistics.paused():
                        student_logits = student(shifted)[:, :logits.shape[1]]
                    terms["competition"] = competition(logits, student_logits)
                weighted = torch.stack([weights[k] * terms[k] for k in WEIGHTED_TERMS])
                loss = weighted.sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                with torch.no_grad():
                    images.clamp_(0.0, 1.0)
                history.append(torch.stack([loss.detach(), *(terms[k].detach() for k in WEIGHTED_TERMS)]))
                if on_step is not None and (step % 10 == 9 or step == settings.iterations - 1):
                    on_step(step + 1, {k: float(v) for k, v in zip(HISTORY_TERMS, history[-1])})
            with torch.no_grad(), statistics.measuring():
                predictions = teacher(images).argmax(1)
            moments = [(mean.cpu().numpy(), square.cpu().numpy()) for mean, square in statistics.moments]
        table = torch.stack(history).cpu().T.tolist()
        last = weighted.detach().cpu()
        return BatchResult(images=images.detach().cpu().float(), predictions=predictions.cpu(),
                           agreement=float((predictions == targets).float().mean()),
                           history=dict(zip(HISTORY_TERMS, table)),
                           shares=dict(zip(WEIGHTED_TERMS, (last / last.sum()).tolist())), moments=moments)
    finally:
        _restore(teacher, teacher_modes)
        if student is not None:
            _restore(student, student_modes)


def _freeze(model: nn.Module) -> tuple[bool, list[bool]]:
    """Put ``model`` in eval mode without parameter gradients; return what to restore."""
    modes = (model.training, [p.requires_grad for p in model.parameters()])
    model.eval()
    model.requires_grad_(False)
    return modes


def _restore(model: nn.Module, modes: tuple[bool, list[bool]]) -> None:
    model.train(modes[0])
    for parameter, flag in zip(model.parameters(), modes[1]):
        parameter.requires_grad_(flag)


# ---------------------------------------------------------------------------- the whole set


@dataclass
class InversionReport:
    save_path: Path
    images: int
    users: tuple[int, int]
    batches: int
    resumed_batches: int
    teacher_accuracy: float
    """Share of the written images the teacher classifies as their target user."""
    final_terms: dict[str, float]
    """Each loss term (unweighted) at the last step, averaged over the batches."""
    term_shares: dict[str, float]
    """Each weighted term's share of the loss at the last step, averaged over the batches."""
    batch_norm: list[dict]
    """Per batch-norm layer of the teacher, how far the whole set's statistics are from its
    running ones: ``mean_distance`` and ``std_distance`` (see :func:`standardised_distance`)."""
    seconds: float
    device: str
    preview: Path | None = None


PREVIEW_USERS = 12
PREVIEW_PER_USER = 8


def parts_folder(save_path: Path) -> Path:
    """Where finished batches wait: ``OUT.parts/`` beside ``OUT.npz``."""
    return save_path.with_suffix(".parts")


def batch_plan(num_classes: int, per_user: int, batch_size: int) -> list[np.ndarray]:
    """Target classes of each batch: every class ``per_user`` times, interleaved so that each
    batch mixes all users (their batch statistics then resemble the training data's)."""
    order = np.tile(np.arange(num_classes, dtype=np.int64), per_user)
    return np.array_split(order, math.ceil(len(order) / batch_size))


def invert(options: InvertOptions, reporter: progress.Reporter | None = None) -> InversionReport:
    """Synthesise ``per_user`` images for every user of the teacher and write the signature set.

    Writes ``OUT.npz`` (images in batch order, so users are interleaved) and ``OUT.json``
    (options, versions, the teacher's agreement). Finished batches wait in ``OUT.parts/``;
    a re-run with the same options completes them, one with other options stops with an
    error unless ``overwrite`` (which starts over).
    """
    started = time.perf_counter()
    save_path = Path(options.save_path)
    if save_path.suffix != ".npz":
        raise InputError(f"--save-path {save_path} must end in .npz", "inverted data is written as one .npz file")
    check_outputs([("--save-path", save_path), ("--save-path", save_path.with_suffix(".json")),
                   ("--preview", options.preview)], overwrite=options.overwrite,
                  inputs=(options.t_model_path, options.s_model_path))
    events_folder = events_beside(save_path)
    if (options.tensorboard and events_folder.exists() and not options.overwrite
            and not parts_folder(save_path).exists()):  # a fresh start would replace event files sig did not write
        raise InputError(f"{events_folder} already exists and this run starts afresh",
                         "give --overwrite to replace its event files, or another --save-path")
    device = resolve_device(options.device)
    teacher, teacher_checkpoint = load_classifier(options.t_model_path, device, "teacher",
                                                  options.allow_unsafe_checkpoint)
    num_classes = teacher_checkpoint.num_classes
    first, last = _user_range(options.users, num_classes)
    student, student_checkpoint = None, None
    if options.s_model_path is not None:
        student, student_checkpoint = load_classifier(options.s_model_path, device, "student",
                                                      options.allow_unsafe_checkpoint)
        student_classes = student_checkpoint.num_classes
        if student_classes < num_classes:
            raise InputError(f"the student has {student_classes} classes, fewer than the teacher's {num_classes}",
                             "give a student distilled from this teacher")
    if not BatchNormStatistics(teacher).layers:
        log.warning("the teacher has no batch-norm layers: only the class and image-prior terms apply")

    plan = batch_plan(num_classes, options.per_user, options.batch_size)
    fingerprint = _fingerprint(options, teacher_checkpoint, student_checkpoint, first, last)
    parts = parts_folder(save_path)
    _check_parts(parts)
    make_folder(parts, "the parts folder")
    with exclusive_lock(parts, "the parts folder", "wait for that run to end, or give another --save-path"), \
            closing(EventLog(events_folder, options.tensorboard)) as events:
        done = _prepare_parts(parts, fingerprint, len(plan), options.overwrite)
        if events.enabled and not done:
            remove_event_files(events.folder)   # a run starting over: its curves start over too
        shown = ("ce", "bn", "competition") if student is not None else ("ce", "bn")
        layers = batch_norm_layers(teacher)
        reporter = progress.resolve(reporter)
        with reporter.task("inverting", total=len(plan)) as task:
            if done:
                task.advance(len(done), resumed=len(done))
            for index, targets in enumerate(plan):
                if index in done:
                    continue
                result = invert_batch(
                    teacher, torch.from_numpy(targets), options, batch_generator(options.seed, index),
                    student=student, device=device,
                    on_step=lambda step, terms: task.advance(0, step=f"{step}/{options.iterations}",
                                                             **{k: terms[k] for k in shown}))
                _write_part(parts / _part_name(index), result, targets)
                events.write_series(index * options.iterations + 1, result.history)   # step 1 of batch 0 is 1
                task.advance(1, step=f"{options.iterations}/{options.iterations}", agree=result.agreement,
                             **{k: result.history[k][-1] for k in shown})
                log.info("batch %d: teacher agrees on %.1f%%; shares of the loss %s", index,
                         100 * result.agreement, " ".join(f"{k}={v:.2f}" for k, v in result.shares.items()))

        summary = _assemble(parts, plan, save_path, first, options.preview, options.overwrite,
                            title=f"inverted from {Path(options.t_model_path).name}", layers=layers)
        save_options(options, save_path.with_suffix(".json"), overwrite=options.overwrite, users=[first, last],
                     num_classes=num_classes, teacher_accuracy=summary["accuracy"],
                     final_terms=summary["final_terms"], term_shares=summary["term_shares"],
                     batch_norm=summary["batch_norm"], batches=summary["batches"])
        _remove_parts(parts)
    return InversionReport(save_path=save_path, images=summary["images"], users=(first, last), batches=len(plan),
                           resumed_batches=len(done), teacher_accuracy=summary["accuracy"],
                           final_terms=summary["final_terms"], term_shares=summary["term_shares"],
                           batch_norm=summary["batch_norm"], seconds=time.perf_counter() - started,
                           device=str(device), preview=options.preview)


def _user_range(users: tuple[int, int] | None, num_classes: int) -> tuple[int, int]:
    if users is None:
        return 0, num_classes
    first, last = users
    if last - first != num_classes:
        raise InputError(f"--users {first} {last} spans {last - first} users but the teacher has {num_classes} classes",
                         f"give a range of {num_classes} users, e.g. --users {first} {first + num_classes}")
    return first, last


def _fingerprint(options: InvertOptions, teacher: Checkpoint, student: Checkpoint | None,
                 first: int, last: int) -> dict:
    """Everything that decides the images: a batch made under another fingerprint differs.
    (The device is left out: a run may be finished on another machine.)"""
    settings = options.model_dump(include=set(InversionSettings.model_fields) | {"per_user", "seed"})
    return {"format": 2, "teacher": teacher.identity(), "student": student.identity() if student else None,
            "num_classes": teacher.num_classes, "users": [first, last], **settings}


def _part_name(index: int) -> str:
    return f"batch-{index:05d}.npz"


_PART = re.compile(r"batch-\d{5}\.npz")
PLAN = "plan.json"


def _is_part_file(name: str) -> bool:
    """The names inversion writes in its parts folder (and nothing else may be there)."""
    return name in (PLAN, LOCK_NAME) or _PART.fullmatch(name) is not None or is_temp_name(name)


def _check_parts(parts: Path) -> None:
    """``OUT.parts`` is ours to fill and empty only if it holds nothing but our files."""
    if parts.exists() and not holds_only(parts, _is_part_file):
        raise InputError(f"{parts} holds files that 'sig invert' did not write, and inversion keeps its "
                         "finished batches there", "move that folder away, or choose another --save-path")


def _remove_parts(parts: Path) -> None:
    """Remove our files from ``parts``, then the folder if nothing else appeared in it."""
    for entry in os.scandir(parts):
        if _is_part_file(entry.name) and entry.name != LOCK_NAME:
            remove(Path(entry.path))
    try:
        (parts / LOCK_NAME).unlink(missing_ok=True)
        parts.rmdir()
    except OSError:
        pass


def _prepare_parts(parts: Path, fingerprint: dict, n_batches: int, overwrite: bool) -> set[int]:
    """Check the (locked) ``parts`` folder; return the indices of the batches already finished.

    Temporary files of a killed run are removed; batches made with other options are kept
    (a re-run with them finishes the set) unless ``overwrite``.
    """
    clean_stale_temps(parts)
    plan_file = parts / PLAN
    previous = _read_plan(plan_file)
    if previous != fingerprint:
        if previous is not None and not overwrite:
            changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
            raise InputError(f"{parts} holds batches made with other options ({', '.join(changed)} differ)",
                             "re-run with the same options to finish them, or pass --overwrite to start over")
        for entry in os.scandir(parts):
            if entry.name != LOCK_NAME:  # only our files are there (checked before the lock was taken)
                remove(Path(entry.path))
        with atomic_path(plan_file) as tmp:
            tmp.write_text(json.dumps(fingerprint, indent=2) + "\n")
    return {i for i in range(n_batches) if (parts / _part_name(i)).exists()}


def _read_plan(plan_file: Path) -> dict | None:
    """The fingerprint of the batches in a parts folder; None when there is none (or a damaged one)."""
    try:
        plan = json.loads(plan_file.read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) else None


def _write_part(path: Path, result: BatchResult, targets: np.ndarray) -> None:
    final = np.asarray([values[-1] for values in result.history.values()], dtype=np.float64)
    moments = {f"bn_{kind}_{layer}": values[column] for layer, values in enumerate(result.moments)
               for column, kind in enumerate(("mean", "square"))}
    with atomic_path(path, overwrite=True) as tmp:  # a batch of our own, made again
        np.savez(tmp, x=result.images.numpy().astype(np.float32, copy=False), targets=targets,
                 predictions=result.predictions.numpy().astype(np.int64), final_terms=final,
                 term_names=np.asarray(list(result.history)), shares=np.asarray(list(result.shares.values())),
                 share_names=np.asarray(list(result.shares)), **moments)


def _assemble(parts: Path, plan: list[np.ndarray], save_path: Path, first: int, preview: Path | None,
              overwrite: bool = False, title: str = "",
              layers: list[tuple[str, nn.modules.batchnorm._BatchNorm]] = ()) -> dict:
    """Stream the parts into ``save_path`` in batch order (``x`` is never whole in memory);
    return the number of images, the teacher's accuracy on them, the mean final terms and
    shares, each batch's agreement and shares, and the set's statistics against ``layers``."""
    classes = np.concatenate(plan)
    y = classes + first
    # the k-th image of user u is named inverted/user<u>/<k>
    nth = np.zeros_like(classes)
    nth[np.argsort(classes, kind="stable")] = np.concatenate([np.arange(c) for c in np.bincount(classes)])
    filenames = np.char.add(np.char.add("inverted/user", np.char.zfill(y.astype(str), 5)),
                            np.char.add("/", np.char.zfill(nth.astype(str), 4)))
    correct, finals, names, batches = 0, [], [], []
    moments = [[0.0, 0.0] for _ in layers]  # per layer: Σ n_b·mean_b, Σ n_b·square_b (per channel)
    shown: dict[int, list[np.ndarray]] = {}
    with (atomic_path(save_path, overwrite=overwrite) as tmp,
          zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive):
        with archive.open("x.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                      "fortran_order": False, "shape": (len(y), 1, *INPUT_SIZE)})
            for index, targets in enumerate(plan):
                with np.load(parts / _part_name(index)) as part:
                    x = np.ascontiguousarray(part["x"], dtype=np.float32)
                    if x.shape != (len(targets), 1, *INPUT_SIZE) or not np.array_equal(part["targets"], targets):
                        raise InputError(f"{parts / _part_name(index)} does not hold the batch it should",
                                         "re-run with --overwrite to make the set again")
                    fh.write(x.tobytes())
                    agreeing = int(np.count_nonzero(part["predictions"] == targets))
                    correct += agreeing
                    finals.append(part["final_terms"])
                    names = [str(n) for n in part["term_names"]]
                    batch_moments = [[len(targets) * part[f"bn_{kind}_{layer}"] for kind in ("mean", "square")]
                                     for layer in range(len(layers))]
                    batches.append({"batch": index, "agreement": agreeing / len(targets),
                                    "shares": dict(zip(part["share_names"].tolist(), part["shares"].tolist())),
                                    "batch_norm_distance": [
                                        round(row["mean_distance"] + row["std_distance"], 4)
                                        for row in _set_statistics(layers, batch_moments, len(targets))]})
                    moments = [[total + batch for total, batch in zip(sums, batch_sums)]
                               for sums, batch_sums in zip(moments, batch_moments)]
                if preview is not None:
                    for image, target in zip(x, targets.tolist()):
                        if target < PREVIEW_USERS and len(shown.setdefault(target, [])) < PREVIEW_PER_USER:
                            shown[target].append(image[0])
        for key, value in {"y": y, "yforg": np.zeros_like(y), "filenames": filenames}.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)
    if preview is not None:
        contact_sheet({first + k: np.stack(v) for k, v in sorted(shown.items())}, preview, title, overwrite)
    shares = {k: float(np.mean([b["shares"][k] for b in batches])) for k in batches[0]["shares"]}
    return {"images": len(y), "accuracy": correct / len(y),
            "final_terms": dict(zip(names, np.mean(finals, axis=0).tolist())), "term_shares": shares,
            "batches": batches, "batch_norm": _set_statistics(layers, moments, len(y))}


def _set_statistics(layers: list[tuple[str, nn.modules.batchnorm._BatchNorm]],
                    moment_sums: list[list[np.ndarray]], n: int) -> list[dict]:
    """Per layer, how far the statistics of the whole set (from the batches' moments) are from
    the layer's running statistics, in units of its running standard deviation."""
    rows = []
    for (name, layer), (mean_sum, square_sum) in zip(layers, moment_sums):
        mean = torch.from_numpy(mean_sum / n).to(layer.running_mean.device)
        var = (torch.from_numpy(square_sum / n).to(mean.device) - mean.square()).clamp_min(0)
        d_mean, d_std = standardised_distance(mean.float(), var.float(), layer)
        rows.append({"layer": name, "mean_distance": round(float(d_mean), 4), "std_distance": round(float(d_std), 4)})
    return rows


def contact_sheet(images_by_user: dict[int, np.ndarray], path: str | Path, title: str | None = None,
                  overwrite: bool = False) -> Path:
    """A PNG grid, one row per user, of images (n×H×W, ink bright on 0) shown as dark ink on paper;
    an existing ``path`` is refused unless ``overwrite``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gap = 4
    rows = len(images_by_user)
    columns = max(len(v) for v in images_by_user.values())
    h, w = next(iter(images_by_user.values())).shape[-2:]
    mosaic = np.ones((rows * (h + gap), columns * (w + gap)), dtype=np.float32)
    for row, images in enumerate(images_by_user.values()):
        for column, image in enumerate(images):
            top, left = row * (h + gap) + gap // 2, column * (w + gap) + gap // 2
            mosaic[top:top + h, left:left + w] = 1.0 - np.clip(image, 0.0, 1.0)
    dpi, left_margin, top_margin = 100, 80, 30 if title else 0  # margins in pixels
    width, height = mosaic.shape[1] + left_margin, mosaic.shape[0] + top_margin
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((left_margin / width, 0.0, mosaic.shape[1] / width, mosaic.shape[0] / height))
    axes.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    axes.set_yticks([row * (h + gap) + gap // 2 + h / 2 for row in range(rows)],
                    [f"user {u}" for u in images_by_user])
    axes.set_xticks([])
    if title:
        figure.suptitle(title, y=1 - 4 / height, va="top")
    path = Path(path)
    with atomic_path(path, suffix=".png", overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path


def load_classifier(path: Path, device: torch.device, role: str,
                    allow_unsafe: bool) -> tuple[FrozenClassifier, Checkpoint]:
    """The frozen network ``images → user logits`` of a checkpoint, and the checkpoint."""
    checkpoint = classifier_checkpoint(path, role, "inversion", allow_unsafe)
    return FrozenClassifier(checkpoint, device), checkpoint

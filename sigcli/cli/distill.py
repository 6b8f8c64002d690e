"""Distil a SigNet teacher into a new student while it learns new users (continual learning).

Each step pairs a batch of the distillation set D (inverted data, by default the downloaded
`inverted-data`, taught by the downloaded `signet-distill` teacher) with a batch of the
continual set C: loss = d-lamb·KL(D) + c-lamb·CE(C) + p-lamb·KL(C, teacher's users).
Without --c-dataset it is plain distillation (KL on D only). The student's head has the
teacher's K users first, then C's users. The best epoch is the highest mean of the D-val
and C-val accuracies (on ties, the one whose two accuracies are closer). Writes into
--logdir what `sig train` writes: model_best.pth / model_last.pth (usable by extract, wd,
wi), metrics.csv, config.json, train_state.pth (--resume). Runs under `torchrun` too.

Example: sig distill --c-dataset mcyt.npz --p-lamb 1.7 --logdir runs/distill-mcyt
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sigcli.cli import console
from sigcli.models import available_models
from sigcli.options import build, default
from sigcli.training.distill import DistillOptions, DTransform, distill, evaluate_student
from sigcli.training.loop import FitResult, is_main_process

_O = DistillOptions


def main(
    c_dataset: Annotated[Optional[Path], typer.Option(
        help="Continual set (.npz or folder, 170×242). \\[default: none, plain distillation]")]
        = default(_O, "c_dataset"),
    c_users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="Continual user indices FIRST..LAST-1. \\[default: all]")] = default(_O, "c_users"),
    s_model: Annotated[str, typer.Option(help=f"Student architecture: {', '.join(available_models())}.")]
        = default(_O, "s_model"),
    t_model_path: Annotated[Optional[Path], typer.Option(
        help="Teacher checkpoint with its user head. \\[default: the downloaded signet-distill]")]
        = default(_O, "t_model_path"),
    s_checkpoint: Annotated[Optional[Path], typer.Option(
        help="Initialise the student: feature extractor and the teacher-part rows of its head.")]
        = default(_O, "s_checkpoint"),
    d_dataset: Annotated[Optional[Path], typer.Option(
        help="Distillation set. \\[default: the downloaded inverted-data]")] = default(_O, "d_dataset"),
    d_users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="D user indices FIRST..LAST-1, the teacher's classes in order. \\[default: all users of D]")]
        = default(_O, "d_users"),
    d_transform: Annotated[DTransform, typer.Option(
        help="none: D is at the input size, used as it is; crop: random crops (centre in validation); "
             "center-crop: centre crops.")] = default(_O, "d_transform"),
    d_lamb: Annotated[float, typer.Option(help="Weight of the KL on D.")] = default(_O, "d_lamb"),
    c_lamb: Annotated[float, typer.Option(help="Weight of the cross-entropy on C.")] = default(_O, "c_lamb"),
    p_lamb: Annotated[float, typer.Option(help="Weight of the KL to the teacher on C (keeps its users).")]
        = default(_O, "p_lamb"),
    temperature: Annotated[float, typer.Option(help="Softmax temperature of the KL terms.")]
        = default(_O, "temperature"),
    d_batch_size: Annotated[int, typer.Option(help="D signatures per step (per process under torchrun).")]
        = default(_O, "d_batch_size"),
    c_batch_size: Annotated[int, typer.Option(help="C signatures per step (per process under torchrun).")]
        = default(_O, "c_batch_size"),
    joint_bn: Annotated[bool, typer.Option(
        "--joint-bn", help="Pass D and C through the student as one batch, so batch norm's running statistics "
                           "match training (the reference passes them separately).")] = default(_O, "joint_bn"),
    epochs: Annotated[int, typer.Option(help="Passes over C (over D without C).")] = default(_O, "epochs"),
    lr: Annotated[float, typer.Option(help="Initial learning rate (SGD, Nesterov momentum).")] = default(_O, "lr"),
    lr_decay_times: Annotated[int, typer.Option(help="Times the learning rate is divided by 10 over the run.")]
        = default(_O, "lr_decay_times"),
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = default(_O, "momentum"),
    weight_decay: Annotated[float, typer.Option(help="L2 penalty.")] = default(_O, "weight_decay"),
    seed: Annotated[int, typer.Option(help="Seeds weights, splits, batches and crops.")] = default(_O, "seed"),
    logdir: Annotated[Path, typer.Option(help="Folder for checkpoints, metrics.csv and config.json.")]
        = default(_O, "logdir"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --logdir.")] = default(_O, "resume"),
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start over in a --logdir that holds a run (only the run's own files are removed).")]
        = default(_O, "overwrite"),
    test: Annotated[bool, typer.Option("--test", help="Only evaluate the --s-checkpoint student; write nothing.")]
        = default(_O, "test"),
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu, cuda or cuda:N.")]
        = default(_O, "device"),
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision on CUDA.")] = default(_O, "amp"),
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read a pickled user_mapping (trusted files).")]
        = default(_O, "allow_pickle"),
    allow_unsafe_checkpoint: Annotated[bool, typer.Option(
        "--allow-unsafe-checkpoint", help="Unpickle checkpoints that need it (trusted files only).")]
        = default(_O, "allow_unsafe_checkpoint"),
) -> None:
    options = build(DistillOptions, c_dataset=c_dataset, c_users=c_users, s_model=s_model,
                    t_model_path=t_model_path, s_checkpoint=s_checkpoint, d_dataset=d_dataset, d_users=d_users,
                    d_transform=d_transform, d_lamb=d_lamb, c_lamb=c_lamb, p_lamb=p_lamb, temperature=temperature,
                    d_batch_size=d_batch_size, c_batch_size=c_batch_size, joint_bn=joint_bn, epochs=epochs, lr=lr,
                    lr_decay_times=lr_decay_times, momentum=momentum, weight_decay=weight_decay, seed=seed,
                    logdir=logdir, resume=resume, overwrite=overwrite, test=test, device=device, amp=amp,
                    allow_pickle=allow_pickle, allow_unsafe_checkpoint=allow_unsafe_checkpoint)
    if options.test:
        metrics = evaluate_student(options)
        if is_main_process():
            console.out.print(test_table(metrics))
        return
    result = distill(options, console.RichReporter())
    if result.history and is_main_process():
        console.out.print(summary_table(result))
        best = result.best_metrics or {}
        console.out.print(f"best epoch {result.best_epoch} (score {100 * best.get('score', float('nan')):.2f}%): "
                          f"{result.paths['best']}", highlight=False)


_HEADERS = {"val_d_acc": "D-val acc", "val_c_acc": "C-val acc", "val_score": "score"}


def summary_table(result: FitResult) -> Table:
    table = Table(title="distillation")
    columns = [c for c in ("epoch", "lr", "train_loss", "val_d_acc", "val_c_acc", "val_score", "seconds")
               if c in result.history[0]]
    for name in columns:
        table.add_column(_HEADERS.get(name, name.replace("_", " ")), justify="right")
    for row in result.history:
        table.add_row(*(console.metric_cell(name, row.get(name)) for name in columns),
                      style="bold green" if row["epoch"] == result.best_epoch else None)
    return table


def test_table(metrics: dict[str, float]) -> Table:
    table = Table(title="student")
    for name in ("set", "accuracy", "loss"):
        table.add_column(name, justify="right")
    for key, label in (("d", "D-val"), ("c", "C-val")):
        if f"{key}_acc" in metrics:
            table.add_row(label, console.metric_cell("acc", metrics[f"{key}_acc"]),
                          console.metric_cell("loss", metrics[f"{key}_loss"]))
    table.add_row("score", console.metric_cell("acc", metrics["score"]), "")
    return table

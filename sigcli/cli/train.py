"""Train a SigNet feature extractor (or SigNet-F with --forg) on a preprocessed set.

Users [FIRST, LAST) are split 90/10 at random into training and validation; training
takes random 150×220 crops, validation the centre crop. Writes into --logdir:
model_best.pth (best validation accuracy), model_last.pth (in the reference 3-tuple
format), metrics.csv, config.json and train_state.pth (for --resume). Ctrl-C saves the
current weights as model_last.pth. Under `torchrun --nproc-per-node N` the same command
trains on N processes (DistributedDataParallel; --batch-size is per process).

Example: sig train --dataset-path gpds.npz --users 350 881 --epochs 60 --logdir runs/signet
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sigcli.cli import console
from sigcli.models import available_models
from sigcli.options import build, default
from sigcli.training.loop import FitResult, is_main_process
from sigcli.training.supervised import TrainOptions, train_signet

_O = TrainOptions


def main(
    dataset_path: Annotated[Path, typer.Option(help="Preprocessed set: .npz file or folder (memory-mapped).")],
    logdir: Annotated[Path, typer.Option(help="Folder for checkpoints, metrics.csv and config.json.")],
    model: Annotated[str, typer.Option(help=f"Architecture: {', '.join(available_models())}.")]
        = default(_O, "model"),
    users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="Train on user indices FIRST..LAST-1. \\[default: all]")] = default(_O, "users"),
    epochs: Annotated[int, typer.Option(help="Passes over the training set.")] = default(_O, "epochs"),
    forg: Annotated[bool, typer.Option("--forg", help="SigNet-F: also learn to tell skilled forgeries.")]
        = default(_O, "forg"),
    lamb: Annotated[float, typer.Option(help="SigNet-F: weight of the forgery loss (λ).")] = default(_O, "lamb"),
    batch_size: Annotated[int, typer.Option(help="Signatures per step (per process under torchrun).")]
        = default(_O, "batch_size"),
    lr: Annotated[float, typer.Option(help="Initial learning rate (SGD, Nesterov momentum).")] = default(_O, "lr"),
    lr_decay_times: Annotated[int, typer.Option(help="Times the learning rate is divided by 10 over the run.")]
        = default(_O, "lr_decay_times"),
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = default(_O, "momentum"),
    weight_decay: Annotated[float, typer.Option(help="L2 penalty.")] = default(_O, "weight_decay"),
    seed: Annotated[int, typer.Option(help="Seeds weights, split, batches and crops.")] = default(_O, "seed"),
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu, cuda or cuda:N.")]
        = default(_O, "device"),
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision on CUDA.")] = default(_O, "amp"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --logdir.")] = default(_O, "resume"),
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start over in a --logdir that holds a run (only the run's own files are removed).")]
        = default(_O, "overwrite"),
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read a pickled user_mapping (trusted files).")]
        = default(_O, "allow_pickle"),
) -> None:
    options = build(TrainOptions, dataset_path=dataset_path, logdir=logdir, model=model, users=users, epochs=epochs,
                    forg=forg, lamb=lamb, batch_size=batch_size, lr=lr, lr_decay_times=lr_decay_times,
                    momentum=momentum, weight_decay=weight_decay, seed=seed, device=device, amp=amp,
                    resume=resume, overwrite=overwrite, allow_pickle=allow_pickle)
    result = train_signet(options, console.RichReporter())
    if result.history and is_main_process():
        console.out.print(summary_table(result, options.forg))
        console.out.print(f"best epoch {result.best_epoch}: {result.paths['best']}", markup=False, highlight=False)


def summary_table(result: FitResult, forg: bool) -> Table:
    table = Table(title="training")
    columns = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"]
    if forg:
        columns += ["val_forg_acc"]
    for name in columns + ["seconds"]:
        table.add_column(name.replace("_", " "), justify="right")
    for row in result.history:
        cells = [console.metric_cell(name, row.get(name)) for name in columns + ["seconds"]]
        table.add_row(*cells, style="bold green" if row["epoch"] == result.best_epoch else None)
    return table

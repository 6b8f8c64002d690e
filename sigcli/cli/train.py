"""Train a SigNet feature extractor (or SigNet-F with --forg) on a preprocessed set.

Users [FIRST, LAST) are split 90/10 at random into training and validation; training
takes random 150×220 crops, validation the centre crop. Writes into --logdir:
model_best.pth (best validation accuracy), model_last.pth (in the reference 3-tuple
format), metrics.csv, config.json and train_state.pth (for --resume). Ctrl-C saves the
current weights as model_last.pth. Under `torchrun --nproc-per-node N` the same command
trains on N processes (DistributedDataParallel; --batch-size is per process).

--adversarial madry trains on PGD adversarial images, --adversarial ensadv on clean images and
one-step adversarial images of the model or of frozen --adv-model checkpoints. --test
--checkpoint M only evaluates M on the validation split of the given options.

Example: sig train --data-path gpds.npz --users 350 881 --epochs 60 --logdir runs/signet
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.training import TrainOptions

if TYPE_CHECKING:
    from sigcli.training.loop import FitResult


def run(options: TrainOptions) -> None:
    from sigcli.training.loop import is_main_process
    from sigcli.training.supervised import evaluate_checkpoint, train_signet

    if options.test:
        metrics = evaluate_checkpoint(options)
        if is_main_process() and options.as_json:
            console.out.print_json(json.dumps(metrics))
        elif is_main_process():
            console.out.print(test_table(metrics))
        return
    result = train_signet(options, console.RichReporter())
    if not (result.history and is_main_process()):
        return
    if options.as_json:
        console.out.print_json(json.dumps(result.summary()))
        return
    columns = [name for name in ("epoch", "lr", "train_loss", "train_acc", "train_adv_acc", "val_loss", "val_acc",
                                 "val_forg_acc", "seconds") if name in result.history[0]]
    console.out.print(epoch_table(result, "training", columns))
    console.out.print(f"best epoch {result.best_epoch}: {result.paths['best']}", markup=False, highlight=False)


def test_table(metrics: dict[str, float]) -> Table:
    """--test: the checkpoint's validation metrics."""
    table = Table(title="validation")
    for name in ("head", "accuracy", "loss"):
        table.add_column(name, justify="right")
    table.add_row("users", console.metric_cell("acc", metrics["acc"]), console.metric_cell("loss", metrics["loss"]))
    if "forg_acc" in metrics:
        table.add_row("forgery", console.metric_cell("acc", metrics["forg_acc"]),
                      console.metric_cell("loss", metrics["forg_loss"]))
    return table


def epoch_table(result: "FitResult", title: str, columns: list[str], headers: dict[str, str] | None = None) -> Table:
    """One row per epoch, the best one highlighted."""
    table = Table(title=title)
    for name in columns:
        table.add_column((headers or {}).get(name, name.replace("_", " ")), justify="right")
    for row in result.history:
        table.add_row(*(console.metric_cell(name, row.get(name)) for name in columns),
                      style="bold green" if row["epoch"] == result.best_epoch else None)
    return table


main = command(TrainOptions, run)

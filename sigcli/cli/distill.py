"""Distil a SigNet teacher into a new student while it learns new users (continual learning).

Each step pairs a batch of the distillation set D (inverted data, by default the downloaded
`inverted-data`, taught by the downloaded `signet-distill` teacher) with a batch of the
continual set C: loss = d-lamb·KL(D) + c-lamb·CE(C) + p-lamb·KL(C, teacher's users).
Without --c-data-path it is plain distillation (KL on D only). The student's head has the
teacher's K users first, then C's users. The best epoch is the highest mean of the D-val
and C-val accuracies (on ties, the one whose two accuracies are closer). Writes into
--logdir what `sig train` writes: model_best.pth / model_last.pth (usable by extract, wd,
wi), metrics.csv, config.json, train_state.pth (--resume). Runs under `torchrun` too.

Example: sig distill --c-data-path mcyt.npz --p-lamb 1.7 --logdir runs/distill-mcyt
"""

from __future__ import annotations

import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.cli.train import epoch_table
from sigcli.config.distill import DistillOptions

_HEADERS = {"val_d_acc": "D-val acc", "val_c_acc": "C-val acc", "val_score": "score"}


def run(options: DistillOptions) -> None:
    from sigcli.training.distill import distill, evaluate_student
    from sigcli.training.loop import is_main_process

    if options.test:
        metrics = evaluate_student(options)
        if is_main_process():
            if options.as_json:
                console.out.print_json(json.dumps(metrics))
            else:
                console.out.print(test_table(metrics))
        return
    result = distill(options, console.RichReporter())
    if not (result.history and is_main_process()):
        return
    if options.as_json:
        console.out.print_json(json.dumps(result.summary()))
        return
    columns = [c for c in ("epoch", "lr", "train_loss", "val_d_acc", "val_c_acc", "val_score", "seconds")
               if c in result.history[0]]
    console.out.print(epoch_table(result, "distillation", columns, _HEADERS))
    best = result.best_metrics or {}
    console.out.print(f"best epoch {result.best_epoch} (score {100 * best.get('score', float('nan')):.2f}%): "
                      f"{result.paths['best']}", highlight=False)


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


main = command(DistillOptions, run)

"""Meta-learn a network that adapts to a new writer in a few gradient steps (MAML; Hafemann et al., TIFS 2019).

A task is one writer: the network (--model signet or smallcnn, one logit) takes K =
--num-updates SGD steps on --num-gen of its genuine signatures and --num-rf random forgeries
(genuine signatures of other writers), and is then scored on --num-gen-test genuine
signatures, --num-rf-test random and --num-sk-test skilled forgeries. Meta-training
(--dev-users) learns the starting weights (and with --learn-task-lr the step sizes) that
make those few steps work; each epoch validates on --val-users and keeps the best. Writes
into --logdir, as `sig train` does: model_best.pth, model_last.pth, metrics.csv,
config.json and train_state.pth (--resume; Ctrl-C saves model_last.pth).

With --exp-users, the best meta-learner is then tested: --folds repetitions, in each every
test writer adapted to and scored; the results file is the one of `sig wd` (compare them
with `sig report`), its JSON summary also records the query accuracy before adaptation and
after each step. --test --checkpoint M only tests M.

Example: sig meta --data-path gpds.npz --model smallcnn --num-updates 1 --epochs 20 --exp-users 0 300 --logdir runs/meta
"""

from __future__ import annotations

import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.meta import MetaOptions


def run(options: MetaOptions) -> None:
    from sigcli.cli.report import summary_table
    from sigcli.meta.train import run_meta
    from sigcli.results import summarise

    result = run_meta(options, console.RichReporter())
    summary = {"mode": result.mode}
    if result.fit is not None and result.fit.history:
        summary.update(best_epoch=result.fit.best_epoch, best=result.fit.best_metrics,
                       checkpoint=str(result.fit.paths["best"]))
    if result.folds is not None:
        accuracy = result.query_accuracy.mean(axis=0)
        summary.update(results=str(result.paths["results"]), summary=summarise(result.folds),
                       query_accuracy={"before_adaptation": float(accuracy[0]),
                                       "after_step": [float(a) for a in accuracy[1:]]})
    if options.as_json:
        console.out.print_json(json.dumps(summary))
        return
    if result.fit is not None and result.fit.history:
        console.out.print(training_table(result.fit))
        console.out.print(f"best epoch {result.fit.best_epoch}: {result.fit.paths['best']}", highlight=False)
    if result.folds is not None:
        console.out.print(summary_table(summarise(result.folds),
                                        f"sig meta: {len(result.folds)} folds, mean ± std (%)"))
        steps = ", ".join(f"{100 * a:.1f}%" for a in summary["query_accuracy"]["after_step"])
        console.out.print(f"query accuracy: {100 * accuracy[0]:.1f}% before adaptation; after each step {steps}",
                          highlight=False)
        console.err.print(f"results: {result.paths['results']} (summary {result.paths['summary']})", highlight=False)


def training_table(fit) -> Table:
    """One row per epoch: meta-training loss and query accuracies, validation accuracy before and after."""
    table = Table(title="meta-training")
    columns = ["epoch", "lr", "train_loss", "train_acc_before", "train_acc", "val_acc_before", "val_acc", "seconds"]
    headers = {"train_acc_before": "train acc (before)", "train_acc": "train acc (after)",
               "val_acc_before": "val acc (before)", "val_acc": "val acc (after)"}
    for name in columns:
        table.add_column(headers.get(name, name.replace("_", " ")), justify="right")
    for row in fit.history:
        table.add_row(*(console.metric_cell(name.removesuffix("_before"), row.get(name)) for name in columns),
                      style="bold green" if row["epoch"] == fit.best_epoch else None)
    return table


main = command(MetaOptions, run)

"""Synthesise distillation data from a trained teacher (deep inversion with competition).

Optimises noise images until the teacher classifies them as its users and their feature
statistics match the teacher's batch-norm statistics, with smoothness priors; with
--s-model-path, the images also seek where a student disagrees with the teacher. The
result is a signature set (float 150×220, genuine only) that `sig distill --d-data-path`
takes as it is. Interrupted runs resume: finished batches wait in OUT.parts/ (--overwrite
discards those made with other options).

Writes OUT.npz and OUT.json (options, versions; per batch and for the set: how often the
teacher agrees, each loss term's share, how far the set's batch-norm statistics are from the
teacher's). The defaults (100 Adam steps per batch of 64) make a trained SigNet agree with
nearly all images; SigNet runs about 25 image-steps/s on one CPU core, so a GPU helps. If
the teacher rarely agrees with the targets, raise --iterations or --lr, or lower --bn-weight.

Example: sig invert --t-model-path model_best.pth --save-path inverted.npz --per-user 20 --preview inverted.png
"""

from __future__ import annotations

import dataclasses
import json

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.invert import InvertOptions


def run(options: InvertOptions) -> None:
    from sigcli.invert import invert

    report = invert(options, console.RichReporter())
    if options.as_json:
        console.out.print_json(json.dumps(dataclasses.asdict(report), default=str))
        return
    table = console.facts_table(f"inverted data: {console.literal(report.save_path)}")
    table.add_row("images", f"{report.images} ({report.users[1] - report.users[0]} users "
                            f"{report.users[0]}..{report.users[1] - 1}, {options.per_user} each)")
    table.add_row("batches", f"{report.batches} ({report.resumed_batches} resumed)")
    table.add_row("teacher agrees", f"{100 * report.teacher_accuracy:.1f}% classified as their user")
    terms = {k: v for k, v in report.final_terms.items() if k != "competition" or options.s_model_path}
    table.add_row("final terms", "  ".join(f"{k}={v:.4g}" for k, v in terms.items()))
    table.add_row("shares of the loss", "  ".join(f"{k}={100 * v:.0f}%" for k, v in report.term_shares.items()
                                                  if k in terms))
    if report.batch_norm:
        table.add_row("batch-norm distance", "  ".join(
            f"{row['mean_distance'] + row['std_distance']:.2f}" for row in report.batch_norm)
            + "  (per layer, mean + std distance in running std units)")
    table.add_row("time", f"{report.seconds:.1f} s on {report.device}")
    if report.preview is not None:
        table.add_row("preview", console.literal(report.preview))
    console.out.print(table)
    console.step(f"sig distill --d-data-path {report.save_path} --d-users {report.users[0]} {report.users[1]} ...")


main = command(InvertOptions, run)

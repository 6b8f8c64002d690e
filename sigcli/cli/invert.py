"""Synthesise distillation data from a trained teacher (deep inversion with competition).

Optimises noise images until the teacher classifies them as its users and their feature
statistics match the teacher's batch-norm statistics, with smoothness priors; with
--s-model-path, the images also seek where a student disagrees with the teacher. The
result is a signature set (float 150×220, genuine only) that `sig distill --d-dataset`
takes as it is. Interrupted runs resume: finished batches wait in OUT.parts/.

Writes OUT.npz and OUT.json (options, versions, how often the teacher agrees). The
defaults (200 Adam steps per batch of 64) suit small teachers on a CPU: about a minute per
batch on one core for a net of a few conv layers. SigNet runs about 25 image-steps/s on one
core: use a GPU for it. If the teacher rarely agrees with the targets, raise --iterations or
lower --l2-weight / --tv-weight.

Example: sig invert --t-model-path model_best.pth --save-path inverted.npz --per-user 20 --preview inverted.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sigcli.cli import console
from sigcli.invert import InvertOptions, invert
from sigcli.options import build, default

_O = InvertOptions


def main(
    t_model_path: Annotated[Path, typer.Option(help="Teacher checkpoint, with its user-classification layer.")],
    save_path: Annotated[Path, typer.Option(help="Output signature set (.npz).")],
    per_user: Annotated[int, typer.Option(help="Images to synthesise per teacher user.")],
    users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="The teacher's user index range FIRST LAST (LAST excluded): class k becomes user FIRST+k. "
             "\\[default: 0 and the number of classes]")] = default(_O, "users"),
    s_model_path: Annotated[Optional[Path], typer.Option(
        help="Student checkpoint: adds the competition term (images where the student disagrees).")] = None,
    iterations: Annotated[int, typer.Option(help="Adam steps per batch.")] = default(_O, "iterations"),
    lr: Annotated[float, typer.Option(help="Adam learning rate, decayed to 0 (cosine).")] = default(_O, "lr"),
    batch_size: Annotated[int, typer.Option(help="Images optimised together.")] = default(_O, "batch_size"),
    bn_weight: Annotated[float, typer.Option(help="Weight of the batch-norm statistics term.")] = default(_O, "bn_weight"),
    tv_weight: Annotated[float, typer.Option(help="Weight of the total-variation prior.")] = default(_O, "tv_weight"),
    l2_weight: Annotated[float, typer.Option(help="Weight of the L2 prior.")] = default(_O, "l2_weight"),
    competition_weight: Annotated[float, typer.Option(
        help="Weight of the competition term (needs --s-model-path).")] = default(_O, "competition_weight"),
    jitter: Annotated[int, typer.Option(help="Largest random shift (pixels) at each step.")] = default(_O, "jitter"),
    seed: Annotated[int, typer.Option(help="Seed of the noise and shifts.")] = default(_O, "seed"),
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu, cuda or cuda:N.")] = default(_O, "device"),
    preview: Annotated[Optional[Path], typer.Option(help="Write a PNG contact sheet of some images per user.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Discard finished batches made with other options instead of stopping.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --save-path (and its .json, and --preview).")] = False,
    allow_unsafe_checkpoint: Annotated[bool, typer.Option(
        "--allow-unsafe-checkpoint", help="Unpickle checkpoints that need it (trusted files only).")]
        = default(_O, "allow_unsafe_checkpoint"),
) -> None:
    options = build(InvertOptions, t_model_path=t_model_path, save_path=save_path, per_user=per_user, users=users,
                    s_model_path=s_model_path, iterations=iterations, lr=lr, batch_size=batch_size,
                    bn_weight=bn_weight, tv_weight=tv_weight, l2_weight=l2_weight,
                    competition_weight=competition_weight, jitter=jitter, seed=seed, device=device,
                    preview=preview, force=force, overwrite=overwrite,
                    allow_unsafe_checkpoint=allow_unsafe_checkpoint)
    report = invert(options, console.RichReporter())
    table = Table(title=f"inverted data: {console.literal(report.save_path)}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("images", f"{report.images} ({report.users[1] - report.users[0]} users "
                            f"{report.users[0]}..{report.users[1] - 1}, {options.per_user} each)")
    table.add_row("batches", f"{report.batches} ({report.resumed_batches} resumed)")
    table.add_row("teacher agrees", f"{100 * report.teacher_accuracy:.1f}% classified as their user")
    terms = {k: v for k, v in report.final_terms.items() if k != "competition" or options.s_model_path}
    table.add_row("final terms", "  ".join(f"{k}={v:.4g}" for k, v in terms.items()))
    table.add_row("time", f"{report.seconds:.1f} s on {report.device}")
    if report.preview is not None:
        table.add_row("preview", console.literal(report.preview))
    console.out.print(table)
    console.step(f"sig distill --d-dataset {report.save_path} --d-users {report.users[0]} {report.users[1]} ...")

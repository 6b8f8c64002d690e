"""Extract the features of every signature of a set with a trained network.

Each signature's centre 150×220 crop goes through the feature extractor in eval mode; the
features (N×D float32) are saved with y, yforg, user mapping and file names as a feature
file, which `sig wd` / `sig wi` read with --features. The architecture is recognised from
the checkpoint (--model only checks it). A memory-mapped folder set is streamed.

Example: sig extract --model-path signet.pth --data-path cedar.npz --save-path cedar_features.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sigcli.cli import console
from sigcli.features import ExtractOptions, run_extract
from sigcli.options import build, default

_O = ExtractOptions


def main(
    model_path: Annotated[Path, typer.Option(help="Checkpoint (.pth) of a trained network.")],
    data_path: Annotated[Path, typer.Option(help="Preprocessed set: .npz file or folder (memory-mapped).")],
    save_path: Annotated[Path, typer.Option(help="Feature file to write (.npz).")],
    users: Annotated[Optional[tuple[int, int]], typer.Option(
        help="Only user indices FIRST..LAST-1. \\[default: all]")] = default(_O, "users"),
    model: Annotated[Optional[str], typer.Option(
        help="Architecture; checked against the checkpoint. \\[default: detected]")] = default(_O, "model"),
    batch_size: Annotated[int, typer.Option(help="Signatures per forward pass.")] = default(_O, "batch_size"),
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu, cuda or cuda:N.")]
        = default(_O, "device"),
    allow_unsafe_checkpoint: Annotated[bool, typer.Option(
        "--allow-unsafe-checkpoint", help="Unpickle a checkpoint that needs it; can run code (trusted files only).")]
        = default(_O, "allow_unsafe_checkpoint"),
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read a pickled user_mapping (trusted files).")]
        = default(_O, "allow_pickle"),
) -> None:
    options = build(ExtractOptions, model_path=model_path, data_path=data_path, save_path=save_path, users=users,
                    model=model, batch_size=batch_size, device=device,
                    allow_unsafe_checkpoint=allow_unsafe_checkpoint, allow_pickle=allow_pickle)
    features = run_extract(options, console.RichReporter())
    console.out.print(f"{len(features.y)} signatures × {features.dim} features ({features.source}) → "
                      f"{options.save_path}", markup=False, highlight=False)

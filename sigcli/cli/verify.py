"""Verify questioned signatures against a writer's genuine references.

Every QUERY image is compared with the -r/--reference images of one writer (raw scans, ink
dark on light paper; a folder stands for every image in it). All are normalised as the
training images were, their features extracted with --model-path, and each query gets a
score where higher means more genuine: the decision values of a writer-independent SVM
(--classifier, from 'sig wi --save-model') or the cosine similarity of the features
(--metric euclidean: minus their distance), fused over the references (--fusion). A query
is judged genuine at or above --threshold; by default 0 with --classifier, otherwise the
lowest leave-one-out score among the references (a heuristic: give --threshold for a
calibrated one). Unreadable and blank images are named and left out.

Images are made on the canvas recorded with the model (the WI classifier's, or the
config.json 'sig train' and 'sig distill' write beside model_best.pth / model_last.pth); a
--dataset or --canvas that contradicts it is refused unless --override-canvas. With nothing
recorded: the --dataset's canvas, --canvas H W, or else the smallest one holding every given
image with 20% room (with a warning: the scores then depend on which images are given).

Examples:

  sig verify --model-path signet.pth -r refs/ query1.png query2.png

  sig verify --model-path signet.pth -r a.png -r b.png --dataset gpds --classifier wi.skops --json q.png

Give -r once per file or a folder: after '-r refs/*.png' the shell passes only the first file to -r
and the others become queries.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from sigcli.cli import console
from sigcli.device import HELP as DEVICE_HELP
from sigcli.options import build, default
from sigcli.verify import DEFAULT_METRIC, DISTANCE_FUSION, Metric, VerifyOptions, VerifyResult, verify

_O = VerifyOptions


class Fusion(str, Enum):
    max = "max"
    min = "min"
    mean = "mean"
    median = "median"


def main(
    queries: Annotated[list[Path], typer.Argument(
        metavar="QUERY", help="Questioned images or folders of them.", show_default=False)],
    model_path: Annotated[Path, typer.Option(help="Checkpoint (.pth) of the feature extractor.")],
    reference: Annotated[list[Path], typer.Option(
        "--reference", "-r", metavar="IMAGE|FOLDER",
        help="A genuine reference image or a folder of them; repeat for more.")],
    classifier: Annotated[Optional[Path], typer.Option(
        help="WI classifier (.skops) of 'sig wi --save-model'. \\[default: score by --metric]")]
        = default(_O, "classifier"),
    metric: Annotated[Optional[Metric], typer.Option(
        help=f"Feature distance without --classifier. \\[default: {DEFAULT_METRIC.value}]")] = default(_O, "metric"),
    fusion: Annotated[Optional[Fusion], typer.Option(
        help=f"How the scores against the references combine. \\[default: the classifier's, else {DISTANCE_FUSION}]")]
        = default(_O, "fusion"),
    threshold: Annotated[Optional[float], typer.Option(
        help="Scores at or above it are genuine. \\[default: 0 with --classifier, else the lowest leave-one-out "
             "score of the references]")] = default(_O, "threshold"),
    dataset: Annotated[Optional[str], typer.Option(
        help="Use this dataset's canvas (see 'sig datasets'). \\[default: recorded with the model, else from the "
             "images]")] = default(_O, "dataset"),
    canvas: Annotated[Optional[tuple[int, int]], typer.Option(
        help="Canvas height and width. \\[default: recorded with the model, else from the images]")]
        = default(_O, "canvas"),
    override_canvas: Annotated[bool, typer.Option(
        "--override-canvas", help="Use --dataset or --canvas even where they contradict the canvas recorded with "
                                  "the model or the classifier.")] = default(_O, "override_canvas"),
    model: Annotated[Optional[str], typer.Option(
        help="Architecture; checked against the checkpoint. \\[default: detected]")] = default(_O, "model"),
    device: Annotated[str, typer.Option(help=DEVICE_HELP)]
        = default(_O, "device"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    allow_unsafe_checkpoint: Annotated[bool, typer.Option(
        "--allow-unsafe-checkpoint", help="Unpickle a checkpoint that needs it; can run code (trusted files only).")]
        = default(_O, "allow_unsafe_checkpoint"),
) -> None:
    options = build(VerifyOptions, model_path=model_path, references=reference, queries=queries,
                    classifier=classifier, metric=metric, fusion=fusion.value if fusion else None,
                    threshold=threshold, dataset=dataset, canvas=canvas, override_canvas=override_canvas, model=model,
                    device=device, allow_unsafe_checkpoint=allow_unsafe_checkpoint)
    result = verify(options, console.RichReporter())
    if as_json:
        console.out.print(json.dumps(result.as_dict(), indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        console.out.print(_table(result))


def _table(result: VerifyResult) -> Table:
    scoring = {"wi-svm": "WI SVM decision value", "cosine": "cosine similarity",
               "euclidean": "minus the Euclidean distance"}[result.scoring]
    places = decisive_places([q.score for q in result.queries], result.threshold)
    threshold = "no threshold" if result.threshold is None else f"threshold {result.threshold:.{places}f}"
    table = Table(title=f"sig verify: {len(result.queries)} queries against {len(result.references)} references",
                  caption=escape(f"score: {scoring}, {result.fusion} over the references; {threshold} "
                                 f"({result.threshold_from}); canvas {result.canvas[0]}×{result.canvas[1]} "
                                 f"({result.canvas_from})"))
    table.add_column("query", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("decision")
    table.add_column("nearest reference", overflow="fold")
    table.add_column("its score", justify="right")
    for query in result.queries:
        decision = {None: "-", True: "[green]genuine[/green]", False: "[red]forgery[/red]"}[query.genuine]
        table.add_row(escape(query.file), f"{query.score:.{places}f}", decision, escape(query.nearest),
                      f"{query.nearest_score:.{places}f}")
    return table


def decisive_places(scores: list[float], threshold: float | None, fewest: int = 4, most: int = 17) -> int:
    """Decimal places (at least ``fewest``) at which every score that differs from the threshold
    is shown differently from it, so that the printed numbers agree with the decisions."""
    if threshold is None:
        return fewest
    differing = [score for score in scores if score != threshold]
    for places in range(fewest, most + 1):
        if all(f"{score:.{places}f}" != f"{threshold:.{places}f}" for score in differing):
            return places
    return most

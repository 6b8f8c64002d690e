"""Verify questioned signatures against a writer's genuine references.

Every QUERY image is compared with the -r/--reference images of one writer (raw scans, ink
dark on light paper; a folder stands for every image in it). All are normalised as the
training images were, their features extracted with --model-path, and each query gets a
score where higher means more genuine: the decision values of a writer-independent SVM
(--classifier-path, from 'sig wi --save-model') or the cosine similarity of the features
(--metric euclidean: minus their distance), fused over the references (--fusion). A query
is judged genuine at or above --threshold; by default 0 with --classifier-path, otherwise the
lowest leave-one-out score among the references (a heuristic: give --threshold for a
calibrated one). Unreadable and blank images are named and left out.

Images are made on the canvas recorded with the model (the WI classifier's, or the
config.json 'sig train' and 'sig distill' write beside model_best.pth / model_last.pth); a
--dataset or --canvas that contradicts it is refused unless --override-canvas. With nothing
recorded: the --dataset's canvas, --canvas H W, or else the smallest one holding every given
image with 20% room (with a warning: the scores then depend on which images are given).

A classifier saved by 'sig wi --save-model' carries thresholds calibrated on its development
users: --operating-point eer (equal error rate against skilled forgeries), far=0.01 or far=0.001
(at most 1% or 0.1% of skilled forgeries accepted), random:eer, random:far=0.01, ... (against
random forgeries), or boundary (0, the default); the decisions then come with the error rates
that point gave there. A classifier trained on features of another checkpoint, or on images of
another canvas, is refused unless --allow-classifier-mismatch.

A list of pairs (--pairs pairs.csv, header reference,query,label: a reference folder, a query
image and optionally 1 genuine / 0 forgery) is scored in one run: each reference folder is
enrolled once, queries are extracted in batches, rows that cannot be scored are named and
skipped, and with labels FRR, FAR (of the decisions) and the EER (of the scores) are shown.
--save-path FILE.csv keeps every row's score and decision; FILE.json the whole record.

Examples:

  sig verify --model-path signet.pth -r refs/ query1.png query2.png

  sig verify --model-path signet.pth -r a.png -r b.png --dataset gpds --classifier-path wi.skops --json q.png

  sig verify --model-path run/model_best.pth --classifier-path wi.skops --operating-point far=0.01 -r refs/ q.png

  sig verify --model-path run/model_best.pth --classifier-path wi.skops --pairs pairs.csv --save-path scores.csv

Give -r once per file or a folder: after '-r refs/*.png' the shell passes only the first file to -r
and the others become queries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.verify import VerifyOptions

if TYPE_CHECKING:
    from sigcli.verify import VerifyResult
    from sigcli.verify_pairs import PairsResult


def run(options: VerifyOptions) -> None:
    if options.pairs is not None:
        from sigcli.verify_pairs import verify_pairs

        result = verify_pairs(options, console.RichReporter())
    else:
        from sigcli.verify import verify

        result = verify(options, console.RichReporter())
    if options.as_json:
        console.out.print(json.dumps(result.as_dict(), indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        console.out.print(_table(result) if options.pairs is None else _pairs_table(result, options))


def _pairs_table(result: PairsResult, options: VerifyOptions) -> Table:
    """What a list of pairs gave: counts, the threshold, the skipped rows' reasons and, with labels, the metrics."""
    scored = len(result.pairs) - len(result.skipped)
    table = Table(title=f"sig verify --pairs: {len(result.pairs)} rows of {options.pairs}", show_header=False,
                  caption=escape(f"score: {_SCORING[result.scoring]}, {result.fusion} over the references; canvas "
                                 f"{result.canvas[0]}×{result.canvas[1]} ({result.canvas_from})"
                                 f"{calibrated_rates(result.operating_point)}"))
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("scored", f"{scored} pairs against {result.references} references")
    threshold = "per writer" if result.threshold is None else f"{result.threshold:.6g}"
    table.add_row("threshold", escape(f"{threshold} ({result.threshold_from})"))
    for reason, count in result.skip_summary():
        table.add_row(f"skipped {count}", escape(reason))
    metrics = result.metrics
    if metrics is not None:
        table.add_row("labelled", f"{metrics['genuine']} genuine, {metrics['forgeries']} forgeries "
                                  f"({metrics['decided']} decided)")
        for name in ("FRR", "FAR", "EER"):
            if metrics[name] is not None:
                table.add_row(name, f"{100 * metrics[name]:.2f} %"
                              + (f" (at threshold {metrics['eer_threshold']:.6g})" if name == "EER" else ""))
        if metrics["AUC"] is not None:
            table.add_row("AUC", f"{metrics['AUC']:.4f}")
    if options.save_path is not None:
        table.add_row("saved", escape(str(options.save_path)))
    return table


_SCORING = {"wi-svm": "WI SVM decision value", "cosine": "cosine similarity",
            "euclidean": "minus the Euclidean distance"}


def _table(result: VerifyResult) -> Table:
    scoring = _SCORING[result.scoring]
    places = decisive_places([q.score for q in result.queries], result.threshold)
    threshold = "no threshold" if result.threshold is None else f"threshold {result.threshold:.{places}f}"
    table = Table(title=f"sig verify: {len(result.queries)} queries against {len(result.references)} references",
                  caption=escape(f"score: {scoring}, {result.fusion} over the references; {threshold} "
                                 f"({result.threshold_from}){calibrated_rates(result.operating_point)}; canvas "
                                 f"{result.canvas[0]}×{result.canvas[1]} ({result.canvas_from})"))
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


def calibrated_rates(point: dict | None) -> str:
    """``; at operating point eer, on 40 development users: FRR 5.00%, ...``, or nothing when uncalibrated."""
    if point is None:
        return ""
    rates = [f"FRR {point['frr']:.2%}"] + [f"FAR {kind} {point[f'far_{kind}']:.2%}" for kind in ("skilled", "random")
                                           if point[f"far_{kind}"] is not None]
    return (f"; at operating point {point['name']}, on {point['calibrated_on']['users']} development users: "
            f"{', '.join(rates)}")


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


main = command(VerifyOptions, run)

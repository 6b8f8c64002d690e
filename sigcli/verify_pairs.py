"""Verify a list of (reference folder, query) pairs: ``sig verify --pairs``
(docs/evaluation.md#verifying-lists-of-pairs).

Each distinct reference is enrolled once and each distinct query image extracted once, in
batches, so a list of thousands of pairs costs one pass over its distinct images. A row
that cannot be scored (a malformed label, a missing or unusable reference or query) is
named in a warning and kept in the result with the reason, never scored. With labels, the
error rates of the decisions and the EER of the scores are measured.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sigcli import progress
from sigcli.config.verify import VerifyOptions
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output
from sigcli.metrics import equal_error_rate, user_aucs
from sigcli.progress import Reporter
from sigcli.verify import Skipped, Verifier, Writer, verifier_options

log = logging.getLogger(__name__)

COLUMNS = ("reference", "query", "label")
#: Skipped rows named one by one in warnings before the rest are only counted.
NAMED_WARNINGS = 10
LABEL_HINT = "1 (genuine), 0 (forgery) or empty"


@dataclass
class PairScore:
    """One row of the pairs file and what became of it."""

    row: int  # line of the CSV file (the header is line 1)
    reference: str  # as written in the file
    query: str
    label: int | None  # 1 genuine, 0 forgery, None unlabelled
    score: float | None = None
    genuine: bool | None = None  # the decision; None without a threshold or when skipped
    threshold: float | None = None
    skipped: str | None = None  # why the row was not scored


@dataclass
class PairsResult:
    scoring: str
    fusion: str
    threshold: float | None  # the same for every writer; None when each writer's references set theirs
    threshold_from: str
    operating_point: dict | None
    canvas: tuple[int, int]
    canvas_from: str
    image_size: tuple[int, int]
    model: str
    references: int  # distinct references enrolled
    pairs: list[PairScore] = field(default_factory=list)
    metrics: dict | None = None  # with labels (see :func:`pair_metrics`)

    @property
    def skipped(self) -> list[PairScore]:
        return [pair for pair in self.pairs if pair.skipped is not None]

    def skip_summary(self) -> list[tuple[str, int]]:
        """Reasons of the skipped rows, most frequent first, with their counts."""
        return Counter(pair.skipped for pair in self.skipped).most_common()

    def as_dict(self) -> dict:
        record = asdict(self)
        record["canvas"], record["image_size"] = list(self.canvas), list(self.image_size)
        record["skipped"] = [{"reason": reason, "rows": count} for reason, count in self.skip_summary()]
        return record


def verify_pairs(options: VerifyOptions, reporter: Reporter | None = None) -> PairsResult:
    """Score every row of ``options.pairs``; write ``options.save_path`` when given (checked first)."""
    if options.save_path is not None:
        check_output(options.save_path, overwrite=options.overwrite,
                     inputs=(options.pairs, options.model_path, options.classifier_path))
    pairs = read_pairs(options.pairs)
    verifier = Verifier(verifier_options(options))  # its own steps stay silent: the bars below count the list
    verifier.known_canvas()
    folder = options.pairs.parent
    located = {text: Path(text) if Path(text).is_absolute() else folder / text
               for pair in pairs for text in (pair.reference, pair.query)}
    reporter = progress.resolve(reporter)
    by_reference, by_query = _rows_by(pairs, "reference"), _rows_by(pairs, "query")
    writers = _enroll(verifier, by_reference, located, reporter)
    features = _query_features(verifier, by_query, located, options.batch_size, reporter)
    for reference, writer in writers.items():
        rows = [pair for pair in by_reference[reference] if pair.skipped is None]
        if not rows:
            continue
        threshold, _ = verifier.threshold_for(writer)
        scores = verifier.scores(writer, np.stack([features[pair.query] for pair in rows]))
        for pair, score in zip(rows, scores):
            pair.score, pair.threshold = float(score), threshold
            pair.genuine = None if threshold is None else bool(score >= threshold)
    _warn_skipped(pairs)
    result = PairsResult(verifier.scoring, verifier.fusion, verifier.threshold,
                         verifier.threshold_from or "lowest leave-one-out score of each writer's references",
                         verifier.operating_point_record(), verifier.canvas, verifier.canvas_from,
                         verifier.image_size, verifier.identity, sum(w is not None for w in writers.values()), pairs,
                         pair_metrics(pairs))
    if options.save_path is not None:
        save_pairs(result, options.save_path, options.overwrite)
    return result


def read_pairs(path: Path) -> list[PairScore]:
    """The rows of a pairs file; a malformed row is kept with the reason it will be skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not part of the header
    except FileNotFoundError:
        raise InputError(f"no pairs file at {path}", "give a CSV file with the header reference,query,label") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable text (CSV) file: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "reference" not in header or "query" not in header:
        raise InputError(f"{path} has no header with the columns reference and query (found: "
                         f"{','.join(header) or 'nothing'})", "the first line must be reference,query,label")
    reader.fieldnames = header
    pairs = []
    for row in reader:
        values = {key: (row.get(key) or "").strip() for key in COLUMNS}
        pair = PairScore(reader.line_num, values["reference"], values["query"], None)
        if values["label"] in ("0", "1"):
            pair.label = int(values["label"])
        elif values["label"]:
            pair.skipped = f"label {values['label']!r} is not {LABEL_HINT}"
        if not pair.reference or not pair.query:
            pair.skipped = f"no {'reference' if not pair.reference else 'query'}"
        pairs.append(pair)
    if not pairs:
        raise InputError(f"{path} has a header but no pairs", "add one row per (reference, query) pair")
    return pairs


def _rows_by(pairs: list[PairScore], column: str) -> dict[str, list[PairScore]]:
    """The rows still in play, grouped by the reference or query they name (in order of first use)."""
    groups: dict[str, list[PairScore]] = {}
    for pair in pairs:
        if pair.skipped is None:
            groups.setdefault(getattr(pair, column), []).append(pair)
    return groups


def _enroll(verifier: Verifier, by_reference: dict[str, list[PairScore]], located: dict[str, Path],
            reporter: progress.Reporter) -> dict[str, Writer | None]:
    """Each distinct reference enrolled once (``None``: it could not be; its rows are skipped)."""
    writers: dict[str, Writer | None] = {}
    references = list(by_reference)
    with reporter.task("verify pairs: enroll references", len(references)) as task:
        for reference in references:
            skipped: list[Skipped] = []
            try:
                writers[reference] = verifier.enroll(located[reference], skipped)
            except InputError as exc:  # no usable image: say why each was left out
                writers[reference] = None
                reasons = sorted({entry.reason for entry in skipped})
                _skip_rows(by_reference[reference], "reference", "; ".join(reasons) if reasons else exc.message)
            task.advance(1)
    return writers


def _query_features(verifier: Verifier, by_query: dict[str, list[PairScore]], located: dict[str, Path],
                    batch_size: int, reporter: progress.Reporter) -> dict[str, np.ndarray]:
    """Features of each distinct query of a row still in play, extracted in batches of ``batch_size``."""
    queries = []
    for query, rows in by_query.items():
        if located[query].is_dir():
            _skip_rows(rows, "query", "a folder, not one query image")
        elif any(pair.skipped is None for pair in rows):  # its references may all have failed
            queries.append(query)
    features: dict[str, np.ndarray] = {}
    with reporter.task("verify pairs: queries", len(queries)) as task:
        for start in range(0, len(queries), batch_size):
            chunk = queries[start:start + batch_size]
            skipped: list[Skipped] = []
            prepared = verifier.prepare([located[query] for query in chunk], "query", skipped)
            reasons = {entry.file: entry.reason for entry in skipped}
            names = {str(located[query]): query for query in chunk}
            if prepared:
                for (name, _), vector in zip(prepared, verifier.extract([image for _, image in prepared])):
                    features[names[name]] = vector
            for query in chunk:
                if query not in features:
                    _skip_rows(by_query[query], "query", reasons[str(located[query])])
            task.advance(len(chunk))
    return features


def _skip_rows(rows: list[PairScore], column: str, reason: str) -> None:
    """Mark the rows not yet skipped: ``column`` (reference or query) says which of their images failed."""
    for pair in rows:
        if pair.skipped is None:
            pair.skipped = f"{column}: {reason}"


def _warn_skipped(pairs: list[PairScore]) -> None:
    skipped = [pair for pair in pairs if pair.skipped is not None]
    for pair in skipped[:NAMED_WARNINGS]:
        log.warning("skipped row %d (%s, %s): %s", pair.row, pair.reference, pair.query, pair.skipped)
    if skipped:
        log.warning("%d of %d rows skipped%s", len(skipped), len(pairs),
                    " (the first named above)" if len(skipped) > NAMED_WARNINGS else "")


def pair_metrics(pairs: list[PairScore]) -> dict | None:
    """With labelled scored rows: their counts; FRR and FAR of the decisions (rows without a
    decision left out); and, with both labels, the EER of the scores (one global threshold,
    docs/evaluation.md#eer-with-a-global-threshold) and the ROC AUC."""
    labelled = [pair for pair in pairs if pair.label is not None and pair.score is not None]
    if not labelled:
        return None
    genuine = np.array([pair.score for pair in labelled if pair.label == 1])
    forgeries = np.array([pair.score for pair in labelled if pair.label == 0])
    decided = [pair for pair in labelled if pair.genuine is not None]

    def error_share(label: int) -> float | None:
        rows = [pair for pair in decided if pair.label == label]
        return float(np.mean([pair.genuine != bool(label) for pair in rows])) if rows else None

    metrics = {"genuine": len(genuine), "forgeries": len(forgeries), "decided": len(decided),
               "FRR": error_share(1), "FAR": error_share(0), "EER": None, "eer_threshold": None, "AUC": None}
    if len(genuine) and len(forgeries):
        metrics["EER"], metrics["eer_threshold"] = equal_error_rate(genuine, forgeries)
        metrics["AUC"] = user_aucs([genuine], [forgeries])[1]
    return metrics


def save_pairs(result: PairsResult, path: Path, overwrite: bool = False) -> Path:
    """Every row with its score and decision (``.csv``), or the whole record (``.json``), atomically."""
    if path.suffix.lower() == ".json":
        text = json.dumps(result.as_dict(), indent=2) + "\n"
    else:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(["row", "reference", "query", "label", "score", "decision", "threshold", "skipped"])
        for pair in result.pairs:
            decision = {None: "", True: "genuine", False: "forgery"}[pair.genuine]
            writer.writerow([pair.row, pair.reference, pair.query, _cell(pair.label), _cell(pair.score), decision,
                             _cell(pair.threshold), pair.skipped or ""])
        text = buffer.getvalue()
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return path


def _cell(value: object) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)

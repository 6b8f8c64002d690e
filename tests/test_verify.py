"""sig verify: scores of raw images against references, bad images, JSON, WI classifier files.

The fixture draws 6 synthetic writers (``sig synth``'s generator) and trains a small
registered network with the SigNet objective (``train_signet``) on their signatures, except
the ones held out for the tests: each writer's genuine 8 and 9 and skilled forgery 4 (the
work of a forger the training never saw). Genuine 0-4 are the references.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation_data import option_names
from sigcli.config.evaluation import WIOptions
from sigcli.config.preprocess import MAX_CANVAS_PIXELS
from sigcli.config.verify import VerifyOptions
from sigcli.data.loader import read_gray
from sigcli.data.sigset import Canvas, SignatureSet
from sigcli.data.synth import user_signatures
from sigcli.errors import InputError
from sigcli.features import FeatureSet, extract_features
from sigcli.models.checkpoint import load_checkpoint
from sigcli.options import build
from sigcli.preprocess import IMAGE_SIZE, preprocess_signature
from sigcli.protocols.svm import from_pipeline
from sigcli.protocols.wi import evaluate_wi, load_wi_model, save_wi_model, score_queries
from sigcli.training.supervised import TrainOptions, train_signet
from sigcli.verify import QueryScore, VerifyResult, canvas_for, verify
from training_data import VERIFY_NET as SMALL_NET

WRITERS = 6
COUNTS = {"genuine": 10, "skilled": 5}
REFERENCES = range(5)  # genuine indices
HELD_OUT = {("genuine", 8), ("genuine", 9), ("skilled", 4)}


@dataclass
class Writers:
    files: dict[tuple[int, str, int], Path]  # (writer, kind, index) → PNG file, references and held-out only
    canvas: tuple[int, int]
    model_path: Path
    train_images: SignatureSet

    def file(self, writer: int, kind: str, index: int) -> Path:
        return self.files[writer, kind, index]

    def references(self, writer: int) -> list[Path]:
        return [self.files[writer, "genuine", k] for k in REFERENCES]


@pytest.fixture(scope="module")
def writers(tmp_path_factory) -> Writers:
    root = tmp_path_factory.mktemp("verify")
    images = {(u, kind, k): image for u in range(WRITERS) for kind, k, image in user_signatures(u, COUNTS, seed=0)}
    canvas = canvas_for([image.shape for image in images.values()])
    files = {}
    for (u, kind, k), image in images.items():
        if (kind, k) in HELD_OUT or (kind == "genuine" and k in REFERENCES):
            files[u, kind, k] = root / f"w{u}_{kind}{k}.png"
            Image.fromarray(image).save(files[u, kind, k])
    train = [key for key in images if key[1:] not in HELD_OUT]
    train_set = SignatureSet(np.stack([preprocess_signature(images[key], canvas) for key in train])[:, None],
                             np.array([u for u, _, _ in train]), np.array([kind == "skilled" for _, kind, _ in train],
                                                                          dtype=np.int64))
    train_set.save(root / "train.npz")
    options = TrainOptions(data_path=root / "train.npz", logdir=root / "run", model=SMALL_NET, epochs=20, lr=0.03,
                           lr_decay_times=1, batch_size=16, device="cpu", seed=42)
    train_signet(options)
    return Writers(files, canvas, root / "run" / "model_last.pth", train_set)


def _verify(writers: Writers, references: list[Path], queries: list[Path], **options) -> VerifyResult:
    return verify(build(VerifyOptions, model_path=writers.model_path, references=references, queries=queries,
                        canvas=writers.canvas, device="cpu", **options))


def test_genuine_query_scores_above_its_skilled_forgery_and_other_writers(writers, cli):
    """Writer 3, cosine (the default): both held-out genuines score above the held-out skilled forgery by
    an unseen forger and above the held-out genuine of each of the 5 other writers.

    Writer 3 is one whose unseen forger this small model tells apart (for writers 1 and 5 it
    does not: their forgery scores within 0.02 of their genuines); the next test checks every writer
    against the others.
    """
    genuine = [writers.file(3, "genuine", 8), writers.file(3, "genuine", 9)]
    skilled = writers.file(3, "skilled", 4)
    others = [writers.file(u, "genuine", 9) for u in range(WRITERS) if u != 3]
    result = cli("verify", "--model-path", writers.model_path, *_r(writers.references(3)), "--canvas", *writers.canvas, "--device", "cpu",
                 "--json", *genuine, skilled, *others)
    assert result.exit_code == 0, result.output
    scores = {Path(q["file"]): q["score"] for q in json.loads(result.stdout)["queries"]}
    lowest_genuine = min(scores[path] for path in genuine)
    assert lowest_genuine > scores[skilled]
    assert lowest_genuine > max(scores[path] for path in others)


def test_every_writer_is_closest_to_itself_by_euclidean_distance(writers):
    """For each of the 6 writers as the claimed one: its own held-out genuine scores above every other
    writer's held-out genuine (scores are minus the mean distance)."""
    queries = [writers.file(u, "genuine", 9) for u in range(WRITERS)]
    for claimed in range(WRITERS):
        result = _verify(writers, writers.references(claimed), queries, metric="euclidean")
        scores = [q.score for q in result.queries]
        assert result.scoring == "euclidean" and all(score < 0 for score in scores)
        assert int(np.argmax(scores)) == claimed, (claimed, scores)
        assert result.queries[claimed].nearest in map(str, writers.references(claimed))


def test_json_output_structure_and_default_threshold(writers, cli):
    references = writers.references(0)
    queries = [writers.file(0, "genuine", 8), writers.file(1, "genuine", 8)]
    result = cli("verify", "--model-path", writers.model_path, *_r(references), "--canvas",
                 *writers.canvas, "--json", *queries)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) == {"scoring", "fusion", "threshold", "threshold_from", "canvas", "canvas_from", "image_size",
                           "model", "references", "queries", "skipped", "operating_point"}
    assert record["operating_point"] is None  # no calibrated classifier
    assert (record["scoring"], record["fusion"], record["canvas"], record["image_size"], record["skipped"]) == \
           ("cosine", "mean", list(writers.canvas), list(IMAGE_SIZE), [])
    assert record["model"].startswith(f"{SMALL_NET}:")
    assert record["references"] == [str(p) for p in references]
    assert [q["file"] for q in record["queries"]] == [str(p) for p in queries]
    for query in record["queries"]:
        assert set(query) == {"file", "score", "genuine", "nearest", "nearest_score"}
        assert query["genuine"] == (query["score"] >= record["threshold"])
        assert query["nearest"] in record["references"]
    # The default threshold: the lowest mean cosine similarity of a reference to the 4 others.
    features = _features(writers, references, [])
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    leave_one_out = (similarity.sum(axis=1) - similarity.diagonal()) / 4
    assert record["threshold"] == pytest.approx(leave_one_out.min(), abs=1e-6)


def test_bad_images_are_named_and_left_out(writers, cli, tmp_path):
    blank, corrupt, empty = tmp_path / "blank.png", tmp_path / "corrupt.png", tmp_path / "empty"
    Image.fromarray(np.full((120, 300), 235, np.uint8)).save(blank)
    corrupt.write_bytes(writers.file(0, "genuine", 8).read_bytes()[:300])  # a truncated PNG
    empty.mkdir()
    good = writers.file(0, "genuine", 8)
    refs = _r(writers.references(0) + [blank])
    result = cli("verify", "--model-path", writers.model_path, *refs, "--canvas", *writers.canvas, "--json",
                 corrupt, good, blank, tmp_path / "missing.png", empty)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [q["file"] for q in record["queries"]] == [str(good)]
    assert str(blank) not in record["references"] and len(record["references"]) == 5
    reasons = {(s["role"], Path(s["file"]).name): s["reason"] for s in record["skipped"]}
    paths = {Path(s["file"]).name: s["file"] for s in record["skipped"]}
    assert set(reasons) == {("reference", "blank.png"), ("query", "corrupt.png"), ("query", "blank.png"),
                            ("query", "missing.png"), ("query", "empty")}
    assert reasons["query", "corrupt.png"].startswith("unreadable image")  # the reasons of 'sig preprocess'
    assert "single grey level" in reasons["query", "blank.png"]
    assert reasons["query", "missing.png"] == "no such file"
    stderr = "".join(result.stderr.split())  # rich wraps long lines
    for role, name in reasons:  # one warning each on stderr, naming the file
        assert stderr.count(f"skipped{role}{paths[name]}:") == 1, result.stderr


def test_no_usable_query_or_reference_exits_2(writers, cli, tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 300), 235, np.uint8)).save(blank)
    base = ["verify", "--model-path", writers.model_path, "--canvas", *writers.canvas]
    no_query = cli(*base, "-r", writers.file(0, "genuine", 0), blank, tmp_path / "missing.png")
    assert no_query.exit_code == 2
    assert no_query.stderr.strip().splitlines()[-1].startswith(
        "error: no usable query image: all 2 given were left out")
    no_reference = cli(*base, "-r", blank, writers.file(0, "genuine", 8))
    assert no_reference.exit_code == 2
    assert "error: no usable reference image: all 1 given were left out" in no_reference.stderr


def test_help_shows_examples_and_names_every_option(cli):
    result = cli("verify", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "sig verify --model-path signet.pth -r refs/ query1.png query2.png" in result.stdout
    for name in option_names(VerifyOptions):
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.stdout), name


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cedar", "--canvas", "100", "140"], "--dataset and --canvas both set the canvas"),
    (["--classifier-path", "wi.skops", "--metric", "cosine"], "--metric cosine has no effect with --classifier-path"),
    (["--fusion", "mode"], "'mode' is not one of"),
])
def test_conflicting_options_exit_2(cli, args, message):
    result = cli("verify", "--model-path", "model.pth", "-r", "a.png", *args, "b.png")
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_wi_classifier_file_scores_as_sig_wi(writers, tmp_path):
    """A classifier of `sig wi --save-model` (trained here on the training signatures' features by the
    library) gives, through verify, exactly the fused scores of `score_queries` on the same features."""
    checkpoint = load_checkpoint(writers.model_path)
    train = writers.train_images
    feature_set = FeatureSet(extract_features(checkpoint.build_model(), train), train.y, train.yforg,
                             source=checkpoint.identity())
    options = build(WIOptions, exp_users=(0, 3), dev_users=(3, 6), gen_for_train=4, gen_for_ref=3, gen_for_test=2,
                    folds=1, fusion="median")
    run = evaluate_wi(feature_set, options)
    model_file = save_wi_model(tmp_path / "wi.skops", run.classifier, options, feature_set.dim,
                               source=feature_set.source)

    references = writers.references(2)
    queries = [writers.file(2, "genuine", 9), writers.file(2, "skilled", 4), writers.file(4, "genuine", 9)]
    result = _verify(writers, references, queries, classifier_path=model_file)
    features = _features(writers, references, queries)
    expected = score_queries(from_pipeline(load_wi_model(model_file).classifier), features[len(references):],
                             features[:len(references)], "median")
    assert (result.scoring, result.fusion, result.threshold) == ("wi-svm", "median", 0.0)
    np.testing.assert_allclose([q.score for q in result.queries], expected, rtol=1e-9, atol=1e-9)
    assert [q.genuine for q in result.queries] == [bool(s >= 0) for s in expected]
    maximum = _verify(writers, references, queries, classifier_path=model_file, fusion="max")
    assert [q.score for q in maximum.queries] == pytest.approx([q.nearest_score for q in maximum.queries])


@pytest.mark.parametrize("shapes, expected", [
    ([(170, 242)], (204, 291)),            # exactly the aspect ratio: 1.2× each side, rounded up
    ([(100, 500), (300, 200)], (422, 600)),  # width 500 needs height 351.2, and 300 fits in that
])
def test_computed_canvas_holds_every_image_with_the_margin(shapes, expected):
    canvas = canvas_for(shapes)
    assert canvas == expected
    assert all(h * 1.2 <= canvas[0] and w * 1.2 <= canvas[1] for h, w in shapes)
    assert math.isclose(canvas[1] / canvas[0], IMAGE_SIZE[1] / IMAGE_SIZE[0], rel_tol=0.01)


def _r(references: list[Path]) -> list[object]:
    return [arg for path in references for arg in ("-r", path)]


def _features(writers: Writers, references: list[Path], queries: list[Path]) -> np.ndarray:
    """Features of the files as verify computes them: read, normalised on the canvas, one batch."""
    images = np.stack([preprocess_signature(read_gray(p), writers.canvas) for p in references + queries])[:, None]
    zeros = np.zeros(len(images), dtype=np.int64)
    model = load_checkpoint(writers.model_path).build_model()
    return extract_features(model, SignatureSet(images, zeros, zeros), batch_size=len(images))


# --------------------------------------------------------------------------- recorded canvas
RECORDED = Canvas("mcyt", (600, 850), IMAGE_SIZE)  # MCYT's canvas, as 'sig preprocess --dataset mcyt' records it


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    """A one-epoch TINY run on a set with the options file 'sig preprocess --dataset mcyt' writes beside it."""
    from sigcli.options import save_options
    from sigcli.config.preprocess import PreprocessOptions
    from sigcli.preprocess import options_file
    from training_data import TINY, signature_set

    root = tmp_path_factory.mktemp("recorded")
    data = signature_set(users=3, genuine=4).save(root / "set.npz")
    save_options(PreprocessOptions(dataset="mcyt", raw_path=root / "raw", save_path=str(data)), options_file(data))
    train_signet(TrainOptions(data_path=data, logdir=root / "run", model=TINY, epochs=1, batch_size=4,
                              device="cpu"))
    return root / "run" / "model_last.pth"


def _verify_recorded(model_path: Path, writers: Writers, **options) -> VerifyResult:
    return verify(build(VerifyOptions, model_path=model_path, references=writers.references(0),
                        queries=[writers.file(0, "genuine", 8), writers.file(1, "genuine", 8)], device="cpu",
                        **options))


def test_train_records_the_canvas_and_verify_uses_it(recorded_run, writers):
    config = json.loads((recorded_run.parent / "config.json").read_text())
    assert config["canvases"] == [{"dataset": "mcyt", "canvas_size": [600, 850], "image_size": list(IMAGE_SIZE)}]
    recorded = _verify_recorded(recorded_run, writers)
    assert recorded.canvas == (600, 850)
    assert recorded.canvas_from == f"dataset mcyt, recorded in {recorded_run.parent / 'config.json'}"
    same = _verify_recorded(recorded_run, writers, dataset="mcyt")
    assert [q.score for q in same.queries] == [q.score for q in recorded.queries]
    computed = _verify_recorded(recorded_run, writers, canvas=writers.canvas, override_canvas=True)
    assert [q.score for q in computed.queries] != [q.score for q in recorded.queries]  # the canvas matters


@pytest.mark.parametrize("given, canvas", [(["--canvas", 300, 420], [300, 420]), (["--dataset", "gpds"], [952, 1360])])
def test_a_canvas_contradicting_the_record_is_refused_unless_overridden(recorded_run, writers, cli, given, canvas):
    args = ["verify", "--model-path", recorded_run, *_r(writers.references(0)), *given, "--device", "cpu", "--json",
            writers.file(0, "genuine", 8)]
    refused = cli(*args)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"error: {' '.join(map(str, given)) if given[0] == '--dataset' else '--canvas'} gives the canvas "
        f"{canvas[0]}×{canvas[1]}, but the model's images were made on another (dataset mcyt, canvas 600×850, "
        f"recorded in {recorded_run.parent / 'config.json'}) (leave out --canvas and --dataset to use the recorded "
        "one, or pass --override-canvas)")
    overridden = cli(*args, "--override-canvas")
    assert overridden.exit_code == 0, overridden.output
    assert json.loads(overridden.stdout)["canvas"] == canvas


def test_the_wi_classifier_records_its_features_canvas_and_verify_prefers_it(recorded_run, writers, cli, tmp_path):
    from evaluation_data import synthetic_features

    features = synthetic_features(dim=16)  # the TINY network's feature size
    features.canvas = Canvas("cedar", (730, 1042), IMAGE_SIZE)
    features.save(tmp_path / "f.npz")
    assert FeatureSet.load(tmp_path / "f.npz").canvas == features.canvas
    result = cli("wi", "--features-path", tmp_path / "f.npz", "--exp-users", 0, 6, "--dev-users", 6, 14,
                 "--gen-for-train", 4, "--gen-for-ref", 4, "--gen-for-test", 3, "--folds", 1,
                 "--save-model", tmp_path / "wi.skops")
    assert result.exit_code == 0, result.output
    assert load_wi_model(tmp_path / "wi.skops").canvas == features.canvas
    with pytest.raises(InputError, match=r"trained on images made on another canvas "
                                         r"\(dataset cedar, canvas 730×1042\) "
                                         r"than the model \(dataset mcyt, canvas 600×850\)"):
        _verify_recorded(recorded_run, writers, classifier_path=tmp_path / "wi.skops")
    scored = _verify_recorded(recorded_run, writers, classifier_path=tmp_path / "wi.skops",
                              allow_classifier_mismatch=True)
    assert scored.canvas == (730, 1042) and scored.canvas_from == f"dataset cedar, recorded in {tmp_path / 'wi.skops'}"
    with pytest.raises(InputError, match="dataset cedar, canvas 730×1042"):
        _verify_recorded(recorded_run, writers, classifier_path=tmp_path / "wi.skops", dataset="mcyt",
                         allow_classifier_mismatch=True)


def test_without_a_record_the_computed_canvas_comes_with_a_warning(writers, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(logging.getLogger("sigcli"), "propagate", True)  # a CLI run in this module turned it off
    result = verify(build(VerifyOptions, model_path=writers.model_path, references=writers.references(0),
                          queries=[writers.file(0, "genuine", 8)], device="cpu"))
    assert result.canvas_from == "the images" and result.canvas == canvas_for(
        [read_gray(p).shape for p in writers.references(0) + [writers.file(0, "genuine", 8)]])
    assert "no canvas is recorded with" in caplog.text and "give --dataset or --canvas" in caplog.text


def test_a_canvas_beyond_the_limit_is_refused_before_reading_anything(cli):
    result = cli("verify", "--model-path", "absent.pth", "-r", "a.png", "--canvas", 60000, 60000, "q.png")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: --canvas 60000×60000 is 3,600,000,000 pixels, more than the "
                                     f"{MAX_CANVAS_PIXELS:,} sig allows (give a smaller canvas, or scan at a lower "
                                     "resolution)")


def test_a_recorded_canvas_beyond_the_limit_is_refused(recorded_run, writers, tmp_path):
    from evaluation_data import synthetic_features

    features = synthetic_features(dim=16)
    options = build(WIOptions, exp_users=(0, 6), dev_users=(6, 14), gen_for_train=4, gen_for_ref=4, gen_for_test=3,
                    folds=1)
    path = save_wi_model(tmp_path / "wi.skops", evaluate_wi(features, options).classifier, options, 16,
                         Canvas("huge", (60000, 60000), IMAGE_SIZE))
    with pytest.raises(InputError, match=r"the canvas \(dataset huge, recorded in .*wi.skops\) 60000×60000 is 3,600,000,000 pixels, more than"):
        _verify_recorded(recorded_run, writers, classifier_path=path, allow_classifier_mismatch=True)


def test_a_file_of_another_kind_as_classifier_says_what_was_expected(recorded_run, cli, tmp_path):
    import pickle

    with open(tmp_path / "wi.pkl", "wb") as fh:
        pickle.dump({"classifier": None}, fh)
    result = cli("verify", "--model-path", recorded_run, "--classifier-path", tmp_path / "wi.pkl", "-r", "a.png", "q.png")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'wi.pkl'} is not a WI classifier: it is a Python pickle "
                                     "(expected a .skops file written by 'sig wi --save-model')")


@pytest.mark.parametrize("scores, threshold, places", [
    ([0.99981, 0.99979], 0.9998, 5),        # shown as 0.9998 at 4 places: both would look like the threshold
    ([0.9998000001, 0.5], 0.9998, 10),
    ([0.9998, 0.7], 0.9998, 4),             # equal to the threshold: genuine, and shown equal
    ([1.5, -0.25], None, 4),
])
def test_scores_are_shown_with_the_places_the_decision_needs(scores, threshold, places):
    from sigcli.cli.verify import _table, decisive_places

    assert decisive_places(scores, threshold) == places
    result = VerifyResult("cosine", "mean", threshold, "--threshold", (600, 850), "--canvas", IMAGE_SIZE, "m",
                          ["r.png"], [QueryScore(f"q{i}.png", s, None if threshold is None else s >= threshold,
                                                 "r.png", s) for i, s in enumerate(scores)])
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(_table(result))
    text = " ".join(console.export_text().split())  # the caption wraps
    for score in scores:
        assert f"{score:.{places}f}" in text
    if threshold is not None:
        assert f"threshold {threshold:.{places}f}" in text


# --------------------------------------------------------------------------- Python API
def test_the_api_enrolls_once_and_scores_paths_arrays_and_pil_images_alike(writers, tmp_path):
    """A writer is enrolled once (its files may then go); a query scores the same whether given as a path, a
    grey array, an RGB array or a PIL image, and as `sig verify` scores it."""
    import shutil

    from sigcli import Verifier

    verifier = Verifier.load(writers.model_path, canvas=writers.canvas, device="cpu")
    copies = [Path(shutil.copy(path, tmp_path)) for path in writers.references(3)]
    writer = verifier.enroll(copies)
    for path in copies:
        path.unlink()
    query = writers.file(3, "genuine", 9)
    grey = read_gray(query)
    result = verifier.verify(writer, [query, grey, np.stack([grey] * 3, axis=-1), Image.open(query)])
    assert [q.file for q in result.queries] == [str(query), "array 1", "array 2", "image 3"]
    scores = [q.score for q in result.queries]
    assert scores == pytest.approx([scores[0]] * 4, abs=1e-6)
    assert result.references == [str(p) for p in copies]
    assert result.threshold == verifier.threshold_for(writer)[0] and result.threshold_from == \
        "lowest leave-one-out score of the references"
    assert verifier.scores(writer, verifier.features([query, grey])) == pytest.approx(result.scores[:2], abs=1e-6)
    with pytest.raises(InputError, match="the writer was enrolled with"):
        Verifier.load(writers.model_path, canvas=(400, 571), device="cpu").verify(writer, query)
    cli_score = _verify(writers, writers.references(3), [query]).queries[0].score
    assert scores[0] == pytest.approx(cli_score, abs=1e-5)
    assert verifier.features([query, grey]).shape == (2, load_checkpoint(writers.model_path).feature_dim)


def test_the_api_needs_a_canvas_to_enroll_and_names_unusable_images(writers):
    from sigcli import Verifier

    verifier = Verifier.load(writers.model_path, device="cpu")  # nothing recorded, nothing given
    with pytest.raises(InputError, match="no canvas is recorded with") as info:
        verifier.enroll(writers.references(0))
    assert "canvas=(H, W) or dataset=NAME" in info.value.hint
    one_shot = verifier.verify(writers.references(0), writers.file(0, "genuine", 8))  # computed, as sig verify does
    assert one_shot.canvas_from == "the images" and len(one_shot.queries) == 1
    with pytest.raises(InputError, match="array 0: the image has a single grey level"):
        verifier = Verifier.load(writers.model_path, canvas=writers.canvas, device="cpu")
        verifier.features(np.full((50, 80), 200, np.uint8))


# --------------------------------------------------------------------------- calibrated decisions
@pytest.fixture(scope="module")
def calibrated(writers, tmp_path_factory) -> Path:
    return _save_calibrated(writers, tmp_path_factory.mktemp("calibrated") / "wi.skops")


def _wi_run(writers: Writers):
    """The writers' training features, the WI options these tests use, and the WI run on them."""
    checkpoint = load_checkpoint(writers.model_path)
    train = writers.train_images
    feature_set = FeatureSet(extract_features(checkpoint.build_model(), train), train.y, train.yforg,
                             source=checkpoint.identity())
    options = build(WIOptions, exp_users=(0, 3), dev_users=(3, 6), gen_for_train=4, gen_for_ref=3, gen_for_test=2,
                    folds=1)
    return feature_set, options, evaluate_wi(feature_set, options)


def _save_calibrated(writers: Writers, path: Path, canvas: Canvas | None = None) -> Path:
    """A WI classifier of the writers' training features, saved as `sig wi --save-model` saves it (calibrated)."""
    from sigcli.protocols.wi import calibrate

    feature_set, options, run = _wi_run(writers)
    calibration = calibrate(feature_set, run, options)
    return save_wi_model(path, run.classifier, options, feature_set.dim, canvas, calibration=calibration,
                         source=feature_set.source)


def test_an_operating_point_sets_the_threshold_and_its_calibrated_rates_are_shown(writers, calibrated, cli):
    points = load_wi_model(calibrated).calibration.points
    queries = [writers.file(2, "genuine", 9), writers.file(2, "skilled", 4), writers.file(4, "genuine", 9)]
    base = ["verify", "--model-path", writers.model_path, "--classifier-path", calibrated, *_r(writers.references(2)),
            "--canvas", *writers.canvas, "--device", "cpu"]
    record = json.loads(cli(*base, "--operating-point", "random:eer", "--json", *queries).stdout)
    point = points["random:eer"]
    assert record["threshold"] == point.threshold
    assert record["threshold_from"] == "operating point random:eer, calibrated by 'sig wi --save-model'"
    assert [q["genuine"] for q in record["queries"]] == [q["score"] >= point.threshold for q in record["queries"]]
    assert record["operating_point"] == {"name": "random:eer", "threshold": point.threshold, "frr": point.frr,
                                         "far_skilled": point.far_skilled, "far_random": point.far_random,
                                         "calibrated_on": {"users": 3, "references": 3, "genuine": 6, "skilled": 6,
                                                           "random": 6}}
    default = json.loads(cli(*base, "--json", *queries).stdout)  # the boundary, as before, now with its rates
    assert default["threshold"] == 0.0 and default["operating_point"]["name"] == "boundary"
    table = cli(*base, "--operating-point", "skilled:far=0.010", *queries, env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    assert (f"at operating point far=0.01, on 3 development users: FRR {points['far=0.01'].frr:.2%}, FAR skilled "
            f"{points['far=0.01'].far_skilled:.2%}, FAR random {points['far=0.01'].far_random:.2%}") in \
        " ".join(table.stdout.split())


@pytest.mark.parametrize("args, message", [
    (["--operating-point", "far=0.05"], "error: --operating-point far=0.05 is not calibrated in"),
    (["--operating-point", "eer", "--fusion", "mean"], "error: --operating-point eer was calibrated with the "
                                                       "classifier's fusion, max, not --fusion mean"),
    (["--operating-point", "eer", "--threshold", "1"], "error: --operating-point and --threshold both set"),
    (["--operating-point", "median"], "error: --operating-point 'median' is not one of"),
])
def test_an_operating_point_that_does_not_apply_exits_2(writers, calibrated, cli, args, message):
    result = cli("verify", "--model-path", writers.model_path, "--classifier-path", calibrated, "-r",
                 writers.file(0, "genuine", 0), "--canvas", *writers.canvas, *args, writers.file(0, "genuine", 8))
    assert result.exit_code == 2 and result.stderr.startswith(message), result.stderr


def test_a_classifier_of_another_checkpoint_is_refused_unless_allowed(writers, calibrated, cli, tmp_path):
    import shutil

    other = Path(shutil.copy(writers.model_path, tmp_path / "other.pth"))
    with open(other, "ab") as fh:  # the same network in another file: another fingerprint
        fh.write(b"\0")
    args = ["verify", "--model-path", other, "--classifier-path", calibrated, "-r", writers.file(0, "genuine", 0),
            "--canvas", *writers.canvas, "--device", "cpu", writers.file(0, "genuine", 8)]
    refused = cli(*args)
    identity = load_checkpoint(writers.model_path).identity()
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: the WI classifier {calibrated} was trained on features of {identity}, "
                                     f"not of {other}") and "--allow-classifier-mismatch" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    allowed = cli(*args, "--allow-classifier-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert "was trained on features of" in allowed.stderr  # still said, as a warning


def test_an_uncalibrated_classifier_has_no_operating_points(writers, tmp_path, cli):
    feature_set, options, run = _wi_run(writers)
    path = save_wi_model(tmp_path / "wi.skops", run.classifier, options,
                         feature_set.dim, source=feature_set.source)
    result = cli("verify", "--model-path", writers.model_path, "--classifier-path", path, "-r",
                 writers.file(0, "genuine", 0), "--canvas", *writers.canvas, "--operating-point", "eer",
                 writers.file(0, "genuine", 8))
    assert result.exit_code == 2
    assert f"error: --operating-point eer: the WI classifier {path} has no calibrated thresholds" in result.stderr


# --------------------------------------------------------------------------- lists of pairs
def _pairs_file(writers: Writers, root: Path) -> tuple[Path, list[tuple[str, str, str]]]:
    """refs/wU (relative to the CSV) with writer U's references; per writer, its two held-out genuines (1), its
    held-out skilled forgery and the next writer's genuine (0); then rows that cannot be scored."""
    import shutil

    for u in range(WRITERS):
        (root / "refs" / f"w{u}").mkdir(parents=True)
        for path in writers.references(u):
            shutil.copy(path, root / "refs" / f"w{u}")
    (root / "refs" / "empty").mkdir()
    Image.fromarray(np.full((120, 300), 235, np.uint8)).save(root / "blank.png")
    rows = [(f"refs/w{u}", str(writers.file(v, kind, k)), label) for u in range(WRITERS)
            for v, kind, k, label in ((u, "genuine", 8, "1"), (u, "genuine", 9, "1"), (u, "skilled", 4, "0"),
                                      ((u + 1) % WRITERS, "genuine", 9, "0"))]
    bad = [("refs/w0", str(writers.file(0, "genuine", 8)), "yes"), ("refs/w0", "missing.png", "1"),
           ("refs/w1", "blank.png", "0"), ("refs/empty", str(writers.file(0, "genuine", 8)), "1"),
           ("refs/nowhere", str(writers.file(0, "genuine", 8)), ""), ("refs/w2", "refs/w3", "1"),
           ("", str(writers.file(0, "genuine", 8)), "1")]
    path = root / "pairs.csv"
    path.write_text("reference,query,label\n" + "".join(f"{r},{q},{label}\n" for r, q, label in rows + bad))
    return path, rows + bad


def test_a_list_of_pairs_is_scored_as_one_writer_at_a_time_with_bad_rows_named_and_skipped(writers, calibrated,
                                                                                              cli, tmp_path):
    import csv
    import io

    from sigcli.metrics import equal_error_rate

    pairs, rows = _pairs_file(writers, tmp_path)
    args = ["verify", "--model-path", writers.model_path, "--classifier-path", calibrated, "--pairs", pairs,
            "--canvas", *writers.canvas, "--device", "cpu", "--operating-point", "eer"]
    result = cli(*args, "--save-path", tmp_path / "scores.csv")
    assert result.exit_code == 0, result.output
    saved = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text())))
    assert [(r["reference"], r["query"], r["label"]) for r in saved] == \
           [(ref, query, label if label in "01" else "") for ref, query, label in rows]
    assert [int(r["row"]) for r in saved] == list(range(2, len(rows) + 2))
    scored, skipped = saved[:4 * WRITERS], saved[4 * WRITERS:]
    assert all(r["skipped"] == "" and r["decision"] in ("genuine", "forgery") for r in scored)
    assert [r["skipped"] for r in skipped] == [
        "label 'yes' is not 1 (genuine), 0 (forgery) or empty", "query: no such file",
        "query: the image has a single grey level, so no ink to centre",
        "reference: a folder with no images (.png, .jpg, .bmp, .tif)", "reference: no such file",
        "query: a folder, not one query image", "no reference"]
    assert all(r["score"] == "" and r["decision"] == "" for r in skipped)

    # each writer's rows score as `sig verify` scores its queries against its references
    one = _verify(writers, writers.references(2), [Path(r["query"]) for r in scored[8:12]], classifier_path=calibrated)
    assert [float(r["score"]) for r in scored[8:12]] == pytest.approx([q.score for q in one.queries], abs=1e-6)

    record = json.loads(cli(*args, "--json").stdout)
    genuine = [float(r["score"]) for r in scored if r["label"] == "1"]
    forgeries = [float(r["score"]) for r in scored if r["label"] == "0"]
    metrics = record["metrics"]
    assert (metrics["genuine"], metrics["forgeries"], metrics["decided"]) == (12, 12, 24)
    assert metrics["FRR"] == pytest.approx(np.mean([r["decision"] == "forgery" for r in scored if r["label"] == "1"]))
    assert metrics["FAR"] == pytest.approx(np.mean([r["decision"] == "genuine" for r in scored if r["label"] == "0"]))
    assert metrics["EER"] == pytest.approx(equal_error_rate(np.array(genuine), np.array(forgeries))[0])
    assert record["references"] == WRITERS and record["operating_point"]["name"] == "eer"
    assert record["skipped"][0] == {"reason": "label 'yes' is not 1 (genuine), 0 (forgery) or empty", "rows": 1}

    table = cli(*args, env={"COLUMNS": "300"})
    text = " ".join(table.stdout.replace("│", " ").split())
    assert f"scored {4 * WRITERS} pairs against {WRITERS} references" in text
    assert f"EER {100 * metrics['EER']:.2f} %" in text and "skipped 1 reference: no such file" in text
    stderr = " ".join(table.stderr.split())
    assert "skipped row 27 (refs/w0, missing.png): query: no such file" in stderr
    assert "7 of 31 rows skipped" in stderr


def test_pairs_enroll_each_reference_once_and_report_progress(writers, tmp_path, monkeypatch):
    from sigcli.progress import RecordingReporter
    from sigcli.verify import Verifier
    from sigcli.verify_pairs import verify_pairs

    pairs, _ = _pairs_file(writers, tmp_path)
    enrolled = []
    enroll = Verifier.enroll
    monkeypatch.setattr(Verifier, "enroll",
                        lambda self, refs, *skipped: enrolled.append(refs) or enroll(self, refs, *skipped))
    reporter = RecordingReporter()
    result = verify_pairs(build(VerifyOptions, model_path=writers.model_path, pairs=pairs, canvas=writers.canvas,
                                device="cpu", batch_size=4), reporter)
    distinct = [tmp_path / "refs" / name for name in [f"w{u}" for u in range(WRITERS)] + ["empty", "nowhere"]]
    assert enrolled == distinct
    assert reporter.steps["verify pairs: enroll references"][:2] == [len(distinct), len(distinct)]
    queries = reporter.steps["verify pairs: queries"]
    assert queries[0] == queries[1] == 3 * WRITERS + 2  # distinct queries of the rows still in play
    assert result.threshold is None and {pair.threshold for pair in result.pairs[:4]} != {None}


@pytest.mark.parametrize("content, message", [
    ("query,label\nq.png,1\n", "has no header with the columns reference and query (found: query,label)"),
    ("reference,query\n", "has a header but no pairs"),
])
def test_a_pairs_file_without_pairs_exits_2(writers, cli, tmp_path, content, message):
    (tmp_path / "pairs.csv").write_text(content)
    result = cli("verify", "--model-path", writers.model_path, "--pairs", tmp_path / "pairs.csv", "--canvas",
                 *writers.canvas)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--pairs", "p.csv", "q.png"], "error: --pairs gives the references and queries"),
    (["q.png"], "error: no -r references given"),
    (["-r", "a.png", "--save-path", "out.csv", "q.png"], "error: --save-path writes the results of --pairs"),
    (["--pairs", "p.csv", "--save-path", "out.txt"], "error: --save-path out.txt must end in .csv or .json"),
])
def test_pairs_and_one_writer_options_do_not_mix(cli, args, message):
    result = cli("verify", "--model-path", "model.pth", *args)
    assert result.exit_code == 2 and result.stderr.startswith(message), result.stderr


def test_pairs_need_a_known_canvas(writers, cli, tmp_path):
    pairs, _ = _pairs_file(writers, tmp_path)
    result = cli("verify", "--model-path", writers.model_path, "--pairs", pairs)
    assert result.exit_code == 2 and "error: no canvas is recorded with" in result.stderr


# --------------------------------------------------------------------------- docs/api.md
def test_the_notebook_example_of_docs_api_runs(writers, tmp_path, monkeypatch, capsys):
    """Every python block of docs/api.md, run in order in one namespace, in a folder holding the files it names:
    a run folder (checkpoint + config.json recording its canvas), a calibrated classifier, a writer's references
    and two questioned signatures (a genuine and a skilled forgery of that writer)."""
    import shutil

    blocks = re.findall(r"```python\n(.*?)```", (Path(__file__).parents[1] / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 5
    canvas = Canvas(None, writers.canvas, IMAGE_SIZE)
    (tmp_path / "run").mkdir()
    shutil.copy(writers.model_path, tmp_path / "run" / "model_best.pth")
    config = json.loads((writers.model_path.parent / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "canvases": [canvas.as_dict()]}))
    _save_calibrated(writers, tmp_path / "wi.skops", canvas)
    (tmp_path / "refs" / "writer07").mkdir(parents=True)
    for path in writers.references(3):
        shutil.copy(path, tmp_path / "refs" / "writer07")
    (tmp_path / "questioned").mkdir()
    shutil.copy(writers.file(3, "genuine", 9), tmp_path / "questioned" / "a.png")
    shutil.copy(writers.file(3, "skilled", 4), tmp_path / "questioned" / "b.png")
    monkeypatch.chdir(tmp_path)

    namespace: dict = {}
    for number, block in enumerate(blocks):
        exec(compile(block, f"docs/api.md, python block {number + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert f"{writers.canvas} wi-svm" in printed
    assert re.search(r"^questioned/a\.png -?\d+\.\d{3} (genuine|forgery)$", printed, re.M)
    assert "far=0.01" in printed and "random:eer" in printed
    assert namespace["decided"].operating_point["name"] == "far=0.01"
    assert namespace["features"].shape[0] == 2 and len(namespace["result"].scores) == 2

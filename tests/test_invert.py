"""`sig invert`: deep inversion with competition from a tiny batch-norm teacher."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sigcli.cli.derive import argv, parse
from sigcli.config.invert import InversionSettings, InvertOptions
from sigcli.data.sigset import SignatureSet
from sigcli.invert import (BatchNormStatistics, batch_generator, batch_plan, competition, invert, invert_batch,
                           jensen_shannon, layer_weights, parts_folder, total_variation)
from sigcli.models import INPUT_SIZE
from sigcli.models.checkpoint import save_checkpoint
from training_data import INVERT_TINY_BN, StopAfter, flags_missing_from_help, tiny_bn_features

CLASSES = 4
def synthetic_signatures(per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable "signatures": class k is a wavy stroke whose amplitude, frequency and width grow with k."""
    n = CLASSES * per_class
    y = torch.arange(CLASSES).repeat_interleave(per_class)
    rows = torch.arange(INPUT_SIZE[0]).float().view(1, -1, 1)
    cols = torch.arange(INPUT_SIZE[1]).float().view(1, 1, -1)
    k = y.float().view(-1, 1, 1)
    phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
    offset = (torch.rand(n, 1, 1, generator=generator) - 0.5) * 30
    centre = INPUT_SIZE[0] / 2 + offset + (8 + 10 * k) * torch.sin(cols * (0.02 + 0.02 * k) + phase)
    x = torch.exp(-(rows - centre) ** 2 / (2 * (1.0 + 0.7 * k) ** 2))
    return x.unsqueeze(1), y


def seeded(seed: int, make):
    """``make()`` under ``torch.manual_seed(seed)`` without touching the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: with several threads, synchronisation costs more than the work
    (several times slower when other tests share the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    """Feature extractor + classification layer trained for a few steps; eval mode."""
    generator = torch.Generator().manual_seed(0)
    x, y = synthetic_signatures(16, generator)
    model = seeded(0, lambda: nn.Sequential(tiny_bn_features(), nn.Linear(16, CLASSES)))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        batch = torch.randint(len(x), (32,), generator=generator)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    held_x, held_y = synthetic_signatures(8, generator)
    with torch.no_grad():
        assert (model(held_x).argmax(1) == held_y).float().mean() > 0.9, "the tiny teacher did not learn"
    return model


FAST = InversionSettings(iterations=40, batch_size=16)


# ---------------------------------------------------------------------------- loss terms


def test_batch_norm_statistics_measure_standardised_distance_to_running_statistics():
    layer = nn.BatchNorm2d(2, eps=0.0).eval()
    layer.running_mean.copy_(torch.tensor([1.0, -1.0]))
    layer.running_var.copy_(torch.tensor([4.0, 1.0]))
    x = torch.zeros(2, 2, 1, 2)
    x[:, 0] = torch.tensor([[[0.0, 2.0]], [[0.0, 2.0]]])  # channel 0: mean 1, variance 1
    x[:, 1] = 3.0  # channel 1: mean 3, variance 0
    with BatchNormStatistics(nn.Sequential(layer)) as statistics:
        layer(x)
        value = statistics.collect()
        # running σ = (2, 1); mean shifts in σ units (0, 4), std shifts in σ units (−1/2, −1):
        # RMS over channels √8 + √(5/8)
        assert value.shape == (1,) and value.item() == pytest.approx(math.sqrt(8) + math.sqrt(5 / 8))
        assert statistics.collect().numel() == 0  # collected once
        x_matching = torch.tensor([[-1.0, 0.0], [3.0, -2.0]]).view(2, 2, 1, 1)  # means (1,-1), variances (4,1)
        layer(x_matching)
        assert statistics.collect().item() == pytest.approx(0.0, abs=1e-6)
        # scale-free: the same data and statistics, 10× larger, are as far apart
        layer.running_mean.mul_(10)
        layer.running_var.mul_(100)
        layer(10 * x)
        assert statistics.collect().item() == pytest.approx(value.item())
    assert not layer._forward_hooks  # removed on exit


def test_batch_norm_statistics_find_1d_and_2d_layers(teacher):
    assert [type(m) for m in BatchNormStatistics(teacher).layers] == [nn.BatchNorm2d, nn.BatchNorm2d, nn.BatchNorm1d]


def test_layer_weights_put_the_first_weight_on_the_first_layer_only():
    assert layer_weights(3, 10.0, torch.device("cpu")).tolist() == [10.0, 1.0, 1.0]
    assert layer_weights(0, 10.0, torch.device("cpu")).numel() == 0


def test_total_variation_of_constant_is_zero_and_of_stripes_is_known():
    assert total_variation(torch.full((1, 1, 4, 5), 0.3)).item() == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0  # every horizontal neighbour differs by 1, vertical ones by 0
    assert total_variation(stripes).item() == pytest.approx(1.0)


def test_jensen_shannon_is_zero_for_equal_logits_symmetric_and_bounded():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    assert jensen_shannon(logits, logits.clone()).item() == 0.0
    other = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
    assert jensen_shannon(logits, other).item() == pytest.approx(jensen_shannon(other, logits).item())
    opposite = torch.tensor([[100.0, -100.0]]), torch.tensor([[-100.0, 100.0]])
    assert jensen_shannon(*opposite, temperature=1.0).item() == pytest.approx(math.log(2), rel=1e-5)
    # two classes, p = (1/2, 1/2) vs q = (1, 0): JS = ½·KL(p‖m) + ½·KL(q‖m) with m = (3/4, 1/4)
    half, certain = torch.tensor([[0.0, 0.0]]), torch.tensor([[200.0, 0.0]])
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert jensen_shannon(half, certain, temperature=1.0).item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------- one batch


def test_inverted_images_are_classified_as_their_targets_and_statistics_converge(teacher):
    targets = torch.arange(CLASSES).repeat(4)
    result = invert_batch(teacher, targets, FAST, batch_generator(0, 0))
    assert result.images.shape == (16, 1, *INPUT_SIZE) and result.images.dtype == torch.float32
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    accuracy = (result.predictions == targets).float().mean().item()
    assert accuracy >= 0.9  # chance is 0.25
    bn = result.history["bn"]
    assert len(bn) == FAST.iterations and bn[-1] < 0.5 * bn[0]
    assert result.history["ce"][-1] < 0.2 * result.history["ce"][0]
    assert result.history["competition"] == [0.0] * FAST.iterations  # no student
    assert result.agreement == accuracy
    assert set(result.shares) == {"ce", "bn", "tv", "l2", "competition"} and result.shares["competition"] == 0.0
    assert sum(result.shares.values()) == pytest.approx(1.0) and min(result.shares.values()) >= 0.0
    layers = BatchNormStatistics(teacher).layers
    assert [mean.shape for mean, _ in result.moments] == [(layer.num_features,) for layer in layers]
    assert all((square >= mean ** 2 - 1e-5).all() for mean, square in result.moments)
    assert not teacher.training and all(p.requires_grad for p in teacher.parameters())  # left as found


def test_defaults_move_the_class_loss_down(teacher):
    """At the default settings (only the batch is smaller) the class term falls, the teacher
    agrees, the statistics come closer, and the images stay dark like preprocessed signatures."""
    settings = InversionSettings(batch_size=16)
    targets = torch.arange(CLASSES).repeat(4)
    result = invert_batch(teacher, targets, settings, batch_generator(1, 0))
    ce = result.history["ce"]
    assert ce[-1] < 0.1 * ce[0]
    assert result.agreement >= 0.9
    assert result.history["bn"][-1] < result.history["bn"][0]
    assert result.images.mean() < 0.2  # mostly dark, like a preprocessed signature


def test_competition_term_is_one_when_the_student_is_the_teacher(teacher):
    settings = FAST.model_copy(update={"iterations": 5})
    result = invert_batch(teacher, torch.arange(CLASSES), settings, batch_generator(0, 0), student=teacher)
    assert result.history["competition"] == [1.0] * 5  # 1 − JS, JS = 0
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(4))
    assert competition(logits, logits).item() == 1.0 and competition(logits, -logits).item() < 1.0


def test_competition_term_raises_student_teacher_disagreement_on_the_images(teacher):
    """Adaptive DeepInversion: with the competition term the images are ones on which a
    student disagrees more with the teacher than on images made without it (same start)."""
    student = seeded(3, lambda: nn.Sequential(tiny_bn_features(), nn.Linear(16, CLASSES + 2)))  # extra users ignored
    student.eval()
    targets = torch.arange(CLASSES).repeat(2)
    disagreement = {}
    for weight in (0.0, 5.0):
        settings = FAST.model_copy(update={"iterations": 20, "competition_weight": weight})
        result = invert_batch(teacher, targets, settings, batch_generator(0, 0), student=student)
        with torch.no_grad():
            disagreement[weight] = jensen_shannon(teacher(result.images), student(result.images)[:, :CLASSES]).item()
        if weight:
            history = result.history["competition"]
            assert all(0 < c <= 1 for c in history) and history[-1] < history[0]
    assert disagreement[5.0] > 1.5 * disagreement[0.0]


def test_inversion_is_deterministic_for_a_seed_on_cpu(teacher):
    settings = FAST.model_copy(update={"iterations": 5})
    runs = [invert_batch(teacher, torch.arange(CLASSES), settings, batch_generator(seed, 3)).images
            for seed in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_batch_plan_interleaves_users_and_balances_batch_sizes():
    plan = batch_plan(num_classes=3, per_user=5, batch_size=4)
    assert [len(b) for b in plan] == [4, 4, 4, 3]
    assert np.bincount(np.concatenate(plan)).tolist() == [5, 5, 5]
    assert plan[0].tolist() == [0, 1, 2, 0]


# ---------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def teacher_path(teacher, tmp_path_factory) -> Path:
    features, classifier = teacher
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pth", features.state_dict(),
                           classifier.state_dict())


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


QUICK = ["--iterations", "6", "--batch-size", "4", "--per-user", "3"]


def test_cli_writes_a_signature_set_that_distill_reads(cli, teacher_path, tmp_path):
    out = tmp_path / "inverted.npz"
    result = cli("invert", "--t-model-path", teacher_path, "--save-path", out, "--users", 10, 14,
                 "--preview", tmp_path / "grid.png", *QUICK)
    assert result.exit_code == 0, result.output
    data = SignatureSet.load(out)
    assert data.x.dtype == np.float32 and data.x.shape == (12, 1, *INPUT_SIZE)
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0 and data.x.std() > 0
    assert np.bincount(data.y, minlength=14)[10:].tolist() == [3, 3, 3, 3] and data.y.min() == 10
    assert data.yforg.tolist() == [0] * 12
    assert len(set(data.filenames.tolist())) == 12
    with np.load(out, allow_pickle=False) as raw:  # no pickle needed to read it back
        assert set(raw.files) == {"x", "y", "yforg", "filenames"}
    assert not parts_folder(out).exists()
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["options"]["per_user"] == 3
    assert [b["batch"] for b in record["batches"]] == [0, 1, 2]
    assert all(0 <= b["agreement"] <= 1 and sum(b["shares"].values()) == pytest.approx(1) for b in record["batches"])
    assert record["teacher_accuracy"] == pytest.approx(np.mean([b["agreement"] for b in record["batches"]]))
    assert set(record["term_shares"]) == {"ce", "bn", "tv", "l2", "competition"}
    assert [row["layer"] for row in record["batch_norm"]] == ["features.1", "features.5", "features.10"]
    assert all(len(b["batch_norm_distance"]) == 3 for b in record["batches"])
    assert all(row["mean_distance"] >= 0 and row["std_distance"] >= 0 for row in record["batch_norm"])
    from PIL import Image
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.format == "PNG" and grid.width > INPUT_SIZE[1] * 3
    # `sig distill` takes it as it is (D users 10..13 ↔ teacher classes 0..3)
    distilled = cli("distill", "--t-model-path", teacher_path, "--d-data-path", out, "--d-users", 10, 14,
                    "--s-model", INVERT_TINY_BN, "--epochs", 1, "--d-batch-size", 4, "--device", "cpu",
                    "--logdir", tmp_path / "student")
    assert distilled.exit_code == 0, distilled.output
    assert (tmp_path / "student" / "model_best.pth").exists()


def test_resume_keeps_finished_batches_and_completes_the_same_set(cli, teacher_path, tmp_path):
    out = tmp_path / "inverted.npz"
    options = InvertOptions(t_model_path=teacher_path, save_path=out, per_user=3, iterations=6, batch_size=4,
                            device="cpu")
    with pytest.raises(KeyboardInterrupt):
        invert(options, StopAfter(2))
    assert not out.exists()
    assert sorted(p.name for p in parts_folder(out).glob("batch-*.npz")) == ["batch-00000.npz", "batch-00001.npz"]
    kept = parts_folder(out) / "batch-00001.npz"
    kept_time = kept.stat().st_mtime_ns

    changed = cli("invert", "--t-model-path", teacher_path, "--save-path", out, "--iterations", 7,
                  "--batch-size", 4, "--per-user", 3)
    assert "iterations" in one_error_line(changed) and "--overwrite" in changed.output
    assert kept.stat().st_mtime_ns == kept_time  # nothing discarded without --overwrite

    resumed = cli("invert", "--t-model-path", teacher_path, "--save-path", out, *QUICK, "--json")
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert (summary["resumed_batches"], summary["batches"], summary["images"]) == (2, 3, 12)
    assert summary["save_path"] == str(out) and summary["users"] == [0, CLASSES]
    uninterrupted = invert(options.model_copy(update={"save_path": tmp_path / "whole.npz"}))
    assert uninterrupted.resumed_batches == 0 and uninterrupted.batches == 3
    assert np.array_equal(SignatureSet.load(out).x, SignatureSet.load(tmp_path / "whole.npz").x)


def test_overwrite_discards_batches_made_with_other_options(teacher_path, tmp_path):
    out = tmp_path / "inverted.npz"
    options = InvertOptions(t_model_path=teacher_path, save_path=out, per_user=3, iterations=6, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        invert(options, StopAfter(1))
    report = invert(options.model_copy(update={"seed": 99, "overwrite": True}))
    assert report.resumed_batches == 0 and report.images == 12


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(cli, teacher, teacher_path, tmp_path):
    headless = save_checkpoint(tmp_path / "features-only.pth", teacher[0].state_dict())
    out = tmp_path / "inverted.npz"
    cases = {
        "no user-classification head": ["--t-model-path", headless, "--save-path", out],
        "spans 3 users but the teacher has 4 classes": ["--t-model-path", teacher_path, "--save-path", out,
                                                        "--users", 5, 8],
        "must end in .npz": ["--t-model-path", teacher_path, "--save-path", tmp_path / "inverted.h5"],
        "no checkpoint at": ["--t-model-path", tmp_path / "missing.pth", "--save-path", out],
        "fewer than the teacher's 4": ["--t-model-path", teacher_path, "--save-path", out,
                                       "--s-model-path", _student_path(tmp_path, classes=3)],
        "--per-user": ["--t-model-path", teacher_path, "--save-path", out, "--per-user", 0],
    }
    for expected, args in cases.items():
        result = cli("invert", *QUICK, *args)
        assert expected in one_error_line(result), expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features-only.pth", "student.pth"]


def _student_path(folder: Path, classes: int) -> Path:
    student = seeded(5, lambda: nn.Sequential(tiny_bn_features(), nn.Linear(16, classes)))
    return save_checkpoint(folder / "student.pth", student[0].state_dict(), student[1].state_dict())


def test_help_documents_every_option_and_the_defaults(cli):
    result = cli("invert", "--help", env={"COLUMNS": "240"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert flags_missing_from_help(InvertOptions, text) == []
    assert "[default: 100]" in text and "[default: 0.1]" in text and "[default: (0 and the number of classes)]" in text
    options = InvertOptions(t_model_path="t.pth", save_path="o.npz", per_user=3, users=(10, 14), overwrite=True)
    assert parse(InvertOptions, argv(options)) == options

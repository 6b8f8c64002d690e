"""`sig distill`: loss terms, data pairing, best-epoch rule, and the command end to end."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import Result

from conftest import run_sig
from sigcli.cli.derive import argv, parse
from sigcli.config.distill import DistillOptions
from sigcli.data.sigset import SignatureSet
from sigcli.models.checkpoint import load_checkpoint, save_checkpoint
from sigcli.training import distill as D
from sigcli.training.data import Rows, num_batches
from sigcli.training.loop import DistributedInfo
from training_data import DISTILL_TINY as TINY, DISTILL_TINY_WIDE as TINY_WIDE, TinyNet, flags_missing_from_help

LN = math.log
REFERENCE_WEIGHTS = D.LossWeights.of(DistillOptions())  # d-lamb 1, c-lamb 1, p-lamb 1.7, temperature 1


# ---------------------------------------------------------------------------- loss terms

def test_kl_pads_teacher_logits_with_zeros_to_the_student_width():
    student = torch.tensor([[0.0, LN(2), 0.0]])            # softmax = 1/4, 2/4, 1/4
    teacher = torch.tensor([[LN(3), 0.0]])                  # padded to [ln3, 0, 0] -> 3/5, 1/5, 1/5
    expected = 0.6 * LN(0.6 / 0.25) + 0.2 * LN(0.2 / 0.5) + 0.2 * LN(0.2 / 0.25)
    assert D.kl_teacher_student(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_teacher_to_student_and_a_batch_mean():
    student = torch.tensor([[0.0, LN(3)], [0.0, 0.0]])     # 1/4, 3/4 ; 1/2, 1/2
    teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]])       # 1/2, 1/2 twice
    kl_teacher_student = 0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75)
    kl_student_teacher = 0.25 * LN(0.25 / 0.5) + 0.75 * LN(0.75 / 0.5)
    value = D.kl_teacher_student(student, teacher, 1.0).item()
    assert value == pytest.approx(kl_teacher_student / 2, rel=1e-6)   # second row adds 0, mean over 2
    assert value != pytest.approx(kl_student_teacher / 2, rel=1e-3)


def test_temperature_divides_logits_without_a_t_squared_factor():
    student = torch.tensor([[0.0, 2 * LN(3)]])
    teacher = torch.tensor([[0.0, 0.0]])
    at_t2 = D.kl_teacher_student(student, teacher, 2.0).item()
    assert at_t2 == pytest.approx(0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75), rel=1e-6)


def test_continual_loss_splits_k_teacher_and_c_new_columns():
    # K = 2 teacher users, C = 2 continual users: student columns [k0 k1 | c0 c1]
    student_c = torch.tensor([[LN(3), 0.0, LN(4), 0.0]])
    teacher_c = torch.tensor([[0.0, 0.0]])
    labels = torch.tensor([0])
    student_d = torch.tensor([[0.0, LN(2), 0.0, 0.0]])
    teacher_d = torch.tensor([[0.0, LN(2)]])                # padded -> [0, ln2, 0, 0]: KL_D = 0
    weights = D.LossWeights(d_lamb=3.0, c_lamb=0.5, p_lamb=1.7, temperature=1.0)
    loss, parts = D.distillation_loss(student_d, teacher_d, weights, student_c=student_c, teacher_c=teacher_c,
                                      c_labels=labels)
    kl_p = 0.5 * LN(0.5 / 0.75) + 0.5 * LN(0.5 / 0.25)     # teacher vs student's first K columns
    ce_c = -LN(4 / 5)                                       # last C columns, label 0
    assert parts["kl_d"] == pytest.approx(0.0, abs=1e-7)
    assert parts["kl_p"] == pytest.approx(kl_p, rel=1e-6)
    assert parts["ce_c"] == pytest.approx(ce_c, rel=1e-6)
    assert loss.item() == pytest.approx(0.5 * ce_c + 1.7 * kl_p, rel=1e-6)


def test_plain_distillation_is_kl_d_alone_whatever_d_lamb():
    student = torch.tensor([[0.0, LN(3)]])
    teacher = torch.tensor([[0.0, 0.0]])
    loss, parts = D.distillation_loss(student, teacher, REFERENCE_WEIGHTS._replace(d_lamb=5.0))
    assert set(parts) == {"kl_d"}
    assert loss.item() == pytest.approx(0.5 * LN(0.5 / 0.25) + 0.5 * LN(0.5 / 0.75), rel=1e-6)


def test_loss_backpropagates_to_the_student_only():
    student = torch.zeros(2, 4, requires_grad=True)
    teacher = torch.randn(2, 2)
    loss, _ = D.distillation_loss(student, teacher, REFERENCE_WEIGHTS, student_c=student * 2, teacher_c=teacher,
                                  c_labels=torch.tensor([1, 0]))
    loss.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


# ---------------------------------------------------------------------------- score and tie-break

def test_score_is_the_mean_and_spread_the_population_std():
    assert D.validation_score(0.8, 0.6) == pytest.approx((0.7, 0.1))
    assert D.validation_score(0.9, None) == (0.9, 0.0)


@pytest.mark.parametrize("current, best, expected", [
    ((0.70, 0.10), None, True),                 # first epoch is always best
    ((0.71, 0.30), (0.70, 0.00), True),         # higher score wins whatever the spread
    ((0.69, 0.00), (0.70, 0.10), False),        # lower score loses whatever the spread
    ((0.70, 0.05), (0.70, 0.10), True),         # tie: smaller spread replaces
    ((0.70, 0.10), (0.70, 0.10), True),         # tie: equal spread replaces (<=)
    ((0.70, 0.20), (0.70, 0.10), False),        # tie: larger spread does not
])
def test_best_epoch_rule(current, best, expected):
    as_metrics = lambda pair: None if pair is None else {"score": pair[0], "spread": pair[1]}
    assert D.is_better_score(as_metrics(current), as_metrics(best)) is expected


# ---------------------------------------------------------------------------- data pairing

@pytest.mark.parametrize("n_c, c_bs, n_d, d_bs", [(10, 4, 7, 4), (10, 8, 50, 2), (9, 3, 5, 6), (1, 32, 3, 32)])
def test_pairing_walks_c_once_with_one_d_batch_per_step(n_c, c_bs, n_d, d_bs):
    pairs = D.paired_batches(n_c, c_bs, n_d, d_bs, torch.Generator().manual_seed(0))
    assert len(pairs) == math.ceil(n_c / c_bs)
    assert sorted(torch.cat([c for c, _ in pairs]).tolist()) == list(range(n_c))
    d_all = torch.cat([d for _, d in pairs])
    assert all(len(d) >= 1 for _, d in pairs) and int(d_all.max()) < n_d
    assert all(len(d) == d_bs for _, d in pairs[:-1])


def test_pairing_with_equal_batch_sizes_draws_len_c_d_samples_with_replacement():
    pairs = D.paired_batches(100, 8, 5, 8, torch.Generator().manual_seed(1))
    d_all = torch.cat([d for _, d in pairs])
    assert len(d_all) == 100 and len(d_all.unique()) == 5           # replacement: 100 draws of 5
    again = D.paired_batches(100, 8, 5, 8, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(pairs, again))


def test_pairing_never_yields_a_batch_of_one():
    pairs = D.paired_batches(9, 4, 3, 4, torch.Generator().manual_seed(0))   # C: 4, 4, (1 dropped)
    assert [len(c) for c, _ in pairs] == [4, 4] and all(len(d) == 4 for _, d in pairs)
    pairs = D.paired_batches(10, 8, 3, 4, torch.Generator().manual_seed(0))  # last C of 2 -> D of 2 (not 1)
    assert [len(d) for _, d in pairs] == [4, 2]
    assert num_batches(9, 4, training=True) == 2 and num_batches(10, 8, training=True) == 2
    assert num_batches(1, 4, training=True) == 1 and num_batches(9, 4, training=False) == 3
    assert [len(b) for b in D.shuffled_batches(5, 2, torch.Generator())] == [2, 2]



class _FirstRow(nn.Module):
    """Features = the first 4 pixels of an image's first row, so the test decides each prediction."""

    def forward(self, x):
        return x[:, 0, 0, :4]


def _part(x: np.ndarray, y: np.ndarray, batch_size: int) -> D.Part:
    rows = Rows.select(SignatureSet(x, y, np.zeros(len(y), dtype=np.int64)))
    return D.Part(rows, np.arange(0), np.arange(len(y)), batch_size, False)


def test_validation_accuracy_is_the_mean_of_per_batch_accuracies():
    predicted = np.array([0, 1, 2, 3, 2])
    x = np.zeros((5, 1, 150, 220), dtype=np.float32)
    x[np.arange(5), 0, 0, predicted] = 1.0
    labels = np.array([0, 0, 0, 0, 2])                     # batch [4]: 1/4 right, batch [1]: 1/1 right
    head = nn.Linear(4, 4, bias=False)
    head.weight.data = torch.eye(4)
    objective = D.DistillObjective(D.Student(_FirstRow(), head), None, _part(x, labels, 4), None, REFERENCE_WEIGHTS)
    metrics = objective.validate()
    assert metrics["d_acc"] == pytest.approx((0.25 + 1.0) / 2)   # not the pooled 2/5
    assert metrics["score"] == metrics["d_acc"] and metrics["spread"] == 0.0


def test_d_images_reach_the_networks_in_unit_range():
    rng = np.random.default_rng(0)
    as_uint8 = rng.integers(0, 256, (3, 1, 150, 220), dtype=np.uint8)
    as_float = rng.random((3, 1, 150, 220)).astype(np.float32) * 3   # float is never rescaled
    positions = np.arange(3)
    read_uint8 = D._read(_part(as_uint8, np.zeros(3, dtype=np.int64), 3), positions, torch.device("cpu"), None)
    read_float = D._read(_part(as_float, np.zeros(3, dtype=np.int64), 3), positions, torch.device("cpu"), None)
    assert torch.allclose(read_uint8.x, torch.from_numpy(as_uint8).float() / 255)
    assert torch.equal(read_float.x, torch.from_numpy(as_float))

# ---------------------------------------------------------------------------- tiny end-to-end runs
# The tiny networks of training_data: a run of a few epochs takes a second.

K, C_USERS, D_FIRST = 4, 3, 10


def _signature_set(users: range, per_user: int, size: tuple[int, int], dtype, seed: int,
                   forgeries: int = 0) -> SignatureSet:
    """Each user's images share a bright blob at a user-specific place, so users are learnable."""
    rng = np.random.default_rng(seed)
    images, y, yforg = [], [], []
    for n, user in enumerate(users):
        for kind, count in ((0, per_user), (1, forgeries)):
            x = rng.random((count, 1, *size)) * 0.3
            top = 10 + 25 * (n % 4)
            x[:, :, top:top + 30, 20 + 40 * n:60 + 40 * n] += 0.7
            images.append(x)
            y += [user] * count
            yforg += [kind] * count
    x = np.concatenate(images).astype(np.float32)
    if dtype == np.uint8:
        x = (x.clip(0, 1) * 255).astype(np.uint8)
    return SignatureSet(x, np.array(y), np.array(yforg))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distill")
    torch.manual_seed(0)
    teacher = TinyNet(4)
    paths = {"teacher": root / "teacher.pth", "headless": root / "headless.pth", "wide": root / "wide.pth"}
    save_checkpoint(paths["teacher"], teacher.state_dict(), nn.Linear(8, K).state_dict())
    save_checkpoint(paths["headless"], teacher.state_dict())
    save_checkpoint(paths["wide"], TinyNet(6).state_dict(), nn.Linear(8, K).state_dict())
    sets = {"d": _signature_set(range(D_FIRST, D_FIRST + K), 5, (150, 220), np.float32, 1),
            "d170": _signature_set(range(D_FIRST, D_FIRST + K), 5, (170, 242), np.uint8, 2),
            "c": _signature_set(range(C_USERS), 8, (170, 242), np.uint8, 3, forgeries=2),
            "small": _signature_set(range(C_USERS), 4, (140, 200), np.uint8, 4)}
    for name, sigset in sets.items():
        paths[name] = sigset.save(root / f"{name}.npz")
    paths["c_folder"] = sets["c"].save(root / "c_folder", folder=True)   # memory-mapped x
    return paths


def sig(*args) -> Result:
    return run_sig("distill", *args)


def base_args(files, logdir, *extra) -> list:
    return ["--s-model", TINY, "--t-model-path", files["teacher"], "--d-data-path", files["d"],
            "--d-users", D_FIRST, D_FIRST + K, "--d-batch-size", 4, "--c-batch-size", 4,
            "--device", "cpu", "--logdir", logdir, *extra]


def metrics(logdir: Path) -> list[dict[str, str]]:
    with open(logdir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_plain_distillation_writes_train_outputs(files, tmp_path):
    result = sig(*base_args(files, tmp_path / "run", "--epochs", 2, "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = metrics(tmp_path / "run")
    assert [row["epoch"] for row in summary["history"]] == [1, 2] and summary["best_epoch"] in (1, 2)
    assert summary["paths"]["best"] == str(tmp_path / "run" / "model_best.pth")
    assert summary["last_metrics"]["d_acc"] == pytest.approx(float(rows[-1]["val_d_acc"]))
    assert len(rows) == 2 and {"val_d_acc", "val_d_loss", "val_score", "train_kl_d", "best"} <= set(rows[0])
    assert "val_c_acc" not in rows[0] and "train_ce_c" not in rows[0]
    assert float(rows[0]["val_score"]) == float(rows[0]["val_d_acc"])
    for name in ("model_best.pth", "model_last.pth", "config.json"):
        assert (tmp_path / "run" / name).exists()
    checkpoint = load_checkpoint(tmp_path / "run" / "model_best.pth")
    assert checkpoint.arch == TINY and checkpoint.num_classes == K and checkpoint.forgery_state is None


@pytest.mark.slow
def test_continual_run_learns_k_plus_c_users(files, tmp_path):
    result = sig(*base_args(files, tmp_path / "run", "--c-data-path", files["c"], "--epochs", 3, "--lr", 0.05))
    assert result.exit_code == 0, result.output
    rows = metrics(tmp_path / "run")
    assert {"val_c_acc", "val_c_loss", "val_spread", "train_ce_c", "train_kl_p"} <= set(rows[0])
    for row in rows:
        d_acc, c_acc = float(row["val_d_acc"]), float(row["val_c_acc"])
        assert float(row["val_score"]) == pytest.approx((d_acc + c_acc) / 2)
        assert float(row["val_spread"]) == pytest.approx(abs(d_acc - c_acc) / 2)
    assert sum(row["best"] == "True" for row in rows) >= 1 and rows[0]["best"] == "True"
    assert "best epoch" in result.output and "C-val acc" in result.output
    last = load_checkpoint(tmp_path / "run" / "model_last.pth")
    assert last.num_classes == K + C_USERS
    tested = sig("--test", "--s-model-path", tmp_path / "run" / "model_last.pth", "--c-data-path", files["c"],
                 *base_args(files, tmp_path / "unused"))
    assert tested.exit_code == 0, tested.output
    assert "C-val" in tested.output and not (tmp_path / "unused").exists()
    assert f"{100 * float(rows[-1]['val_c_acc']):.1f}%" in tested.output  # the last epoch's own figure
    as_json = sig("--test", "--json", "--s-model-path", tmp_path / "run" / "model_last.pth", "--c-data-path",
                  files["c"], *base_args(files, tmp_path / "unused"))
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["c_acc"] == pytest.approx(float(rows[-1]["val_c_acc"]))


def test_student_initialised_from_a_checkpoint(files, tmp_path):
    torch.manual_seed(5)
    source_features, source_head = TinyNet(4), nn.Linear(8, K + 2)
    save_checkpoint(tmp_path / "student.pth", source_features.state_dict(), source_head.state_dict())
    options = DistillOptions(s_model=TINY, t_model_path=files["teacher"], d_data_path=files["d"],
                               c_data_path=files["c"], s_model_path=tmp_path / "student.pth", device="cpu")
    objective, config = D.build_objective(options, DistributedInfo())
    student = objective.student
    assert config["teacher"]["classes"] == K and config["c"]["users"] == C_USERS
    for name, value in source_features.state_dict().items():
        assert torch.equal(student.features.state_dict()[name], value)
    assert student.classifier.out_features == K + C_USERS
    assert torch.equal(student.classifier.weight[:K], source_head.weight[:K])
    assert torch.equal(student.classifier.bias[:K], source_head.bias[:K])
    fresh, _ = D.build_objective(options.model_copy(update={"s_model_path": None}), DistributedInfo())
    assert torch.equal(student.classifier.weight[K:], fresh.student.classifier.weight[K:])  # C rows: seeded init


def test_joint_bn_passes_d_and_c_as_one_batch_norm_batch():
    torch.manual_seed(0)
    features, head = TinyNet(4).train(), nn.Linear(8, 5)
    d, c = torch.rand(3, 1, 150, 220), torch.rand(4, 1, 150, 220) * 2
    separate = D.Student(features, head)(d, c)
    joint = D.Student(features, head, joint=True)(d, c)
    together = head(features(torch.cat([d, c])))
    assert torch.allclose(torch.cat(joint), together, atol=1e-6)
    assert torch.allclose(separate[0], head(features(d)), atol=1e-6)
    assert not torch.allclose(separate[1], joint[1], atol=1e-3)      # batch statistics differ
    (only_d,) = D.Student(features, head, joint=True)(d)              # validation: one set at a time
    assert torch.allclose(only_d, separate[0], atol=1e-6)

@pytest.mark.slow
def test_resume_ends_where_an_uninterrupted_run_does(files, tmp_path):
    args = ("--c-data-path", files["c"], "--lr", 0.05)
    assert sig(*base_args(files, tmp_path / "straight", *args, "--epochs", 3)).exit_code == 0
    assert sig(*base_args(files, tmp_path / "resumed", *args, "--epochs", 2)).exit_code == 0
    resumed = sig(*base_args(files, tmp_path / "resumed", *args, "--epochs", 3, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    straight = load_checkpoint(tmp_path / "straight" / "model_last.pth")
    again = load_checkpoint(tmp_path / "resumed" / "model_last.pth")
    for name, value in straight.features_state.items():
        assert torch.equal(value, again.features_state[name]), name
    assert torch.equal(straight.classifier_state["weight"], again.classifier_state["weight"])
    assert [r["val_score"] for r in metrics(tmp_path / "straight")] == \
        [r["val_score"] for r in metrics(tmp_path / "resumed")]
    changed = sig(*base_args(files, tmp_path / "resumed", *args, "--epochs", 4, "--resume", "--p-lamb", 0.5))
    assert changed.exit_code == 2 and "--p-lamb" in changed.output


@pytest.mark.slow
def test_d_set_at_the_preprocessed_size_with_center_crop(files, tmp_path):
    refused = sig(*base_args(files, tmp_path / "run", "--epochs", 1), "--d-data-path", files["d170"])
    assert refused.exit_code == 2 and "--d-transform" in refused.output
    # C batch larger than D's: no StopIteration; C as a memory-mapped folder
    for transform, c_batch, c_set in (("center-crop", 4, "c"), ("crop", 8, "c_folder")):
        done = sig(*base_args(files, tmp_path / transform, "--epochs", 1), "--d-data-path", files["d170"],
                   "--d-transform", transform, "--c-data-path", files[c_set], "--c-batch-size", c_batch)
        assert done.exit_code == 0, done.output


@pytest.mark.parametrize("case, message", [
    ("d_users_mismatch", "spans 3 users but the teacher has 4 classes"),
    ("empty_c_range", "--c-users 2 2 is an empty"),
    ("c_too_small", "smaller than the network's 150×220"),
    ("headless_teacher", "no user-classification head"),
    ("other_architecture", f"holds a {TINY_WIDE} network, not --s-model {TINY}"),
    ("c_users_beyond", "--c-users 2 60 reaches beyond the users of"),
    ("d_users_beyond", f"--d-users {D_FIRST + 1} {D_FIRST + K + 1} reaches beyond the users of"),
    ("test_without_student", "--test evaluates a trained student"),
])
def test_bad_input_is_one_line_and_exit_2(files, tmp_path, case, message):
    args = base_args(files, tmp_path / "run", "--epochs", 1, "--c-data-path", files["c"])
    extra = {"d_users_mismatch": ["--d-users", D_FIRST, D_FIRST + K - 1],
             "empty_c_range": ["--c-users", 2, 2],
             "c_too_small": ["--c-data-path", files["small"]],
             "headless_teacher": ["--t-model-path", files["headless"]],
             "other_architecture": ["--s-model-path", files["wide"]],
             "c_users_beyond": ["--c-users", 2, 60],
             "d_users_beyond": ["--d-users", D_FIRST + 1, D_FIRST + K + 1],
             "test_without_student": ["--test"]}[case]
    result = sig(*args, *extra)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:") and message in " ".join(lines), result.output
    assert not (tmp_path / "run" / "model_last.pth").exists()


def test_missing_downloads_name_the_sig_download_command(files, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGCLI_HOME", str(tmp_path / "empty-cache"))
    result = sig("--s-model", TINY, "--c-data-path", files["c"], "--logdir", tmp_path / "run")
    assert result.exit_code == 2 and "sig download signet-distill" in result.output
    result = sig("--s-model", TINY, "--t-model-path", files["teacher"], "--logdir", tmp_path / "run")
    assert result.exit_code == 2 and "sig download inverted-data" in result.output


@pytest.mark.slow
def test_two_process_gloo_run(files, tmp_path):
    """`torchrun --nproc-per-node 2 -m sigcli distill` on the tiny model (registered at start-up)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from training_data import register_networks
        register_networks()
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "sigcli", "distill", *map(str, base_args(files, tmp_path / "ddp", "--epochs", 2,
                                                              "--c-data-path", files["c"]))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = metrics(tmp_path / "ddp")
    assert len(rows) == 2 and all(0 <= float(r["val_score"]) <= 1 for r in rows)
    assert load_checkpoint(tmp_path / "ddp" / "model_best.pth").num_classes == K + C_USERS
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2


def test_help_names_every_option_and_a_command_line_gives_back_the_options(cli):
    result = cli("distill", "--help", env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert flags_missing_from_help(DistillOptions, result.output) == []
    assert "--s-checkpoint" not in result.output   # renamed --s-model-path
    options = DistillOptions(d_transform="center-crop", c_users=(0, 3), s_model_path="s.pth", p_lamb=0.1 + 0.2)
    assert parse(DistillOptions, argv(options)) == options


def test_loss_weights_are_the_options():
    options = DistillOptions(d_lamb=0.5, c_lamb=2.0, p_lamb=3.0, temperature=4.0)
    assert D.LossWeights.of(options) == (0.5, 2.0, 3.0, 4.0)
    assert REFERENCE_WEIGHTS == (1.0, 1.0, 1.7, 1.0)

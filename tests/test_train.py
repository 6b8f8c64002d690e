"""sig train: SigNet / SigNet-F objectives, the shared loop (resume, Ctrl-C, NaN, DDP), batches."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

import sigcli.models
from sigcli.cli.derive import argv, parse
from sigcli.config import training as config
from sigcli.config.training import Schedule, TrainOptions
from sigcli.data.sigset import SignatureSet
from sigcli.errors import SigcliError
from sigcli.models import create_model
from sigcli.models.checkpoint import load_checkpoint
from sigcli.training.data import (Rows, batches, center_crop, crop, num_batches, prefetch, random_offsets,
                                  split_train_val)
from sigcli.training.loop import fit, learning_rate
from sigcli.training.supervised import SupervisedObjective, train_signet
from training_data import TINY, flags_missing_from_help, signature_set


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """4 users × 5 genuine + 3 skilled, as a memory-mapped folder."""
    return signature_set(users=4, genuine=5, skilled=3).save(tmp_path_factory.mktemp("data") / "set", folder=True)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- objectives
@pytest.mark.slow
@pytest.mark.parametrize("forg", [False, True], ids=["signet", "signet-f"])
def test_signet_and_signet_f_loss_falls(tmp_path, forg):
    """The real SigNet on 3 users × (5 genuine + 2 skilled): 2 or 3 steps per epoch (~40 images/s here)."""
    data = signature_set(users=3, genuine=5, skilled=2).save(tmp_path / "set.npz")
    options = TrainOptions(data_path=data, logdir=tmp_path / "run", model="signet", epochs=2, forg=forg,
                           lr_decay_times=0, batch_size=6, device="cpu")
    result = train_signet(options)
    first, second = result.history
    assert second["train_loss"] < first["train_loss"]
    assert ("train_forg_loss" in first) == forg and ("val_forg_acc" in first) == forg
    checkpoint = load_checkpoint(tmp_path / "run" / "model_last.pth")
    assert checkpoint.arch == "signet" and checkpoint.num_classes == 3
    assert (checkpoint.forgery_state is not None) == forg


@pytest.mark.parametrize("loss_type", ["L1", "L2"])
def test_signet_f_loss_by_hand(loss_type):
    """(1 − λ)·CE of the user head + λ·BCE of the forgery head over all samples; the CE is over
    the genuine samples (L2, Eq. 4) or over all, each forgery labelled with the writer it imitates
    (L1, Eq. 3)."""
    torch.manual_seed(0)
    features = create_model(TINY)
    data = signature_set(users=2, genuine=2, skilled=2)   # user 0: 2 genuine, 2 forged; the same for user 1
    rows = Rows.select(data)
    objective = SupervisedObjective(features, rows, np.arange(8), np.arange(8), 2, batch_size=8, lamb=0.7,
                                    loss_type=loss_type)
    batch = next(iter(batches(rows, np.arange(8), 8)))
    loss, metrics = objective.train_step(batch)
    assert batch.y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and batch.yforg.tolist() == [0, 0, 1, 1] * 2
    with torch.no_grad():
        out = features(batch.x)
        log_p = objective.nets["classifier"](out).log_softmax(1)
        chosen = [0, 1, 2, 3, 4, 5, 6, 7] if loss_type == "L1" else [0, 1, 4, 5]
        ce = -sum(log_p[i, int(batch.y[i])] for i in chosen) / len(chosen)
        z = objective.nets["forgery"](out).squeeze(1)
        t = batch.yforg.float()
        bce = -(t * torch.sigmoid(z).log() + (1 - t) * (1 - torch.sigmoid(z)).log()).mean()
    assert loss.item() == pytest.approx((0.3 * ce + 0.7 * bce).item(), rel=1e-5)
    assert metrics["class_loss"] == pytest.approx(ce.item(), rel=1e-5)
    assert metrics["forg_loss"] == pytest.approx(bce.item(), rel=1e-5)
    predicted = log_p.argmax(1)
    assert metrics["acc"] == pytest.approx(np.mean([predicted[i] == batch.y[i] for i in chosen]))


def test_loss_type_l1_needs_forgeries(cli, small_set, tmp_path):
    """Without --forg there are no forgeries and both losses are the same: L1 is refused."""
    assert TrainOptions(data_path="a.npz", logdir="run", forg=True, loss_type="L1").loss_type == "L1"
    result = cli("train", "--data-path", str(small_set), "--logdir", str(tmp_path / "run"), "--loss-type", "L1")
    assert result.exit_code == 2 and "--loss-type L1" in result.output and "--forg" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_one_epoch_writes_the_run(small_set, tmp_path, cli):
    """A 1-epoch run works (the reference's step size epochs // 3 = 0 crashes) and writes every file;
    sigver's --dataset-path still names the set."""
    logdir = tmp_path / "run"
    result = cli("train", "--model", TINY, "--dataset-path", str(small_set), "--users", "1", "4",
                 "--epochs", "1", "--logdir", str(logdir), "--batch-size", "4", "--device", "cpu",
                 "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "best epoch 1" in result.output and "val acc" in result.output
    assert {p.name for p in logdir.iterdir()} == {"model_best.pth", "model_last.pth", "metrics.csv", "config.json",
                                                  "train_state.pth"}
    config = json.loads((logdir / "config.json").read_text())
    assert config["options"]["seed"] == 3 and config["options"]["users"] == [1, 4]
    assert config["options"]["data_path"] == str(small_set) and "dataset_path" not in config["options"]
    assert config["environment"]["torch"] == torch.__version__
    assert len(config["data"]["fingerprint"]) == 16 and config["data"]["users"] == 3
    assert config["canvases"] == []  # no options file of 'sig preprocess' beside the set: nothing to record
    rows = _rows(logdir / "metrics.csv")
    assert len(rows) == 1 and rows[0]["best"] == "True" and float(rows[0]["lr"]) == 1e-3
    checkpoint = load_checkpoint(logdir / "model_best.pth", model=TINY)
    assert checkpoint.num_classes == 3 and checkpoint.forgery_state is None


def test_cli_errors_are_one_line(small_set, tmp_path, cli):
    def run(*args: str) -> str:
        result = cli("train", "--model", TINY, "--data-path", str(small_set), "--logdir",
                     str(tmp_path / "run"), "--device", "cpu", *args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:")
        return lines[0]

    assert f"--users 2 500 reaches beyond the users of {small_set}, 0–3" in run("--users", "2", "500")
    assert "--users 50 60 reaches beyond the users of" in run("--users", "50", "60")
    assert "--lamb" in run("--lamb", "1.5")
    assert "no completed epoch to resume" in run("--resume")
    assert "unknown model 'nope'" in run("--model", "nope")
    genuine_only = tmp_path / "genuine.npz"
    signature_set(users=2, genuine=5).save(genuine_only)
    result = cli("train", "--data-path", str(genuine_only), "--logdir", str(tmp_path / "r"),
                 "--forg", "--model", TINY)
    assert result.exit_code == 2 and "--forg needs forgeries" in result.output


def test_distillation_records_the_canvases_of_its_sets(tmp_path):
    """D's canvas, or the teacher's when D has none recorded (inverted images); then C's; each once."""
    from sigcli.data.sigset import Canvas, canvas_of
    from sigcli.options import save_options
    from sigcli.config.preprocess import PreprocessOptions
    from sigcli.preprocess import options_file
    from sigcli.training.distill import _canvases

    def preprocessed(name: str, dataset: str | None) -> Path:
        path = signature_set(users=2, genuine=2).save(tmp_path / f"{name}.npz")
        if dataset:
            save_options(PreprocessOptions(dataset=dataset, raw_path=tmp_path, save_path=str(path)), options_file(path))
        return path

    teacher_run = tmp_path / "teacher"
    teacher_run.mkdir()
    gpds, mcyt = {"dataset": "gpds", "canvas_size": [952, 1360], "image_size": [170, 242]}, \
        {"dataset": "mcyt", "canvas_size": [600, 850], "image_size": [170, 242]}
    (teacher_run / "config.json").write_text(json.dumps({"canvases": [gpds]}))
    teacher = teacher_run / "model_best.pth"
    inverted, d_gpds, c_mcyt = preprocessed("inverted", None), preprocessed("d", "gpds"), preprocessed("c", "mcyt")
    assert canvas_of(c_mcyt) == Canvas("mcyt", (600, 850), (170, 242)) and canvas_of(inverted) is None
    assert _canvases(teacher, inverted, c_mcyt) == [gpds, mcyt]
    assert _canvases(teacher, d_gpds, None) == [gpds]
    assert _canvases(teacher_run / "renamed.pth", inverted, d_gpds) == [gpds]
    assert _canvases(teacher_run / "renamed.pth", inverted, None) == []


# --------------------------------------------------------------------------- loop
def test_learning_rate_is_stepped_and_a_short_run_works():
    twenty = Schedule(epochs=20)
    assert [learning_rate(e, twenty) for e in (0, 5, 6, 11, 12, 18, 19)] == \
        pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-6, 1e-6])
    assert learning_rate(0, Schedule(epochs=1)) == 1e-3
    assert [learning_rate(e, Schedule(epochs=2)) for e in (0, 1)] == pytest.approx([1e-3, 1e-4])
    assert learning_rate(9, Schedule(epochs=10, lr_decay_times=0)) == 1e-3
    sixty = Schedule(epochs=60)  # step 20: twice in the run, as --lr-decay-times says
    assert [learning_rate(e, sixty) for e in (19, 20, 39, 40, 59)] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    assert learning_rate(6, Schedule(epochs=20, lr_decay=0.5)) == pytest.approx(5e-4)


@pytest.mark.slow
def test_json_summary_and_resuming_a_run_whose_config_has_the_old_option_names(small_set, tmp_path, cli):
    """--json prints the epochs; a run started before --dataset-path became --data-path (and before
    --json existed) resumes, and a different set is still refused."""
    logdir = tmp_path / "run"
    args = ["train", "--model", TINY, "--data-path", str(small_set), "--logdir", str(logdir), "--batch-size", "4",
            "--device", "cpu", "--lr-decay", "0.5", "--lr-decay-times", "2"]
    first = cli(*args, "--epochs", "1", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["best_epoch"] == 1 and [row["epoch"] for row in summary["history"]] == [1]
    assert summary["paths"]["best"] == str(logdir / "model_best.pth")

    config_path = logdir / "config.json"
    record = json.loads(config_path.read_text())
    options = record["options"]
    options["dataset_path"] = options.pop("data_path")
    del options["as_json"], options["loss_type"]   # options added since: resumed at their defaults
    config_path.write_text(json.dumps(record))
    moved = tmp_path / "elsewhere"
    moved.symlink_to(small_set)
    refused = cli(*args, "--epochs", "2", "--resume", "--data-path", str(moved))
    assert refused.exit_code == 2 and f"--data-path {moved} (was {small_set})" in refused.output
    resumed = cli(*args, "--epochs", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    rows = _rows(logdir / "metrics.csv")
    assert [float(row["lr"]) for row in rows] == pytest.approx([1e-3, 5e-4])   # step max(1, 2 // 2), factor 0.5


def test_help_names_every_option_and_a_command_line_gives_back_the_options(cli):
    result = cli("train", "--help", env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert flags_missing_from_help(TrainOptions, result.output) == []
    assert "--dataset-path" in result.output  # sigver's name, kept beside --data-path
    options = TrainOptions(data_path="a b.npz", logdir="run", users=(1, 5), forg=True, lr_decay=0.5, nesterov=False,
                           as_json=True)
    assert parse(TrainOptions, argv(options)) == options
    assert parse(TrainOptions, ["--dataset-path", "a b.npz", "--logdir", "run"]).data_path == Path("a b.npz")
    ensadv = TrainOptions(data_path="a.npz", logdir="run", adversarial="ensadv", adv_models=["m1.pth", "m 2.pth"],
                          eps=3, alpha=0.25)
    assert parse(TrainOptions, argv(ensadv)) == ensadv
    assert parse(TrainOptions, ["--data-path", "a.npz", "--logdir", "run", "--adversarial", "ensadv", "--adv-models",
                                "m1.pth", "--adv-model", "m 2.pth", "--eps", "3", "--alpha", "0.25"]) == ensadv
    tested = TrainOptions(data_path="a.npz", test=True, model_path="m.pth", forg=True, loss_type="L1")
    assert parse(TrainOptions, argv(tested)) == tested


@pytest.mark.parametrize("given, refused", [
    (dict(attack_steps=10), "--attack-steps is not used with --adversarial none"),
    (dict(adversarial="ensadv", attack_l2=5), "--attack-l2 is not used with --adversarial ensadv"),
    (dict(adversarial="madry", eps=2, alpha=0.1), "--eps, --alpha are not used with --adversarial madry"),
    (dict(adv_models=["m.pth"]), "--adv-model is not used"),
])
def test_attack_options_are_refused_without_their_kind_of_adversarial_training(given, refused):
    with pytest.raises(SigcliError, match=refused):
        TrainOptions(data_path="a.npz", logdir="run", **given)


def test_the_builtin_architectures_named_in_help_are_the_registered_ones():
    """``--help`` names them from a constant (building the registry would import torch)."""
    assert config.BUILTIN_MODELS == sigcli.models.BUILTIN_MODELS
    assert all(name in config.ARCHITECTURE for name in sigcli.models.BUILTIN_MODELS)


class _InterruptInEpoch:
    """A reporter that presses Ctrl-C (a real SIGINT) during the first step of an epoch."""

    def __init__(self, epoch: int):
        self.prefix = f"epoch {epoch}/"

    @contextmanager
    def task(self, description: str, total):
        armed = description.startswith(self.prefix)

        class Task:
            def advance(self, n=1, **fields):
                nonlocal armed
                if armed:
                    armed = False
                    signal.raise_signal(signal.SIGINT)

        yield Task()


@pytest.mark.slow
def test_ctrl_c_then_resume_ends_with_the_uninterrupted_weights(small_set, tmp_path):
    def options(logdir: Path, resume: bool = False) -> TrainOptions:
        return TrainOptions(data_path=small_set, logdir=logdir, model=TINY, epochs=3, batch_size=4, lr=0.05,
                            forg=True, device="cpu", resume=resume)

    train_signet(options(tmp_path / "straight"))
    with pytest.raises(KeyboardInterrupt):
        train_signet(options(tmp_path / "resumed"), reporter=_InterruptInEpoch(2))
    interrupted = load_checkpoint(tmp_path / "resumed" / "model_last.pth")  # valid, mid-epoch-2 weights
    assert interrupted.arch == TINY and len(_rows(tmp_path / "resumed" / "metrics.csv")) == 1
    train_signet(options(tmp_path / "resumed", resume=True))

    for name in ("model_last.pth", "model_best.pth"):
        straight = torch.load(tmp_path / "straight" / name, weights_only=True)
        resumed = torch.load(tmp_path / "resumed" / name, weights_only=True)
        for a, b in zip(straight, resumed):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight, resumed = (_rows(tmp_path / run / "metrics.csv") for run in ("straight", "resumed"))
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in straight] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in resumed]


@pytest.mark.slow
def test_a_fresh_run_refuses_a_used_logdir_and_resume_checks_options(small_set, tmp_path):
    options = dict(data_path=small_set, logdir=tmp_path / "run", model=TINY, epochs=1, batch_size=4, device="cpu")
    train_signet(TrainOptions(**options))
    with pytest.raises(SigcliError, match="already holds a training run"):
        train_signet(TrainOptions(**options))
    with pytest.raises(SigcliError, match="--lr 0.5 \\(was 0.001\\)"):
        train_signet(TrainOptions(**{**options, "lr": 0.5, "resume": True}))
    more = train_signet(TrainOptions(**{**options, "epochs": 2, "resume": True}))  # more epochs may be added
    assert [row["epoch"] for row in more.history] == [1, 2]


class _NanInSecondEpoch(SupervisedObjective):
    def train_batches(self, epoch, generator):
        self.epoch = epoch
        return super().train_batches(epoch, generator)

    def train_step(self, batch):
        loss, metrics = super().train_step(batch)
        return (loss * float("nan") if self.epoch == 1 else loss), metrics


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    rows = Rows.select(signature_set(users=2, genuine=5))
    train, val = split_train_val(len(rows), seed=0)
    objective = _NanInSecondEpoch(create_model(TINY), rows, train, val, 2, batch_size=4)
    with pytest.raises(SigcliError, match="NaN or infinite in epoch 2, step 1.*holds epoch 1, the last good one"):
        fit(objective, Schedule(epochs=3, device="cpu"), tmp_path)
    state = torch.load(tmp_path / "train_state.pth", weights_only=True)
    last = torch.load(tmp_path / "model_last.pth", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.equal(last[0][k], v) for k, v in state["modules"]["features"].items())
    assert all(torch.isfinite(v.float()).all() for v in last[0].values())


def test_nan_in_the_first_epoch_through_the_cli(tmp_path, cli):
    data = signature_set(users=2, genuine=5)
    broken = SignatureSet(np.full(data.x.shape, np.nan, dtype=np.float32), data.y, data.yforg)
    broken.save(tmp_path / "nan.npz")
    result = cli("train", "--model", TINY, "--data-path", str(tmp_path / "nan.npz"), "--logdir",
                 str(tmp_path / "run"), "--epochs", "2", "--device", "cpu")
    assert result.exit_code == 2 and "no checkpoint was written" in result.output
    assert not (tmp_path / "run" / "model_last.pth").exists()


@pytest.mark.slow
def test_two_process_gloo_run(small_set, tmp_path):
    """`torchrun --nproc-per-node 2 … sig train`: DDP on CPU; rank 0 alone writes the run."""
    launcher = tmp_path / "sig_with_tiny.py"
    launcher.write_text(f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                        "import training_data\ntraining_data.register_networks()\n"
                        "from sigcli.cli.app import main\nsys.argv[0] = 'sig'\nmain()\n")
    logdir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(launcher), "train", "--model", TINY, "--data-path", str(small_set), "--forg",
                           "--epochs", "2", "--batch-size", "4", "--logdir", str(logdir), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    config = json.loads((logdir / "config.json").read_text())
    assert config["world_size"] == 2
    assert [row["epoch"] for row in _rows(logdir / "metrics.csv")] == ["1", "2"]
    assert done.stdout.count("best epoch") == 1  # only rank 0 renders
    assert sorted(p.name for p in logdir.iterdir()) == ["config.json", "metrics.csv", "model_best.pth",
                                                        "model_last.pth", "train_state.pth"]
    # 28 training signatures shared by 2 ranks, 4 per step: 4 steps per epoch (7 on one process).
    assert "4/4" in next(line for line in done.stderr.splitlines() if line.startswith("epoch 1/2"))
    assert torch.load(logdir / "train_state.pth", weights_only=True)["epoch"] == 2
    assert load_checkpoint(logdir / "model_last.pth").arch == TINY


# --------------------------------------------------------------------------- data
def test_batched_crops_equal_per_image_crops():
    images = torch.randint(0, 256, (6, 1, 170, 242), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    tops, lefts = random_offsets(6, (170, 242), (150, 220), generator)
    assert tops.max() <= 20 and lefts.max() <= 22
    cropped = crop(images, tops, lefts)
    for i in range(6):
        assert torch.equal(cropped[i], TF.crop(images[i], int(tops[i]), int(lefts[i]), 150, 220))
    assert torch.equal(center_crop(images), TF.center_crop(images, [150, 220]))


def test_batches_scale_to_unit_keep_labels_and_stream_a_memmap(tmp_path):
    data = signature_set(users=3, genuine=4, skilled=2)
    data.save(tmp_path / "set", folder=True)
    loaded = SignatureSet.load(tmp_path / "set")
    rows = Rows.select(loaded, users=(1, 3), genuine_only=True)
    assert isinstance(rows.x, np.memmap) and list(rows.rows) == [6, 7, 8, 9, 12, 13, 14, 15]
    order = np.array([5, 0, 3, 1, 2, 4, 6, 7])
    seen = list(batches(rows, order, 3))
    assert [len(b.index) for b in seen] == [3, 3, 2]
    assert sorted(np.concatenate([b.index for b in seen]).tolist()) == list(range(8))
    first = seen[0]
    expected = TF.center_crop(torch.from_numpy(data.x[rows.rows[first.index]]), [150, 220]).float() / 255
    assert torch.equal(first.x, expected) and first.x.dtype == torch.float32
    assert torch.equal(first.y, torch.from_numpy(data.y[rows.rows[first.index]]))
    floats = Rows(data.x[:4].astype(np.float32) / 7, np.arange(4), data.y[:4], data.yforg[:4])
    assert torch.equal(next(iter(batches(floats, np.arange(4), 4))).x,
                       TF.center_crop(torch.from_numpy(floats.x), [150, 220]))  # float taken as it is
    # Training drops a last batch of one image (batch norm cannot train on it).
    generator = torch.Generator().manual_seed(0)
    assert len(list(batches(rows, np.arange(7), 3, generator=generator))) == num_batches(7, 3, training=True) == 2


def test_rows_of_a_memory_map_slice_are_read_from_its_file(tmp_path):
    data = signature_set(users=3, genuine=4, skilled=2)
    data.save(tmp_path / "set", folder=True)
    subset = SignatureSet.load(tmp_path / "set").select_users(1, 3)  # a slice of the map, offset inside the file
    rows = Rows.select(subset)
    order = np.array([7, 0, 11, 3, 4, 5])
    got = np.concatenate([b.x.numpy() for b in batches(rows, order, 4)])
    expected = TF.center_crop(torch.from_numpy(data.x[data.y >= 1][np.sort(order[:4]).tolist() + [4, 5]]), [150, 220])
    assert np.array_equal(got, expected.float().numpy() / 255)


def test_split_is_ninety_ten_and_seeded():
    train, val = split_train_val(41, seed=5)
    assert len(train) == 36 and len(val) == 5 and not set(train) & set(val)
    assert np.array_equal(split_train_val(41, seed=5)[1], val)
    with pytest.raises(SigcliError, match="cannot be split"):
        split_train_val(1, seed=0)


def test_prefetch_keeps_order_and_raises_errors():
    assert list(prefetch(iter(range(10)), depth=2)) == list(range(10))

    def failing():
        yield 1
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        list(prefetch(failing()))


# --------------------------------------------------------------------------- --test
def test_test_reports_the_validation_metrics_of_a_checkpoint_and_writes_nothing(small_set, tmp_path, cli):
    """--test --checkpoint M gives what training recorded for M's epoch, on the same split; errors are one line."""
    logdir = tmp_path / "run"
    common = ["--model", TINY, "--data-path", str(small_set), "--users", "1", "4", "--forg", "--seed", "3",
              "--device", "cpu"]
    trained = cli("train", *common, "--epochs", "2", "--batch-size", "4", "--logdir", str(logdir))
    assert trained.exit_code == 0, trained.output
    recorded = _rows(logdir / "metrics.csv")[-1]
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}

    tested = cli("train", *common, "--test", "--checkpoint", str(logdir / "model_last.pth"), "--json")
    assert tested.exit_code == 0, tested.output
    metrics = json.loads(tested.stdout)
    for name in ("acc", "loss", "forg_acc", "forg_loss"):
        assert metrics[name] == pytest.approx(float(recorded[f"val_{name}"]), rel=1e-6), name
    table = cli("train", *common, "--test", "--model-path", str(logdir / "model_last.pth"))
    assert table.exit_code == 0 and "validation" in table.output and "forgery" in table.output
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before

    def error(*args: str) -> str:
        result = cli("train", "--data-path", str(small_set), "--device", "cpu", *args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        return lines[0]

    checkpoint = str(logdir / "model_best.pth")
    assert "give its --checkpoint" in error("--test")
    assert "add --test" in error("--checkpoint", checkpoint, "--logdir", str(tmp_path / "new"))
    assert "give --logdir" in error()
    assert f"holds a {TINY} network, not --model signet" in error("--test", "--checkpoint", checkpoint, "--forg")
    assert "these options select 4 users" in error("--test", "--checkpoint", checkpoint, "--model", TINY, "--forg")
    plain = tmp_path / "plain"
    assert cli("train", "--model", TINY, "--data-path", str(small_set), "--users", "1", "4", "--epochs", "1",
               "--batch-size", "4", "--device", "cpu", "--logdir", str(plain)).exit_code == 0
    assert "no forgery head" in error("--test", "--checkpoint", str(plain / "model_best.pth"), "--model", TINY,
                                      "--users", "1", "4", "--forg")

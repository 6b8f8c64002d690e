"""sig meta: tasks, the inner and outer loops of MAML, the meta-learners, training on the loop of
`sig train`, the test protocol and its results, resume, and bad inputs.

The maths is checked on tiny networks in float64 (where the vmapped and looped meta-batches
agree to rounding); the command runs the reference's SmallCNN on tiny tasks of a small set.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from sigcli.cli.derive import flag
from sigcli.config.meta import MetaOptions
from sigcli.meta.learner import MetaLearner
from sigcli.meta.maml import TaskLearningRates, adapt, balanced_bce, msl_weights, run_meta_batch
from sigcli.meta.models import ARCHITECTURES, MetaSigNet, SmallCNN, load_signet_features
from sigcli.meta.tasks import GENUINE, RANDOM, SKILLED, TaskSizes, WriterPool, draw_task, draw_tasks, read_tasks
from sigcli.meta.train import choose_mode, task_bytes
from sigcli.metrics import compute_metrics
from sigcli.models import create_model
from sigcli.models.checkpoint import load_checkpoint, save_checkpoint
from sigcli.results import load_results
from training_data import signature_set

# Tiny tasks for the command: 2 genuine + 2 random forgeries to adapt on; 2 + 1 + 2 to score.
TASK_FLAGS = ["--num-gen", 2, "--num-rf", 2, "--num-gen-test", 2, "--num-rf-test", 1, "--num-sk-test", 2]
SIZES = TaskSizes(2, 2, 2, 1, 2)
WRITERS = ["--dev-users", 0, 6, "--val-users", 6, 10, "--exp-users", 10, 14]
TINY_INPUT = (70, 90)   # the smallest images both architectures take (SigNet's three pools leave 1×1)


@pytest.fixture(scope="module", autouse=True)
def tiny_smallcnn():
    """``--model smallcnn`` builds the reference's layers with 2 channels and small fc layers,
    reading 70×90 crops, here (~40× less arithmetic); its checkpoints record that size and load as such."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ARCHITECTURES, "smallcnn", partial(SmallCNN, channels=2, hidden=8, features=4,
                                                         input_size=TINY_INPUT))
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """14 writers × (5 genuine + 3 skilled), 170×242 uint8."""
    return signature_set(users=14, genuine=5, skilled=3).save(tmp_path_factory.mktemp("meta") / "set.npz")


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """A 2-epoch meta-training of SmallCNN with a test at the end (shared by the tests that read it)."""
    from typer.testing import CliRunner

    from sigcli.cli.app import app

    logdir = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(app, [str(a) for a in ["meta", "--data-path", data, "--model", "smallcnn",
                                                       "--num-updates", 2, *TASK_FLAGS, *WRITERS, "--epochs", 2,
                                                       "--meta-batch-size", 3, "--folds", 2, "--learn-task-lr",
                                                       "--device", "cpu", "--logdir", logdir]])
    assert result.exit_code == 0, result.output
    return logdir


def tiny_cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(channels=2, hidden=6, features=4, dropout=0.0, input_size=TINY_INPUT).double()


def tiny_signet() -> MetaSigNet:
    torch.manual_seed(0)
    return MetaSigNet(channels=(2, 2, 2, 2, 3), fc=5, input_size=TINY_INPUT).double()


def tiny_tasks(tasks: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Support (4: 2 genuine, 2 forgeries) and query (5: 2 genuine, 3 forgeries) sets of random images."""
    g = torch.Generator().manual_seed(seed)
    support_x = torch.rand(tasks, 4, 1, *TINY_INPUT, generator=g, dtype=torch.float64)
    query_x = torch.rand(tasks, 5, 1, *TINY_INPUT, generator=g, dtype=torch.float64)
    support_y = torch.tensor([1.0, 1, 0, 0], dtype=torch.float64).repeat(tasks, 1)
    query_y = torch.tensor([1.0, 1, 0, 0, 0], dtype=torch.float64).repeat(tasks, 1)
    return support_x, support_y, query_x, query_y


# --------------------------------------------------------------------------- options and help
def test_help_names_every_flag(cli):
    result = cli("meta", "--help", env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for name, field in MetaOptions.model_fields.items():
        assert flag(name) in result.output or (name == "as_json" and "--json" in result.output), name


def test_inconsistent_options_are_one_line(cli, data, tmp_path):
    for args, words in ((["--test"], "--checkpoint"), ([], "--logdir"),
                        (["--logdir", tmp_path, "--dev-users", 0, 8, "--val-users", 6, 10], "overlap"),
                        (["--logdir", tmp_path, "--model-path", "m.pth", "--model", "smallcnn"], "SigNet")):
        result = cli("meta", "--data-path", data, *args)
        assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- tasks
def test_task_composition_and_counts(data):
    from sigcli.data.sigset import SignatureSet

    sigset = SignatureSet.load(data)
    sizes = TaskSizes(num_gen=2, num_rf=3, num_gen_test=3, num_rf_test=2, num_sk_test=2)
    pool = WriterPool.select(sigset, (2, 10), "--dev-users", sizes, "the set")
    assert list(pool.users) == list(range(2, 10))
    rows = draw_task(pool, 3, sizes, np.random.RandomState(0))
    writer, support, query = pool.users[3], rows[:sizes.support], rows[sizes.support:]
    assert len(support) == 5 and len(query) == 7
    y, yforg = sigset.y[rows], sigset.yforg[rows]
    # the writer's genuines: 2 to adapt on, 3 others to score; forgeries: one genuine of each of 5 distinct writers
    assert list(y[:2]) == [writer] * 2 and list(y[5:8]) == [writer] * 3 and not yforg[:8].any()
    assert len(set(rows[:2]) | set(rows[5:8])) == 5
    others = np.concatenate([y[2:5], y[8:10]])
    assert writer not in others and len(set(others)) == 5 and set(others) <= set(pool.users)
    assert not yforg[[2, 3, 4, 8, 9]].any()
    assert list(y[10:]) == [writer] * 2 and (yforg[10:] == 1).all()
    np.testing.assert_array_equal(sizes.support_labels(), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(sizes.query_kinds(), [GENUINE] * 3 + [RANDOM] * 2 + [SKILLED] * 2)
    # seeded: the same generator state draws the same tasks
    order = np.arange(len(pool))
    np.testing.assert_array_equal(draw_tasks(pool, order, sizes, np.random.RandomState(5)),
                                  draw_tasks(pool, order, sizes, np.random.RandomState(5)))
    # images: tasks × signatures in order, centre crops /255 without a generator, seeded random crops with one
    tasks = draw_tasks(pool, order[:3], sizes, np.random.RandomState(1))
    (batch,) = read_tasks(sigset.x, tasks, sizes, tasks_per_batch=3)
    assert batch.support_x.shape == (3, 5, 1, 150, 220) and batch.query_x.shape == (3, 7, 1, 150, 220)
    expected = torch.from_numpy(sigset.x[tasks[1, 6]][:, 10:160, 11:231]).float() / 255
    torch.testing.assert_close(batch.query_x[1, 1], expected)
    np.testing.assert_array_equal(batch.query_y[2].numpy(), [1, 1, 1, 0, 0, 0, 0])
    crops = [next(read_tasks(sigset.x, tasks, sizes, 3, crops=torch.Generator().manual_seed(7))).support_x
             for _ in range(2)]
    torch.testing.assert_close(crops[0], crops[1])
    assert not torch.equal(crops[0], batch.support_x)


# --------------------------------------------------------------------------- inner and outer loops
def test_msl_weights_equal_hand_computed_values():
    # K = 5, m = 15: non-final max(0.2 − e/75, 0.006), final min(0.2 + 4e/75, 0.976)
    np.testing.assert_allclose(msl_weights(5, 15, 0), [0.2] * 5)
    np.testing.assert_allclose(msl_weights(5, 15, 3), [0.16, 0.16, 0.16, 0.16, 0.36])
    np.testing.assert_allclose(msl_weights(5, 15, 14), [0.2 - 14 / 75] * 4 + [0.2 + 56 / 75])
    np.testing.assert_allclose(msl_weights(5, 15, 100), [0.006] * 4 + [0.976])
    np.testing.assert_allclose(msl_weights(3, 0, 7), [0, 0, 1])
    np.testing.assert_allclose(msl_weights(1, 15, 2), [1.0])


def test_balanced_bce_weighs_each_class_one_half():
    logits = torch.tensor([0.3, -1.2, 2.0, 0.5, -0.1], dtype=torch.float64)
    y = torch.tensor([1.0, 1, 0, 0, 0], dtype=torch.float64)
    per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    torch.testing.assert_close(balanced_bce(logits, y), per_sample[:2].mean() / 2 + per_sample[2:].mean() / 2)
    torch.testing.assert_close(balanced_bce(logits, torch.ones(5, dtype=torch.float64)),
                               F.binary_cross_entropy_with_logits(logits, torch.ones(5, dtype=torch.float64)))


def test_one_inner_step_equals_a_manual_sgd_step():
    net = tiny_cnn()
    support_x, support_y, _, _ = (t[0] for t in tiny_tasks(1))
    weights, rates = dict(net.named_parameters()), torch.full((1, len(list(net.parameters()))), 0.05,
                                                              dtype=torch.float64)
    rates[0, 3] = 0.2   # the learning rates are per tensor
    (fast,), _ = adapt(net, weights, {}, rates, support_x, support_y, training=False)
    # by hand: the balanced loss written out, its gradient by autograd, one step of SGD
    logits = net(support_x)
    loss = sum(F.binary_cross_entropy_with_logits(logits[i], support_y[i]) / (2 * 2) for i in range(4))
    grads = torch.autograd.grad(loss, list(net.parameters()))
    optimizer = torch.optim.SGD([{"params": [p], "lr": float(rates[0, i])} for i, p in enumerate(net.parameters())])
    for p, g in zip(net.parameters(), grads):
        p.grad = g
    optimizer.step()
    for name, value in net.named_parameters():
        torch.testing.assert_close(fast[name], value.detach())


def _meta_gradients(net, rates, tasks, *, first_order, mode="vmap", training=False):
    loss_weights = torch.tensor(msl_weights(len(rates), 15, 2), dtype=torch.float64)
    outcome = run_meta_batch(net, rates, *tasks, loss_weights, training=training, first_order=first_order, mode=mode)
    return outcome, torch.autograd.grad(outcome.meta_loss, [*net.parameters(), rates])


def test_learnable_task_learning_rates_receive_gradients():
    net = tiny_cnn()
    learned = TaskLearningRates(3, len(list(net.parameters())), 0.05, learn=True).double()
    _, grads = _meta_gradients(net, learned.rates, tiny_tasks(2), first_order=False)
    assert grads[-1].shape == (3, 10) and (grads[-1] != 0).all()
    fixed = TaskLearningRates(3, len(list(net.parameters())), 0.05, learn=False)
    assert not fixed.rates.requires_grad and not list(p for p in fixed.parameters() if p.requires_grad)


def test_second_and_first_order_differ_by_the_hessian_term_only():
    """K = 1: w' = w − α∇L_s(w). First order: dL_q/dw = ∇L_q(w'); second order: (I − α∇²L_s(w)) ∇L_q(w').
    The learning rates' gradients −∇L_s(w)·∇L_q(w') are the same in both."""
    net = tiny_cnn()
    rates = torch.full((1, 10), 0.05, dtype=torch.float64, requires_grad=True)
    tasks = tiny_tasks(1)
    _, first = _meta_gradients(net, rates, tasks, first_order=True)
    _, second = _meta_gradients(net, rates, tasks, first_order=False)
    support_x, support_y, query_x, query_y = (t[0] for t in tasks)
    names = [name for name, _ in net.named_parameters()]
    weights = tuple(p.detach().requires_grad_() for p in net.parameters())

    def loss_on(x, y):
        return lambda *w: balanced_bce(functional_call(net, dict(zip(names, w)), (x,), {"training": False}), y)

    support_grad = torch.autograd.grad(loss_on(support_x, support_y)(*weights), weights)
    fast = tuple((w - 0.05 * g).detach().requires_grad_() for w, g in zip(weights, support_grad))
    query_grad = torch.autograd.grad(loss_on(query_x, query_y)(*fast), fast)
    _, hessian_term = torch.autograd.functional.hvp(loss_on(support_x, support_y), weights, query_grad)
    for f, s, q, h in zip(first, second, query_grad, hessian_term):
        torch.testing.assert_close(f, q)
        torch.testing.assert_close(s, q - 0.05 * h)
    assert any((h.abs() > 1e-8).any() for h in hessian_term)
    torch.testing.assert_close(first[-1], second[-1])
    torch.testing.assert_close(first[-1][0], torch.stack([-(g * q).sum() for g, q in zip(support_grad, query_grad)]))


@pytest.mark.parametrize("make", [tiny_cnn, tiny_signet], ids=["smallcnn", "signet-batchnorm"])
def test_vmap_and_loop_meta_batches_agree(make):
    net = make()
    rates = TaskLearningRates(2, len(list(net.parameters())), 0.05, learn=True).double().rates
    tasks = tiny_tasks(3)
    vmapped, vmap_grads = _meta_gradients(net, rates, tasks, first_order=False, training=True)
    params = [*net.parameters(), rates]
    loss_weights = torch.tensor(msl_weights(2, 15, 2), dtype=torch.float64)
    looped = run_meta_batch(net, rates, *tasks, loss_weights, training=True, first_order=False, mode="loop",
                            gradients_of=params)
    loop_grads = torch.autograd.grad(looped.meta_loss, params)   # the loop's gradients, carried by its loss
    torch.testing.assert_close(vmapped.meta_loss, looped.meta_loss)
    torch.testing.assert_close(vmapped.accuracy, looped.accuracy)
    for a, b in zip(vmap_grads, loop_grads):
        torch.testing.assert_close(a, b)
    assert vmapped.running.keys() == looped.running.keys() == {name for name, _ in net.named_buffers()}
    for name in vmapped.running:
        torch.testing.assert_close(vmapped.running[name], looped.running[name])


def test_batch_norm_statistics_move_in_training_steps_only():
    net = tiny_signet()
    before = {name: b.clone() for name, b in net.named_buffers()}
    support_x, support_y, _, _ = (t[0] for t in tiny_tasks(1))
    rates = torch.full((2, len(list(net.parameters()))), 0.05, dtype=torch.float64)
    _, running = adapt(net, dict(net.named_parameters()), dict(net.named_buffers()), rates, support_x, support_y,
                       training=False)
    assert all(torch.equal(running[n], before[n]) for n in before)
    _, running = adapt(net, dict(net.named_parameters()), dict(net.named_buffers()), rates, support_x, support_y,
                       training=True)
    assert all(not torch.equal(running[n], before[n]) for n in before)
    assert all(torch.equal(b, before[n]) for n, b in net.named_buffers())   # functional: buffers untouched


def test_auto_mode_is_vmap_on_a_gpu_where_the_estimate_fits(monkeypatch):
    import sigcli.meta.train as train

    learner = MetaLearner.new("smallcnn", 1, 1e-3, False, {})
    options = MetaOptions(data_path="d.npz", logdir="run", meta_batch_size=4)
    small, large = task_bytes(learner, SIZES, False), task_bytes(learner, TaskSizes(4, 4, 4, 2, 2), False)
    assert 0 < small < large
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(train, "free_memory", lambda device: 100 * 4 * small)
    assert choose_mode(options, learner, SIZES, gpu) == "vmap"
    monkeypatch.setattr(train, "free_memory", lambda device: 4 * small)
    assert choose_mode(options, learner, SIZES, gpu) == "loop"
    assert choose_mode(options, learner, SIZES, torch.device("cpu")) == "loop"   # faster there (bench_meta)
    assert choose_mode(options.model_copy(update={"meta_batch_mode": "vmap"}), learner, SIZES,
                       torch.device("cpu")) == "vmap"


# --------------------------------------------------------------------------- meta-learners
def test_a_sig_train_signet_initialises_the_meta_signet_exactly(tmp_path):
    torch.manual_seed(1)
    signet = create_model("signet")
    with torch.no_grad():   # a trained-looking network: scales of both signs, shifted statistics
        for module in signet.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(-1.5, 1.5)
                module.bias.normal_(0, 0.5)
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2)
    save_checkpoint(tmp_path / "signet.pth", signet.state_dict())
    net = MetaSigNet()
    head_weight, head_bias = net.w8.detach().clone(), net.b8.detach().clone()
    load_signet_features(net, load_checkpoint(tmp_path / "signet.pth", model="signet"))
    x = torch.rand(2, 1, 150, 220)
    expected = F.linear(signet.eval()(x), head_weight, head_bias).squeeze(1)
    torch.testing.assert_close(net.eval()(x), expected, rtol=1e-4, atol=1e-4)


def test_checkpoint_round_trip_keeps_architecture_and_rates(tmp_path):
    learner = MetaLearner.new("smallcnn", 2, 0.01, True, {"meta-trained": [[0, 6]]},
                              spec={"channels": 2, "hidden": 6, "features": 4, "input_size": TINY_INPUT})
    with torch.no_grad():
        learner.rates.rates[1, 2] = 0.5
    learner.save(tmp_path / "m.pth")
    loaded = MetaLearner.load(tmp_path / "m.pth")
    assert loaded.net.spec == learner.net.spec and loaded.seen_writers == {"meta-trained": [[0, 6]]}
    assert loaded.rates.rates.requires_grad and torch.equal(loaded.rates.rates, learner.rates.rates)
    for (name, a), (_, b) in zip(learner.net.state_dict().items(), loaded.net.state_dict().items()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- the command
def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_meta_training_writes_a_run_and_the_wd_results(trained):
    assert {"model_best.pth", "model_last.pth", "train_state.pth", "metrics.csv", "config.json", "results.pkl",
            "results.json"} <= {p.name for p in trained.iterdir()}
    rows = _metrics(trained / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # Adam's rate follows the cosine from --meta-lr to --meta-min-lr over the epochs
    assert float(rows[0]["lr"]) == pytest.approx(1e-3) and float(rows[1]["lr"]) == pytest.approx((1e-3 + 1e-5) / 2)
    assert {"train_loss", "train_acc", "train_acc_before", "val_acc", "val_acc_before", "val_acc_step1"} <= set(rows[0])
    best = MetaLearner.load(trained / "model_best.pth")
    assert best.net.architecture == "smallcnn" and best.num_updates == 2 and best.seen_writers == {"meta-trained": [[0, 6]], "validated": [[6, 10]]}
    state = torch.load(trained / "train_state.pth", weights_only=True)   # Adam's moments, not SGD's momentum
    assert {"exp_avg", "exp_avg_sq"} <= set(state["optimizer"]["state"][0])
    config = json.loads((trained / "config.json").read_text())
    assert config["options"]["num_updates"] == 2 and config["meta_batch_mode"] in ("vmap", "loop")


def test_results_pickle_metrics_equal_those_of_its_predictions(trained, cli):
    folds = load_results(trained / "results.pkl")
    assert len(folds) == 2
    for fold in folds:
        p = fold["predictions"]
        assert len(p["genuinePreds"]) == 4 and all(len(g) == 2 for g in p["genuinePreds"])
        assert all(len(r) == 1 for r in p["randomPreds"]) and all(len(s) == 2 for s in p["skilledPreds"])
        recomputed = compute_metrics(p["genuinePreds"], p["randomPreds"], p["skilledPreds"], threshold=0.0)
        assert recomputed == fold["all_metrics"]
    summary = json.loads((trained / "results.json").read_text())
    assert summary["command"] == "meta" and summary["architecture"] == "smallcnn"
    accuracy = summary["query_accuracy"]
    assert [s["step"] for s in accuracy["after_step"]] == [1, 2] and len(accuracy["per_fold"]) == 2
    assert 0 <= accuracy["before_adaptation"]["mean"] <= 1
    report = cli("report", trained / "results.pkl", "--format", "csv")   # beside sig wd's, as one of them
    assert report.exit_code == 0 and "EER" in report.output


def test_testing_a_checkpoint_repeats_the_test_of_its_training(trained, data, cli, tmp_path):
    result = cli("meta", "--data-path", data, "--test",
                 "--checkpoint", trained / "model_best.pth", "--num-updates", 2, *TASK_FLAGS, "--exp-users", 10, 14,
                 "--folds", 2, "--save-path", tmp_path / "r.pkl", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    again, first = load_results(tmp_path / "r.pkl"), load_results(trained / "results.pkl")
    for a, b in zip(again, first):
        for kind in ("genuinePreds", "randomPreds", "skilledPreds"):
            for x, y in zip(a["predictions"][kind], b["predictions"][kind]):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert "query_accuracy" in json.loads(result.stdout)


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(cli, data, tmp_path):
    common = ["meta", "--data-path", data, "--model", "smallcnn", "--num-updates", 1, *TASK_FLAGS, "--dev-users", 0, 6,
              "--val-users", 6, 10, "--meta-batch-size", 3, "--meta-batch-mode", "vmap", "--device", "cpu"]
    assert cli(*common, "--epochs", 2, "--logdir", tmp_path / "whole").exit_code == 0
    assert cli(*common, "--epochs", 1, "--logdir", tmp_path / "parts").exit_code == 0
    result = cli(*common, "--epochs", 2, "--resume", "--logdir", tmp_path / "parts")
    assert result.exit_code == 0, result.output
    assert len(_metrics(tmp_path / "parts" / "metrics.csv")) == 2
    whole, parts = (MetaLearner.load(tmp_path / run / "model_last.pth").net.state_dict() for run in ("whole", "parts"))
    for name in whole:
        torch.testing.assert_close(whole[name], parts[name], rtol=0, atol=0)
    refused = cli(*common, "--epochs", 2, "--logdir", tmp_path / "parts")
    assert refused.exit_code == 2 and "--resume" in refused.output


def test_pretraining_is_a_sig_train_run_inside_the_run_folder(cli, data, tmp_path, monkeypatch):
    # sig train's batches are 150×220 crops
    monkeypatch.setitem(ARCHITECTURES, "smallcnn", partial(SmallCNN, channels=2, hidden=8, features=4))
    result = cli("meta", "--data-path", data, "--model", "smallcnn", "--num-updates", 1, *TASK_FLAGS, "--dev-users", 0,
                 6, "--val-users", 6, 10, "--meta-batch-size", 3, "--epochs", 1, "--pretrain-epochs", 1,
                 "--device", "cpu", "--logdir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    pretrain = tmp_path / "run" / "pretrain"
    assert {"model_last.pth", "metrics.csv", "config.json"} <= {p.name for p in pretrain.iterdir()}
    assert json.loads((pretrain / "config.json").read_text())["data"]["users"] == 6
    assert len(_metrics(pretrain / "metrics.csv")) == 1 and len(_metrics(tmp_path / "run" / "metrics.csv")) == 1


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs_are_one_line_with_exit_2(cli, data, trained, tmp_path):
    base = ["meta", "--data-path", data, "--model", "smallcnn", "--num-updates", 2, "--device", "cpu"]
    cases = [
        ([*TASK_FLAGS[:-2], "--num-sk-test", 1, "--num-gen", 4, *WRITERS[:6], "--logdir", tmp_path / "a"],
         "has 5 genuine signatures"),
        ([*TASK_FLAGS, "--num-rf", 5, *WRITERS[:6], "--logdir", tmp_path / "b"], "holds 6 writers"),
        ([*TASK_FLAGS, *WRITERS[:6], "--num-sk-test", 4, "--logdir", tmp_path / "c"], "skilled forgeries"),
        ([*TASK_FLAGS, "--dev-users", 0, 6, "--val-users", 6, 30, "--logdir", tmp_path / "d"], "reaches beyond"),
    ]
    for args, words in cases:
        result = cli(*base, *args)
        assert result.exit_code == 2 and words in result.output, (args, result.output)
        assert "Traceback" not in result.output
    test = [*TASK_FLAGS, "--test", "--exp-users", 10, 14, "--save-path", tmp_path / "r.pkl", "--checkpoint",
            trained / "model_best.pth"]
    other = cli("meta", "--data-path", data, "--model", "signet", "--num-updates", 2, *test)
    assert other.exit_code == 2 and "holds a smallcnn meta-learner, not --model signet" in other.output
    steps = cli("meta", "--data-path", data, "--num-updates", 3, *test)
    assert steps.exit_code == 2 and "adapts in 2 steps" in steps.output
    save_checkpoint(tmp_path / "features.pth", create_model("signet-thin").state_dict())
    features = cli(*base, *test[:-1], tmp_path / "features.pth")
    assert features.exit_code == 2 and "not a meta-learner" in features.output
    seen = cli(*base, *TASK_FLAGS, "--test", "--exp-users", 4, 8, "--save-path", tmp_path / "r.pkl",
               "--checkpoint", trained / "model_best.pth")
    assert seen.exit_code == 2 and "meta-trained on" in seen.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    foreign = cli(*base, *TASK_FLAGS, *WRITERS[:6], "--logdir", tmp_path / "mine")
    assert foreign.exit_code == 2 and "not a run of sig" in foreign.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_the_pickle_of_results_is_plain_data(trained):
    with open(trained / "results.pkl", "rb") as fh:
        folds = pickle.load(fh)
    assert set(folds[0]) == {"all_metrics", "predictions"}
    assert all(isinstance(v, (float, list)) for v in folds[0]["all_metrics"].values())
    assert math.isfinite(folds[0]["all_metrics"]["EER"])

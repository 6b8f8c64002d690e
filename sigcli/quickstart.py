"""The whole method on synthetic data, stage by stage, as the real commands would run it.

``sig quickstart`` synthesises a GPDS-layout set (exploitation users + development users,
on which the teacher is trained) and an MCYT-layout set (the continual users), preprocesses
both, trains a SigNet teacher, builds the distillation set (``sig invert`` of the teacher,
or the teacher's own training images with ``--fast``), distils a student while it learns the
continual set, evaluates teacher and student with ``wd`` and ``wi`` on the held-out
exploitation users, and compares them with ``report``. Every stage calls the library
function behind its command and announces the equivalent command line; a stage whose
output exists is reused, so a re-run only does what is missing.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import Field

from sigcli.device import Device
from sigcli.errors import InputError
from sigcli.fileio import LOCK_NAME, exclusive_lock, make_folder
from sigcli.options import Options, save_options
from sigcli.progress import Reporter


@dataclass(frozen=True)
class Plan:
    """Sizes of a quickstart run; small enough for two CPU cores."""

    exp_users: int          # held-out writers the classifiers are evaluated on
    dev_users: int          # writers the teacher learns (and WD/WI development users)
    continual_users: int    # MCYT-layout writers the student learns on top of the teacher
    genuine: int            # genuine signatures per writer
    skilled: int            # skilled forgeries per writer
    model: str              # architecture of teacher and student
    teacher_epochs: int
    student_epochs: int
    lr: float
    invert: bool            # distil from `sig invert` images rather than the teacher's training images
    invert_per_user: int
    invert_iterations: int
    folds: int
    gen_for_train: int
    gen_for_test: int


PLANS = {
    "fast": Plan(exp_users=8, dev_users=16, continual_users=8, genuine=14, skilled=6, model="signet-thin",
                 teacher_epochs=6, student_epochs=3, lr=0.01, invert=False, invert_per_user=0,
                 invert_iterations=0, folds=3, gen_for_train=8, gen_for_test=5),
    "full": Plan(exp_users=12, dev_users=24, continual_users=12, genuine=16, skilled=8, model="signet",
                 teacher_epochs=8, student_epochs=4, lr=0.01, invert=True, invert_per_user=4,
                 invert_iterations=30, folds=5, gen_for_train=10, gen_for_test=5),
}


class QuickstartOptions(Options):
    """Options of ``sig quickstart``."""

    workdir: Path = Field(Path("sig-quickstart"), description="folder for every artefact of the run")
    fast: bool = Field(False, description="smaller run (under 3 minutes on 2 CPU cores)")
    seed: int = Field(0, ge=0, description="seed of the data, the training and the evaluation")
    workers: int = Field(2, ge=1, description="processes for synthesis and preprocessing; SVM jobs")
    device: Device = Field("auto", description="torch device")

    @property
    def plan(self) -> Plan:
        return PLANS["fast" if self.fast else "full"]


@dataclass
class Stage:
    """One step: its name, the equivalent command, what it writes and how it runs."""

    name: str
    command: list[str]
    outputs: list[Path]
    run: Callable[[], Any]

    @property
    def done(self) -> bool:
        return all(path.exists() for path in self.outputs)

    @property
    def command_line(self) -> str:
        return shlex.join(["sig", *self.command])


@dataclass
class QuickstartResult:
    workdir: Path
    rows: list[dict]                     # report.comparison_rows of the four evaluations
    results: dict[str, Path]             # evaluation name → results pickle
    plot: Path
    seconds: float
    reused: list[str] = field(default_factory=list)


def run_quickstart(options: QuickstartOptions, reporter: Reporter | None = None,
                   on_stage: Callable[[Stage, bool], None] | None = None) -> QuickstartResult:
    """Run (or finish) every stage in ``options.workdir``; ``on_stage(stage, reused)`` is
    called before each one so a caller can show the equivalent command."""
    began = time.perf_counter()
    stages = plan_stages(options, reporter)
    workdir = options.workdir
    reused = []
    with _claim_workdir(workdir, options):
        for stage in stages:
            is_done = stage.done
            if on_stage is not None:
                on_stage(stage, is_done)
            if is_done:
                reused.append(stage.name)
                continue
            stage.run()
    from sigcli.report import comparison_rows, load_runs

    results = {stage.name: stage.outputs[0] for stage in stages if stage.name.startswith(("wd ", "wi "))}
    runs = load_runs(list(results.values()))
    return QuickstartResult(workdir, comparison_rows(runs), results, workdir / "results" / "report.png",
                            time.perf_counter() - began, reused)


@contextmanager
def _claim_workdir(workdir: Path, options: QuickstartOptions) -> Iterator[None]:
    """Lock the work folder for the run. It must be new, empty, or a quickstart folder of the
    same plan: the stages of another would mix sizes, and a folder of other files is not ours
    to fill (stages replace their own outputs there)."""
    marker = workdir / "quickstart.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{marker} is damaged ({type(exc).__name__})",
                             "give another --workdir, or delete that folder") from None
        if saved.get("fast") != options.fast or saved.get("seed") != options.seed:
            raise InputError(f"{workdir} holds a quickstart run with other options "
                             f"(fast={saved.get('fast')}, seed={saved.get('seed')})",
                             "give another --workdir, or delete that folder")
    elif workdir.is_dir() and any(name != LOCK_NAME for name in os.listdir(workdir)):
        raise InputError(f"--workdir {workdir} holds other files, not a quickstart run",
                         "give a new or empty --workdir")
    make_folder(workdir, "--workdir")
    with exclusive_lock(workdir, "--workdir", "wait for that run to end, or give another --workdir"):
        if not marker.exists():
            save_options(options, marker)
        yield


def plan_stages(options: QuickstartOptions, reporter: Reporter | None = None) -> list[Stage]:
    """Every stage of the run, in order, with the library call behind each command."""
    p, w, seed = options.plan, options.workdir, options.seed
    raw_gpds, raw_mcyt = w / "raw" / "gpds", w / "raw" / "mcyt"
    gpds, mcyt = w / "data" / "gpds.npz", w / "data" / "mcyt.npz"
    teacher_dir, student_dir = w / "runs" / "teacher", w / "runs" / "student"
    inverted = w / "data" / "inverted.npz"
    exp = (0, p.exp_users)
    dev = (p.exp_users, p.exp_users + p.dev_users)
    stages: list[Stage] = []

    def add(name: str, command: list, outputs: list[Path], run: Callable[[], Any]) -> None:
        stages.append(Stage(name, [str(part) for part in command], outputs, run))

    from sigcli.data.synth import synthesize

    for layout, out, users, genuine, skilled in (("gpds", raw_gpds, p.exp_users + p.dev_users, p.genuine, p.skilled),
                                                 ("mcyt", raw_mcyt, p.continual_users, p.genuine, p.skilled)):
        add(f"synth {layout}",
            ["synth", "--layout", layout, "--users", users, "--genuine", genuine, "--skilled", skilled,
             "--seed", seed, "--workers", options.workers, "--out", out],
            [out / "sig-synth.json"],
            lambda layout=layout, out=out, users=users, genuine=genuine, skilled=skilled: synthesize(
                layout, out, users, genuine=genuine, skilled=skilled, seed=seed if layout == "gpds" else seed + 1,
                workers=options.workers, reporter=reporter, overwrite=True))

    from sigcli.config.preprocess import PreprocessOptions
    from sigcli.preprocess import process_dataset

    for dataset, raw, out in (("gpds", raw_gpds, gpds), ("mcyt", raw_mcyt, mcyt)):
        add(f"preprocess {dataset}",
            ["preprocess", "--dataset", dataset, "--raw-path", raw, "--save-path", out, "--workers", options.workers],
            [out],
            lambda dataset=dataset, raw=raw, out=out: process_dataset(
                PreprocessOptions(dataset=dataset, raw_path=raw, save_path=str(out), workers=options.workers,
                                  overwrite=True), reporter))

    from sigcli.training.supervised import TrainOptions, train_signet

    add("train teacher",
        ["train", "--model", p.model, "--data-path", gpds, "--users", *dev, "--epochs", p.teacher_epochs,
         "--lr", p.lr, "--seed", seed, "--logdir", teacher_dir],
        [teacher_dir / "model_best.pth", teacher_dir / "metrics.csv"],
        lambda: train_signet(TrainOptions(
            model=p.model, data_path=gpds, users=dev, epochs=p.teacher_epochs, lr=p.lr, seed=seed,
            device=options.device, logdir=teacher_dir, overwrite=True), reporter))

    teacher = teacher_dir / "model_best.pth"
    if p.invert:
        from sigcli.invert import InvertOptions, invert

        d_dataset, d_users, d_transform = inverted, dev, "none"
        add("invert teacher",
            ["invert", "--t-model-path", teacher, "--save-path", inverted, "--users", *dev,
             "--per-user", p.invert_per_user, "--iterations", p.invert_iterations, "--seed", seed,
             "--preview", w / "data" / "inverted.png"],
            [inverted],
            lambda: invert(InvertOptions(t_model_path=teacher, save_path=inverted, users=dev,
                                         per_user=p.invert_per_user, iterations=p.invert_iterations, seed=seed,
                                         device=options.device, preview=w / "data" / "inverted.png",
                                         overwrite=True), reporter))
    else:
        d_dataset, d_users, d_transform = gpds, dev, "center-crop"

    from sigcli.training.distill import DistillOptions, distill

    add("distill student",
        ["distill", "--s-model", p.model, "--t-model-path", teacher, "--d-dataset", d_dataset,
         "--d-users", *d_users, "--d-transform", d_transform, "--c-dataset", mcyt, "--p-lamb", 1.7,
         "--epochs", p.student_epochs, "--lr", p.lr, "--seed", seed, "--logdir", student_dir],
        [student_dir / "model_best.pth", student_dir / "metrics.csv"],
        lambda: distill(DistillOptions(
            s_model=p.model, t_model_path=teacher, d_dataset=d_dataset, d_users=d_users,
            d_transform=d_transform, c_dataset=mcyt, p_lamb=1.7, epochs=p.student_epochs, lr=p.lr,
            seed=seed, device=options.device, logdir=student_dir, overwrite=True), reporter))

    from sigcli.features import ExtractOptions, run_extract
    from sigcli.config.evaluation import WDOptions, WIOptions

    evaluation = {"exp_users": exp, "dev_users": dev, "gen_for_train": p.gen_for_train,
                  "gen_for_test": p.gen_for_test, "folds": p.folds}
    for who, model_dir in (("teacher", teacher_dir), ("student", student_dir)):
        model, features = model_dir / "model_best.pth", w / "features" / f"{who}.npz"
        evaluated = (0, dev[1])  # exploitation and development users only
        add(f"extract {who}",
            ["extract", "--model-path", model, "--data-path", gpds, "--users", *evaluated, "--save-path", features],
            [features],
            lambda model=model, features=features, evaluated=evaluated: run_extract(ExtractOptions(
                model_path=model, data_path=gpds, users=evaluated, save_path=features, device=options.device,
                overwrite=True), reporter))
        for protocol in ("wd", "wi"):
            out = w / "results" / f"{protocol}-{who}.pkl"
            extra = {"workers": options.workers} if protocol == "wd" else {"gen_for_ref": p.gen_for_train}
            model_options = (WDOptions if protocol == "wd" else WIOptions)(
                **evaluation, **extra, features_path=features, save_path=out, overwrite=True)
            command = [protocol, "--features-path", features]
            for key, value in {**evaluation, **extra}.items():
                flag = f"--{key.replace('_', '-')}"
                command += [flag, *value] if isinstance(value, tuple) else [flag, value]
            add(f"{protocol} {who}", [*command, "--save-path", out], [out],
                lambda protocol=protocol, model_options=model_options: _evaluate(protocol, model_options, reporter))

    results = [w / "results" / f"{protocol}-{who}.pkl" for who in ("teacher", "student") for protocol in ("wd", "wi")]
    plot = w / "results" / "report.png"
    add("report", ["report", *results, "--plot", plot], [plot], lambda: _report(results, plot))
    return stages


def _evaluate(protocol: str, options, reporter: Reporter | None) -> None:
    if protocol == "wd":
        from sigcli.protocols.wd import run_wd

        run_wd(options, reporter)
    else:
        from sigcli.protocols.wi import run_wi

        run_wi(options, reporter)


def _report(results: list[Path], plot: Path) -> None:
    from sigcli.report import load_runs, plot_runs

    plot_runs(load_runs(results), plot, overwrite=True)

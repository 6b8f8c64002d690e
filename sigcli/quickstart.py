"""The whole method on synthetic data, stage by stage, as the real commands would run it.

``sig quickstart`` synthesises a GPDS-layout set (exploitation users + development users,
on which the teacher is trained) and an MCYT-layout set (the continual users, other
writers), preprocesses both, trains a SigNet teacher, builds the distillation set (the
teacher's own training images, or ``sig invert`` of the teacher in a plan that asks for it),
distils a student while it learns the continual set, evaluates teacher, student and an untrained
network of the teacher's architecture (the baseline) with ``wd`` and ``wi`` on the held-out
exploitation users, and compares them with ``report``. Each stage is one command's options
model: its command line is derived from it and its library function runs with it, so the
printed commands are exactly what runs. A stage whose output exists is reused.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pydantic import BaseModel

from sigcli.cli.derive import command_line
from sigcli.config.evaluation import WDOptions, WIOptions
from sigcli.config.distill import DistillOptions
from sigcli.config.extract import ExtractOptions
from sigcli.config.invert import InvertOptions
from sigcli.config.preprocess import PreprocessOptions
from sigcli.config.quickstart import QuickstartOptions
from sigcli.config.report import ReportOptions
from sigcli.config.synth import SynthOptions
from sigcli.config.training import TrainOptions
from sigcli.errors import InputError
from sigcli.fileio import LOCK_NAME, exclusive_lock, make_folder
from sigcli.options import save_options
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
    # The teacher needs many writers (to learn shape rather than one name per class) and
    # enough steps for its batch-norm statistics to settle: 60 writers × 14 is ~150 steps
    # (40 writers gave skilled EER 23 % against the untrained network's 30 %; 60 give 17 %).
    "fast": Plan(exp_users=8, dev_users=60, continual_users=8, genuine=14, skilled=6, model="signet-thin",
                 teacher_epochs=6, student_epochs=3, lr=0.01, invert=False, invert_per_user=0,
                 invert_iterations=0, folds=3, gen_for_train=8, gen_for_test=5),
    # 150 writers make the teacher's features generalise to new writers (40 did not); the
    # thin SigNet is what two CPU cores can train on them in minutes. A distillation epoch is
    # one pass over the continual set (50 × 16 is ~22 steps): the student needs hundreds of steps.
    "full": Plan(exp_users=12, dev_users=150, continual_users=50, genuine=16, skilled=8, model="signet-thin",
                 teacher_epochs=12, student_epochs=36, lr=0.01, invert=False, invert_per_user=0,
                 invert_iterations=0, folds=5, gen_for_train=10, gen_for_test=5),
}


def plan_of(options: QuickstartOptions) -> Plan:
    return PLANS["fast" if options.fast else "full"]


#: The library function behind each command a stage runs, called with the stage's options.
RUNNERS = {"synth": "sigcli.data.synth:run_synth", "preprocess": "sigcli.preprocess:process_dataset",
           "train": "sigcli.training.supervised:train_signet", "invert": "sigcli.invert:invert",
           "distill": "sigcli.training.distill:distill", "extract": "sigcli.features:run_extract",
           "wd": "sigcli.protocols.wd:run_wd", "wi": "sigcli.protocols.wi:run_wi", "report": "sigcli.report:run_report"}


@dataclass
class Stage:
    """One step: the command it is, its options (what runs and what is printed), what it writes."""

    name: str
    command: str
    options: BaseModel
    outputs: list[Path]

    @property
    def done(self) -> bool:
        return all(path.exists() for path in self.outputs)

    @property
    def command_line(self) -> str:
        """The shell command that runs exactly these options."""
        return command_line(self.command, self.options)

    def run(self, reporter: Reporter | None = None) -> None:
        module, function = RUNNERS[self.command].split(":")
        getattr(importlib.import_module(module), function)(self.options, reporter)


@dataclass
class QuickstartResult:
    logdir: Path
    rows: list[dict]                     # report.comparison_rows of the evaluations
    results: dict[str, Path]             # evaluation name → results pickle
    plot: Path
    seconds: float
    reused: list[str] = field(default_factory=list)
    against_untrained: list[dict] = field(default_factory=list)  # see against_untrained()


#: The networks the quickstart trains, each compared with the untrained one.
TRAINED = ("teacher", "student")


def against_untrained(runs: list) -> list[dict]:
    """Skilled EER (%) of each trained network beside the untrained network's, fold by fold.

    Every evaluation of a protocol draws the same splits of the same writers (same seed),
    so fold k is a paired comparison: ``wins`` counts the folds where the trained network's
    EER is lower. ``runs``: :func:`sigcli.report.load_runs` of the evaluations.
    """
    eer = {run.name: [100 * float(fold["all_metrics"]["EER"]) for fold in run.folds] for run in runs}
    rows = []
    for protocol in ("wd", "wi"):
        baseline = eer[f"{protocol}-untrained"]
        for network in TRAINED:
            trained = eer[f"{protocol}-{network}"]
            rows.append({"protocol": protocol, "network": network, "eer": trained, "untrained": baseline,
                         "wins": sum(a < b for a, b in zip(trained, baseline))})
    return rows


def run_quickstart(options: QuickstartOptions, reporter: Reporter | None = None,
                   on_stage: Callable[[Stage, bool], None] | None = None) -> QuickstartResult:
    """Run (or finish) every stage in ``options.logdir``; ``on_stage(stage, reused)`` is
    called before each one so a caller can show the equivalent command."""
    began = time.perf_counter()
    stages = plan_stages(options)
    reused = []
    with _claim_logdir(options):
        for stage in stages:
            is_done = stage.done
            if on_stage is not None:
                on_stage(stage, is_done)
            if is_done:
                reused.append(stage.name)
                continue
            stage.run(reporter)
    from sigcli.report import comparison_rows, load_runs

    results = {stage.name: stage.outputs[0] for stage in stages if stage.command in ("wd", "wi")}
    runs = load_runs(list(results.values()))
    report = next(stage for stage in stages if stage.command == "report")
    return QuickstartResult(options.logdir, comparison_rows(runs), results, report.options.plot,
                            time.perf_counter() - began, reused, against_untrained(runs))


@contextmanager
def _claim_logdir(options: QuickstartOptions) -> Iterator[None]:
    """Lock the run folder. It must be new, empty, or a quickstart folder of the same plan:
    the stages of another would mix sizes, and a folder of other files is not ours to fill
    (stages replace their own outputs there)."""
    logdir = options.logdir
    marker = logdir / "quickstart.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{marker} is damaged ({type(exc).__name__})",
                             "give another --logdir, or delete that folder") from None
        if saved.get("fast") != options.fast or saved.get("seed") != options.seed:
            raise InputError(f"{logdir} holds a quickstart run with other options "
                             f"(fast={saved.get('fast')}, seed={saved.get('seed')})",
                             "give another --logdir, or delete that folder")
    elif logdir.is_dir() and any(name != LOCK_NAME for name in os.listdir(logdir)):
        raise InputError(f"--logdir {logdir} holds other files, not a quickstart run",
                         "give a new or empty --logdir")
    make_folder(logdir, "--logdir")
    with exclusive_lock(logdir, "--logdir", "wait for that run to end, or give another --logdir"):
        if not marker.exists():
            save_options(options, marker)
        yield


def plan_stages(options: QuickstartOptions) -> list[Stage]:
    """Every stage of the run, in order: each one's options, from which its command line is
    printed and with which its library function runs. Every stage replaces its own outputs
    inside the run folder (``--overwrite``), so an interrupted stage is simply run again."""
    p, w, seed, workers, device = plan_of(options), options.logdir, options.seed, options.workers, options.device
    raw_gpds, raw_mcyt = w / "raw" / "gpds", w / "raw" / "mcyt"
    gpds, mcyt = w / "data" / "gpds.npz", w / "data" / "mcyt.npz"
    teacher_dir, student_dir = w / "runs" / "teacher", w / "runs" / "student"
    exp = (0, p.exp_users)
    dev = (p.exp_users, p.exp_users + p.dev_users)
    stages: list[Stage] = []

    def add(name: str, command: str, options: BaseModel, *outputs: Path) -> None:
        stages.append(Stage(name, command, options, list(outputs)))

    # The continual writers are other people than the teacher's: another seed.
    for layout, out, users, synth_seed in (("gpds", raw_gpds, p.exp_users + p.dev_users, seed),
                                           ("mcyt", raw_mcyt, p.continual_users, seed + 1)):
        synth = SynthOptions(layout=layout, save_path=out, users=users, genuine=p.genuine, skilled=p.skilled,
                             seed=synth_seed, workers=workers, overwrite=True)
        add(f"synth {layout}", "synth", synth, out / "sig-synth.json")
    for dataset, raw, out in (("gpds", raw_gpds, gpds), ("mcyt", raw_mcyt, mcyt)):
        add(f"preprocess {dataset}", "preprocess", PreprocessOptions(
            dataset=dataset, raw_path=raw, save_path=str(out), workers=workers, overwrite=True), out)
    add("train teacher", "train", TrainOptions(
        model=p.model, data_path=gpds, users=dev, epochs=p.teacher_epochs, lr=p.lr, seed=seed, device=device,
        logdir=teacher_dir, overwrite=True), teacher_dir / "model_best.pth", teacher_dir / "metrics.csv")
    teacher = teacher_dir / "model_best.pth"
    if p.invert:
        inverted = w / "data" / "inverted.npz"
        add("invert teacher", "invert", InvertOptions(
            t_model_path=teacher, save_path=inverted, users=dev, per_user=p.invert_per_user,
            iterations=p.invert_iterations, seed=seed, device=device, preview=w / "data" / "inverted.png",
            overwrite=True), inverted)
        d_data_path, d_transform = inverted, "none"
    else:
        d_data_path, d_transform = gpds, "center-crop"
    # One student pass over D and C together (--joint-bn, not the reference's default): with
    # separate passes batch norm stores running statistics mixed from both sets, which the
    # extracted features were never trained with (full plan: skilled EER 16.2 % → 9.8 %).
    add("distill student", "distill", DistillOptions(
        s_model=p.model, t_model_path=teacher, d_data_path=d_data_path, d_users=dev, d_transform=d_transform,
        c_data_path=mcyt, joint_bn=True, epochs=p.student_epochs, lr=p.lr, seed=seed, device=device,
        logdir=student_dir, overwrite=True), student_dir / "model_best.pth", student_dir / "metrics.csv")

    evaluation = {"exp_users": exp, "dev_users": dev, "gen_for_train": p.gen_for_train,
                  "gen_for_test": p.gen_for_test, "folds": p.folds, "overwrite": True}
    evaluated = (0, dev[1])  # exploitation and development users only
    networks = {"teacher": {"model_path": teacher}, "student": {"model_path": student_dir / "model_best.pth"},
                # The baseline: the teacher's architecture with untrained weights.
                "untrained": {"model": p.model, "seed": seed}}
    results = []
    for who, network in networks.items():
        features = w / "features" / f"{who}.npz"
        add(f"extract {who}", "extract", ExtractOptions(
            **network, data_path=gpds, users=evaluated, save_path=features, device=device, overwrite=True), features)
        for protocol, model in (("wd", WDOptions), ("wi", WIOptions)):
            out = w / "results" / f"{protocol}-{who}.pkl"
            extra = {"workers": workers} if protocol == "wd" else {"gen_for_ref": p.gen_for_train}
            add(f"{protocol} {who}", protocol, model(**evaluation, **extra, features_path=features, save_path=out), out)
            results.append(out)
    plot = w / "results" / "report.png"
    add("report", "report", ReportOptions(results=results, plot=plot, overwrite=True), plot)
    return stages

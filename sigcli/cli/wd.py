"""Writer-dependent evaluation: one SVM per exploitation user, its metrics over folds.

Each exploitation user's SVM learns from its training genuines against random forgeries
(genuines of development users); it is then tested on its own genuines, skilled forgeries
and other users' genuines. --test-mode sampled (default) follows Viana et al. 2024, full
follows Hafemann et al. 2017. The same --seed draws the same splits as the reference
tools; --jobs changes the speed, never the numbers. --fast-approx (not the reference) fits
one scaler per fold instead of per user: much faster, metrics move slightly.

Example: sig wd --features features.npz --exp-users 0 300 --dev-users 300 881 --jobs 2 --save-path wd.pkl
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from sigcli.cli import console
from sigcli.cli.report import summary_table
from sigcli.options import build, default
from sigcli.protocols import EvaluationOptions, evaluation_features, gamma_text
from sigcli.protocols.wd import WDOptions, evaluate_wd
from sigcli.results import save_results, summarise

_E = EvaluationOptions
_O = WDOptions


class SvmType(str, Enum):
    rbf = "rbf"
    linear = "linear"


class TestMode(str, Enum):
    sampled = "sampled"
    full = "full"


class SvmBackend(str, Enum):
    auto = "auto"
    precomputed = "precomputed"
    libsvm = "libsvm"


# Options shared with `sig wi`, declared once.
Features = Annotated[Optional[Path], typer.Option(help="Feature file of 'sig extract' (instead of --model-path "
                                                       "and --data-path).")]
ModelPath = Annotated[Optional[Path], typer.Option(help="Checkpoint of the feature extractor (with --data-path).")]
DataPath = Annotated[Optional[Path], typer.Option(help="Preprocessed signature set (.npz or folder); only the "
                                                       "exploitation and development users are extracted.")]
SavePath = Annotated[Optional[Path], typer.Option(help="Results pickle (the reference's format); a JSON summary "
                                                       "is written beside it.")]
ExpUsers = Annotated[tuple[int, int], typer.Option(help="Exploitation users FIRST LAST (LAST excluded).")]
DevUsers = Annotated[tuple[int, int], typer.Option(help="Development users FIRST LAST, disjoint from the "
                                                        "exploitation users.")]
GenForTrain = Annotated[int, typer.Option(help="Genuine signatures per user for training.")]
GenForTest = Annotated[int, typer.Option(help="Genuine signatures per user for testing (and skilled forgeries and "
                                              "random forgeries in sampled tests).")]
SvmTypeOption = Annotated[SvmType, typer.Option(help="SVM kernel.")]
SvmC = Annotated[float, typer.Option(help="SVM regularisation C.")]
SvmGamma = Annotated[str, typer.Option(help="RBF gamma: a number or a power such as 2^-11.")]
Folds = Annotated[int, typer.Option(help="Repetitions with new random splits (one generator for all).")]
Seed = Annotated[int, typer.Option(help="Seed of every random draw.")]
Threshold = Annotated[float, typer.Option(help="Decision threshold of FRR and FAR.")]
BatchSize = Annotated[Optional[int], typer.Option(help="Signatures per forward pass when extracting. "
                                                      "\\[default: as 'sig extract']")]
Device = Annotated[Optional[str], typer.Option(help="Torch device for extraction: cpu, cuda, cuda:N. "
                                                     "\\[default: cuda when present, else cpu]")]


def main(
    features: Features = None,
    model_path: ModelPath = None,
    data_path: DataPath = None,
    save_path: SavePath = None,
    exp_users: ExpUsers = default(_E, "exp_users"),
    dev_users: DevUsers = default(_E, "dev_users"),
    gen_for_train: GenForTrain = default(_E, "gen_for_train"),
    gen_for_test: GenForTest = default(_E, "gen_for_test"),
    forg_from_dev: Annotated[int, typer.Option(help="Random forgeries (genuines) taken from each development "
                                                    "user as negatives.")] = default(_O, "forg_from_dev"),
    forg_from_exp: Annotated[int, typer.Option(help="Random forgeries taken from each other exploitation user's "
                                                    "training genuines.")] = default(_O, "forg_from_exp"),
    svm_type: SvmTypeOption = SvmType(default(_E, "svm_type")),
    svm_c: SvmC = default(_E, "svm_c"),
    svm_gamma: SvmGamma = gamma_text(default(_E, "svm_gamma")),
    folds: Folds = default(_E, "folds"),
    seed: Seed = default(_E, "seed"),
    test_mode: Annotated[TestMode, typer.Option(help="sampled: Viana 2024 (10 of each kind per user); full: "
                                                     "Hafemann 2017 (every test signature).")] = TestMode(
        default(_O, "test_mode")),
    threshold: Threshold = default(_E, "threshold"),
    jobs: Annotated[int, typer.Option(help="SVMs fitted in parallel (-1: all cores); the results do not "
                                           "change.")] = default(_O, "jobs"),
    fast_approx: Annotated[bool, typer.Option(
        "--fast-approx", help="One scaler per fold on the development negatives instead of one per user: "
                              "their kernel is computed once; much faster, not the reference.")] = default(_O, "fast_approx"),
    svm_backend: Annotated[SvmBackend, typer.Option(
        help="precomputed: numpy computes the kernel matrix (fast, equal to libsvm to ~1e-12); libsvm: the "
             "reference's own fit; auto: precomputed when the matrices fit in memory.")] = SvmBackend(
        default(_O, "svm_backend")),
    batch_size: BatchSize = None,
    device: Device = None,
) -> None:
    options = build(WDOptions, exp_users=exp_users, dev_users=dev_users, gen_for_train=gen_for_train,
                    gen_for_test=gen_for_test, forg_from_dev=forg_from_dev, forg_from_exp=forg_from_exp,
                    svm_type=svm_type.value, svm_c=svm_c, svm_gamma=svm_gamma, folds=folds, seed=seed,
                    test_mode=test_mode.value, threshold=threshold, jobs=jobs, fast_approx=fast_approx,
                    svm_backend=svm_backend.value)
    reporter = console.RichReporter()
    feature_set, inputs = evaluation_features(options, features, model_path, data_path, batch_size, device, reporter)
    results = evaluate_wd(feature_set, options, reporter)
    finish("wd", results, options, inputs, save_path)


def finish(command: str, results: list[dict], options, inputs: dict, save_path: Path | None) -> None:
    """Save the results (pickle + JSON) if asked, and print the summary table."""
    if save_path is not None:
        pickle_path, json_file = save_results(results, save_path, options, command, inputs)
        console.err.print(f"results: {pickle_path} (summary {json_file})", markup=False, highlight=False)
    console.out.print(summary_table(summarise(results), f"sig {command}: {len(results)} folds, mean ± std (%)"))
    if save_path is not None:
        console.step(f"sig report {save_path} --plot {Path(save_path).with_suffix('.png')}")

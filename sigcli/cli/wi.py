"""Writer-independent evaluation: one SVM on signature pairs verifies every writer.

The SVM learns from development users' pairs |f(a) - f(b)| (same writer or not); each
exploitation user's test signature is then scored against its references and the scores
fused (--fusion). Tests are sampled (Viana et al. 2024). --save-model keeps the first
fold's classifier (scaler + SVM, skops format) for 'sig verify'.

Example: sig wi --features features.npz --exp-users 0 300 --dev-users 300 881 --save-path wi.pkl --save-model wi.skops
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from sigcli.cli import console
from sigcli.cli.wd import (BatchSize, DataPath, DevUsers, Device, ExpUsers, Features, Folds, GenForTest,
                           GenForTrain, ModelPath, SavePath, Seed, SvmC, SvmGamma, SvmType, SvmTypeOption,
                           Threshold, finish)
from sigcli.options import build, default
from sigcli.protocols import evaluation_features, gamma_text
from sigcli.protocols.wi import WIOptions, evaluate_wi, save_wi_model

_O = WIOptions


class Fusion(str, Enum):
    max = "max"
    min = "min"
    mean = "mean"
    median = "median"


def main(
    features: Features = None,
    model_path: ModelPath = None,
    data_path: DataPath = None,
    save_path: SavePath = None,
    save_model: Annotated[Optional[Path], typer.Option(
        help="Keep the first fold's classifier (scaler + SVM, skops format) for 'sig verify'.")] = None,
    exp_users: ExpUsers = default(_O, "exp_users"),
    dev_users: DevUsers = default(_O, "dev_users"),
    gen_for_train: GenForTrain = default(_O, "gen_for_train"),
    gen_for_ref: Annotated[int, typer.Option(help="Genuine references per exploitation user.")] = default(
        _O, "gen_for_ref"),
    gen_for_test: GenForTest = default(_O, "gen_for_test"),
    fusion: Annotated[Fusion, typer.Option(help="How a query's scores against the references combine.")] = Fusion(
        default(_O, "fusion")),
    svm_type: SvmTypeOption = SvmType(default(_O, "svm_type")),
    svm_c: SvmC = default(_O, "svm_c"),
    svm_gamma: SvmGamma = gamma_text(default(_O, "svm_gamma")),
    folds: Folds = default(_O, "folds"),
    seed: Seed = default(_O, "seed"),
    threshold: Threshold = default(_O, "threshold"),
    batch_size: BatchSize = None,
    device: Device = None,
) -> None:
    options = build(WIOptions, exp_users=exp_users, dev_users=dev_users, gen_for_train=gen_for_train,
                    gen_for_ref=gen_for_ref, gen_for_test=gen_for_test, fusion=fusion.value,
                    svm_type=svm_type.value, svm_c=svm_c, svm_gamma=svm_gamma, folds=folds, seed=seed,
                    threshold=threshold)
    reporter = console.RichReporter()
    feature_set, inputs = evaluation_features(options, features, model_path, data_path, batch_size, device, reporter)
    run = evaluate_wi(feature_set, options, reporter)
    if save_model is not None:
        save_wi_model(save_model, run.classifier, options, feature_set.dim, source=feature_set.source, inputs=inputs)
        console.err.print(f"WI classifier: {save_model}", markup=False, highlight=False)
    finish("wi", run.folds, options, inputs, save_path)

"""Writer-independent evaluation: one SVM on signature pairs verifies every writer.

The SVM learns from development users' pairs |f(a) - f(b)| (same writer or not); each
exploitation user's test signature is then scored against its references and the scores
fused (--fusion). Tests are sampled (Viana et al. 2024). The features come from a feature
file (--features-path) or are extracted for the exploitation and development users only
(--model-path with --data-path). --save-model keeps the first fold's classifier (scaler +
SVM, skops format) for 'sig verify', with thresholds calibrated on held-out signatures of the
development users (the EER, FAR 1% and 0.1% against skilled and random forgeries) that
'sig verify --operating-point' picks.

Example: sig wi --features-path features.npz --exp-users 0 300 --dev-users 300 881 --save-path wi.pkl --save-model wi.skops
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.cli.wd import show_results
from sigcli.config.evaluation import WIOptions

if TYPE_CHECKING:
    from sigcli.protocols.calibration import Calibration


def run(options: WIOptions) -> None:
    from sigcli.protocols.wi import run_wi

    result = run_wi(options, console.RichReporter())
    if options.save_model is not None:
        console.err.print(f"WI classifier: {options.save_model}{_calibrated(result.calibration)}", markup=False,
                          highlight=False)
    show_results("wi", result.folds, options, save_model=options.save_model)


def _calibrated(calibration: Calibration | None) -> str:
    """``, with thresholds calibrated on 40 development users (eer: t = 0.31, FRR 5.0%, ...)``."""
    if calibration is None or "eer" not in calibration.points:
        return ""
    eer = calibration.points["eer"]
    return (f", with thresholds calibrated on {calibration.users} development users (--operating-point "
            f"{', '.join(calibration.points)}; eer: threshold {eer.threshold:.4g}, FRR {eer.frr:.1%}, FAR skilled "
            f"{eer.far_skilled:.1%})")


main = command(WIOptions, run)

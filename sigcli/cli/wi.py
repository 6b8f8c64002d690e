"""Writer-independent evaluation: one SVM on signature pairs verifies every writer.

The SVM learns from development users' pairs |f(a) - f(b)| (same writer or not); each
exploitation user's test signature is then scored against its references and the scores
fused (--fusion). Tests are sampled (Viana et al. 2024). The features come from a feature
file (--features-path) or are extracted for the exploitation and development users only
(--model-path with --data-path). --save-model keeps the first fold's classifier (scaler +
SVM, skops format) for 'sig verify'.

Example: sig wi --features-path features.npz --exp-users 0 300 --dev-users 300 881 --save-path wi.pkl --save-model wi.skops
"""

from __future__ import annotations

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.cli.wd import show_results
from sigcli.config.evaluation import WIOptions


def run(options: WIOptions) -> None:
    from sigcli.protocols.wi import run_wi

    result = run_wi(options, console.RichReporter())
    if options.save_model is not None:
        console.err.print(f"WI classifier: {options.save_model}", markup=False, highlight=False)
    show_results("wi", result.folds, options, save_model=options.save_model)


main = command(WIOptions, run)

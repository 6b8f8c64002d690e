"""Extract the features of every signature of a set with a trained network.

Each signature's centre 150×220 crop goes through the feature extractor in eval mode; the
features (N×D float32) are saved with y, yforg, user mapping and file names as a feature
file, which `sig wd` / `sig wi` read with --features-path. The architecture is recognised
from the checkpoint (--model only checks it). A memory-mapped folder set is streamed.

Example: sig extract --model-path signet.pth --data-path cedar.npz --save-path cedar_features.npz

Without --model-path, --model NAME --seed S extracts with an untrained network of that
architecture: the baseline that shows what training adds.
"""

from __future__ import annotations

import json

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.extract import ExtractOptions


def run(options: ExtractOptions) -> None:
    from sigcli.features import run_extract

    features = run_extract(options, console.RichReporter())
    summary = {"signatures": len(features.y), "dim": features.dim, "source": features.source,
               "save_path": str(options.save_path)}
    if options.as_json:
        console.out.print_json(json.dumps(summary))
    else:
        console.out.print(f"{summary['signatures']} signatures × {summary['dim']} features ({summary['source']}) → "
                          f"{summary['save_path']}", markup=False, highlight=False)


main = command(ExtractOptions, run)

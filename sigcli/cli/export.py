"""Export a checkpoint's feature extractor as TorchScript or ONNX, to run it without sig.

The exported network takes a batch N×1×150×220 of float32 signatures in [0, 1] (the centre
crop of a preprocessed signature, divided by 255) and returns the N×D features that
`sig extract` computes. After writing, the file is loaded back (TorchScript with torch, ONNX
with onnxruntime where it is installed) and its features on a test batch are compared with
the PyTorch model's; the largest difference is reported.

Example: sig export --model-path signet.pth --format onnx --save-path signet.onnx
"""

from __future__ import annotations

import json

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.export import ExportOptions


def run(options: ExportOptions) -> None:
    from sigcli.export import run_export

    summary = run_export(options)
    if options.as_json:
        console.out.print_json(json.dumps(summary))
        return
    difference = summary["max_difference"]
    checked = (f"features within {difference:.1e} of PyTorch ({summary['checked_with']})" if difference is not None
               else "not checked: install onnxruntime to compare its features with PyTorch's")
    console.out.print(f"{summary['arch']} ({summary['dim']} features) → {summary['save_path']} "
                      f"[{summary['format']}], {checked}", markup=False, highlight=False, soft_wrap=True)


main = command(ExportOptions, run)

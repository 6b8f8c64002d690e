"""A checkpoint's feature extractor as a file other runtimes load (``sig export``, docs/training.md#export).

The exported network is the one `sig extract` runs, in eval mode: N×1×150×220 float32 in
[0, 1] → N×D features, any N. After writing, the file is loaded back and its features on a
seeded test batch are compared with the PyTorch model's, so a broken export is noticed here
and not in a deployment.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from sigcli.config.export import ExportFormat, ExportOptions
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output
from sigcli.models import INPUT_SIZE
from sigcli.models.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "signatures", "features"
#: Largest feature difference between the exported file and PyTorch that counts as the same network.
PARITY_TOLERANCE = 1e-4
_ONNX_NEEDS = ("onnx", "onnxscript")   # torch's ONNX exporter builds the graph with these


def run_export(options: ExportOptions) -> dict[str, Any]:
    """``sig export``: load the checkpoint, write the file atomically, check it; a summary."""
    check_output(options.save_path, overwrite=options.overwrite, inputs=(options.model_path,))
    if options.export_format == "onnx":
        require_onnx()
    checkpoint = load_checkpoint(options.model_path, options.model, options.allow_unsafe_checkpoint)
    model = checkpoint.build_model("cpu")
    with atomic_path(options.save_path, overwrite=options.overwrite) as tmp:
        export_model(model, options.export_format, tmp)
        difference, checked_with = compare_with_pytorch(model, options.export_format, tmp)
    if difference is not None and difference > PARITY_TOLERANCE:
        log.warning("the exported network's features differ from PyTorch's by up to %.2g", difference)
    return {"arch": checkpoint.arch, "dim": checkpoint.feature_dim, "format": options.export_format,
            "save_path": str(options.save_path), "max_difference": difference, "checked_with": checked_with}


def require_onnx() -> None:
    missing = [name for name in _ONNX_NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"exporting to ONNX needs the package(s) {', '.join(missing)}",
                         "pip install 'sigcli[onnx]', or export with --format torchscript")


def export_model(model: nn.Module, export_format: ExportFormat, path: Path) -> None:
    """Write ``model`` (eval mode, on the CPU) to ``path``; the batch size stays free."""
    example = sample_batch(2)
    if export_format == "torchscript":
        with _torchscript_allowed():
            torch.jit.trace(model, example).save(str(path))
        return
    torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, dynamo=True,
                      verbose=False)


def compare_with_pytorch(model: nn.Module, export_format: ExportFormat, path: Path) -> tuple[float | None, str]:
    """Largest absolute feature difference between the file at ``path`` and ``model`` on a
    test batch of another size than the traced one; ``None`` when no ONNX runtime is installed."""
    batch = sample_batch(3, seed=1)
    with torch.inference_mode():
        expected = model(batch).numpy()
    if export_format == "torchscript":
        with torch.inference_mode(), _torchscript_allowed():
            exported = torch.jit.load(str(path), map_location="cpu")(batch).numpy()
        return float(np.abs(exported - expected).max()), f"torch {torch.__version__}"
    if importlib.util.find_spec("onnxruntime") is None:
        return None, "not checked (onnxruntime is not installed)"
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]
    return float(np.abs(exported - expected).max()), f"onnxruntime {onnxruntime.__version__}"


@contextmanager
def _torchscript_allowed() -> Iterator[None]:
    """torch marks TorchScript deprecated; it is still what C++ and mobile runtimes load, and what was asked for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def sample_batch(size: int, seed: int = 0) -> torch.Tensor:
    """Seeded uniform images in [0, 1], shaped like the network's input."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 1, *INPUT_SIZE, generator=generator)

"""Options of ``sig export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field

from sigcli.config.common import AllowUnsafeCheckpoint, Json, ModelPath, Overwrite
from sigcli.options import Cli, Options

ExportFormat = Literal["torchscript", "onnx"]


class ExportOptions(Options):
    """Options of ``sig export``: a checkpoint's feature extractor as a file other runtimes load."""

    model_path: ModelPath
    export_format: Annotated[ExportFormat, Cli(flag="--format")] = Field(
        description="torchscript: a .pt file torch.jit.load (Python or C++) runs without sig; onnx: a .onnx "
                    "file for ONNX Runtime and other ONNX runtimes.")
    save_path: Path = Field(description="File to write (.pt for torchscript, .onnx for onnx).")
    model: Annotated[Optional[str], Cli(default_text="detected")] = Field(
        None, description="Architecture; checked against the checkpoint.")
    overwrite: Overwrite = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    as_json: Json = False

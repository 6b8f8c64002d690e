"""Options of ``sig extract``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, model_validator

from sigcli.config.common import (AllowPickle, AllowUnsafeCheckpoint, DataPath, Device, Json, ModelPath, Overwrite,
                                  Seed, UserRange)
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Signatures per forward pass: large enough that the network, not the Python loop, is the cost.
EXTRACT_BATCH_SIZE = 128


class ExtractOptions(Options):
    """Options of ``sig extract``: the features of every signature of a set."""

    model_path: Optional[ModelPath] = None
    data_path: DataPath
    save_path: Path = Field(description="Feature file to write (.npz).")
    users: UserRange = None
    model: Annotated[Optional[str], Cli(default_text="detected")] = Field(
        None, description="Architecture; checked against the checkpoint. Without --model-path: an untrained "
                          "network of this architecture, initialised from --seed (the baseline a trained one "
                          "must beat).")
    seed: Seed = 0
    batch_size: int = Field(EXTRACT_BATCH_SIZE, ge=1, description="Signatures per forward pass.")
    device: Device = "auto"
    overwrite: Overwrite = False
    allow_unsafe_checkpoint: AllowUnsafeCheckpoint = False
    allow_pickle: AllowPickle = False
    as_json: Json = False

    @model_validator(mode="after")
    def _a_network(self) -> "ExtractOptions":
        if self.model_path is None and self.model is None:
            raise InputError("no network to extract with", "give --model-path CHECKPOINT, or --model NAME for an "
                                                            "untrained network (a baseline)")
        return self

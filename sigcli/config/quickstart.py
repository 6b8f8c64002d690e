"""Options of ``sig quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from sigcli.config.common import Device, Json, Seed, Workers
from sigcli.options import Cli, Options


class QuickstartOptions(Options):
    """Options of ``sig quickstart``: the whole method on synthetic data."""

    logdir: Annotated[Path, Cli("--workdir")] = Field(
        Path("sig-quickstart"), description="Folder for every artefact of the run (data, checkpoints, results).")
    fast: bool = Field(False, description="A smaller run: under 3 minutes on 2 CPU cores.")
    seed: Seed = 0
    workers: Workers = None
    device: Device = "auto"
    as_json: Json = False

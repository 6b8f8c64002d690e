"""Options of ``sig info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from sigcli.config.common import AllowPickle, Json
from sigcli.options import Cli, Options


class InfoOptions(Options):
    """Options of ``sig info``: the files to describe."""

    paths: Annotated[list[Path], Cli(argument=True, metavar="PATH")] = Field(
        min_length=1, description="Files or folders to describe.")
    allow_pickle: AllowPickle = False
    as_json: Json = Field(False, description="Print JSON on stdout: each path with its description.")

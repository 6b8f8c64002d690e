"""Options of ``sig datasets``."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, model_validator

from sigcli.config.common import Json
from sigcli.errors import InputError
from sigcli.options import Cli, Options


class DatasetsOptions(Options):
    """Options of ``sig datasets``: list the loaders, or describe one."""

    name: Annotated[Optional[str], Cli(argument=True, metavar="NAME")] = Field(
        None, description="Describe this loader (same as --describe NAME).")
    describe: Annotated[Optional[str], Cli(metavar="NAME")] = Field(
        None, description="Describe a loader: how to obtain its data, its layout.")
    as_json: Json = Field(False, description="Print JSON instead of a table.")

    @model_validator(mode="after")
    def _one_loader(self) -> "DatasetsOptions":
        if self.name and self.describe and self.name != self.describe:
            raise InputError(f"two loaders to describe: {self.name!r} and --describe {self.describe!r}", "give one")
        return self

    @property
    def wanted(self) -> str | None:
        """The loader to describe, if any."""
        return self.describe or self.name

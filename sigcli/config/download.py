"""Options of ``sig download``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, model_validator

from sigcli.config.common import Json, Overwrite
from sigcli.errors import InputError
from sigcli.options import Cli, Options


class DownloadOptions(Options):
    """Options of ``sig download``: which artefacts to fetch, or the list of them."""

    names: Annotated[list[str], Cli(argument=True, metavar="NAME")] = Field(
        default_factory=list, description="Artefacts to fetch (see --list).")
    fetch_all: Annotated[bool, Cli(flag="--all")] = Field(False, description="Fetch every artefact.")
    show_list: Annotated[bool, Cli(flag="--list")] = Field(
        False, description="Show each artefact: whether it is downloaded, its size and its path.")
    save_path: Annotated[Optional[Path], Cli(default_text="the cache")] = Field(
        None, description="Folder to save into instead of the cache (where distill and wd look).")
    overwrite: Overwrite = Field(False, description="Download again and replace a file already there (never a "
                                                    "folder).")
    url: Optional[str] = Field(None, description="Fetch from this URL (a mirror) instead of Google Drive; one NAME "
                                                 "only.")
    as_json: Json = Field(False, description="Print JSON on stdout: the list with --list, else what was fetched.")

    @model_validator(mode="after")
    def _one_request(self) -> "DownloadOptions":
        """Names or --all, or --list alone; --url for one name."""
        if self.show_list:
            if self.names or self.fetch_all:
                raise InputError("--list shows every artefact; give no NAME and no --all with it")
        elif self.fetch_all == bool(self.names):
            raise InputError("name the artefacts to fetch or pass --all (not both)", "'sig download --list' shows them")
        elif self.url and (self.fetch_all or len(self.names) != 1):
            raise InputError("--url replaces the link of one artefact: give exactly one NAME with it")
        return self

"""Options of ``sig synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, model_validator

from sigcli.config.common import Overwrite, Seed, Workers
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Writers shown by ``--preview`` (the first ones of the run).
PREVIEW_WRITERS = 4


class SynthOptions(Options):
    """Options of ``sig synth``; counts left as None take the layout's real ones."""

    layout: str = Field(description="Dataset layout to write: any loader 'sig datasets' lists that names "
                                    "synthetic files (built in: gpds, gpds-synthetic, mcyt, cedar, brazilian, "
                                    "brazilian-nosimple, bhsig-bengali, bhsig-hindi, folder).")
    save_path: Annotated[Optional[Path], Cli("--out", default_text="none: only --preview")] = Field(
        None, description="Folder to write (a new or empty one).")
    users: int = Field(10, ge=1, description="Number of writers.")
    genuine: Annotated[Optional[int], Cli(default_text="the dataset's, e.g. 24 for gpds")] = Field(
        None, ge=0, description="Genuine signatures per user.")
    skilled: Annotated[Optional[int], Cli(default_text="the dataset's, e.g. 30 for gpds")] = Field(
        None, ge=0, description="Skilled forgeries per user.")
    simple: Annotated[Optional[int], Cli(default_text="10, brazilian only")] = Field(
        None, ge=0, description="Simple forgeries per user.")
    seed: Seed = Field(0, ge=0)
    first_user: Annotated[Optional[int], Cli(default_text="the dataset's first, 1; 0 for mcyt")] = Field(
        None, ge=0, description="Number of the first writer.")
    workers: Workers = None
    preview: Optional[Path] = Field(
        None, description=f"Also (or, without --save-path, only) write a PNG contact sheet of genuine and skilled "
                          f"signatures of the first {PREVIEW_WRITERS} writers, each on the dataset's canvas.")
    overwrite: Overwrite = Field(False, description="Replace a --save-path folder that 'sig synth' wrote before "
                                                    "(or a --preview file).")

    @model_validator(mode="after")
    def _an_output(self) -> "SynthOptions":
        if self.save_path is None and self.preview is None:
            raise InputError("nothing to write", "give --save-path FOLDER for a dataset, --preview PNG for a "
                                                 "contact sheet, or both")
        return self

"""Options of ``sig report``, and the metrics a report shows (its ``--sort-by`` choices)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator

from sigcli.config.common import Json, Overwrite
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Metrics summarised over folds (mean ± std), with their display names.
SUMMARY_METRICS = {"EER": "EER (global)", "EER_userthresholds": "EER (user thresholds)", "FRR": "FRR",
                   "FAR_random": "FAR random", "FAR_skilled": "FAR skilled", "mean_AUC": "mean AUC"}
SortKey = Literal[("run", *SUMMARY_METRICS)]
PLOT_FORMATS = ("png", "pdf", "svg")


def check_plot_suffix(path: Path) -> Path:
    """A plot file must end in a format matplotlib draws without extra libraries."""
    if path.suffix.lstrip(".").lower() not in PLOT_FORMATS:
        raise InputError(f"cannot draw a plot as '{path.name}'",
                         f"end the file name in {', '.join('.' + f for f in PLOT_FORMATS[:-1])} or .{PLOT_FORMATS[-1]}")
    return path


class ReportOptions(Options):
    """Options of ``sig report``."""

    results: Annotated[list[Path], Cli(argument=True, metavar="RESULT")] = Field(
        min_length=1, description="Results pickles of 'sig wd' / 'sig wi' or of the reference tools; a JSON summary "
                                  "of sig stands for the pickle beside it. Or results (.json) of 'sig attack "
                                  "--system wd'.")
    format: Literal["table", "csv", "markdown"] = Field("table", description="Output format.")
    sort_by: Annotated[Optional[SortKey], Cli(default_text="as given")] = Field(
        None, description="Order rows best first by this metric (or by run name).")
    plot: Optional[Path] = Field(None, description="Write DET / ROC curves and score distributions (attack results: "
                                                   "success rate against L2 budget) to this image (.png, .pdf or "
                                                   ".svg).")
    overwrite: Overwrite = False
    as_json: Json = False

    @field_validator("plot")
    @classmethod
    def _plot_format(cls, value: Path | None) -> Path | None:
        return value if value is None else check_plot_suffix(value)

    @model_validator(mode="after")
    def _one_format(self) -> "ReportOptions":
        if self.as_json and self.format != "table":
            raise InputError(f"--json and --format {self.format} both choose the output", "give one of them")
        return self

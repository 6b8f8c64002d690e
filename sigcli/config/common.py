"""Option fields that several commands share, declared once (see ``docs/vocabulary.md``).

Use them as field types: ``device: Device = "auto"``. Each carries its help text and its
validation; a command needing another default gives it as the field's default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from sigcli.options import Cli
from sigcli.device import Device  # noqa: F401  (shared field, declared with its check)
from sigcli.errors import InputError

def check_user_range(value: tuple[int, int] | None, info: ValidationInfo) -> tuple[int, int] | None:
    """``[first, last)`` with ``0 <= first < last``; the error names the option (``--c-users 2 2 ...``)."""
    if value is not None and not 0 <= value[0] < value[1]:
        flag = "--" + (info.field_name or "users").replace("_", "-")
        raise InputError(f"{flag} {value[0]} {value[1]} is an empty or negative user range",
                         "give FIRST LAST with 0 <= FIRST < LAST (LAST excluded)")
    return value


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def all_cores(value: int | None) -> int:
    """``None`` (the default) means one worker per CPU core this process may use."""
    if value is None:
        return cpu_count()
    if value < 1:
        raise InputError(f"--workers {value} runs nothing", "give 1 or more (the default uses every core)")
    return value


Seed = Annotated[int, Field(description="Seeds every random draw: the same seed gives the same result.")]
Workers = Annotated[Optional[int], BeforeValidator(all_cores), Cli(default_text="one per CPU core"), Field(validate_default=True),
                    Field(description="Parallel workers; the result does not depend on their number.")]
Overwrite = Annotated[bool, Field(description="Replace an existing output of sig's own format (never a folder "
                                              "of yours, never an input).")]
AllowPickle = Annotated[bool, Field(description="Read a pickled user_mapping of a signature set (only for files "
                                                "you trust: unpickling can run code).")]
AllowUnsafeCheckpoint = Annotated[bool, Field(description="Load a legacy checkpoint that needs full unpickling "
                                                          "(only for files you trust: it can run code).")]
Json = Annotated[bool, Cli(flag="--json"),   # the field is named as_json: pydantic models have a json()
                 Field(description="Print machine-readable JSON on stdout instead of tables.")]
UserRange = Annotated[Optional[tuple[int, int]], AfterValidator(check_user_range),
                      Cli(default_text="all", metavar="FIRST LAST"),
                      Field(description="Users FIRST..LAST-1, by index in the set (LAST excluded).")]
DataPath = Annotated[Path, Cli("--dataset-path"),
                     Field(description="Preprocessed signature set: a .npz file or a memory-mapped folder.")]
def _tensorboard_installed(value: bool) -> bool:
    if value:
        from sigcli.eventlog import require_tensorboard

        require_tensorboard()
    return value


Tensorboard = Annotated[bool, AfterValidator(_tensorboard_installed), Field(
    description="Also write the logged metrics as TensorBoard event files (needs the tensorboard package; "
                "docs/training.md#tensorboard).")]
ModelPath = Annotated[Path, Field(description="Checkpoint (.pth) of a feature extractor, in the reference "
                                              "3-tuple format.")]
Fusion = Annotated[Literal["max", "min", "mean", "median"],
                   Field(description="How a query's scores against a writer's references combine into one.")]

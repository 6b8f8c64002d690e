"""Torch devices as commands name them (``--device``): one check and one resolution for all.

Extraction, training, distillation, inversion and verification all take the same spec.
:data:`Device` is the pydantic field type of every options model's ``device``; it checks the
spelling without importing torch (so ``--help`` and option parsing stay light), and
:func:`resolve_device` turns a spec into a ``torch.device`` present on this machine.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

from sigcli.errors import InputError

if TYPE_CHECKING:
    import torch

#: The specs ``--device`` accepts, for errors; and the help text that explains them.
ACCEPTED = "auto, cpu, cuda, cuda:N, mps"
HELP = "auto (a CUDA GPU when present, else the CPU), cpu, cuda, cuda:N or mps."
_SPEC = re.compile(r"auto|cpu|mps|cuda(?::(\d+))?")


def check_device(spec: str) -> str:
    """``spec`` unchanged when it is spelled as a device we accept; else one line listing them."""
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise InputError(f"--device {spec!r} is not one of {ACCEPTED}",
                         "auto takes a CUDA GPU when one is present, else the CPU")
    return spec


#: Type of an options model's ``device`` field: its check and its help.
Device = Annotated[str, AfterValidator(check_device), Field(description=f"Torch device: {HELP}")]


def resolve_device(spec: str, local_rank: int = 0) -> "torch.device":
    """The device ``spec`` names, checked to exist here; ``auto`` is this process's GPU when
    CUDA is available, else the CPU, and ``cuda`` is the GPU of ``local_rank`` (torchrun)."""
    import torch

    match = _SPEC.fullmatch(check_device(spec))
    if spec == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if spec.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = local_rank if match[1] is None else int(match[1])
        if count == 0:
            raise InputError(f"--device {spec}: no CUDA GPU is available here", "use --device cpu (or auto)")
        if index >= count:
            raise InputError(f"--device {spec}: this machine has {count} GPU{'s' if count > 1 else ''}",
                             f"give cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}")
        return torch.device("cuda", index)
    if spec == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device mps: no Apple GPU (MPS) is available here", "use --device cpu (or auto)")
    return torch.device(spec)

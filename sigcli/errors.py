"""Typed errors. The library raises them; only the CLI turns them into a message and exit 2.

Every error carries a one-line message (what is wrong) and, where it helps, a hint (how
to fix it), so that the CLI can print a single actionable line.
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type's name when it has none), cut at
    ``limit`` characters: a library's multi-line error, quoted inside one line of ours."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SigcliError(Exception):
    """A mistake the user can fix: bad input, a missing file, inconsistent options."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(SigcliError):
    """A file, folder or value given by the user cannot be used."""


class DatasetLayoutError(InputError):
    """A raw dataset folder does not match the layout its loader expects."""


class CheckpointError(InputError):
    """A model file is not a checkpoint of a known architecture, or needs unsafe loading."""


class DownloadError(SigcliError):
    """An artefact could not be fetched or verified."""


class PluginError(SigcliError):
    """A dataset plugin is unknown or failed to load."""

"""Feature files: what `sig extract` writes and `sig wd` / `sig wi` read with ``--features``.

A feature file is an `.npz` with ``features`` (N×D float32), ``y``, ``yforg`` and, when
known, ``user_mapping`` and ``filenames`` of the signature set they came from, plus a
``source`` string (checkpoint fingerprint) for the results' provenance.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigcli.errors import InputError
from sigcli.fileio import atomic_path


@dataclass
class FeatureSet:
    features: np.ndarray
    y: np.ndarray
    yforg: np.ndarray
    user_mapping: np.ndarray | None = None
    filenames: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise InputError(f"features must be N×D, got shape {self.features.shape}")
        if not len(self.features) == len(self.y) == len(self.yforg):
            raise InputError(f"features ({len(self.features)}), y ({len(self.y)}) and yforg "
                             f"({len(self.yforg)}) differ in length")

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def select_users(self, first: int, last: int) -> "FeatureSet":
        keep = (self.y >= first) & (self.y < last)
        return FeatureSet(self.features[keep], self.y[keep], self.yforg[keep], self.user_mapping,
                          None if self.filenames is None else self.filenames[keep], self.source)

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {"features": np.asarray(self.features, dtype=np.float32), "y": self.y,
                  "yforg": self.yforg, "source": np.asarray(self.source)}
        if self.user_mapping is not None:
            arrays["user_mapping"] = np.asarray(self.user_mapping, dtype=np.int64)
        if self.filenames is not None:
            arrays["filenames"] = np.asarray(self.filenames, dtype=str)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureSet":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("features", "y", "yforg") if k not in data.files]
                if missing:
                    raise InputError(f"{path} is not a feature file: no {', '.join(missing)}",
                                     "make one with 'sig extract'")
                return cls(
                    features=data["features"].astype(np.float32, copy=False),
                    y=data["y"].astype(np.int64), yforg=data["yforg"].astype(np.int64),
                    user_mapping=data["user_mapping"] if "user_mapping" in data.files else None,
                    filenames=data["filenames"] if "filenames" in data.files else None,
                    source=str(data["source"]) if "source" in data.files else "",
                )
        except FileNotFoundError:
            raise InputError(f"no feature file at {path}", "make one with 'sig extract'") from None
        except (ValueError, OSError, zipfile.BadZipFile, AttributeError) as exc:
            raise InputError(f"{path} is not a feature file (.npz): {exc}") from None

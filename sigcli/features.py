"""Features: extraction (`sig extract`, and wd / wi / verify) and the feature file format.

:func:`extract_features` runs a feature extractor over every signature of a set (centre
crop, eval and inference mode), streaming batches from a memory-mapped set. A feature
file is an `.npz` with ``features`` (N×D float32), ``y``, ``yforg`` and, when known,
``user_mapping`` and ``filenames`` of the signature set they came from, plus a ``source``
string (checkpoint fingerprint) for the results' provenance.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sigcli import progress
from sigcli.config.extract import EXTRACT_BATCH_SIZE, ExtractOptions
from sigcli.data.sigset import FORGERY_KINDS, Canvas, SignatureSet, canvas_of, kind_of_values, label_array
from sigcli.device import resolve_device
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output
from sigcli.models.checkpoint import Checkpoint, load_checkpoint, untrained_checkpoint
from sigcli.options import require_users_within, users_text
from sigcli.progress import Reporter
from sigcli.training.data import Rows, batches, check_image_size

#: What to do about NaN or inf features: in a file, and straight from a checkpoint.
NON_FINITE_FILE_HINT = "extract them again with a model that gives finite features"
NON_FINITE_MODEL_HINT = "its weights probably diverged in training: use an earlier or another checkpoint"
#: What a feature file holds: errors about a malformed one say it.
FEATURE_LAYOUT = ("a feature file holds features (N×D numbers), y (N user indices, integers ≥ 0) and yforg "
                  "(N forgery codes: 0 genuine, 1 skilled, 2 simple); 'sig extract' writes one")


@dataclass
class FeatureSet:
    features: np.ndarray
    y: np.ndarray
    yforg: np.ndarray
    user_mapping: np.ndarray | None = None
    filenames: np.ndarray | None = None
    source: str = ""
    canvas: Canvas | None = None  # how the signatures' images were made, when known

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
                          None if self.filenames is None else self.filenames[keep], self.source, self.canvas)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write atomically; an existing ``path`` is refused unless ``overwrite`` (a file only)."""
        arrays = {"features": np.asarray(self.features, dtype=np.float32), "y": self.y,
                  "yforg": self.yforg, "source": np.asarray(self.source)}
        if self.user_mapping is not None:
            arrays["user_mapping"] = np.asarray(self.user_mapping, dtype=np.int64)
        if self.filenames is not None:
            arrays["filenames"] = np.asarray(self.filenames, dtype=str)
        if self.canvas is not None:
            arrays["canvas"] = np.asarray(json.dumps(self.canvas.as_dict()))
        with atomic_path(path, suffix=".npz", overwrite=overwrite) as tmp:
            np.savez(tmp, **arrays)
        return Path(path)

    def require_finite(self, source: str, hint: str = NON_FINITE_FILE_HINT) -> None:
        """Refuse rows with NaN or inf before any draw: the SVMs would fail or score them in
        ways that depend on which rows a seed happens to draw."""
        finite = np.isfinite(self.features).all(axis=1)
        if not finite.all():
            raise InputError(f"{source}: {np.count_nonzero(~finite)} of {len(finite)} feature rows hold NaN or inf "
                             f"({users_text(np.unique(self.y[~finite]))})", hint)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureSet":
        """Read and check a feature file: the arrays of a feature set, finite, with valid labels."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("features", "y", "yforg") if k not in data.files]
                if missing:
                    raise InputError(f"{path} is not a feature file: no {', '.join(missing)}",
                                     "make one with 'sig extract'")
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise InputError(f"no feature file at {path}", "make one with 'sig extract'") from None
        except (ValueError, OSError, zipfile.BadZipFile, AttributeError) as exc:
            raise InputError(f"{path} is not a feature file (.npz): {exc}") from None
        try:
            features = arrays["features"]
            if features.dtype.kind not in "fiu":
                raise InputError(f"'features' holds {kind_of_values(features.dtype)} values, not numbers")
            feature_set = cls(
                features=features.astype(np.float32, copy=False),
                y=label_array(arrays["y"], "y"), yforg=label_array(arrays["yforg"], "yforg", FORGERY_KINDS),
                user_mapping=arrays.get("user_mapping"), filenames=arrays.get("filenames"),
                source=str(arrays["source"]) if "source" in arrays else "",
                canvas=_canvas_record(arrays.get("canvas")))
        except InputError as exc:
            raise InputError(f"{path}: {exc.message}", FEATURE_LAYOUT) from None
        feature_set.require_finite(str(path))
        return feature_set


def _canvas_record(stored: np.ndarray | None) -> Canvas | None:
    """The canvas saved in a feature file (JSON text); ``None`` if absent or unreadable."""
    if stored is None or stored.dtype.kind != "U" or stored.ndim != 0:
        return None
    try:
        return Canvas.from_dict(json.loads(str(stored)))
    except ValueError:
        return None


def extract_features(model: nn.Module, signatures: SignatureSet | Rows, batch_size: int = EXTRACT_BATCH_SIZE,
                     device: str | torch.device = "cpu", reporter: Reporter | None = None) -> np.ndarray:
    """Features (N×D float32) of every signature, in order: centre crop, eval and inference mode.

    ``signatures`` is a set or a selection of its rows; a memory-mapped ``x`` is streamed a
    batch at a time (a background thread reads the next batch while the network runs).
    """
    rows = signatures if isinstance(signatures, Rows) else Rows(signatures.x, np.arange(len(signatures)),
                                                                 signatures.y, signatures.yforg)
    device = torch.device(device)
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    result: np.ndarray | None = None
    with torch.inference_mode(), progress.resolve(reporter).task("extract features", len(rows)) as task:
        for batch in batches(rows, np.arange(len(rows)), batch_size, device):
            features = model(batch.x).float().cpu().numpy()
            if result is None:
                result = np.empty((len(rows), features.shape[1]), dtype=np.float32)
            result[batch.index] = features
            task.advance(len(batch.index))
    return result if result is not None else np.empty((0, getattr(model, "feature_space_size", 0)), np.float32)


def extract_feature_set(checkpoint: Checkpoint, sigset: SignatureSet, users: tuple[int, int] | None = None,
                        batch_size: int = EXTRACT_BATCH_SIZE, device: str | torch.device = "auto",
                        reporter: Reporter | None = None) -> FeatureSet:
    """A :class:`FeatureSet` of the set's users in ``[first, last)`` (all when ``None``)."""
    check_image_size(sigset.image_size)
    if users is not None:
        require_users_within(users, np.unique(sigset.y), "--users", "the set")
    rows = Rows.select(sigset, users)
    if users is not None and len(rows) == 0:
        raise InputError(f"the set has no signatures of users [{users[0]}, {users[1]})")
    device = resolve_device(device) if isinstance(device, str) else device
    features = extract_features(checkpoint.build_model(device), rows, batch_size, device, reporter)
    filenames = None if sigset.filenames is None else np.asarray(sigset.filenames)[rows.rows]
    feature_set = FeatureSet(features, rows.y, rows.yforg, sigset.user_mapping, filenames, checkpoint.identity())
    feature_set.require_finite(f"the checkpoint {checkpoint.path or checkpoint.identity()}", NON_FINITE_MODEL_HINT)
    return feature_set


def run_extract(options: ExtractOptions, reporter: Reporter | None = None) -> FeatureSet:
    """``sig extract``: load the checkpoint and the set, extract, save atomically."""
    check_output(options.save_path, overwrite=options.overwrite, inputs=(options.model_path, options.data_path))
    checkpoint = (load_checkpoint(options.model_path, options.model, options.allow_unsafe_checkpoint)
                  if options.model_path is not None else untrained_checkpoint(options.model, options.seed))
    sigset = SignatureSet.load(options.data_path, allow_pickle=options.allow_pickle)
    features = extract_feature_set(checkpoint, sigset, options.users, options.batch_size, options.device, reporter)
    features.canvas = canvas_of(options.data_path)
    features.save(options.save_path, overwrite=options.overwrite)
    return features

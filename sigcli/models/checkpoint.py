"""Checkpoints: the reference 3-tuple of state dicts, read safely, architecture told by shape.

A checkpoint file is ``(features_state, classifier_state, forgery_state)`` saved with
``torch.save`` (docs/formats.md#checkpoints); the forgery entry is an empty dict when there is no forgery
head. Files are read with ``torch.load(weights_only=True)``; one that needs full unpickling
(it stores Python objects, which can run code) is refused unless the caller opts in.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from sigcli.data.sigset import Canvas
from sigcli.errors import CheckpointError, first_line
from sigcli.filekind import DAMAGED_ZIP, PYTORCH, file_kind
from sigcli.fileio import atomic_path, sha256_of
from sigcli.models import available_models, create_model

UNSAFE_FLAG = "--allow-unsafe-checkpoint"
#: What a checkpoint file is, said when something else is given.
EXPECTED = "expected a .pth file written by 'sig train' or 'sig distill', or a reference one"
# Prefixes that wrappers add to parameter names: DistributedDataParallel / DataParallel, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Keys of a dict checkpoint that hold the state dicts, in the order of the reference tuple.
_DICT_LAYOUTS = (("features", "classifier", "forgery"), ("base_model", "classification_layer", "forg_layer"))

StateDict = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    """A loaded checkpoint: the feature extractor's architecture and weights, and its heads."""

    arch: str
    features_state: StateDict
    classifier_state: StateDict | None = None
    forgery_state: StateDict | None = None
    path: Path | None = None
    seed: int | None = None       # an untrained network: the seed of its initial weights

    @property
    def num_classes(self) -> int | None:
        """Outputs of the user-classification head (users it was trained on), if it has one."""
        return None if not self.classifier_state else int(self.classifier_state["weight"].shape[0])

    @property
    def feature_dim(self) -> int:
        return int(create_model_on_meta(self.arch).feature_space_size)

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The feature extractor with these weights, in eval mode, on ``device``."""
        model = create_model(self.arch)
        model.load_state_dict(self.features_state)
        return model.to(device).eval()

    def build_heads(self, device: str | torch.device = "cpu") -> tuple[nn.Linear | None, nn.Linear | None]:
        """The user-classification and forgery heads (``None`` where the checkpoint has none)."""
        return _linear(self.classifier_state, device), _linear(self.forgery_state, device)

    def identity(self) -> str:
        """``arch:sha256-prefix`` of the file, recorded as the provenance of features and results."""
        if self.path is None:
            return f"{self.arch}:untrained-seed-{self.seed}" if self.seed is not None else f"{self.arch}:unsaved"
        return f"{self.arch}:{sha256_of(self.path)[:16]}"


def untrained_checkpoint(arch: str, seed: int) -> Checkpoint:
    """A network of architecture ``arch`` with its initial random weights, drawn from ``seed``
    (the global torch generator is left as it was): the baseline a trained network must beat."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(arch)
    return Checkpoint(arch, {name: value.detach().clone() for name, value in model.state_dict().items()}, seed=seed)


def load_checkpoint(path: str | os.PathLike, model: str | None = None, allow_unsafe: bool = False) -> Checkpoint:
    """Read a checkpoint, recognise its architecture and check it against ``model`` if given.

    Raises :class:`CheckpointError` with one line for a missing, empty, truncated or non-
    checkpoint file (an HTML page saved by a failed download, random bytes), for a file that
    needs unsafe unpickling (unless ``allow_unsafe``), and for a ``model`` that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    content = _read(path, allow_unsafe)
    features, classifier, forgery = _split(content, path)
    features = strip_wrapper_prefixes(features)
    detected = detect_architecture(features)
    if detected is None:
        raise CheckpointError(f"{path} holds a network that matches no known architecture",
                              f"known: {', '.join(available_models())}")
    if model is not None:
        create_model_on_meta(model)  # an unknown name is its own error, listing the names
        if model != detected and not _matches(model, features):
            raise CheckpointError(f"--model {model} does not match {path}, which holds a {detected} network",
                                  f"use --model {detected} or leave --model out")
        detected = model
    return Checkpoint(detected, features, _optional(classifier, "user-classification", path),
                      _optional(forgery, "forgery", path), path)


def training_canvases(path: str | os.PathLike) -> list[Canvas]:
    """The canvases of the sets a checkpoint was trained on, as its run recorded them in the
    config.json beside it; empty when there is none (e.g. a renamed or published checkpoint)."""
    from sigcli.training.loop import BEST, CONFIG, LAST

    path = Path(path)
    if path.name not in (BEST, LAST):
        return []
    try:
        stored = json.loads((path.parent / CONFIG).read_text()).get("canvases")
    except (OSError, ValueError, AttributeError):
        return []
    canvases = [Canvas.from_dict(record) for record in stored] if isinstance(stored, list) else []
    return [canvas for canvas in canvases if canvas is not None]


def save_checkpoint(path: str | os.PathLike, features_state: Mapping[str, torch.Tensor],
                    classifier_state: Mapping[str, torch.Tensor] | None = None,
                    forgery_state: Mapping[str, torch.Tensor] | None = None, overwrite: bool = False) -> Path:
    """Write the reference 3-tuple atomically (CPU tensors, wrapper prefixes stripped).

    A missing forgery head is written as an empty dict, as the reference does. An existing
    ``path`` is refused unless ``overwrite``.
    """
    states = tuple(OrderedDict((k, v.detach().cpu().clone()) for k, v in strip_wrapper_prefixes(s or {}).items())
                   for s in (features_state, classifier_state, forgery_state))
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(states, tmp)
    return Path(path)


def detect_architecture(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The first registered architecture whose parameter names and shapes equal the state dict's."""
    state_dict = strip_wrapper_prefixes(state_dict)
    return next((name for name in available_models() if _matches(name, state_dict)), None)


def strip_wrapper_prefixes(state_dict: Mapping[str, Any]) -> StateDict:
    """Remove ``module.`` / ``_orig_mod.`` prefixes that wrapped models add to every key."""
    result = OrderedDict(state_dict)
    for prefix in _WRAPPER_PREFIXES:
        if result and all(k.startswith(prefix) for k in result):
            result = OrderedDict((k[len(prefix):], v) for k, v in result.items())
    return result


def create_model_on_meta(name: str) -> nn.Module:
    """An architecture without allocating its weights (for shapes and sizes)."""
    with torch.device("meta"):
        return create_model(name)


def _shapes(name: str) -> dict[str, tuple[int, ...]]:
    # Not cached across registrations: a name may be registered again with another factory.
    return {k: tuple(v.shape) for k, v in create_model_on_meta(name).state_dict().items()
            if not k.endswith("num_batches_tracked")}


def same_architecture(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` has ``model``'s parameter names and shapes (``num_batches_tracked``
    optional), so that ``model.load_state_dict(state_dict, strict=False)`` loads every weight."""
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = {k: tuple(v.shape) for k, v in state_dict.items()
              if not k.endswith("num_batches_tracked") and isinstance(v, torch.Tensor)}
    return ours == theirs


def _matches(name: str, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Same names and shapes; ``num_batches_tracked`` is optional (older files lack it)."""
    ours = {k: tuple(v.shape) for k, v in state_dict.items()
            if not k.endswith("num_batches_tracked") and isinstance(v, torch.Tensor)}
    return ours == _shapes(name)


def _read(path: Path, allow_unsafe: bool) -> Any:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        raise CheckpointError(f"{path} is empty", "download or save it again")
    if head.lstrip()[:1] == b"<":
        raise CheckpointError(f"{path} is a web page (HTML), not a checkpoint",
                              "a download probably returned an error or confirmation page; fetch it again")
    try:
        with warnings.catch_warnings():  # e.g. "unexpected pickle protocol": the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _is_pickle(head):
            raise CheckpointError(f"{path} is not a PyTorch checkpoint: it is {file_kind(path)}", EXPECTED) from None
        if not allow_unsafe:
            raise CheckpointError(f"{path} needs unsafe unpickling{_unsafe_what(exc)}, which can run code",
                                  f"pass {UNSAFE_FLAG} only if you trust the file") from None
    except Exception as exc:  # damaged bytes fail inside the reader in many ways
        kind = file_kind(path)
        if kind not in (PYTORCH, DAMAGED_ZIP):  # e.g. a feature file or a WI classifier given as the model
            raise CheckpointError(f"{path} is not a PyTorch checkpoint: it is {kind}", EXPECTED) from None
        raise CheckpointError(f"{path} is not a readable checkpoint: truncated, corrupted or another kind of "
                              f"file ({first_line(exc)})", "download or save it again") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # arbitrary pickles fail in arbitrary ways
        raise CheckpointError(f"{path} could not be read: {first_line(exc)}") from None


def _is_pickle(head: bytes) -> bool:
    """A zip archive (torch ≥ 1.6) or a raw pickle (legacy torch format, plain pickle)."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _unsafe_what(exc: Exception) -> str:
    marker = "GLOBAL "
    text = str(exc)
    if marker in text:
        return f" (it stores {text[text.index(marker) + len(marker):].split()[0]})"
    return ""


def _split(content: Any, path: Path) -> tuple[Mapping, Any, Any]:
    """Accept the reference tuple, a bare feature-extractor state dict, or a dict of the three."""
    if isinstance(content, Mapping) and "state_dict" in content:
        content = content["state_dict"]
    if isinstance(content, (tuple, list)) and 1 <= len(content) <= 3 and isinstance(content[0], Mapping):
        parts = list(content) + [None] * (3 - len(content))
        return parts[0], parts[1], parts[2]
    if isinstance(content, Mapping):
        for keys in _DICT_LAYOUTS:
            if keys[0] in content and isinstance(content[keys[0]], Mapping):
                return content[keys[0]], content.get(keys[1]), content.get(keys[2])
        if content and all(isinstance(v, torch.Tensor) for v in content.values()):
            return content, None, None
    raise CheckpointError(f"{path} is a PyTorch file but not a checkpoint of a network",
                          "expected (features, classifier, forgery) state dicts as saved by 'sig train'")


def _optional(state: Any, role: str, path: Path) -> StateDict | None:
    """A head's state dict, or ``None`` for an absent head (the reference saves ``{}``)."""
    if not state:
        return None
    state = strip_wrapper_prefixes(state) if isinstance(state, Mapping) else None
    weight = None if state is None else state.get("weight")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise CheckpointError(f"the {role} head in {path} is not a linear layer")
    return state


def _linear(state: StateDict | None, device: str | torch.device) -> nn.Linear | None:
    if not state:
        return None
    out_features, in_features = state["weight"].shape
    layer = nn.Linear(in_features, out_features, bias="bias" in state)
    layer.load_state_dict(state)
    return layer.to(device)

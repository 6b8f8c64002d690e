"""What a file or folder that sig writes holds (``sig info``; the formats are in docs/formats.md).

Each kind is recognised by its content (and, for a few, its name): signature sets, feature
files, checkpoints (feature extractors, meta-learners, resume states), results pickles and
their JSON summaries, WI classifier files, run folders and their ``metrics.csv`` and
``config.json``, the options files beside data, inversion outputs, exported networks,
TensorBoard event files and the download cache. Each gets a one-line summary and the facts
behind it as plain data (``--json``). Readers are the safe ones used elsewhere (no pickle
runs, checkpoints load with ``weights_only=True``), and keys a newer sig adds are shown too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sigcli.data.sigset import REQUIRED_KEYS
from sigcli.errors import InputError
from sigcli.eventlog import is_event_file
from sigcli.filekind import PYTORCH, SKOPS, file_kind

RUN_CONFIG, RUN_METRICS, MANIFEST, PLAN = "config.json", "metrics.csv", "manifest.json", "plan.json"


@dataclass
class Info:
    """``kind`` names the artefact, ``summary`` says it in one line, ``details`` holds the facts."""

    kind: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, path: Path) -> dict[str, Any]:
        return {"path": str(path), "kind": self.kind, "description": self.summary, "details": self.details}


def describe(path: str | Path, allow_pickle: bool = False) -> Info:
    """What ``path`` holds; :class:`InputError` when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    readers = _FOLDER_READERS if path.is_dir() else _FILE_READERS
    for recognise in readers:
        info = recognise(path, allow_pickle)
        if info is not None:
            return info
    if path.is_dir():
        return Info("folder", f"a folder sig did not write ({_count(sum(1 for _ in path.iterdir()), 'entry')})")
    return Info("unknown", file_kind(path))


# ---------------------------------------------------------------------------- folders
def _run_folder(path: Path, allow_pickle: bool) -> Info | None:
    """A run of train, distill or meta: options, epochs done, best epoch and its score."""
    if not (path / RUN_CONFIG).is_file() or not (path / RUN_METRICS).is_file() and not (path / "model_last.pth").exists():
        return None
    config = _json(path / RUN_CONFIG) or {}
    command = _run_command(config)
    options = config.get("options", {})
    planned = options.get("epochs") or config.get("schedule", {}).get("epochs")
    details: dict[str, Any] = {"command": command, "planned_epochs": planned, "options": options,
                               "files": sorted(p.name for p in path.iterdir() if not is_event_file(p.name))}
    summary = f"{command} run"
    if (path / RUN_METRICS).is_file():
        metrics = _metrics(path / RUN_METRICS)
        details.update(metrics.details)
        summary += f": {metrics.summary}"
        if planned is not None and metrics.details["epochs"] < planned:
            summary += f"; stopped before epoch {planned} (--resume continues it)"
    else:
        summary += ": no finished epoch"
    details["tensorboard"] = any(is_event_file(p.name) for p in path.iterdir())
    if (path / "results.json").is_file():
        details["results"] = _json(path / "results.json").get("summary")
        summary += f"; tested: {_eer(details['results'])}"
    return Info(f"run folder ({command})", summary, details)


def _run_command(config: dict) -> str:
    if "meta_batch_mode" in config:
        return "meta"
    return "distill" if "teacher" in config or "t_model_path" in config.get("options", {}) else "train"


def _parts_folder(path: Path, allow_pickle: bool) -> Info | None:
    if not (path / PLAN).is_file():
        return None
    plan = _json(path / PLAN) or {}
    done = sorted(p.name for p in path.glob("batch-*.npz"))
    total = plan.get("batches")
    return Info("unfinished inversion", f"unfinished 'sig invert': {len(done)}"
                f"{f' of {total}' if total else ''} batches done; the same command finishes it",
                {"batches_done": len(done), "plan": plan})


def _cache_folder(path: Path, allow_pickle: bool) -> Info | None:
    if not (path / MANIFEST).is_file():
        return None
    manifest = _manifest(path / MANIFEST)
    return manifest and Info("download cache", f"download cache: {manifest.summary}", manifest.details)


def _events_folder(path: Path, allow_pickle: bool) -> Info | None:
    files = [p for p in path.iterdir()]
    if not files or not all(is_event_file(p.name) for p in files):
        return None
    tags = sorted({tag for p in files for tag in _event_tags(p)})
    return Info("tensorboard", f"TensorBoard event files: {len(files)}, {len(tags)} scalar tags",
                {"files": [p.name for p in files], "tags": tags})


def _sigset_folder(path: Path, allow_pickle: bool) -> Info | None:
    if not (path / "x.npy").is_file():
        return None
    return _sigset(path, allow_pickle)


# ---------------------------------------------------------------------------- files
def _by_name(path: Path, allow_pickle: bool) -> Info | None:
    if path.name == RUN_METRICS:
        metrics = _metrics(path)
        return Info(metrics.kind, "metrics of " + metrics.summary, metrics.details)
    if is_event_file(path.name):
        tags = _event_tags(path)
        return Info("tensorboard", f"TensorBoard event file: {len(tags)} scalar tags", {"tags": tags})
    if path.suffix == ".onnx":
        return _onnx(path)
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            return Info("image", f"PNG image, {image.width}×{image.height}", {"size": [image.width, image.height]})
    return None


def _json_file(path: Path, allow_pickle: bool) -> Info | None:
    content = _json(path) if path.suffix == ".json" else None
    if not isinstance(content, dict):
        return None
    if content.get("command") in ("wd", "wi", "meta") and "summary" in content:
        return Info(f"results summary ({content['command']})", f"{content['command']} results summary: "
                    f"{len(content.get('per_fold', []))} folds, {_eer(content['summary'])}; pickle "
                    f"{content.get('results')}", {k: v for k, v in content.items() if k != "environment"})
    if path.name == MANIFEST:
        return _manifest(path)
    if "options" in content and "environment" in content:
        made = ("the options of a " + _run_command(content) + " run" if path.name == RUN_CONFIG
                else "the options of 'sig invert'" if "teacher_accuracy" in content
                else "the options of 'sig preprocess'" if "result" in content else "options")
        extra = {k: v for k, v in content.items() if k not in ("options", "environment")}
        return Info("options file", f"{made} (sig {content['environment'].get('sigcli', '?')})",
                    {"options": content["options"], **extra})
    return None


def _npz(path: Path, allow_pickle: bool) -> Info | None:
    if not zipfile.is_zipfile(path) or file_kind(path) != "a NumPy .npz archive":
        return None
    with np.load(path, allow_pickle=False) as data:
        keys = data.files
    if not {"features", *REQUIRED_KEYS} & set(keys):
        return Info("npz", f"a NumPy .npz archive that sig did not write (arrays: {', '.join(keys)})", {"keys": keys})
    if "features" in keys:
        from sigcli.features import FeatureSet

        features = FeatureSet.load(path)
        users = len(np.unique(features.y))
        return Info("feature file", f"feature file: {len(features.y)} signatures of {users} users, {features.dim}-d",
                    {"signatures": len(features.y), "users": users, "dim": features.dim, "source": features.source})
    info = _sigset(path, allow_pickle)
    options = _json(path.with_suffix(".json"))
    if isinstance(options, dict) and "teacher_accuracy" in options:
        info.kind = "inverted signature set"
        info.summary += f"; inverted, teacher accuracy {options['teacher_accuracy']:.1%}"
        info.details["inversion"] = {k: options.get(k) for k in ("users", "num_classes", "teacher_accuracy",
                                                                 "final_terms")}
    return info


def _torch_file(path: Path, allow_pickle: bool) -> Info | None:
    if file_kind(path) != PYTORCH:
        return None
    with zipfile.ZipFile(path) as archive:
        if any("/code/" in name for name in archive.namelist()):
            return Info("torchscript", "TorchScript network (sig export): N×1×150×220 in [0, 1] → features",
                        {"bytes": path.stat().st_size})
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint that needs unpickling: load_checkpoint says so in one line
        content = None
    if isinstance(content, dict) and content.get("format") == "sig-meta":
        seen = content.get("seen_writers", {})
        return Info("meta-learner checkpoint", f"{content.get('architecture')} meta-learner checkpoint, "
                    f"{content.get('num_updates')} inner steps", {k: content.get(k) for k in
                                                                 ("architecture", "num_updates", "learn_task_lr")}
                    | {"seen_writers": seen})
    if isinstance(content, dict) and "optimizer" in content and "history" in content:
        best = content.get("best_epoch")
        return Info("resume state", f"resume state of a run: {_count(content.get('epoch', 0), 'epoch')} done, "
                    f"best epoch {best}",
                    {"epoch": content.get("epoch"), "best_epoch": best, "best": content.get("best")})
    from sigcli.models.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    heads = f"{checkpoint.num_classes} users" if checkpoint.num_classes is not None else "no user head"
    return Info("checkpoint", f"{checkpoint.arch} checkpoint, {heads}",
                {"arch": checkpoint.arch, "feature_dim": checkpoint.feature_dim, "users": checkpoint.num_classes,
                 "forgery_head": checkpoint.forgery_state is not None, "fingerprint": checkpoint.identity()})


def _wi_model(path: Path, allow_pickle: bool) -> Info | None:
    if file_kind(path) != SKOPS:
        return None
    from sigcli.protocols.wi import load_wi_model

    model = load_wi_model(path)
    svc = model.classifier[-1]
    known = {"classifier", "fusion", "feature_dim", "info", "canvas"}
    extra = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name not in known}
    canvas = model.canvas.describe() if model.canvas is not None else "canvas not recorded"
    return Info("WI classifier", f"WI classifier: {svc.kernel} SVM, {len(svc.support_vectors_)} support vectors on "
                f"{model.feature_dim}-d features, fusion {model.fusion}; {canvas}",
                {"kernel": svc.kernel, "support_vectors": len(svc.support_vectors_), "feature_dim": model.feature_dim,
                 "fusion": model.fusion, "canvas": model.canvas.as_dict() if model.canvas else None,
                 "info": model.info, **extra})


def _results_pickle(path: Path, allow_pickle: bool) -> Info | None:
    if file_kind(path) != "a Python pickle":
        return None
    from sigcli.results import load_results, summarise

    folds = load_results(path)
    summary = summarise(folds)
    return Info("results pickle", f"results pickle: {len(folds)} folds, {_eer(summary)}", {"folds": len(folds),
                                                                                          "summary": summary})


# ---------------------------------------------------------------------------- helpers
def _sigset(path: Path, allow_pickle: bool) -> Info:
    from sigcli.data.sigset import SignatureSet

    sigset = SignatureSet.load(path, allow_pickle=allow_pickle)
    counts = sigset.counts()
    return Info("signature set", "signature set: " + sigset.summary(),
                {"users": len(sigset.users), **counts, "image_size": list(sigset.image_size), "dtype": str(sigset.x.dtype)})


def _metrics(path: Path) -> Info:
    """A run's metrics.csv: epochs, the best epoch (the last one marked best) and its scores."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    best = next((row for row in reversed(rows) if row.get("best") == "True"), None)
    scores = {k: float(v) for k, v in (best or {}).items() if k.startswith("val_") and _is_number(v)}
    summary = _count(len(rows), "epoch")
    if best is not None:
        shown = ", ".join(f"{k[4:]} {v:.4g}" for k, v in list(scores.items())[:3])
        summary += f", best epoch {best['epoch']} ({shown})"
    return Info("metrics", summary, {"epochs": len(rows), "best_epoch": int(best["epoch"]) if best else None,
                                     "best_metrics": scores, "columns": list(rows[0]) if rows else []})


def _manifest(path: Path) -> Info | None:
    manifest = _json(path)
    if not isinstance(manifest, dict) or not all(isinstance(e, dict) and "sha256" in e for e in manifest.values()):
        return None
    names = ", ".join(sorted(manifest)) or "none"
    return Info("download manifest", f"{len(manifest)} verified artefacts ({names})", {"artefacts": manifest})


def _onnx(path: Path) -> Info:
    try:
        import onnx
    except ImportError:
        return Info("onnx", "ONNX network (sig export); install onnx to read its inputs", {})
    model = onnx.load(str(path), load_external_data=False)

    def shapes(values) -> dict[str, list]:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    inputs, outputs = shapes(model.graph.input), shapes(model.graph.output)
    return Info("onnx", f"ONNX network (sig export): {inputs} → {outputs}, opset "
                f"{max(o.version for o in model.opset_import)}", {"inputs": inputs, "outputs": outputs})


def _event_tags(path: Path) -> list[str]:
    """The scalar tags of a TensorBoard event file (empty without the tensorboard package)."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        return []
    return sorted({value.tag for event in EventFileLoader(str(path)).Load() for value in event.summary.value})


def _count(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _eer(summary: dict | None) -> str:
    eer = (summary or {}).get("EER")
    return f"EER {eer['mean']:.2%} ± {eer['std']:.2%}" if isinstance(eer, dict) and "mean" in eer else "no EER"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def json_value(value: Any) -> Any:
    """``json.dumps``' fallback for the facts: numpy values as numbers and lists, the rest as text."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else str(value)


Reader = Callable[[Path, bool], "Info | None"]
_FOLDER_READERS: list[Reader] = [_run_folder, _parts_folder, _cache_folder, _events_folder, _sigset_folder]
_FILE_READERS: list[Reader] = [_by_name, _json_file, _npz, _torch_file, _wi_model, _results_pickle]

"""Results files: the reference's pickle (PROTOCOLS §7), a JSON summary beside it, safe reading.

``R.pkl`` is a list with one dict per fold, ``{'all_metrics': {...}, 'predictions':
{'genuinePreds', 'randomPreds', 'skilledPreds'}}``, made only of dicts, lists, floats and
numpy arrays, so the reference tools' users read it with plain ``pickle.load``. ``R.json``
holds what a reader needs without unpickling: per-fold metrics, mean ± std, the resolved
options and seed, versions (scikit-learn's too: it fits the SVMs) and sha256 fingerprints
of the inputs.

Reading a results file never runs code: :class:`SafeUnpickler` admits only builtin
containers and scalars and numpy arrays, scalars and dtypes.
"""

from __future__ import annotations

import builtins
import codecs
import hashlib
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from pydantic import BaseModel

from sigcli.errors import InputError
from sigcli.fileio import atomic_path
from sigcli.metrics import METRIC_KEYS
from sigcli.options import save_options

#: Metrics summarised over folds (mean ± std), with their display names.
SUMMARY_METRICS = {"EER": "EER (global)", "EER_userthresholds": "EER (user thresholds)", "FRR": "FRR",
                   "FAR_random": "FAR random", "FAR_skilled": "FAR skilled", "mean_AUC": "mean AUC"}
PREDICTION_KEYS = ("genuinePreds", "randomPreds", "skilledPreds")


def summarise(folds: list[dict]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over folds of each summary metric, as fractions."""
    summary = {}
    for key in SUMMARY_METRICS:
        values = np.array([float(fold["all_metrics"][key]) for fold in folds])
        summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return summary


def json_path(results_path: str | os.PathLike) -> Path:
    """Where the JSON summary of a results pickle lives: same name, ``.json``."""
    return Path(results_path).with_suffix(".json")


def save_results(folds: list[dict], path: str | os.PathLike, options: BaseModel, command: str,
                 inputs: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``path`` (the pickle) and its JSON summary; neither appears unless both are written."""
    path = Path(path)
    per_fold = [{key: _plain(fold["all_metrics"][key]) for key in METRIC_KEYS if key != "auc_list"}
                for fold in folds]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(folds, fh, protocol=4)
        save_options(options, json_path(path), command=command, results=path.name,
                     seed=getattr(options, "seed", None), summary=summarise(folds), per_fold=per_fold,
                     inputs=inputs, scikit_learn=sklearn.__version__)
    return path, json_path(path)


def load_results(path: str | os.PathLike) -> list[dict]:
    """Read a results pickle (ours or the reference tools') without running any code in it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no results file at {path}", "give the --save-path of 'sig wd' or 'sig wi'")
    try:
        with open(path, "rb") as fh:
            content = SafeUnpickler(fh).load()
    except _Refused as exc:
        raise InputError(f"{path} is not a results file: it refers to {exc}, which results never contain "
                         "(refused without running it)") from None
    except Exception as exc:  # a truncated or foreign file fails in many ways
        raise InputError(f"{path} is not a results file (pickle): {type(exc).__name__}: {exc}") from None
    return check_results(content, path)


def check_results(content: Any, path: Path | str) -> list[dict]:
    """The per-fold list, if ``content`` has the schema of PROTOCOLS §7."""
    if not isinstance(content, list) or not content:
        raise InputError(f"{path} is not a results file: expected a non-empty list of folds, "
                         f"got {type(content).__name__}")
    for index, fold in enumerate(content):
        metrics = fold.get("all_metrics") if isinstance(fold, dict) else None
        if not isinstance(metrics, dict):
            raise InputError(f"{path} is not a results file: fold {index} has no 'all_metrics' dict")
        for key in SUMMARY_METRICS:
            if not isinstance(metrics.get(key), (float, int, np.floating, np.integer)):
                raise InputError(f"{path} is not a results file: fold {index} lacks the number all_metrics['{key}']")
        predictions = fold.get("predictions")
        if predictions is not None and (not isinstance(predictions, dict)
                                        or any(not isinstance(predictions.get(k), list) for k in PREDICTION_KEYS)):
            raise InputError(f"{path} is not a results file: fold {index} has malformed 'predictions'")
    return content


class _Refused(pickle.UnpicklingError):
    pass


def _numpy_allowed() -> dict[tuple[str, str], Any]:
    """numpy's array, scalar and dtype rebuilders under the module names pickles use."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("_codecs", "encode")] = codecs.encode  # bytes in protocol-2 pickles
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str",
                 "bytes", "bytearray"):
        allowed[("builtins", name)] = getattr(builtins, name)
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """Unpickle plain data only: builtin containers and scalars, numpy arrays, scalars, dtypes.

    Any other global (``os.system``, ``builtins.eval``, a class) is refused before anything
    is called, so a malicious file cannot run code.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _numpy_allowed()
        try:
            return SafeUnpickler._allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def fingerprint(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's files (names and contents, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy numbers become floats, non-finite ones ``None``."""
    value = float(value)
    return value if math.isfinite(value) else None

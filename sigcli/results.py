"""Results files: the reference's pickle (docs/formats.md#results-files), a JSON summary beside it, safe reading.

``R.pkl`` is a list with one dict per fold, ``{'all_metrics': {...}, 'predictions':
{'genuinePreds', 'randomPreds', 'skilledPreds'}}``, made only of dicts, lists, floats and
numpy arrays, so the reference tools' users read it with plain ``pickle.load``. ``R.json``
holds what a reader needs without unpickling: per-fold metrics, mean ± std, the resolved
options and seed, versions (scikit-learn's too: it fits the SVMs) and the sha256 of the
inputs. Where a results file is expected, such a summary stands for the pickle beside it.

Reading a results file never runs code and never lets numpy rebuild what a file describes:
:class:`SafeUnpickler` admits only plain containers, numbers, strings and numeric arrays.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import sklearn
from pydantic import BaseModel

from sigcli.config.report import SUMMARY_METRICS
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_outputs
from sigcli.metrics import METRIC_KEYS
from sigcli.options import save_options

PREDICTION_KEYS = ("genuinePreds", "randomPreds", "skilledPreds")
_RESULTS_HINT = "give the results pickle: the --save-path of 'sig wd' or 'sig wi'"


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


def check_results_path(path: str | os.PathLike | None, overwrite: bool = False,
                       inputs: Iterable[str | os.PathLike | None] = (),
                       others: Iterable[tuple[str, str | os.PathLike | None]] = ()) -> None:
    """Refuse, before an evaluation starts, a ``--save-path`` whose pickle or JSON may not be
    written (and the evaluation's ``others`` outputs, as ``(flag, path)``)."""
    results = [("--save-path", path), ("--save-path", json_path(path))] if path is not None else []
    check_outputs([*results, *others], overwrite=overwrite, inputs=inputs)


def save_results(folds: list[dict], path: str | os.PathLike, options: BaseModel, command: str,
                 inputs: dict[str, Any], overwrite: bool = False, **extra: Any) -> tuple[Path, Path]:
    """Write ``path`` (the pickle) and its JSON summary; neither appears unless both are written.

    ``extra`` adds the command's own fields to the JSON. Existing files are refused unless ``overwrite``.
    """
    path = Path(path)
    per_fold = [{key: _plain(fold["all_metrics"][key]) for key in METRIC_KEYS if key != "auc_list"}
                for fold in folds]
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(folds, fh, protocol=4)
        save_options(options, json_path(path), overwrite=overwrite, command=command, results=path.name,
                     seed=getattr(options, "seed", None), summary=summarise(folds), per_fold=per_fold,
                     inputs=inputs, scikit_learn=sklearn.__version__, **extra)
    return path, json_path(path)


def load_results(path: str | os.PathLike) -> list[dict]:
    """Read a results pickle (ours or the reference tools') without running any code in it."""
    path = results_pickle(path)
    try:
        with open(path, "rb") as fh:
            content = load_plain(fh)
    except _Refused as exc:
        raise InputError(f"{path} is not a results file: it refers to {exc}, which results never contain "
                         "(refused without running it)") from None
    except Exception as exc:  # a truncated or foreign file fails in many ways
        raise InputError(f"{path} is not a results file (pickle): {type(exc).__name__}: {exc}") from None
    return check_results(content, path)


def results_pickle(path: str | os.PathLike) -> Path:
    """``path`` if it is a file other than JSON; for the JSON summary of a results pickle, that pickle."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no results file at {path}", _RESULTS_HINT)
    with open(path, "rb") as fh:
        if fh.read(64).lstrip()[:1] != b"{":
            return path
    try:
        summary = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError):
        return path  # not JSON after all: read as a pickle, which says what is wrong
    pickle_name = summary.get("results") if isinstance(summary, dict) else None
    if not isinstance(pickle_name, str) or Path(pickle_name).name != pickle_name:
        raise InputError(f"{path} is a JSON file, not a results pickle", _RESULTS_HINT)
    pickle_path = path.with_name(pickle_name)
    if not pickle_path.is_file():
        raise InputError(f"{path} is the JSON summary of {pickle_name}, which is not beside it", _RESULTS_HINT)
    return pickle_path


def check_results(content: Any, path: Path | str) -> list[dict]:
    """The per-fold list, if ``content`` has the schema of docs/formats.md#results-pickle."""
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
        if predictions is not None and not all(_is_scores(entry) for k in PREDICTION_KEYS for entry in predictions[k]):
            raise InputError(f"{path} is not a results file: fold {index} has 'predictions' that are not "
                             "arrays of scores")
    return content


def _is_scores(entry: Any) -> bool:
    """One user's scores: a real-valued array, or a flat list of numbers."""
    if isinstance(entry, np.ndarray):
        return entry.dtype.kind in "biuf"
    if isinstance(entry, (list, tuple)):
        return all(isinstance(v, (int, float, np.integer, np.floating)) for v in entry)
    return isinstance(entry, (int, float, np.integer, np.floating))


class _Refused(pickle.UnpicklingError):
    pass


# The numeric dtypes a results array or scalar may have: booleans, integers, floats, complex.
_NUMERIC_CODE = re.compile(r"b1|[iu][1248]|f[248]|c(?:8|16)")
_MAX_DIMS = 32


class _NDArrayClass:
    """Stands in for ``numpy.ndarray`` in a pickle: only :func:`_reconstruct` may take it.
    Called itself, it would make an array over any buffer, offset and strides."""

    def __call__(self, *args: Any) -> None:
        raise _Refused("numpy.ndarray called on a raw buffer")


_NDARRAY = _NDArrayClass()


class _DType:
    """Records ``numpy.dtype(code, align, copy)`` and its state, and makes the dtype only if it
    is a plain numeric one (numpy's own rebuilder would accept any flags, object dtypes too)."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        self.code, self.byteorder = code, "="

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[2:5] == (None, None, None)
                and state[1] in ("<", ">", "|", "=")):
            raise _Refused("a numpy dtype with fields or sub-arrays")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        if not isinstance(self.code, str) or _NUMERIC_CODE.fullmatch(self.code) is None:
            raise _Refused(f"a numpy array or scalar of dtype {self.code!r} (only numbers are read)")
        return np.dtype(self.code if self.byteorder in "|=" else self.byteorder + self.code)


def _dtype_of(value: Any) -> np.dtype:
    if not isinstance(value, _DType):
        raise _Refused("a numpy array or scalar without a plain dtype")
    return value.resolve()


def _from_bytes(data: Any, dtype: np.dtype, shape: Any, fortran: bool = False) -> np.ndarray:
    """A new array of ``shape`` from exactly the bytes it needs."""
    if isinstance(data, str):  # protocol 0 to 2 pickles of Python 2 keep raw bytes in str
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)):
        raise _Refused("a numpy array whose data are not raw bytes")
    if not (isinstance(shape, tuple) and len(shape) <= _MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)):
        raise _Refused(f"a numpy array of shape {shape!r}")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise _Refused(f"a numpy array of shape {shape} and dtype {dtype} with {len(data)} bytes of data")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy(order="K")


class _Array:
    """Stands in for the empty array numpy's ``_reconstruct`` makes; its pickled state is then
    checked (:func:`_from_bytes`) and the real array replaces it after loading."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4 and isinstance(state[2], bool)):
            raise _Refused("a numpy array with an unknown state")
        shape, dtype, fortran, data = state
        self.array = _from_bytes(data, _dtype_of(dtype), shape, fortran)


def _reconstruct(cls: Any, shape: Any = None, typecode: Any = None) -> _Array:
    if cls is not _NDARRAY:
        raise _Refused("an array subclass")
    return _Array()


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    return _from_bytes(data, _dtype_of(dtype), ())[()]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise _Refused(f"a numpy array in order {order!r}")
    return _from_bytes(buffer, _dtype_of(dtype), shape, order == "F")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``: how protocol-2 pickles hold an empty byte string (an empty array's data)."""
    if args:
        raise _Refused("bytes() with arguments")
    return b""


def _latin1(text: Any, encoding: Any = None) -> bytes:
    """``_codecs.encode(text, 'latin1')``: how protocol-2 pickles hold bytes; no other codec."""
    if type(text) is not str or encoding != "latin1":
        raise _Refused("_codecs.encode with another codec than latin1")
    return text.encode("latin1")


def _stand_ins() -> dict[tuple[str, str], Any]:
    """What a results pickle may name, under the module names numpy 1 and 2 write."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _DType,
                                           ("_codecs", "encode"): _latin1, ("builtins", "bytes"): _empty_bytes,
                                           ("__builtin__", "bytes"): _empty_bytes}
    for module in ("numpy.core", "numpy._core"):
        allowed[(f"{module}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{module}.multiarray", "scalar")] = _scalar
        allowed[(f"{module}.numeric", "_frombuffer")] = _frombuffer
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """Unpickle plain data only: lists, dicts, tuples, numbers, strings, None, and numeric
    numpy arrays and scalars.

    numpy's own rebuilders are never called: each name a pickle may use maps to a stand-in
    that only records its arguments, and arrays are then made here from a checked numeric
    dtype and exactly the bytes their shape needs. Any other name (``os.system``, a class,
    an object dtype) is refused before anything is called. Use :func:`load_plain`.
    """

    _allowed = _stand_ins()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return SafeUnpickler._allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_plain(fh) -> Any:
    """The content of a pickle of plain data (see :class:`SafeUnpickler`), arrays made real."""
    content = SafeUnpickler(fh).load()
    try:
        return _plain_data(content, {})
    except RecursionError:
        raise _Refused("data nested too deeply") from None


_LEAVES = (str, bytes, int, float, complex, bool, type(None))


def _plain_data(value: Any, seen: dict[int, Any]) -> Any:
    """``value`` with every array stand-in replaced by its array; anything else is refused."""
    if type(value) in _LEAVES or (isinstance(value, (np.ndarray, np.generic)) and type(value).__module__ == "numpy"):
        return value
    if id(value) in seen:
        return seen[id(value)]
    if isinstance(value, _Array):
        if value.array is None:
            raise _Refused("a numpy array without its data")
        return value.array
    if type(value) is list:
        seen[id(value)] = value
        value[:] = [_plain_data(item, seen) for item in value]
        return value
    if type(value) is dict:
        seen[id(value)] = value
        if any(type(key) not in _LEAVES for key in value):
            raise _Refused("a dict with keys other than strings and numbers")
        for key in value:
            value[key] = _plain_data(value[key], seen)
        return value
    if type(value) is tuple:
        seen[id(value)] = result = tuple(_plain_data(item, seen) for item in value)
        return result
    raise _Refused(f"a {type(value).__name__}" if not isinstance(value, _DType) else "a bare numpy dtype")


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy numbers become floats, non-finite ones ``None``."""
    value = float(value)
    return value if math.isfinite(value) else None

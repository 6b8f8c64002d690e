"""Results files and `sig report`: safe reading, reference pickles, formats, sorting, plots."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from evaluation_data import option_names
from sigcli.config.evaluation import WDOptions
from sigcli.config.report import SUMMARY_METRICS, ReportOptions
from sigcli.errors import InputError
from sigcli.metrics import compute_metrics
from sigcli.report import comparison_rows, load_runs, sort_rows
from sigcli.results import load_results, save_results, summarise


def fake_folds(seed: int, n_folds: int = 3, shift: float = 1.0) -> list[dict]:
    """Results as the reference tools pickle them: numpy float64 metrics, float64 score arrays."""
    rng = np.random.RandomState(seed)
    folds = []
    for _ in range(n_folds):
        genuine = [rng.randn(5) + shift for _ in range(4)]
        random = [rng.randn(5) - 2 * shift for _ in range(4)]
        skilled = [rng.randn(5) for _ in range(4)]
        metrics = compute_metrics(genuine, random, skilled)
        metrics = {k: (v if k == "auc_list" else np.float64(v)) for k, v in metrics.items()}
        folds.append({"all_metrics": metrics, "predictions": {"genuinePreds": genuine, "randomPreds": random,
                                                              "skilledPreds": skilled}})
    return folds


@pytest.fixture
def runs(tmp_path):
    paths = []
    for name, seed, shift, protocol in (("good", 0, 2.0, 4), ("weak", 1, 0.5, 2)):
        path = tmp_path / f"{name}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(fake_folds(seed, shift=shift), fh, protocol=protocol)
        paths.append(path)
    return paths


class WritesFile:
    """What an attacker would pickle: unpickling it runs a shell command."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, cli):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"all_metrics": WritesFile(target)}]))
    result = cli("report", str(evil))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "refused without running it" in result.stderr
    assert "system" in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "is not a results file \\(pickle\\)"),
    (pickle.dumps({"EER": 0.1}), "expected a non-empty list of folds"),
    (pickle.dumps([{"all_metrics": {"EER": 0.1}}]), "lacks the number all_metrics\\['EER_userthresholds'\\]"),
    (pickle.dumps([{"all_metrics": {k: 0.1 for k in SUMMARY_METRICS}, "predictions": {"genuinePreds": 1}}]),
     "malformed 'predictions'"),
])
def test_files_that_are_not_results_are_one_clear_error(tmp_path, content, message, cli):
    path = tmp_path / "r.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_results(path)
    assert cli("report", str(path)).exit_code == 2


def test_reference_pickles_of_any_protocol_read_back_equal(runs):
    with open(runs[1], "rb") as fh:
        plain = pickle.load(fh)
    safe = load_results(runs[1])  # written with protocol 2
    assert safe[0]["all_metrics"]["EER"] == plain[0]["all_metrics"]["EER"]
    assert np.array_equal(safe[2]["predictions"]["skilledPreds"][3], plain[2]["predictions"]["skilledPreds"][3])


def test_rows_are_percent_mean_and_population_std(runs):
    rows = comparison_rows(load_runs(runs))
    eers = [fold["all_metrics"]["EER"] for fold in fake_folds(0, shift=2.0)]
    assert rows[0]["run"] == "good" and rows[0]["folds"] == 3
    assert rows[0]["metrics"]["EER"]["mean"] == pytest.approx(100 * np.mean(eers))
    assert rows[0]["metrics"]["EER"]["std"] == pytest.approx(100 * np.std(eers))
    assert summarise(load_results(runs[0]))["EER"]["mean"] == pytest.approx(np.mean(eers))


def test_sorting_puts_the_best_first(runs):
    rows = comparison_rows(load_runs(runs[::-1]))
    assert [r["run"] for r in sort_rows(rows, "EER")] == ["good", "weak"]
    assert [r["run"] for r in sort_rows(rows, "mean_AUC")] == ["good", "weak"]  # higher AUC first
    assert [r["run"] for r in sort_rows(rows, None)] == ["weak", "good"]
    with pytest.raises(InputError, match="cannot sort by 'speed'"):
        sort_rows(rows, "speed")


def test_formats(runs, cli):
    as_csv = cli("report", *map(str, runs), "--format", "csv", "--sort-by", "FRR")
    assert as_csv.exit_code == 0
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["run"] for row in table] == ["good", "weak"] and float(table[0]["EER"]) >= 0
    assert "FAR_skilled_std" in table[0]
    as_json = json.loads(cli("report", *map(str, runs), "--json").stdout)
    assert [row["run"] for row in as_json] == ["good", "weak"] and as_json[1]["metrics"]["mean_AUC"]["mean"] <= 100
    assert as_json == json.loads(json.dumps(comparison_rows(load_runs(runs))))
    markdown = cli("report", *map(str, runs), "--format", "markdown").stdout.splitlines()
    assert markdown[0].startswith("| run | folds | EER (global) (%)") and markdown[1].startswith("|---|")
    assert len(markdown) == 4 and " ± " in markdown[2]
    rich = cli("report", *map(str, runs))
    assert rich.exit_code == 0 and "good" in rich.stdout and "mean ± std" in rich.stdout


def test_plot_writes_an_image_and_rejects_unknown_suffixes(runs, tmp_path, cli):
    out = tmp_path / "plots" / "cmp.png"
    result = cli("report", *map(str, runs), "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    for suffix in ("txt", "jpg"):
        bad = cli("report", str(runs[0]), "--plot", str(tmp_path / f"cmp.{suffix}"))
        assert bad.exit_code == 2 and "end the file name in .png, .pdf or .svg" in bad.stderr
        assert bad.stdout == ""  # refused before the table is printed


def test_a_plot_without_scores_is_refused_before_the_table(tmp_path, cli):
    folds = fake_folds(0)
    for fold in folds:
        del fold["predictions"]
    path = tmp_path / "no-scores.pkl"
    path.write_bytes(pickle.dumps(folds))
    result = cli("report", str(path), "--plot", str(tmp_path / "cmp.png"))
    assert result.exit_code == 2 and result.stdout == ""
    assert "none of the results files has predictions to plot" in result.stderr
    assert not (tmp_path / "cmp.png").exists()


def test_json_and_another_format_are_refused(runs, cli):
    result = cli("report", str(runs[0]), "--json", "--format", "csv")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --json and --format csv both choose the output (give one of them)"


def test_a_json_summary_stands_for_the_pickle_beside_it(tmp_path, cli):
    folds = fake_folds(2)
    options = WDOptions(features_path="f.npz", workers=1)
    save_results(folds, tmp_path / "wd.pkl", options, "wd", {})
    from_json, from_pickle = (cli("report", str(tmp_path / name), "--json") for name in
                              ("wd.json", "wd.pkl"))
    assert from_json.exit_code == 0, from_json.output
    assert json.loads(from_json.stdout) == json.loads(from_pickle.stdout)
    assert json.loads(from_json.stdout)[0]["command"] == "wd"


@pytest.mark.parametrize("content, message", [
    ('{"command": "wd", "results": "gone.pkl"}', "is the JSON summary of gone.pkl, which is not beside it"),
    ('{"name": "something else"}', "is a JSON file, not a results pickle"),
    ('{"results": "../elsewhere/r.pkl"}', "is a JSON file, not a results pickle"),
])
def test_a_json_file_without_its_pickle_is_one_line(tmp_path, content, message, cli):
    (tmp_path / "r.json").write_text(content)
    result = cli("report", str(tmp_path / "r.json"))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert message in line and "give the results pickle" in line and "Unpickling" not in line


def test_help_names_every_option(cli):
    result = cli("report", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in option_names(ReportOptions):
        assert re.search(rf"(?<![\w-]){name}(?![\w-])", result.stdout), name


def test_runs_with_the_same_file_name_keep_their_folder(tmp_path, runs):
    (tmp_path / "b").mkdir()
    copy = tmp_path / "b" / "good.pkl"
    copy.write_bytes(runs[0].read_bytes())
    names = [run.name for run in load_runs([runs[0], copy])]
    assert names == [f"{tmp_path.name}/good", "b/good"]


# ---------------------------------------------------------------------------- the safe reader, attacked
class Reduces:
    """Pickles as ``function(*args)`` (then ``__setstate__(state)``): how a hostile file is written."""

    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _numpy_functions():
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    return multiarray._reconstruct, multiarray.scalar


def _object_dtype_with_cleared_flags():
    """numpy would treat the scalar's 8 bytes below as a pointer to a Python object (SIGSEGV)."""
    _, scalar = _numpy_functions()
    dtype = Reduces(np.dtype, ("O8", False, True), (3, "|", None, None, None, 8, 8, 0))
    return Reduces(scalar, (dtype, b"\x41" * 8))


def _array(dtype, shape, data):
    reconstruct, _ = _numpy_functions()
    return Reduces(reconstruct, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, data))


HOSTILE = {
    "object dtype, flags cleared": (_object_dtype_with_cleared_flags, "dtype 'O8'"),
    "raw buffer shorter than its shape": (lambda: _array(np.dtype("f8"), (1 << 20,), b"\0" * 8), "8 bytes of data"),
    "object array": (lambda: _array(np.dtype("O"), (2,), [1, 2]), "dtype 'O8'"),
    "structured dtype": (lambda: _array(np.dtype([("a", "<f8")]), (1,), b"\0" * 8), "dtype with fields"),
    "array subclass": (lambda: Reduces(_numpy_functions()[0], (np.matrix, (0,), b"b")), "numpy.matrix"),
    "ndarray over a raw buffer": (lambda: Reduces(np.ndarray, ((1 << 20,), "f8", b"\0" * 8, 0, (0,))),
                                  "numpy.ndarray called on a raw buffer"),
}


def _hostile_file(tmp_path, case: str):
    folds = fake_folds(0)
    folds[0]["predictions"]["genuinePreds"][0] = HOSTILE[case][0]()
    path = tmp_path / f"{case.replace(' ', '-').replace(',', '')}.pkl"
    path.write_bytes(pickle.dumps(folds, protocol=4))
    return path


def _check_refusal(case: str, exit_code: int, stderr: str) -> None:
    assert exit_code == 2, (case, exit_code, stderr[-2000:])  # a segmentation fault would be -11
    [line] = stderr.strip().splitlines()
    assert line.startswith("error:") and "refused without running it" in line and HOSTILE[case][1] in line, line


CRASHERS = ("object dtype, flags cleared", "ndarray over a raw buffer")  # what made numpy read wild memory


def test_pickles_that_crashed_numpy_are_refused_by_sig_report_in_its_own_process(tmp_path):
    """`sig report --plot` in separate processes (run together), so a segfault fails the test only."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    running = {case: subprocess.Popen([sys.executable, "-m", "sigcli", "report", str(_hostile_file(tmp_path, case)),
                                       "--plot", str(tmp_path / "p.png")], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": root})
               for case in CRASHERS}
    for case, process in running.items():
        _check_refusal(case, process.wait(timeout=600), process.stderr.read())
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("case", [case for case in HOSTILE if case not in CRASHERS])
def test_other_hostile_numpy_pickles_are_refused_in_one_line(tmp_path, case, cli):
    result = cli("report", str(_hostile_file(tmp_path, case)), "--plot", str(tmp_path / "p.png"))
    _check_refusal(case, result.exit_code, result.stderr)
    assert not (tmp_path / "p.png").exists()


def _same(a, b) -> bool:
    """Equal values of equal types, dtypes (in any byte order) and memory order too."""
    if isinstance(a, np.ndarray):
        return (type(b) is np.ndarray and a.dtype.str[1:] == b.dtype.str[1:] and a.shape == b.shape
                and a.flags.f_contiguous == b.flags.f_contiguous and np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_numeric_array_and_scalar_of_a_results_file_reads_back_exactly(tmp_path, protocol, cli):
    folds = fake_folds(1)
    folds[0]["all_metrics"]["extra"] = {
        "scalars": [np.float64(0.25), np.float32(-1.5), np.int64(-7), np.uint8(200), np.bool_(True),
                    np.complex128(1 - 2j), np.float64("nan")],
        "arrays": [np.array(3.5), np.arange(6, dtype=np.int32).reshape(2, 3), np.asfortranarray(np.eye(3)),
                   np.arange(4, dtype=">f8"), np.arange(4, dtype="<u2"), np.zeros((0, 3)), np.array([True, False]),
                   np.array([1 + 1j], dtype=np.complex64), np.arange(5, dtype=np.float16)],
        "plain": (1, 2.5, "text", None, b"bytes", [None]),
    }
    folds[1]["predictions"]["skilledPreds"][0] = np.arange(4, dtype=">f8")  # big-endian scores still plot
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps(folds, protocol=protocol))
    with open(path, "rb") as fh:
        plain = pickle.load(fh)
    assert _same(plain, load_results(path))
    plotted = cli("report", str(path), "--plot", str(tmp_path / "r.png"))
    assert plotted.exit_code == 0, plotted.output

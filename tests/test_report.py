"""Results files and `sig report`: safe reading, reference pickles, formats, sorting, plots."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from sigcli.cli.app import app
from sigcli.errors import InputError
from sigcli.metrics import compute_metrics
from sigcli.report import comparison_rows, load_runs, sort_rows
from sigcli.results import SUMMARY_METRICS, load_results, summarise

runner = CliRunner()


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


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"all_metrics": WritesFile(target)}]))
    result = runner.invoke(app, ["report", str(evil)])
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
def test_files_that_are_not_results_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "r.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_results(path)
    assert runner.invoke(app, ["report", str(path)]).exit_code == 2


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


def test_formats(runs):
    as_csv = runner.invoke(app, ["report", *map(str, runs), "--format", "csv", "--sort-by", "FRR"])
    assert as_csv.exit_code == 0
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["run"] for row in table] == ["good", "weak"] and float(table[0]["EER"]) >= 0
    assert "FAR_skilled_std" in table[0]
    as_json = json.loads(runner.invoke(app, ["report", *map(str, runs), "--format", "json"]).stdout)
    assert as_json[1]["metrics"]["mean_AUC"]["mean"] <= 100
    markdown = runner.invoke(app, ["report", *map(str, runs), "--format", "markdown"]).stdout.splitlines()
    assert markdown[0].startswith("| run | folds | EER (global) (%)") and markdown[1].startswith("|---|")
    assert len(markdown) == 4 and " ± " in markdown[2]
    rich = runner.invoke(app, ["report", *map(str, runs)])
    assert rich.exit_code == 0 and "good" in rich.stdout and "mean ± std" in rich.stdout


def test_plot_writes_an_image_and_rejects_unknown_suffixes(runs, tmp_path):
    out = tmp_path / "plots" / "cmp.png"
    result = runner.invoke(app, ["report", *map(str, runs), "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    bad = runner.invoke(app, ["report", str(runs[0]), "--plot", str(tmp_path / "cmp.txt")])
    assert bad.exit_code == 2 and "end the file name in .png" in bad.stderr


def test_runs_with_the_same_file_name_keep_their_folder(tmp_path, runs):
    (tmp_path / "b").mkdir()
    copy = tmp_path / "b" / "good.pkl"
    copy.write_bytes(runs[0].read_bytes())
    names = [run.name for run in load_runs([runs[0], copy])]
    assert names == [f"{tmp_path.name}/good", "b/good"]

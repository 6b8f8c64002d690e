"""`sig quickstart --fast` end to end: the README's main job on synthetic data."""

import json
import pickle
import re

import pytest

from conftest import run_sig
from sigcli.config.quickstart import QuickstartOptions
from sigcli.quickstart import plan_stages

@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    result = run_sig("quickstart", "--fast", "--logdir", workdir)
    assert result.exit_code == 0, result.output
    return workdir, result


def test_quickstart_writes_every_artefact(quickstart_run):
    workdir, _ = quickstart_run
    for stage in plan_stages(QuickstartOptions(logdir=workdir, fast=True)):
        for output in stage.outputs:
            assert output.exists(), f"{stage.name} did not write {output}"
    for who in ("teacher", "student"):
        assert (workdir / "runs" / who / "model_last.pth").exists()
        assert (workdir / "runs" / who / "config.json").exists()
    assert (workdir / "results" / "report.png").stat().st_size > 10_000


def test_quickstart_numbers_show_the_method_working(quickstart_run):
    workdir, result = quickstart_run
    for protocol in ("wd", "wi"):
        for who in ("teacher", "student"):
            with open(workdir / "results" / f"{protocol}-{who}.pkl", "rb") as fh:
                folds = pickle.load(fh)
            summary = json.loads((workdir / "results" / f"{protocol}-{who}.json").read_text())["summary"]
            assert len(folds) == 3
            assert summary["EER"]["mean"] < 0.5, (protocol, who, summary)
            assert summary["FAR_random"]["mean"] <= summary["FAR_skilled"]["mean"], (protocol, who, summary)
    assert "these features do not separate writers" not in result.output.split("sig report")[-1].split("untrained")[0]
    untrained = json.loads((workdir / "results" / "wd-untrained.json").read_text())
    assert len(untrained["per_fold"]) == 3 and untrained["inputs"]["features"]["source"].endswith("untrained-seed-0")
    # Training helps: the teacher beats its architecture with untrained weights on held-out writers.
    teacher = json.loads((workdir / "results" / "wd-teacher.json").read_text())["summary"]
    assert teacher["EER"]["mean"] < untrained["summary"]["EER"]["mean"], (teacher, untrained["summary"])
    for protocol in ("wd", "wi"):
        for who in ("teacher", "student"):
            assert re.search(rf"{protocol}: {who} [\d.]+ ± [\d.]+ % vs untrained [\d.]+ ± [\d.]+ % skilled EER — "
                             r"lower in [0-3] of 3 folds", result.output), (protocol, who)


def test_quickstart_prints_the_equivalent_commands(quickstart_run):
    _, result = quickstart_run
    for command in ("sig synth --layout gpds", "sig preprocess --dataset gpds", "sig train ", "--model signet-thin",
                    "sig distill ", "sig extract --model-path", "sig wd --features-path", "sig wi --features-path",
                    "sig report"):
        assert command in result.output.replace("\n", " ")


def test_quickstart_rerun_reuses_every_stage(quickstart_run):
    workdir, _ = quickstart_run
    before = {p: p.stat().st_mtime_ns for p in (workdir / "results").iterdir()}
    again = run_sig("quickstart", "--fast", "--logdir", workdir)
    assert again.exit_code == 0, again.output
    stages = plan_stages(QuickstartOptions(logdir=workdir, fast=True))
    assert again.output.count("reusing") == len(stages)
    assert {p: p.stat().st_mtime_ns for p in (workdir / "results").iterdir()} == before


def test_quickstart_refuses_a_run_folder_of_another_plan(quickstart_run):
    workdir, _ = quickstart_run
    result = run_sig("quickstart", "--logdir", workdir)
    assert result.exit_code == 2
    assert "other options" in result.output


def test_trained_networks_are_compared_with_the_untrained_one_fold_by_fold():
    from sigcli.quickstart import against_untrained
    from sigcli.report import Run

    def run(name: str, eers: list[float]) -> Run:
        return Run(name, None, [{"all_metrics": {"EER": eer}} for eer in eers])

    runs = [run("wd-teacher", [0.1, 0.3, 0.2]), run("wd-student", [0.2, 0.2, 0.2]), run("wd-untrained", [0.2, 0.25, 0.3]),
            run("wi-teacher", [0.1, 0.1, 0.1]), run("wi-student", [0.4, 0.4, 0.4]), run("wi-untrained", [0.2, 0.2, 0.2])]
    rows = {(row["protocol"], row["network"]): row for row in against_untrained(runs)}
    assert rows["wd", "teacher"]["wins"] == 2 and rows["wd", "teacher"]["eer"] == pytest.approx([10, 30, 20])
    assert rows["wd", "student"]["wins"] == 2  # a tie (the first fold) is not a win
    assert rows["wi", "teacher"]["wins"] == 3 and rows["wi", "student"]["wins"] == 0
    assert rows["wd", "student"]["untrained"] == pytest.approx([20, 25, 30])

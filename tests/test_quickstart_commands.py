"""`sig quickstart` prints, for each stage, the command that runs exactly that stage's options."""

from __future__ import annotations

import importlib
import shlex

import pytest

from sigcli.cli.app import COMMANDS
from sigcli.cli.derive import parse
from sigcli.config.quickstart import QuickstartOptions
from sigcli.quickstart import plan_stages


@pytest.mark.parametrize("fast", [True, False])
def test_every_printed_command_parses_back_to_the_options_the_stage_runs(fast, tmp_path):
    stages = plan_stages(QuickstartOptions(logdir=tmp_path / "qs", fast=fast, seed=3, workers=1, device="cpu"))
    modules = dict(COMMANDS)
    for stage in stages:
        words = shlex.split(stage.command_line)
        assert words[:2] == ["sig", stage.command]
        model = importlib.import_module(f"sigcli.cli.{modules[stage.command]}").main.options_model
        assert type(stage.options) is model, stage.name
        assert parse(model, words[2:]) == stage.options, stage.name


def test_the_printed_commands_carry_what_makes_the_run(tmp_path):
    lines = {stage.name: stage.command_line for stage in plan_stages(
        QuickstartOptions(logdir=tmp_path / "qs", fast=True, seed=3, workers=1, device="cpu"))}
    assert "--seed 3" in lines["synth gpds"] and "--seed 4" in lines["synth mcyt"]   # other writers
    assert all("--device cpu" in lines[name] for name in ("train teacher", "distill student", "extract teacher"))
    assert all("--overwrite" in line for line in lines.values())
    assert "--model signet-thin" in lines["extract untrained"] and "--model-path" not in lines["extract untrained"]
    assert {"wd untrained", "wi untrained"} <= set(lines)

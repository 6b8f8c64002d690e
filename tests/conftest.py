"""Fixtures shared by the test files: synthetic raw datasets and a CLI runner.

- ``synth_dataset(layout, users=3, genuine=4, skilled=2, simple=None, seed=0, first_user=None)``
  returns a folder of synthetic raw images in ``layout``'s real layout (see ``sig synth``),
  written once per session and arguments. Shared: treat it as read-only (copy it to edit).
- ``cli("datasets", "--json", env={...})`` runs ``sig`` in-process and returns the Result
  (``exit_code``, ``output``, ``stdout``, ``stderr``). It is :func:`run_sig`, which module-level
  helpers import (``from conftest import run_sig``).

The test networks of ``training_data`` are registered while each test runs (its fixtures'
set-up and tear-down included) and unregistered after it.

Every test sees the dataset loaders this checkout's pyproject.toml registers, whatever the
installed metadata (written when sigcli was installed, maybe from an older checkout) says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner, Result

from sigcli.data.synth import synthesize


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Each test, with the set-up and tear-down of its fixtures (module-scoped ones too), sees the
    test networks registered; none stays registered after it."""
    from training_data import networks_registered

    with networks_registered():
        yield

@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    made: dict[tuple, Path] = {}

    def make(layout: str, users: int = 3, genuine: int | None = 4, skilled: int | None = 2,
             simple: int | None = None, seed: int = 0, first_user: int | None = None) -> Path:
        key = (layout, users, genuine, skilled, simple, seed, first_user)
        if key not in made:
            out = tmp_path_factory.mktemp(f"synth-{layout}")
            synthesize(layout, out, users=users, genuine=genuine, skilled=skilled, simple=simple, seed=seed,
                       first_user=first_user)
            made[key] = out
        return made[key]

    return make


def run_sig(*args: object, env: dict[str, str] | None = None) -> Result:
    """Run ``sig ARGS`` in-process; the one way tests call the CLI (module-level helpers import it)."""
    from sigcli.cli.app import app

    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_sig

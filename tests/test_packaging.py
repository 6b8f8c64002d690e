"""The wheel holds our two packages and nothing else, and declares what the code imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools")
    source = tmp_path_factory.mktemp("src") / "sig"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                                ".pytest_cache", "sig-quickstart", ".venv"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    return zipfile.ZipFile(next(out.glob("sigcli-*.whl")))


def test_the_wheel_holds_only_our_packages(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"sigcli", "sigcli_datasets"}
    names = set(wheel.namelist())
    assert "sigcli/cli/app.py" in names and "sigcli_datasets/mcyt.py" in names


def test_the_wheel_declares_its_version_licence_and_imports(wheel):
    from sigcli import __version__

    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Version: {__version__}\n" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in wheel.namelist())
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = {r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower() for r in requires
               if "extra ==" not in r}
    assert {"pillow", "threadpoolctl", "torch", "numpy", "typer", "pydantic"} <= runtime
    assert "torchvision" not in runtime    # only tests and benchmarks use it

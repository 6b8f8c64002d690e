"""Dataset plugin discovery through entry points, `sig datasets`, and the example plugin.

Third-party distributions are made visible the way pip would leave them: a
``NAME-VERSION.dist-info`` folder with ``entry_points.txt`` on ``sys.path``, which
``importlib.metadata`` discovers. Nothing is installed into the environment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sigcli.data import plugins
from sigcli.data.loader import DatasetLoader
from sigcli.data.sigset import SignatureSet
from sigcli.errors import PluginError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "sigcli-example-dataset"
BUILT_IN = ["bhsig-bengali", "bhsig-hindi", "brazilian", "brazilian-nosimple", "cedar", "folder", "gpds",
            "gpds-synthetic", "mcyt"]


def add_distribution(monkeypatch, where: Path, name: str, entry_points: dict[str, str],
                     modules: dict[str, str] | None = None) -> None:
    """Make a distribution with these entry points (and module sources) importable and discoverable."""
    dist_info = where / f"{name.replace('-', '_')}-1.2.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\n{lines}")
    for module, source in (modules or {}).items():
        (where / f"{module}.py").write_text(source)
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(where))


@pytest.fixture
def example_plugin(monkeypatch, tmp_path) -> str:
    """The example distribution, its entry points read from its own pyproject.toml."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    add_distribution(monkeypatch, tmp_path / "site", project["name"],
                     project["entry-points"][plugins.ENTRY_POINT_GROUP])
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return project["name"]


@pytest.fixture
def broken_plugins(monkeypatch, tmp_path) -> None:
    """Plugins that raise or exit on import, one that is not a loader, one left abstract."""
    add_distribution(monkeypatch, tmp_path / "site", "sigcli-broken", {
        "exploding": "sigcli_test_exploding:Loader",
        "exiting": "sigcli_test_exiting:Loader",
        "notaloader": "sigcli_test_misc:NOT_A_LOADER",
        "abstract": "sigcli_test_misc:Abstract",
    }, modules={
        "sigcli_test_exploding": "raise RuntimeError('boom at import')\n",
        "sigcli_test_exiting": "import sys\nsys.exit(3)\n",
        "sigcli_test_misc": ("from sigcli.data.loader import DatasetLoader\n"
                             "NOT_A_LOADER = 42\n"
                             "class Abstract(DatasetLoader):\n"
                             "    name = 'abstract'\n    canvas_size = (10, 10)\n"
                             "    genuine_per_user = skilled_per_user = 1\n"),
    })


def test_built_in_loaders_are_entry_points_of_sigcli():
    records = {p.name: p for p in plugins.list_plugins()}
    assert set(BUILT_IN) <= set(records)
    for name in BUILT_IN:
        record = records[name]
        assert (record.status, record.distribution, record.error) == ("ok", "sigcli", None)
        assert issubclass(record.loader, DatasetLoader) and record.loader.name == name
    assert plugins.get_loader("gpds").canvas_size == (952, 1360)


def test_unknown_name_lists_what_exists():
    with pytest.raises(PluginError) as raised:
        plugins.get_loader("gpds960")
    assert "no dataset loader named 'gpds960'" in str(raised.value)
    assert "available: bhsig-bengali, bhsig-hindi, brazilian, brazilian-nosimple, cedar, folder, gpds" \
        in str(raised.value)


def test_example_third_party_plugin_is_discovered_and_reads_its_data(example_plugin, tmp_path, cli):
    from sigcli_example_dataset import write_example

    result = cli("datasets", "--json")
    assert result.exit_code == 0
    toy = next(r for r in json.loads(result.stdout) if r["name"] == "toy")
    assert toy["distribution"] == example_plugin and toy["status"] == "ok"
    assert toy["canvas_size"] == [600, 900]

    loader = plugins.get_loader("toy")(write_example(tmp_path / "toy", users=2))
    assert loader.users() == [1, 2]
    assert len(loader.genuine_files(2)) == 5 and len(loader.skilled_files(2)) == 3

    done = cli("preprocess", "--dataset", "toy", "--raw-path", tmp_path / "toy", "--save-path", tmp_path / "toy.npz",
               "--workers", 1)
    assert done.exit_code == 0, done.output
    recorded = json.loads((tmp_path / "toy.json").read_text())["loader"]
    assert recorded == {"name": "toy", "entry_point": "sigcli_example_dataset:ToyLoader",
                        "distribution": example_plugin, "version": "1.2.3"}
    data = SignatureSet.load(tmp_path / "toy.npz")
    assert data.counts() == {"genuine": 10, "skilled": 6, "simple": 0}
    assert data.user_mapping.tolist() == [1, 2] and data.image_size == (170, 242)

    described = cli("datasets", "toy")
    assert described.exit_code == 0 and "writerN/genuine/*.png" in described.stdout


def test_broken_plugins_are_reported_and_the_rest_still_works(broken_plugins, cli):
    records = {p.name: p for p in plugins.list_plugins()}
    assert records["exploding"].status == "broken"
    assert "RuntimeError: boom at import" in records["exploding"].error
    assert "SystemExit: 3" in records["exiting"].error
    assert "is not a DatasetLoader subclass (got int)" in records["notaloader"].error
    assert "leaves abstract" in records["abstract"].error and "users" in records["abstract"].error
    assert records["exploding"].distribution == "sigcli-broken"
    assert all(records[name].status == "ok" for name in BUILT_IN)

    table = cli("datasets")
    assert table.exit_code == 0
    assert "broken" in table.stdout and "gpds-synthetic" in table.stdout
    assert "4 dataset plugin(s) failed to load" in table.stderr
    as_json = {r["name"]: r for r in json.loads(cli("datasets", "--json").stdout)}
    assert as_json["exploding"]["status"] == "broken" and as_json["gpds"]["status"] == "ok"

    asked = cli("datasets", "--describe", "exploding")
    assert asked.exit_code == 2
    lines = [line for line in asked.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: dataset plugin 'exploding'")
    assert "sigcli-broken" in lines[0]


def test_only_the_asked_plugin_is_imported(broken_plugins):
    plugins.registered()
    plugins.get_loader("gpds")
    assert "sigcli_test_exploding" not in sys.modules
    with pytest.raises(PluginError, match="boom at import"):
        plugins.get_loader("exploding")


@pytest.mark.parametrize("value, visible", [
    ("gpds, mcyt", ["gpds", "mcyt"]),
    ("sigcli", BUILT_IN),
    ("sigcli_example_dataset", ["toy"]),  # distribution names compare as pip does
    ("", []),
])
def test_sigcli_load_plugins_restricts_what_loads(value, visible, monkeypatch, example_plugin, broken_plugins):
    monkeypatch.setenv(plugins.ENV_VAR, value)
    assert [p.name for p in plugins.list_plugins()] == visible
    assert "sigcli_test_exploding" not in sys.modules


def test_restricted_name_says_why_it_is_missing(monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "")
    with pytest.raises(PluginError, match=r"available: none; SIGCLI_LOAD_PLUGINS='' restricts"):
        plugins.get_loader("gpds")


def test_sig_datasets_table_json_and_describe(cli):
    table = cli("datasets")
    assert table.exit_code == 0
    for name in BUILT_IN:
        assert name in table.stdout
    assert "952×1360" in table.stdout and "40/10/10" in table.stdout

    records = json.loads(cli("datasets", "--json").stdout)
    gpds = next(r for r in records if r["name"] == "gpds")
    assert gpds == {"name": "gpds", "distribution": "sigcli", "version": gpds["version"], "status": "ok",
                    "error": None, "canvas_size": [952, 1360], "genuine_per_user": 24, "skilled_per_user": 30,
                    "simple_per_user": 0}

    described = cli("datasets", "--describe", "mcyt")
    assert described.exit_code == 0 and "0000/0000v00.bmp" in described.stdout
    as_json = json.loads(cli("datasets", "cedar", "--json").stdout)
    assert as_json["name"] == "cedar" and "full_org/original_1_1.png" in as_json["description"]

    unknown = cli("datasets", "nope")
    assert unknown.exit_code == 2 and "error: no dataset loader named 'nope'" in unknown.output
    both = cli("datasets", "gpds", "--describe", "mcyt")
    assert both.exit_code == 2 and "two loaders to describe" in both.output


def test_plugin_messages_with_rich_markup_are_printed_as_they_are(monkeypatch, tmp_path, cli):
    add_distribution(monkeypatch, tmp_path / "site", "sigcli-markup", {"markup": "sigcli_test_markup:Loader"},
                     modules={"sigcli_test_markup": "raise RuntimeError('[/bold] not [red]closed')\n"})
    table = cli("datasets", env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "RuntimeError: [/bold] not [red]closed" in table.stdout and "1 dataset plugin(s) failed to load" in table.stderr
    as_json = {r["name"]: r for r in json.loads(cli("datasets", "--json").stdout)}
    assert as_json["markup"]["error"].endswith("RuntimeError: [/bold] not [red]closed")

    asked = cli("datasets", "markup")
    assert asked.exit_code == 2
    assert asked.output.startswith("error: dataset plugin 'markup'")
    assert "RuntimeError: [/bold] not [red]closed" in asked.output and "Traceback" not in asked.output


def test_a_loader_failing_to_open_is_one_line_naming_it(monkeypatch, tmp_path, cli, synth_dataset):
    add_distribution(monkeypatch, tmp_path / "site", "sigcli-buggy", {"buggy": "sigcli_test_buggy:Loader"},
                     modules={"sigcli_test_buggy": (
                         "from sigcli_datasets.mcyt import MCYTLoader\n"
                         "class Loader(MCYTLoader):\n"
                         "    name = 'buggy'\n"
                         "    def __init__(self, path):\n"
                         "        raise KeyError('layout.cfg')\n")})
    done = cli("preprocess", "--dataset", "buggy", "--raw-path", synth_dataset("mcyt", users=2, genuine=2, skilled=1),
               "--save-path", tmp_path / "out.npz", "--workers", 1)
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert lines[0].startswith("error: dataset plugin 'buggy' (sigcli_test_buggy:Loader, sigcli-buggy 1.2.3) "
                               "failed: KeyError: 'layout.cfg'")
    assert "uninstall the distribution 'sigcli-buggy'" in lines[0]
    assert not (tmp_path / "out.npz").exists()


def test_a_loader_reporting_a_layout_error_keeps_its_message(tmp_path, cli):
    done = cli("preprocess", "--dataset", "mcyt", "--raw-path", tmp_path / "missing", "--save-path", tmp_path / "o.npz")
    assert done.exit_code == 2 and "is not a folder" in done.output and "plugin" not in done.output


def test_a_third_party_loader_reusing_a_built_in_name_is_refused(monkeypatch, tmp_path, cli, synth_dataset):
    add_distribution(monkeypatch, tmp_path / "site", "sigcli-impostor",
                     {"mcyt": "sigcli_datasets.mcyt:MCYTLoader"})
    with pytest.raises(PluginError) as raised:
        plugins.get_loader("mcyt")
    message = str(raised.value)
    assert "'mcyt' is registered by sigcli " in message and " and sigcli-impostor 1.2.3 " in message
    assert plugins.get_loader("gpds").name == "gpds"  # other names are unaffected

    records = [p for p in plugins.list_plugins() if p.name == "mcyt"]
    assert sorted((p.distribution, p.status) for p in records) == [("sigcli", "duplicate"),
                                                                   ("sigcli-impostor", "duplicate")]
    table = cli("datasets")
    assert table.exit_code == 0 and "duplicate" in table.stdout
    assert "registered by more than one distribution, refused: mcyt;" in " ".join(table.stderr.split())

    raw = synth_dataset("mcyt", users=2, genuine=2, skilled=1)
    refused = cli("preprocess", "--dataset", "mcyt", "--raw-path", raw, "--save-path", tmp_path / "out.npz")
    assert refused.exit_code == 2 and "sigcli-impostor 1.2.3" in refused.output
    assert not (tmp_path / "out.npz").exists()

    monkeypatch.setenv(plugins.ENV_VAR, "sigcli")  # the way out the hint gives
    chosen = cli("preprocess", "--dataset", "mcyt", "--raw-path", raw, "--save-path", tmp_path / "out.npz",
                 "--workers", 1)
    assert chosen.exit_code == 0, chosen.output
    recorded = json.loads((tmp_path / "out.json").read_text())["loader"]
    assert recorded["distribution"] == "sigcli" and recorded["entry_point"] == "sigcli_datasets.mcyt:MCYTLoader"

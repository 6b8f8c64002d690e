"""Outputs: nothing replaced unless asked, nothing we did not write deleted, no run mixing.

Every command that writes refuses an existing output unless --overwrite, and even then
replaces only a file or a folder of its own format; never an input, never the current
folder. Publishing never replaces what another run wrote meanwhile; a run folder is locked;
temporary files of killed runs are cleaned; damaged resume state and unwritable paths are
one line.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_sig
from sigcli import fileio
from sigcli.data.sigset import SignatureSet
from sigcli.fileio import OutputExistsError, atomic_path, clean_stale_temps, exclusive_lock
from sigcli.models import create_model
from sigcli.models.checkpoint import save_checkpoint
from sigcli.config.preprocess import PreprocessOptions
from sigcli.preprocess import process_dataset
from sigcli.progress import NullReporter
from sigcli.training.supervised import TrainOptions, train_signet
from test_report import fake_folds
from training_data import TINY, signature_set

ROOT = Path(__file__).resolve().parents[1]


def one_error(result) -> str:
    """The single line a refused command prints (exit code 2, no traceback)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def foreign_folder(path: Path) -> Path:
    """A user's folder holding something precious."""
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("precious")
    return path


def intact(path: Path) -> bool:
    return sorted(p.name for p in path.iterdir()) == ["thesis.tex"] and (path / "thesis.tex").read_text() == "precious"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny checkpoint, a set, a feature file and a results pickle."""
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    save_checkpoint(root / "tiny.pth", create_model(TINY).state_dict(), torch.nn.Linear(16, 3).state_dict())
    signature_set(users=3, genuine=4).save(root / "set.npz")
    with open(root / "r.pkl", "wb") as fh:
        pickle.dump(fake_folds(0), fh)
    return root


# ---------------------------------------------------------------------------- the rule, per command
COMMANDS = {  # name: (arguments with {out}, the folder's name)
    "extract": (["extract", "--model-path", "{in}/tiny.pth", "--data-path", "{in}/set.npz", "--save-path", "{out}"],
                "keep"),
    "wd": (["wd", "--features-path", "{in}/f.npz", "--save-path", "{out}"], "keep"),
    "wi --save-model": (["wi", "--features-path", "{in}/f.npz", "--save-model", "{out}"], "keep"),
    "invert": (["invert", "--t-model-path", "{in}/tiny.pth", "--per-user", "1", "--save-path", "{out}"], "keep.npz"),
    "invert --preview": (["invert", "--t-model-path", "{in}/tiny.pth", "--per-user", "1", "--save-path",
                          "{tmp}/inv.npz", "--preview", "{out}"], "keep.png"),
    "preprocess": (["preprocess", "--dataset", "cedar", "--raw-path", "{in}", "--save-path", "{out}/"], "keep"),
    "synth": (["synth", "--layout", "cedar", "--save-path", "{out}"], "keep"),
    "report --plot": (["report", "{in}/r.pkl", "--plot", "{out}"], "keep.png"),
    "download --save-path": (["download", "signet", "--save-path", "{tmp}"], "signet.pth"),
    "attack": (["attack", "--model-path", "{in}/tiny.pth", "--data-path", "{in}/set.npz", "--max-l2", "1",
                "--save-path", "{out}"], "keep.npz"),
    "attack --system wd": (["attack", "--system", "wd", "--model-path", "{in}/tiny.pth", "--data-path",
                            "{in}/set.npz", "--budgets", "1", "--save-path", "{out}"], "keep.json"),
}


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_of_the_user_is_never_replaced(inputs, tmp_path, command, overwrite, monkeypatch, cli):
    monkeypatch.setenv("SIGCLI_HOME", str(tmp_path / "cache"))
    args, name = COMMANDS[command]
    keep = foreign_folder(tmp_path / name)
    given = [a.format(**{"in": inputs, "out": keep, "tmp": tmp_path}) for a in args]
    line = one_error(cli(*given, *(["--overwrite"] if overwrite else [])))
    assert intact(keep)
    if command == "download --save-path":
        assert "is not a file; it is left alone" in line
    elif overwrite:
        assert "is a folder that sig did not write, which is never replaced" in line
    else:
        flag = next(given[i - 1] for i, arg in enumerate(given) if arg.rstrip("/") == str(keep))
        assert line.endswith(f"already exists (pass --overwrite to replace it, or choose another {flag})"), line


@pytest.mark.parametrize("case", ["extract", "extract via a link", "wd", "preprocess", "preprocess into a parent",
                                  "train"])
def test_an_output_that_is_or_holds_an_input_is_refused_even_with_overwrite(inputs, tmp_path, case, cli):
    data = tmp_path / "in.npz"
    data.write_bytes((inputs / "set.npz").read_bytes())
    before = data.read_bytes()
    raw = tmp_path / "raw" / "cedar"
    raw.mkdir(parents=True)
    (raw / "c-001-01.png").write_bytes(b"a scan")
    (tmp_path / "link.npz").symlink_to(data)
    args = {
        "extract": ["extract", "--model-path", inputs / "tiny.pth", "--data-path", data, "--save-path", data],
        "extract via a link": ["extract", "--model-path", inputs / "tiny.pth", "--data-path", data,
                               "--save-path", tmp_path / "link.npz"],
        "wd": ["wd", "--features-path", data, "--save-path", data],
        "preprocess": ["preprocess", "--dataset", "cedar", "--raw-path", raw, "--save-path", f"{raw}/"],
        "preprocess into a parent": ["preprocess", "--dataset", "cedar", "--raw-path", raw,
                                     "--save-path", f"{tmp_path / 'raw'}/"],
        "train": ["train", "--model", TINY, "--data-path", data, "--logdir", tmp_path],
    }[case]
    line = one_error(cli(*args, "--overwrite"))
    assert "the input" in line
    assert data.read_bytes() == before and (raw / "c-001-01.png").read_bytes() == b"a scan"


def test_the_current_folder_is_never_replaced_even_when_it_looks_like_ours(inputs, tmp_path, monkeypatch, cli):
    ours = SignatureSet.load(inputs / "set.npz").save(tmp_path / "set", folder=True)
    monkeypatch.chdir(ours)
    line = one_error(cli("preprocess", "--dataset", "cedar", "--raw-path", tmp_path, "--save-path", "./", "--overwrite"))
    assert "is the current folder or one above it" in line
    assert sorted(os.listdir(ours)) == ["filenames.npy", "user_mapping.npy", "x.npy", "y.npy", "yforg.npy"]


def test_overwrite_replaces_a_file_and_a_folder_of_our_format(synth_dataset, tmp_path, cli):
    raw = synth_dataset("cedar", users=2, genuine=1, skilled=1)
    out = tmp_path / "out"
    base = ["preprocess", "--dataset", "cedar", "--raw-path", raw, "--save-path", f"{out}/", "--workers", 1,
            "--image-size", 40, 60]
    assert cli(*base).exit_code == 0
    assert "already exists" in one_error(cli(*base))
    replaced = cli(*base[:-2], 50, 70, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert SignatureSet.load(out).image_size == (50, 70)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.json"]  # nothing set aside is left

    (tmp_path / "f.npz").write_bytes(b"an old file")
    assert cli("extract", "--model-path", tmp_path / "none.pth", "--data-path", raw, "--save-path",
               tmp_path / "f.npz").exit_code == 2
    assert (tmp_path / "f.npz").read_bytes() == b"an old file"


def test_synth_replaces_only_its_own_folder(tmp_path, cli):
    args = ["synth", "--layout", "cedar", "--users", 1, "--genuine", 1, "--skilled", 0, "--save-path", tmp_path / "raw"]
    assert cli(*args).exit_code == 0
    assert "already exists" in one_error(cli(*args))
    assert cli(*args[:-4], "--seed", 3, *args[-4:], "--overwrite").exit_code == 0
    assert '"seed": 3' in (tmp_path / "raw" / "sig-synth.json").read_text()


def test_quickstart_refuses_a_work_folder_of_other_files(tmp_path, cli):
    keep = foreign_folder(tmp_path / "work")
    assert "holds other files, not a quickstart run" in one_error(cli("quickstart", "--fast", "--workdir", keep))
    assert intact(keep)


def test_invert_keeps_a_parts_folder_it_did_not_write(inputs, tmp_path, cli):
    parts = foreign_folder(tmp_path / "inv.parts")
    line = one_error(cli("invert", "--t-model-path", inputs / "tiny.pth", "--per-user", 1, "--save-path",
                         tmp_path / "inv.npz", "--device", "cpu", "--overwrite"))
    assert "holds files that 'sig invert' did not write" in line and intact(parts)


# ---------------------------------------------------------------------------- races
@pytest.mark.parametrize("primitive", ["renameat2", "hard link"])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_output_that_appears_meanwhile_is_never_replaced(tmp_path, monkeypatch, primitive, kind):
    if primitive == "hard link":
        monkeypatch.setattr(fileio, "_libc_renameat2", lambda: None)
    elif fileio._libc_renameat2() is None:
        pytest.skip("no renameat2 here")
    final = tmp_path / "out"
    with pytest.raises(OutputExistsError, match="appeared while this run was writing it"):
        with atomic_path(final, suffix="") as tmp:
            if kind == "file":
                tmp.write_text("mine")
            else:
                tmp.mkdir()
                (tmp / "x.npy").write_text("mine")
            foreign_folder(final) if kind == "folder" else final.write_text("the other run's")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left
    assert intact(final) if kind == "folder" else final.read_text() == "the other run's"


class _WritesTheOutputMidway(NullReporter):
    """Plays the other `sig preprocess`: its output appears while ours is being made."""

    def __init__(self, output: Path):
        self.output = output

    def task(self, description, total):
        self.output.write_bytes(b"the other run's set")
        return super().task(description, total)


@pytest.mark.parametrize("save_path", ["out.npz", "out/"])
def test_two_preprocess_runs_into_one_output_the_second_fails(synth_dataset, tmp_path, save_path):
    raw = synth_dataset("cedar", users=2, genuine=1, skilled=1)
    options = PreprocessOptions(dataset="cedar", raw_path=raw, save_path=str(tmp_path / save_path), workers=1,
                                image_size=(40, 60))
    with pytest.raises(OutputExistsError, match="already exists|appeared while this run was writing it"):
        process_dataset(options, _WritesTheOutputMidway(options.output))
    assert options.output.read_bytes() == b"the other run's set"
    assert sorted(p.name for p in tmp_path.iterdir()) == [options.output.name]


# ---------------------------------------------------------------------------- run folders
@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "set.npz"
    signature_set(users=3, genuine=4).save(path)
    return path


def train_args(data: Path, logdir: Path, *extra) -> list:
    return ["train", "--model", TINY, "--data-path", data, "--logdir", logdir, "--device", "cpu",
            "--batch-size", 4, *extra]


def test_a_second_run_into_a_locked_logdir_stops_at_once(small_set, tmp_path, cli):
    logdir = tmp_path / "run"
    logdir.mkdir()
    with exclusive_lock(logdir, "--logdir", "wait"):
        line = one_error(cli(*train_args(small_set, logdir, "--epochs", 1)))
    assert f"--logdir {logdir} is in use by another sig run (process {os.getpid()})" in line
    assert os.listdir(logdir) == []  # and the lock is gone with its holder
    assert cli(*train_args(small_set, logdir, "--epochs", 1)).exit_code == 0


def test_two_runs_into_one_logdir_never_mix(small_set, tmp_path, cli):
    logdir = tmp_path / "run"
    assert cli(*train_args(small_set, logdir, "--epochs", 1)).exit_code == 0
    files = {name: (logdir / name).read_bytes() for name in os.listdir(logdir)}
    line = one_error(cli(*train_args(small_set, logdir, "--epochs", 1, "--seed", 7)))
    assert "already holds a training run" in line and "--overwrite" in line
    assert {name: (logdir / name).read_bytes() for name in os.listdir(logdir)} == files

    (logdir / "notes.txt").write_text("mine")
    assert cli(*train_args(small_set, logdir, "--epochs", 1, "--seed", 7, "--overwrite")).exit_code == 0
    assert (logdir / "notes.txt").read_text() == "mine" and '"seed": 7' in (logdir / "config.json").read_text()
    assert "holds other files" in one_error(cli(*train_args(small_set, foreign_folder(tmp_path / "k"), "--epochs", 1)))


_DIE_IN_STATE_SAVE = """
import os, signal, sys
import torch
import training_data
training_data.register_networks()
from sigcli.cli.app import main
real_save, saves = torch.save, []
def save_then_die(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    if ".train_state.pth." in str(f):
        saves.append(f)
        if len(saves) == int(os.environ["DIE_AT"]):  # written under its temporary name, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
torch.save = save_then_die
sys.argv = ["sig", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def straight_run(small_set, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("straight") / "run"
    train_signet(TrainOptions(model=TINY, data_path=small_set, logdir=logdir, epochs=3, batch_size=4,
                              device="cpu"))
    return logdir


@pytest.mark.parametrize("die_at", [1, 2])
def test_a_run_killed_with_sigkill_resumes_and_its_temporary_files_go(small_set, straight_run, tmp_path, die_at, cli):
    logdir = tmp_path / "run"
    env = {**os.environ, "DIE_AT": str(die_at),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), str(ROOT / "tests")])}
    killed = subprocess.run([sys.executable, "-c", _DIE_IN_STATE_SAVE,
                             *map(str, train_args(small_set, logdir, "--epochs", 3))],
                            env=env, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    stale = [name for name in os.listdir(logdir) if name.startswith(".train_state.pth.sig-")]
    assert len(stale) == 1 and (logdir / "model_last.pth").exists()
    assert (logdir / "train_state.pth").exists() == (die_at == 2)  # killed in epoch 1: nothing to resume

    resumed = cli(*train_args(small_set, logdir, "--epochs", 3, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert sorted(os.listdir(logdir)) == sorted(os.listdir(straight_run))  # no temporary, no lock left
    for name in ("model_last.pth", "model_best.pth"):
        for a, b in zip(torch.load(logdir / name, weights_only=True), torch.load(straight_run / name,
                                                                                  weights_only=True)):
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_stale_temporary_files_of_dead_processes_only_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = fileio._HOST
    names = {f".out.npz.sig-{host}-{dead_pid}-0123abcd.tmp.npz": False,  # ours, writer gone: removed
             f".out.npz.sig-{host}-{os.getpid()}-0123abcd.tmp.npz": True,  # a live writer's
             f".out.npz.sig-ffffff-{dead_pid}-0123abcd.tmp.npz": True,  # another host's
             ".out.npz.tmp": True, "out.npz": True}  # not our naming: never touched
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / f".set.sig-{host}-{dead_pid}-89abcdef.tmp").mkdir()  # a half-written folder
    names[f".set.sig-{host}-{dead_pid}-89abcdef.tmp"] = False
    assert clean_stale_temps(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(name for name, kept in names.items() if kept)


# ---------------------------------------------------------------------------- damaged resume state
@pytest.fixture(scope="module")
def finished_run(small_set, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("finished") / "run"
    assert run_sig(*train_args(small_set, logdir, "--epochs", 1)).exit_code == 0
    return logdir


def _without_rng(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    del state["torch_rng"]
    torch.save(state, path)


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "train_state.pth").write_bytes(os.urandom(64)), "it is not a PyTorch file"),
    (lambda run: (run / "train_state.pth").write_bytes(b""), "it is empty"),
    (lambda run: (run / "train_state.pth").write_bytes((run / "train_state.pth").read_bytes()[:4000]),
     "it is damaged"),
    (lambda run: _without_rng(run / "train_state.pth"), "it lacks torch_rng"),
    (lambda run: (run / "config.json").write_text('{"options": '), "config.json is damaged"),
    (lambda run: (run / "config.json").unlink(), "config.json is missing"),
], ids=["garbage", "zero bytes", "truncated", "no RNG state", "damaged config", "no config"])
def test_damaged_resume_state_is_one_line(small_set, finished_run, tmp_path, damage, message, cli):
    logdir = tmp_path / "run"
    logdir.mkdir()
    for file in finished_run.iterdir():
        (logdir / file.name).write_bytes(file.read_bytes())
    damage(logdir)
    line = one_error(cli(*train_args(small_set, logdir, "--epochs", 2, "--resume")))
    assert line.startswith("error: cannot resume") and message in line
    assert "--overwrite" in line or "delete the folder yourself" in line


# ---------------------------------------------------------------------------- unwritable outputs
def _sys_is_read_only() -> bool:
    try:
        os.close(os.open("/sys/.sig-probe", os.O_CREAT | os.O_WRONLY))
    except OSError:
        return True
    os.unlink("/sys/.sig-probe")
    return False


@pytest.mark.parametrize("where", ["/sys", "under a file"])
def test_unwritable_outputs_are_one_line(inputs, small_set, tmp_path, where, cli):
    if where == "/sys" and not (Path("/sys").is_dir() and _sys_is_read_only()):
        pytest.skip("no read-only /sys here")
    base = Path("/sys") if where == "/sys" else tmp_path / "a-file"
    (tmp_path / "a-file").write_text("")
    extract = one_error(cli("extract", "--model-path", inputs / "tiny.pth", "--data-path", inputs / "set.npz",
                            "--save-path", base / "x.npz", "--device", "cpu"))
    train = one_error(cli(*train_args(small_set, base / "run", "--epochs", 1)))
    assert "cannot write" in extract or "is a file, not a folder" in extract
    assert "cannot write --logdir" in train

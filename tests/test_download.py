"""`sig download` against a local imitation of Google Drive (tests/drive_server.py).

Each Drive behaviour (direct file, confirmation page, quota page, dropped connection then
Range, a server ignoring Range, corrupted files, no network) is checked for the bytes that
land on disk, what is left behind, the message and the exit code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket

import numpy as np
import pytest
import torch

from requests.adapters import HTTPAdapter

from conftest import run_sig
from drive_server import DriveFile, FakeDrive
from sigcli import artefacts, download as library
from sigcli.cli.derive import argv, parse
from sigcli.config.download import DownloadOptions
from sigcli.errors import DownloadError
from sigcli.progress import RecordingReporter
from training_data import flags_missing_from_help

PRIMARY, OLDER = artefacts.REGISTRY["signet-distill"].drive_ids


def _checkpoint(scale: float = 1.0) -> bytes:
    """A reference-format checkpoint (~2 MB: several of gdown's 512 kB read chunks)."""
    buffer = io.BytesIO()
    torch.save(({"conv_layers.conv1.conv.weight": torch.arange(500_000, dtype=torch.float32) * scale},
                {"weight": torch.zeros(3, 8)}, {"weight": torch.zeros(1, 8)}), buffer)
    return buffer.getvalue()


def _saved(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


CHECKPOINT = _checkpoint()
DATA = _npz(x=np.zeros((4, 1, 15, 22), np.uint8), y=np.arange(4), yforg=np.zeros(4, np.int64))


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGCLI_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(library, "BACKOFF_S", 0.0)  # retries without waiting
    return tmp_path / "cache"


@pytest.fixture
def drive(monkeypatch):
    with FakeDrive() as server:
        monkeypatch.setattr(HTTPAdapter, "send", server.route(HTTPAdapter.send))  # Drive's hosts answer from here
        yield server


def leftovers(folder) -> list[str]:
    """Anything in ``folder`` besides finished artefacts and the manifest."""
    finals = {a.filename for a in artefacts.REGISTRY.values()} | {artefacts.MANIFEST}
    return sorted(p.name for p in folder.iterdir() if p.name not in finals) if folder.exists() else []


def sig(*args: str):
    return run_sig("download", *args)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------------------- Drive behaviours
def test_direct_file_is_saved_verified_and_recorded(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT)
    reporter = RecordingReporter()
    path = library.download("signet", url=drive.url("f"), reporter=reporter)
    assert path == cache / "signet.pth" == artefacts.artefact_path("signet")
    assert path.read_bytes() == CHECKPOINT and artefacts.is_cached("signet")
    assert reporter.steps["signet"][:2] == [len(CHECKPOINT), len(CHECKPOINT)]
    entry = json.loads((cache / artefacts.MANIFEST).read_text())["signet"]
    assert entry["size"] == len(CHECKPOINT) and entry["sha256"] == hashlib.sha256(CHECKPOINT).hexdigest()
    assert leftovers(cache) == []


@pytest.mark.parametrize("way", ["form", "link"])
def test_confirmation_page_is_followed(drive, cache, way):
    drive.files[PRIMARY] = DriveFile(CHECKPOINT, confirm=way)
    path = library.download("signet-distill")
    assert path.read_bytes() == CHECKPOINT
    first, second = drive.requests
    assert "confirm" not in first.query and first.status == 200
    assert second.status == 200 and second.query["id"] == PRIMARY
    expected = {"form": {"confirm": "t", "uuid": drive.files[PRIMARY].uuid},
                "link": {"confirm": drive.files[PRIMARY].uuid[:8]}}[way]
    assert {k: second.query.get(k) for k in expected} == expected
    assert leftovers(cache) == []


def test_quota_page_is_never_saved_and_says_what_to_do(drive, cache):
    drive.files[PRIMARY] = DriveFile(CHECKPOINT, quota=True)
    drive.files[OLDER] = DriveFile(CHECKPOINT, quota=True)
    result = sig("signet-distill")
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert "download quota for this file is exceeded" in line and f"Drive file {OLDER}" in line
    assert artefacts.REGISTRY["signet-distill"].link in line and str(cache / "signet-distill.pth") in line
    assert "try again later" in line
    assert not (cache / "signet-distill.pth").exists() and leftovers(cache) == []


def test_quota_on_the_current_link_falls_back_to_the_older_one(drive, cache):
    drive.files[PRIMARY] = DriveFile(CHECKPOINT, quota=True)
    drive.files[OLDER] = DriveFile(CHECKPOINT)
    assert library.download("signet-distill").read_bytes() == CHECKPOINT
    assert [r.file_id for r in drive.requests] == [PRIMARY, OLDER]
    assert json.loads((cache / artefacts.MANIFEST).read_text())["signet-distill"]["source"] == drive.url(OLDER)


def test_dead_links_are_reported_with_the_manual_link(drive, cache):
    with pytest.raises(DownloadError) as error:
        library.download("signet-distill")
    message = str(error.value)
    assert f"Drive file {PRIMARY}: the link is dead" in message and f"Drive file {OLDER}" in message
    assert "https://drive.google.com/file/d/" + PRIMARY in message
    assert leftovers(cache) == []


def test_dropped_connection_resumes_with_a_range_request(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT, confirm="form", drops=(1_200_000,))
    path = library.download("signet", url=drive.url("f"))
    assert path.read_bytes() == CHECKPOINT
    # gdown asks for the confirmation again on resume, opens the file, then asks for the rest with Range
    page, dropped, page_again, *_, resumed = drive.requests
    assert dropped.range is None and dropped.status == 200 and "uuid" in dropped.query
    resumed_at = int(resumed.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 1_200_000 and resumed.status == 206 and "uuid" in resumed.query
    assert leftovers(cache) == []


def test_server_ignoring_range_restarts_from_zero(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT, drops=(1_200_000,), honour_range=False)
    path = library.download("signet", url=drive.url("f"))
    assert path.read_bytes() == CHECKPOINT  # not the first bytes twice
    assert any(r.range is not None and r.status == 200 for r in drive.requests)
    assert leftovers(cache) == []


def test_server_errors_are_retried_with_backoff(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT, busy=2)   # on a mirror (on Drive, gdown reads an error page as dead)
    assert library.download("signet", url=drive.mirror_url("f"), retries=2).read_bytes() == CHECKPOINT
    assert [r.status for r in drive.requests] == [503, 503, 200]
    drive.files["g"] = DriveFile(CHECKPOINT, busy=5)
    with pytest.raises(DownloadError, match="cannot fetch 'signet-f' from http://127.* answered HTTP 503"):
        library.download("signet-f", url=drive.mirror_url("g"), retries=2)
    assert leftovers(cache) == []


def test_interrupted_download_keeps_its_part_and_the_next_run_resumes(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT, drops=(1_200_000, 0, 0))  # the resume (file opened, Range) brings nothing
    with pytest.raises(DownloadError, match="interrupted at .* the partial file .* is kept"):
        library.download("signet", url=drive.url("f"), retries=0)
    [part] = leftovers(cache)
    assert part.endswith(".part") and 0 < (cache / part).stat().st_size < len(CHECKPOINT)
    assert not (cache / "signet.pth").exists()
    assert library.download("signet", url=drive.url("f")).read_bytes() == CHECKPOINT
    assert drive.requests[-1].range is not None and drive.requests[-1].status == 206
    assert leftovers(cache) == []


def test_a_part_the_server_cannot_continue_is_fetched_again(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT)
    cache.mkdir()
    stage = library._stage_path(cache / "signet.pth", drive.url("f"))
    stage.with_name(stage.name + "resumeme.part").write_bytes(CHECKPOINT)   # gdown's part name: 8 characters
    assert library.download("signet", url=drive.url("f")).read_bytes() == CHECKPOINT
    assert [r.status for r in drive.requests] == [200, 416, 200] and leftovers(cache) == []


@pytest.mark.parametrize("name, content, message", [
    ("signet", CHECKPOINT[:len(CHECKPOINT) // 2], "does not load as a PyTorch checkpoint with weights_only=True"),
    ("signet", _saved(torch.zeros(3)), "holds a Tensor, not a state dict or a tuple of state dicts"),
    ("inverted-data", np.random.default_rng(0).bytes(5000), "it is not a .npz archive"),
    ("inverted-data", _npz(x=np.zeros((2, 1, 3, 3)), y=np.zeros(2)), "lacks the key(s) yforg"),
    ("inverted-data", b"<!DOCTYPE html><html><title>Sign in</title></html>", "it is an HTML page"),
], ids=["truncated-pth", "tensor-pth", "random-npz", "npz-without-yforg", "html-as-octet-stream"])
def test_corrupted_file_fails_verification_and_leaves_nothing(drive, cache, name, content, message):
    drive.files["f"] = DriveFile(content)  # served as application/octet-stream, like a file
    result = sig(name, "--url", drive.url("f"))
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert "failed verification" in line and message in line and "nothing was kept" in line
    assert leftovers(cache) == [] and not artefacts.is_cached(name)


def test_checksum_recorded_by_the_first_download_guards_later_ones(drive, cache):
    drive.files["good"] = DriveFile(CHECKPOINT)
    drive.files["other"] = DriveFile(_checkpoint(scale=2.0))  # a valid checkpoint, same size, other bytes
    path = library.download("signet", url=drive.url("good"))
    with pytest.raises(DownloadError, match="its sha256 is .* says .*manifest.json"):
        library.download("signet", url=drive.url("other"), overwrite=True)
    assert path.read_bytes() == CHECKPOINT and leftovers(cache) == []


def test_a_file_of_another_size_than_the_recorded_one_is_refused_early(drive, cache):
    drive.files["good"] = DriveFile(CHECKPOINT)
    drive.files["bigger"] = DriveFile(CHECKPOINT + bytes(1_000_000))
    library.download("signet", url=drive.url("good"))
    with pytest.raises(DownloadError, match=f"offers {len(CHECKPOINT) + 1_000_000} bytes instead of the "
                                            f"{len(CHECKPOINT)} of the published file"):
        library.download("signet", url=drive.url("bigger"), overwrite=True)
    assert (cache / "signet.pth").read_bytes() == CHECKPOINT and leftovers(cache) == []


def test_no_network_says_how_to_place_the_file_by_hand(cache):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = sig("signet", "--url", f"http://127.0.0.1:{port}/download?id=x")
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert "cannot connect to 127.0.0.1" in line and "Connection refused" in line
    assert f"save it as {cache / 'signet.pth'}" in line and "sig download signet" in line
    assert leftovers(cache) == []


# ---------------------------------------------------------------------------- the cache
def test_cached_and_hand_placed_files_work_offline(drive, cache):
    drive.files["f"] = DriveFile(CHECKPOINT)
    library.download("signet", url=drive.url("f"))
    library.download("signet", url=drive.url("f"))
    assert len(drive.requests) == 1  # the second call used the cache

    (cache / "signet-f.pth").write_bytes(CHECKPOINT)  # placed by hand: verified once, then recorded
    assert library.download("signet-f") == cache / "signet-f.pth"
    assert json.loads((cache / artefacts.MANIFEST).read_text())["signet-f"]["source"] == "already present"

    (cache / "inverted-data.npz").write_bytes(b"not an archive")
    with pytest.raises(DownloadError, match="not a usable 'inverted-data'.*--overwrite"):
        library.download("inverted-data")
    assert len(drive.requests) == 1


def test_a_cached_file_swapped_for_another_of_the_same_size_is_caught(drive, cache, monkeypatch):
    drive.files["f"] = DriveFile(CHECKPOINT)
    path = library.download("signet", url=drive.url("f"))
    hashed = []
    real_sha256 = artefacts.sha256_of
    monkeypatch.setattr(artefacts, "sha256_of", lambda p: hashed.append(p) or real_sha256(p))
    assert sig("signet").exit_code == 0 and hashed == []  # the very file verified: not read again

    before = path.stat()
    swapped = _checkpoint(scale=2.0)  # a valid checkpoint, same size, other bytes
    assert len(swapped) == len(CHECKPOINT)
    path.write_bytes(swapped)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even the modification time put back
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    result = sig("signet")
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert "is not a usable 'signet': its sha256 is" in line and "--overwrite" in line
    assert sig("signet", "--url", drive.url("f"), "--overwrite").exit_code == 0
    assert path.read_bytes() == CHECKPOINT and len(drive.requests) == 2


def test_a_folder_in_the_way_is_left_alone_even_with_overwrite(drive, tmp_path):
    drive.files["f"] = DriveFile(CHECKPOINT)
    (tmp_path / "models" / "signet.pth").mkdir(parents=True)
    (tmp_path / "models" / "signet.pth" / "mine.txt").write_text("precious")
    result = sig("signet", "--url", drive.url("f"), "--save-path", str(tmp_path / "models"), "--overwrite")
    assert result.exit_code == 2 and "is not a file; it is left alone" in error_lines(result)[0]
    assert (tmp_path / "models" / "signet.pth" / "mine.txt").read_text() == "precious" and drive.requests == []


def test_list_json_shows_cached_state_size_and_path(drive, cache):
    drive.files["f"] = DriveFile(DATA)
    assert sig("inverted-data", "--url", drive.url("f")).exit_code == 0
    result = sig("--list", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(artefacts.REGISTRY)
    assert rows["inverted-data"]["cached"] and rows["inverted-data"]["size"] == len(DATA)
    assert rows["inverted-data"]["path"] == str(cache / "inverted-data.npz")
    assert rows["inverted-data"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert not rows["signet"]["cached"] and rows["signet"]["size"] is None
    table = sig("--list")
    assert table.exit_code == 0 and "signet-distill" in table.stdout


def test_cli_downloads_into_save_path_and_reports_the_path(drive, tmp_path, cache):
    drive.files["f"] = DriveFile(CHECKPOINT, confirm="form")
    folder = tmp_path / "models"
    result = sig("signet", "--url", drive.url("f"), "--save-path", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "signet.pth").read_bytes() == CHECKPOINT and not artefacts.is_cached("signet")
    assert f"signet: {folder / 'signet.pth'}" in result.stdout and "downloaded, verified" in result.stdout
    assert leftovers(folder) == []
    requests = len(drive.requests)
    again = sig("signet", "--save-path", str(folder), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == [{"name": "signet", "path": str(folder / "signet.pth"), "size": len(CHECKPOINT),
                                         "state": "already there"}]
    assert len(drive.requests) == requests   # the file there was verified, not fetched again


def test_all_reports_every_failure_then_exits_2(drive, cache):
    drive.files[artefacts.REGISTRY["signet"].drive_ids[0]] = DriveFile(CHECKPOINT)
    result = sig("--all")
    assert result.exit_code == 2
    assert len(error_lines(result)) == len(artefacts.REGISTRY) - 1
    assert artefacts.is_cached("signet") and leftovers(cache) == []


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown artefact 'nope' (known: signet-distill, inverted-data, signet, signet-f)"),
    ([], "name the artefacts to fetch or pass --all"),
    (["signet", "signet-f", "--url", "http://127.0.0.1/x"], "--url replaces the link of one artefact"),
    (["--json"], "name the artefacts to fetch or pass --all"),
    (["--all", "--list"], "--list shows every artefact"),
    (["signet", "--list"], "--list shows every artefact"),
])
def test_cli_mistakes_exit_2_with_one_line(args, message):
    result = sig(*args)
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert message in line


def test_help_names_every_option_and_a_command_line_gives_back_the_options(cli):
    result = cli("download", "--help", env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert flags_missing_from_help(DownloadOptions, result.output) == []
    for options in (DownloadOptions(names=["signet", "signet-f"], save_path="models", overwrite=True),
                    DownloadOptions(show_list=True, as_json=True)):
        assert parse(DownloadOptions, argv(options)) == options

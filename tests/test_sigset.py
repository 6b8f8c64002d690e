"""Signature sets: .npz and folder round trips, legacy pickled mappings, subsets, atomic writes."""

import logging
import os

import numpy as np
import pytest

from sigcli.data import sigset
from sigcli.data.sigset import FolderWriter, SignatureSet, iter_batches
from sigcli.errors import InputError

H, W = 6, 8


@pytest.fixture(autouse=True)
def _sigcli_warnings_reach_caplog(monkeypatch):
    """A `sig` run (CliRunner) routes logger 'sigcli' to its own handler only; caplog needs it."""
    monkeypatch.setattr(logging.getLogger("sigcli"), "propagate", True)


def _set(users=3, genuine=2, skilled=2, simple=0, seed=0) -> SignatureSet:
    """Users in order, each genuine then skilled then simple, like `sig preprocess` writes."""
    rng = np.random.default_rng(seed)
    kinds = [0] * genuine + [1] * skilled + [2] * simple
    y = np.repeat(np.arange(users), len(kinds))
    yforg = np.tile(kinds, users)
    x = rng.integers(0, 256, (len(y), 1, H, W), dtype=np.uint8)
    filenames = np.array([f"u{u}_{i}.png" for i, u in enumerate(y)])
    return SignatureSet(x, y, yforg, np.arange(users) * 10 + 7, filenames)


def _assert_same(a: SignatureSet, b: SignatureSet) -> None:
    for key in sigset.KEYS:
        left, right = getattr(a, key), getattr(b, key)
        assert (left is None) == (right is None), key
        if left is not None:
            np.testing.assert_array_equal(np.asarray(left), np.asarray(right), err_msg=key)


def _entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------ round trips
def test_npz_round_trip_keeps_every_array_and_plain_dtypes(tmp_path):
    data = _set(simple=1)
    path = data.save(tmp_path / "set.npz")
    loaded = SignatureSet.load(path)
    _assert_same(data, loaded)
    assert loaded.x.dtype == np.uint8 and loaded.user_mapping.dtype == np.int64
    with np.load(path, allow_pickle=False) as raw:  # readable without pickle by anyone
        assert set(raw.files) == set(sigset.KEYS)


def test_folder_round_trip_memory_maps_x(tmp_path):
    data = _set()
    path = data.save(str(tmp_path / "set") + "/")
    assert path.is_dir() and _entries(path) == sorted(f"{k}.npy" for k in sigset.KEYS)
    loaded = SignatureSet.load(path)
    assert isinstance(loaded.x, np.memmap)
    _assert_same(data, loaded)
    assert _entries(tmp_path) == ["set"]  # no temporary left beside it


def test_save_folder_flag_overrides_the_name(tmp_path):
    path = _set().save(tmp_path / "plain", folder=True)
    assert path.is_dir()
    assert isinstance(SignatureSet.load(path).x, np.memmap)


def test_set_without_optional_arrays_round_trips(tmp_path):
    data = _set()
    bare = SignatureSet(data.x, data.y, data.yforg)
    loaded = SignatureSet.load(bare.save(tmp_path / "bare.npz"))
    assert loaded.user_mapping is None and loaded.filenames is None
    np.testing.assert_array_equal(loaded.x, data.x)


# ------------------------------------------------------------------ legacy (reference) files
def _reference_file(path, data: SignatureSet) -> None:
    """What the reference writes: user_mapping is a dict, stored as a pickled object array."""
    np.savez(path, x=data.x, y=data.y.astype(np.int32), yforg=data.yforg.astype(np.int32),
             user_mapping={i: int(u) for i, u in enumerate(data.user_mapping)}, filenames=data.filenames)


def test_reference_file_loads_without_unpickling_with_one_warning(tmp_path, caplog, monkeypatch):
    data = _set()
    path = tmp_path / "reference.npz"
    _reference_file(path, data)
    unpickled = []
    monkeypatch.setattr("pickle.loads", lambda *a, **k: unpickled.append(a) or pytest.fail("unpickled"))
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        loaded = SignatureSet.load(path)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "user_mapping" in warnings[0].getMessage()
    assert "--allow-pickle" in warnings[0].getMessage()
    assert loaded.user_mapping is None and not unpickled
    np.testing.assert_array_equal(loaded.x, data.x)
    np.testing.assert_array_equal(loaded.y, data.y)
    assert loaded.y.dtype == np.int64
    np.testing.assert_array_equal(loaded.filenames, data.filenames)


def test_reference_file_with_allow_pickle_gives_the_mapping(tmp_path, caplog):
    data = _set()
    path = tmp_path / "reference.npz"
    _reference_file(path, data)
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        loaded = SignatureSet.load(path, allow_pickle=True)
    assert not caplog.records
    np.testing.assert_array_equal(loaded.user_mapping, data.user_mapping)
    assert loaded.user_mapping.dtype == np.int64


def test_reference_folder_with_pickled_mapping(tmp_path, caplog):
    """The continual-distillation fork's folder: user_mapping.npy holds a pickled dict."""
    data = _set()
    folder = tmp_path / "ref"
    folder.mkdir()
    for key in ("x", "y", "yforg", "filenames"):
        np.save(folder / f"{key}.npy", getattr(data, key))
    np.save(folder / "user_mapping.npy", {0: 7, 1: 17, 2: 27}, allow_pickle=True)
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        loaded = SignatureSet.load(folder)
    assert loaded.user_mapping is None and len(caplog.records) == 1
    assert isinstance(loaded.x, np.memmap)
    np.testing.assert_array_equal(SignatureSet.load(folder, allow_pickle=True).user_mapping, [7, 17, 27])


# ------------------------------------------------------------------ subsets
def test_select_users_on_a_folder_stays_memory_mapped(tmp_path):
    data = _set(users=5)
    loaded = SignatureSet.load(data.save(str(tmp_path / "f") + "/"))
    part = loaded.select_users(1, 3)
    assert isinstance(part.x, np.memmap)
    assert part.users.tolist() == [1, 2]
    np.testing.assert_array_equal(part.x, data.x[data.y >= 1][: 2 * 4])
    np.testing.assert_array_equal(part.filenames, data.filenames[(data.y >= 1) & (data.y < 3)])
    np.testing.assert_array_equal(part.user_mapping, data.user_mapping)  # index → id, unchanged


def test_select_users_with_interleaved_rows_takes_exactly_those_users():
    data = _set(users=4)
    order = np.argsort(data.yforg, kind="stable")  # all genuine first: users interleave
    shuffled = data.subset(order)
    part = shuffled.select_users(2, 4)
    assert sorted(part.y.tolist()) == [2] * 4 + [3] * 4
    keep = (shuffled.y >= 2) & (shuffled.y < 4)
    np.testing.assert_array_equal(part.x, shuffled.x[keep])


def test_select_users_rejects_an_empty_range():
    with pytest.raises(InputError, match="empty user range"):
        _set().select_users(2, 2)


def test_select_users_outside_the_set_is_empty():
    assert len(_set(users=3).select_users(5, 9)) == 0


def test_genuine_only_drops_skilled_and_simple():
    data = _set(users=2, genuine=3, skilled=2, simple=1)
    genuine = data.genuine_only()
    assert genuine.counts() == {"genuine": 6, "skilled": 0, "simple": 0}
    np.testing.assert_array_equal(genuine.x, data.x[data.yforg == 0])
    np.testing.assert_array_equal(genuine.y, [0, 0, 0, 1, 1, 1])


def test_genuine_only_of_one_user_is_a_slice(tmp_path):
    loaded = SignatureSet.load(_set(users=1).save(str(tmp_path / "one") + "/"))
    assert isinstance(loaded.genuine_only().x, np.memmap)


def test_summary_counts_each_kind():
    data = _set(users=3, genuine=2, skilled=1, simple=1)
    assert data.summary() == f"3 users, 6 genuine, 3 skilled, 3 simple, {H}×{W} uint8"
    assert data.image_size == (H, W) and len(data) == 12


def test_iter_batches_covers_the_range_once():
    slices = list(iter_batches(10, 4))
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 8), (8, 10)]


# ------------------------------------------------------------------ validation
def test_images_must_be_n_by_1_by_h_by_w():
    with pytest.raises(InputError, match="N×1×H×W"):
        SignatureSet(np.zeros((3, H, W), np.uint8), np.zeros(3), np.zeros(3))


def test_labels_must_match_the_images():
    with pytest.raises(InputError, match="'y' has 2 entries but 'x' has 3"):
        SignatureSet(np.zeros((3, 1, H, W), np.uint8), np.zeros(2), np.zeros(3))


_X = np.zeros((4, 1, H, W), np.uint8)
_Y = np.array([0, 0, 1, 1])
_YFORG = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("arrays, message", [
    (dict(x=np.array(3)), r"images must be N×1×H×W, got shape \(\)"),
    (dict(x=np.zeros((4, H, W), np.uint8)), r"images must be N×1×H×W, got shape \(4, 6, 8\)"),
    (dict(x=np.zeros((4, 1, H, W), np.int64)), "images must be uint8 or float, got int64"),
    (dict(y=np.array(3)), r"'y' has shape \(\), not one label per row"),
    (dict(y=np.array(["a", "b", "c", "d"])), "'y' holds text values, not integers"),
    (dict(y=np.array([0, -1, 1, 1])), r"'y' holds values below 0 \(1 of 4, e.g. -1\)"),
    (dict(y=np.array([0, np.nan, 1, 1])), r"'y' holds values that are not whole numbers \(1 of 4, e.g. nan\)"),
    (dict(y=np.array([0, 0.5, 1, 1])), "not whole numbers"),
    (dict(y=np.array([0, 1, 1])), "'y' has 3 entries but 'x' has 4 images"),
    (dict(yforg=np.array([0, 1, 3, 0])), r"'yforg' holds values outside 0, 1, 2 \(1 of 4, e.g. 3\)"),
    (dict(user_mapping=np.array(["a", "b"])), "'user_mapping' holds text values"),
])
def test_a_malformed_set_is_refused_saying_what_a_set_holds(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **{"x": _X, "y": _Y, "yforg": _YFORG, **arrays})
    with pytest.raises(InputError, match=message) as info:
        SignatureSet.load(tmp_path / "bad.npz")
    assert info.value.hint == sigset.LAYOUT


def test_whole_float_labels_are_read_as_integers(tmp_path):
    np.savez(tmp_path / "floats.npz", x=_X, y=_Y.astype(np.float64), yforg=_YFORG.astype(np.float32))
    loaded = SignatureSet.load(tmp_path / "floats.npz")
    assert loaded.y.dtype == loaded.yforg.dtype == np.int64
    np.testing.assert_array_equal(loaded.y, _Y)


def test_a_malformed_folder_is_refused_by_the_cli_in_one_line(tmp_path, cli):
    folder = tmp_path / "set"
    folder.mkdir()
    for key, value in dict(x=_X, y=np.array([0, np.nan, 1, 1]), yforg=_YFORG).items():
        np.save(folder / f"{key}.npy", value)
    result = cli("info", folder)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "'y' holds values that are not whole numbers" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content, message", [
    (b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>", "an HTML page"),
    (bytes(range(7, 250)), "neither a .npz nor a .npy file"),
    (b"", "neither a .npz nor a .npy file"),
    (b"PK\x03\x04 truncated zip", "File is not a zip file"),
])
def test_a_file_that_is_not_a_set_is_named_for_what_it_is(tmp_path, content, message):
    path = tmp_path / "set.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        SignatureSet.load(path)
    assert "pickle" not in str(info.value)  # never advise unpickling a file that is not ours


def test_npz_without_the_keys(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(InputError, match=r"lacks the key\(s\) x, y, yforg .*it has weights"):
        SignatureSet.load(tmp_path / "other.npz")


def test_a_single_npy_array(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, H, W), np.uint8))
    with pytest.raises(InputError, match="single .npy array"):
        SignatureSet.load(tmp_path / "x.npy")


def test_folder_without_the_arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1, H, W), np.uint8))
    with pytest.raises(InputError, match="no y.npy, yforg.npy"):
        SignatureSet.load(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no signature set at"):
        SignatureSet.load(tmp_path / "absent.npz")


# ------------------------------------------------------------------ atomic writes
def test_a_crash_while_saving_npz_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "set.npz"
    old = _set(seed=1)
    old.save(path)
    before = path.read_bytes()
    real_savez = np.savez

    def crash_midway(file, **arrays):
        real_savez(file, x=arrays["x"])  # part of the content reaches the disk
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        _set(seed=2).save(path, overwrite=True)
    assert _entries(tmp_path) == ["set.npz"]
    assert path.read_bytes() == before


def test_a_crash_while_saving_npz_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", lambda file, **a: (open(file, "wb").write(b"PK partial"), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        _set().save(tmp_path / "new.npz")
    assert _entries(tmp_path) == []


def test_a_crash_while_saving_a_folder_leaves_the_previous_folder(tmp_path, monkeypatch):
    path = _set(seed=1).save(str(tmp_path / "set") + "/")
    real_save = np.save
    calls = []

    def crash_on_second(file, array, **kw):
        calls.append(file)
        if len(calls) == 2:
            raise OSError("disk full")
        real_save(file, array, **kw)

    monkeypatch.setattr(np, "save", crash_on_second)
    with pytest.raises(OSError):
        _set(seed=2).save(path, folder=True, overwrite=True)
    monkeypatch.undo()
    assert _entries(tmp_path) == ["set"]
    _assert_same(SignatureSet.load(path), _set(seed=1))


# ------------------------------------------------------------------ FolderWriter
def test_folder_writer_shrinks_to_what_was_written(tmp_path):
    data = _set(users=3)
    path = tmp_path / "stream"
    with FolderWriter(path, capacity=len(data) + 7, image_size=(H, W)) as writer:
        for user in range(3):
            rows = data.y == user
            writer.append(data.x[rows][:, 0], user, data.yforg[rows], data.filenames[rows])
        writer.finish(data.user_mapping)
    loaded = SignatureSet.load(path)
    assert isinstance(loaded.x, np.memmap) and loaded.x.shape == (len(data), 1, H, W)
    assert (path / "x.npy").stat().st_size == loaded.x.offset + data.x.nbytes
    _assert_same(data, loaded)
    assert _entries(tmp_path) == ["stream"]


def test_folder_writer_refuses_more_than_its_capacity(tmp_path):
    with pytest.raises(ValueError, match="at most 2"):
        with FolderWriter(tmp_path / "w", capacity=2, image_size=(H, W)) as writer:
            writer.append(np.zeros((3, H, W), np.uint8), 0, 0, ["a", "b", "c"])
    assert _entries(tmp_path) == []


def test_folder_writer_left_by_an_error_or_without_finish_leaves_nothing(tmp_path):
    with pytest.raises(KeyError):
        with FolderWriter(tmp_path / "w", capacity=4, image_size=(H, W)) as writer:
            writer.append(np.zeros((1, H, W), np.uint8), 0, 0, ["a"])
            raise KeyError("stop")
    with pytest.raises(RuntimeError, match="without finish"):
        with FolderWriter(tmp_path / "w", capacity=4, image_size=(H, W)):
            pass
    assert _entries(tmp_path) == []


def test_folder_writer_replaces_an_existing_folder_only_when_done(tmp_path):
    path = _set(seed=1).save(str(tmp_path / "set") + "/")
    data = _set(users=1, seed=3)
    with FolderWriter(path, capacity=len(data), image_size=(H, W), overwrite=True) as writer:
        writer.append(data.x, data.y, data.yforg, data.filenames)
        _assert_same(SignatureSet.load(path), _set(seed=1))  # old content until finish
        writer.finish(data.user_mapping)
    _assert_same(SignatureSet.load(path), data)

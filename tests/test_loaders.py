"""Built-in dataset loaders on synthetic data written in each real layout (every built-in one:
``sig synth`` writes them all). The loaders of bhsig and folder have their own test files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sigcli.data.plugins import get_loader
from sigcli.data.synth import synthesize
from sigcli.errors import DatasetLayoutError, InputError

# layout → (first user number, per-user counts the fixture writes: genuine, skilled, simple)
LAYOUTS = {
    "gpds": (1, (3, 2, 0)),
    "gpds-synthetic": (1, (3, 2, 0)),
    "mcyt": (0, (3, 2, 0)),
    "cedar": (1, (3, 2, 0)),
    "brazilian": (1, (3, 2, 2)),
    "brazilian-nosimple": (1, (3, 2, 0)),
    "bhsig-bengali": (1, (3, 2, 0)),
    "bhsig-hindi": (1, (3, 2, 0)),
    "folder": (1, (3, 2, 0)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_loader_reads_its_layout(layout, synth_dataset):
    first, (genuine, skilled, simple) = LAYOUTS[layout]
    path = synth_dataset(layout, users=3, genuine=genuine, skilled=skilled, simple=simple or None)
    loader = get_loader(layout)(path)
    assert loader.users() == [first, first + 1, first + 2]
    for user in loader.users():
        assert len(loader.genuine_files(user)) == genuine
        assert len(loader.skilled_files(user)) == skilled
        assert len(loader.simple_files(user)) == simple
    image, name = next(loader.iter_genuine(first))
    assert image.dtype == np.uint8 and image.ndim == 2
    assert name == loader.genuine_files(first)[0].name
    canvas = loader.canvas_size  # measured from the files where the layout has no fixed one
    assert image.shape[0] <= canvas[0] and image.shape[1] <= canvas[1]
    assert image.min() < 130 < 190 < np.median(image)  # dark ink on light paper


def test_real_file_names_and_order(synth_dataset):
    gpds = get_loader("gpds")(synth_dataset("gpds", users=3, genuine=3, skilled=2))
    assert [f.name for f in gpds.genuine_files(2)] == ["c-002-01.png", "c-002-02.png", "c-002-03.png"]
    assert [f.name for f in gpds.skilled_files(2)] == ["cf-002-01.png", "cf-002-02.png"]
    mcyt = get_loader("mcyt")(synth_dataset("mcyt", users=3, genuine=3, skilled=2))
    assert [f.name for f in mcyt.genuine_files(0)] == ["0000v00.bmp", "0000v01.bmp", "0000v02.bmp"]
    assert [f.name for f in mcyt.skilled_files(0)] == ["0000f00.bmp", "0000f01.bmp"]
    brazilian = get_loader("brazilian")(synth_dataset("brazilian", users=3, genuine=3, skilled=2, simple=2))
    assert [f.name for f in brazilian.simple_files(1)] == ["a001_41.jpg", "a001_42.jpg"]
    assert [f.name for f in brazilian.skilled_files(1)] == ["a001_51.jpg", "a001_52.jpg"]


def test_users_sort_by_number_and_strays_are_ignored(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gathered")
    for first in (9, 200, 1000):  # each synth writes a whole folder: gather their users in one
        out = synthesize("gpds-synthetic", tmp_path_factory.mktemp("synth"), users=1, genuine=2, skilled=1,
                         first_user=first).out
        next(p for p in out.iterdir() if p.is_dir()).rename(tmp_path / f"{first:03d}")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["009", "1000", "200"]
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "foo").mkdir()
    (tmp_path / "200" / "Thumbs.db").write_text("x")
    (tmp_path / "200" / "readme.txt").write_text("x")
    (tmp_path / "200" / ".c-200-09.jpg.tmp.jpg").write_bytes(b"half an image")  # an interrupted write
    loader = get_loader("gpds-synthetic")(tmp_path)
    assert loader.users() == [9, 200, 1000]
    assert [f.name for f in loader.genuine_files(200)] == ["c-200-01.jpg", "c-200-02.jpg"]
    assert [f.name for f in loader.skilled_files(1000)] == ["cf-1000-01.jpg"]


def test_files_in_numeric_order(tmp_path):
    synthesize("cedar", tmp_path, users=1, genuine=11, skilled=0)
    loader = get_loader("cedar")(tmp_path)
    assert [f.name for f in loader.genuine_files(1)] == [f"original_1_{k}.png" for k in range(1, 12)]


def test_mcyt_names_are_case_insensitive(tmp_path):
    synthesize("mcyt", tmp_path, users=1, genuine=2, skilled=2)
    folder = tmp_path / "0000"
    (folder / "0000v01.bmp").rename(folder / "0000V01.BMP")
    (folder / "0000f00.bmp").rename(folder / "x0000F00.bmp")
    loader = get_loader("mcyt")(tmp_path)
    assert [f.name for f in loader.genuine_files(0)] == ["0000v00.bmp", "0000V01.BMP"]
    assert [f.name for f in loader.skilled_files(0)] == ["0000f01.bmp", "x0000F00.bmp"]


def test_brazilian_forgeries_only_for_the_first_60_writers(tmp_path):
    result = synthesize("brazilian", tmp_path, users=3, genuine=2, skilled=1, simple=1, first_user=59)
    assert result.counts == {"genuine": 6, "skilled": 2, "simple": 2}
    full = get_loader("brazilian")(tmp_path)
    assert full.users() == [59, 60, 61]
    assert [len(full.skilled_files(u)) for u in full.users()] == [1, 1, 0]
    assert [len(full.simple_files(u)) for u in full.users()] == [1, 1, 0]
    nosimple = get_loader("brazilian-nosimple")(tmp_path)
    assert nosimple.users() == [59, 60]
    assert nosimple.simple_files(59) == [] and len(nosimple.skilled_files(59)) == 1


def test_brazilian_files_in_per_writer_folders(tmp_path):
    synthesize("brazilian", tmp_path, users=2, genuine=2, skilled=1, simple=1)
    for user in (1, 2):
        (tmp_path / f"{user:03d}").mkdir()
        for file in tmp_path.glob(f"a{user:03d}_*.jpg"):
            file.rename(tmp_path / f"{user:03d}" / file.name)
    loader = get_loader("brazilian")(tmp_path)
    assert loader.users() == [1, 2]
    assert [f.name for f in loader.genuine_files(2)] == ["a002_01.jpg", "a002_02.jpg"]
    shutil.copy(tmp_path / "002" / "a002_01.jpg", tmp_path / "a002_01.jpg")
    with pytest.raises(DatasetLayoutError, match="both writer 2 image 1"):
        get_loader("brazilian")(tmp_path)


@pytest.mark.parametrize("layout, expected", [
    ("gpds", "no user folders named NNN under"),
    ("gpds-synthetic", "no user folders named NNN under"),
    ("mcyt", "no user folders named NNNN under"),
    ("cedar", "no folder full_org/ (and full_forg/) under"),
    ("brazilian", "no files named aUUU_KK.jpg"),
])
def test_wrong_folder_says_what_was_expected_and_found(layout, expected, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "foo").mkdir()
    with pytest.raises(DatasetLayoutError) as raised:
        get_loader(layout)(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{layout}: {expected}")
    assert "(found: a.txt, foo/)" in message
    assert f"sig datasets {layout}" in message


def test_cedar_without_images_and_missing_paths(tmp_path):
    (tmp_path / "full_org").mkdir()
    (tmp_path / "full_forg").mkdir()
    (tmp_path / "full_org" / "Thumbs.db").write_text("x")
    with pytest.raises(DatasetLayoutError, match=r"no files named original_U_K.png under .*full_org \(found: Thumbs.db\)"):
        get_loader("cedar")(tmp_path)
    with pytest.raises(DatasetLayoutError, match="is not a folder"):
        get_loader("cedar")(tmp_path / "missing")


def test_one_user_under_two_folder_names_is_an_error(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "007").mkdir()
    with pytest.raises(DatasetLayoutError, match="are both user 7"):
        get_loader("gpds")(tmp_path)


def test_unknown_user_is_an_input_error(synth_dataset):
    loader = get_loader("gpds")(synth_dataset("gpds", users=3, genuine=3, skilled=2))
    with pytest.raises(InputError, match=r"gpds: no user 99 .*\(users: 1\.\.3\)"):
        loader.genuine_files(99)


@pytest.mark.parametrize("layout", ["gpds", "gpds-synthetic", "mcyt", "cedar", "brazilian", "brazilian-nosimple"])
def test_describe_says_how_to_obtain_and_the_layout(layout):
    text = get_loader(layout).describe()
    assert "Obtain:" in text and "Layout" in text
    assert "x".join(map(str, get_loader(layout).canvas_size)) in text

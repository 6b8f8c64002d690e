"""BHSig260 loaders (bhsig-bengali, bhsig-hindi) on small generated sets in the real layout.

Files are named literally as the distributed set names them (``B-S-<w>-G-<nn>.tif``), with
the mess circulating copies have: stray Thumbs.db and .DS_Store, mixed-case suffixes,
unpadded numbers, colour and 16-bit images, TIFF content behind a .png name, and byte-
identical copies within a writer.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sigcli.data import plugins
from sigcli.data.loader import CANVAS_PERCENTILE, CANVAS_STEP, canvas_holding, image_shape, read_gray
from sigcli.data.sigset import SignatureSet
from sigcli.data.synth import user_signatures
from sigcli.errors import DatasetLayoutError
from sigcli.preprocess import preprocess_signature
from sigcli_datasets.bhsig import BHSigBengaliLoader, BHSigHindiLoader

GENUINE, FORGED = 3, 2


def write_script(folder: Path, script: str, writers: list[int]) -> dict[Path, np.ndarray]:
    """``writers`` with GENUINE genuine and FORGED forged grey TIFFs each; returns the pixels written."""
    written = {}
    for writer in writers:
        (folder / str(writer)).mkdir(parents=True)
        signatures = user_signatures(writer, {"genuine": GENUINE, "skilled": FORGED}, seed=3, layout="bhsig-bengali")
        for kind, k, image in signatures:
            path = folder / str(writer) / f"{script}-S-{writer}-{'G' if kind == 'genuine' else 'F'}-{k + 1:02d}.tif"
            Image.fromarray(image).save(path)
            written[path] = image
    return written


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[Path, np.ndarray]]:
    """BHSig260/Bengali with writers 1, 2, 10 and BHSig260/Hindi with writers 1, 2."""
    root = tmp_path_factory.mktemp("bhsig") / "BHSig260"
    written = write_script(root / "Bengali", "B", [1, 2, 10])
    write_script(root / "Hindi", "H", [1, 2])
    return root, written


@pytest.fixture
def messy(clean, tmp_path) -> Path:
    """The clean set copied, then dirtied the ways circulating copies are."""
    root = tmp_path / "BHSig260"
    shutil.copytree(clean[0], root)
    writer = root / "Bengali" / "2"
    (writer / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    (writer / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (writer / "._B-S-2-G-01.tif").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (writer / "B-S-2-G-02.tif").rename(writer / "B-S-2-G-02.TIF")
    grey = np.asarray(Image.open(writer / "B-S-2-G-03.tif"))
    (writer / "B-S-2-G-03.tif").unlink()
    Image.fromarray(grey).save(writer / "B-S-2-G-03.png", format="TIFF")  # TIFF content, .png name
    Image.fromarray(grey.astype(np.uint16) * 257).save(writer / "B-S-2-G-4.tif")  # 16-bit, unpadded number
    rgba = np.dstack([np.zeros_like(grey)] * 3 + [255 - grey])  # black ink in the alpha channel only
    Image.fromarray(rgba, "RGBA").save(writer / "B-S-2-F-03.png")
    Image.fromarray(grey).convert("P").save(writer / "b_s_2_f_10.png")  # palette, other case and separators
    first = root / "Bengali" / "1"
    shutil.copy(first / "B-S-1-G-01.tif", first / "B-S-1-G-04.tif")  # an exact copy
    shutil.copy(first / "B-S-1-F-02.tif", first / "B-S-1-F-03.tif")
    return root


def test_files_in_the_distributed_naming_from_the_root_or_the_script_folder(clean):
    root, written = clean
    loader = BHSigBengaliLoader(root)
    assert loader.script_folder == root / "Bengali"
    assert loader.users() == [1, 2, 10]
    assert [f.name for f in loader.genuine_files(10)] == ["B-S-10-G-01.tif", "B-S-10-G-02.tif", "B-S-10-G-03.tif"]
    assert [f.name for f in loader.skilled_files(10)] == ["B-S-10-F-01.tif", "B-S-10-F-02.tif"]
    direct = BHSigBengaliLoader(root / "Bengali")
    assert {u: direct.genuine_files(u) + direct.skilled_files(u) for u in direct.users()} == \
        {u: loader.genuine_files(u) + loader.skilled_files(u) for u in loader.users()}
    assert sorted(f for u in loader.users() for f in loader.genuine_files(u) + loader.skilled_files(u)) == \
        sorted(written)
    hindi = BHSigHindiLoader(root)
    assert hindi.users() == [1, 2] and hindi.skilled_files(2)[0].name == "H-S-2-F-01.tif"
    assert BHSigBengaliLoader.relative_path(12, "skilled", 3) == "12/B-S-12-F-03.tif"
    assert BHSigHindiLoader.relative_path(7, "genuine", 24) == "7/H-S-7-G-24.tif"


def test_a_kaggle_style_folder_name_and_the_wrong_script(clean, tmp_path):
    copy = tmp_path / "download"
    shutil.copytree(clean[0] / "Hindi", copy / "BHSig260-Hindi")
    assert BHSigHindiLoader(copy).users() == [1, 2]
    with pytest.raises(DatasetLayoutError, match=r"files of the other script \(e\.g\. H-S-1-") as raised:
        BHSigBengaliLoader(copy / "BHSig260-Hindi")
    assert "use the other bhsig loader" in raised.value.hint
    with pytest.raises(DatasetLayoutError, match="no writer folders"):
        BHSigBengaliLoader(copy)


def test_writers_off_the_expected_counts_are_warned_one_line_each_then_summed_up(clean, caplog):
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        BHSigBengaliLoader(clean[0])
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == [f"bhsig-bengali writer {w}: 3 genuine (expected 24), 2 skilled (expected 30)"
                         for w in (1, 2, 10)]
    assert lines[3] == "bhsig-bengali: 3 of 3 writer(s) do not have the expected 24 genuine / 30 skilled"
    assert lines[4].startswith("bhsig-bengali: 3 writers under") and lines[4].endswith("the full set has 100")


def test_messy_files_are_found_and_read_by_content(messy, clean):
    loader = BHSigBengaliLoader(messy)
    assert [f.name for f in loader.genuine_files(2)] == ["B-S-2-G-01.tif", "B-S-2-G-02.TIF", "B-S-2-G-03.png",
                                                        "B-S-2-G-4.tif"]
    assert [f.name for f in loader.skilled_files(2)] == ["B-S-2-F-01.tif", "B-S-2-F-02.tif", "B-S-2-F-03.png",
                                                        "b_s_2_f_10.png"]
    grey = clean[1][clean[0] / "Bengali" / "2" / "B-S-2-G-03.tif"]
    for name in ("B-S-2-G-03.png", "B-S-2-G-4.tif", "B-S-2-F-03.png", "b_s_2_f_10.png"):
        assert np.array_equal(read_gray(messy / "Bengali" / "2" / name), grey), name


def test_duplicates_are_reported_and_kept_unless_dedupe(messy, tmp_path, cli, caplog):
    def preprocess(name: str, *extra: str) -> tuple[SignatureSet, list[str]]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sigcli"):
            result = cli("preprocess", "--dataset", "bhsig-bengali", "--raw-path", messy, "--save-path",
                         tmp_path / name, "--workers", 1, *extra)
        assert result.exit_code == 0, result.output
        return SignatureSet.load(tmp_path / name), [r.getMessage() for r in caplog.records]

    with_copies, logged = preprocess("kept.npz")
    assert "bhsig-bengali writer 1: identical files B-S-1-G-04.tif = B-S-1-G-01.tif, " \
           "B-S-1-F-03.tif = B-S-1-F-02.tif" in logged
    assert "bhsig-bengali: 2 file(s) in 1 writer(s) are byte-identical copies of another file of their writer: " \
           "kept; pass --dedupe to leave them out" in logged
    assert "B-S-1-G-04.tif" in with_copies.filenames.tolist()

    deduped, logged = preprocess("deduped.npz", "--dedupe")
    assert logged[-2].endswith("their writer: left out (--dedupe)")
    names = deduped.filenames.tolist()
    assert names == [name for name in with_copies.filenames.tolist() if name not in ("B-S-1-G-04.tif", "B-S-1-F-03.tif")]
    assert deduped.counts() == {"genuine": 3 + 4 + 3, "skilled": 2 + 4 + 2, "simple": 0}
    assert deduped.user_mapping.tolist() == [1, 2, 10]
    assert np.array_equal(deduped.x, with_copies.x[np.isin(with_copies.filenames, names)])


def test_preprocess_end_to_end_on_the_measured_canvas(clean, tmp_path, cli, caplog):
    root, written = clean
    with caplog.at_level(logging.INFO, logger="sigcli"):
        result = cli("preprocess", "--dataset", "bhsig-hindi", "--raw-path", root, "--save-path", tmp_path / "hindi.npz",
                     "--workers", 1)
    assert result.exit_code == 0, result.output
    loader = plugins.get_loader("bhsig-hindi")(root)
    files = [f for u in loader.users() for f in loader.genuine_files(u) + loader.skilled_files(u)]
    canvas = canvas_holding([image_shape(f) for f in files], CANVAS_PERCENTILE, CANVAS_STEP)
    assert loader.canvas_size == canvas and canvas[0] % CANVAS_STEP == 0
    assert any(r.getMessage().startswith(f"bhsig-hindi: canvas {canvas[0]}×{canvas[1]}, holding the 99th")
               for r in caplog.records)
    data = SignatureSet.load(tmp_path / "hindi.npz")
    assert data.user_mapping.tolist() == [1, 2] and data.y.tolist() == [0] * 5 + [1] * 5
    assert data.yforg.tolist() == ([0] * GENUINE + [1] * FORGED) * 2
    assert data.filenames[GENUINE] == "H-S-1-F-01.tif"
    expected = preprocess_signature(read_gray(root / "Hindi" / "1" / "H-S-1-F-01.tif"), canvas)
    assert np.array_equal(data.x[GENUINE, 0], expected)


def test_sig_datasets_describes_the_layout_and_a_canvas_from_data(cli):
    described = cli("datasets", "bhsig-bengali")
    assert described.exit_code == 0
    assert "Bengali/1/B-S-1-G-01.tif ... B-S-1-G-24.tif" in described.stdout
    assert "or at Bengali/" in described.stdout and "--dedupe" in described.stdout
    record = next(r for r in plugins.list_plugins() if r.name == "bhsig-hindi").as_dict()
    assert record["canvas_size"] is None and record["genuine_per_user"] == 24 and record["skilled_per_user"] == 30
    assert "from data" in cli("datasets").stdout

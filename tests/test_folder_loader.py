"""The generic folder loader (``--dataset folder``), loader options, measured canvases and
robust image reading, on small generated folders laid out as practitioners keep them."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sigcli.config.verify import VerifyOptions
from sigcli.data import plugins
from sigcli.data.loader import CANVAS_STEP, canvas_holding, read_gray
from sigcli.data.sigset import SignatureSet
from sigcli.data.synth import user_signatures
from sigcli.errors import DatasetLayoutError, InputError
from sigcli.options import build
from sigcli.config.preprocess import IMAGE_SIZE, PreprocessOptions
from sigcli.preprocess import preprocess_signature
from sigcli.verify import verify
from sigcli_datasets.folder import FolderLoader, default_path


def signatures(writer: int, genuine: int, forged: int) -> list[tuple[str, int, np.ndarray]]:
    return list(user_signatures(writer, {"genuine": genuine, "skilled": forged}, seed=5, layout="folder"))


def write(path: Path, image: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **save)
    return path


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Path:
    """Four writers by name, in both default layouts: genuine/ and forged/ sub-folders, or
    'forg' in the file name; with the usual strays (Thumbs.db, .DS_Store, __MACOSX/)."""
    root = tmp_path_factory.mktemp("folder") / "scans"
    for writer, name in enumerate(["alice", "w10", "w2", "Bob"]):
        for kind, k, image in signatures(writer, 3, 2):
            if name in ("alice", "w2"):
                write(root / default_path(name, kind, k + 1), image)
            else:
                write(root / name / (f"{name}_forgery_{k + 1}.JPG" if kind == "skilled" else f"scan {k + 1}.Tif"),
                      image, **({"quality": 95} if kind == "skilled" else {}))
    (root / "alice" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "alice" / "genuine" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "__MACOSX" / "alice").mkdir(parents=True)
    (root / "__MACOSX" / "alice" / "._01.png").write_bytes(b"\x00\x05\x16\x07")
    return root


def test_writers_by_name_in_natural_order_with_both_default_layouts(people, caplog):
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        loader = FolderLoader(people)
    assert loader.users() == [0, 1, 2, 3]
    assert [loader.writer_label(u) for u in loader.users()] == ["alice", "Bob", "w2", "w10"]
    assert [loader.record_name(f) for f in loader.genuine_files(0)] == [
        "alice/genuine/01.png", "alice/genuine/02.png", "alice/genuine/03.png"]
    assert [loader.record_name(f) for f in loader.skilled_files(1)] == ["Bob/Bob_forgery_1.JPG", "Bob/Bob_forgery_2.JPG"]
    assert [f.name for f in loader.genuine_files(3)] == ["scan 1.Tif", "scan 2.Tif", "scan 3.Tif"]
    assert (loader.genuine_per_user, loader.skilled_per_user) == (3, 2)
    assert [r.getMessage() for r in caplog.records] == [
        f"folder: 1 folder(s) under {people} hold no signature images and are left out: __MACOSX"]


def test_numbered_writer_folders_keep_their_numbers(tmp_path):
    for writer in (7, 30, 100):
        for kind, k, image in signatures(writer, 1, 1):
            write(tmp_path / default_path(f"{writer:03d}", kind, k + 1), image)
    loader = FolderLoader(tmp_path)
    assert loader.users() == [7, 30, 100] and loader.writer_label(30) == "030"


def test_patterns_canvas_and_unknown_options_through_loader_options(people, tmp_path, caplog):
    for name in ("alice", "w2"):
        shutil.copytree(people / name / "genuine", tmp_path / name / "references")
        shutil.copytree(people / name / "forged", tmp_path / name / "forgeries")
        shutil.copytree(people / name / "forged", tmp_path / name / "rejected")
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        loader = FolderLoader.open(tmp_path, {"forged": "forgeries/*", "genuine": "REFERENCES/*",
                                              "canvas": "300x400"})
    assert not caplog.records
    assert [loader.record_name(f) for f in loader.skilled_files(0)] == ["alice/forgeries/01.png",
                                                                         "alice/forgeries/02.png"]
    assert all("/references/" in loader.record_name(f) for f in loader.genuine_files(1))
    assert loader.canvas_size == (300, 400)
    with pytest.raises(InputError, match=r"folder: no loader option 'forgery' \(options it takes: forged, "
                                         r"genuine, canvas\)"):
        FolderLoader.open(tmp_path, {"forgery": "x"})
    with pytest.raises(InputError, match="canvas '300' is not HEIGHTxWIDTH"):
        FolderLoader.open(tmp_path, {"canvas": "300"})
    with pytest.raises(InputError, match="no loader option 'canvas' .*options it takes: none"):
        plugins.get_loader("cedar").open(tmp_path, {"canvas": "300x400"})


def test_the_canvas_holds_the_99th_percentile_not_one_outlier(tmp_path):
    heights = np.tile(np.arange(40, 60), 5)  # 100 ordinary images
    for i, height in enumerate(heights):
        write(tmp_path / "w" / f"{i:03d}.png", np.full((height, 70), 255, np.uint8))
    write(tmp_path / "w" / "page.png", np.full((2000, 3000), 255, np.uint8))  # one page-sized scan
    canvas = FolderLoader(tmp_path).canvas_size
    assert canvas == canvas_holding([(59, 70)], step=CANVAS_STEP) == (60, 86)
    assert canvas[1] / canvas[0] == pytest.approx(IMAGE_SIZE[1] / IMAGE_SIZE[0], abs=1 / canvas[0])
    write(tmp_path / "w" / "page2.png", np.full((2000, 3000), 255, np.uint8))  # 2 of 102: above the 99th
    assert FolderLoader(tmp_path).canvas_size == (2110, 3004)  # 3000 wide: 2108 high at 170:242


def test_images_read_by_content_whatever_their_mode_or_name(tmp_path):
    grey = signatures(1, 1, 0)[0][2]
    rgb = np.dstack([grey, np.clip(grey.astype(int) + 40, 0, 255).astype(np.uint8), grey // 2])
    luminance = read_gray(write(tmp_path / "rgb.png", rgb))
    transparent = np.dstack([np.zeros_like(grey)] * 3 + [255 - grey])  # ink only in the alpha channel
    same_as_grey = {
        "upper.PNG": (grey, {}),
        "tiff-inside.png": (grey, {"format": "TIFF"}),
        "png-inside.tif": (grey, {"format": "PNG"}),
        "sixteen.png": (grey.astype(np.uint16) * 257, {}),
        "sixteen.tif": (grey.astype(np.uint16) * 257, {}),
        "palette.gif": (grey, {}),
        "grey-alpha.png": (np.dstack([grey, np.full_like(grey, 255)]), {}),
        "rgba.png": (transparent, {}),
        "scan.webp": (grey, {"lossless": True}),
    }
    for name, (pixels, save) in same_as_grey.items():
        path = write(tmp_path / name, pixels, **save)
        assert np.array_equal(read_gray(path), grey), name
    Image.fromarray(grey).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(255 - grey)])
    assert np.array_equal(read_gray(tmp_path / "pages.tif"), grey)  # the first page
    quantized = Image.fromarray(rgb).quantize(256)
    quantized.save(tmp_path / "rgb-palette.png")
    assert np.array_equal(read_gray(tmp_path / "rgb-palette.png"),
                          read_gray(write(tmp_path / "rgb-quantized.png", np.asarray(quantized.convert("RGB")))))
    assert not np.array_equal(luminance, grey) and luminance.dtype == np.uint8
    (tmp_path / "page.png").write_text("<html>quota exceeded</html>")
    with pytest.raises(Exception):
        read_gray(tmp_path / "page.png")


def test_preprocess_end_to_end_with_duplicates_and_dedupe(people, tmp_path, cli, caplog):
    root = tmp_path / "scans"
    shutil.copytree(people, root)
    shutil.copy(root / "w2" / "genuine" / "01.png", root / "w2" / "genuine" / "04.png")
    caplog.set_level(logging.INFO, logger="sigcli")
    kept = cli("preprocess", "--dataset", "folder", "--raw-path", root, "--save-path", tmp_path / "kept.npz",
               "--workers", 1)
    assert kept.exit_code == 0, kept.output
    logged = [r.getMessage() for r in caplog.records]
    assert "folder writer w2: identical files w2/genuine/04.png = w2/genuine/01.png" in logged
    assert "folder writer w2: 4 genuine (expected 3)" in logged
    data = SignatureSet.load(tmp_path / "kept.npz")
    assert data.user_mapping.tolist() == [0, 1, 2, 3]
    assert data.filenames[:5].tolist() == ["alice/genuine/01.png", "alice/genuine/02.png", "alice/genuine/03.png",
                                           "alice/forged/01.png", "alice/forged/02.png"]
    assert data.counts() == {"genuine": 13, "skilled": 8, "simple": 0}

    deduped = cli("preprocess", "--dataset", "folder", "--raw-path", root, "--save-path", tmp_path / "deduped.npz",
                  "--workers", 1, "--dedupe", "--loader-option", "canvas=200x285")
    assert deduped.exit_code == 0, deduped.output
    data = SignatureSet.load(tmp_path / "deduped.npz")
    assert "w2/genuine/04.png" not in data.filenames.tolist() and data.counts()["genuine"] == 12
    expected = preprocess_signature(read_gray(root / "Bob" / "scan 1.Tif"), (200, 285))
    assert np.array_equal(data.x[data.filenames.tolist().index("Bob/scan 1.Tif"), 0], expected)
    options = build(PreprocessOptions, dataset="folder", raw_path=root, save_path=str(tmp_path / "again.npz"),
                    loader_options=["canvas=200x285", "forged = *forg*"], workers=1)
    assert options.loader_options == {"canvas": "200x285", "forged": " *forg*"}


def test_bad_loader_options_are_one_error_line(people, tmp_path, cli):
    for option, message in [("canvas", "error: --loader-option 'canvas' is not KEY=VALUE"),
                            ("colour=red", "error: folder: no loader option 'colour' (options it takes: forged, "
                                           "genuine, canvas)")]:
        result = cli("preprocess", "--dataset", "folder", "--raw-path", people, "--save-path", tmp_path / "x.npz",
                     "--loader-option", option)
        assert result.exit_code == 2 and message in result.output, result.output


def test_an_empty_root_and_a_flat_folder_are_layout_errors(tmp_path):
    write(tmp_path / "flat" / "a.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(DatasetLayoutError, match="no writer folders holding images"):
        FolderLoader(tmp_path / "flat")


def test_sig_datasets_explains_the_layout_and_verify_asks_for_a_canvas(cli, tmp_path):
    described = cli("datasets", "folder")
    assert described.exit_code == 0
    for text in ("ROOT/alice/genuine/01.png", "ROOT/alice/forged/01.png", "canvas: canvas as HEIGHTxWIDTH",
                 "--loader-option KEY=VALUE", "natural order"):
        assert text in described.stdout
    record = next(r for r in plugins.list_plugins() if r.name == "folder").as_dict()
    assert record["canvas_size"] is None and record["genuine_per_user"] is None
    with pytest.raises(InputError, match="dataset folder has no fixed canvas"):
        verify(VerifyOptions(model_path=tmp_path / "none.pth", references=[tmp_path], queries=[tmp_path],
                             dataset="folder"))

"""sig preprocess: byte parity with the reference algorithm, worker-independent output, bad input."""

import json
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from skimage import filters, transform
from skimage.draw import line_aa
from skimage.io import imsave

from evaluation_data import option_names
from sigcli import preprocess
from sigcli.cli.derive import argv, parse
from sigcli.config.datasets import DatasetsOptions
from sigcli.config.info import InfoOptions
from sigcli.data import plugins
from sigcli.data.loader import DatasetLoader, read_gray
from sigcli.data.sigset import SignatureSet
from sigcli.errors import InputError
from sigcli.options import build
from sigcli.config.preprocess import PreprocessOptions
from sigcli.preprocess import BlankImageError, preprocess_signature, process_dataset
from sigcli.progress import RecordingReporter

pytestmark = pytest.mark.filterwarnings(
    "ignore:Mean of empty slice",  # the oracle on an image without ink, before it raises
    "ignore:invalid value encountered in scalar divide",
    "ignore:The legacy `DICOM` plugin",  # imageio trying every decoder on the HTML page
)


@pytest.fixture(autouse=True)
def _sigcli_warnings_reach_caplog(monkeypatch):
    """A `sig` run (CliRunner) routes logger 'sigcli' to its own handler only; caplog needs it."""
    monkeypatch.setattr(logging.getLogger("sigcli"), "propagate", True)


# ---------------------------------------------------------------------------- the oracle
# A literal transcription of the reference normalisation (sigver, preprocessing/normalize.py
# and the preprocessing call of datasets/util.py), kept naive on purpose: it is what our
# implementation must match byte for byte.
def reference_normalize_image(img, canvas_size):
    blurred_image = filters.gaussian(img, 2, preserve_range=True)
    threshold = filters.threshold_otsu(img)
    binarized_image = blurred_image > threshold
    r, c = np.where(binarized_image == 0)
    r_center = int(r.mean() - r.min())
    c_center = int(c.mean() - c.min())
    cropped = img[r.min(): r.max(), c.min(): c.max()]
    img_rows, img_cols = cropped.shape
    max_rows, max_cols = canvas_size
    r_start = max_rows // 2 - r_center
    c_start = max_cols // 2 - c_center
    if img_rows > max_rows:
        r_start = 0
        difference = img_rows - max_rows
        crop_start = difference // 2
        cropped = cropped[crop_start:crop_start + max_rows, :]
        img_rows = max_rows
    else:
        extra_r = (r_start + img_rows) - max_rows
        if extra_r > 0:
            r_start -= extra_r
        if r_start < 0:
            r_start = 0
    if img_cols > max_cols:
        c_start = 0
        difference = img_cols - max_cols
        crop_start = difference // 2
        cropped = cropped[:, crop_start:crop_start + max_cols]
        img_cols = max_cols
    else:
        extra_c = (c_start + img_cols) - max_cols
        if extra_c > 0:
            c_start -= extra_c
        if c_start < 0:
            c_start = 0
    normalized_image = np.ones((max_rows, max_cols), dtype=np.uint8) * 255
    normalized_image[r_start:r_start + img_rows, c_start:c_start + img_cols] = cropped
    normalized_image[normalized_image > threshold] = 255
    return normalized_image


def reference_resize_image(img, size):
    height, width = size
    width_ratio = float(img.shape[1]) / width
    height_ratio = float(img.shape[0]) / height
    if width_ratio > height_ratio:
        resize_height = height
        resize_width = int(round(img.shape[1] / height_ratio))
    else:
        resize_width = width
        resize_height = int(round(img.shape[0] / width_ratio))
    img = transform.resize(img, (resize_height, resize_width), mode='constant', anti_aliasing=True,
                           preserve_range=True)
    img = img.astype(np.uint8)
    if width_ratio > height_ratio:
        start = int(round((resize_width - width) / 2.0))
        return img[:, start:start + width]
    start = int(round((resize_height - height) / 2.0))
    return img[start:start + height, :]


def reference_preprocess_signature(img, canvas_size, img_size=(170, 242)):
    img = img.astype(np.uint8)
    centered = reference_normalize_image(img, canvas_size)
    inverted = 255 - centered
    return reference_resize_image(inverted, img_size)


# ---------------------------------------------------------------------------- test images
def page(rng, shape, strokes=None, thickness=None, touch_border=False, ink=None, paper=None):
    """A scanned-looking page: noisy light paper with a few dark anti-aliased strokes."""
    h, w = shape
    paper = rng.integers(170, 256) if paper is None else paper
    img = np.full((h, w), float(paper)) + rng.normal(0, rng.uniform(0, 12), (h, w))
    stroke = np.zeros((h, w))
    for _ in range(strokes or int(rng.integers(1, 5))):
        points = rng.integers([0, 0], [h, w], size=(int(rng.integers(2, 8)), 2))
        if touch_border:
            points[0, 0], points[-1, 1] = rng.choice([0, h - 1]), rng.choice([0, w - 1])
        for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
            rr, cc, value = line_aa(int(r0), int(c0), int(r1), int(c1))
            stroke[rr, cc] = np.maximum(stroke[rr, cc], value)
    for _ in range(int(rng.integers(0, 4)) if thickness is None else thickness):
        stroke = np.maximum.reduce([stroke, np.roll(stroke, 1, 0), np.roll(stroke, 1, 1)])
    level = rng.uniform(0, 120) if ink is None else ink
    return np.clip(img * (1 - stroke) + level * stroke, 0, 255).astype(np.uint8)


def assert_matches_reference(img, canvas, size=(170, 242)):
    expected = reference_preprocess_signature(img, canvas, size)
    got = preprocess_signature(img, canvas, size)
    assert got.dtype == np.uint8 and got.shape == expected.shape == tuple(size)
    assert np.array_equal(got, expected), f"{(got != expected).sum()} pixels differ"
    return got


# ---------------------------------------------------------------------------- parity
def test_random_pages_match_the_reference_byte_for_byte(caplog):
    rng = np.random.default_rng(2024)
    compared = blank = cropped = 0
    sizes = [(170, 242), (150, 220), (40, 60), (300, 100), (64, 64)]
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        for i in range(90):
            shape = (int(rng.integers(3, 240)), int(rng.integers(3, 360)))
            canvas = (int(rng.integers(10, 300)), int(rng.integers(10, 450)))
            img = page(rng, shape, touch_border=i % 3 == 0)
            try:
                expected = reference_preprocess_signature(img, canvas, sizes[i % 5])
            except ValueError:  # the reference crashes on an image without ink
                with pytest.raises(BlankImageError):
                    preprocess_signature(img, canvas, sizes[i % 5])
                blank += 1
                continue
            before = len(caplog.records)
            assert np.array_equal(preprocess_signature(img, canvas, sizes[i % 5]), expected), (i, shape, canvas)
            compared += 1
            cropped += len(caplog.records) > before
    assert compared >= 70 and cropped >= 10  # the crop branch is exercised, not just the easy one


def test_dataset_sized_canvases_match_with_and_without_the_windowed_resize(monkeypatch):
    rng = np.random.default_rng(7)
    cases = [((952, 1360), (420, 760)), ((730, 1042), (300, 640)), ((600, 850), (350, 500))]
    images = [(page(rng, shape, thickness=2), canvas) for canvas, shape in cases]
    fast = [assert_matches_reference(img, canvas) for img, canvas in images]
    monkeypatch.setattr(preprocess, "_WINDOWED_RESIZE", False)
    plain = [assert_matches_reference(img, canvas) for img, canvas in images]
    assert all(np.array_equal(a, b) for a, b in zip(fast, plain))
    assert all(image.max() > 0 for image in fast)  # ink bright on 0


@pytest.mark.parametrize("shape, canvas, cut", [
    ((300, 120), (100, 400), "rows"),
    ((120, 500), (300, 200), "columns"),
    ((400, 600), (150, 250), "both"),
])
def test_signature_larger_than_the_canvas_is_cropped_with_a_warning(shape, canvas, cut, caplog):
    img = page(np.random.default_rng(len(cut)), shape, strokes=6, thickness=3, touch_border=True)
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        assert_matches_reference(img, canvas)
    assert [r.getMessage() for r in caplog.records] == [
        f"a signature larger than the {canvas[0]}×{canvas[1]} canvas was cropped"]


def test_ink_touching_every_border():
    rng = np.random.default_rng(3)
    img = page(rng, (200, 300), thickness=2)
    img[0, :], img[-1, :], img[:, 0], img[:, -1] = 10, 20, 30, 40
    assert_matches_reference(img, (250, 350))
    assert_matches_reference(img, (200, 300))  # exactly the canvas


@pytest.mark.parametrize("canvas, size", [((12, 20), (170, 242)), ((60, 40), (170, 242)), ((30, 30), (8, 8))])
def test_tiny_canvases(canvas, size):
    img = page(np.random.default_rng(11), (25, 35), strokes=2, thickness=1)
    assert_matches_reference(img, canvas, size)


def test_colour_files_through_read_gray(tmp_path):
    rng = np.random.default_rng(5)
    grey = page(rng, (120, 260), thickness=2)
    colour = np.stack([grey, np.clip(grey.astype(int) + 30, 0, 255), grey // 2], axis=-1).astype(np.uint8)
    for name in ("colour.png", "colour.jpg"):
        imsave(tmp_path / name, colour, check_contrast=False)
        img = read_gray(tmp_path / name)
        assert img.ndim == 2 and img.dtype == np.uint8
        assert_matches_reference(img, (200, 400))


def test_one_ink_row_gives_the_reference_empty_box():
    img = np.full((50, 80), 250, np.uint8)
    img[24:33, 5:75] = 10  # a band with lighter edge rows: Otsu's threshold is 10
    img[25:32, 5:75] = 0  # only row 28 of the blurred band gets down to it: the box [28:28] is empty
    assert not assert_matches_reference(img, (60, 100)).any()


def test_integer_input_is_cast_like_the_reference():
    img = page(np.random.default_rng(9), (80, 120), thickness=2)
    assert_matches_reference(img.astype(np.int64), (100, 150))


def test_an_image_of_one_grey_level_is_blank():
    with pytest.raises(BlankImageError, match="single grey level"):
        preprocess_signature(np.full((40, 60), 255, np.uint8), (50, 80))


def test_ink_lost_in_the_blur_is_blank_where_the_reference_crashes():
    img = np.full((40, 60), 255, np.uint8)
    img[20, 30] = 0  # a speck: the blurred image stays above the Otsu threshold
    with pytest.raises(ValueError):
        reference_preprocess_signature(img, (50, 80))
    with pytest.raises(BlankImageError, match="at or below the Otsu threshold"):
        preprocess_signature(img, (50, 80))


def bilevel(img: np.ndarray, ink: int = 0, paper: int = 255) -> np.ndarray:
    """A clean black-and-white scan of a grey page."""
    return np.where(img < 128, ink, paper).astype(np.uint8)


@pytest.mark.parametrize("ink, paper", [(0, 255), (40, 200)])
@pytest.mark.parametrize("thickness", [1, 3])
def test_a_clean_bilevel_scan_is_centred_on_its_ink(ink, paper, thickness):
    img = bilevel(page(np.random.default_rng(4), (120, 200), strokes=3, thickness=thickness, ink=20, paper=235),
                  ink, paper)
    # Otsu's threshold of a two-level image is its ink level, which the blurred strokes never reach
    assert filters.threshold_otsu(img) == ink
    threshold = preprocess.ink_threshold(img, filters.gaussian(img, 2, preserve_range=True))
    assert ink < threshold < paper
    centred = preprocess.centre_on_canvas(img, (150, 260))
    rows, cols = np.flatnonzero((img == ink).any(1)), np.flatnonzero((img == ink).any(0))
    # the ink is kept, in a box of its own size (less the reference's last row and column)
    assert (centred.canvas == ink).sum() >= 0.99 * (img == ink).sum()
    assert abs(centred.canvas[centred.region].shape[0] - (rows[-1] - rows[0])) <= 2
    assert abs(centred.canvas[centred.region].shape[1] - (cols[-1] - cols[0])) <= 2
    assert preprocess_signature(img, (150, 260)).any()


def test_a_one_bit_file_is_preprocessed_and_a_speck_on_bilevel_paper_is_still_blank(tiny, tmp_path):
    from PIL import Image

    raw = write_tiny(tmp_path / "raw", users=(1,))
    grey = page(np.random.default_rng(5), (60, 100), strokes=2, thickness=1, ink=20, paper=235)
    Image.fromarray(bilevel(grey)).convert("1").save(raw / "g_1_1.png")
    speck = np.full((60, 100), 255, np.uint8)
    speck[30, 50] = 0
    Image.fromarray(speck).convert("1").save(raw / "g_1_2.png")
    assert Image.open(raw / "g_1_1.png").mode == "1"
    result = run(raw, tmp_path / "set.npz")
    assert [Path(file).name for file, _ in result.skipped] == ["g_1_2.png"]
    assert "Otsu threshold" in result.skipped[0][1]
    data = load_all(result.path)
    assert data["filenames"][0] == "g_1_1.png" and data["x"][0].any()


def test_a_colour_array_is_refused():
    with pytest.raises(InputError, match="2-D grey image"):
        preprocess_signature(np.zeros((10, 10, 3), np.uint8), (20, 20))


# ---------------------------------------------------------------------------- datasets
class TinyLoader(DatasetLoader):
    """Files ``<kind>_<user>_<k>.png`` (kind g, s or f) in one folder; a small canvas."""

    name = "tiny"
    canvas_size = (90, 140)
    genuine_per_user = 2
    skilled_per_user = 2
    simple_per_user = 1

    def users(self):
        return sorted({int(p.name.split("_")[1]) for p in self.path.glob("*_*_*.png")})

    def _files(self, kind, user):
        return sorted(self.path.glob(f"{kind}_{user}_*.png"))

    def genuine_files(self, user):
        return self._files("g", user)

    def skilled_files(self, user):
        return self._files("s", user)

    def simple_files(self, user):
        return self._files("f", user)

    @classmethod
    def describe(cls):
        return "a test layout"


USERS = (3, 5, 11)


def write_tiny(folder: Path, users=USERS, seed=0, shape=(50, 90)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for user in users:
        for kind, n in (("g", 2), ("s", 2), ("f", 1)):
            for k in range(1, n + 1):
                imsave(folder / f"{kind}_{user}_{k}.png", page(rng, shape, thickness=2, ink=30, paper=230),
                       check_contrast=False)
    return folder


@pytest.fixture
def tiny(monkeypatch):
    real = plugins.get_loader
    monkeypatch.setattr(plugins, "get_loader", lambda name: TinyLoader if name == "tiny" else real(name))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("tiny") / "raw")


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory) -> Path:
    """The tiny set plus an HTML page saved as .png and a blank page."""
    folder = write_tiny(tmp_path_factory.mktemp("messy") / "raw")
    (folder / "g_5_3.png").write_text("<html>quota exceeded</html>")
    imsave(folder / "s_11_3.png", np.full((40, 60), 240, np.uint8), check_contrast=False)
    return folder


def run(path, save_path, **options):
    return process_dataset(build(PreprocessOptions, dataset="tiny", raw_path=path, save_path=str(save_path),
                                 **{"workers": 1, **options}))


def load_all(path) -> dict:
    data = SignatureSet.load(path)
    return {key: np.asarray(getattr(data, key)) for key in ("x", "y", "yforg", "user_mapping", "filenames")}


def test_order_labels_and_pixels_follow_the_reference(tiny, tiny_dir, tmp_path):
    reporter = RecordingReporter()
    result = process_dataset(build(PreprocessOptions, dataset="tiny", raw_path=tiny_dir,
                                   save_path=str(tmp_path / "tiny"), workers=1), reporter)
    assert result.path == tmp_path / "tiny.npz"  # numpy's (and the reference's) suffix
    data = load_all(result.path)
    assert data["y"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert data["yforg"].tolist() == [0, 0, 1, 1, 2] * 3
    assert data["user_mapping"].tolist() == list(USERS)
    assert data["filenames"][:5].tolist() == ["g_3_1.png", "g_3_2.png", "s_3_1.png", "s_3_2.png", "f_3_1.png"]
    assert data["x"].shape == (15, 1, 170, 242) and data["x"].dtype == np.uint8
    for image, name in zip(data["x"], data["filenames"]):
        expected = reference_preprocess_signature(read_gray(tiny_dir / name), TinyLoader.canvas_size)
        assert np.array_equal(image[0], expected), name
    assert result.counts == {"genuine": 6, "skilled": 6, "simple": 3} and not result.skipped
    assert reporter.steps["preprocess tiny"][:2] == [15, 15]
    saved = (tmp_path / "tiny.json").read_text()
    assert '"workers": 1' in saved and '"dataset": "tiny"' in saved


@pytest.mark.parametrize("save_as", ["npz", "folder"])
def test_one_or_two_workers_write_the_same_set(tiny, messy_dir, tmp_path, save_as):
    name = "set.npz" if save_as == "npz" else "set/"
    one = run(messy_dir, f"{tmp_path}/w1/{name}", workers=1)
    two = run(messy_dir, f"{tmp_path}/w2/{name}", workers=2)
    assert one.format == two.format == save_as
    a, b = load_all(one.path), load_all(two.path)
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert one.skipped == two.skipped and len(one.skipped) == 2
    if save_as == "folder":  # .npy files carry no timestamp: the very same bytes
        assert all((one.path / f).read_bytes() == (two.path / f).read_bytes() for f in os.listdir(one.path))


def test_folder_streaming_matches_npz_and_shrinks_past_skipped_images(tiny, messy_dir, tmp_path):
    folder = run(messy_dir, f"{tmp_path}/stream/")
    npz = run(messy_dir, tmp_path / "set.npz")
    assert folder.path.is_dir() and folder.images == npz.images == 15
    data = SignatureSet.load(folder.path)
    assert isinstance(data.x, np.memmap) and data.x.shape == (15, 1, 170, 242)
    a, b = load_all(folder.path), load_all(npz.path)
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert sorted(os.listdir(tmp_path)) == ["set.json", "set.npz", "stream", "stream.json"]


def test_unreadable_and_blank_images_are_skipped_and_named(tiny, messy_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        result = run(messy_dir, tmp_path / "set.npz")
    reasons = dict(result.skipped)
    assert set(reasons) == {str(messy_dir / "g_5_3.png"), str(messy_dir / "s_11_3.png")}
    assert reasons[str(messy_dir / "g_5_3.png")].startswith("unreadable image")
    assert "single grey level" in reasons[str(messy_dir / "s_11_3.png")]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "g_5_3.png" in warned and "s_11_3.png" in warned
    assert result.counts == {"genuine": 6, "skilled": 6, "simple": 3}
    assert "g_5_3.png" not in load_all(result.path)["filenames"]


def test_cropped_images_are_listed(tiny, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(TinyLoader, "canvas_size", (30, 60))
    raw = write_tiny(tmp_path / "raw", users=(1,))
    cross = np.full((80, 120), 230, np.uint8)
    cross[30:50, :], cross[:, 50:70] = 20, 20  # the bands' centres stay ink: a 79×119 box > 30×60
    imsave(raw / "g_1_1.png", cross, check_contrast=False)
    with caplog.at_level(logging.WARNING, logger="sigcli"):
        result = run(raw, tmp_path / "set.npz")
    assert str(raw / "g_1_1.png") in result.cropped
    assert any(r.getMessage().startswith(f"cropped {raw / 'g_1_1.png'}") for r in caplog.records)


def write_tiled_tiff(path: Path, height: int, width: int, tile: int = 256) -> Path:
    """A grey, deflate-compressed, tiled TIFF whose tiles all point at one stored white tile:
    a valid file of any size the header claims, in a few dozen KB."""
    data = zlib.compress(np.full((tile, tile), 255, np.uint8).tobytes())
    n_tiles = -(-height // tile) * -(-width // tile)
    offsets_at = 8 + 2 + 12 * 10 + 4
    counts_at = offsets_at + 4 * n_tiles
    data_at = counts_at + 4 * n_tiles
    longs = {256: width, 257: height, 324: offsets_at, 325: counts_at}  # tag: value (LONG)
    shorts = {258: 8, 259: 8, 262: 1, 277: 1, 322: tile, 323: tile}  # 8 bits, deflate, grey, 1 sample
    entries = sorted([(tag, 4, n_tiles if tag in (324, 325) else 1, value) for tag, value in longs.items()]
                     + [(tag, 3, 1, value) for tag, value in shorts.items()])
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII" if kind == 4 else "<HHIH2x", tag, kind, count, value) for tag, kind, count, value in entries)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
                     + struct.pack(f"<{n_tiles}I", *[data_at] * n_tiles)
                     + struct.pack(f"<{n_tiles}I", *[len(data)] * n_tiles) + data)
    return path


def test_the_crafted_tiff_is_a_valid_image(tmp_path):
    assert read_gray(write_tiled_tiff(tmp_path / "small.tif", 300, 520)).tolist() == np.full((300, 520), 255).tolist()


@pytest.mark.parametrize("height, width, said", [
    (20000, 20000, "image of 400,000,000 pixels, more than the 50,000,000 sig reads"),  # past PIL's own limit
    (10000, 9000, "image of 10000×9000 = 90,000,000 pixels, more than the 50,000,000 sig reads"),
])
def test_an_image_whose_header_is_too_large_is_skipped_and_named_unread(tiny, tmp_path, monkeypatch, height, width,
                                                                         said):
    raw = write_tiny(tmp_path / "raw", users=(1, 2))
    huge = write_tiled_tiff(raw / "g_2_3.png", height, width)  # a TIFF: PIL goes by the content
    monkeypatch.setattr(preprocess, "read_gray", lambda path: pytest.fail(f"decoded {path}") if path == huge
                        else read_gray(path))
    result = run(raw, tmp_path / "set.npz")
    assert result.skipped == [(str(huge), said)]
    assert result.counts == {"genuine": 4, "skilled": 4, "simple": 2}


def test_the_image_limit_is_the_documented_constant(tiny, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_IMAGE_PIXELS", 50 * 90 - 1)  # the tiny pages are 50×90
    with pytest.raises(InputError, match="none of the 15 images") as raised:
        run(tiny_dir, tmp_path / "set.npz")
    assert "image of 50×90 = 4,500 pixels, more than the 4,499 sig reads" in str(raised.value)


def test_a_canvas_past_the_limit_is_refused_before_anything_is_allocated(tiny, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyLoader, "canvas_size", (60000, 60000))
    with pytest.raises(InputError, match=r"the tiny canvas 60000×60000 is 3,600,000,000 pixels, more than the "
                                         r"50,000,000 sig allows"):
        run(tiny_dir, tmp_path / "set.npz")
    assert not (tmp_path / "set.npz").exists()


def test_users_range_selects_positions_in_the_user_list(tiny, tiny_dir, tmp_path):
    result = run(tiny_dir, tmp_path / "part.npz", users=(1, 3))
    data = load_all(result.path)
    assert result.users == [5, 11] and data["user_mapping"].tolist() == [5, 11]
    assert data["y"].tolist() == [0] * 5 + [1] * 5  # counted from the range's start, like the reference
    assert data["filenames"][0] == "g_5_1.png"


# ---------------------------------------------------------------------------- CLI
def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("layout", ["gpds", "gpds-synthetic", "mcyt", "cedar", "brazilian"])
def test_every_built_in_loader_on_its_real_layout(synth_dataset, tmp_path, layout):
    simple = 1 if layout == "brazilian" else None
    raw = synth_dataset(layout, users=2, genuine=2, skilled=1, simple=simple)
    result = process_dataset(build(PreprocessOptions, dataset=layout, raw_path=raw, save_path=str(tmp_path / "set.npz"),
                                   workers=1))
    data = load_all(result.path)
    loader = plugins.get_loader(layout)(raw)
    assert data["user_mapping"].tolist() == loader.users() == result.users
    kinds = [0, 0, 1] + ([2] if simple else [])
    assert data["yforg"].tolist() == kinds * 2 and data["y"].tolist() == [0] * len(kinds) + [1] * len(kinds)
    assert not result.skipped
    first = loader.genuine_files(loader.users()[0])[0]
    assert data["filenames"][0] == first.name
    expected = reference_preprocess_signature(read_gray(first), loader.canvas_size)
    assert np.array_equal(data["x"][0, 0], expected)


def test_cli_happy_path_with_a_real_loader(synth_dataset, cli, tmp_path):
    raw = synth_dataset("cedar", users=2, genuine=1, skilled=1)
    out = tmp_path / "out" / "cedar"
    result = cli("preprocess", "--dataset", "cedar", "--raw-path", raw, "--save-path", out, "--workers", "2",
                 "--image-size", "85", "121")
    assert result.exit_code == 0, result.output
    for row in ("users", "genuine", "skilled", "simple", "skipped", "cropped", "images", "time"):
        assert row in result.stdout
    assert "2 (ids 1..2)" in result.stdout and "4 × 85×121 uint8" in result.stdout
    data = SignatureSet.load(tmp_path / "out" / "cedar.npz")
    assert data.x.shape == (4, 1, 85, 121) and data.yforg.tolist() == [0, 1, 0, 1]
    assert (tmp_path / "out" / "cedar.json").exists()
    again = cli("preprocess", "--dataset", "cedar", "--raw-path", raw, "--save-path", f"{out}.npz")
    assert again.exit_code == 2 and error_lines(again) == [
        f"error: {out}.npz already exists (pass --overwrite to replace it, or choose another --save-path)"]


def test_cli_path_alias_and_json_summary(synth_dataset, cli, tmp_path):
    """sigver's --path still names the raw folder; --json prints the summary the options file records."""
    raw = synth_dataset("cedar", users=2, genuine=1, skilled=1)
    result = cli("preprocess", "--dataset", "cedar", "--path", raw, "--save-path", f"{tmp_path}/set/", "--workers", 1,
                 "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    recorded = json.loads((tmp_path / "set.json").read_text())
    assert summary == {**recorded["result"], "options_path": str(tmp_path / "set.json")}
    assert summary["format"] == "folder" and summary["counts"] == {"genuine": 2, "skilled": 2, "simple": 0}
    assert recorded["options"]["raw_path"] == str(raw) and recorded["options"]["workers"] == 1


def test_command_line_round_trip_keeps_loader_options(tmp_path):
    options = build(PreprocessOptions, dataset="folder", raw_path=tmp_path, save_path="out/", users=(1, 3),
                    workers=2, format="npz", loader_options=["canvas=952x1360", "genuine=gen*"])
    assert argv(options)[argv(options).index("--loader-option"):][:4] == [
        "--loader-option", "canvas=952x1360", "--loader-option", "genuine=gen*"]
    assert parse(PreprocessOptions, argv(options)) == options


@pytest.mark.parametrize("command, model", [("preprocess", PreprocessOptions), ("datasets", DatasetsOptions),
                                            ("info", InfoOptions)])
def test_help_names_every_option(cli, command, model):
    result = cli(command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in option_names(model):
        assert name in result.stdout, name


def test_cli_zero_usable_images_is_one_error_line(tiny, tmp_path, cli):
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in (1, 2):
        imsave(raw / f"g_1_{k}.png", np.full((30, 30), 200, np.uint8), check_contrast=False)
    result = cli("preprocess", "--dataset", "tiny", "--raw-path", str(raw),
                 "--save-path", f"{tmp_path}/out/", "--workers", "1")
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert line.startswith("error: none of the 2 images of tiny") and "single grey level" in line
    assert result.output.rstrip().splitlines()[-1] == line and "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["raw"]  # nothing half-written


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cedar", "--raw-path", "/no/such/folder"], "error: cedar: /no/such/folder is not a folder"),
    (["--dataset", "nope", "--raw-path", "."], "error: no dataset loader named 'nope'"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--users", "2", "9"], "error: --users 2 9 is beyond the 3 users"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--users", "2", "2"], "error: --users 2 2 is an empty"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--image-size", "0", "10"], "error: --image-size"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--workers", "0"], "error: --workers"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--image-size", "100000", "100000"],
     "error: --image-size 100000 100000 is 10,000,000,000 pixels, more than the 4,194,304 sig allows"),
    (["--dataset", "tiny", "--raw-path", "{raw}", "--image-size", "1", "100000"],
     "error: image size 1×100000 would resize the tiny canvas (90×140) through 64286×100000 = 6,428,600,000"),
])
def test_cli_bad_options_exit_2_with_one_line(tiny, tiny_dir, tmp_path, args, message, cli):
    args = [arg.format(raw=tiny_dir) for arg in args]
    result = cli("preprocess", *args, "--save-path", str(tmp_path / "out.npz"))
    assert result.exit_code == 2, result.output
    [line] = error_lines(result)
    assert line.startswith(message), line
    assert not (tmp_path / "out.npz").exists()

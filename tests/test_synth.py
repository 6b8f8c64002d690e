"""The synthetic signature generator: layouts, determinism, styles, errors, `sig synth`."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import resize

from sigcli.data import synth
from sigcli.data.loader import read_gray
from sigcli.data.plugins import get_loader
from sigcli.data.synth import synthesize
from sigcli.errors import InputError
from sigcli.progress import RecordingReporter


def images(folder) -> dict[str, bytes]:
    """Relative path → bytes of every image file under ``folder``."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*"))
            if f.is_file() and f.suffix != ".json"}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    one = synthesize("gpds", tmp_path / "one", users=3, genuine=2, skilled=2, seed=5)
    synthesize("gpds", tmp_path / "two", users=3, genuine=2, skilled=2, seed=5, workers=2)
    first, second = images(tmp_path / "one"), images(tmp_path / "two")
    assert len(first) == one.images == 12
    assert first == second
    synthesize("gpds", tmp_path / "other", users=3, genuine=2, skilled=2, seed=6)
    other = images(tmp_path / "other")
    assert other.keys() == first.keys() and all(other[k] != first[k] for k in first)


def test_a_subset_of_users_and_counts_is_identical_to_the_full_run(tmp_path):
    synthesize("brazilian", tmp_path / "full", users=3, genuine=4, skilled=3, simple=2, seed=1)
    synthesize("brazilian", tmp_path / "part", users=1, genuine=2, skilled=3, simple=1, seed=1, first_user=2)
    full, part = images(tmp_path / "full"), images(tmp_path / "part")
    assert sorted(part) == ["a002_01.jpg", "a002_02.jpg", "a002_41.jpg", "a002_51.jpg", "a002_52.jpg", "a002_53.jpg"]
    assert all(part[name] == full[name] for name in part)


@pytest.mark.parametrize("layout", [layout.value for layout in synth.Layout])
def test_images_are_grey_in_the_real_format_and_fit_the_canvas(layout, synth_dataset):
    loader = get_loader(layout)(synth_dataset(layout, users=3, genuine=4, skilled=2))
    files = [f for u in loader.users() for f in loader.genuine_files(u) + loader.skilled_files(u)]
    assert {f.suffix for f in files} == {{"gpds": ".png", "cedar": ".png", "mcyt": ".bmp"}.get(layout, ".jpg")}
    for file in files:
        image = read_gray(file)
        assert image.shape[0] < loader.canvas_size[0] and image.shape[1] < loader.canvas_size[1]
        assert image.min() <= 80 and np.median(image) >= 195
    shapes = {read_gray(f).shape for f in files}
    assert len(shapes) > len(files) // 2  # sizes vary


def test_oversized_signatures_are_drawn_smaller_than_the_canvas():
    style = synth.make_style(np.random.default_rng(0), scale=4.0)
    image = synth.render(style, np.random.default_rng(1), synth._paper(0), max_shape=(300, 400))
    assert image.shape[0] < 300 and image.shape[1] < 400 and image.min() <= 80


def _feature(image: np.ndarray) -> np.ndarray:
    """The ink box, shrunk to 24×64 and blurred: a crude but honest shape descriptor."""
    ink = (255.0 - image) * (image < 150)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    small = resize(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], (24, 64), anti_aliasing=True)
    small = ndimage.gaussian_filter(small, 1.0).ravel()
    return small / np.linalg.norm(small)


def test_skilled_forgeries_lie_between_genuine_and_other_writers(tmp_path):
    synthesize("brazilian", tmp_path, users=5, genuine=5, skilled=5, simple=5, seed=0)
    loader = get_loader("brazilian")(tmp_path)
    features = {kind: {u: np.array([_feature(image) for image, _ in getattr(loader, f"iter_{kind}")(u)])
                       for u in loader.users()} for kind in ("genuine", "skilled", "simple")}
    genuine = features["genuine"]

    def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
        distances = np.linalg.norm(a[:, None] - b[None], axis=-1)
        return float(distances[~np.eye(len(a), dtype=bool)].mean() if a is b else distances.mean())

    for user in loader.users():
        own = mean_distance(genuine[user], genuine[user])
        skilled = mean_distance(genuine[user], features["skilled"][user])
        simple = mean_distance(genuine[user], features["simple"][user])
        others = np.mean([mean_distance(genuine[user], genuine[v]) for v in loader.users() if v != user])
        assert own < skilled < min(simple, others), (user, own, skilled, simple, others)


def test_counts_default_to_the_dataset_and_progress_is_reported(tmp_path):
    reporter = RecordingReporter()
    result = synthesize("mcyt", tmp_path, users=1, reporter=reporter)
    assert result.counts == {"genuine": 15, "skilled": 15, "simple": 0} and result.users == [0]
    assert reporter.steps["synth mcyt"][:2] == [30, 30]
    assert "mcyt: 1 users (0..0), 15 genuine, 15 skilled, 0 simple images" in result.summary()
    assert (tmp_path / "sig-synth.json").is_file()


@pytest.mark.parametrize("layout, counts, message", [
    ("gpds", {"simple": 2}, "--simple 2: the gpds layout has no simple forgeries"),
    ("brazilian", {"skilled": 11}, "--skilled 11: the brazilian layout names at most 10 skilled images per user"),
    ("cedar", {"users": 0}, "--users: Input should be greater than or equal to 1"),
    ("cedar", {"seed": -1}, "--seed: Input should be greater than or equal to 0"),
    ("nope", {}, "--layout: Input should be"),
])
def test_impossible_requests_are_input_errors(layout, counts, message, tmp_path):
    with pytest.raises(InputError) as raised:
        synthesize(layout, tmp_path, **{"users": 1, **counts})
    assert str(raised.value).startswith(message)
    assert not any(tmp_path.iterdir())


def test_an_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    encode = synth._png

    def fail_on_third(image):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(image)

    monkeypatch.setattr(synth, "_png", fail_on_third)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        synthesize("gpds", out, users=1, genuine=4, skilled=0)
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []  # no half-written folder, no temporary one


def test_sig_synth_command(cli, tmp_path):
    result = cli("synth", "--layout", "cedar", "--users", "2", "--genuine", "2", "--skilled", "1",
                 "--first-user", "7", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "cedar: 2 users (7..8), 4 genuine, 2 skilled, 0 simple images" in result.stdout
    assert sorted(f.name for f in (tmp_path / "full_forg").iterdir()) == ["forgeries_7_1.png", "forgeries_8_1.png"]

    refused = cli("synth", "--layout", "mcyt", "--simple", "1", "--save-path", tmp_path / "x")
    assert refused.exit_code == 2
    assert [line for line in refused.output.splitlines() if line.strip()] == [
        "error: --simple 1: the mcyt layout has no simple forgeries (give --simple 0)"]


def test_sig_synth_help_shows_every_option(cli):
    result = cli("synth", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--layout", "--out", "--users", "--genuine", "--skilled", "--simple", "--seed", "--first-user",
                   "--workers", "gpds-synthetic", "brazilian"):
        assert option in result.stdout
    assert "[default: (the dataset's, e.g. 24 for gpds)]" in result.stdout

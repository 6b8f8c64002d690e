"""The synthetic signature generator: layouts, determinism, writers, forgers, `sig synth`."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sigcli.data import handwriting, plugins, synth
from sigcli.data.loader import ENTRY_POINT_GROUP, DatasetLoader, read_gray
from sigcli.data.plugins import get_loader
from sigcli.data.synth import synthesize, user_signatures
from sigcli.errors import InputError
from sigcli.preprocess import preprocess_signature
from sigcli.progress import RecordingReporter

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "sigcli-example-dataset"


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


@pytest.mark.parametrize("layout", ["gpds", "gpds-synthetic", "mcyt", "cedar", "brazilian"])
def test_images_are_grey_in_the_real_format_and_fit_the_canvas(layout, synth_dataset):
    loader = get_loader(layout)(synth_dataset(layout, users=3, genuine=4, skilled=2))
    files = [f for u in loader.users() for f in loader.genuine_files(u) + loader.skilled_files(u)]
    assert len(files) == 18
    assert {f.suffix for f in files} == {{"gpds": ".png", "cedar": ".png", "mcyt": ".bmp"}.get(layout, ".jpg")}
    for file in files:
        image = read_gray(file)
        assert image.shape[0] < loader.canvas_size[0] and image.shape[1] < loader.canvas_size[1]
        assert image.min() <= 130 and np.median(image) >= 195  # grey ink on light paper
    shapes = {read_gray(f).shape for f in files}
    assert len(shapes) > len(files) // 2  # sizes vary


def test_oversized_signatures_are_drawn_smaller_than_the_canvas():
    rng = np.random.default_rng(0)
    hand = handwriting.make_hand(rng, handwriting.Population(width_mm=200.0))
    sample, pen = handwriting.perform(hand, rng)
    grain = handwriting.paper_grain(rng, side=64)
    image = handwriting.draw(sample, pen, rng, grain, dpi=300, max_shape=(300, 400))
    assert image.shape[0] < 300 and image.shape[1] < 400 and image.min() <= 130


def test_a_trajectory_is_sampled_evenly_along_its_path_and_keeps_every_stroke():
    """Samples sit about ``max_step`` apart along each stroke (not at equal times, which
    crowds them where the pen is slow), and no stroke (an i's dot) is left unsampled."""
    rng = np.random.default_rng(3)
    for hand in (handwriting.make_hand(rng), handwriting.forge(handwriting.make_hand(rng), rng)):
        sample, _ = handwriting.perform(hand, rng)
        motion = handwriting.execute(sample, rng, max_step=0.02)
        same = motion.stroke[1:] == motion.stroke[:-1]
        steps = np.linalg.norm(np.diff(motion.xy, axis=0), axis=1)[same]
        assert np.median(steps) == pytest.approx(0.02, rel=0.25)
        assert steps.max() < 3 * 0.02
        drawn = np.unique(sample.plan.stroke[1:][sample.plan.stroke[1:] == sample.plan.stroke[:-1]])
        assert set(np.unique(motion.stroke)) == set(range(len(drawn)))


def test_a_finer_scan_doubles_the_image_keeping_its_pixels_and_averaging_between():
    image = np.array([[10, 20, 40], [30, 255, 0]], dtype=np.uint8)
    doubled = handwriting._double(image)
    assert doubled.shape == (4, 6) and doubled.dtype == np.uint8
    assert (doubled[::2, ::2] == image).all()
    assert doubled[0, 1] == 15 and doubled[1, 0] == 20 and doubled[1, 2] == (20 + 255 + 1) // 2
    assert doubled[1, 1] == (doubled[1, 0] + doubled[1, 2] + 1) // 2  # rows first, then columns
    assert (doubled[-1] == doubled[-2]).all() and (doubled[:, -1] == doubled[:, -2]).all()  # edges held


def _descriptor(image: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """The preprocessed image (170×242), blurred and shrunk 8×: a crude, honest shape measure."""
    small = ndimage.zoom(ndimage.gaussian_filter(preprocess_signature(image, canvas).astype(float), 4.0), 0.125)
    return small.ravel() / np.linalg.norm(small)


def _descriptors(layout: str, users: range, counts: dict[str, int], seed: int = 0) -> dict:
    canvas = get_loader(layout).canvas_size
    return {(u, kind, k): _descriptor(image, canvas)
            for u in users for kind, k, image in user_signatures(u, counts, seed, layout)}


def _mean_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([np.linalg.norm(x - y) for x in a for y in b if x is not y]))


def test_skilled_forgeries_are_close_to_their_writer_yet_never_a_copy():
    users = range(1, 7)
    found = _descriptors("gpds", users, {"genuine": 4, "skilled": 4})

    def of(u: int, kind: str) -> list[np.ndarray]:
        return [d for (v, k, _), d in found.items() if v == u and k == kind]

    for u in users:
        genuine, skilled = of(u, "genuine"), of(u, "skilled")
        others = [d for v in users if v != u for d in of(v, "genuine")]
        own, forged, foreign = (_mean_distance(genuine, genuine), _mean_distance(skilled, genuine),
                                _mean_distance(skilled, others))
        assert forged < foreign, (u, own, forged, foreign)
        closest = min(np.linalg.norm(s - g) for s in skilled for g in genuine)
        assert closest > 0.2 * own, (u, closest, own)  # a forgery is a new execution, not a genuine sample


def test_simple_forgers_write_the_name_in_another_hand():
    """On average a simple forgery (the name only, in the forger's own hand) is further from the
    writer's genuine signatures than a skilled one, and further than the writer's own samples
    (over 12 writers: the measure is crude, and a few writers' averages are noisy)."""
    users = range(1, 13)
    found = _descriptors("brazilian", users, {"genuine": 4, "skilled": 3, "simple": 3})

    def distance(u: int, kind: str) -> float:
        genuine = [d for (v, k, _), d in found.items() if v == u and k == "genuine"]
        return _mean_distance([d for (v, k, _), d in found.items() if v == u and k == kind], genuine)

    own, skilled, simple = (np.mean([distance(u, kind) for u in users]) for kind in ("genuine", "skilled", "simple"))
    assert own < skilled < simple, (own, skilled, simple)


def test_layouts_and_seeds_draw_different_writers():
    """User 1 of gpds, of cedar (same scanner, similar canvas) and of gpds with another seed are
    three people: each one's signatures are closer to each other than to the others'."""
    counts = {"genuine": 4}
    canvas = get_loader("gpds").canvas_size
    groups = {name: [_descriptor(image, canvas) for _, _, image in user_signatures(1, counts, seed, layout)]
              for name, layout, seed in (("gpds", "gpds", 0), ("cedar", "cedar", 0), ("gpds seed 1", "gpds", 1))}
    for name, group in groups.items():
        own = _mean_distance(group, group)
        assert all(own < _mean_distance(group, other) for key, other in groups.items() if key != name), name


def test_counts_default_to_the_dataset_and_progress_is_reported(tmp_path):
    reporter = RecordingReporter()
    result = synthesize("mcyt", tmp_path, users=1, reporter=reporter)
    assert result.counts == {"genuine": 15, "skilled": 15, "simple": 0} and result.users == [0]
    assert reporter.steps["synth mcyt"][:2] == [30, 30]
    assert "mcyt: 1 users (0..0), 15 genuine, 15 skilled, 0 simple images" in result.summary()
    assert (tmp_path / "sig-synth.json").is_file()
    uncounted = synthesize("folder", tmp_path / "folder", users=1)  # its counts are known only from the data
    assert uncounted.counts == synth.COUNTS_OF_UNCOUNTED_LAYOUTS


@pytest.mark.parametrize("layout, counts, message", [
    ("gpds", {"simple": 2}, "--simple 2: the gpds layout has no simple forgeries"),
    ("brazilian", {"skilled": 11}, "--skilled 11: the brazilian layout names at most 10 skilled images per user"),
    ("brazilian-nosimple", {"users": 61}, "--users: the brazilian-nosimple layout has no user 61"),
    ("cedar", {"users": 0}, "--users: Input should be greater than or equal to 1"),
    ("cedar", {"seed": -1}, "--seed: Input should be greater than or equal to 0"),
    ("nope", {}, "--layout: no dataset loader named 'nope'"),
])
def test_impossible_requests_are_input_errors(layout, counts, message, tmp_path):
    with pytest.raises(InputError) as raised:
        synthesize(layout, tmp_path, **{"users": 1, "genuine": 1, "skilled": 0, **counts})
    assert str(raised.value).startswith(message)
    assert not any(tmp_path.iterdir())


def test_forgeries_stop_where_the_layout_has_none(tmp_path):
    """Brazilian writers after 60 were never forged: they get genuine signatures only."""
    result = synthesize("brazilian", tmp_path, users=2, genuine=1, skilled=1, simple=1, first_user=60)
    assert sorted(images(tmp_path)) == ["a060_01.jpg", "a060_41.jpg", "a060_51.jpg", "a061_01.jpg"]
    assert result.counts == {"genuine": 2, "skilled": 1, "simple": 1}


class _Unnamed(DatasetLoader):
    name = "unnamed"
    canvas_size = (100, 100)
    genuine_per_user = skilled_per_user = 1

    def users(self):
        return []

    def genuine_files(self, user):
        return []

    def skilled_files(self, user):
        return []

    @classmethod
    def describe(cls):
        return ""


def test_a_loader_without_file_names_cannot_be_synthesised(tmp_path):
    assert not _Unnamed.can_synthesize() and get_loader("gpds").can_synthesize()
    with pytest.raises(InputError, match="its loader does not say how to name synthetic files"):
        synthesize(_Unnamed, tmp_path)


@pytest.fixture
def toy_plugin(monkeypatch) -> None:
    """The example third-party plugin, registered as its pyproject.toml registers it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    registered = plugins.entry_points
    toy = EntryPoint("toy", "sigcli_example_dataset:ToyLoader", ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*registered(group=group), toy])


def test_a_third_party_layout_is_synthesised_through_the_registry(toy_plugin, cli, tmp_path):
    result = cli("synth", "--layout", "toy", "--users", "2", "--genuine", "2", "--skilled", "1",
                 "--save-path", tmp_path / "toy")
    assert result.exit_code == 0, result.output
    assert sorted(images(tmp_path / "toy")) == ["writer1/forged/1.png", "writer1/genuine/1.png",
                                               "writer1/genuine/2.png", "writer2/forged/1.png",
                                               "writer2/genuine/1.png", "writer2/genuine/2.png"]
    loader = get_loader("toy")(tmp_path / "toy")
    assert loader.users() == [1, 2] and len(loader.genuine_files(2)) == 2 and len(loader.skilled_files(1)) == 1
    assert "toy" in synth.synth_layouts()


def test_an_unknown_layout_lists_those_that_can_be_synthesised(cli):
    refused = cli("synth", "--layout", "nope", "--save-path", "x")
    assert refused.exit_code == 2
    for layout in ("bhsig-bengali", "bhsig-hindi", "folder", "gpds", "mcyt", "cedar", "brazilian"):
        assert layout in refused.output


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
    nothing = cli("synth", "--layout", "mcyt")
    assert nothing.exit_code == 2 and "give --save-path" in nothing.output


def test_sig_synth_preview_is_a_contact_sheet_of_the_same_images(cli, tmp_path):
    result = cli("synth", "--layout", "mcyt", "--users", "2", "--genuine", "2", "--skilled", "2",
                 "--preview", tmp_path / "sheet.png")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]  # no dataset without --save-path
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    cell_w, cell_h, label_w, gap, header = 300, round(300 * 600 / 850), 70, 6, 22
    assert sheet.shape == (header + 2 * (cell_h + gap), label_w + 4 * (cell_w + gap))
    # The second writer's first skilled forgery, as synthesize writes it, shrunk into its cell.
    image = next(image for kind, k, image in user_signatures(1, {"skilled": 1}, 0, "mcyt"))
    cell = sheet[header + cell_h + gap:header + 2 * cell_h + gap, label_w + 2 * (cell_w + gap):][:, :cell_w]
    assert cell.min() < 150 and abs(int(cell.min()) - int(image.min())) < 40
    again = cli("synth", "--layout", "mcyt", "--preview", tmp_path / "sheet.png")
    assert again.exit_code == 2 and "already exists" in again.output


def test_sig_synth_help_shows_every_option(cli):
    result = cli("synth", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--layout", "--save-path", "--out", "--users", "--genuine", "--skilled", "--simple", "--seed",
                   "--first-user", "--workers", "--preview", "gpds-synthetic", "bhsig-hindi", "folder"):
        assert option in result.stdout
    assert "the dataset's, e.g. 24 for gpds" in result.stdout

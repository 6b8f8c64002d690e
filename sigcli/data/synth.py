"""Synthetic signatures written in the real datasets' layouts (`sig synth`).

They stand in for the licensed sets in tests, tutorials and benchmarks: the real loaders
read them, preprocessing and training run on them. Each writer has a persistent *style*:
a name written as one or two cursive strokes through letter-like control points, often a
capital and a flourish, with its own slant, proportions, size, pen width, pressure and
ink. Genuine samples vary around it (control-point jitter, small affine changes, pen and
ink variation). A skilled forger copies the shape with errors fixed per forger: proportions
off, tremor along the path, a slower, thicker and more even stroke. A simple forger (the
Brazilian set) writes a name of the same length in a style of their own.

Every image comes from a generator seeded by (seed, purpose, user, index), so a user's
images are the same whatever the other users, counts, order or number of workers.
Rendering is vectorised (no per-pixel Python loop): Catmull-Rom splines through the
control points are sampled densely, each sample widened into a ribbon as wide as the pen
pressure makes it, and the ribbon's points are splatted bilinearly onto the paper.
"""

from __future__ import annotations

import functools
import json
import struct
import time
import zlib
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Iterator

import numpy as np
from PIL import Image
from pydantic import Field

from sigcli.data.loader import DatasetLoader
from sigcli.errors import InputError
from sigcli.fileio import atomic_path, check_output
from sigcli.config.common import Workers
from sigcli.options import Cli, Options, build, default, save_options
from sigcli.parallel import worker_pool
from sigcli.progress import Reporter, resolve
from sigcli_datasets.brazilian import GENUINE, LAST_FORGED_USER, SIMPLE, SKILLED, BrazilianLoader
from sigcli_datasets.cedar import CedarLoader
from sigcli_datasets.gpds import GPDSLoader, GPDSSyntheticLoader
from sigcli_datasets.mcyt import MCYTLoader

KINDS = ("genuine", "skilled", "simple")

# Generators are seeded with (seed, purpose, user, index): always four words, so that no
# two purposes share a stream (SeedSequence pads shorter entropy with zeros).
_STYLE, _GENUINE, _SKILLED, _SIMPLE, _FORGER, _SIMPLE_WRITER, _PAPER = range(1, 8)
_SAMPLE_PURPOSE = {"genuine": _GENUINE, "skilled": _SKILLED, "simple": _SIMPLE}
#: Forgeries of one user come from this many forgers in turn (sample k: forger k mod 5).
FORGERS_PER_USER = 5
#: Distance in pixels between the points splatted along a stroke.
_SPACING = 0.75
#: Distance in pixels between the points laid across a stroke (bilinear splats fill the gaps).
_ACROSS = 1.25
#: Ink density → opacity: the centre of a stroke at mean pressure is 1 - e^-4 ≈ 98% ink.
_INK_GAIN = 4.0
#: Side of the square paper-grain texture shared by all images of a seed (cropped at random).
_PAPER_SIDE = 1024


class Layout(str, Enum):
    gpds = "gpds"
    gpds_synthetic = "gpds-synthetic"
    mcyt = "mcyt"
    cedar = "cedar"
    brazilian = "brazilian"


@dataclass(frozen=True)
class LayoutSpec:
    """How one real dataset names and stores its images."""

    loader: type[DatasetLoader]
    save_format: str  # PIL format of the real set's files
    first_user: int  # the real set's first user number
    path: Callable[[int, str, int], str]  # (user, kind, 0-based index) → file under --out
    max_per_user: dict[str, int] = field(default_factory=dict)  # what the file names allow
    forged_users: int | None = None  # only users up to this number have forgeries
    scale: float = 1.0  # signature size relative to GPDS's, to fill the canvas alike


def _gpds_path(suffix: str) -> Callable[[int, str, int], str]:
    prefix = {"genuine": "c", "skilled": "cf"}
    return lambda user, kind, k: f"{user:03d}/{prefix[kind]}-{user:03d}-{k + 1:02d}.{suffix}"


def _mcyt_path(user: int, kind: str, k: int) -> str:
    return f"{user:04d}/{user:04d}{'v' if kind == 'genuine' else 'f'}{k:02d}.bmp"


def _cedar_path(user: int, kind: str, k: int) -> str:
    if kind == "genuine":
        return f"full_org/original_{user}_{k + 1}.png"
    return f"full_forg/forgeries_{user}_{k + 1}.png"


def _brazilian_path(user: int, kind: str, k: int) -> str:
    first = {"genuine": GENUINE, "simple": SIMPLE, "skilled": SKILLED}[kind].start
    return f"a{user:03d}_{first + k:02d}.jpg"


LAYOUTS: dict[Layout, LayoutSpec] = {
    Layout.gpds: LayoutSpec(GPDSLoader, "PNG", 1, _gpds_path("png"), max_per_user={"simple": 0}),
    Layout.gpds_synthetic: LayoutSpec(GPDSSyntheticLoader, "JPEG", 1, _gpds_path("jpg"),
                                      max_per_user={"simple": 0}, scale=1.6),
    Layout.mcyt: LayoutSpec(MCYTLoader, "BMP", 0, _mcyt_path,
                            max_per_user={"simple": 0}, scale=0.7),
    Layout.cedar: LayoutSpec(CedarLoader, "PNG", 1, _cedar_path, max_per_user={"simple": 0}, scale=0.8),
    Layout.brazilian: LayoutSpec(BrazilianLoader, "JPEG", 1, _brazilian_path,
                                 max_per_user={"genuine": len(GENUINE), "simple": len(SIMPLE),
                                               "skilled": len(SKILLED)},
                                 forged_users=LAST_FORGED_USER, scale=0.8),
}
_SAVE_OPTIONS = {"JPEG": {"quality": 92}}
#: The file in which a synthesised folder records its options (the loaders ignore it).
MARKER = "sig-synth.json"


class SynthOptions(Options):
    """Options of `sig synth`; counts left as None take the layout's real ones."""

    layout: Layout = Field(description="Dataset whose layout, file names and format to write.")
    save_path: Annotated[Path, Cli("--out")] = Field(description="Folder to write (a new or empty one).")
    users: int = Field(10, ge=1, description="Number of writers.")
    genuine: Annotated[int | None, Cli(default_text="the dataset's, e.g. 24 for gpds")] = Field(
        None, ge=0, description="Genuine signatures per user.")
    skilled: Annotated[int | None, Cli(default_text="the dataset's, e.g. 30 for gpds")] = Field(
        None, ge=0, description="Skilled forgeries per user.")
    simple: Annotated[int | None, Cli(default_text="10, brazilian only")] = Field(
        None, ge=0, description="Simple forgeries per user.")
    seed: int = Field(0, ge=0, description="Seed of every random choice: the same seed gives the same files.")
    first_user: Annotated[int | None, Cli(default_text="the dataset's first, 1; 0 for mcyt")] = Field(
        None, ge=0, description="Number of the first writer.")
    workers: Workers = None
    overwrite: bool = Field(False, description="Replace a --save-path folder that 'sig synth' wrote before.")


@dataclass
class SynthResult:
    layout: str
    out: Path
    users: list[int]
    counts: dict[str, int]  # images written per kind
    seconds: float

    @property
    def images(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        c = self.counts
        rate = self.images / self.seconds if self.seconds > 0 else float("inf")
        return (f"{self.layout}: {len(self.users)} users ({self.users[0]}..{self.users[-1]}), "
                f"{c['genuine']} genuine, {c['skilled']} skilled, {c['simple']} simple images "
                f"in {self.out} ({rate:.0f} images/s)")


def synthesize(layout: Layout | str, out: str | Path, users: int = default(SynthOptions, "users"),
               genuine: int | None = None, skilled: int | None = None, simple: int | None = None,
               seed: int = default(SynthOptions, "seed"), first_user: int | None = None,
               workers: int = default(SynthOptions, "workers"), reporter: Reporter | None = None,
               overwrite: bool = False) -> SynthResult:
    """Write ``users`` synthetic writers in ``layout``'s real layout and file format under ``out``.

    Counts left as None are the dataset's real ones per user (e.g. GPDS 24 genuine, 30
    skilled). Users are numbered from ``first_user`` (the real set's first by default).
    ``workers`` processes share the users; the files are the same for any number of them.
    The folder appears under its name only once complete. The resolved options are saved
    as ``sig-synth.json`` in ``out``, which the loaders ignore. An existing ``out`` (other
    than an empty folder) is refused unless ``overwrite``, which replaces only a folder that
    ``sig synth`` wrote.
    """
    options = build(SynthOptions, layout=layout, save_path=out, users=users, genuine=genuine, skilled=skilled,
                    simple=simple, seed=seed, first_user=first_user, workers=workers)
    spec = LAYOUTS[options.layout]
    counts = _counts(options, spec)
    out = Path(options.save_path)
    if out.exists() and not out.is_dir():
        raise InputError(f"--save-path {out} is a file", "give a folder (it is created if missing)")
    check_output(out, overwrite=overwrite, flag="--save-path", owned=is_synth_folder)
    start = spec.first_user if options.first_user is None else options.first_user
    user_ids = list(range(start, start + options.users))
    per_user = {u: _user_counts(spec, counts, u) for u in user_ids}
    total = {kind: sum(c[kind] for c in per_user.values()) for kind in KINDS}

    began = time.perf_counter()
    with atomic_path(out, suffix="", overwrite=overwrite, owned=is_synth_folder) as folder:
        jobs = [(options.layout, folder, u, per_user[u], options.seed) for u in user_ids]
        with (worker_pool(min(options.workers, len(jobs))) as pool,
              resolve(reporter).task(f"synth {spec.loader.name}", sum(total.values())) as task):
            for written in (pool.imap_unordered(_write_user_job, jobs) if pool else map(_write_user_job, jobs)):
                task.advance(written)
        resolved = options.model_copy(update={**counts, "first_user": start})
        save_options(resolved, folder / MARKER, images=total)
    seconds = time.perf_counter() - began
    return SynthResult(spec.loader.name, out, user_ids, total, seconds)


def run_synth(options: SynthOptions, reporter: Reporter | None = None) -> SynthResult:
    """``sig synth`` with its options model."""
    values = options.model_dump(exclude={"overwrite", "save_path"})
    return synthesize(out=options.save_path, **values, reporter=reporter, overwrite=options.overwrite)


def is_synth_folder(path: Path) -> bool:
    """A folder written by ``sig synth`` (its ``sig-synth.json`` says so): one ``--overwrite`` may replace."""
    try:
        return "layout" in json.loads((path / MARKER).read_text())["options"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _counts(options: SynthOptions, spec: LayoutSpec) -> dict[str, int]:
    """Per-user counts: the options', else the real dataset's; checked against the file names."""
    real = {"genuine": spec.loader.genuine_per_user, "skilled": spec.loader.skilled_per_user,
            "simple": spec.loader.simple_per_user}
    counts = {kind: real[kind] if getattr(options, kind) is None else getattr(options, kind) for kind in KINDS}
    for kind, n in counts.items():
        most = spec.max_per_user.get(kind)
        if most is not None and n > most:
            what = f"has no {kind} forgeries" if most == 0 else f"names at most {most} {kind} images per user"
            raise InputError(f"--{kind} {n}: the {spec.loader.name} layout {what}", f"give --{kind} {most}")
    return counts


def _user_counts(spec: LayoutSpec, counts: dict[str, int], user: int) -> dict[str, int]:
    forged = spec.forged_users is None or user <= spec.forged_users
    return {kind: n if kind == "genuine" or forged else 0 for kind, n in counts.items()}


def _write_user_job(job: tuple) -> int:
    return _write_user(*job)


def _write_user(layout: Layout, out: Path, user: int, counts: dict[str, int], seed: int) -> int:
    spec, written = LAYOUTS[layout], 0
    for kind, index, image in user_signatures(user, counts, seed, spec.scale, spec.loader.canvas_size):
        path = out / spec.path(user, kind, index)  # in the folder being written: no one else sees it yet
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(image, path, spec.save_format)
        written += 1
    return written


def _save(image: np.ndarray, path: Path, save_format: str) -> None:
    if save_format == "PNG":
        path.write_bytes(_png(image))
    else:
        Image.fromarray(image).save(path, format=save_format, **_SAVE_OPTIONS.get(save_format, {}))


def _png(image: np.ndarray) -> bytes:
    """A grey 8-bit PNG, Huffman-coded only: 3-4× faster than PIL's encoder on noisy paper."""
    height, width = image.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each row starts with filter type 0
    rows[:, 1:] = image
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    data = packer.compress(rows.tobytes()) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------- styles

# Letter shapes as control points: x in letter widths, y in x-heights (baseline 0, up).
# Backtracking x makes the loops of cursive writing.
_LETTERS = tuple(np.array(points, dtype=float) for points in (
    [(0.0, 0.05), (0.2, 0.85), (0.4, 0.95), (0.5, 0.1), (0.65, 0.85), (0.85, 0.9), (1.0, 0.1)],  # arches
    [(0.0, 0.15), (0.55, 0.55), (0.55, 0.95), (0.25, 0.7), (0.35, 0.05), (1.0, 0.25)],  # e-loop
    [(0.0, 0.15), (0.6, 1.4), (0.65, 2.3), (0.35, 2.0), (0.4, 0.6), (0.5, 0.0), (1.0, 0.3)],  # ascender
    [(0.0, 0.85), (0.45, 0.95), (0.55, 0.2), (0.5, -0.9), (0.15, -0.8), (0.5, 0.05), (1.0, 0.5)],  # descender
    [(0.0, 0.5), (0.55, 0.95), (0.4, 0.95), (0.05, 0.45), (0.35, 0.0), (0.7, 0.6), (0.75, 0.1), (1.0, 0.3)],  # bowl
    [(0.0, 0.9), (0.1, 0.15), (0.35, 0.0), (0.55, 0.85), (0.6, 0.2), (0.8, 0.0), (1.0, 0.45)],  # cup
    [(0.0, 0.1), (0.45, 1.0), (0.55, 0.3), (0.7, 0.05), (1.0, 0.35)],  # spike
))
_CAPITALS = tuple(np.array(points, dtype=float) for points in (
    [(0.0, 0.2), (0.3, 2.6), (0.8, 3.0), (0.9, 2.2), (0.2, 1.3), (0.1, 0.1), (0.6, -0.2), (1.2, 0.3)],  # loop
    [(0.0, 0.0), (0.25, 2.8), (0.9, 2.6), (0.95, 1.8), (0.3, 1.5), (0.8, 0.7), (1.3, 0.1)],  # stem and bowl
    [(0.0, 0.0), (0.2, 2.4), (0.45, 0.8), (0.7, 2.5), (0.95, 0.2), (1.3, 0.4)],  # zigzag
))


@dataclass(frozen=True)
class Style:
    """How one hand writes one name. Strokes are control points in x-height units."""

    strokes: tuple[np.ndarray, ...]
    slant: float  # shear: x += slant·y
    aspect: float  # horizontal stretch
    rotation: float  # baseline angle, radians
    size: float  # x-height in pixels
    pen: float  # half-width of the stroke at mean pressure, pixels
    pressure: float  # relative amplitude of pressure changes along a stroke
    ink: float  # grey level of the ink
    jitter: float  # natural variability of control points between samples (x-heights)
    tremor: float = 0.0  # amplitude of the shake along the path (x-heights)
    letters: int = 0  # length of the written name


def make_style(rng: np.random.Generator, scale: float = 1.0, letters: int | None = None) -> Style:
    """A new writer: a random name in a random hand."""
    letters = int(rng.integers(4, 10)) if letters is None else letters
    first_word = max(2, int(round(letters * rng.uniform(0.35, 0.65)))) if rng.random() < 0.5 else letters
    strokes, x = [], 0.0
    for word_letters in (first_word, letters - first_word):
        if word_letters <= 0:
            continue
        stroke, x = _word(rng, word_letters, x, capital=rng.random() < 0.7)
        strokes.append(stroke)
        x += rng.uniform(0.4, 1.2)
    if rng.random() < 0.55:
        strokes.append(_flourish(rng, strokes))
    return Style(strokes=tuple(strokes), slant=rng.uniform(-0.2, 0.6), aspect=rng.uniform(0.75, 1.3),
                 rotation=rng.normal(0, 0.05), size=rng.uniform(34, 52) * scale,
                 pen=rng.uniform(1.8, 3.6) * np.sqrt(scale), pressure=rng.uniform(0.15, 0.45),
                 ink=rng.uniform(10, 70), jitter=rng.uniform(0.03, 0.06), letters=letters)


def _word(rng: np.random.Generator, letters: int, x: float, capital: bool) -> tuple[np.ndarray, float]:
    """Control points of one cursive word starting at ``x``; returns them and the end x."""
    parts = []
    if capital:
        shape = _CAPITALS[rng.integers(len(_CAPITALS))]
        width, height = rng.uniform(1.0, 1.7), rng.uniform(0.8, 1.2)
        parts.append(shape * (width, height) + (x, 0) + rng.normal(0, 0.1, shape.shape))
        x += width * shape[:, 0].max()
        letters -= 1
    for _ in range(letters):
        shape = _LETTERS[rng.integers(len(_LETTERS))]
        width = rng.uniform(0.8, 1.3)
        parts.append(shape * (width, 1.0) + (x, 0) + rng.normal(0, 0.1, shape.shape))
        x += width
    return np.concatenate(parts), x


def _flourish(rng: np.random.Generator, strokes: list[np.ndarray]) -> np.ndarray:
    """A sweep from the end of the name back under it."""
    points = np.concatenate(strokes)
    start, end = points[:, 0].min(), points[:, 0].max()
    n = int(rng.integers(4, 7))
    xs = np.linspace(end + rng.uniform(0.2, 0.8), start + rng.uniform(-0.5, 1.5), n)
    ys = -rng.uniform(0.4, 1.2) + rng.normal(0, 0.25, n)
    ys[0] = rng.uniform(0.0, 0.6)
    return np.column_stack([xs, ys])


def forger_of(style: Style, rng: np.random.Generator) -> Style:
    """A skilled forger's copy of ``style``: proportions off, shaky, slow and even."""
    strokes = []
    for stroke in style.strokes:
        origin = stroke[0]
        stretch = np.exp(rng.normal(0, (0.10, 0.14)))
        strokes.append((stroke - origin) * stretch + origin + rng.normal(0, 0.12, stroke.shape))
    return replace(style, strokes=tuple(strokes), slant=style.slant + rng.normal(0, 0.12),
                   aspect=style.aspect * np.exp(rng.normal(0, 0.1)), rotation=style.rotation + rng.normal(0, 0.04),
                   size=style.size * np.exp(rng.normal(0, 0.08)), pen=style.pen * rng.uniform(1.15, 1.5),
                   pressure=style.pressure * rng.uniform(0.2, 0.5), ink=style.ink + rng.normal(0, 8),
                   jitter=style.jitter * 1.2, tremor=rng.uniform(0.02, 0.05))


def sample_of(style: Style, rng: np.random.Generator) -> Style:
    """One natural instance of ``style``: jittered points, small affine, pen and ink changes."""
    strokes = tuple(s + rng.normal(0, style.jitter, s.shape) + rng.normal(0, style.jitter, 2) for s in style.strokes)
    return replace(style, strokes=strokes, slant=style.slant + rng.normal(0, 0.04),
                   aspect=style.aspect * np.exp(rng.normal(0, 0.04)), rotation=style.rotation + rng.normal(0, 0.03),
                   size=style.size * np.exp(rng.normal(0, 0.05)), pen=style.pen * np.exp(rng.normal(0, 0.08)),
                   ink=float(np.clip(style.ink + rng.normal(0, 6), 0, 80)))


def user_signatures(user: int, counts: dict[str, int], seed: int = 0, scale: float = 1.0,
                    max_shape: tuple[int, int] | None = None) -> Iterator[tuple[str, int, np.ndarray]]:
    """(kind, 0-based index, uint8 image) for one user's genuine, skilled and simple signatures.

    ``max_shape`` (height, width): images are kept strictly smaller (the dataset's canvas).
    """
    style = make_style(_rng(seed, _STYLE, user), scale)
    hands: dict[tuple[str, int], Style] = {}

    def hand(kind: str, forger: int) -> Style:
        if kind == "genuine":
            return style
        if (kind, forger) not in hands:
            hands[kind, forger] = (forger_of(style, _rng(seed, _FORGER, user, forger)) if kind == "skilled" else
                                   make_style(_rng(seed, _SIMPLE_WRITER, user, forger), scale, style.letters))
        return hands[kind, forger]

    for kind in KINDS:
        for k in range(counts.get(kind, 0)):
            rng = _rng(seed, _SAMPLE_PURPOSE[kind], user, k)
            yield kind, k, render(sample_of(hand(kind, k % FORGERS_PER_USER), rng), rng, _paper(seed), max_shape)


def _rng(seed: int, purpose: int, user: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, user, index])


# ---------------------------------------------------------------------------- rendering

@functools.lru_cache(maxsize=4)
def _paper(seed: int) -> np.ndarray:
    """Paper grain shared by every image of a seed (each image crops it at a random place)."""
    return _rng(seed, _PAPER, 0).normal(0, 2.5, (_PAPER_SIDE, _PAPER_SIDE)).astype(np.float32)


def render(style: Style, rng: np.random.Generator, grain: np.ndarray,
           max_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Draw one sample: ink dark (about 0-80) on light paper (about 200-250), uint8 H×W.

    An image that would reach ``max_shape`` is drawn smaller, so it always fits the canvas.
    """
    xy, stroke = _splines([_to_pixels(points, style) for points in style.strokes])
    along, local, length = _arc_lengths(xy, stroke)
    if style.tremor:
        xy = xy + _normals(xy) * _tremor(along, style.tremor * style.size, rng)[:, None]
    normal = _normals(xy)
    halfwidth = np.maximum(style.pen * _pressure(along, local, length, style.pressure, rng), 0.5)

    widest = float(halfwidth.max())
    reach = int(np.ceil(widest)) + 2
    margin = rng.uniform((6, 8), (30, 45), size=(2, 2))  # (top, left), (bottom, right)
    low, span = xy.min(axis=0), np.ptp(xy, axis=0)
    shrink = 1.0
    if max_shape is not None:
        room = np.asarray(max_shape[::-1]) - 1 - 2 * reach - margin.sum(axis=0)[::-1]
        shrink = min(1.0, float(np.min(room / np.maximum(span, 1))))
    xy = (xy - low) * shrink + (reach + margin[0, ::-1])
    height, width = np.ceil(span[::-1] * shrink + 2 * reach + margin.sum(axis=0)).astype(int)

    image = _paper_background(rng, grain, (height, width))
    box, opacity = _ink(xy, normal, halfwidth, widest)
    opacity *= image[box] - style.ink
    image[box] -= opacity
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


def _to_pixels(points: np.ndarray, style: Style) -> np.ndarray:
    """Slant, stretch, rotate and scale x-height units to pixels (x right, y down)."""
    x = (points[:, 0] + style.slant * points[:, 1]) * style.aspect
    y = points[:, 1]
    cos, sin = np.cos(style.rotation), np.sin(style.rotation)
    return np.column_stack([x * cos - y * sin, -(x * sin + y * cos)]) * style.size


def _splines(controls: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Catmull-Rom curves through each K×2 control polygon, sampled every ~_SPACING pixels.

    Returns the points of all curves (N×2) and the index of the curve of each point.
    """
    padded = np.concatenate([np.concatenate([c[:1], c, c[-1:]]) for c in controls])
    starts = np.cumsum([0] + [len(c) + 2 for c in controls[:-1]])
    # Segment j of curve i runs from padded[b + 1] to padded[b + 2], with b = starts[i] + j.
    base = np.concatenate([start + np.arange(len(c) - 1) for start, c in zip(starts, controls)])
    curve = np.repeat(np.arange(len(controls)), [len(c) - 1 for c in controls])
    lengths = np.linalg.norm(padded[base + 2] - padded[base + 1], axis=1)
    steps = np.maximum(np.ceil(lengths / _SPACING).astype(np.int64), 1)
    segment = np.repeat(base, steps)
    t = ((np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)) / np.repeat(steps, steps))[:, None]
    p0, p1, p2, p3 = (padded[segment + i] for i in range(4))
    xy = 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
    return xy, np.repeat(curve, steps)


def _arc_lengths(xy: np.ndarray, stroke: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance along the path: over all strokes (jumps between strokes left out), from the
    start of each point's stroke, and the length of each point's stroke."""
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    step[stroke[1:] != stroke[:-1]] = 0.0
    along = np.concatenate([[0.0], np.cumsum(step)])
    first = np.flatnonzero(np.diff(stroke, prepend=-1))
    last = np.append(first[1:] - 1, len(xy) - 1)
    local = along - along[first][stroke]
    return along, local, (along[last] - along[first])[stroke]


def _normals(xy: np.ndarray, reach: int = 3) -> np.ndarray:
    """Unit vectors across the path, from the direction over ±``reach`` points (which
    keeps a shaken ribbon from fanning out at sharp turns)."""
    padded = np.pad(xy, ((reach, reach), (0, 0)), mode="edge")
    tangent = padded[2 * reach:] - padded[:-2 * reach]
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)


def _tremor(along: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A forger's shake: smooth sideways offsets that change direction every few pixels."""
    knots = np.arange(0, along[-1] + 6, 6.0)
    offset = np.interp(along, knots, rng.normal(0, amplitude, len(knots)))
    window = np.ones(int(6 / _SPACING)) / int(6 / _SPACING)  # rounds the corners of the interpolation
    return np.convolve(offset, window, mode="same")


def _pressure(along: np.ndarray, local: np.ndarray, length: np.ndarray, variation: float,
              rng: np.random.Generator) -> np.ndarray:
    """Pen pressure: a slow wave along the path, thin at the start and end of each stroke."""
    wave = 1 + variation * np.sin(2 * np.pi * along / rng.uniform(40, 140) + rng.uniform(0, 2 * np.pi))
    taper = np.clip(np.minimum(local, length - local) / 8.0, 0.15, 1.0)
    return wave * taper


def _ink(xy: np.ndarray, normal: np.ndarray, halfwidth: np.ndarray,
         widest: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """Ink opacity over the box around the path: a ribbon of ``halfwidth`` on each side along ``normal``.

    Points are laid across the path every ~_ACROSS pixels and splatted bilinearly (which
    anti-aliases the edges); their density, about 1 inside the ribbon, is saturated to an
    opacity 1 - e^(-gain·density), so crossings stay dark instead of adding up.
    """
    across = int(np.ceil(2 * widest / _ACROSS)) + 1
    offsets = halfwidth[:, None] * np.linspace(-1.0, 1.0, across)  # N×across
    corner = np.floor(xy.min(axis=0) - widest).astype(np.int64) - 1
    width, height = np.floor(xy.max(axis=0) + widest).astype(np.int64) - corner + 2
    x = ((xy[:, 0] - corner[0])[:, None] + normal[:, :1] * offsets).ravel()
    y = ((xy[:, 1] - corner[1])[:, None] + normal[:, 1:] * offsets).ravel()
    # Each point stands for its share of the ribbon's area (about _SPACING × gap across).
    weight = np.repeat(_INK_GAIN * _SPACING * 2 * halfwidth / (across - 1), across)
    left, top = np.floor(x), np.floor(y)
    fx, fy = x - left, y - top
    index = top.astype(np.int64) * width + left.astype(np.int64)
    near_x, far_x = weight * (1 - fx), weight * fx
    density = np.bincount(np.concatenate([index, index + 1, index + width, index + width + 1]),
                          np.concatenate([near_x * (1 - fy), far_x * (1 - fy), near_x * fy, far_x * fy]),
                          minlength=height * width).reshape(height, width).astype(np.float32)
    opacity = np.expm1(np.negative(density, out=density), out=density)
    np.negative(opacity, out=opacity)
    return (slice(corner[1], corner[1] + height), slice(corner[0], corner[0] + width)), opacity


def _paper_background(rng: np.random.Generator, grain: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Paper grey level with a slight tilt in lighting and grain noise."""
    height, width = shape
    reps = (-(-height // grain.shape[0]), -(-width // grain.shape[1]))
    if reps != (1, 1):
        grain = np.tile(grain, reps)
    top = int(rng.integers(0, grain.shape[0] - height + 1))
    left = int(rng.integers(0, grain.shape[1] - width + 1))
    level = rng.uniform(205, 240)
    tilt_y, tilt_x = rng.uniform(-6, 6, 2)
    paper = grain[top:top + height, left:left + width] + np.linspace(level - tilt_x, level + tilt_x, width,
                                                                     dtype=np.float32)
    paper += np.linspace(-tilt_y, tilt_y, height, dtype=np.float32)[:, None]
    return paper

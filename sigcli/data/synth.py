"""Synthetic signatures written in a dataset's real layout and file format (`sig synth`).

They stand in for the licensed sets in tests, tutorials and benchmarks: the real loaders
read them, preprocessing and training run on them. The writers, forgers and ink are
modelled in :mod:`sigcli.data.handwriting`; this module picks who writes what, and
writes the files where the dataset's loader expects them.

**Which writers a run draws** (docs/synthesis.md#writers). Every random choice comes from a generator seeded by
``(seed, layout, purpose, user, index)``, where ``layout`` is a checksum of the loader's
name. So user 3 of ``--layout gpds --seed 0`` is one person, user 3 of
``--layout mcyt --seed 0`` another, and user 3 of ``--layout gpds --seed 1`` a third:
two layouts (or two seeds) never share writers, and a user's images are the same
whatever the other users, the counts asked for, their order or the number of workers.
Forgeries of a user come from :data:`FORGERS_PER_USER` forgers in turn (sample k: forger
k mod 5), each the same person for every sample.

**Which layouts.** Any dataset loader registered as a plugin (``sig datasets``) whose
class implements :meth:`~sigcli.data.loader.DatasetLoader.synth_path`, built-in or not;
its ``synth_*`` attributes give the file format, the scan resolution, the signature size
and the pens (docs/synthesis.md#layouts). This module knows no layout by name.
"""

from __future__ import annotations

import functools
import json
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from sigcli.config.synth import PREVIEW_WRITERS, SynthOptions
from sigcli.data import handwriting
from sigcli.data.loader import DatasetLoader
from sigcli.errors import InputError, PluginError
from sigcli.fileio import atomic_path, check_outputs
from sigcli.options import build, save_options
from sigcli.parallel import worker_pool
from sigcli.progress import Reporter, resolve

KINDS = ("genuine", "skilled", "simple")

# The purpose word of the seeds: no two purposes share a stream.
_WRITER, _GENUINE, _SKILLED, _SIMPLE, _FORGER, _IMPOSTOR, _PAPER = range(1, 8)
_SAMPLE_PURPOSE = {"genuine": _GENUINE, "skilled": _SKILLED, "simple": _SIMPLE}
#: Forgeries of one user come from this many forgers in turn (sample k: forger k mod 5).
FORGERS_PER_USER = 5
_SAVE_OPTIONS = {"JPEG": {"quality": 92}}
#: Images per user written for a layout whose loader knows its counts only from the data.
COUNTS_OF_UNCOUNTED_LAYOUTS = {"genuine": 12, "skilled": 12, "simple": 0}
#: The file in which a synthesised folder records its options (the loaders ignore it).
MARKER = "sig-synth.json"
#: Width of a contact sheet's cell, pixels.
_PREVIEW_CELL = 300


@dataclass
class SynthResult:
    layout: str
    out: Path | None
    users: list[int]
    counts: dict[str, int]  # images written per kind
    seconds: float
    preview: Path | None = None

    @property
    def images(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        lines = []
        if self.out is not None:
            c = self.counts
            rate = self.images / self.seconds if self.seconds > 0 else float("inf")
            lines.append(f"{self.layout}: {len(self.users)} users ({self.users[0]}..{self.users[-1]}), "
                         f"{c['genuine']} genuine, {c['skilled']} skilled, {c['simple']} simple images "
                         f"in {self.out} ({rate:.0f} images/s)")
        if self.preview is not None:
            lines.append(f"preview: {self.preview}")
        return "\n".join(lines)


def synthesize(layout: str | type[DatasetLoader], out: str | Path | None, *, reporter: Reporter | None = None,
               **options) -> SynthResult:
    """Write synthetic writers in ``layout``'s real layout and file format under ``out``.

    ``layout``: a registered loader's name, or a loader class; ``options``: the other
    fields of :class:`SynthOptions` (``users``, ``genuine``, ``skilled``, ``simple``,
    ``seed``, ``first_user``, ``workers``, ``preview``, ``overwrite``).
    """
    loader = synth_loader(layout)
    name = layout if isinstance(layout, str) else loader.name
    return _synthesize(loader, build(SynthOptions, layout=name, save_path=out, **options), reporter)


def run_synth(options: SynthOptions, reporter: Reporter | None = None) -> SynthResult:
    """``sig synth`` with its options model."""
    return _synthesize(synth_loader(options.layout), options, reporter)


def _synthesize(loader: type[DatasetLoader], options: SynthOptions, reporter: Reporter | None) -> SynthResult:
    """Counts left as None are the dataset's real ones per user (e.g. GPDS 24 genuine, 30
    skilled). Users are numbered from ``first_user`` (the dataset's first by default).
    ``workers`` processes share the users; the files are the same for any number of them.
    The folder appears under its name only once complete, with the resolved options saved
    as ``sig-synth.json`` (which the loaders ignore). An existing folder (other than an
    empty one) is refused unless ``overwrite``, which replaces only a folder that ``sig
    synth`` wrote."""
    out = None if options.save_path is None else Path(options.save_path)
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(f"--save-path {out} is a file", "give a folder (it is created if missing)")
    check_outputs([("--save-path", out), ("--preview", options.preview)], overwrite=options.overwrite,
                  owned=is_synth_folder)
    start = loader.synth_first_user if options.first_user is None else options.first_user
    user_ids = list(range(start, start + options.users))
    counts = _counts(options, loader)
    asked = {kind for kind in KINDS if getattr(options, kind) is not None}
    per_user = {u: _user_counts(loader, counts, u, asked) for u in user_ids}
    total = {kind: sum(c[kind] for c in per_user.values()) for kind in KINDS}

    began = time.perf_counter()
    if options.preview is not None:
        preview(loader, options.preview, writers=min(PREVIEW_WRITERS, options.users), seed=options.seed,
                first_user=start, overwrite=options.overwrite)
    if out is not None:
        with atomic_path(out, suffix="", overwrite=options.overwrite, owned=is_synth_folder) as folder:
            jobs = [(loader, folder, u, per_user[u], options.seed) for u in user_ids]
            with (worker_pool(min(options.workers, len(jobs))) as pool,
                  resolve(reporter).task(f"synth {loader.name}", sum(total.values())) as task):
                for written in (pool.imap_unordered(_write_user_job, jobs) if pool else map(_write_user_job, jobs)):
                    task.advance(written)
            resolved = options.model_copy(update={**counts, "first_user": start})
            save_options(resolved, folder / MARKER, images=total)
    return SynthResult(loader.name, out, user_ids, total if out is not None else dict.fromkeys(KINDS, 0),
                       time.perf_counter() - began, options.preview)


def is_synth_folder(path: Path) -> bool:
    """A folder written by ``sig synth`` (its ``sig-synth.json`` says so): one ``--overwrite`` may replace."""
    try:
        return "layout" in json.loads((path / MARKER).read_text())["options"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def synth_loader(layout: str | type[DatasetLoader]) -> type[DatasetLoader]:
    """The loader class of ``layout`` (a plugin's name, or a class), checked to name synthetic files."""
    if isinstance(layout, str):
        from sigcli.data.plugins import get_loader

        try:
            layout = get_loader(layout)
        except PluginError as exc:
            raise InputError(f"--layout: {exc.message}", f"layouts that can be synthesised: "
                                                         f"{', '.join(synth_layouts()) or 'none'}") from None
    if not layout.can_synthesize():
        raise InputError(f"--layout {layout.name}: its loader does not say how to name synthetic files",
                         f"layouts that can be synthesised: {', '.join(synth_layouts()) or 'none'} (a dataset "
                         "plugin opts in by implementing DatasetLoader.synth_path)")
    return layout


def synth_layouts() -> list[str]:
    """Names of the registered loaders that ``sig synth`` can write, built-in or not."""
    from sigcli.data.plugins import list_plugins

    return [info.name for info in list_plugins() if info.loader is not None and info.loader.can_synthesize()]


def _counts(options: SynthOptions, loader: type[DatasetLoader]) -> dict[str, int]:
    """Per-user counts: the options', else the dataset's real ones, else (a layout whose
    counts are known only from its data, e.g. folder) :data:`COUNTS_OF_UNCOUNTED_LAYOUTS`."""
    real = {"genuine": loader.genuine_per_user, "skilled": loader.skilled_per_user,
            "simple": loader.simple_per_user}
    return {kind: (COUNTS_OF_UNCOUNTED_LAYOUTS[kind] if real[kind] is None else real[kind])
            if getattr(options, kind) is None else getattr(options, kind) for kind in KINDS}


def _user_counts(loader: type[DatasetLoader], counts: dict[str, int], user: int, asked: set[str]) -> dict[str, int]:
    """How many images of each kind ``user`` gets: none of a kind the layout names no files
    for (an error if it was asked for and the layout never has it), and never more than
    its names hold."""
    result = {}
    for kind, n in counts.items():
        if n and loader.synth_path(user, kind, 0) is None:
            if kind == "genuine":
                raise InputError(f"--users: the {loader.name} layout has no user {user}",
                                 "give fewer --users or another --first-user")
            if kind in asked and loader.synth_path(loader.synth_first_user, kind, 0) is None:
                raise InputError(f"--{kind} {n}: the {loader.name} layout has no {kind} forgeries",
                                 f"give --{kind} 0")
            n = 0
        if n and loader.synth_path(user, kind, n - 1) is None:
            most = next(k for k in range(n) if loader.synth_path(user, kind, k) is None)
            raise InputError(f"--{kind} {n}: the {loader.name} layout names at most {most} {kind} images per user",
                             f"give --{kind} {most}")
        result[kind] = n
    return result


def _write_user_job(job: tuple) -> int:
    return _write_user(*job)


def _write_user(loader: type[DatasetLoader], out: Path, user: int, counts: dict[str, int], seed: int) -> int:
    written = 0
    for kind, index, image in user_signatures(user, counts, seed, loader):
        path = out / loader.synth_path(user, kind, index)  # in the folder being written: no one else sees it yet
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(image, path, loader.synth_format)
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


# ---------------------------------------------------------------------------- writers and samples


def user_signatures(user: int, counts: dict[str, int], seed: int = 0,
                    layout: str | type[DatasetLoader] = "gpds") -> Iterator[tuple[str, int, np.ndarray]]:
    """(kind, 0-based index, uint8 image) for one user's genuine, skilled and simple signatures.

    Images are as ``layout``'s scanner made them (resolution, pens, signature size) and
    strictly smaller than its canvas.
    """
    loader = synth_loader(layout) if isinstance(layout, str) else layout
    key = _layout_key(loader.name)
    population = handwriting.Population(pens=tuple(loader.synth_pens), flourish=loader.synth_flourish,
                                        width_mm=loader.synth_width_mm)
    writer = handwriting.make_hand(_rng(seed, key, _WRITER, user), population)
    hands: dict[tuple[str, int], handwriting.Hand] = {("genuine", 0): writer}

    def hand(kind: str, k: int) -> handwriting.Hand:
        who = (kind, 0 if kind == "genuine" else k % FORGERS_PER_USER)
        if who not in hands:
            rng = _rng(seed, key, _FORGER if kind == "skilled" else _IMPOSTOR, user, who[1])
            hands[who] = (handwriting.forge(writer, rng) if kind == "skilled"
                          else handwriting.impostor(writer, rng, population))
        return hands[who]

    grain = _grain(seed, key)
    for kind in KINDS:
        for k in range(counts.get(kind, 0)):
            rng = _rng(seed, key, _SAMPLE_PURPOSE[kind], user, k)
            sample, pen = handwriting.perform(hand(kind, k), rng)
            yield kind, k, handwriting.draw(sample, pen, rng, grain, loader.synth_dpi, loader.canvas_size)


def _layout_key(name: str) -> int:
    return zlib.crc32(name.encode())


def _rng(seed: int, layout_key: int, purpose: int, user: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, layout_key, purpose, user, index])


@functools.lru_cache(maxsize=4)
def _grain(seed: int, layout_key: int) -> np.ndarray:
    """Paper texture shared by every image of a run (each image crops it at its own place)."""
    return handwriting.paper_grain(_rng(seed, layout_key, _PAPER, 0))


# ---------------------------------------------------------------------------- preview


def preview(layout: str | type[DatasetLoader], path: str | Path, writers: int = PREVIEW_WRITERS, seed: int = 0,
            first_user: int | None = None, samples: int = 2, overwrite: bool = False) -> Path:
    """A contact sheet (PNG) of ``samples`` genuine and skilled signatures of the first ``writers``.

    Each cell is the dataset's canvas (or, for a canvas measured from the data, the largest
    image shown), shrunk, with the image in its centre: sizes compare as they will after
    preprocessing. The images are those ``synthesize`` writes for the same layout, seed and users.
    """
    from PIL import ImageDraw

    loader = synth_loader(layout)
    start = loader.synth_first_user if first_user is None else first_user
    kinds = [k for k in ("genuine", "skilled") if loader.synth_path(start, k, samples - 1) is not None]
    columns = [(kind, k) for kind in kinds for k in range(samples)]
    rows = [{(kind, k): image for kind, k, image in user_signatures(user, dict.fromkeys(kinds, samples), seed, loader)}
            for user in range(start, start + writers)]
    canvas = loader.canvas_size or tuple(np.max([image.shape for row in rows for image in row.values()], axis=0))
    scale = _PREVIEW_CELL / canvas[1]
    cell_w, cell_h = _PREVIEW_CELL, int(round(canvas[0] * scale))
    label_w, gap, header = 70, 6, 22
    sheet = Image.new("L", (label_w + len(columns) * (cell_w + gap), header + writers * (cell_h + gap)), 255)
    ink = ImageDraw.Draw(sheet)
    for c, (kind, k) in enumerate(columns):
        ink.text((label_w + c * (cell_w + gap) + 4, 4), f"{kind} {k + 1}", fill=0)
    for row, images in enumerate(rows):
        top = header + row * (cell_h + gap)
        ink.text((4, top + cell_h // 2), f"user {start + row}", fill=0)
        for c, key in enumerate(columns):
            image = Image.fromarray(images[key])
            small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.Resampling.LANCZOS)
            cell = Image.new("L", (cell_w, cell_h), 235)
            cell.paste(small, ((cell_w - small.width) // 2, (cell_h - small.height) // 2))
            sheet.paste(cell, (label_w + c * (cell_w + gap), top))
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        sheet.save(tmp, format="PNG")
    return path

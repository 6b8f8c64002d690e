"""Speed of the synthetic signature generator, per layout, and of its ink and PNG writers.

Target: 200 images/s on 2 cores for every layout, i.e. 100 images/s of one core's time.

- ``synth <layout>``: one worker writes real files; ``ours_s`` is the CPU time of this
  process (robust to other jobs sharing the machine; the wall-clock rate is shown beside
  it), its baseline the CPU time the target allows (images / 100), so ``ratio`` ≥ 1 means
  the target is met.
- ``synth <layout> ×2``: two worker processes; ``ours_s`` is wall time, its baseline the
  wall time the target allows (images / 200); the workers' CPU time per image is shown,
  and whether the files are byte-identical to the one-worker run's (they must be).
- ``ink``: laying the ink of the same trajectories with our vectorised splats against a
  naive renderer that stamps one anti-aliased disc per point in a Python loop.
- ``png encode``: our Huffman-only writer against PIL's PNG encoder on the same images.

Run: ``python -m bench.bench_synth`` (``--quick`` for a short run).
"""

from __future__ import annotations

import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sigcli.data import handwriting, synth

TARGET_IMAGES_PER_S = 200  # on 2 cores


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.suffix != ".json"
            and f.is_file()}


def run(quick: bool) -> list[dict]:
    users = 2 if quick else 8
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synth.synthesize("mcyt", Path(tmp) / "warm-up", users=1, genuine=2, skilled=0, workers=1)  # imports, caches
        for layout in synth.synth_layouts():
            began = time.process_time()
            result = synth.synthesize(layout, Path(tmp) / layout, users=users, workers=1)
            cpu = time.process_time() - began
            baseline = 2 * result.images / TARGET_IMAGES_PER_S
            rows.append({"step": f"synth {layout}", "work": f"{result.images} images, {1000 * cpu / result.images:.1f} "
                         f"ms CPU each, {result.images / result.seconds:.0f}/s wall on 1 core", "ours_s": cpu,
                         "baseline_s": baseline, "ratio": baseline / cpu, "ceiling": None,
                         "note": "baseline: the target's CPU time, 100 images/s per core"})
            children = _children_cpu()
            result = synth.synthesize(layout, Path(tmp) / f"{layout}-2", users=users, workers=2)
            cpu = _children_cpu() - children
            baseline = result.images / TARGET_IMAGES_PER_S
            same = _files(Path(tmp) / layout) == _files(Path(tmp) / f"{layout}-2")
            rows.append({"step": f"synth {layout} ×2", "work": f"{result.images} images, {result.images / result.seconds:.0f}"
                         f"/s wall, {1000 * cpu / result.images:.1f} ms CPU each, "
                         f"{'identical to' if same else 'DIFFERENT from'} 1 worker's", "ours_s": result.seconds,
                         "baseline_s": baseline, "ratio": baseline / result.seconds, "ceiling": None,
                         "note": f"baseline: the target, {TARGET_IMAGES_PER_S} images/s on 2 workers"})

    rows.append(_ink_row(10 if quick else 40))
    images = [image for _, _, image in synth.user_signatures(1, {"genuine": 20 if quick else 100})]
    began = time.process_time()
    for image in images:
        synth._png(image)
    ours = time.process_time() - began
    began = time.process_time()
    for image in images:
        Image.fromarray(image).save(io.BytesIO(), format="PNG", compress_level=1)
    pil = time.process_time() - began
    rows.append({"step": "png encode", "work": f"{len(images)} gpds images, vs PIL compress_level=1",
                 "ours_s": ours, "baseline_s": pil, "ratio": pil / ours, "ceiling": None})
    return rows


def _ink_row(signatures: int) -> dict:
    """Vectorised ink against a per-point disc stamp, on the same executed trajectories."""
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(signatures):
        sample, pen = handwriting.perform(handwriting.make_hand(rng), rng)
        motion = handwriting.execute(sample, rng, max_step=0.05)
        xy = (motion.xy - motion.xy.min(axis=0)) * 40 + 10
        halfwidth = np.full(len(xy), 2.5)
        shape = np.ceil(xy.max(axis=0)[::-1] + 15).astype(int)
        cases.append((xy, motion, halfwidth, np.ones(len(xy)), pen, shape))
    began = time.process_time()
    for xy, motion, halfwidth, deposit, pen, shape in cases:
        handwriting._ink(xy, motion, halfwidth, deposit, pen, rng, shape)
    ours = time.process_time() - began
    began = time.process_time()
    for xy, motion, halfwidth, _, _, shape in cases:
        canvas = Image.new("L", (int(shape[1]), int(shape[0])), 0)
        draw = ImageDraw.Draw(canvas)
        points, _ = handwriting._resample(xy, motion.stroke, handwriting._ALONG)
        for (x, y), r in zip(points, halfwidth):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    naive = time.process_time() - began
    return {"step": "ink", "work": f"{signatures} signatures, vs a PIL disc every 0.75 px", "ours_s": ours,
            "baseline_s": naive, "ratio": naive / ours, "ceiling": None}


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['step']:<24} {row['work']:<58} ours {row['ours_s']:7.3f}s  baseline {row['baseline_s']:7.3f}s"
              f"  ratio {row['ratio']:.2f}")

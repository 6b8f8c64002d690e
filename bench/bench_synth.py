"""Speed of the synthetic signature generator (images/s on one core) and of its PNG writer.

Rows: ``synth <layout>`` writes real files with one worker; ``ours_s`` is the CPU time of
this process (robust to other jobs sharing the cores; the wall-clock rate is shown beside
it), its baseline the time the target rate (200 images/s) allows, so ``ratio`` =
baseline / ours ≥ 1 means the target is met.
``png encode`` compares our Huffman-only writer with PIL's PNG encoder on the same images.

Run: ``python -m bench.bench_synth`` (``--quick`` for a short run).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from sigcli.data import synth

TARGET_IMAGES_PER_S = 200


def run(quick: bool) -> list[dict]:
    users = 2 if quick else 10
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synth.synthesize("mcyt", Path(tmp) / "warm-up", users=1, genuine=2, skilled=0)  # imports, caches
        for layout in ("gpds", "mcyt", "cedar", "brazilian", "gpds-synthetic"):
            began = time.process_time()
            result = synth.synthesize(layout, Path(tmp) / layout, users=users)
            cpu = time.process_time() - began
            baseline = result.images / TARGET_IMAGES_PER_S
            rows.append({"step": f"synth {layout}", "work": f"{result.images} images, {result.images / cpu:.0f}/s CPU "
                         f"({result.images / result.seconds:.0f}/s wall)", "ours_s": cpu,
                         "baseline_s": baseline, "ratio": baseline / cpu, "ceiling": None,
                         "note": f"baseline: the target, {TARGET_IMAGES_PER_S} images/s"})

    images = [image for _, _, image in synth.user_signatures(1, {"genuine": 20 if quick else 100}, scale=1.0)]
    began = time.process_time()
    for image in images:
        synth._png(image)
    ours = time.process_time() - began
    began = time.process_time()
    for image in images:
        Image.fromarray(image).save(io.BytesIO(), format="PNG", compress_level=1)
    pil = time.process_time() - began
    rows.append({"step": "png encode", "work": f"{len(images)} gpds-size images, vs PIL compress_level=1",
                 "ours_s": ours, "baseline_s": pil, "ratio": pil / ours, "ceiling": None})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['step']:<22} {row['work']:<48} ours {row['ours_s']:7.3f}s  baseline {row['baseline_s']:7.3f}s"
              f"  ratio {row['ratio']:.2f}")

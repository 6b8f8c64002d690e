"""What synthetic signatures look like after preprocessing (170×242), per layout and kind.

For each layout: synthesise a few writers with ``sig synth``'s generator, preprocess them
as ``sig preprocess`` does, and measure on the preprocessed images (ink bright on 0):

- ``cover``: share of canvas pixels with any ink (> 0), and with clear ink (> 64);
- ``width``: stroke width in pixels, 2·d − 1, with d the distance to the background read on the
  skeleton of the clear ink (median, and 10th-90th percentiles);
- ``tone``: grey level of the ink pixels (> 0): 10th, 50th and 90th percentiles;
- ``box``: height × width of the box holding the clear ink (medians), and its share of
  the canvas width.

Genuine and skilled rows side by side show whether forgeries differ in stroke width or
tone (they should not, much) rather than in shape. It uses only ``synthesize`` and the
preprocessing, so it measures any version of the generator: run it with another
checkout first on ``PYTHONPATH`` to compare (a layout that version cannot write is skipped).

Run: ``python -m bench.synth_stats`` (``--users N --images N --seed N --layouts gpds mcyt``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from sigcli.config.preprocess import PreprocessOptions
from sigcli.data.plugins import get_loader
from sigcli.data.synth import synthesize
from sigcli.errors import InputError
from sigcli.preprocess import process_dataset

LAYOUTS = ("gpds", "mcyt", "cedar", "brazilian", "gpds-synthetic", "bhsig-bengali", "folder")
CLEAR_INK = 64


def measure(x: np.ndarray) -> dict[str, float]:
    """Statistics of a stack of preprocessed images (N×H×W uint8, ink bright)."""
    clear = x > CLEAR_INK
    widths = []
    boxes = []
    for image, ink in zip(x, clear):
        if not ink.any():
            continue
        distance = ndimage.distance_transform_edt(ink)
        widths.append(2 * distance[skeletonize(ink)] - 1)
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        boxes.append((rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    width = np.concatenate(widths)
    tone = x[x > 0]
    box = np.median(np.array(boxes), axis=0)
    return {"cover_any": float((x > 0).mean()), "cover_clear": float(clear.mean()),
            "width_p10": float(np.percentile(width, 10)), "width_p50": float(np.median(width)),
            "width_p90": float(np.percentile(width, 90)),
            "tone_p10": float(np.percentile(tone, 10)), "tone_p50": float(np.median(tone)),
            "tone_p90": float(np.percentile(tone, 90)),
            "box_h": float(box[0]), "box_w": float(box[1]), "box_share": float(box[1] / x.shape[2])}


def run(layouts: tuple[str, ...], users: int, images: int, seed: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout in layouts:
            raw, data = Path(tmp) / layout, Path(tmp) / f"{layout}.npz"
            simple = 0 if get_loader(layout).simple_per_user else None
            try:
                synthesize(layout, raw, users=users, genuine=images, skilled=images, simple=simple, seed=seed)
            except (InputError, KeyError, ValueError) as exc:  # a generator that cannot write this layout
                print(f"{layout}: skipped ({exc})")
                continue
            process_dataset(PreprocessOptions(dataset=layout, raw_path=raw, save_path=str(data), workers=1,
                                              overwrite=True))
            with np.load(data) as arrays:
                x, yforg = arrays["x"][:, 0], arrays["yforg"]
            for kind, code in (("genuine", 0), ("skilled", 1)):
                rows.append({"layout": layout, "kind": kind, "n": int((yforg == code).sum()),
                             **measure(x[yforg == code])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--images", type=int, default=6, help="genuine and skilled images per user")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS))
    args = parser.parse_args()
    print(f"{'layout':<15}{'kind':<8}{'n':>4} {'cover >0':>8} {'>64':>6}  {'width p10/50/90':>16}  "
          f"{'tone p10/50/90':>15}  {'box h×w':>9} {'w/242':>6}")
    for r in run(tuple(args.layouts), args.users, args.images, args.seed):
        print(f"{r['layout']:<15}{r['kind']:<8}{r['n']:>4} {100 * r['cover_any']:>7.1f}% {100 * r['cover_clear']:>5.1f}%"
              f"  {r['width_p10']:>4.1f}/{r['width_p50']:>4.1f}/{r['width_p90']:>4.1f} px"
              f"  {r['tone_p10']:>4.0f}/{r['tone_p50']:>4.0f}/{r['tone_p90']:>4.0f}"
              f"  {r['box_h']:>3.0f}×{r['box_w']:>3.0f}  {100 * r['box_share']:>5.0f}%")


if __name__ == "__main__":
    main()

"""Batch verification: `sig verify --pairs` vs scoring the same list one row at a time.

A list of (reference folder, query, label) rows is scored twice with the same loaded
SigNet (untrained weights: the cost, not the accuracy, is measured) on synthetic writers:

- baseline: one `Verifier.verify(references, query)` per row, as a loop calling `sig verify`
  would do once the model is loaded (each row reads, normalises and extracts the writer's
  references again, and its query in a batch of its own);
- ours: `verify_pairs`, which enrolls each reference folder once and extracts the distinct
  queries in batches.

Both give the same scores (checked, to float32 rounding). The baseline is a lower bound:
a shell loop over `sig verify` would also start Python and load the model per row.

Run: python -m bench.bench_verify [--quick] [--device cuda]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.bench_wd import show
from sigcli.config.verify import VerifyOptions
from sigcli.data.synth import user_signatures
from sigcli.models.checkpoint import save_checkpoint, untrained_checkpoint
from sigcli.options import build
from sigcli.verify import Verifier, verifier_options
from sigcli.verify_pairs import verify_pairs

CANVAS = (400, 571)


def run(quick: bool, device: str = "auto") -> list[dict]:
    writers, references, queries = (4, 5, 4) if quick else (12, 10, 8)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pairs = _pairs_file(root, writers, references, queries)
        checkpoint = untrained_checkpoint("signet", seed=0)
        save_checkpoint(root / "signet.pth", checkpoint.features_state)
        options = build(VerifyOptions, model_path=root / "signet.pth", pairs=pairs, canvas=CANVAS, device=device)
        rows = [line.split(",") for line in pairs.read_text().splitlines()[1:]]
        warm_up = Verifier(verifier_options(options))  # image decoders, torch kernels
        warm_up.verify(root / rows[0][0], root / rows[0][1])
        work = f"{len(rows)} pairs, {writers} writers × {references} references, SigNet on {warm_up.device}"

        start = time.perf_counter()  # both load the model once
        verifier = Verifier(verifier_options(options))
        one_by_one = [verifier.verify(root / reference, root / query).queries[0].score
                      for reference, query, _ in rows]
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        result = verify_pairs(options)
        ours = time.perf_counter() - start
    diff = float(np.max(np.abs(np.array(one_by_one) - [pair.score for pair in result.pairs])))
    print(f"# same scores: max |ours - one row at a time| = {diff:.1e}; EER {result.metrics['EER']:.3f}")
    return [
        {"step": "one Verifier.verify per row (model loaded once)", "work": work, "ours_s": baseline,
         "baseline_s": baseline, "ratio": 1.0, "ceiling": None},
        {"step": "ours: verify_pairs (enroll once, batched queries)", "work": work, "ours_s": ours,
         "baseline_s": baseline, "ratio": baseline / ours, "ceiling": None, "note": f"max |diff| {diff:.1e}"},
    ]


def _pairs_file(root: Path, writers: int, references: int, queries: int) -> Path:
    """Per writer, a folder of references and ``queries`` rows: half its other genuines, half skilled forgeries."""
    lines = ["reference,query,label"]
    counts = {"genuine": references + queries // 2, "skilled": queries - queries // 2}
    for user in range(writers):
        (root / f"w{user}").mkdir()
        for kind, index, image in user_signatures(user, counts, seed=0, max_shape=CANVAS):
            if kind == "genuine" and index < references:
                Image.fromarray(image).save(root / f"w{user}" / f"g{index}.png")
            else:
                Image.fromarray(image).save(root / f"q{user}_{kind}{index}.png")
                lines.append(f"w{user},q{user}_{kind}{index}.png,{int(kind == 'genuine')}")
    path = root / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    show(run(quick="--quick" in sys.argv, device="cuda" if "--device" in sys.argv else "auto"))

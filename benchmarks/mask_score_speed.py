"""Time of the segmenter's pass that scores a trial coding: masks on val's grid alone, or at the picture's size too.

The segmentation policy's trade (:func:`semrl.agent.answer.object_score`) and the benchmark score
each coding's mask mAP50-95 on val's mask grid; with :data:`semrl.fidelity.segmentation.MASK_EVAL`
the net also enlarged every find's mask to the picture (300 finds at confidence 0.001), which mask
mAP never reads. :data:`semrl.fidelity.segmentation.MASK_SCORE` skips that. Each picture of the
split is coded by the patched x265 (all-intra, ``--qp``) and the decoded picture is read both ways,
alternating, after a warm-up; the figure is the median over pictures of the paired ratio (these
machines drift between runs), and the two readings are checked to match the net's own finds on
the source alike (the same true positives, so the same score).

    python benchmarks/mask_score_speed.py          # writes benchmarks/results/mask_score_speed.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semrl.cli.options import at_least
from semrl.files import atomic_write, check_can_create, json_text

RESULTS = Path(__file__).resolve().parent / "results" / "mask_score_speed.json"


def main(argv: list[str] | None = None) -> int:
    """Measure, print the medians and the ratio, write the JSON; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="train", help="coco-seg split (default train)")
    ap.add_argument("--start", type=int, default=0, help="first picture of the split")
    ap.add_argument("--limit", type=at_least(1), default=16, help="pictures timed")
    ap.add_argument("--qp", type=int, default=37, help="base QP of the codings (all-intra, preset medium)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the benchmark's workers use 1)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it

    import torch

    from semrl.bench.items import image_item
    from semrl.codec import Encoder, EncoderConfig, Gop
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.labels import dataset_images
    from semrl.fidelity.segmentation import MASK_EVAL, MASK_SCORE
    from semrl.semantics.yolo import YoloNet

    torch.set_num_threads(args.threads)
    net = YoloNet("yolo11n-seg.pt", device="cpu")
    images = dataset_images("coco-seg", split=args.split)[args.start : args.start + args.limit]
    times: dict[str, list[float]] = {"frame_and_grid": [], "grid_only": []}
    ratios, same = [], True
    for i, image in enumerate(images):
        item = image_item(image.image)
        (h, w), frame = item.shape, item.yuv[0]
        with Encoder(EncoderConfig(*item.coded_size, qp=args.qp, gop=Gop.INTRA)) as encoder:
            (coded,) = encoder.encode(frame) + encoder.flush()
        source, shown = frame.to_rgb()[:h, :w], coded.recon.to_rgb()[:h, :w]
        if i == 0:
            net.detect([shown], MASK_EVAL, color="rgb")  # warm-up
        pair = {}
        for name, settings in (("frame_and_grid", MASK_EVAL), ("grid_only", MASK_SCORE)):
            start = time.perf_counter()
            pair[name] = net.detect([shown], settings, color="rgb")[0]
            times[name].append(time.perf_counter() - start)
        ratios.append(times["grid_only"][-1] / times["frame_and_grid"][-1])
        grids = [pair[name].grid_masks for name in ("grid_only", "frame_and_grid")]
        same &= grids[0] is not None and grids[1] is not None and np.array_equal(grids[0], grids[1])
        # the trade's score reads these matches against the net's own finds on the source, each made as scored
        matches = [
            match_frame(pair[name], pseudo_target(net.detect([source], settings, color="rgb")[0]), "mask").tp
            for name, settings in (("grid_only", MASK_SCORE), ("frame_and_grid", MASK_EVAL))
        ]
        same &= np.array_equal(matches[0], matches[1])
    results: dict[str, Any] = {
        "pictures": len(images),
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "median_ratio_grid_only": round(statistics.median(ratios), 3),
        "scores_equal": same,
    }
    print(
        f"segmenter pass on a trial coding: {results['median_s']['frame_and_grid']:.3f} s with masks at the "
        f"picture's size, {results['median_s']['grid_only']:.3f} s on the grid alone; median paired ratio "
        f"{results['median_ratio_grid_only']:.3f} over {len(images)} pictures; scores equal: {same}"
    )
    description = {
        "what": __doc__.split("\n\n")[0],
        "data": f"coco-seg {args.split} {args.start}-{args.start + len(images) - 1}, all-intra QP {args.qp}",
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = {"name": "mask_score_speed", "description": description, "results": results}
    atomic_write(args.output, json_text(out, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    raise SystemExit(run_script(main))

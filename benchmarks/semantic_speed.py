"""Semantic-map extraction speed per task and method at 640 px (frames/s, median of runs).

Run: ``python benchmarks/semantic_speed.py [--runs 5] [--frames 8] [--threads 2]``.
Writes ``benchmarks/results/semantic_speed.json`` as ``{"name", "description", "results"}``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from semrl.cli.options import at_least
from semrl.files import atomic_write, check_can_create, json_text

RESULTS = Path(__file__).resolve().parent / "results" / "semantic_speed.json"
CASES = [
    ("detection", "boxes"),
    ("detection", "class_scores"),
    ("detection", "gradient"),
    ("segmentation", "masks"),
    ("segmentation", "gradient"),
    ("classification", "gradcam"),
    ("classification", "gradient"),
]


def main(argv: list[str] | None = None) -> int:
    """Measure, print a table, write the JSON; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=at_least(1), default=5, help="timed runs (median reported)")
    ap.add_argument("--frames", type=at_least(1), default=8, help="frames per run (one batch)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it

    import cv2
    import numpy as np
    import torch
    import ultralytics

    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.frames import read_image

    torch.set_num_threads(args.threads)
    bus = read_image(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
    frame = cv2.resize(bus, (640, 480), interpolation=cv2.INTER_AREA)  # a 640-px frame
    frames = [np.ascontiguousarray(np.roll(frame, 7 * k, axis=1), dtype=np.uint8) for k in range(args.frames)]
    results = []
    for task, method in CASES:
        ext = make_extractor(task, method, device=args.device, batch=args.frames)
        ext.extract(frames[:2])  # warm-up
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            ext.extract(frames)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        results.append(
            {
                "task": task,
                "method": method,
                "weights": ext.net.weights_path.name,
                "device": ext.net.device,
                "frame": "640x480",
                "frames_per_run": args.frames,
                "runs": args.runs,
                "median_s": round(med, 4),
                "fps": round(args.frames / med, 2),
            }
        )
        print(f"{task:15s} {method:13s} {results[-1]['fps']:8.2f} frames/s", flush=True)
    desc = (
        f"semrl semantic-map extraction, 640x480 frames, batch {args.frames}, median of "
        f"{args.runs} runs after warm-up; torch {torch.__version__} ({args.threads} threads), "
        f"ultralytics {ultralytics.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()} {platform.processor() or platform.platform()}, "
        f"{os.cpu_count()} CPUs, {datetime.date.today().isoformat()}"
    )
    out = {"name": "semantic_speed", "description": desc, "results": results}
    atomic_write(args.output, json_text(out, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    raise SystemExit(run_script(main))

"""What the semantic map says of each clip: its objects' sizes and the detector's confidence in them.

Read against the probe's clip-by-clip BD-rates (``clips.csv``): does either tell the clips where half the
size pays from those where it costs? The objects are the net's on the original frames (frames 0-149, the
benchmark's analysis: ``semrl.bench.tasknet.TaskNet.analyse_all``), in the clip's own pixels.

    python benchmarks/results/video-resolution/clip_features.py > benchmarks/results/video-resolution/clip_features.txt
"""

from __future__ import annotations

import numpy as np

from semrl.bench.items import TaskSpec, load_items
from semrl.bench.tasknet import TaskNet


def main() -> None:
    task = TaskSpec("video", data="", weights="yolov8n.pt", metric="mAP50-95", rate_unit="kbit/s")
    net = TaskNet(task)
    print("clip | size | objects | sqrt(area) px q25 / q50 / q75 | short side px q50 | confidence q50 | share >= 0.5")
    for item in load_items(task, None, None, frames=150):
        analysis, _ = net.analyse_all(item)
        boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in analysis.boxes])
        conf = np.concatenate([np.asarray(c, np.float64).ravel() for c in analysis.conf])
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        side = np.sqrt(w * h)
        quartiles = " / ".join(f"{v:.0f}" for v in np.percentile(side, [25, 50, 75]))
        width, height = item.coded_size
        print(
            f"{item.name} | {width}x{height} | {len(boxes)} | {quartiles} | {np.median(np.minimum(w, h)):.0f} | "
            f"{np.median(conf):.2f} | {np.mean(conf >= 0.5):.2f}"
        )


if __name__ == "__main__":
    main()

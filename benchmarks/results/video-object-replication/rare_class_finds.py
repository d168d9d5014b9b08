"""What the net finds on the 4 training clips' originals, per class, with crops of rare classes' finds (scratch).

Prints, per class, how many objects the analysis found (confidence 0.25 or more, the pseudo ground
truth's threshold) on frames 0-149 and 200-349 of each clip, their median and highest confidence
and the windows they are in; writes the first find of a few rare classes in each window, grown by
40 px and drawn in red, to ``--crops``::

    python benchmarks/results/video-object-replication/rare_class_finds.py --cache-dir <the rounds' cache>
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from semrl.assets import assets_root
from semrl.bench.items import TASKS
from semrl.bench.runner import make_context
from semrl.errors import AssetNotFoundError

CLIPS = (
    "videos/people_800x450.mp4",
    "videos-extra/bgslibrary_video03_320x240.avi",
    "videos-extra/bgslibrary_video_640x360.avi",
    "videos-extra/degirum_aerial_crossing_pedestrians_bikes_640x640.mp4",
)
CROPPED = ("toilet", "microwave", "teddy bear", "airplane", "cell phone", "tie")
PAD = 40


def main() -> None:
    """Print the per-class table and write the crops."""
    import cv2

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--crops", type=Path, default=Path("rare_class_crops"))
    args = parser.parse_args()
    root = assets_root()
    if root is None:
        raise AssetNotFoundError("no assets folder: set SEMRL_ASSETS to the folder holding videos/ and videos-extra/")
    task = replace(TASKS["video"], data=",".join(str(root / c) for c in CLIPS))
    ctx = make_context(task, frames=150, start=[0, 200], cache_dir=args.cache_dir, progress=False)
    names = ctx.net.net.names
    conf: dict[str, list[float]] = defaultdict(list)
    where: dict[str, set[str]] = defaultdict(set)
    args.crops.mkdir(parents=True, exist_ok=True)
    for item, analysis in zip(ctx.items, ctx.analyses, strict=True):
        cropped: set[str] = set()
        for k, (boxes, classes, confs) in enumerate(zip(analysis.boxes, analysis.cls, analysis.conf, strict=True)):
            for box, c, v in zip(boxes, classes, confs, strict=True):
                name = names[int(c)]
                conf[name].append(float(v))
                where[name].add(item.name)
                if name in CROPPED and name not in cropped:
                    cropped.add(name)
                    rgb = np.ascontiguousarray(item.yuv[k].to_rgb())
                    x0, y0, x1, y1 = (int(t) for t in box)
                    cv2.rectangle(rgb, (x0, y0), (x1, y1), (255, 0, 0), 1)
                    h, w = rgb.shape[:2]
                    crop = rgb[max(y0 - PAD, 0) : min(y1 + PAD, h), max(x0 - PAD, 0) : min(x1 + PAD, w)]
                    slug = name.replace(" ", "_")
                    path = args.crops / f"{slug}_{Path(item.name).name}_{k}_{v:.2f}.png"
                    cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    for name, values in sorted(conf.items(), key=lambda kv: -len(kv[1])):
        print(f"{name:15} {len(values):5d} median {np.median(values):.2f} max {max(values):.2f} {sorted(where[name])}")


if __name__ == "__main__":
    main()

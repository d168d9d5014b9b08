"""How much each clip's picture changes: the median over frames 0-149 of the mean absolute luma change over k frames.

python benchmarks/results/video-as-encoded/motion.py CLIP...
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np


def main(clips: list[str]) -> int:
    for clip in clips:
        with av.open(clip) as source:
            frames = zip(range(150), source.decode(video=0), strict=False)  # the first 150, or all of a shorter clip
            lumas = [f.to_ndarray(format="gray").astype(np.int16) for _, f in frames]
        change = {
            k: float(np.median([np.abs(lumas[i] - lumas[i - k]).mean() for i in range(k, len(lumas))]))
            for k in (1, 5, 10)
        }
        print(f"{Path(clip).name}: {len(lumas)} frames; median mean |luma change| over 1 / 5 / 10 frames: "
              + " / ".join(f"{v:.2f}" for v in change.values()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Objects the detector finds on a clip's first 250 decoded frames (the clip set's criterion).

    python benchmarks/results/video-ra-default/count_objects.py WEIGHTS.pt CLIP [CLIP ...]

Prints, per clip: its name, the frames read, the objects found, objects a frame, the most found classes.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import av
from ultralytics import YOLO  # type: ignore[attr-defined]

FRAMES = 250


def main() -> None:
    """Count and print (see the module docstring)."""
    net: Any = YOLO(sys.argv[1])
    for clip in sys.argv[2:]:
        counts: collections.Counter[str] = collections.Counter()
        frames = 0
        with av.open(clip) as container:
            for frame in container.decode(video=0):
                if frames == FRAMES:
                    break
                result: Any = net.predict(frame.to_ndarray(format="bgr24"), conf=0.25, verbose=False)[0]
                counts.update(net.names[int(k)] for k in result.boxes.cls.tolist())
                frames += 1
        total = sum(counts.values())
        print(Path(clip).name, frames, total, round(total / frames, 2), counts.most_common(6), flush=True)


if __name__ == "__main__":
    main()

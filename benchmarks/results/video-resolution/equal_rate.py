"""Half the size against full size at full size's own rates, clip by clip (the probe's ``clips.csv``).

For each clip and each base QP of full size, the half-size curve's score at the same rate (linear in log
rate between its points; "-" outside them) minus full size's, in points of mAP50-95, on ``objects`` and on
the class mean (``task``).

    python benchmarks/results/video-resolution/equal_rate.py benchmarks/results/video-resolution/clips.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np


def main(path: Path) -> None:
    rows = list(csv.DictReader(path.open()))
    for measure in ("objects", "task"):
        print(f"{measure}: half size minus full size at full size's rate, by full size's base QP")
        for clip in dict.fromkeys(r["clip"] for r in rows):
            points = {
                s: sorted((int(r["qp"]), float(r["kbps"]), float(r[measure]))
                          for r in rows if r["clip"] == clip and float(r["scale"]) == s)
                for s in (1.0, 0.5)
            }  # fmt: skip
            rates = np.log([p[1] for p in points[0.5]][::-1])
            scores = [p[2] for p in points[0.5]][::-1]
            cells = []
            for qp, kbps, score in points[1.0]:
                inside = rates[0] <= np.log(kbps) <= rates[-1]
                cells.append(f"{qp}: {np.interp(np.log(kbps), rates, scores) - score:+.1f}" if inside else f"{qp}: -")
            print(f"  {clip:55s} " + "  ".join(cells))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

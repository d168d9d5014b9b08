"""BD-rates of the probe's scales, and of their upper envelope, against full size (pooled, or clip by clip).

python benchmarks/results/video-resolution/resolution_bdrate.py benchmarks/results/video-resolution/points.csv
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from semrl.bench.bdrate import Curve, bd_rate

MEASURES = (("task", "class mean"), ("objects", "objects"), ("person", "person AP"))


def envelope(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both rate and quality (the best scale at each rate)."""
    return [p for p in points if not any(q[0] <= p[0] and q[1] > p[1] for q in points)]


def main(path: Path) -> None:
    rows = list(csv.DictReader(path.open()))
    if "clip" not in rows[0]:
        table(rows)
        return
    for clip in dict.fromkeys(r["clip"] for r in rows):  # each clip's own curves (the probe's --clips-output)
        print(clip)
        table([r for r in rows if r["clip"] == clip])


def table(rows: list[dict[str, str]]) -> None:
    """BD-rate of each scale below 1, and of the envelope, against scale 1, on each measure."""
    scales = sorted({float(r["scale"]) for r in rows}, reverse=True)
    full = [r for r in rows if float(r["scale"]) == 1.0]
    print(f"{'test':>10} | " + " | ".join(f"{name:>22}" for _, name in MEASURES))
    for test in [*scales[1:], "envelope"]:
        cells = []
        for key, _ in MEASURES:
            anchor = Curve(tuple(float(r["kbps"]) for r in full), tuple(float(r[key]) for r in full),
                           tuple(f"qp={r['qp']}" for r in full))  # fmt: skip
            points = [(float(r["kbps"]), float(r[key]), f"{r['scale']}@{r['qp']}") for r in rows
                      if test == "envelope" or float(r["scale"]) == test]  # fmt: skip
            if test == "envelope":
                points = envelope(points)
            if any(math.isnan(q) for _, q, _ in points) or any(math.isnan(float(r[key])) for r in full):
                cells.append(f"{'no labels':>22}")
                continue
            result = bd_rate(anchor, Curve(*map(tuple, zip(*points, strict=True))))
            text = "n/a" if result.pchip is None else f"{result.pchip:+.1f} ({result.akima:+.1f})"
            cells.append(f"{text + (' ' + ','.join(result.flags) if result.flags else ''):>22}")
        print(f"{test!s:>10} | " + " | ".join(cells))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

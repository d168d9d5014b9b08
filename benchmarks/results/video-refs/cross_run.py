"""BD-rate of one run's method against another run's anchor, from two ``points.csv`` (pooled points).

``bdrate.py --x265`` sets an option for every method of a run, anchors included; this compares
across two runs of the same clips and frames, with the benchmark's own monotone fit and pchip.

    python benchmarks/results/video-refs/cross_run.py ANCHOR_CSV ANCHOR_METHOD TEST_CSV TEST_METHOD
"""

from __future__ import annotations

import csv
import sys

from semrl.bench.bdrate import Curve, bd_rate


def curve(path: str, method: str, quality: str) -> Curve:
    """The method's pooled curve on ``quality`` from a ``points.csv``."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == method]
    if not rows:
        raise SystemExit(f"{path}: no points of method {method!r}")
    return Curve.of([float(r["rate"]) for r in rows], [float(r[quality]) for r in rows], [r["point"] for r in rows])


def main() -> None:
    anchor_csv, anchor_method, test_csv, test_method = sys.argv[1:5]
    for quality in ("task", "objects", "psnr"):
        bd = bd_rate(curve(anchor_csv, anchor_method, quality), curve(test_csv, test_method, quality))
        value = "not comparable" if bd.pchip is None else f"{bd.pchip:+.1f} (akima {bd.akima:+.1f})"
        print(f"{quality}: {test_method} ({test_csv}) vs {anchor_method} ({anchor_csv}): {value}")


if __name__ == "__main__":
    main()

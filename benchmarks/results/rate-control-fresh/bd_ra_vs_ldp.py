"""BD-rate of each method's random-access curve against its low-delay P curve, from two ``bdrate.py`` video runs.

Usage: ``python bd_ra_vs_ldp.py LDP/points.csv RA/points.csv`` (e.g. ``../video-six-clips/ldp7/video/points.csv``
and ``../video-six-clips/ra7/video/points.csv``: the same clips, frames and base QPs). Prints pchip BD-rate (%) on
the class mean (``task``), on ``objects`` and on PSNR-Y; negative: random access needs fewer bits.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from semrl.bench.bdrate import Curve, bd_rate


def _curve(rows: list[dict[str, str]], key: str) -> Curve:
    return Curve(
        tuple(float(r["rate"]) for r in rows), tuple(float(r[key]) for r in rows), tuple(r["point"] for r in rows)
    )


def main(ldp: str, ra: str) -> None:
    """Print the BD-rates per method present in both runs."""
    runs = [list(csv.DictReader(Path(f).read_text().splitlines())) for f in (ldp, ra)]
    methods = sorted({r["method"] for r in runs[0]} & {r["method"] for r in runs[1]})
    for method in methods:
        low_delay, random_access = ([r for r in run if r["method"] == method] for run in runs)
        figures = []
        for key, name in (("task", "class mean"), ("objects", "objects"), ("psnr_y", "PSNR-Y")):
            bd = bd_rate(_curve(low_delay, key), _curve(random_access, key)).pchip
            figures.append(f"{name} {'n/a' if bd is None else f'{bd:+.1f} %'}")
        print(f"{method}: RA against LDP: {'; '.join(figures)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

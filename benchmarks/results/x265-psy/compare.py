"""BD-rate of the same methods coded with other x265 psycho-visual settings against stock, from two runs' points.

Usage: ``python benchmarks/results/x265-psy/compare.py STOCK_POINTS.csv VARIANT_POINTS.csv`` (each a
``benchmarks/bdrate.py`` ``points.csv`` of the same data; the variant run with e.g. ``--x265 psy-rd=0
--x265 psy-rdoq=0``). Prints, per method of both and per quality, its variant curve against its
stock curve and against stock A1 (pchip, %).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

from semrl.bench.bdrate import Curve, bd_rate


def curves(path: str, quality: str) -> dict[str, Curve]:
    """Each method's (rate, quality) curve of a ``points.csv``."""
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(quality):
                points[row["method"]].append((float(row["rate"]), float(row[quality]), row["point"]))
    return {m: Curve.of([p[0] for p in ps], [p[1] for p in ps], [p[2] for p in ps]) for m, ps in points.items()}


def main(stock_path: str, variant_path: str) -> None:
    """Print the comparison."""
    for quality in ("task", "objects", "psnr"):
        stock, variant = curves(stock_path, quality), curves(variant_path, quality)
        for method in sorted(set(stock) & set(variant)):
            own = bd_rate(stock[method], variant[method])
            a1 = bd_rate(stock["uniform"], variant[method])
            print(f"{quality:8s} {method:16s} variant vs stock: {_fmt(own.pchip)} (akima {_fmt(own.akima)}); "
                  f"vs stock A1: {_fmt(a1.pchip)}")  # fmt: skip


def _fmt(value: float | None) -> str:
    return "  n/c" if value is None else f"{value:+6.1f}"


if __name__ == "__main__":
    main(*sys.argv[1:3])

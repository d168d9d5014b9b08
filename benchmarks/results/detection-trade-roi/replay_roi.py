"""Replays the trade over ROI maps (``collect_roi.py``'s codings) and over the learned map's and ROI's trials together.

Per base QP each picture keeps the trial of most ``score - w * bpp`` (``w = trade * 2 ** ((q - 22)
/ 6)``, ties to the fewer bits) among the rule's trials; BD-rate (pchip) is against A1 on the same
pictures, on the class mean and on ``objects``::

    python benchmarks/results/detection-trade-roi/replay_roi.py [--shipped 0.1] CODINGS.pkl ROI.pkl [FIRST:LAST]

``--shipped``: the shipped trade's weight (0.2, the detection policy's; 0.1 for segmentation).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade-background"))
from replay import QPS, Chooser, curves
from replay_background import merged, print_rule, trade, window

DELTAS = (4, 8, 12)
TRADES = (0.1, 0.2, 0.4)


def over(kinds: Sequence[str], weight: float) -> Chooser:
    """The trade over every shift of each map in ``kinds`` at ``weight``."""
    return lambda p, q: trade(p, q, weight=weight, kinds=kinds)


def unshifted(kind: str) -> Chooser:
    """The map ``kind`` as it is, at every base QP."""
    return lambda p, q: (kind, q, 0)


def replay(pictures: Sequence[dict[str, Any]], shipped: float = 0.2) -> None:
    """Prints each rule's line (``print_rule``) and, for the union, how often each map was kept."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    print_rule(f"the shipped trade (learned map, {shipped:g})", pictures, over(["policy"], shipped), a1)
    for d in DELTAS:
        print_rule(f"roi {d} alone, no trade", pictures, unshifted(f"roi{d}"), a1)
    for d in DELTAS:
        for t in TRADES:
            print_rule(f"roi {d}, trade {t:g}", pictures, over([f"roi{d}"], t), a1)
    for d in DELTAS:
        for t in TRADES:
            choose = over(["policy", f"roi{d}"], t)
            print_rule(f"union {d}, trade {t:g}", pictures, choose, a1)
            kept = sum(choose(p, q)[0] != "policy" for p in pictures for q in QPS)
            print(f"{'':48s} ROI kept in {kept} of {len(QPS) * len(pictures)} choices")
    for t in TRADES:
        print_rule(f"union 4+8+12, trade {t:g}", pictures, over(["policy", "roi4", "roi8", "roi12"], t), a1)


def main(argv: list[str]) -> None:
    """Reads the two files (pictures in the same order) and replays the window asked for (default all)."""
    shipped = 0.2
    if argv[0] == "--shipped":
        shipped, argv = float(argv[1]), argv[2:]
    replay(window(merged(Path(argv[0]), Path(argv[1])), argv), shipped)


if __name__ == "__main__":
    main(sys.argv[1:])

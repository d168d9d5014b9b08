"""Replays the segmentation trade on ``collect_targets.py``'s codings, its score against finds at each confidence.

Per base QP each picture keeps the shift of most ``score_c - w(q) * bpp`` (``w(q) = trade * 2 **
((q - 22) / 6)``; ``score_c`` its mask mAP50-95 against the finds at confidence ``c`` or more, 1
with none); the set's mask mAP50-95 against the labels at each base QP gives the curve, BD-rate
(pchip) against A1 on the same pictures. Prints each combination and the README's rule::

    python benchmarks/results/segmentation-target/replay_targets.py CODINGS.pkl
"""

from __future__ import annotations

import math
import pickle
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
from replay import QPS, SHIFTS, curves, picture_score

from semrl.bench.bdrate import bd_rate

CONFS = (0.25, 0.15, 0.1, 0.05)
TRADES = (0.05, 0.1, 0.2)
SHIPPED = (0.25, 0.1)


def qualifies(row: dict[str, float], shipped: dict[str, float]) -> bool:
    """The README's rule: (a) +0.5 at base QP 22, sum at most 2 behind; (b) sum 3 ahead, at most 0.3 lower there."""
    top, ahead = row["qp22"] - shipped["qp22"], shipped["sum"] - row["sum"]
    return (top >= 0.5 and ahead >= -2.0) or (ahead >= 3.0 and top >= -0.3)


def main(path: str) -> None:
    """Prints every combination's figures, then the candidate the rule picks (or none)."""
    with open(path, "rb") as f:
        pictures: list[dict[str, Any]] = pickle.load(f)
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    scores: dict[tuple[str, int, int, float], float] = {}

    def score(p: dict[str, Any], q: int, s: int, c: float) -> float:
        key = (p["name"], q, s, c)
        if key not in scores:
            scores[key] = picture_score(p["codings"][("policy", q, s)][2][c], 0.0)
        return scores[key]

    rows: dict[tuple[float, float], dict[str, float]] = {}
    print(f"{len(pictures)} pictures; A1 bpp {' '.join(f'{x:.3f}' for x in a1[0].rates)}")
    print(f"A1 mask mAP50-95 {' '.join(f'{x:.1f}' for x in a1[0].quality)}")
    for c in CONFS:
        for trade in TRADES:

            def choose(p: dict[str, Any], q: int, c: float = c, t: float = trade) -> tuple[str, int, int]:
                w = t * 2 ** ((q - 22) / 6)
                best = max(
                    SHIFTS, key=lambda s: score(p, q, s, c) - w * p["codings"][("policy", q, s)][0] / p["pixels"]
                )
                return ("policy", q, best)

            mean, objects = curves(pictures, choose)
            pchip = {"mean": bd_rate(a1[0], mean).pchip, "objects": bd_rate(a1[1], objects).pchip}
            row = {k: math.nan if v is None else v for k, v in pchip.items()}  # None: not comparable
            row |= {"sum": row["mean"] + row["objects"], "qp22": mean.quality[QPS.index(22)]}
            rows[(c, trade)] = row
            print(
                f"c {c:<4g} trade {trade:<4g} {row['mean']:+6.1f} {row['objects']:+6.1f} sum {row['sum']:+7.1f} "
                f"QP22 {row['qp22']:.2f}  bpp {' '.join(f'{x:.3f}' for x in mean.rates)}  "
                f"mAP {' '.join(f'{x:.1f}' for x in mean.quality)}"
            )
    shipped = rows[SHIPPED]
    passing = [k for k, row in rows.items() if k != SHIPPED and qualifies(row, shipped)]
    if not passing:
        print("rule: no combination qualifies against the shipped one; the probe stops")
        return
    best = min(passing, key=lambda k: rows[k]["sum"])
    print(f"rule: qualifying {passing}; candidate c {best[0]:g}, trade {best[1]:g}")


if __name__ == "__main__":
    main(sys.argv[1])

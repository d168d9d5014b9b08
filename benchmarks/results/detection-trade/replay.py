"""Replays the trade rule (``semrl.agent.answer.trade_answer``) on ``collect.py``'s codings, for a grid of trades.

Per base QP each picture keeps the shift of most ``score - w(q) * bpp`` (``w(q) = trade *
2 ** ((q - 22) / doubling)``), its score its mAP50-95 against the source's objects; the set's
mAP50-95 against the labels at each base QP then gives the curve, and BD-rate (pchip) is
against A1 on the same pictures, on the class mean and on ``objects``::

    python benchmarks/results/detection-trade/replay.py CODINGS.pkl [TUNE]   # TUNE: first N pictures, the rest apart
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any

from semrl.bench.bdrate import Curve, bd_rate
from semrl.fidelity.detection import average_precision

QPS = (22, 27, 32, 37, 42, 47, 51)
SHIFTS = (-6, -3, 0, 3, 6, 9)
Chooser = Callable[[dict[str, Any], int], tuple[str, int, int]]


def curves(pictures: Sequence[dict[str, Any]], choose: Chooser) -> tuple[Curve, Curve]:
    """The set's curves (class mean, ``objects``) with each picture's coding at each base QP chosen by ``choose``."""
    rates, mean, objects = [], [], []
    for q in QPS:
        bits = pixels = 0
        records = []
        for p in pictures:
            b, labelled, _ = p["codings"][choose(p, q)]
            bits, pixels = bits + b, pixels + p["pixels"]
            records.append(labelled)
        s = average_precision(records)
        rates.append(bits / pixels)
        mean.append(100 * s.map50_95)
        objects.append(100 * s.map50_95_objects)
    return Curve(tuple(rates), tuple(mean)), Curve(tuple(rates), tuple(objects))


def picture_score(matches: Any, finds_lost: float) -> float:
    """A coding's mAP50-95 against the source's objects; without any, 1 less ``finds_lost`` per find (at most 5)."""
    if len(matches.target_cls):
        return float(average_precision([matches]).map50_95)
    return 1.0 - finds_lost * min(5, int((matches.conf >= 0.25).sum()))


def _shifted(shift: int) -> Chooser:
    return lambda p, q: ("policy", q, shift)


def _row(values: Sequence[float], digits: int) -> str:
    return " ".join(f"{x:.{digits}f}" for x in values)


def replay(pictures: Sequence[dict[str, Any]], tag: str) -> None:
    """Prints BD-rate against A1 for each shift alone and each trade of the grid."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    rows = {f"shift {s:+d}": curves(pictures, _shifted(s)) for s in SHIFTS}
    scores: dict[tuple[str, int, int, float], float] = {}

    def score(p: dict[str, Any], q: int, s: int, finds_lost: float) -> float:
        key = (p["name"], q, s, finds_lost)
        if key not in scores:
            scores[key] = picture_score(p["codings"][("policy", q, s)][2], finds_lost)
        return scores[key]

    for finds_lost in (0.0, 0.2):
        for doubling in (3.0, 6.0, float("inf")):
            for trade in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6):

                def choose(p: dict[str, Any], q: int, f: float = finds_lost, d: float = doubling,
                           t: float = trade) -> tuple[str, int, int]:  # fmt: skip
                    w = t * 2 ** ((q - 22) / d)
                    best = max(
                        SHIFTS, key=lambda s: score(p, q, s, f) - w * p["codings"][("policy", q, s)][0] / p["pixels"]
                    )
                    return ("policy", q, best)

                rows[f"lost {finds_lost:g} doubling {doubling:g} trade {trade:g}"] = curves(pictures, choose)
    print(
        f"{tag} A1: bpp {' '.join(f'{x:.3f}' for x in a1[0].rates)}  mAP {' '.join(f'{x:.1f}' for x in a1[0].quality)}"
    )
    for name, (mean, objects) in rows.items():
        print(
            f"{tag} {name:38s} {bd_rate(a1[0], mean).pchip:+6.1f} {bd_rate(a1[1], objects).pchip:+6.1f}  "
            f"bpp {_row(mean.rates, 3)}  mAP {_row(mean.quality, 1)}"
        )


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        pictures = pickle.load(f)
    if len(sys.argv) > 2:
        n = int(sys.argv[2])
        replay(pictures[:n], "tune")
        replay(pictures[n:], "apart")
    else:
        replay(pictures, "all")

"""Replays the trade with more whole-map shifts (``collect.py --shifts -12,-9,12``'s codings), and other limits.

For the shift sets -6..+9 (shipped), with -9, with -9 and -12, with +12, and all nine, ``w``
doubling every 6 or 8 QP and ``trade`` 0.1, 0.15 and 0.2; the shipped set with a floor on each
trial's score (0.8, 0.9, 0.95 of the best trial's); and the map alone at base QP 22 with the trade
from base QP 27 on: BD-rate (pchip) against A1 on the class
mean and ``objects``, their sum and base QP 22 against A1 (``replay_background.print_rule``)::

    python benchmarks/results/detection-trade-background/replay_shifts.py CODINGS.pkl MORE.pkl
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
from replay import Chooser, curves, picture_score
from replay_background import merged, print_rule, trade

SETS = {
    "-6..+9": (-6, -3, 0, 3, 6, 9),
    "-9..+9": (-9, -6, -3, 0, 3, 6, 9),
    "-12..+9": (-12, -9, -6, -3, 0, 3, 6, 9),
    "-6..+12": (-6, -3, 0, 3, 6, 9, 12),
    "-12..+12": (-12, -9, -6, -3, 0, 3, 6, 9, 12),
}


def traded(shifts: Sequence[int], weight: float, doubling: float) -> Chooser:
    """The trade over ``shifts`` at ``weight`` (base QP 22), doubling every ``doubling`` QP."""
    return lambda p, q: trade(p, q, shifts, weight, doubling)


def floored(floor: float, weight: float) -> Chooser:
    """The shipped trade (-6..+9, doubling every 6 QP) among the trials scoring ``floor`` of the best or more."""
    shifts = SETS["-6..+9"]

    def choose(p: dict[str, Any], q: int) -> tuple[str, int, int]:
        scores = {s: picture_score(p["codings"][("policy", q, s)][2], 0.0) for s in shifts}
        kept = [s for s in shifts if scores[s] >= floor * max(scores.values())]
        w = weight * 2 ** ((q - 22) / 6)
        return ("policy", q, max(kept, key=lambda s: scores[s] - w * p["codings"][("policy", q, s)][0] / p["pixels"]))

    return choose


def _from_27(p: dict[str, Any], q: int) -> tuple[str, int, int]:
    return ("policy", q, 0) if q < 27 else trade(p, q)


def main(argv: list[str]) -> None:
    """Merges the two files' codings (pictures in the same order) and prints each rule's figures."""
    pictures = merged(Path(argv[0]), Path(argv[1]), "policy")
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    for (name, shifts), doubling, weight in itertools.product(SETS.items(), (6.0, 8.0), (0.1, 0.15, 0.2)):
        print_rule(
            f"shifts {name} doubling {doubling:g} trade {weight:g}", pictures, traded(shifts, weight, doubling), a1
        )
    for floor, weight in itertools.product((0.8, 0.9, 0.95), (0.1, 0.2, 0.4, 0.8)):
        print_rule(f"floor {floor:g} trade {weight:g}", pictures, floored(floor, weight), a1)
    print_rule("the map alone at base QP 22, the trade from 27", pictures, _from_27, a1)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Replays the trade with its weight at base QP 22 lowered (``collect.py`` and ``collect_roi.py``'s codings).

Per base QP each picture keeps the trial of most ``score - w * bpp`` among the learned map's and
the ROI maps' shifts (``w = 0.1 * 2 ** ((q - 22) / 6)``, at base QP 22 times ``f``; ties to the
fewer bits); BD-rate (pchip) is against A1 on the same pictures, on the class mean and on
``objects`` (``print_rule``'s line: then the sum and base QP 22 against A1); the last rows add A1's coding at
the base QP as one more trial::

    python benchmarks/results/detection-trade-top/replay_top.py CODINGS.pkl ROI.pkl [FIRST:LAST]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade-background"))
from replay import Chooser, curves
from replay_background import Key, merged, print_rule, trade, window

TRADE = 0.1
FACTORS = (1.0, 0.5, 0.25, 0.0)
UNIONS = {"union 8": ("policy", "roi8"), "union 4+8+12": ("policy", "roi4", "roi8", "roi12")}


def topped(kinds: Sequence[str], factor: float, uniform: bool = False) -> Chooser:
    """The trade over ``kinds`` at :data:`TRADE`, its weight at base QP 22 times ``factor``.

    ``uniform``: A1's coding at the base QP is one more trial.
    """

    def choose(p: dict[str, Any], q: int) -> Key:
        extra = [("A1", q, 0)] if uniform else []
        return trade(p, q, weight=TRADE * (factor if q == 22 else 1.0), kinds=kinds, extra=extra)

    return choose


def replay(pictures: Sequence[dict[str, Any]]) -> None:
    """Prints each candidate's line (``print_rule``)."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    for name, kinds in UNIONS.items():
        for f in FACTORS:
            print_rule(f"{name}, f {f:g}", pictures, topped(kinds, f), a1)
    for f in FACTORS:
        print_rule(f"union 4+8+12 and uniform, f {f:g}", pictures, topped(UNIONS["union 4+8+12"], f, True), a1)


if __name__ == "__main__":
    replay(window(merged(Path(sys.argv[1]), Path(sys.argv[2])), sys.argv[1:]))

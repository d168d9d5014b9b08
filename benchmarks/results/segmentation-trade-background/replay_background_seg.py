"""Replays the segmentation trade's background stage (``collect_background.py --task segmentation``'s codings).

Per base QP each picture keeps the shipped trade's shift of its map (-6..+9, ``trade`` 0.1,
:func:`semrl.agent.answer.trade_weight`), then, from the candidate's first base QP on, the best
of that trial and its background +3, +6 and +9 QP coarser by the same weight (ties to the fewer
bits), as :func:`semrl.agent.answer.trade_answer` runs it. BD-rate (pchip) is against A1 on the
same pictures, on the class mean and on ``objects``, then their sum and base QP 22 against A1
(``print_rule``'s line)::

    python benchmarks/results/segmentation-trade-background/replay_background_seg.py CODINGS.pkl BG.pkl [FIRST:LAST]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade-background"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segmentation-trade-top"))
from replay import Chooser, curves
from replay_background import Key, merged, print_rule, window, worth
from replay_top_seg import topped

from semrl.agent.answer import trade_weight
from semrl.agent.config import DEFAULT_ANSWER_SEARCH

BACKGROUND = (3, 6, 9)
FIRSTS = {"the trade (shipped)": 99, "then the background from base QP 27": 27, "then the background from 22": 22}


def staged(first: int) -> Chooser:
    """The shipped trade, then its background stage from base QP ``first`` on."""
    search, whole = DEFAULT_ANSWER_SEARCH["segmentation"], topped(1.0)

    def choose(p: dict[str, Any], q: int) -> Key:
        w = trade_weight(search, q)
        kept = whole(p, q)
        if q < first:
            return kept
        return max([kept, *(("background", q, s) for s in BACKGROUND)], key=lambda key: worth(p, key, w))

    return choose


def replay(pictures: Sequence[dict[str, Any]]) -> None:
    """Prints each rule's line (``print_rule``)."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    for name, first in FIRSTS.items():
        print_rule(name, pictures, staged(first), a1)


if __name__ == "__main__":
    replay(window(merged(Path(sys.argv[1]), Path(sys.argv[2])), sys.argv[1:]))

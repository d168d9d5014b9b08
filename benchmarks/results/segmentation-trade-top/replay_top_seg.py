"""Replays the segmentation trade with its weight at the top of the curve lowered (``collect.py``'s codings).

Per base QP each picture keeps the shift of the shipped map (-6..+9) of most ``score - w * bpp``,
``w`` the shipped trade's (:func:`semrl.agent.answer.trade_weight`, ``trade`` 0.1) with ``top``
``f`` (ties to the fewer bits); BD-rate (pchip) is against A1 on the same pictures, on the class
mean and on ``objects``, then their sum and base QP 22 against A1 (``print_rule``'s line)::

    python benchmarks/results/segmentation-trade-top/replay_top_seg.py CODINGS.pkl [FIRST:LAST]
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade-background"))
from replay import Chooser, curves
from replay_background import SHIFTS, Key, print_rule, worth

from semrl.agent.answer import trade_weight
from semrl.agent.config import DEFAULT_ANSWER_SEARCH

FACTORS = (1.0, 0.5, 0.25, 0.0)


def topped(factor: float) -> Chooser:
    """The shipped segmentation trade with ``top`` = ``factor``."""
    search = dataclasses.replace(DEFAULT_ANSWER_SEARCH["segmentation"], top=factor)

    def choose(p: dict[str, Any], q: int) -> Key:
        w = trade_weight(search, q)
        return max((("policy", q, s) for s in SHIFTS), key=lambda key: worth(p, key, w))

    return choose


def replay(pictures: Sequence[dict[str, Any]]) -> None:
    """Prints each candidate's line (``print_rule``)."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    for f in FACTORS:
        print_rule(f"top {f:g}", pictures, topped(f), a1)


if __name__ == "__main__":
    pictures = pickle.loads(Path(sys.argv[1]).read_bytes())
    first, last = (int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else f"0:{len(pictures)}").split(":"))
    replay(pictures[first:last])

"""Replays the trade's second stage (``collect_background.py``'s codings) for a grid of settings.

Per base QP each picture keeps the trade's shift (``trade`` 0.2, doubling every 6 QP), then the
best of it and its background shifted coarser by the same rule at a second-stage weight (0.1,
0.2 or 0.4 at base QP 22, doubling every 6 QP), from base QP 22 or 27 on. BD-rate (pchip) is
against A1 on the same pictures, on the class mean and on ``objects``::

    python benchmarks/results/detection-trade-background/replay_background.py CODINGS.pkl BACKGROUND.pkl [FIRST:LAST]
"""

from __future__ import annotations

import itertools
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
from replay import Chooser, curves, picture_score

from semrl.bench.bdrate import Curve, bd_rate

SHIFTS = (-6, -3, 0, 3, 6, 9)
Key = tuple[str, int, int]


def worth(p: dict[str, Any], key: Key, w: float) -> tuple[float, int]:
    bits, _, matches = p["codings"][key]
    return picture_score(matches, 0.0) - w * bits / p["pixels"], -bits


def trade(
    p: dict[str, Any], q: int, shifts: Sequence[int] = SHIFTS, weight: float = 0.2, doubling: float = 6.0,
    kinds: Sequence[str] = ("policy",), extra: Sequence[Key] = (),
) -> Key:  # fmt: skip
    """The trade's choice among the ``shifts`` of each map in ``kinds`` (default: the shipped trade's), then ``extra``.

    Ties go to the fewer bits, as in ``semrl.agent.answer.trade_answer``.
    """
    w = weight * 2 ** ((q - 22) / doubling)
    return max([*((k, q, s) for k in kinds for s in shifts), *extra], key=lambda key: worth(p, key, w))


def _always(shift: int) -> Chooser:
    return lambda p, q: ("background", q, shift)


def second_stage(weight: float, shifts: Sequence[int], first: int) -> Chooser:
    """The trade, then its background shifted by ``shifts`` at ``weight``, from base QP ``first`` on."""

    def choose(p: dict[str, Any], q: int) -> Key:
        kept = trade(p, q)
        if q < first:
            return kept
        w = weight * 2 ** ((q - 22) / 6)
        return max([kept, *(("background", q, s) for s in shifts)], key=lambda k: worth(p, k, w))

    return choose


def replay(pictures: Sequence[dict[str, Any]]) -> None:
    """Prints BD-rate against A1, the sum, base QP 22 against A1 and each curve, per rule."""
    a1 = curves(pictures, lambda p, q: ("A1", q, 0))
    print("A1 bpp", " ".join(f"{x:.3f}" for x in a1[0].rates), "mAP", " ".join(f"{x:.1f}" for x in a1[0].quality))
    rules: dict[str, Chooser] = {"map alone": lambda p, q: ("policy", q, 0), "the trade": trade}
    for s in (3, 6, 9, 12, 18):
        rules[f"the trade, background +{s} always"] = _always(s)
    for first, weight, shifts in itertools.product((22, 27), (0.1, 0.2, 0.4), ((3, 6, 9), (3, 6, 9, 12), (6, 12, 18))):
        rules[f"from {first}, weight {weight:g}, background {shifts}"] = second_stage(weight, shifts, first)
    for name, choose in rules.items():
        print_rule(name, pictures, choose, a1)


def print_rule(name: str, pictures: Sequence[dict[str, Any]], choose: Chooser, a1: tuple[Curve, Curve]) -> None:
    """One rule's line: BD-rate against A1 (class mean, ``objects``), their sum, base QP 22 against A1, the curve."""
    mean, objects = curves(pictures, choose)
    a, b = bd_rate(a1[0], mean).pchip, bd_rate(a1[1], objects).pchip
    if a is None or b is None:
        print(f"{name:48s} not comparable with A1")
        return
    print(
        f"{name:48s} {a:+6.1f} {b:+6.1f} sum {a + b:+6.1f} QP22 {mean.quality[0] - a1[0].quality[0]:+5.1f}  "
        f"bpp {' '.join(f'{x:.3f}' for x in mean.rates)}  mAP {' '.join(f'{x:.1f}' for x in mean.quality)}"
    )


def merged(codings: Path, more: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The pictures of ``codings`` with the codings of ``more`` added (only those of ``kind`` if given).

    Raises:
        SystemExit: The two files do not hold the same pictures in the same order.
    """
    pictures: list[dict[str, Any]] = pickle.loads(codings.read_bytes())
    for p, m in zip(pictures, pickle.loads(more.read_bytes()), strict=True):
        if p["name"] != m["name"]:
            raise SystemExit(f"the two files disagree: {p['name']} against {m['name']}")
        p["codings"].update({k: v for k, v in m["codings"].items() if kind is None or k[0] == kind})
    return pictures


def window(pictures: list[dict[str, Any]], argv: list[str]) -> list[dict[str, Any]]:
    """The pictures ``FIRST:LAST`` of an optional third argument names (default all)."""
    first, last = (int(x) for x in (argv[2] if len(argv) > 2 else f"0:{len(pictures)}").split(":"))
    return pictures[first:last]


def main(argv: list[str]) -> None:
    """Reads the two files (pictures in the same order) and replays the window asked for (default all)."""
    replay(window(merged(Path(argv[0]), Path(argv[1])), argv))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The rule of this folder's README applied to ``before/`` and ``after/``: prints the checks, the verdict and the table.

Run: python benchmarks/results/rate-control-heldout/judge_heldout.py [FOLDER]

FOLDER (default this one) is a folder whose README states the same rule (``../rate-control-ctu-intra``).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SHORT = ("short-2", "short-6", "short-10")
LONG = ("ldp", "ra")


def rows(side: str, names: tuple[str, ...], root: Path = ROOT) -> list[dict[str, Any]]:
    """The rows of one side's runs, in order."""
    return [row for name in names for row in json.loads((root / side / f"{name}.json").read_text())["rows"]]


def errors(table: list[dict[str, Any]]) -> list[float]:
    """Each case's |rate error| in %."""
    return [abs(row["rate_error_percent"]) for row in table]


def main(root: Path = ROOT) -> None:
    """Print the checks, the verdict and the per-case table of the runs in ``root``."""
    short_b, short_a = rows("before", SHORT, root), rows("after", SHORT, root)
    long_b, long_a = rows("before", LONG, root), rows("after", LONG, root)
    for b, a in zip(short_b + long_b, short_a + long_a, strict=True):
        assert (b["clip"], b["target_kbps"], b["frames"]) == (a["clip"], a["target_kbps"], a["frames"])
    median = statistics.median
    checks = [
        (f"median abs. error, {len(short_b)} short cases, lower", median(errors(short_b)), median(errors(short_a)),
         -1e-9),
        (f"median abs. error, {len(long_b)} long cases, at most +0.5", median(errors(long_b)),
         median(errors(long_a)), 0.5),
        (f"largest abs. error, {len(long_b)} long cases, at most +3", max(errors(long_b)), max(errors(long_a)), 3.0),
        (f"largest first-second window, {len(long_b)} long, at most +0.1",
         max(r["first_1s_window_ratio"] for r in long_b), max(r["first_1s_window_ratio"] for r in long_a), 0.1),
    ]  # fmt: skip
    results = [(name, b, a, a <= b + slack) for name, b, a, slack in checks]
    objects = (median(r["objects_map50_95"] for r in long_b), median(r["objects_map50_95"] for r in long_a))
    results.append(
        (f"median objects mAP50-95, {len(long_b)} long, at most 0.5 lower", *objects, objects[1] >= objects[0] - 0.5)
    )
    print("| check | before | after | holds |")
    print("|---|---|---|---|")
    for name, b, a, ok in results:
        print(f"| {name} | {b:.2f} | {a:.2f} | {'yes' if ok else 'NO'} |")
    print("ADOPT" if all(ok for *_, ok in results) else "REFUSE")
    print()
    print("| frames | clip | target | before: kbit/s (error), first second, objects | after |")
    print("|---|---|---|---|---|")
    for b, a in zip(short_b + long_b, short_a + long_a, strict=True):
        print(f"| {b['frames']} | `{Path(b['clip']).stem}` | {b['target_kbps']:g} | {_cell(b)} | {_cell(a)} |")


def _cell(row: dict[str, Any]) -> str:
    return (
        f"{row['kbps']:.1f} ({row['rate_error_percent']:+.1f} %), {row['first_1s_window_ratio']:.2f}x, "
        f"{row['objects_map50_95']:.1f}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)

"""The adopted controller's ``--bitrate`` runs against the same policy at a constant base QP at the same rate.

    python against_qp.py videos4.json ../rate-control-vs-qp/sweep.json   # prints a Markdown table

The constant-QP value is read off the policy's constant-QP points in the sweep (base QP 22-51; the
``--qp`` path has not changed since it ran) at the run's achieved rate, linearly in log rate
between the two neighbouring points, as ``../rate-control-vs-qp`` reads them.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any


def at_rate(points: list[dict[str, Any]], kbps: float, key: str) -> float | None:
    """``key`` at ``kbps`` on the constant-QP points (None outside them)."""
    ordered = sorted(points, key=lambda p: p["kbps"])
    for low, high in itertools.pairwise(ordered):
        if low["kbps"] <= kbps <= high["kbps"]:
            t = (math.log(kbps) - math.log(low["kbps"])) / (math.log(high["kbps"]) - math.log(low["kbps"]))
            return float(low[key] + t * (high[key] - low[key]))
    return None


def main(runs: str, sweep: str) -> None:
    """Print one row per ``--bitrate`` run."""
    constant = [r for r in json.loads(Path(sweep).read_text())["rows"] if r["method"] == "semrl-qp"]
    print("| clip | target | `--bitrate`: kbit/s, class mean / `objects` | constant base QP at that rate |")
    print("|---|---|---|---|")
    for run in json.loads(Path(runs).read_text())["rows"]:
        if run["method"] != "semrl":
            continue
        points = [p for p in constant if p["clip"] == run["clip"]]
        read = [at_rate(points, run["kbps"], key) for key in ("map50_95", "objects_map50_95")]
        there = "outside the points" if None in read else f"{read[0]:.1f} / {read[1]:.1f}"
        mine = f"{run['kbps']:.1f}: {run['map50_95']:.1f} / {run['objects_map50_95']:.1f}"
        print(f"| {run['clip'].split('_')[0]} | {run['target_kbps']:g} | {mine} | {there} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""The rule for ``auto`` under ``--bitrate --gop ra``: ``python judge_bitrate.py RUN.json``.

``RUN.json`` is ``benchmarks/rate_control.py --gop ra --policies auto,x265 --no-x265``'s output: per clip
and target rate, the default (``semrl``, the learned video policy with semrl's rate controller) and
``semrl[x265]`` (x265's own ABR with its AQ and cuTree). Prints both per case, the rule's figures and
its verdict (see the README beside this file).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

DEFAULT, CANDIDATE = "semrl", "semrl[x265]"


def verdict(rows: list[dict[str, Any]]) -> tuple[bool, dict[str, float]]:
    """Whether the candidate passes the rule, and the figures the rule reads."""
    runs: dict[str, dict[tuple[str, float], dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row["method"], {})[row["clip"], row["target_kbps"]] = row
    ours, theirs = runs[DEFAULT], runs[CANDIDATE]
    cases = sorted(ours.keys() & theirs.keys())
    objects = [theirs[c]["objects_map50_95"] - ours[c]["objects_map50_95"] for c in cases]
    mean = [theirs[c]["map50_95"] - ours[c]["map50_95"] for c in cases]
    figures = {
        "cases": len(cases),
        "objects_higher": sum(d > 0 for d in objects),
        "objects_median_gain": statistics.median(objects),
        "class_mean_median_gain": statistics.median(mean),
        "default_median_abs_rate_error": statistics.median(abs(ours[c]["rate_error_percent"]) for c in cases),
        "x265_median_abs_rate_error": statistics.median(abs(theirs[c]["rate_error_percent"]) for c in cases),
        "default_largest_window": max(ours[c]["max_1s_window_ratio"] for c in cases),
        "x265_largest_window": max(theirs[c]["max_1s_window_ratio"] for c in cases),
    }
    passed = (
        figures["objects_higher"] >= 2 * len(cases) / 3
        and figures["objects_median_gain"] >= 1.0
        and figures["class_mean_median_gain"] >= 0.0
        and figures["x265_median_abs_rate_error"] <= figures["default_median_abs_rate_error"] + 3.0
        and figures["x265_largest_window"] <= max(2.5, figures["default_largest_window"])
    )
    return passed, figures


def main(path: str) -> None:
    """Print the cases, the figures and the verdict."""
    rows = json.loads(Path(path).read_text())["rows"]
    print("| clip | kbit/s | method | kbit/s coded | rate error % | 1-s window | class mean | objects |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["clip"], r["target_kbps"], r["method"])):
        print(f"| {r['clip']} | {r['target_kbps']:g} | {r['method']} | {r['kbps']:.1f} "
              f"| {r['rate_error_percent']:+.1f} | {r['max_1s_window_ratio']:.2f} | {r['map50_95']:.1f} "
              f"| {r['objects_map50_95']:.1f} |")  # fmt: skip
    passed, figures = verdict(rows)
    for name, value in figures.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
    print("passed" if passed else "refused")


if __name__ == "__main__":
    main(sys.argv[1])

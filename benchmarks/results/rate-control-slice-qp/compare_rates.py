"""Per case, semrl's ``--bitrate`` rows of two ``rate_control.py`` runs (before, after) and x265's, with the medians.

Usage: ``python compare_rates.py BEFORE.json[,BEFORE2.json] AFTER.json[,AFTER2.json]`` (prints a Markdown table, then
the median changes over the cases that reached their target before, within 5 %).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

Case = tuple[str, float]


def _rows(files: str) -> list[dict[str, Any]]:
    return [row for f in files.split(",") for row in json.loads(Path(f).read_text())["rows"]]


def main(before_files: str, after_files: str) -> None:
    """Print the table and the medians."""
    before: dict[Case, dict[str, Any]] = {}
    after: dict[Case, dict[str, Any]] = {}
    x265: dict[Case, dict[str, Any]] = {}
    for r in _rows(before_files):
        if r["method"] == "semrl":
            before[r["clip"], r["target_kbps"]] = r
    for r in _rows(after_files):
        (after if r["method"] == "semrl" else x265)[r["clip"], r["target_kbps"]] = r
    changes: dict[str, list[float]] = {"map50_95": [], "objects_map50_95": [], "psnr_y": []}
    print("| clip | kbit/s | rate error before / after | window before / after | class mean before / after (x265) "
          "| objects before / after (x265) | PSNR-Y before / after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for case, b in before.items():
        a, x = after.get(case), x265.get(case, {})
        if a is None:
            continue
        reached, nan = abs(b["rate_error_percent"]) <= 5, float("nan")
        target = f"{case[1]:g}" + ("" if reached else ", out of reach before")
        cells = [
            case[0].split("_")[0], target,
            f"{b['rate_error_percent']:+.1f} / {a['rate_error_percent']:+.1f}",
            f"{b['max_1s_window_ratio']:.2f} / {a['max_1s_window_ratio']:.2f}",
            f"{b['map50_95']:.1f} / {a['map50_95']:.1f} ({x.get('map50_95', nan):.1f})",
            f"{b['objects_map50_95']:.1f} / {a['objects_map50_95']:.1f} ({x.get('objects_map50_95', nan):.1f})",
            f"{b['psnr_y']:.2f} / {a['psnr_y']:.2f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
        if reached:
            for key, values in changes.items():
                values.append(a[key] - b[key])
    medians = {key: round(statistics.median(values), 2) for key, values in changes.items()}
    gains = sum(d > 0 for d in changes["objects_map50_95"])
    print(f"{len(changes['psnr_y'])} cases reached before; median changes {medians}; objects gains in {gains}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""The rule of README.md here: ``video-reference`` against the learned video policy under ``--bitrate``, case by case.

Run as ``python benchmarks/results/rate-control-default-ldp/judge.py a.json b.json``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

LEARNED, REFERENCE = "semrl", "semrl[video-reference]"


def main(argv: list[str]) -> int:
    """Print each paired case and each clause's verdict; returns 0 if every clause holds, 1 otherwise."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (set, learned row, reference row)
    for name, path in zip("ab", argv, strict=True):
        rows = json.loads(Path(path).read_text())["rows"]
        by_case = {(r["clip"], r["target_kbps"], r["method"]): r for r in rows}
        for (clip, kbps, method), learned in sorted(by_case.items()):
            if method == LEARNED:
                pairs.append((name, learned, by_case[(clip, kbps, REFERENCE)]))
    print("| set | clip | kbit/s | rate error % | window | PSNR step dB | class mean | objects |")
    print("|---|---|---|---|---|---|---|---|")
    for name, lo, re in pairs:
        print(f"| {name} | {lo['clip']} | {lo['target_kbps']:g} | {lo['rate_error_percent']:+.1f} / "
              f"{re['rate_error_percent']:+.1f} | {lo['max_1s_window_ratio']:.2f} / {re['max_1s_window_ratio']:.2f} | "
              f"{lo['psnr_step_db']:.2f} / {re['psnr_step_db']:.2f} | {lo['map50_95']:.1f} / {re['map50_95']:.1f} | "
              f"{lo['objects_map50_95']:.1f} / {re['objects_map50_95']:.1f} |")  # fmt: skip
    print("(each cell: learned policy / video-reference)\n")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    sides = {"l": [p[1] for p in pairs], "r": [p[2] for p in pairs]}
    err = {k: [abs(float(r["rate_error_percent"])) for r in rows] for k, rows in sides.items()}
    win = {k: [float(r["max_1s_window_ratio"]) for r in rows] for k, rows in sides.items()}
    objects = [float(re["objects_map50_95"] - lo["objects_map50_95"]) for _, lo, re in pairs]
    task = [float(re["map50_95"] - lo["map50_95"]) for _, lo, re in pairs]
    objects_a = [d for d, p in zip(objects, pairs, strict=True) if p[0] == "a"]
    steps_b = {
        k: [float(r["psnr_step_db"]) for r, p in zip(rows, pairs, strict=True) if p[0] == "b"]
        for k, rows in sides.items()
    }
    clauses = {
        "1 rate": med(err["r"]) <= med(err["l"]) + 0.5 and max(err["r"]) <= max(12.0, max(err["l"])),
        "2 window": med(win["r"]) <= med(win["l"]) + 0.05 and max(win["r"]) <= max(1.5, max(win["l"])),
        "3 accuracy": med(objects) >= -0.25 and med(task) >= -0.5 and med(objects_a) >= -0.25 and min(objects_a) >= -3,
        "4 purpose": med(steps_b["r"]) <= med(steps_b["l"]) - 1.0,
    }
    for label, values in (("|rate error|", err), ("window", win)):
        print(f"median {label}: {med(values['l']):.2f} / {med(values['r']):.2f}; "
              f"largest {max(values['l']):.2f} / {max(values['r']):.2f}")  # fmt: skip
    print(f"median change: objects {med(objects):+.2f}, class mean {med(task):+.2f}; "
          f"set a: objects median {med(objects_a):+.2f}, worst {min(objects_a):+.2f}")  # fmt: skip
    print(f"set b, median largest PSNR step: {med(steps_b['l']):.2f} / {med(steps_b['r']):.2f} dB")
    for clause, holds in clauses.items():
        print(f"clause {clause}: {'holds' if holds else 'FAILS'}")
    adopted = all(clauses.values())
    print("video-reference becomes --bitrate's default under low delay" if adopted else "nothing changes")
    return 0 if adopted else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Before against after, from ``rate_control.py`` outputs: rate error, largest one-second window, accuracy.

    python first_frame_gate.py BEFORE.json[,BEFORE2.json...] AFTER.json[,AFTER2.json...] [--heads NAME,NAME]

Prints a Markdown table, case by case, the medians, and the clauses of this folder's gate (README).
``--heads`` names the clips (file name prefixes) of the gate's second set, whose median window must fall
by 0.2x; with ``--heads-largest X`` (``../rate-control-first-frame-ldp``), whose largest must be at most X;
with ``--heads-at KBPS`` (``../rate-control-first-frame-ldp2``), whose median largest window at that
target must fall by at least 0.5x.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def rows(paths: str) -> list[dict[str, Any]]:
    """The rows of every output in the comma-separated ``paths``, each with its GOP."""
    out = []
    for path in paths.split(","):
        data = json.loads(Path(path).read_text())
        gop = "ra" if ", RA," in data["description"] else "ldp"
        out += [{**row, "gop": gop} for row in data["rows"]]
    return out


def main() -> None:
    """Print the table and the gate."""
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--heads", default="", help="clip name prefixes of the set whose windows must fall")
    parser.add_argument("--heads-largest", type=float, help="clause 4: that set's largest window at most this")
    parser.add_argument("--heads-at", type=float, help="clause 4: that set's median window at this target falls 0.5x")
    args = parser.parse_args()
    keyed = {(r["gop"], r["clip"], r["target_kbps"], r["method"]): r for r in rows(args.before)}
    pairs = [(keyed[(r["gop"], r["clip"], r["target_kbps"], r["method"])], r) for r in rows(args.after)]
    print("| GOP | clip | kbit/s | rate error % before / after | 1-s window before / after "
          "| class mean before / after | objects before / after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for old, new in pairs:
        print(f"| {new['gop']} | {new['clip']} | {new['target_kbps']:g} | {old['rate_error_percent']:+.1f} / "
              f"{new['rate_error_percent']:+.1f} | {old['max_1s_window_ratio']:.2f} / "
              f"{new['max_1s_window_ratio']:.2f} | {old['map50_95']:.1f} / {new['map50_95']:.1f} | "
              f"{old['objects_map50_95']:.1f} / {new['objects_map50_95']:.1f} |")  # fmt: skip
    med = statistics.median
    err = [[abs(r["rate_error_percent"]) for r in side] for side in zip(*pairs, strict=True)]
    win = [[r["max_1s_window_ratio"] for r in side] for side in zip(*pairs, strict=True)]
    d_obj = [new["objects_map50_95"] - old["objects_map50_95"] for old, new in pairs]
    d_cls = [new["map50_95"] - old["map50_95"] for old, new in pairs]
    heads = tuple(h for h in args.heads.split(",") if h)
    d_obj_bench = [d for d, (_, new) in zip(d_obj, pairs, strict=True) if not new["clip"].startswith(heads or ("\0",))]
    sides = list(zip(*pairs, strict=True))
    head_win = [[r["max_1s_window_ratio"] for r in side if r["clip"].startswith(heads)] for side in sides]
    print(f"\ncases: {len(pairs)}")
    print(f"median |rate error|: {med(err[0]):.2f} / {med(err[1]):.2f}; largest {max(err[0]):.2f} / {max(err[1]):.2f}")
    print(f"median window: {med(win[0]):.2f} / {med(win[1]):.2f}; largest {max(win[0]):.2f} / {max(win[1]):.2f}")
    print(f"median change: objects {med(d_obj):+.2f} ({sum(d > 0 for d in d_obj)} of {len(d_obj)} gain), "
          f"class mean {med(d_cls):+.2f}; benchmark clips' worst objects {min(d_obj_bench):+.2f}")  # fmt: skip
    clauses = {
        "1 rate": med(err[1]) <= med(err[0]) + 0.5 and max(err[1]) <= max(12.0, max(err[0])),
        "2 window": med(win[1]) <= med(win[0]) + 0.05 and max(win[1]) <= max(win[0]),
        "3 accuracy": med(d_obj) >= -0.25 and med(d_cls) >= -0.5 and min(d_obj_bench) >= -3.0,
    }
    if heads:
        print(f"talking heads' median window: {med(head_win[0]):.2f} / {med(head_win[1]):.2f}; "
              f"largest {max(head_win[0]):.2f} / {max(head_win[1]):.2f}")  # fmt: skip
        if args.heads_at is not None:
            at = [[r["max_1s_window_ratio"] for r in side if r["clip"].startswith(heads)
                   and r["target_kbps"] == args.heads_at] for side in sides]  # fmt: skip
            print(f"at {args.heads_at:g} kbit/s: median window {med(at[0]):.2f} / {med(at[1]):.2f}")
            clauses["4 purpose"] = med(at[1]) <= med(at[0]) - 0.5
        elif args.heads_largest is not None:
            clauses["4 purpose"] = max(head_win[1]) <= args.heads_largest
        else:
            clauses["4 purpose"] = med(head_win[1]) <= med(head_win[0]) - 0.2
    for name, held in clauses.items():
        print(f"clause {name}: {'holds' if held else 'FAILS'}")
    print("kept" if all(clauses.values()) else "reverted")


if __name__ == "__main__":
    main()

"""The gate's clauses: ``python frozen_gate.py`` (in this folder; the before files are the earlier gates')."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FROZEN_FREE = ("pets2009", "traffic", "bgslibrary_video03", "degirum")


def _semrl(*files: Path) -> dict[tuple[str, float], dict[str, Any]]:
    rows = [row for f in files for row in json.loads(f.read_text())["rows"]]
    return {(r["clip"], r["target_kbps"]): r for r in rows if r["method"] == "semrl"}


def _report(name: str, before: dict[tuple[str, float], Any], after: dict[tuple[str, float], Any], bound: float) -> None:
    cases = sorted(before.keys() & after.keys())
    same = [c for c in cases if c[0].startswith(FROZEN_FREE)]
    keys = ("kbps", "max_1s_window_ratio", "objects_map50_95")
    unchanged = all(abs(before[c][k] - after[c][k]) < 1e-9 for c in same for k in keys)
    print(f"{name}: {len(cases)} cases; clause 0 (frozen-free clips unchanged): {unchanged} ({len(same)} cases)")
    changed = [c for c in cases if c not in same] if same else cases
    for c in changed:
        b, a = before[c], after[c]
        rate = f"rate {b['rate_error_percent']:+6.1f} -> {a['rate_error_percent']:+6.1f} %"
        print(
            f"  {c[0][:28]:28s} {c[1]:5.0f}: {rate}, "
            f"window {b['max_1s_window_ratio']:.2f} -> {a['max_1s_window_ratio']:.2f}, objects "
            f"{b['objects_map50_95']:5.1f} -> {a['objects_map50_95']:5.1f}, class {b['map50_95']:5.1f} -> "
            f"{a['map50_95']:5.1f}, PSNR-Y {b['psnr_y']:.2f} -> {a['psnr_y']:.2f}"
        )
    within = all(abs(after[c]["rate_error_percent"]) <= bound for c in changed)
    change = statistics.median(after[c]["objects_map50_95"] - before[c]["objects_map50_95"] for c in changed)
    print(
        f"  clause 1 (within {bound:g} %): {within}; largest window "
        f"{max(after[c]['max_1s_window_ratio'] for c in changed):.2f}; median objects change {change:+.2f}"
    )


def main() -> None:
    """Print each clause's figures."""
    results = HERE.parent
    slice_qp, ra = results / "rate-control-slice-qp", results / "rate-control-ra"
    _report("LDP", _semrl(slice_qp / "videos4.json", slice_qp / "extra4.json"),
            _semrl(HERE / "ldp-videos.json", HERE / "ldp-extra.json"), 5.0)  # fmt: skip
    _report("RA", _semrl(ra / "videos.json", ra / "extra.json"),
            _semrl(HERE / "ra-videos.json", HERE / "ra-extra.json"), 12.0)  # fmt: skip
    _report("frozen starts", _semrl(HERE / "still-before.json"), _semrl(HERE / "still-after.json"), 5.0)


if __name__ == "__main__":
    main()

"""What choosing, per clip and in hindsight, the best of every coding measured so far would give (issue 13).

Reads every video report under ``benchmarks/results`` that codes frames 0-149 of its clips under low
delay at the default points, with today's scoring (the weights' fingerprint of the newest report) and
no ``--x265``, ``--sure-conf``, ``--qps``, ``--frames`` or ``--start``. For each clip it takes each
coding's BD-rate against A1 (pchip; the per-clip tables of the reports), on the class mean and on
``objects``, then the lowest (fits flagged unstable or not comparable left out). It picks the best of
many noisy figures per clip, so the envelope is optimistic: a bound on what choosing among these
codings per clip could give, not a method.

    python benchmarks/results/video-hindsight/envelope.py   # writes envelope.json beside it
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
FRAMES = {"people_800x450.mp4": 150, "pets2009_s2l1_480x360.mp4": 150, "traffic_640x360.mp4": 150,
          "bgslibrary_video03_320x240.avi": 150, "bgslibrary_video_640x360.avi": 150,
          "degirum_aerial_crossing_pedestrians_bikes_640x640.mp4": 150, "TUD-Campus.mp4": 71}  # fmt: skip
EXCLUDED = ("--start", "--x265", "--sure-conf", "--qps", "--frames", "--gop ra", "--keyint", "--preset")


def reports() -> list[tuple[Path, dict[str, Any]]]:
    """The reports that qualify (see the module docstring), newest scoring only."""
    found = []
    for path in sorted(RESULTS.glob("**/bdrate.json")):
        report = json.loads(path.read_text())
        desc = report.get("description", {})
        command = desc.get("command", "")
        items = report["results"].get("per_item", {})
        if desc.get("task") != "video" or not desc.get("gop", "").startswith("ldp") or not items:
            continue
        if any(option in command for option in EXCLUDED):
            continue
        if not set(items) <= set(FRAMES) or desc.get("frames") != sum(FRAMES[c] for c in items):
            continue
        found.append((path, report))
    newest = max(found, key=lambda pr: pr[1]["description"]["date"])[1]["description"]["weights"]
    return [(p, r) for p, r in found if r["description"]["weights"] == newest]


def main() -> int:
    chosen = reports()
    result: dict[str, dict[str, Any]] = {}
    for quality, table in (("class mean", "per_item"), ("objects", "per_item_objects")):
        per_clip: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for path, report in chosen:
            run = str(path.parent.relative_to(RESULTS))
            for clip, methods in report["results"][table].items():
                for method, bd in methods.items():
                    if bd.get("comparable") and bd.get("pchip") is not None and "unstable" not in bd.get("flags", []):
                        per_clip[clip].append((float(bd["pchip"]), f"{method} ({run})"))
        best = {clip: min(values) for clip, values in per_clip.items()}
        result[quality] = {
            "per_clip_best": {
                clip: {"bd_rate": v, "coding": who, "codings_compared": len(per_clip[clip])}
                for clip, (v, who) in sorted(best.items())
            },
            "mean_of_clip_bests": statistics.mean(v for v, _ in best.values()),
        }
        mean = result[quality]["mean_of_clip_bests"]
        print(f"{quality}: mean over {len(best)} clips of the best per clip {mean:+.1f} %")
        for clip, (v, who) in sorted(best.items()):
            print(f"  {clip:55s} {v:+6.1f}  {who}  (of {len(per_clip[clip])})")
    out = {"reports": [str(p.relative_to(RESULTS)) for p, _ in chosen], "results": result}
    (HERE / "envelope.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(chosen)} reports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

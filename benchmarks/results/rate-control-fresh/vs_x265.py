"""semrl's ``--bitrate`` rows against x265's ABR at the same targets: ``python vs_x265.py RUN.json[,RUN2.json]``.

The files may hold both methods or one each (``rate_control.py`` with ``--no-x265``, or with ``--policies ''``
for x265 alone). Prints a Markdown table per case, then each method's rate error and windows and where semrl
keeps more ``objects`` and class mean than x265.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def main(files: str) -> None:
    """Print the table and the summary."""
    rows = [row for f in files.split(",") for row in json.loads(Path(f).read_text())["rows"]]
    runs: dict[str, dict[tuple[str, float], dict[str, Any]]] = {"semrl": {}, "x265-abr": {}}
    for r in rows:
        runs.setdefault(r["method"], {})[r["clip"], r["target_kbps"]] = r
    ours, x265 = runs["semrl"], runs["x265-abr"]
    cases = sorted(ours.keys() & x265.keys())
    print("| clip | kbit/s | rate error semrl / x265 | window semrl / x265 | class mean semrl / x265 "
          "| objects semrl / x265 | PSNR-Y semrl / x265 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        s, x = ours[case], x265[case]
        cells = [
            Path(case[0]).stem, f"{case[1]:g}",
            f"{s['rate_error_percent']:+.1f} / {x['rate_error_percent']:+.1f}",
            f"{s['max_1s_window_ratio']:.2f} / {x['max_1s_window_ratio']:.2f}",
            f"{s['map50_95']:.1f} / {x['map50_95']:.1f}",
            f"{s['objects_map50_95']:.1f} / {x['objects_map50_95']:.1f}",
            f"{s['psnr_y']:.2f} / {x['psnr_y']:.2f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for name, run in (("semrl", ours), ("x265-abr", x265)):
        errors = [abs(run[c]["rate_error_percent"]) for c in cases]
        windows = [run[c]["max_1s_window_ratio"] for c in cases]
        print(f"{name}: |rate error| median {statistics.median(errors):.1f} %, largest {max(errors):.1f} %; "
              f"windows median {statistics.median(windows):.2f}x, {min(windows):.2f}-{max(windows):.2f}x")  # fmt: skip
    objects = [ours[c]["objects_map50_95"] - x265[c]["objects_map50_95"] for c in cases]
    classes = [ours[c]["map50_95"] - x265[c]["map50_95"] for c in cases]
    print(f"semrl - x265 over {len(cases)} cases: objects median {statistics.median(objects):+.2f} "
          f"(higher in {sum(d > 0 for d in objects)}), class mean median {statistics.median(classes):+.2f} "
          f"(higher in {sum(d > 0 for d in classes)})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])

"""The gate's figures over every case: ``python gate.py BEFORE.json[,...] AFTER.json[,...]``.

The per-case table: ``../rate-control-slice-qp/compare_rates.py`` with the same arguments.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _semrl(files: str) -> dict[tuple[str, float], dict[str, Any]]:
    rows = [row for f in files.split(",") for row in json.loads(Path(f).read_text())["rows"]]
    return {(r["clip"], r["target_kbps"]): r for r in rows if r["method"] == "semrl"}


def main(before_files: str, after_files: str) -> None:
    """Print each clause's figures, before and after."""
    before, after = _semrl(before_files), _semrl(after_files)
    cases = sorted(before.keys() & after.keys())
    for name, runs in (("before", before), ("after", after)):
        errors = [abs(runs[c]["rate_error_percent"]) for c in cases]
        windows = [runs[c]["max_1s_window_ratio"] for c in cases]
        rate = f"|rate error| median {statistics.median(errors):.1f} %, largest {max(errors):.1f} %"
        window = f"window median {statistics.median(windows):.2f}x, largest {max(windows):.2f}x"
        print(f"{name}: {len(cases)} cases; {rate}; {window}")
    changes = [after[c]["objects_map50_95"] - before[c]["objects_map50_95"] for c in cases]
    classes = [after[c]["map50_95"] - before[c]["map50_95"] for c in cases]
    print(f"objects change: median {statistics.median(changes):+.2f} ({sum(d > 0 for d in changes)} gain); "
          f"class mean change: median {statistics.median(classes):+.2f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

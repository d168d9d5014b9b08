"""Random access against low-delay P at the same targets, for semrl's ``--bitrate`` and for x265's ABR.

Usage: ``python ra_vs_ldp.py LDP.json[,...] RA.json[,...]`` (``rate_control.py`` runs of the same clips and rates;
a method missing from either side is left out). Prints, per method, the median RA - LDP change of ``objects``, the
class mean and PSNR-Y over the cases, how many cases RA is higher in, and the median ratio of the rates.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

KEYS = {"objects_map50_95": "objects", "map50_95": "class mean", "psnr_y": "PSNR-Y"}


def _runs(files: str) -> dict[str, dict[tuple[str, float], dict[str, Any]]]:
    runs: dict[str, dict[tuple[str, float], dict[str, Any]]] = {}
    for f in files.split(","):
        for r in json.loads(Path(f).read_text())["rows"]:
            runs.setdefault(r["method"], {})[r["clip"], r["target_kbps"]] = r
    return runs


def main(ldp_files: str, ra_files: str) -> None:
    """Print the RA - LDP medians per method."""
    ldp, ra = _runs(ldp_files), _runs(ra_files)
    for method in sorted(ldp.keys() & ra.keys()):
        cases = sorted(ldp[method].keys() & ra[method].keys())
        parts = []
        for key, name in KEYS.items():
            d = [ra[method][c][key] - ldp[method][c][key] for c in cases]
            parts.append(f"{name} {statistics.median(d):+.2f} (RA higher in {sum(x > 0 for x in d)})")
        rate = statistics.median(ra[method][c]["kbps"] / ldp[method][c]["kbps"] for c in cases)
        print(f"{method}, {len(cases)} cases, RA - LDP medians: {'; '.join(parts)}; rate RA / LDP {rate:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

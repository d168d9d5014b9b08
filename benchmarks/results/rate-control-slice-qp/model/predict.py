"""Replay the controller's per-CTU P-frame model on ``code_frames.py``'s records: actual over predicted bits.

    python predict.py OUT_DIR   # per clip and model: median |log ratio|, 95th percentile, largest, 5th percentile

``base`` is the model as it was; ``ctu_up`` the candidate (each CTU scaled up by its change over the
recent frames', plus a floor), the others variants looked at beside it.
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np


def replay(records: Any, mode: str, floor_activity: float, smoothing: float = 0.5, floor: float = 0.05) -> Any:
    """Actual over predicted bits of each P-frame after the first, the model refitted after each."""
    model = recent = None
    ratios = []
    for slice_type, bits, qps, change in records:
        if slice_type != "P":
            model = recent = None
            continue
        scale = 2.0 ** (-qps / 6)
        if model is not None and recent is not None:
            floored = np.maximum(model, floor * model.mean())
            growth = (change + floor_activity) / (recent + floor_activity)
            factor = {
                "base": 1.0,
                "frame_up": max(1.0, float((change.mean() + floor_activity) / (recent.mean() + floor_activity))),
                "ctu_up": np.maximum(1.0, growth),
                "ctu": growth,
            }[mode]
            ratios.append(bits.sum() / max(float((floored * factor * scale).sum()), 1.0))
        fitted = bits / scale
        model = fitted if model is None else (1 - smoothing) * model + smoothing * fitted
        recent = change if recent is None else (1 - smoothing) * recent + smoothing * change
    return np.array(ratios)


for path in sorted(Path(sys.argv[1]).glob("*.npy")):
    records = np.load(path, allow_pickle=True)
    line = path.stem[:14]
    for mode, floor_activity in [
        ("base", 1),
        ("frame_up", 1),
        ("frame_up", 0.5),
        ("ctu_up", 1),
        ("ctu_up", 2),
        ("ctu", 1),
    ]:
        r = replay(records, mode, floor_activity)
        median = np.median(np.abs(np.log(r)))
        line += f" | {mode}{floor_activity}: {median:.2f} p95 {np.percentile(r, 95):.2f} max {r.max():.2f}"
        line += f" under {np.percentile(r, 5):.2f}"
    print(line)

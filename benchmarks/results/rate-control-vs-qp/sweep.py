"""How much accuracy ``--bitrate`` costs against the same policy at a constant base QP (a diagnostic).

For each clip of ``videos/`` (first 150 frames, LDP, preset medium, scored by ``semrl eval``
as ``benchmarks/rate_control.py`` scores), the default policy is coded at base QPs 22-51 and with
``--bitrate`` at 50, 100 and 200 kbit/s, and x265's ABR at the same targets. The constant-QP
points give a rate-accuracy curve (monotone pchip on log rate, as the benchmark fits); the
accuracy it reads at each ``--bitrate`` run's achieved rate is what the controller would keep if
it held the base QP constant (which ignores the one-second bound it keeps).

    python benchmarks/results/rate-control-vs-qp/sweep.py   # writes sweep.json here
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from rate_control import clip_fps, window_ratio, x265_abr  # noqa: E402

QPS = (22, 27, 32, 37, 42, 47, 51)
RATES = (50.0, 100.0, 200.0)
FRAMES = 150


def _score(clip: Path, path: Path, method: str, point: float) -> dict[str, Any]:
    from semrl.evaluate import evaluate

    report = evaluate(clip, path, "detection", max_frames=FRAMES)
    bits = [int(r["bits"]) for r in report.rows]
    fps = clip_fps(clip)  # an .hevc stream carries no frame rate
    return {
        "clip": clip.name, "method": method, "point": point, "kbps": sum(bits) * fps / len(bits) / 1000,
        "map50_95": 100 * report.accuracy, "objects_map50_95": 100 * report.objects, "psnr_y": report.psnr_y,
        "against": "pseudo ground truth" if report.against == "pseudo ground truth" else "labels",
        "max_1s_window_ratio": window_ratio(bits, fps, point) if method != "semrl-qp" else None,
    }  # fmt: skip


def main() -> int:
    """Run the sweep; returns 0."""
    import torch

    from semrl.assets import assets_root
    from semrl.files import atomic_write
    from semrl.pipeline import EncodeSettings, encode_video

    torch.set_num_threads(2)
    root = assets_root()
    if root is None:
        print("error: set SEMRL_ASSETS", file=sys.stderr)
        return 2
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="semrl-rcqp-") as work:
        for clip in sorted((root / "videos").glob("*.mp4")):
            for qp in QPS:
                out = Path(work) / f"qp{qp}.mp4"
                encode_video(clip, out, EncodeSettings(qp=qp, max_frames=FRAMES))
                rows.append(_score(clip, out, "semrl-qp", qp))
                print(rows[-1], flush=True)
            for kbps in RATES:
                out = Path(work) / f"br{kbps:g}.mp4"
                encode_video(clip, out, EncodeSettings(bitrate=kbps, max_frames=FRAMES))
                rows.append(_score(clip, out, "semrl-bitrate", kbps))
                print(rows[-1], flush=True)
                x265 = Path(work) / "x265.hevc"
                x265_abr(clip, x265, kbps, FRAMES)
                rows.append(_score(clip, x265, "x265-abr", kbps))
                print(rows[-1], flush=True)
    seconds = time.perf_counter() - start
    atomic_write(HERE / "sweep.json", json.dumps({"seconds": seconds, "rows": rows}, indent=1) + "\n")
    print(f"{seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

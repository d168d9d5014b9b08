"""The scenario of tests/test_ratecontrol.py, wider: PETS at --bitrate, preset ultrafast, worst one-second window.

    python benchmarks/results/rate-control-ctu/pets_windows.py [POLICY]

Prints, for 60 frames at 60 kbit/s and 150 frames at 60, 120 and 30 kbit/s, the rate held and the
largest sum of bits over 10 frames (one second) against the target's, overall and after the first
second. Needs SEMRL_ASSETS (or ../shared/assets).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from semrl.assets import assets_root
from semrl.pipeline import EncodeSettings, encode_video


def main() -> None:
    """Run the four encodes and print their windows."""
    root = assets_root()
    if root is None:
        sys.exit("error: set SEMRL_ASSETS to the shared assets folder")
    pets = root / "videos" / "pets2009_s2l1_480x360.mp4"
    policy = sys.argv[1] if len(sys.argv) > 1 else "auto"
    for kbps, frames in ((60.0, 60), (60.0, 150), (120.0, 150), (30.0, 150)):
        with tempfile.TemporaryDirectory() as work:
            settings = EncodeSettings(bitrate=kbps, max_frames=frames, preset="ultrafast", policy=policy)
            report = encode_video(pets, Path(work) / "out.mp4", settings)
        bits = [row.bits for row in report.rows]
        windows = [sum(bits[i : i + 10]) / (kbps * 1000) for i in range(len(bits) - 9)]
        print(f"{Path(policy).stem} {kbps:g} kbit/s, {frames} frames: {report.kbps:.1f} kbit/s, "
              f"window {max(windows):.2f}x, after the first second {max(windows[10:]):.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

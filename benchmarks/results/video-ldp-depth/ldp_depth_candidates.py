"""Wider layer steps in the low-delay P cascade under ROI D=4 (scratch candidates, issue 13).

The video policy's reference coding under low delay, ``cascade8_roi4``
(``benchmarks/video_schedules.py``), codes groups of 8 frames at offsets 0, +2, +3, +4 by temporal
layer (frames 8k, 8k+4, 8k+2 and 8k+6, the odd frames), the IDR frame 3 QP finer, and ROI D=4 on
top. Its layers are one QP apart below the first; a longer cascade with the same steps lost
(``../video-cascade16``). Under random access, wider steps between the layers won on the training
clips up to 0, +3, +6 (``../video-ra-depth``, ``../video-ra-deeper``). These code the same groups
of 8 with wider steps:

- ``c8_0246_roi4``: layers 0, +2, +4, +6;
- ``c8_0369_roi4``: layers 0, +3, +6, +9.

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8_0246_roi4=benchmarks/results/video-ldp-depth/ldp_depth_candidates.py:c8_0246_roi4``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import Cascade, RoiCascade, cascade8

from semrl.policy import RoiPolicy


def layered(layers: tuple[int, int, int, int]) -> tuple[int, ...]:
    """A group of 8's offsets by temporal layer: frame 0, frame 4, frames 2 and 6, the odd frames."""
    first, second, third, odd = layers
    return (first, odd, third, odd, second, odd, third, odd)


assert layered((0, 2, 3, 4)) == cascade8.offsets
c8_0246_roi4 = RoiCascade(Cascade(layered((0, 2, 4, 6)), idr=cascade8.idr), RoiPolicy(4))
c8_0369_roi4 = RoiCascade(Cascade(layered((0, 3, 6, 9)), idr=cascade8.idr), RoiPolicy(4))

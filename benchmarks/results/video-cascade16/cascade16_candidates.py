"""Longer temporal cascades under the reference coding's ROI (scratch candidates, issue 13).

``cascade8_roi4`` codes low-delay P clips with ``cascade8`` (groups of 8 frames: 0, 4, 3, 4, 2, 4,
3, 4; the IDR frame -3) and ROI D=4 on top. Among the fixed cascades tuned so far, the deeper one
won on both metrics (``benchmarks/results/video-roi-cascade``: groups of 8 over HM's groups of 4),
and no cascade longer than 8 frames was tried. These extend it to groups of 16, ROI D=4 on top:

- ``c16_roi4``: one level deeper, the same steps: 0, 5, 4, 5, 3, 5, 4, 5, 2, 5, 4, 5, 3, 5, 4, 5
  (the 16-frame anchor at the base, the 8th frame +2, ..., the odd frames +5);
- ``c16f_roi4``: ``cascade8`` with every other 8-frame anchor 1 QP coarser: 0, 4, 3, 4, 2, 4, 3, 4,
  1, 4, 3, 4, 2, 4, 3, 4 (the odd frames stay +4).

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c16_roi4=benchmarks/results/video-cascade16/cascade16_candidates.py:c16_roi4``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import Cascade, RoiCascade, cascade8

from semrl.policy import RoiPolicy

c16_roi4 = RoiCascade(Cascade((0, 5, 4, 5, 3, 5, 4, 5, 2, 5, 4, 5, 3, 5, 4, 5), idr=cascade8.idr), RoiPolicy(4))
c16f_roi4 = RoiCascade(Cascade((*cascade8.offsets, 1, *cascade8.offsets[1:]), idr=cascade8.idr), RoiPolicy(4))

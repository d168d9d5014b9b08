"""The reference coding with its ROI on 16x16 blocks instead of CTUs (scratch candidates, issue 13).

``cascade8_roi4`` gives -4 to every 64x64 CTU the net's objects (grown by 16 px) touch. On the
static-camera pedestrian clips most of those CTUs are static background around a small person,
and every anchor frame the finer QP re-codes that background, which P frames at the frame's QP
would skip. On 16x16 blocks the boost hugs the objects:

- ``c8_roi16_4``: ``cascade8`` with ROI D=4 per 16x16 block (boxes grown by 16 px);
- ``c8_roi16_6``: the same with D=6 (a tighter region affords a stronger boost).

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8_roi16_4=benchmarks/results/video-roi16/roi16_candidates.py:c8_roi16_4``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import RoiCascade, cascade8

from semrl.codec import BLOCK_SIZE
from semrl.policy import RoiPolicy

c8_roi16_4 = RoiCascade(cascade8, RoiPolicy(4, block=BLOCK_SIZE))
c8_roi16_6 = RoiCascade(cascade8, RoiPolicy(6, block=BLOCK_SIZE))

"""Objects that are both large and sure coded less finely (scratch candidates, issue 13).

``cascade8_roi4`` (the video policy's reference coding, ``benchmarks/video_schedules.py``) codes
every CTU an object's box (grown by 16 px) touches 4 QP finer than its frame. Two earlier rounds
coded a subset of the objects at the frame's QP instead, and each lost one figure:
``../video-large-objects`` (large objects: ``objects`` up, the class mean down, since some rare
classes' objects are large and unsure) and ``../video-confidence`` (sure objects: the class mean
up, ``objects`` down, since many sure persons are small). These candidates code less finely only
the CTUs that objects both large (box area at least 96 x 96 px, COCO's "large") and sure
(confidence at least 0.6 on the original frame) touch, so neither small sure objects nor large
unsure ones lose their -4; CTUs any other object touches keep -4:

- ``c8r4_large_sure0``: CTUs only large, sure objects touch at the frame's offset (0);
- ``c8r4_large_sure2``: at +2, coarser than the frame.

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8r4_large_sure0=benchmarks/results/video-large-sure/large_sure_candidates.py:c8r4_large_sure0``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import Cascade, cascade8, split_object_roi

from semrl.policy import PolicyInput

LARGE_SIDE = 96
"""Square root of the box area in pixels from which an object is large (COCO's definition)."""


@dataclass(frozen=True)
class LargeSureRoiCascade:
    """ROI on a frame cascade, with the CTUs only large, sure objects touch at ``coarse`` instead of ``-delta``.

    Attributes:
        cascade: The frame-level schedule.
        coarse: Offset of the CTUs that only large, sure objects' boxes (grown by ``dilation``) touch.
        sure: Confidence on the original frame from which an object counts as sure.
        delta: ROI's offset magnitude (other objects -delta, background +delta).
        dilation: Pixels the boxes are grown by (ROI's).
    """

    cascade: Cascade
    coarse: int = 0
    sure: float = 0.6
    delta: int = 4
    dilation: int = 16
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        rule = f"large={LARGE_SIDE}:sure={self.sure}:at={self.coarse}"
        return f"{self.cascade.fingerprint}+roi-large-sure:d={self.delta}:{rule}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Large, sure objects' CTUs ``coarse``, other objects' -delta, the rest +delta; plus the frame's offset."""
        boxes = inputs.boxes.reshape(-1, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        sure = inputs.conf >= self.sure if len(inputs.conf) else np.zeros(len(boxes), bool)
        fine = ~((area >= LARGE_SIDE**2) & sure)
        offsets = split_object_roi(inputs, fine, self.coarse, self.delta, self.dilation)
        return (offsets + self.cascade.offset(inputs)).astype(np.int32)


c8r4_large_sure0 = LargeSureRoiCascade(cascade8, coarse=0)
c8r4_large_sure2 = LargeSureRoiCascade(cascade8, coarse=2)

"""Objects the detector is sure of coded less finely than the others (scratch candidates, issue 13).

``cascade8_roi4`` (the video policy's reference coding, ``benchmarks/video_schedules.py``) codes
every CTU an object's box (grown by 16 px) touches 4 QP finer than its frame. An object the net
finds with a high confidence on the original keeps being found after coarser coding, one near the
0.25 threshold does not (design.md: "detector confidence margins"); and the rare classes that
weigh most in the class mean are mostly low-confidence finds (median 0.25-0.36 on the first 30
frames of the training clips, against 0.40-0.62 for all objects). These candidates code the CTUs that only sure objects
(confidence at least 0.6 on the original frame) touch less finely; CTUs any other object touches
keep -4:

- ``c8r4_sure2``: CTUs only sure objects touch at -2;
- ``c8r4_sure0``: at 0 (the frame's offset).

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8r4_sure0=benchmarks/results/video-confidence/conf_candidates.py:c8r4_sure0``).
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


@dataclass(frozen=True)
class ConfidenceRoiCascade:
    """ROI on a frame cascade, with the CTUs only sure objects touch at ``sure_offset`` instead of ``-delta``.

    Attributes:
        cascade: The frame-level schedule.
        sure: Confidence on the original frame from which an object counts as sure.
        sure_offset: Offset of the CTUs that only sure objects' boxes (grown by ``dilation``) touch.
        delta: ROI's offset magnitude (other objects -delta, background +delta).
        dilation: Pixels the boxes are grown by (ROI's).
    """

    cascade: Cascade
    sure: float = 0.6
    sure_offset: int = 0
    delta: int = 4
    dilation: int = 16
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        sure = f"sure={self.sure}:at={self.sure_offset}"
        return f"{self.cascade.fingerprint}+roi-conf:d={self.delta}:{sure}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Unsure objects' CTUs -delta, sure-only CTUs ``sure_offset``, the rest +delta, plus the frame's offset."""
        boxes = inputs.boxes.reshape(-1, 4)
        unsure = inputs.conf < self.sure if len(inputs.conf) else np.ones(len(boxes), bool)
        offsets = split_object_roi(inputs, unsure, self.sure_offset, self.delta, self.dilation)
        return (offsets + self.cascade.offset(inputs)).astype(np.int32)


c8r4_sure2 = ConfidenceRoiCascade(cascade8, sure_offset=-2)
c8r4_sure0 = ConfidenceRoiCascade(cascade8, sure_offset=0)

"""Large objects coded less finely than small ones on top of the low-delay cascade (scratch candidates, issue 13).

``cascade8_roi4`` (the video policy's reference coding, ``benchmarks/video_schedules.py``) codes
every CTU an object's box (grown by 16 px) touches 4 QP finer than its frame and every other CTU
4 QP coarser, whatever the object's size. On the static-camera clips the objects' CTUs carry most
of the bits, and a detector keeps large objects at coarser QPs than small ones (COCO: large
objects survive QP 45+). These candidates code the CTUs that only large objects touch (box area at
least 96 x 96 px, COCO's "large") less finely; CTUs a small object touches keep -4:

- ``c8r4_large0``: CTUs only large objects touch at the frame's offset (0);
- ``c8r4_large2``: at -2.

Round 2, after round 1 lost the class mean (some rare classes' objects are large):

- ``c8r4_large0_common``: as ``c8r4_large0``, but only for the large objects of the clip's common
  classes; a large object of a rare class (under 10 % of the objects found on the clip's frames
  so far, this one included, as in ``../video-rare-class``) keeps -4 like a small one.

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8r4_large0=benchmarks/results/video-large-objects/large_candidates.py:c8r4_large0``).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import Cascade, cascade8, split_object_roi

from semrl.policy import PolicyInput

LARGE_AREA = 96 * 96
"""Box area in pixels from which an object is large (COCO's definition)."""

COUNTS_KEY = "class_counts"


@dataclass(frozen=True)
class SizeAwareRoiCascade:
    """ROI on a frame cascade, with the CTUs only large objects touch at ``large`` instead of ``-delta``.

    Attributes:
        cascade: The frame-level schedule.
        delta: ROI's offset magnitude (objects -delta, background +delta).
        large: Offset of the CTUs that only large objects' boxes (grown by ``dilation``) touch.
        dilation: Pixels the boxes are grown by (ROI's).
        rare_share: When set, a large object of a class under this share of the objects found on
            the clip so far is coded as a small one.
    """

    cascade: Cascade
    delta: int = 4
    large: int = 0
    dilation: int = 16
    rare_share: float | None = None
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        size = f"large={self.large}:area={LARGE_AREA}" + (f":rare={self.rare_share}" if self.rare_share else "")
        return f"{self.cascade.fingerprint}+roi-size:d={self.delta}:{size}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Small (or rare) objects' CTUs -delta, other objects' ``large``, the rest +delta, plus the frame's offset."""
        boxes = inputs.boxes.reshape(-1, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        fine = area < LARGE_AREA
        if self.rare_share is not None:
            counts: Counter[int] = inputs.state.setdefault(COUNTS_KEY, Counter())
            counts.update(int(c) for c in inputs.cls)
            total = sum(counts.values())
            fine |= np.array([counts[int(c)] < self.rare_share * total for c in inputs.cls], bool)
        offsets = split_object_roi(inputs, fine, self.large, self.delta, self.dilation)
        return (offsets + self.cascade.offset(inputs)).astype(np.int32)


c8r4_large0 = SizeAwareRoiCascade(cascade8, large=0)
c8r4_large2 = SizeAwareRoiCascade(cascade8, large=-2)
c8r4_large0_common = SizeAwareRoiCascade(cascade8, large=0, rare_share=0.1)

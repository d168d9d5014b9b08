"""The objects of a clip's rare classes coded finer on top of ``cascade8_roi4`` (scratch candidates, issue 13).

The video benchmark's headline metric is the class mean of COCO AP over the classes of the clip's
pseudo ground truth, so an object of a class seen ``n_c`` times among ``C`` classes weighs about
``1 / (C n_c)``: on the 4 training clips the classes with 10 objects or fewer hold 0.8 % of the
objects and 53 % of the metric's weight (``../video-motion-roi``). ``cascade8_roi4`` boosts every
object alike. These candidates add a further boost to the CTUs that the boxes of a rare class touch
(grown by ROI's 16 px), where a class is rare on a frame when its objects are under ``share`` of
all the objects the net found on the clip's frames so far, this one included (causal: what an
encoder knows when it codes the frame):

- ``c8r4_rare4``: rare objects' CTUs 4 QP finer still (8 below the frame's cascade offset);
- ``c8r4_rare8``: 8 QP finer still.

Round 2 (after round 1's bit cost): the same 8 QP, on fewer blocks:

- ``c8r4_rare8_anchor``: only on the cascade's anchor frames (the IDR frame and every 8th), which
  every other frame of a group leans on;
- ``c8r4_rare8_tight``: the rare boxes not grown (dilation 0), so only the CTUs they overlap.

Run with ``benchmarks/`` on ``sys.path`` (``--policy
c8r4_rare4=benchmarks/results/video-rare-class/rare_candidates.py:c8r4_rare4``).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import RoiCascade, cascade8_roi4

from semrl.policy import PolicyInput
from semrl.policy.roi import roi_blocks
from semrl.semantics.regions import box_region

COUNTS_KEY = "rare_class_counts"


@dataclass(frozen=True)
class RareClassBoost:
    """A coding plus ``-extra`` on the CTUs touching the boxes of the clip's rare classes so far.

    Attributes:
        coding: The coding underneath (per CTU).
        share: A class is rare while its objects are under this share of the objects found so far.
        extra: The further offset's magnitude on the rare objects' CTUs.
        dilation: Pixels the rare boxes are grown by (ROI's).
        anchors_only: Boost only the cascade's anchor frames (position 0 of each group).
    """

    coding: RoiCascade
    share: float = 0.1
    extra: int = 4
    dilation: int = 16
    anchors_only: bool = False
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        anchors = ":anchors" if self.anchors_only else ""
        return f"{self.coding.fingerprint}+rare:share={self.share}:extra={self.extra}:dil={self.dilation}{anchors}"

    @property
    def offset_block(self) -> int:
        """The coding's block side (per CTU)."""
        return self.coding.offset_block

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The coding's offsets, ``extra`` finer where rare objects are."""
        offsets = self.coding(inputs).astype(np.int32)
        counts: Counter[int] = inputs.state.setdefault(COUNTS_KEY, Counter())
        counts.update(int(c) for c in inputs.cls)
        total = sum(counts.values())
        rare = np.array([counts[int(c)] < self.share * total for c in inputs.cls], bool)
        group = len(self.coding.cascade.offsets)
        anchor = inputs.gop.position(inputs.frame_index) % group == 0
        if inputs.region is None or not rare.any() or (self.anchors_only and not anchor):
            return offsets
        region = box_region(inputs.boxes[rare], inputs.region.shape)
        touched = roi_blocks(region, inputs.ctu_shape, self.dilation)
        return np.where(touched, offsets - self.extra, offsets).astype(np.int32)


c8r4_rare4 = RareClassBoost(cascade8_roi4, extra=4)
c8r4_rare8 = RareClassBoost(cascade8_roi4, extra=8)
c8r4_rare8_anchor = RareClassBoost(cascade8_roi4, extra=8, anchors_only=True)
c8r4_rare8_tight = RareClassBoost(cascade8_roi4, extra=8, dilation=0)

"""Deeper B-frame layer offsets under the random-access reference coding (scratch candidates, issue 13).

Under ``--gop ra`` the video reference coding (``--policy video-reference``) codes x265's B-frame
layers at offsets 0 (P anchors), +1 (the referenced B-frame) and +2 (the other B-frames), the IDR
frame 3 QP finer and ROI D=4 on top. Those layer offsets were taken from x265's own CRF B-frame
offsets (``pbratio`` 1.3), not tuned; under low delay the deeper cascade won (``cascade8``: the
frames nothing leans on +4). These code the same with deeper layers:

- ``ra012_roi4``: layers 0, +1, +2: the reference coding's offsets, built as the candidates are
  (the baseline of the comparison);
- ``ra024_roi4``: layers 0, +2, +4;
- ``ra036_roi4``: layers 0, +3, +6.

A second round (``../video-ra-deeper``) continues the trend of the first on the training clips:

- ``ra048_roi4``: layers 0, +4, +8;
- ``ra038_roi4``: layers 0, +3, +8 (only the B-frames nothing references deeper).

Run with ``--gop ra`` (``--policy ra024_roi4=benchmarks/results/video-ra-depth/ra_depth_candidates.py:ra024_roi4``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from semrl.policy import PolicyInput, RoiPolicy


@dataclass(frozen=True)
class LayersRoi:
    """A QP offset per temporal layer of a random-access GOP, the IDR frame's own, and ROI's block offsets on top.

    Attributes:
        offsets: Offsets of the P anchors, the referenced B-frames and the other B-frames.
        idr: Offset of the IDR frame.
        roi: The block-level recipe (A3's).
    """

    offsets: tuple[int, int, int]
    idr: int = -3
    roi: RoiPolicy = field(default_factory=lambda: RoiPolicy(4))
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the schedule."""
        return "layers:" + ",".join(str(o) for o in self.offsets) + f":idr={self.idr}+{self.roi.fingerprint}"

    @property
    def offset_block(self) -> int:
        """The side of the blocks the offsets vary over (ROI's)."""
        return self.roi.offset_block

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """ROI's offsets plus the frame's: the IDR frame's, or its layer's."""
        gop = inputs.gop
        frame = self.idr if gop.position(inputs.frame_index) == 0 else self.offsets[gop.layer(inputs.frame_index)]
        return (self.roi(inputs) + frame).astype(np.int32)


ra012_roi4 = LayersRoi((0, 1, 2))
ra024_roi4 = LayersRoi((0, 2, 4))
ra036_roi4 = LayersRoi((0, 3, 6))

ra048_roi4 = LayersRoi((0, 4, 8))
ra038_roi4 = LayersRoi((0, 3, 8))

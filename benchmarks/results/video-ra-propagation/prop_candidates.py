"""Random access without learning: the video reference coding, but the still background of referenced frames kept fine.

``video-reference`` under random access codes x265's B-frame layers (P anchors at the base, the referenced
B-frame +1, the others +2), the IDR frame 3 QP finer and ROI D=4 (the objects' CTUs 4 finer than their frame,
every other CTU 4 coarser). x265's cuTree does the opposite for a still background: the blocks later frames
copy from are coded finer. Here the CTUs off the objects whose luma changed by under ``still`` grey levels
(mean absolute change from the previous frame) get ``still_offset`` instead of +4 in the frames others
reference (the IDR frame, the P anchors and the referenced B-frame); the B-frames nothing references keep +4.

``ldp0`` asks the same of low-delay P's cascade anchors. Run with ``benchmarks/bdrate.py --policy prop0=<this
file>:prop0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from envs.video import LAYER_OFFSETS, VideoSettings, cascade_offset
from semrl.codec import CTU_SIZE, pool_map, rgb_luma
from semrl.policy import PolicyInput, roi_blocks

_PREVIOUS = "prop_candidates.previous_luma"
_CASCADE = VideoSettings().cascade


@dataclass(frozen=True)
class StillBackground:
    """``video-reference`` with the still background of the frames others lean on at ``still_offset``.

    Random access (the default): x265's B-frame layers, the IDR frame ``idr`` and ROI D=``roi``; the frames
    others reference are the IDR frame, the P anchors and the referenced B-frame. ``low_delay``: the 8-frame
    cascade of ``video-reference`` instead, whose anchors are the IDR frame and every 4th frame (cascade
    offsets 0 and +2). In those frames the CTUs off the objects whose luma changed by under ``still`` grey
    levels from the previous frame (every CTU off the objects in the IDR frame) get ``still_offset``.
    """

    still_offset: int
    low_delay: bool = False
    roi: int = 4
    idr: int = -3
    dilation: int = 16
    still: float = 2.0
    needs_regions = True
    offset_block = CTU_SIZE

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        if self.low_delay:
            return f"still-background-ldp:s={self.still_offset}:roi={self.roi}:still={self.still:g}"
        return f"still-background:s={self.still_offset}:roi={self.roi}:idr={self.idr}:still={self.still:g}"

    def _frame(self, inputs: PolicyInput) -> tuple[int, bool]:
        """The frame's QP offset in the reference coding, and whether later frames lean on it."""
        position = inputs.gop.position(inputs.frame_index)
        if self.low_delay:
            return cascade_offset(_CASCADE, position, self.idr), position % 4 == 0
        layer = inputs.gop.layer(inputs.frame_index)
        return (self.idr if position == 0 else LAYER_OFFSETS[layer]), layer < 2

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The frame's offsets per CTU (called once per frame of a clip, in order)."""
        luma = inputs.luma if inputs.luma is not None else rgb_luma(inputs.frame)
        previous = inputs.state.get(_PREVIOUS)
        inputs.state[_PREVIOUS] = luma
        frame_offset, referenced = self._frame(inputs)
        inside = roi_blocks(inputs.region, inputs.ctu_shape, self.dilation)
        offsets = np.where(inside, frame_offset - self.roi, frame_offset + self.roi)
        if referenced:
            if inputs.gop.position(inputs.frame_index) == 0 or previous is None or previous.shape != luma.shape:
                still = np.ones(inputs.ctu_shape, bool)  # the IDR frame: every later frame leans on it
            else:
                still = pool_map(np.abs(luma - previous), CTU_SIZE) < self.still
            offsets = np.where(still & ~inside, frame_offset + self.still_offset, offsets)
        return offsets.astype(np.int32)


prop0 = StillBackground(0)
prop_minus2 = StillBackground(-2)
ldp0 = StillBackground(0, low_delay=True)

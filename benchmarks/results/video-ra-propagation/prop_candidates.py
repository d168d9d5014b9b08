"""Random access without learning: the video reference coding, but the still background of referenced frames kept fine.

``video-reference`` under random access codes x265's B-frame layers (P anchors at the base, the referenced
B-frame +1, the others +2), the IDR frame 3 QP finer and ROI D=4 (the objects' CTUs 4 finer than their frame,
every other CTU 4 coarser). x265's cuTree does the opposite for a still background: the blocks later frames
copy from are coded finer. Here the CTUs off the objects whose luma changed by under ``still`` grey levels
(mean absolute change from the previous frame) get ``still_offset`` instead of +4 in the frames others
reference (the IDR frame, the P anchors and the referenced B-frame); the B-frames nothing references keep +4.

Run with ``benchmarks/bdrate.py --policy prop0=<this file>:prop0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from envs.video import LAYER_OFFSETS, VideoSettings, cascade_offset
from semrl.codec import CTU_SIZE, pool_map
from semrl.policy import PolicyInput, roi_blocks

_PREVIOUS = "prop_candidates.previous_luma"


@dataclass(frozen=True)
class StillBackground:
    """The reference coding under random access, with the still background of referenced frames at ``still_offset``."""

    still_offset: int
    roi: int = 4
    idr: int = -3
    dilation: int = 16
    still: float = 2.0
    needs_regions = True
    offset_block = CTU_SIZE

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"still-background:s={self.still_offset}:roi={self.roi}:idr={self.idr}:still={self.still:g}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The frame's offsets per CTU (called once per frame of a clip, in order)."""
        frame = inputs.frame.astype(np.float32)
        luma = inputs.luma if inputs.luma is not None else frame @ np.array([0.299, 0.587, 0.114], np.float32)
        previous = inputs.state.get(_PREVIOUS)
        inputs.state[_PREVIOUS] = luma
        position, layer = inputs.gop.position(inputs.frame_index), inputs.gop.layer(inputs.frame_index)
        frame_offset = self.idr if position == 0 else LAYER_OFFSETS[layer]
        inside = roi_blocks(inputs.region, inputs.ctu_shape, self.dilation)
        offsets = np.where(inside, frame_offset - self.roi, frame_offset + self.roi)
        if layer < 2:  # a frame others reference
            if position == 0 or previous is None or previous.shape != luma.shape:
                still = np.ones(inputs.ctu_shape, bool)  # the IDR frame: every later frame leans on it
            else:
                still = pool_map(np.abs(luma - previous), CTU_SIZE) < self.still
            offsets = np.where(still & ~inside, frame_offset + self.still_offset, offsets)
        return offsets.astype(np.int32)


prop0 = StillBackground(0)
prop_minus2 = StillBackground(-2)


@dataclass(frozen=True)
class StillBackgroundLowDelay:
    """``video-reference`` under low delay, the still background of the cascade's anchors at ``still_offset``.

    The 8-frame cascade, the IDR frame -3 and ROI D=4 as ``video-reference`` codes them; in the anchors (the IDR
    frame and every 4th frame, cascade offsets 0 and +2) the still CTUs off the objects get ``still_offset``.
    """

    still_offset: int
    roi: int = 4
    dilation: int = 16
    still: float = 2.0
    needs_regions = True
    offset_block = CTU_SIZE

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"still-background-ldp:s={self.still_offset}:roi={self.roi}:still={self.still:g}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The frame's offsets per CTU (called once per frame of a clip, in order)."""
        frame = inputs.frame.astype(np.float32)
        luma = inputs.luma if inputs.luma is not None else frame @ np.array([0.299, 0.587, 0.114], np.float32)
        previous = inputs.state.get(_PREVIOUS)
        inputs.state[_PREVIOUS] = luma
        settings = VideoSettings()
        position = inputs.gop.position(inputs.frame_index)
        frame_offset = cascade_offset(settings.cascade, position, settings.idr)
        inside = roi_blocks(inputs.region, inputs.ctu_shape, self.dilation)
        offsets = np.where(inside, frame_offset - self.roi, frame_offset + self.roi)
        if position % 4 == 0:  # an anchor of the cascade
            if position == 0 or previous is None or previous.shape != luma.shape:
                still = np.ones(inputs.ctu_shape, bool)
            else:
                still = pool_map(np.abs(luma - previous), CTU_SIZE) < self.still
            offsets = np.where(still & ~inside, frame_offset + self.still_offset, offsets)
        return offsets.astype(np.int32)


ldp0 = StillBackgroundLowDelay(0)

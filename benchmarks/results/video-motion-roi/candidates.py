"""Scratch candidates of this folder's two rounds (issue 13); none was chosen (README)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from video_schedules import cascade8

from semrl.policy import PolicyInput
from semrl.policy.roi import roi_blocks

CTU = 64


def changed_ctus(inputs: PolicyInput, level: float = 10.0, share: float = 0.01) -> np.ndarray:
    assert inputs.luma is not None
    y = cv2.blur(inputs.luma.astype(np.float32), (3, 3))
    prev = inputs.state.get("prev_luma")
    inputs.state["prev_luma"] = y
    rows, cols = inputs.ctu_shape
    if prev is None or prev.shape != y.shape:
        return np.ones((rows, cols), bool)
    d = np.abs(y - prev) > level
    h, w = d.shape
    c = np.zeros((rows * CTU, cols * CTU), bool)
    c[:h, :w] = d
    return np.asarray(c.reshape(rows, CTU, cols, CTU).mean(axis=(1, 3)) > share, bool)


@dataclass(frozen=True)
class MotionRoi:
    """Round 1: cascade8 with a uniform or ROI IDR frame and ROI gated by motion on P frames."""

    delta: int = 4
    static_object: int = 4  # offset of object CTUs that did not change since the previous frame
    roi_idr: bool = False  # ROI on the IDR frame too
    motion: bool = True
    frame_level = True
    needs_rgb = False
    needs_regions = True

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        flags = f"idr={int(self.roi_idr)}:m={int(self.motion)}"
        return f"scratch-motionroi:{cascade8.fingerprint}:d={self.delta}:s={self.static_object}:{flags}:v1"

    def __call__(self, inputs: PolicyInput) -> np.ndarray:
        """The frame's CTU offsets."""
        frame = cascade8.offset(inputs)
        moving = changed_ctus(inputs)
        obj = roi_blocks(inputs.region, inputs.ctu_shape, 16)
        if inputs.gop.position(inputs.frame_index) == 0:
            if not self.roi_idr:
                return np.full(inputs.ctu_shape, frame, np.int32)
            return (np.where(obj, -self.delta, self.delta) + frame).astype(np.int32)
        if self.motion:
            out = np.where(obj & moving, -self.delta, np.where(obj, self.static_object, self.delta))
        else:
            out = np.where(obj, -self.delta, self.delta)
        return (out + frame).astype(np.int32)


c8r4_idr = MotionRoi(motion=False)  # cascade8_roi4 with a uniform IDR frame
c8m4 = MotionRoi()  # + static object CTUs coded like background (+4)
c8m4s0 = MotionRoi(static_object=0)  # + static object CTUs at the frame's QP


@dataclass(frozen=True)
class SplitRoi:
    """Rounds 2 and 3: separate object and background offsets on the IDR frame and on the P frames."""

    idr_obj: int = 4
    idr_bg: int = 4
    p_obj: int = 4
    p_bg: int = 8
    frame_level = True
    needs_rgb = False
    needs_regions = True

    @property
    def fingerprint(self) -> str:
        """Identifies the candidate."""
        return f"scratch-splitroi:{cascade8.fingerprint}:{self.idr_obj},{self.idr_bg},{self.p_obj},{self.p_bg}:v1"

    def __call__(self, inputs: PolicyInput) -> np.ndarray:
        """The frame's CTU offsets."""
        frame = cascade8.offset(inputs)
        obj = roi_blocks(inputs.region, inputs.ctu_shape, 16)
        if inputs.gop.position(inputs.frame_index) == 0:
            out = np.where(obj, -self.idr_obj, self.idr_bg)
        else:
            out = np.where(obj, -self.p_obj, self.p_bg)
        return (out + frame).astype(np.int32)


# Round 2 ran these as an equivalent class of their own (fingerprints "scratch-idrroi:...").
c8r4_i8 = SplitRoi(8, 8, 4, 4)  # IDR: objects -8, others +8
c8r4_io8 = SplitRoi(8, 4, 4, 4)  # IDR: objects -8, others +4
c8r4_ib8 = SplitRoi(4, 8, 4, 4)  # IDR: objects -4, others +8
c8_p8 = SplitRoi(4, 4, 4, 8)  # P-frame background +8
c8_io8_p8 = SplitRoi(8, 4, 4, 8)  # and the IDR frame's objects -8
c8_io8_p6 = SplitRoi(8, 4, 4, 6)  # IDR objects -8, P-frame background +6

"""Region-of-interest offsets (the FFmpeg ``addroi`` practice, anchor A3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE
from semrl.policy.base import PolicyInput


@dataclass(frozen=True)
class RoiPolicy:
    """CTUs touching the task net's region, grown by ``dilation`` pixels, get ``-delta``; the others ``+delta``.

    Attributes:
        delta: Offset magnitude in QP steps.
        dilation: Pixels the region is grown by before the CTUs touching it are found.
    """

    delta: int = 8
    dilation: int = 16
    needs_regions = True

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"roi:d={self.delta}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Return ``-delta`` on CTUs touching the dilated region, ``+delta`` elsewhere."""
        inside = roi_ctus(inputs.region, inputs.ctu_shape, self.dilation)
        return np.where(inside, -self.delta, self.delta).astype(np.int32)


def roi_ctus(region: NDArray[np.bool_] | None, ctu_shape: tuple[int, int], dilation: int) -> NDArray[np.bool_]:
    """Which CTUs touch ``region`` grown by ``dilation`` pixels (all False without a region)."""
    rows, cols = ctu_shape
    if region is None or not region.any():
        return np.zeros(ctu_shape, bool)
    h, w = region.shape
    canvas: NDArray[np.bool_] = np.zeros((rows * CTU_SIZE, cols * CTU_SIZE), bool)
    canvas[:h, :w] = region
    if dilation > 0:
        import cv2

        kernel = np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8)
        canvas = np.asarray(cv2.dilate(canvas.astype(np.uint8), kernel)).astype(bool)
    touched = np.asarray(canvas.reshape(rows, CTU_SIZE, cols, CTU_SIZE).any(axis=(1, 3)), dtype=bool)
    return touched

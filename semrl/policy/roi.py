"""Region-of-interest offsets (the FFmpeg ``addroi`` practice, anchor A3), per 64x64 CTU or per 16x16 block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.codec import BLOCK_SIZE, CTU_SIZE
from semrl.errors import InvalidInputError
from semrl.policy.base import PolicyInput


@dataclass(frozen=True)
class RoiPolicy:
    """Blocks touching the task net's region, grown by ``dilation`` pixels, get ``-delta``; the others ``+delta``.

    Attributes:
        delta: Offset magnitude in QP steps.
        dilation: Pixels the region is grown by before the blocks touching it are found.
        block: 64 (one offset per CTU, the usual recipe) or 16 (per 16x16 quantisation group, so
            the fine QP hugs the objects).
    """

    delta: int = 8
    dilation: int = 16
    block: int = CTU_SIZE
    needs_regions = True

    def __post_init__(self) -> None:
        if self.block not in (BLOCK_SIZE, CTU_SIZE):
            raise InvalidInputError(f"ROI block must be {BLOCK_SIZE} or {CTU_SIZE}, got {self.block}")

    @property
    def offset_block(self) -> int:
        """The side of the blocks the offsets vary over."""
        return self.block

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        size = "" if self.block == CTU_SIZE else f":b={self.block}"
        return f"roi:d={self.delta}:dil={self.dilation}{size}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Return ``-delta`` on blocks touching the dilated region, ``+delta`` elsewhere."""
        shape = inputs.ctu_shape if self.block == CTU_SIZE else inputs.block_shape
        inside = roi_blocks(inputs.region, shape, self.dilation, self.block)
        return np.where(inside, -self.delta, self.delta).astype(np.int32)


def roi_blocks(
    region: NDArray[np.bool_] | None, grid: tuple[int, int], dilation: int, block: int = CTU_SIZE
) -> NDArray[np.bool_]:
    """Which ``block`` x ``block`` blocks of a ``grid`` touch ``region`` grown by ``dilation`` pixels.

    All False without a region.
    """
    rows, cols = grid
    if region is None or not region.any():
        return np.zeros(grid, bool)
    h, w = region.shape
    canvas: NDArray[np.bool_] = np.zeros((rows * block, cols * block), bool)
    canvas[:h, :w] = region
    if dilation > 0:
        import cv2

        kernel = np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8)
        canvas = np.asarray(cv2.dilate(canvas.astype(np.uint8), kernel)).astype(bool)
    touched = np.asarray(canvas.reshape(rows, block, cols, block).any(axis=(1, 3)), dtype=bool)
    return touched

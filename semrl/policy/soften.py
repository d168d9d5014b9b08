"""Low-passing what a policy codes coarse before x265 sees it (a pre-filter; the stream stays standard).

A block a policy codes coarser than its base QP is one it judged the task does not need. Its
texture (and, on video, its sensor noise from frame to frame) still costs bits at that QP: x265
codes what it is given. A :class:`Prefilter` smooths the source picture over those blocks first
(a Gaussian of ``sigma`` pixels on luma, half that on the half-size chroma), fading over ``fade``
pixels into the blocks it keeps, so no seam is drawn for the encoder to code;
:class:`SoftenedPolicy` gives one to any policy. The decoder plays the stream as any other; the
task net sees the decoded picture, and fidelity and PSNR are still measured against the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.codec import BLOCK_SIZE, CTU_SIZE, Yuv420
from semrl.errors import InvalidInputError
from semrl.policy.base import PolicyInput, describe


@dataclass(frozen=True)
class Prefilter:
    """Low-pass of the blocks a policy codes coarse, applied to the source before coding.

    A policy declares one as its ``prefilter`` attribute (:class:`SoftenedPolicy` adds one to any
    policy); the benchmark and ``semrl encode`` then code ``soften(frame, offsets)`` instead of
    the frame.

    Attributes:
        sigma: Luma Gaussian sigma in pixels over the blocks it smooths (chroma: half).
        threshold: A block is smoothed where the policy's offset (unclipped, from its base QP) is
            at least this.
        fade: Pixels over which the smoothing fades into the blocks it keeps.
    """

    sigma: float = 1.0
    threshold: int = 1
    fade: float = 8.0

    def __post_init__(self) -> None:
        if not (isinstance(self.sigma, (int, float)) and np.isfinite(self.sigma) and self.sigma > 0):
            raise InvalidInputError(f"the pre-filter's sigma must be a positive number of pixels, got {self.sigma}")
        if not (isinstance(self.fade, (int, float)) and np.isfinite(self.fade) and self.fade >= 0):
            raise InvalidInputError(f"the pre-filter's fade must be 0 or more pixels, got {self.fade}")
        if not isinstance(self.threshold, int):
            raise InvalidInputError(f"the pre-filter's threshold must be a whole QP offset, got {self.threshold}")

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour (part of a policy's fingerprint and of the benchmark's cache keys)."""
        return f"soften:s={self.sigma:g}:t={self.threshold}:f={self.fade:g}"

    def soften(self, frame: Yuv420, offsets: NDArray[np.integer]) -> Yuv420:
        """``frame`` low-passed over the blocks whose ``offsets`` (CTU or 16x16 grid) reach the threshold."""
        return soften_blocks(frame, np.asarray(offsets) >= self.threshold, self.sigma, self.fade)


@dataclass(frozen=True)
class SoftenedPolicy:
    """Any policy, its coarse blocks low-passed in the source before coding.

    Every other attribute (``needs_regions``, ``offset_block``, ``task``, ...) is the wrapped policy's.

    Attributes:
        policy: The wrapped policy: it alone decides the offsets.
        prefilter: What is done to the source.
    """

    policy: Any
    prefilter: Prefilter = field(default_factory=Prefilter)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.policy, name)

    @property
    def fingerprint(self) -> str:
        """The wrapped policy's and the pre-filter's."""
        return f"{describe(self.policy)}+{self.prefilter.fingerprint}"

    def __call__(self, inputs: PolicyInput) -> Any:
        """The wrapped policy's offsets."""
        return self.policy(inputs)


def prefilter_of(policy: object) -> Prefilter | None:
    """The pre-filter a policy declares (its ``prefilter`` attribute); None: its source is coded as it is."""
    prefilter = getattr(policy, "prefilter", None)
    return prefilter if isinstance(prefilter, Prefilter) else None


def soften_blocks(frame: Yuv420, coarse: NDArray[np.bool_], sigma: float, fade: float = 8.0) -> Yuv420:
    """Low-pass ``frame`` over the ``coarse`` blocks of a grid that covers it (64x64 or 16x16 blocks).

    Args:
        frame: The source picture.
        coarse: bool, the blocks to smooth: the picture's 64x64 CTU grid or its 16x16 block grid.
        sigma: Luma Gaussian sigma in pixels (chroma: half, on its half-size planes).
        fade: Pixels over which the smoothing fades out across a block's border.

    Raises:
        InvalidInputError: ``coarse`` is neither grid of the picture.
    """
    import cv2

    coarse = np.asarray(coarse, bool)
    h, w = frame.height, frame.width
    sides = [s for s in (CTU_SIZE, BLOCK_SIZE) if coarse.shape == (-(-h // s), -(-w // s))]
    if not sides:
        raise InvalidInputError(
            f"a {coarse.shape} grid is neither the {CTU_SIZE}x{CTU_SIZE} CTU grid nor the {BLOCK_SIZE}x{BLOCK_SIZE} "
            f"block grid of a {w}x{h} picture"
        )
    side = sides[0]
    if not coarse.any():
        return frame
    weight = np.repeat(np.repeat(coarse.astype(np.float32), side, axis=0), side, axis=1)[:h, :w]
    if fade > 0:
        weight = np.asarray(cv2.GaussianBlur(weight, (0, 0), fade / 2), np.float32)
    half = np.ascontiguousarray(weight[::2, ::2])

    def smooth(plane: NDArray[np.uint8], wt: NDArray[np.float32], s: float) -> NDArray[np.uint8]:
        p = plane.astype(np.float32)
        blurred = cv2.GaussianBlur(p, (0, 0), s)
        return np.clip(np.rint(p + wt * (blurred - p)), 0, 255).astype(np.uint8)

    return Yuv420(smooth(frame.y, weight, sigma), smooth(frame.u, half, sigma / 2), smooth(frame.v, half, sigma / 2))

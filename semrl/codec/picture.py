"""YUV 4:2:0 pictures and the RGB conversions semrl uses everywhere (BT.601, limited range)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from semrl.errors import InvalidInputError

Plane = npt.NDArray[np.uint8]

# BT.601 limited range in 8-bit fixed point, the convention of FFmpeg's rgb24 -> yuv420p.
_RGB_TO_YUV = np.array([[66, 129, 25], [-38, -74, 112], [112, -94, -18]], dtype=np.int32)


def rgb_luma(picture: npt.NDArray[np.uint8] | npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Full-range BT.601 luma of an RGB picture: ``0.299 R + 0.587 G + 0.114 B``, float32 in 0..255.

    The one luma semrl computes from RGB (:meth:`Yuv420.luma` gives the same from a Y plane).

    Args:
        picture: (H, W, 3) RGB, or (H, W) luma already, which is returned as float32.

    Returns:
        (H, W) float32.
    """
    f = picture.astype(np.float32, copy=False)
    if f.ndim == 2:
        return f
    if f.ndim != 3 or f.shape[2] != 3:
        raise InvalidInputError(f"rgb_luma takes an (H, W, 3) RGB or (H, W) luma picture, got shape {f.shape}")
    luma: npt.NDArray[np.float32] = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    return luma


RGB_MATRICES = {"bt601": (409, 100, 208, 516), "bt709": (459, 55, 136, 541)}
"""Each matrix's limited-range YUV to RGB terms, in 256ths: V's in R, U's and V's in G (subtracted),
U's in B (Y's is 298 in all three)."""


@dataclass(frozen=True, eq=False)
class Yuv420:
    """An 8-bit YUV 4:2:0 picture as three planes (Y full size, U and V half size each way).

    Attributes:
        y: luma, shape (height, width).
        u: Cb, shape (height // 2, width // 2).
        v: Cr, shape (height // 2, width // 2).
    """

    y: Plane
    u: Plane
    v: Plane

    def __post_init__(self) -> None:
        for name in ("y", "u", "v"):
            plane = getattr(self, name)
            if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 2:
                raise InvalidInputError(
                    f"Yuv420.{name} must be a 2-D uint8 array, got "
                    f"{type(plane).__name__} {getattr(plane, 'dtype', '')} {getattr(plane, 'shape', '')}"
                )
        height, width = self.y.shape
        if height % 2 or width % 2 or height == 0 or width == 0:
            raise InvalidInputError(f"4:2:0 pictures need an even, non-zero size; got {width}x{height}")
        expected = (height // 2, width // 2)
        if self.u.shape != expected or self.v.shape != expected:
            raise InvalidInputError(
                f"chroma planes of a {width}x{height} picture must be {expected[1]}x{expected[0]}, "
                f"got U {self.u.shape[::-1]} and V {self.v.shape[::-1]}"
            )

    @property
    def width(self) -> int:
        """Picture width in pixels."""
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        """Picture height in pixels."""
        return int(self.y.shape[0])

    @classmethod
    def from_i420(cls, buffer: npt.NDArray[np.uint8], width: int, height: int) -> Yuv420:
        """Splits a packed I420 buffer (as FFmpeg's ``-pix_fmt yuv420p`` writes) into planes."""
        flat = np.ascontiguousarray(buffer).reshape(-1)
        luma, chroma = width * height, (width // 2) * (height // 2)
        if flat.size != luma + 2 * chroma:
            raise InvalidInputError(f"an I420 {width}x{height} picture has {luma + 2 * chroma} bytes, got {flat.size}")
        return cls(
            flat[:luma].reshape(height, width),
            flat[luma : luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma :].reshape(height // 2, width // 2),
        )

    @classmethod
    def from_rgb(cls, rgb: npt.NDArray[np.uint8]) -> Yuv420:
        """Converts an (H, W, 3) uint8 RGB image (BT.601 limited range, 2x2 chroma average)."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InvalidInputError(
                f"an RGB frame must be an (H, W, 3) uint8 array, got {getattr(rgb, 'dtype', type(rgb).__name__)} "
                f"{getattr(rgb, 'shape', '')}"
            )
        height, width = rgb.shape[:2]
        if height % 2 or width % 2:
            raise InvalidInputError(f"4:2:0 pictures need an even size; got {width}x{height}")
        pixels = rgb.astype(np.int32)
        y = (pixels @ _RGB_TO_YUV[0] + 128 + (16 << 8)) >> 8
        # Chroma from the 2x2 mean of RGB: linear, so equal to the mean of full-resolution chroma.
        quads = pixels.reshape(height // 2, 2, width // 2, 2, 3).sum(axis=(1, 3))
        u = (quads @ _RGB_TO_YUV[1] + 512 + (128 << 10)) >> 10
        v = (quads @ _RGB_TO_YUV[2] + 512 + (128 << 10)) >> 10
        return cls(
            np.clip(y, 0, 255).astype(np.uint8),
            np.clip(u, 0, 255).astype(np.uint8),
            np.clip(v, 0, 255).astype(np.uint8),
        )

    def to_rgb(self, matrix: str = "bt601") -> npt.NDArray[np.uint8]:
        """Converts to an (H, W, 3) uint8 RGB image (limited range, nearest chroma).

        Args:
            matrix: the YUV matrix, a key of :data:`RGB_MATRICES`. Everything semrl runs reads
                BT.601's, whatever the source says (``benchmarks/results/colour-matrix``: BT.709's
                on BT.709 clips moved the person AP on real labels by 0.02 points).
        """
        if matrix not in RGB_MATRICES:
            raise InvalidInputError(f"unknown YUV matrix {matrix!r}; choose one of {', '.join(RGB_MATRICES)}")
        vr, ug, vg, ub = RGB_MATRICES[matrix]
        c = self.y.astype(np.int32) - 16
        d = np.repeat(np.repeat(self.u.astype(np.int32) - 128, 2, axis=0), 2, axis=1)
        e = np.repeat(np.repeat(self.v.astype(np.int32) - 128, 2, axis=0), 2, axis=1)
        r = (298 * c + vr * e + 128) >> 8
        g = (298 * c - ug * d - vg * e + 128) >> 8
        b = (298 * c + ub * d + 128) >> 8
        return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)

    def luma(self) -> npt.NDArray[np.float32]:
        """Full-range luma, (H, W) float32 in 0..255: ``0.299 R + 0.587 G + 0.114 B`` of :meth:`to_rgb`.

        The BT.601 weights sum to one, so the chroma terms of :meth:`to_rgb` cancel and the luma
        is ``298 / 256 * (Y - 16)`` (equal to within rounding, and where RGB clips); computed from
        the Y plane alone, about ten times cheaper than converting to RGB.
        """
        luma = (self.y.astype(np.float32) - 16.0) * np.float32(298.0 / 256.0)
        return np.clip(luma, 0.0, 255.0, out=luma)

    def to_i420(self) -> bytes:
        """The packed I420 bytes (Y, then U, then V), as raw ``.yuv`` files hold them."""
        return self.y.tobytes() + self.u.tobytes() + self.v.tobytes()

    def copy(self) -> Yuv420:
        """A deep copy whose planes own their memory."""
        return Yuv420(self.y.copy(), self.u.copy(), self.v.copy())

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Yuv420):
            return NotImplemented
        return all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes, strict=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def planes(self) -> tuple[Plane, Plane, Plane]:
        """The (Y, U, V) planes."""
        return self.y, self.u, self.v


def as_yuv420(frame: Any) -> Yuv420:
    """Accepts a :class:`Yuv420`, an (H, W, 3) uint8 RGB array, or a (Y, U, V) tuple of planes.

    Raises:
        InvalidInputError: for anything else, naming what was given.
    """
    if isinstance(frame, Yuv420):
        return frame
    if isinstance(frame, np.ndarray):
        return Yuv420.from_rgb(frame)
    if isinstance(frame, (tuple, list)) and len(frame) == 3:
        return Yuv420(*frame)
    raise InvalidInputError(
        f"a frame must be a Yuv420, an (H, W, 3) uint8 RGB array or a (Y, U, V) tuple; got {type(frame).__name__}"
    )

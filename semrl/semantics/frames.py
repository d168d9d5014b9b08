"""Frames as semrl passes them around: HxWx3 uint8 arrays, BGR unless a caller says RGB.

BGR is OpenCV's and Ultralytics' order (``cv2.imread``); a frame decoded by FFmpeg as ``rgb24``
is RGB, and every public function that takes frames has ``color="rgb"`` for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_source

ColorOrder = Literal["bgr", "rgb"]
Frame = NDArray[np.uint8]


def check_frame(frame: object, name: str = "frame") -> Frame:
    """Return ``frame`` if it is an HxWx3 uint8 array, else raise InvalidInputError naming it."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise InvalidInputError(
            f"{name} must be a uint8 numpy array, got {getattr(frame, 'dtype', type(frame).__name__)}"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InvalidInputError(f"{name} must have shape (H, W, 3), got {frame.shape}")
    return frame


def to_bgr(frames: Sequence[Frame], color: ColorOrder) -> list[Frame]:
    """Check frames and return them in BGR order (contiguous), converting from RGB if needed."""
    if color not in ("bgr", "rgb"):
        raise InvalidInputError(f"color must be 'bgr' or 'rgb', got {color!r}")
    out = []
    for i, f in enumerate(frames):
        check_frame(f, f"frame {i}")
        out.append(np.ascontiguousarray(f[:, :, ::-1] if color == "rgb" else f))
    return out


def read_image(path: str | os.PathLike[str]) -> Frame:
    """Read an image file as a BGR frame (:func:`semrl.media.read_bgr_image`; a JPEG cut short warns).

    Raises:
        InputNotFoundError: The file does not exist.
        InvalidInputError: The file is not a readable image.
    """
    from semrl.media import read_bgr_image

    return read_bgr_image(Path(path))


def iter_frames(path: str | os.PathLike[str], max_frames: int | None = None) -> Iterator[tuple[str, Frame]]:
    """Yield ``(name, BGR frame)`` from an image, a folder of images or a video.

    Videos are read by :func:`semrl.media.open_source`, the reader encode and training use (so
    their frames are 4:2:0 pictures converted to BGR; an odd size loses its last row or column).

    Args:
        path: Image file, folder (its images in name order, not recursive) or video file.
        max_frames: Stop after this many frames (None: all).

    Raises:
        InputNotFoundError: ``path`` does not exist.
        InvalidInputError: ``path`` is of an unknown kind, an empty folder, or an unreadable video.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"input not found: {p}")
    if max_frames is not None and max_frames < 1:
        raise InvalidInputError(f"max_frames must be at least 1, got {max_frames}")
    limit = max_frames if max_frames is not None else float("inf")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InvalidInputError(f"no images in folder: {p}")
        for n, f in enumerate(files):
            if n >= limit:
                return
            yield f.stem, read_image(f)
        return
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        yield p.stem, read_image(p)
        return
    if suffix not in VIDEO_SUFFIXES:
        raise InvalidInputError(f"not an image, folder or video: {p}")
    n = 0
    with open_source(p, max_frames=max_frames, crop_even=True) as source:
        for n, picture in enumerate(source, start=1):
            yield f"{p.stem}_{n - 1:05d}", np.ascontiguousarray(picture.to_rgb()[:, :, ::-1])
    if n == 0:
        raise InvalidInputError(f"no frames could be decoded from video: {p}")

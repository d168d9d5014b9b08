"""Built-in sample input: a short clip made from an image that ships with Ultralytics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt

from semrl.errors import InputNotFoundError, InvalidInputError


def bundled_image(name: str = "bus.jpg") -> Path:
    """Path of an image bundled with the installed Ultralytics package (bus.jpg, zidane.jpg)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise InputNotFoundError("the ultralytics package is not installed: run scripts/setup.sh")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / name
    if not path.is_file():
        raise InputNotFoundError(f"{name} is not bundled with ultralytics at {path}")
    return path


def sample_clip(
    frames: int = 16, width: int = 640, height: int = 480, image: str = "bus.jpg"
) -> list[npt.NDArray[np.uint8]]:
    """A short RGB clip: a window panning slowly over a bundled photo (real content, real motion).

    Args:
        frames: number of frames.
        width: frame width (even).
        height: frame height (even).
        image: which bundled image.

    Returns:
        ``frames`` arrays of shape (height, width, 3), uint8 RGB.
    """
    import cv2

    path = bundled_image(image)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInputError(f"cannot read image {path}")
    rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    scale = max(width / rgb.shape[1], height / rgb.shape[0]) * 1.25
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    room_x, room_y = rgb.shape[1] - width, rgb.shape[0] - height
    clip = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x, y = round(room_x * t), round(room_y * t / 2)
        clip.append(np.ascontiguousarray(rgb[y : y + height, x : x + width], dtype=np.uint8))
    return clip

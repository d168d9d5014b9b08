"""Pictures of where the bits went: a frame with its per-CTU QP map drawn over it, as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE, QP_MAX
from semrl.files import atomic_write


def draw_qp_map(rgb: NDArray[np.uint8], ctu_qp: NDArray[np.floating], alpha: float = 0.45) -> NDArray[np.uint8]:
    """The frame with each CTU tinted by its QP (red: fine, many bits; blue: coarse), grid and QP numbers.

    Args:
        rgb: (H, W, 3) uint8 RGB frame (the decoded picture).
        ctu_qp: (rows, cols) QP of each 64x64 CTU (its area-average for 16x16 offsets).
        alpha: Weight of the tint.

    Returns:
        (H, W, 3) uint8 BGR image, ready for ``cv2.imencode``.
    """
    import cv2

    h, w = rgb.shape[:2]
    rows, cols = ctu_qp.shape
    levels = np.clip(255.0 * (1.0 - np.asarray(ctu_qp, np.float64) / QP_MAX), 0, 255).astype(np.uint8)
    tint = cv2.applyColorMap(levels, cv2.COLORMAP_JET)  # QP 0 -> red end, QP 51 -> blue end
    tint = cv2.resize(tint, (cols * CTU_SIZE, rows * CTU_SIZE), interpolation=cv2.INTER_NEAREST)[:h, :w]
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    out = cv2.addWeighted(bgr, 1.0 - alpha, tint, alpha, 0.0)
    for r in range(1, rows):
        cv2.line(out, (0, r * CTU_SIZE), (w - 1, r * CTU_SIZE), (255, 255, 255), 1)
    for c in range(1, cols):
        cv2.line(out, (c * CTU_SIZE, 0), (c * CTU_SIZE, h - 1), (255, 255, 255), 1)
    scale = 0.4
    for r in range(rows):
        for c in range(cols):
            text = f"{ctu_qp[r, c]:.0f}"
            x, y = c * CTU_SIZE + 4, r * CTU_SIZE + 14
            if x < w and y < h:
                cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.asarray(out, np.uint8)


def write_qp_map(path: Path, rgb: NDArray[np.uint8], ctu_qp: NDArray[np.floating]) -> Path:
    """Write :func:`draw_qp_map` of a frame as a PNG, atomically; returns the path."""
    import cv2

    ok, png = cv2.imencode(".png", draw_qp_map(rgb, ctu_qp))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise RuntimeError(f"OpenCV could not encode {path}")
    return atomic_write(path, png.tobytes())

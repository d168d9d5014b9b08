"""Pictures of semantic maps people can look at: heat map over the frame with the CTU grid."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE
from semrl.errors import InvalidInputError
from semrl.files import atomic_write
from semrl.semantics.extractors import SemanticExtractor
from semrl.semantics.frames import Frame, iter_frames
from semrl.semantics.maps import SemanticMap


@dataclass(frozen=True)
class WrittenMap:
    """Files written for one frame."""

    name: str
    png: Path
    csv: Path
    ctu_importance: NDArray[np.float32]


def overlay(frame: Frame, smap: SemanticMap, alpha: float = 0.5) -> Frame:
    """BGR picture of the frame with the map as a JET heat map and the CTU grid in white."""
    import cv2

    if smap.shape != frame.shape[:2]:
        raise InvalidInputError(f"map {smap.shape} does not match frame {frame.shape[:2]}")
    heat = cv2.applyColorMap((smap.values * 255).round().astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(frame, 1.0 - alpha, heat, alpha, 0.0)
    out[:, ::CTU_SIZE] = 255
    out[::CTU_SIZE, :] = 255
    return np.ascontiguousarray(out, dtype=np.uint8)


def ctu_csv(grid: NDArray[np.floating]) -> str:
    """CSV of a CTU grid: one row per CTU in raster order (index, row, col, x, y, importance)."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["ctu", "row", "col", "x", "y", "importance"])
    rows, cols = grid.shape
    for r in range(rows):
        for c in range(cols):
            wr.writerow([r * cols + c, r, c, c * CTU_SIZE, r * CTU_SIZE, f"{float(grid[r, c]):.6f}"])
    return buf.getvalue()


def write_maps(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    extractor: SemanticExtractor,
    max_frames: int | None = None,
    batch: int = 8,
) -> list[WrittenMap]:
    """Write ``<name>_map.png`` (heat map and CTU grid) and ``<name>_ctu.csv`` for each frame.

    Args:
        source: Image, folder of images, or video (its first ``max_frames`` frames).
        out_dir: Output folder (created with the first map, so a source that cannot be read leaves none).
        extractor: Computes the maps (e.g. :func:`semrl.semantics.make_extractor`).
        max_frames: Most frames to take from ``source`` (None: all).
        batch: Frames per extraction call.

    Returns:
        What was written, per frame.

    Raises:
        InputNotFoundError: ``source`` does not exist.
        InvalidInputError: ``source`` is not an image, folder or video.
    """
    import cv2

    out = Path(out_dir)
    written: list[WrittenMap] = []
    pending: list[tuple[str, Frame]] = []

    def flush() -> None:
        maps = extractor.extract([f for _, f in pending])
        out.mkdir(parents=True, exist_ok=True)
        for (name, frame), smap in zip(pending, maps, strict=True):
            ok, png = cv2.imencode(".png", overlay(frame, smap))
            if not ok:
                raise InvalidInputError(f"cannot encode PNG for {name}")
            grid = smap.ctu_grid()
            png_path, csv_path = out / f"{name}_map.png", out / f"{name}_ctu.csv"
            atomic_write(png_path, png.tobytes())
            atomic_write(csv_path, ctu_csv(grid).encode())
            written.append(WrittenMap(name, png_path, csv_path, grid))
        pending.clear()

    for name, frame in iter_frames(source, max_frames):
        pending.append((name, frame))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return written

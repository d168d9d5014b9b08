"""Semantic maps (per-pixel task importance in 0..1) and their pooling to the CTU grid.

Only numpy is imported here, so env and agent code can use maps without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from semrl.codec import BLOCK_SIZE, CTU_SIZE, Reduce, pool_map
from semrl.errors import InvalidInputError

Task = Literal["detection", "segmentation", "classification"]
TASKS: tuple[Task, ...] = ("detection", "segmentation", "classification")
"""The vision tasks semrl codes for: the one list every layer above reads."""


@dataclass(frozen=True, eq=False)
class TaskOutput:
    """What the task net itself said about a frame, kept beside its map for the object-level fidelity terms.

    Attributes:
        boxes: float32 (N, 4) xyxy boxes in pixels of the objects found (detection, and the boxes
            of segmentation instances), in descending confidence.
        conf: float32 (N,) their confidences.
        cls: int64 (N,) their classes.
        probs: float32 (C,) class probabilities (classification), or None.
    """

    boxes: NDArray[np.float32]
    conf: NDArray[np.float32]
    cls: NDArray[np.int64]
    probs: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.conf.shape != (n,) or self.cls.shape != (n,):
            raise InvalidInputError(
                f"TaskOutput: boxes {self.boxes.shape}, conf {self.conf.shape} and cls {self.cls.shape} disagree"
            )
        if self.probs is not None and self.probs.ndim != 1:
            raise InvalidInputError(f"TaskOutput: probs must be 1-D, got shape {self.probs.shape}")

    @staticmethod
    def objects(boxes: NDArray[np.floating], conf: NDArray[np.floating], cls: NDArray[np.integer]) -> TaskOutput:
        """Objects found by a detector or segmenter."""
        return TaskOutput(
            np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(conf, np.float32), np.asarray(cls, np.int64)
        )

    @staticmethod
    def classes(probs: NDArray[np.floating]) -> TaskOutput:
        """Class probabilities of a classifier."""
        return TaskOutput(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.asarray(probs, np.float32)
        )


@dataclass(frozen=True, eq=False)
class SemanticMap:
    """Per-pixel importance of a frame for a vision task.

    Attributes:
        values: float32 array (H, W) in 0..1, at the frame's resolution.
        task: The task the map serves.
        method: How it was computed (``"boxes"``, ``"class_scores"``, ``"masks"``, ``"gradcam"``,
            ``"gradient"``, ``"fake"``).
        output: The task net's own output on the frame (objects or class probabilities) where the
            method computes it (boxes, masks, Grad-CAM, fakes), else None.
    """

    values: NDArray[np.float32]
    task: Task
    method: str
    output: TaskOutput | None = None

    def __post_init__(self) -> None:
        v = self.values
        if not isinstance(v, np.ndarray) or v.ndim != 2 or v.dtype != np.float32:
            raise InvalidInputError(
                f"SemanticMap.values must be a 2-D float32 array, got "
                f"{getattr(v, 'shape', None)} {getattr(v, 'dtype', type(v).__name__)}"
            )
        if v.size and (not np.isfinite(v).all() or v.min() < 0.0 or v.max() > 1.0):
            raise InvalidInputError(f"SemanticMap.values must be finite and in 0..1, got {v.min()}..{v.max()}")
        if self.task not in TASKS:
            raise InvalidInputError(f"unknown task {self.task!r}; expected one of {TASKS}")

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    def ctu_grid(self, reduce: Reduce = "mean") -> NDArray[np.float32]:
        """Pool to the 64x64 CTU grid (rows, cols) in raster order; see :func:`pool_map`."""
        return pool_map(self.values, CTU_SIZE, reduce)

    def offset_grid(self, reduce: Reduce = "mean") -> NDArray[np.float32]:
        """Pool to the 16x16 quantisation-offset grid; see :func:`pool_map`."""
        return pool_map(self.values, BLOCK_SIZE, reduce)


def box_map(
    shape: tuple[int, int],
    boxes: NDArray[np.floating],
    weights: NDArray[np.floating],
    margin: int = 0,
) -> NDArray[np.float32]:
    """Rasterise boxes into a map: each pixel takes the largest weight of the boxes covering it.

    Args:
        shape: (H, W) of the map.
        boxes: (N, 4) xyxy boxes in pixels.
        weights: (N,) values in 0..1, e.g. confidence times class weight.
        margin: Pixels added on every side of each box (context the detector also uses).

    Returns:
        float32 map (H, W) in 0..1.
    """
    h, w = shape
    out = np.zeros((h, w), dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    weights = np.clip(np.asarray(weights, dtype=np.float64).reshape(-1), 0.0, 1.0)
    if len(boxes) != len(weights):
        raise InvalidInputError(f"{len(boxes)} boxes but {len(weights)} weights")
    for (x0, y0, x1, y1), wt in zip(boxes, weights, strict=True):
        c0 = int(max(np.floor(x0) - margin, 0))
        r0 = int(max(np.floor(y0) - margin, 0))
        c1 = int(min(np.ceil(x1) + margin, w))
        r1 = int(min(np.ceil(y1) + margin, h))
        if c1 > c0 and r1 > r0:
            region = out[r0:r1, c0:c1]
            np.maximum(region, np.float32(wt), out=region)
    return out


def normalise(values: NDArray[np.floating], percentile: float = 100.0) -> NDArray[np.float32]:
    """Scale a non-negative map so its ``percentile`` value becomes 1, clipping above.

    A map that is all zeros stays all zeros.
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.maximum(v, 0.0)
    top = float(np.percentile(v, percentile)) if v.size else 0.0
    if top <= 0.0:
        top = float(v.max()) if v.size else 0.0
    if top <= 0.0:
        return np.zeros_like(v, dtype=np.float32)
    scaled: NDArray[np.float32] = np.clip(v / top, 0.0, 1.0).astype(np.float32)
    return scaled

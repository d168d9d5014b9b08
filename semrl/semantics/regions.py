"""The task net's regions of interest on original frames: what region-of-interest coding protects.

Detection: the boxes of objects found with confidence >= :data:`REGION_CONF` (Ultralytics'
predict default); segmentation: the union of their instance masks; classification: where the
classifier's Grad-CAM is at least :data:`GRADCAM_THRESHOLD` of its maximum.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.semantics.frames import ColorOrder, Frame
from semrl.semantics.yolo import Detections, InferenceSettings, YoloNet

REGION_CONF = 0.25
"""Confidence from which an object counts (Ultralytics' predict default)."""

GRADCAM_THRESHOLD = 0.5
"""Grad-CAM level (of a maximum of 1) above which a pixel is in a classifier's region."""


@dataclass(frozen=True, eq=False)
class TaskRegions:
    """The task net's output on one original frame.

    Attributes:
        region: bool (H, W), the pixels the task net marks as relevant.
        boxes: float32 (N, 4) xyxy boxes of the objects (empty for classification).
        cls: int64 (N,) their classes.
        conf: float32 (N,) their confidences.
    """

    region: NDArray[np.bool_]
    boxes: NDArray[np.float32]
    cls: NDArray[np.int64]
    conf: NDArray[np.float32]


def box_region(boxes: NDArray[np.floating], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """The pixels of a (H, W) frame inside any of the xyxy ``boxes`` (a detector's region of interest)."""
    region: NDArray[np.bool_] = np.zeros(shape, bool)
    for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
        region[int(max(y0, 0)) : math.ceil(y1), int(max(x0, 0)) : math.ceil(x1)] = True
    return region


def task_regions(
    net: YoloNet,
    frames: Sequence[Frame],
    *,
    color: ColorOrder = "bgr",
    imgsz: int = 640,
    chunk: int = 8,
    settings: InferenceSettings | None = None,
    classes: Collection[int] | None = None,
) -> list[TaskRegions]:
    """Runs the task net on original frames and returns each frame's region of interest.

    Args:
        net: a detection, segmentation or classification net.
        frames: (H, W, 3) uint8 frames.
        color: channel order of ``frames``.
        imgsz: network input size for detection and segmentation.
        chunk: frames per forward pass (bounds the memory of full-resolution masks).
        settings: detection settings; default predict-like (``conf`` :data:`REGION_CONF`, one
            label per box). Objects below :data:`REGION_CONF` are dropped in any case.
        classes: keep only objects of these class ids (a classifier's region is empty when its
            top-1 class is not among them); None keeps all.
    """
    wanted = None if classes is None else np.asarray(sorted(classes), np.int64)
    if net.task == "classification":
        from semrl.semantics.config import MapConfig
        from semrl.semantics.extractors import YoloMapExtractor

        extractor = YoloMapExtractor(MapConfig(task="classification"), net=net)
        maps = extractor.extract(list(frames), color=color)
        no_objects = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        out = []
        for m in maps:
            cam = np.asarray(m.values >= GRADCAM_THRESHOLD)
            probs = None if m.output is None else m.output.probs
            if wanted is not None and probs is not None and int(np.argmax(probs)) not in wanted:
                cam = np.zeros_like(cam)
            out.append(TaskRegions(cam, *no_objects))
        return out
    settings = settings or InferenceSettings(imgsz=imgsz, conf=REGION_CONF, multi_label=False, batch=chunk)
    regions = []
    for start in range(0, len(frames), chunk):
        found = net.detect(frames[start : start + chunk], settings, color=color)
        regions += [object_regions(f, classes) for f in found]
    return regions


def object_regions(found: Detections, classes: Collection[int] | None = None) -> TaskRegions:
    """A detection or segmentation net's region of interest on one frame, from its output there.

    Args:
        found: The net's objects on the frame (any confidence threshold up to :data:`REGION_CONF`).
        classes: Keep only objects of these class ids; None keeps all.
    """
    found = found.above(REGION_CONF)
    if classes is not None:
        found = found.subset(np.isin(found.cls, np.asarray(sorted(classes), np.int64)))
    region: NDArray[np.bool_] = np.zeros(found.shape, bool)
    if found.masks is not None:
        if len(found):
            region = np.asarray(found.masks.any(axis=0), dtype=bool)
    else:
        region = box_region(found.boxes, found.shape)
    return TaskRegions(
        region, found.boxes.astype(np.float32), found.cls.astype(np.int64), found.conf.astype(np.float32)
    )

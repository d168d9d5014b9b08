"""Segmentation fidelity: mask mAP (see :mod:`semrl.fidelity.detection`) and semantic mIoU.

Mask mAP against labels uses predictions made with :data:`MASK_EVAL`, which carry val's own masks
on the prototype grid of the letterboxed input (``Detections.grid_masks``), and labels read with
the same letterbox (``read_yolo_labels(..., masks=True, letterbox=pred.letterbox)``): the IoU is
then val's, and so is the score (equal to ``YOLO(...).val(batch=1)``'s).

mIoU compares class maps built from the instances with confidence >= ``conf`` (pseudo ground
truth on the uncompressed frame, the same rule on the decoded frame); the same predictions score
exactly 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError
from semrl.fidelity.detection import PSEUDO_GT_CONF
from semrl.semantics.yolo import Detections, InferenceSettings

MASK_EVAL = InferenceSettings(coarse_masks=True)
"""Settings of segmentation predictions scored by mask mAP against labels (Ultralytics val's,
masks kept on val's mask grid)."""

MASK_SCORE = InferenceSettings(coarse_masks=True, native_masks=False)
""":data:`MASK_EVAL` without the masks at the frame's resolution: for predictions matched only
against targets on the same mask grid (labels read with the prediction's letterbox, or the net's
own finds made so), where mask mAP reads the grid alone and scores as with :data:`MASK_EVAL`."""


def class_map(d: Detections, conf: float = PSEUDO_GT_CONF) -> NDArray[np.int64]:
    """(H, W) class id per pixel (-1 background) from instances with confidence >= conf.

    Where instances overlap, the more confident one wins.
    """
    if d.masks is None:
        raise InvalidInputError("class_map needs instance masks")
    out = np.full(d.shape, -1, np.int64)
    keep = np.flatnonzero(d.conf >= conf)
    for i in keep[np.argsort(d.conf[keep], kind="stable")]:  # most confident painted last
        out[d.masks[i]] = d.cls[i]
    return out


def mean_iou(
    predictions: Sequence[Detections],
    targets: Sequence[Detections],
    conf: float = PSEUDO_GT_CONF,
) -> float:
    """Mean over object classes of IoU of class maps, intersections and unions summed over frames.

    Args:
        predictions: Instances on the decoded frames (with masks).
        targets: Instances on the uncompressed frames (pseudo ground truth) or labels.
        conf: Instances below this confidence are ignored on both sides (labels have 1.0).

    Returns:
        mIoU in 0..1 over the classes present in either side (background not counted); NaN when
        neither side has any object.
    """
    if len(predictions) != len(targets):
        raise InvalidInputError(f"{len(predictions)} predictions but {len(targets)} targets")
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    for p, t in zip(predictions, targets, strict=True):
        if p.shape != t.shape:
            raise InvalidInputError(f"prediction frame {p.shape} != target frame {t.shape}")
        a, b = class_map(p, conf), class_map(t, conf)
        for c in np.union1d(np.unique(a), np.unique(b)):
            if c < 0:
                continue
            pa, pb = a == c, b == c
            inter[int(c)] = inter.get(int(c), 0) + int((pa & pb).sum())
            union[int(c)] = union.get(int(c), 0) + int((pa | pb).sum())
    ious = [inter[c] / union[c] for c in union if union[c] > 0]
    return float(np.mean(ious)) if ious else float("nan")

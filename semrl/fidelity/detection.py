"""Detection and instance-segmentation fidelity: mAP50-95 and mAP50 with Ultralytics' metrics.

Matching is Ultralytics' own (``BaseValidator.match_predictions``, greedy by confidence at ten
IoU thresholds 0.50..0.95) and the AP is ``ultralytics.utils.metrics.ap_per_class``, so the
numbers are those of ``YOLO(...).val(...)`` when the predictions come from
:meth:`semrl.semantics.yolo.YoloNet.detect` with its default (val) settings.

For video without labels, :func:`pseudo_ground_truth` keeps the predictions on the uncompressed
frame above a confidence; scoring those same predictions against it gives exactly 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError
from semrl.semantics.yolo import Detections

PSEUDO_GT_CONF = 0.25
"""Confidence above which the uncompressed frame's detections become pseudo ground truth
(Ultralytics' predict default)."""

_MASK_CHUNK = 32  # predicted masks per IoU matmul, bounds memory at native resolution


@dataclass(frozen=True)
class DetectionScore:
    """mAP of a set of frames.

    Attributes:
        map50_95: Mean over classes present in the ground truth of AP averaged over IoU
            0.50..0.95; NaN when the ground truth has no object.
        map50: The same at IoU 0.50.
        images: Number of frames scored.
        objects: Number of ground-truth objects.
    """

    map50_95: float
    map50: float
    images: int
    objects: int


def _iouv() -> Any:
    import torch

    return torch.linspace(0.5, 0.95, 10)


def _match(pred_cls: Any, true_cls: Any, iou: Any) -> NDArray[np.bool_]:
    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.engine.validator import BaseValidator

    class _Matcher:
        iouv = _iouv()

    # Reuse Ultralytics' matching so the metric is val's, not a re-implementation.
    correct = BaseValidator.match_predictions(_Matcher(), pred_cls, true_cls, iou)  # type: ignore[arg-type]
    return np.asarray(correct.cpu().numpy(), dtype=bool)


def _mask_iou(gt: NDArray[np.bool_], pred: NDArray[np.bool_]) -> Any:
    import torch
    from ultralytics.utils.metrics import mask_iou

    g = torch.from_numpy(gt.reshape(len(gt), -1)).float()
    cols = []
    for s in range(0, len(pred), _MASK_CHUNK):
        p = torch.from_numpy(pred[s : s + _MASK_CHUNK].reshape(-1, g.shape[1])).float()
        cols.append(mask_iou(g, p))
    return torch.cat(cols, dim=1)


def correct_matrix(
    pred: Detections, target: Detections, kind: Literal["box", "mask"] = "box"
) -> NDArray[np.bool_]:
    """Which predictions are true positives at each of the ten IoU thresholds.

    Args:
        pred: Predictions on one frame, in descending confidence.
        target: Ground truth of the same frame.
        kind: Match boxes or instance masks.

    Returns:
        bool array (len(pred), 10).
    """
    import torch

    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.utils.metrics import box_iou

    if pred.shape != target.shape:
        raise InvalidInputError(f"prediction frame {pred.shape} != ground truth frame {target.shape}")
    if len(pred) == 0 or len(target) == 0:
        return np.zeros((len(pred), 10), bool)
    order = np.argsort(-pred.conf, kind="stable")
    if kind == "box":
        iou = box_iou(torch.from_numpy(target.boxes), torch.from_numpy(pred.boxes[order]))
    else:
        if pred.masks is None or target.masks is None:
            raise InvalidInputError("mask mAP needs masks on predictions and ground truth")
        iou = _mask_iou(target.masks, pred.masks[order])
    correct = _match(torch.from_numpy(pred.cls[order]), torch.from_numpy(target.cls), iou)
    out = np.zeros_like(correct)
    out[order] = correct
    return out


def mean_average_precision(
    predictions: Sequence[Detections],
    targets: Sequence[Detections],
    kind: Literal["box", "mask"] = "box",
) -> DetectionScore:
    """mAP50-95 and mAP50 of predictions against ground truth (labels or pseudo ground truth).

    Args:
        predictions: Per frame, from :meth:`YoloNet.detect` with val settings (conf 0.001).
        targets: Per frame, e.g. :func:`semrl.fidelity.labels.read_yolo_labels` or
            :func:`pseudo_ground_truth`.
        kind: ``"box"`` (detection mAP) or ``"mask"`` (instance-segmentation mask mAP).

    Returns:
        The score over all frames together (AP per class over the pooled detections, as val).
    """
    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.utils.metrics import ap_per_class

    if len(predictions) != len(targets):
        raise InvalidInputError(f"{len(predictions)} predictions but {len(targets)} targets")
    tps, confs, pcls, tcls = [], [], [], []
    for p, t in zip(predictions, targets, strict=True):
        tps.append(correct_matrix(p, t, kind))
        confs.append(p.conf)
        pcls.append(p.cls)
        tcls.append(t.cls)
    target_cls = np.concatenate(tcls) if tcls else np.zeros(0)
    n_obj = len(target_cls)
    if n_obj == 0:
        return DetectionScore(float("nan"), float("nan"), len(predictions), 0)
    tp = np.concatenate(tps)
    if len(tp) == 0:
        return DetectionScore(0.0, 0.0, len(predictions), n_obj)
    res = ap_per_class(tp, np.concatenate(confs), np.concatenate(pcls), target_cls, plot=False)
    ap = res[5]
    return DetectionScore(float(ap.mean()), float(ap[:, 0].mean()), len(predictions), n_obj)


def pseudo_ground_truth(
    predictions: Sequence[Detections], conf: float = PSEUDO_GT_CONF
) -> list[Detections]:
    """Turn predictions on uncompressed frames into ground truth: those with confidence >= conf.

    Use the same predictions (same net, same settings) that score the uncompressed frames, so
    that they score exactly 1.0 against this ground truth.
    """
    out = []
    for p in predictions:
        g = p.above(conf)
        out.append(Detections(g.boxes, np.ones(len(g), np.float32), g.cls, g.shape, g.masks))
    return out

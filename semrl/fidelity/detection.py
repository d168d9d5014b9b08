"""Detection and instance-segmentation fidelity: mAP50-95 and mAP50.

Matching is Ultralytics' own (``BaseValidator.match_predictions``, greedy by confidence at ten
IoU thresholds 0.50..0.95). Two ways of turning the matches into AP are offered:

- ``"ultralytics"`` (the default, for labelled data): ``ultralytics.utils.metrics.ap_per_class``,
  so the numbers are those of ``YOLO(...).val(...)`` when the predictions come from
  :meth:`semrl.semantics.yolo.YoloNet.detect` with its default (val) settings. Its precision
  envelope ends with a sentinel precision of 0 at recall 1, which the 101-point trapezoid
  averages in: a perfect result scores 0.995, not 1.
- ``"coco"`` (for pseudo ground truth): the COCO evaluation's 101-point interpolated AP as
  pycocotools computes it: the precision envelope read at recall thresholds
  ``np.linspace(0, 1, 101)`` (0 beyond the highest recall reached) and averaged. A perfect
  result scores exactly 1.0, so "no loss of task fidelity" reads as 1.0.

The metric is built from per-frame pieces, so that a benchmark can pool any subset of frames (a
bootstrap resample) without matching again: :func:`match_frame` turns one frame's predictions and
ground truth into a :class:`FrameMatches` record, and :func:`average_precision` turns pooled
records into mAP by either AP method. :func:`mean_average_precision` is the two in sequence.

For video without labels, :func:`pseudo_target` keeps one uncompressed frame's predictions above
a confidence as its ground truth (:func:`pseudo_ground_truth` for many frames), and
:func:`pseudo_gt_map` scores decoded frames against it with COCO AP; the uncompressed frame's own
predictions score exactly 1.0. With a higher confidence for the ground truth, the original's less
sure finds become "don't care" (:func:`dont_care_subset`), so the detector's own doubtful finds
(on surveillance video, mostly its mistakes) neither reward nor cost a coding.

Mask mAP compares masks where Ultralytics' val does, on the mask grid of the letterboxed network
input (``Detections.grid_masks``), when predictions and ground truth both carry it: predictions
made with :data:`semrl.fidelity.segmentation.MASK_EVAL` and labels read with their letterbox.
Otherwise it compares the masks at the frame's resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError
from semrl.semantics.yolo import Detections

PSEUDO_GT_CONF = 0.25
"""Confidence above which the uncompressed frame's detections become pseudo ground truth
(Ultralytics' predict default)."""

_MASK_CHUNK = 32  # predicted masks per IoU matmul, bounds memory at native resolution

APMethod = Literal["ultralytics", "coco"]
"""How matches become AP: Ultralytics val's ``ap_per_class`` or COCO's 101-point AP."""

COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""pycocotools' ``recThrs``: the recall levels at which COCO AP reads the precision envelope."""


@dataclass(frozen=True)
class DetectionScore:
    """mAP of a set of frames.

    Attributes:
        map50_95: Mean over classes present in the ground truth of AP averaged over IoU
            0.50..0.95; NaN when the ground truth has no object.
        map50: The same at IoU 0.50.
        images: Number of frames scored.
        objects: Number of ground-truth objects.
        map50_95_objects: AP averaged over IoU 0.50..0.95 per class, averaged over the classes
            weighted by their ground-truth objects: every object counts alike, so a class seen
            once moves it by its share of the objects, not by a whole class's share as in
            ``map50_95``; NaN when the ground truth has no object.
    """

    map50_95: float
    map50: float
    images: int
    objects: int
    map50_95_objects: float = float("nan")


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


def box_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy: (N, M)."""
    a64, b64 = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a64[:, None, 0], b64[None, :, 0])
    y0 = np.maximum(a64[:, None, 1], b64[None, :, 1])
    x1 = np.minimum(a64[:, None, 2], b64[None, :, 2])
    y1 = np.minimum(a64[:, None, 3], b64[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a64[:, 2] - a64[:, 0]) * (a64[:, 3] - a64[:, 1])
    area_b = (b64[:, 2] - b64[:, 0]) * (b64[:, 3] - b64[:, 1])
    out: NDArray[np.float64] = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)
    return out


def same_class_iou(
    a: NDArray[np.floating], a_cls: NDArray[np.integer], b: NDArray[np.floating], b_cls: NDArray[np.integer]
) -> NDArray[np.float64]:
    """:func:`box_iou` of every box of ``a`` with every box of ``b`` where their classes agree, 0 elsewhere: (N, M)."""
    out: NDArray[np.float64] = box_iou(a, b) * (np.asarray(a_cls)[:, None] == np.asarray(b_cls)[None, :])
    return out


def box_overlaps(boxes: NDArray[np.floating], others: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Whether each xyxy box of ``boxes`` (N, 4) shares a positive area with any box of ``others`` (M, 4)."""
    a, b = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(others, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    out: NDArray[np.bool_] = np.asarray(((w > 0) & (h > 0)).any(axis=1), bool)
    return out


def correct_matrix(pred: Detections, target: Detections, kind: Literal["box", "mask"] = "box") -> NDArray[np.bool_]:
    """Which predictions are true positives at each of the ten IoU thresholds.

    Args:
        pred: Predictions on one frame, in descending confidence.
        target: Ground truth of the same frame.
        kind: Match boxes or instance masks. Masks are compared on val's mask grid when both
            sides carry ``grid_masks`` (on the same letterboxed input), else at the frame's
            resolution.

    Returns:
        bool array (len(pred), 10).
    """
    import torch

    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.utils.metrics import box_iou

    if pred.shape != target.shape:
        raise InvalidInputError(f"prediction frame {pred.shape} != target frame {target.shape}")
    if len(pred) == 0 or len(target) == 0:
        return np.zeros((len(pred), 10), bool)
    order = np.argsort(-pred.conf, kind="stable")
    if kind == "box":
        iou = box_iou(torch.from_numpy(target.boxes), torch.from_numpy(pred.boxes[order]))
    else:
        if pred.grid_masks is not None and target.grid_masks is not None:
            assert pred.letterbox is not None and target.letterbox is not None
            if pred.letterbox.input_shape != target.letterbox.input_shape:
                raise InvalidInputError(
                    f"prediction mask grid of input {pred.letterbox.input_shape} != target's "
                    f"{target.letterbox.input_shape}"
                )
            iou = _mask_iou(target.grid_masks, pred.grid_masks[order])
        elif pred.masks is None or target.masks is None:
            raise InvalidInputError("mask mAP needs masks on predictions and ground truth")
        else:
            iou = _mask_iou(target.masks, pred.masks[order])
    correct = _match(torch.from_numpy(pred.cls[order]), torch.from_numpy(target.cls), iou)
    out = np.zeros_like(correct)
    out[order] = correct
    return out


def coco_ap_per_class(
    tp: NDArray[np.bool_],
    conf: NDArray[np.floating[Any]],
    pred_cls: NDArray[Any],
    target_cls: NDArray[Any],
) -> NDArray[np.float64]:
    """COCO's 101-point interpolated AP per class and IoU threshold (pycocotools' ``accumulate``).

    Detections are ranked by confidence (stable, as pycocotools' mergesort); precision is made
    non-increasing from the right (the envelope) and read at each recall threshold of
    :data:`COCO_RECALL_THRESHOLDS` at the first rank whose recall reaches it, 0 where recall
    never does; AP is the mean of the 101 readings. Unlike ``ap_per_class`` no precision-0
    sentinel is appended at recall 1, so a perfect ranking scores exactly 1.0.

    Args:
        tp: bool (N, T): detection n is a true positive at IoU threshold t.
        conf: (N,) confidences.
        pred_cls: (N,) predicted classes.
        target_cls: (M,) ground-truth classes of all frames.

    Returns:
        (C, T) AP for the C classes of ``np.unique(target_cls)``, in that order.
    """
    pooled = PooledMatches([FrameMatches(tp, conf, pred_cls, target_cls)], "coco")
    return pooled.coco_rows(None, pooled.class_counts(None)).reshape(len(pooled.classes), tp.shape[1])


def _coco_ap_ranked(
    hits: NDArray[np.bool_], n_gt: float, weight: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """COCO AP per IoU threshold of one class's detections, ranked by confidence.

    The interpolated precision at a recall threshold is the best precision at any rank from the
    first that reaches it, and precision peaks at true positives (it falls at each false one), so
    only the true positives' ranks are visited: the same sums as over every rank, 2x faster.

    Args:
        hits: bool (N, T) true positives, best confidence first.
        n_gt: Ground-truth objects of the class (> 0).
        weight: (N,) times each detection counts (0: left out); None: once. The same as
            repeating the rows.
    """
    ap = np.zeros(hits.shape[1])
    w = np.ones(len(hits)) if weight is None else weight
    counted = w > 0
    total = np.cumsum(w)
    for t in range(hits.shape[1]):
        rows = np.flatnonzero(hits[:, t] & counted)
        if len(rows) == 0:
            continue
        tpc = np.cumsum(w[rows])
        precision = tpc / total[rows]
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(tpc / n_gt, COCO_RECALL_THRESHOLDS, side="left")
        ap[t] = envelope[at[at < len(rows)]].sum() / len(COCO_RECALL_THRESHOLDS)
    return ap


@dataclass(frozen=True, eq=False)
class FrameMatches:
    """One frame's predictions matched against its ground truth: all that AP needs of the frame.

    Records of any set of frames pool into the mAP of that set (:func:`average_precision`).

    Attributes:
        tp: bool (N, 10): prediction n is a true positive at IoU threshold 0.50 + 0.05 t.
        conf: (N,) the predictions' confidences.
        pred_cls: int64 (N,) their classes.
        target_cls: int64 (M,) the ground truth's classes.
    """

    tp: NDArray[np.bool_]
    conf: NDArray[np.floating[Any]]
    pred_cls: NDArray[np.int64]
    target_cls: NDArray[np.int64]


def match_frame(pred: Detections, target: Detections, kind: Literal["box", "mask"] = "box") -> FrameMatches:
    """Match one frame's predictions against its ground truth (:func:`correct_matrix`).

    Args:
        pred: Predictions on the frame.
        target: Its ground truth (labels or :func:`pseudo_target`).
        kind: ``"box"`` or ``"mask"``, as in :func:`correct_matrix`.
    """
    return FrameMatches(
        correct_matrix(pred, target, kind),
        pred.conf,
        pred.cls.astype(np.int64),
        target.cls.astype(np.int64),
    )


def average_precision(records: Sequence[FrameMatches], ap_method: APMethod = "ultralytics") -> DetectionScore:
    """mAP50-95 and mAP50 of frames from their match records, pooled as val pools them.

    Args:
        records: Per frame, from :func:`match_frame`; any subset or resample of a set of frames.
        ap_method: ``"ultralytics"`` reproduces ``YOLO(...).val(...)`` (a perfect result
            scores 0.995); ``"coco"`` is pycocotools' 101-point AP (a perfect result scores
            1.0), the choice against pseudo ground truth.

    Returns:
        AP per class over the pooled detections, averaged over the classes of the ground truth.
    """
    return PooledMatches(records, ap_method).score()


class PooledMatches:
    """Match records of a set of frames pooled once: the mAP of the set, or of any draw of its frames.

    A bootstrap recomputes the mAP of hundreds of resamples, each a draw of the frames with
    repetition. Pooling once (for COCO's AP also ranking by confidence and splitting by class)
    and weighting every frame by the times it is drawn gives each resample's mAP as pooling
    the drawn frames' records would, without copying them. Detections of equal confidence
    keep frame order, where a pooled resample keeps draw order; that is the only difference.

    Args:
        records: Per frame, from :func:`match_frame`.
        ap_method: As in :func:`average_precision`.

    Raises:
        InvalidInputError: An unknown ``ap_method``.
    """

    def __init__(self, records: Sequence[FrameMatches], ap_method: APMethod = "ultralytics") -> None:
        if ap_method not in ("ultralytics", "coco"):
            raise InvalidInputError(f"ap_method must be 'ultralytics' or 'coco', not {ap_method!r}")
        self.ap_method = ap_method
        self.frames = len(records)
        frame_of = np.arange(self.frames)
        self.tp = np.concatenate([r.tp for r in records]) if records else np.zeros((0, 10), bool)
        self.conf = np.concatenate([r.conf for r in records]) if records else np.zeros(0, np.float32)
        self.pred_cls = np.concatenate([r.pred_cls for r in records]) if records else np.zeros(0, np.int64)
        self.target_cls = np.concatenate([r.target_cls for r in records]) if records else np.zeros(0, np.int64)
        self.pred_frame = np.repeat(frame_of, [len(r.conf) for r in records])
        self.target_frame = np.repeat(frame_of, [len(r.target_cls) for r in records])
        self.classes = np.unique(self.target_cls)
        self._ranked: list[tuple[NDArray[np.bool_], NDArray[np.int64]]] = []
        if ap_method == "coco":
            rank = np.argsort(-self.conf, kind="stable")
            tp, cls, frame = self.tp[rank], self.pred_cls[rank], self.pred_frame[rank]
            self._ranked = [(tp[cls == c], frame[cls == c]) for c in self.classes]

    def score(self, draws: NDArray[np.int64] | None = None) -> DetectionScore:
        """mAP50-95 and mAP50 of the frames drawn.

        Args:
            draws: (frames,) times each frame is drawn (0: left out); None: every frame once.
        """
        images = self.frames if draws is None else int(np.sum(draws))
        n_gt = self.class_counts(draws)
        n_obj = int(n_gt.sum())
        if n_obj == 0:
            return DetectionScore(float("nan"), float("nan"), images, 0)
        pred_w = None if draws is None else draws[self.pred_frame]
        if (len(self.conf) if pred_w is None else int(pred_w.sum())) == 0:
            return DetectionScore(0.0, 0.0, images, n_obj, 0.0)
        if self.ap_method == "coco":
            ap = self.coco_rows(draws, n_gt)
        else:
            from semrl.assets import configure_ultralytics

            configure_ultralytics()
            from ultralytics.utils.metrics import ap_per_class

            tp, conf, pred_cls, target_cls = self.tp, self.conf, self.pred_cls, self.target_cls
            if draws is not None and pred_w is not None:
                tp, conf, pred_cls = (np.repeat(a, pred_w, axis=0) for a in (tp, conf, pred_cls))
                target_cls = np.repeat(target_cls, draws[self.target_frame])
            ap = ap_per_class(tp, conf, pred_cls, target_cls, plot=False)[5]
        # Both poolings give one row per class with objects drawn, in class order.
        per_class = ap.mean(axis=1)
        weights = n_gt[n_gt > 0]
        weighted = float(np.dot(per_class, weights) / weights.sum())
        return DetectionScore(float(ap.mean()), float(ap[:, 0].mean()), images, n_obj, weighted)

    def class_counts(self, draws: NDArray[np.int64] | None) -> NDArray[np.float64]:
        """Ground-truth objects of each of :attr:`classes` among the frames drawn (None: every frame once)."""
        weight = None if draws is None else draws[self.target_frame]
        index = np.searchsorted(self.classes, self.target_cls)
        return np.bincount(index, weights=weight, minlength=len(self.classes)).astype(np.float64)

    def coco_rows(self, draws: NDArray[np.int64] | None, n_gt: NDArray[np.float64]) -> NDArray[np.float64]:
        """COCO AP (classes with objects drawn, IoU thresholds) of the frames drawn (``coco`` pooling only)."""
        rows = []
        for (hits, frame), n in zip(self._ranked, n_gt, strict=True):
            if n == 0:
                continue
            if draws is None:
                rows.append(_coco_ap_ranked(hits, float(n)))
                continue
            rows.append(_coco_ap_ranked(hits, float(n), draws[frame].astype(np.float64)))
        return np.array(rows)


def mean_average_precision(
    predictions: Sequence[Detections],
    targets: Sequence[Detections],
    kind: Literal["box", "mask"] = "box",
    ap_method: APMethod = "ultralytics",
) -> DetectionScore:
    """mAP50-95 and mAP50 of predictions against ground truth (labels or pseudo ground truth).

    :func:`match_frame` on every frame, then :func:`average_precision` of the records.

    Args:
        predictions: Per frame, from :meth:`YoloNet.detect` with val settings (conf 0.001).
        targets: Per frame, e.g. :func:`semrl.fidelity.labels.read_yolo_labels` or
            :func:`pseudo_ground_truth`.
        kind: ``"box"`` (detection mAP) or ``"mask"`` (instance-segmentation mask mAP).
        ap_method: ``"ultralytics"`` reproduces ``YOLO(...).val(...)`` (a perfect result
            scores 0.995); ``"coco"`` is pycocotools' 101-point AP (a perfect result scores
            1.0), the choice against pseudo ground truth (see :func:`pseudo_gt_map`).

    Returns:
        The score over all frames together (AP per class over the pooled detections, as val).
    """
    if ap_method not in ("ultralytics", "coco"):
        raise InvalidInputError(f"ap_method must be 'ultralytics' or 'coco', not {ap_method!r}")
    if len(predictions) != len(targets):
        raise InvalidInputError(f"{len(predictions)} predictions but {len(targets)} targets")
    records = [match_frame(p, t, kind) for p, t in zip(predictions, targets, strict=True)]
    return average_precision(records, ap_method)


def pseudo_target(reference: Detections, conf: float = PSEUDO_GT_CONF) -> Detections:
    """One frame's pseudo ground truth: its uncompressed predictions with confidence >= conf.

    The kept objects (with their masks, if any) get confidence 1.
    """
    kept = reference.above(conf)
    return replace(kept, conf=np.ones(len(kept), np.float32))


SURE_IOU = 0.5
"""IoU at which a detection is taken for an unsure find of the original (:func:`dont_care_subset`)."""


def dont_care_subset(pred: Detections, target: Detections, unsure: Detections, iou: float = SURE_IOU) -> Detections:
    """The predictions scored against confident pseudo ground truth: the original's unsure finds are "don't care".

    With only the original's sure finds as ground truth (``target``), a detection of one of its
    less sure finds (``unsure``: a box with IoU >= ``iou``, any class) is neither a true nor a
    false positive, as COCO treats its crowd regions and the MOT labels their unlabelled people
    (:func:`semrl.fidelity.labels.labelled_subset`), unless it also overlaps a sure object of its
    own class by ``iou``. Scored so, the uncoded frames' own detections still score exactly 1.0.

    Args:
        pred: Predictions on one frame, in descending confidence.
        target: The frame's sure pseudo ground truth.
        unsure: The original's less sure finds on the frame.
        iou: The IoU that ties a prediction to a find.
    """
    if not len(pred) or not len(unsure):
        return pred
    unsure_hit = (box_iou(pred.boxes, unsure.boxes) >= iou).any(axis=1)
    same_class = pred.cls[:, None] == target.cls[None, :]
    sure_hit = ((box_iou(pred.boxes, target.boxes) >= iou) & same_class).any(axis=1)
    keep = ~unsure_hit | sure_hit
    return Detections(pred.boxes[keep], pred.conf[keep], pred.cls[keep], pred.shape)


def pseudo_ground_truth(predictions: Sequence[Detections], conf: float = PSEUDO_GT_CONF) -> list[Detections]:
    """Turn predictions on uncompressed frames into ground truth (:func:`pseudo_target` of each).

    Use the same predictions (same net, same settings) that score the uncompressed frames, so
    that they score exactly 1.0 against this ground truth with COCO AP (:func:`pseudo_gt_map`).
    """
    return [pseudo_target(p, conf) for p in predictions]


def pseudo_gt_map(
    reference: Sequence[Detections],
    decoded: Sequence[Detections],
    kind: Literal["box", "mask"] = "box",
    conf: float = PSEUDO_GT_CONF,
) -> DetectionScore:
    """Score decoded frames' predictions against pseudo ground truth from the uncompressed ones.

    The reference predictions with confidence >= ``conf`` become ground truth
    (:func:`pseudo_ground_truth`) and the decoded frames' predictions (all of them, val's conf
    0.001) are scored with COCO's 101-point AP, so the reference scored against itself is exactly
    1.0 and any loss of task fidelity shows as a score below 1.

    Args:
        reference: Per frame, predictions on the uncompressed frames.
        decoded: Per frame, predictions on the decoded frames, same net and settings.
        kind: ``"box"`` or ``"mask"``.
        conf: Confidence above which reference predictions count as objects.
    """
    return mean_average_precision(decoded, pseudo_ground_truth(reference, conf), kind, "coco")

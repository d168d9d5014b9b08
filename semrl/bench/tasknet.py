"""The task net of a benchmark run, the per-frame scores it gives, and the task metric of any frames.

Every metric comes from :mod:`semrl.fidelity` (the functions tested against Ultralytics val): a
decoded frame is matched against its ground truth once (:func:`semrl.fidelity.detection.match_frame`,
or its top-1 class for classification, :func:`classified`), the per-frame
:class:`~semrl.fidelity.detection.FrameMatches` record is cached, and
:func:`task_metric` pools the scores of any set of frames (all of them, or a bootstrap resample)
into mAP (:func:`semrl.fidelity.detection.average_precision`) or top-1
(:func:`semrl.fidelity.classification.top1_of_classes`).

Video has no labels: its ground truth is the net's own objects on the original frames (pseudo
ground truth, :func:`semrl.fidelity.detection.pseudo_target`), scored with COCO's AP so that the
uncoded frames score exactly 1.0; with :attr:`semrl.bench.items.TaskSpec.sure_conf` only its sure
objects, its less sure ones "don't care" (:func:`semrl.fidelity.detection.dont_care_subset`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.items import Item, TaskSpec
from semrl.errors import InvalidInputError
from semrl.fidelity.classification import top1_of_classes
from semrl.fidelity.detection import (
    FrameMatches,
    PooledMatches,
    average_precision,
    dont_care_subset,
    match_frame,
    pseudo_target,
)

if TYPE_CHECKING:
    from semrl.semantics.yolo import Detections

EVAL_CHUNK = 8  # frames per task-net call: bounds memory of full-resolution instance masks
NET_THREADS = 1
"""Torch threads for every pass of a net in a benchmark (task net, and policies' semantic maps).

A net's floating-point sums depend on how many threads split them (yolov8n's boxes and confidences
move by up to 1e-3 between 1 and 2 threads), which moves a detection near a threshold or a rank
and so a score: fixed, a figure does not depend on ``--workers``, on the machine's cores, or on
where a cached analysis was computed."""


@contextlib.contextmanager
def net_threads() -> Iterator[None]:
    """Run the block with torch at :data:`NET_THREADS` threads, then restore the caller's count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(NET_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def classified(pred_cls: NDArray[np.int64], target_cls: NDArray[np.int64]) -> FrameMatches:
    """A classification frame's record: its top-1 class (1,) and its label (1,), no boxes."""
    return FrameMatches(np.zeros((0, 10), bool), np.zeros(0, np.float32), pred_cls, target_cls)


def pack_scores(scores: Sequence[FrameMatches]) -> dict[str, NDArray[Any]]:
    """Arrays for the cache (frame boundaries in ``n_pred`` and ``n_target``)."""
    return {
        "tp": np.concatenate([s.tp for s in scores]) if scores else np.zeros((0, 10), bool),
        "conf": np.concatenate([s.conf for s in scores]) if scores else np.zeros(0, np.float32),
        "pred_cls": np.concatenate([s.pred_cls for s in scores]) if scores else np.zeros(0, np.int64),
        "target_cls": np.concatenate([s.target_cls for s in scores]) if scores else np.zeros(0, np.int64),
        "n_pred": np.array([len(s.pred_cls) for s in scores], np.int64),
        "n_target": np.array([len(s.target_cls) for s in scores], np.int64),
        "n_conf": np.array([len(s.conf) for s in scores], np.int64),
    }


def unpack_scores(z: dict[str, NDArray[Any]]) -> list[FrameMatches]:
    """Inverse of :func:`pack_scores`."""
    out = []
    p = t = c = 0
    for n_p, n_t, n_c in zip(z["n_pred"], z["n_target"], z["n_conf"], strict=True):
        tp = z["tp"][c : c + n_c] if n_c else np.zeros((0, 10), bool)
        out.append(FrameMatches(tp, z["conf"][c : c + n_c], z["pred_cls"][p : p + n_p], z["target_cls"][t : t + n_t]))
        p, t, c = p + int(n_p), t + int(n_t), c + int(n_c)
    return out


def label_metric(scores: Sequence[FrameMatches]) -> tuple[float, float]:
    """(person mAP50-95, mAP50) of clip frames against their real labels (Ultralytics val's AP)."""
    score = average_precision(list(scores), "ultralytics")
    return score.map50_95, score.map50


def task_metric(task: str, scores: Sequence[FrameMatches]) -> tuple[float, float]:
    """(headline, secondary) metric in 0..1 of a set of frames.

    Detection and segmentation: (mAP50-95, mAP50) with Ultralytics val's AP; video: the same with
    COCO's 101-point AP against pseudo ground truth; classification: (top-1, top-1). All of them
    by :mod:`semrl.fidelity` on the pooled per-frame scores.
    """
    return PooledScores(task, scores).metric()


class PooledScores:
    """The per-frame scores of one operating point, pooled once, for the metric of any draw of its frames.

    A bootstrap recomputes the metric of every point for hundreds of resamples of its frames;
    pooling once and weighting each frame by how often a resample draws it gives the figure
    that pooling the drawn frames' scores gives
    (:class:`semrl.fidelity.detection.PooledMatches`).

    Args:
        task: Task name, as in :func:`task_metric`.
        scores: The point's per-frame scores.
    """

    def __init__(self, task: str, scores: Sequence[FrameMatches]) -> None:
        self.task = task
        if task == "classification":
            self.pred = np.concatenate([s.pred_cls for s in scores]) if scores else np.zeros(0, np.int64)
            self.target = np.concatenate([s.target_cls for s in scores]) if scores else np.zeros(0, np.int64)
            return
        self.matches = PooledMatches(list(scores), "coco" if task == "video" else "ultralytics")

    def metric(self, draws: NDArray[np.int64] | None = None) -> tuple[float, float]:
        """(headline, secondary) in 0..1 of the frames drawn.

        Args:
            draws: (frames,) times each frame is drawn (0: left out); None: every frame once.
        """
        if self.task == "classification":
            # One prediction and one label per frame.
            pred = self.pred if draws is None else np.repeat(self.pred, draws)
            target = self.target if draws is None else np.repeat(self.target, draws)
            acc = top1_of_classes(pred, target)
            return acc, acc
        score = self.matches.score(draws)
        return score.map50_95, score.map50

    def objects(self, draws: NDArray[np.int64] | None = None) -> float:
        """mAP50-95 in 0..1 of the frames drawn, each class weighted by its objects (classification: top-1).

        See :attr:`semrl.fidelity.detection.DetectionScore.map50_95_objects`.
        """
        if self.task == "classification":
            return self.metric(draws)[0]
        return self.matches.score(draws).map50_95_objects


@dataclass
class Analysis:
    """The task net's output on one item's original frames, for ROI and pseudo ground truth.

    Attributes:
        regions: Per frame, bool (H, W) relevant pixels (objects >= 0.25 or Grad-CAM >= 0.5).
        boxes: Per frame, (N, 4) boxes of objects with confidence >= 0.25.
        cls: Per frame, (N,) their classes.
        conf: Per frame, (N,) their confidences.
    """

    regions: list[NDArray[np.bool_]]
    boxes: list[NDArray[np.float32]]
    cls: list[NDArray[np.int64]]
    conf: list[NDArray[np.float32]]


def pack_analysis(a: Analysis, shape: tuple[int, int]) -> dict[str, NDArray[Any]]:
    """Arrays for the cache (regions bit-packed, boxes, classes and confidences with per-frame counts)."""
    h, w = shape
    return {
        "regions": np.packbits(np.stack(a.regions).reshape(len(a.regions), -1), axis=1),
        "boxes": np.concatenate(a.boxes) if a.boxes else np.zeros((0, 4), np.float32),
        "cls": np.concatenate(a.cls) if a.cls else np.zeros(0, np.int64),
        "conf": np.concatenate(a.conf) if a.conf else np.zeros(0, np.float32),
        "n": np.array([len(b) for b in a.boxes], np.int64),
        "shape": np.array([h, w], np.int64),
    }


def unpack_analysis(z: dict[str, NDArray[Any]]) -> Analysis:
    """Inverse of :func:`pack_analysis`."""
    h, w = (int(v) for v in z["shape"])
    regions = [np.unpackbits(r, count=h * w).astype(bool).reshape(h, w) for r in z["regions"]]
    bounds = np.concatenate([[0], np.cumsum(z["n"])])
    boxes = [z["boxes"][a:b].astype(np.float32) for a, b in itertools.pairwise(bounds)]
    cls = [z["cls"][a:b].astype(np.int64) for a, b in itertools.pairwise(bounds)]
    conf = [z["conf"][a:b].astype(np.float32) for a, b in itertools.pairwise(bounds)]
    return Analysis(regions, boxes, cls, conf)


class TaskNet:
    """A task's net and how it scores decoded frames of an item.

    Args:
        task: The setting (its weights; video uses a detection net).
        device: Torch device.

    Raises:
        InvalidInputError: The weights are of a net for another task.
    """

    def __init__(self, task: TaskSpec, device: str = "cpu") -> None:
        from semrl.semantics.yolo import YoloNet

        self.task = task
        self.net = YoloNet(task.weights, device=device)
        expected = "detection" if task.video else task.name
        if self.net.task != expected:
            raise InvalidInputError(f"{task.weights} is a {self.net.task} net; task {task.name} needs {expected}")
        self._targets: dict[str, list[Any]] = {}

    @property
    def fingerprint(self) -> str:
        """Weights file and sha256, NMS, memory format (:mod:`semrl.semantics.yolo`) and :data:`NET_THREADS`."""
        from semrl.semantics.yolo import MEMORY_FORMAT, NMS

        return f"{self.net.fingerprint}:nms={NMS}:{MEMORY_FORMAT}:threads={NET_THREADS}"

    def analyse(self, item: Item) -> Analysis:
        """Run the net on the original frames (for ROI and pseudo ground truth)."""
        return self.analyse_all(item)[0]

    def analyse_all(self, item: Item) -> tuple[Analysis, list[FrameMatches] | None]:
        """:meth:`analyse`, and for a detector its :meth:`score` of the original frames (one net pass).

        A detector's analysis is its output at val's settings on the original frames, which is
        also what scoring those frames runs: one pass gives both. Segmentation scores masks at
        other settings and classification with another head: for them the scores are None.
        """
        from semrl.semantics.regions import object_regions, task_regions
        from semrl.semantics.yolo import InferenceSettings

        # val's settings, then objects >= semrl.semantics.regions.REGION_CONF (the cached analyses' definition)
        settings = InferenceSettings()
        detector = self.task.name in ("detection", "video")
        preds: list[Detections] = []
        with net_threads():
            if detector:
                preds = [p for c in self._chunks(item.source) for p in self.net.detect(c, settings, color="rgb")]
                found = [object_regions(p) for p in preds]
            else:
                found = task_regions(self.net, item.source, color="rgb", chunk=EVAL_CHUNK, settings=settings)
        analysis = Analysis(
            [f.region for f in found], [f.boxes for f in found], [f.cls for f in found], [f.conf for f in found]
        )
        return analysis, [self._match(item, i, p, analysis) for i, p in enumerate(preds)] if detector else None

    @staticmethod
    def _chunks(frames: Sequence[NDArray[np.uint8]]) -> Iterator[list[NDArray[np.uint8]]]:
        for s in range(0, len(frames), EVAL_CHUNK):
            yield list(frames[s : s + EVAL_CHUNK])

    def score(self, item: Item, frames: Sequence[NDArray[np.uint8]], analysis: Analysis) -> list[FrameMatches]:
        """Score decoded (cropped, RGB) frames of one item.

        Args:
            item: The item (its label, class, or for video its size).
            frames: Its decoded frames, or the uncoded ones.
            analysis: The net's output on its original frames (video: the pseudo ground truth).
        """
        return self.score_all(item, frames, analysis)[0]

    def score_all(
        self, item: Item, frames: Sequence[NDArray[np.uint8]], analysis: Analysis
    ) -> tuple[list[FrameMatches], list[FrameMatches] | None]:
        """:meth:`score`, and for a clip with real labels its person scores against them (one net pass).

        Against a clip's MOTChallenge boxes only person detections count, and those overlapping no
        labelled box are "don't care" (:func:`semrl.fidelity.labels.labelled_subset`).

        Returns:
            The scores, and the label scores per frame (None for an item without real labels).
        """
        with net_threads():
            return self._score_all(item, frames, analysis)

    def _score_all(
        self, item: Item, frames: Sequence[NDArray[np.uint8]], analysis: Analysis
    ) -> tuple[list[FrameMatches], list[FrameMatches] | None]:
        name = self.task.name
        if name == "classification":
            from semrl.fidelity.classification import top1_classes

            predicted = top1_classes(self.net.classify(list(frames), color="rgb"))
            assert item.class_id is not None
            label = np.array([item.class_id], np.int64)
            return [classified(predicted[i : i + 1], label) for i in range(len(predicted))], None
        from semrl.fidelity.segmentation import MASK_SCORE
        from semrl.semantics.yolo import InferenceSettings

        # segmentation: labels are read on the prediction's mask grid, so its masks there suffice
        settings = MASK_SCORE if name == "segmentation" else InferenceSettings()
        out: list[FrameMatches] = []
        labelled: list[FrameMatches] | None = [] if name == "video" and item.frame_labels is not None else None
        for chunk in self._chunks(frames):
            for pred in self.net.detect(chunk, settings, color="rgb"):
                i = len(out)
                out.append(self._match(item, i, pred, analysis))
                if labelled is not None:
                    assert item.frame_labels is not None
                    from semrl.fidelity.labels import labelled_subset

                    truth = item.frame_labels[i]
                    labelled.append(match_frame(labelled_subset(pred, truth), truth, "box"))
        return out, labelled

    def _match(self, item: Item, i: int, pred: Detections, analysis: Analysis) -> FrameMatches:
        """Frame ``i``'s detections matched against its ground truth (video: the pseudo ground truth)."""
        from semrl.semantics.yolo import Detections

        name = self.task.name
        if name == "video":
            # The pseudo ground truth: the analysis's objects (>= REGION_CONF = PSEUDO_GT_CONF) as labels, confidence 1,
            # or with TaskSpec.sure_conf only the sure ones, detections of the others don't care.
            boxes, cls, conf = analysis.boxes[i], analysis.cls[i], analysis.conf[i]
            sure = np.ones(len(boxes), bool) if self.task.sure_conf is None else conf >= self.task.sure_conf
            target = pseudo_target(Detections(boxes[sure], np.ones(int(sure.sum()), np.float32), cls[sure], item.shape))
            if not sure.all():
                unsure = Detections(boxes[~sure], conf[~sure], cls[~sure], item.shape)
                pred = dont_care_subset(pred, target, unsure)
        elif name == "segmentation":
            target = self._target(item, pred.letterbox)
        else:
            target = self._target(item, None)
        return match_frame(pred, target, "mask" if name == "segmentation" else "box")

    def _target(self, item: Item, letterbox: Any) -> Any:
        from semrl.fidelity.labels import read_yolo_labels

        if item.digest not in self._targets:
            assert item.label is not None
            masks = self.task.name == "segmentation"
            self._targets[item.digest] = [read_yolo_labels(item.label, item.shape, masks=masks, letterbox=letterbox)]
        return self._targets[item.digest][0]

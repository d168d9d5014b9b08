"""Fakes of the semantic layer for fast env and agent tests: no torch, no weights.

:class:`FakeDetector` returns fixed boxes, :class:`FakeSegmenter` fixed elliptic instances,
:class:`FakeExtractor` turns either into semantic maps with the real map rules; :class:`FakeVideoDetector`
loses confidence and box precision with coding noise (the video env's tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError
from semrl.semantics.frames import ColorOrder, Frame, to_bgr
from semrl.semantics.maps import TASKS, SemanticMap, TaskOutput, box_map
from semrl.semantics.yolo import Detections


@dataclass(frozen=True)
class FakeObject:
    """An object placed at fixed relative coordinates (0..1 of width and height)."""

    box: tuple[float, float, float, float]
    cls: int = 0
    conf: float = 0.9


DEFAULT_OBJECTS = (
    FakeObject((0.1, 0.2, 0.4, 0.7), 0, 0.9),
    FakeObject((0.6, 0.5, 0.9, 0.9), 2, 0.6),
)


class FakeDetector:
    """Returns the same objects on every frame, scaled to its size.

    Args:
        objects: The objects; the default is a person and a car.
    """

    task = "detection"

    def __init__(self, objects: Sequence[FakeObject] = DEFAULT_OBJECTS) -> None:
        for o in objects:
            x0, y0, x1, y1 = o.box
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and 0 <= o.conf <= 1):
                raise InvalidInputError(f"fake object out of range: {o}")
        self.objects = tuple(objects)
        self.fingerprint = "fake:" + hashlib.sha256(repr(self.objects).encode()).hexdigest()[:16]

    def detect(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr") -> list[Detections]:
        """Detections of the fixed objects on each frame."""
        return [self._on(f.shape[:2]) for f in to_bgr(frames, color)]

    def _on(self, shape: tuple[int, int]) -> Detections:
        h, w = shape
        n = len(self.objects)
        boxes = np.array([o.box for o in self.objects], np.float32).reshape(n, 4)
        boxes *= np.array([w, h, w, h], np.float32)
        conf = np.array([o.conf for o in self.objects], np.float32)
        order = np.argsort(-conf, kind="stable")
        cls = np.array([o.cls for o in self.objects], np.int64)
        return Detections(boxes[order], conf[order], cls[order], (h, w), self._masks(boxes[order], shape))

    def _masks(self, boxes: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.bool_] | None:
        return None


class FakeSegmenter(FakeDetector):
    """Like :class:`FakeDetector`, with an ellipse inscribed in each box as its mask."""

    task = "segmentation"

    def _masks(self, boxes: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.bool_]:
        h, w = shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        out = np.zeros((len(boxes), h, w), bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            cx, cy, rx, ry = (
                (x0 + x1) / 2,
                (y0 + y1) / 2,
                max((x1 - x0) / 2, 0.5),
                max((y1 - y0) / 2, 0.5),
            )
            out[i] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        return out


class FakeExtractor:
    """A :class:`~semrl.semantics.extractors.SemanticExtractor` over a fake detector or segmenter.

    Detection maps are the boxes (value = confidence) grown by ``margin``; segmentation maps are
    the masks (value = confidence); classification maps are a centred Gaussian blob.
    """

    def __init__(
        self,
        task: str = "detection",
        objects: Sequence[FakeObject] = DEFAULT_OBJECTS,
        margin: int = 0,
    ) -> None:
        if task not in TASKS:
            raise InvalidInputError(f"unknown task {task!r}")
        self._task = task
        self.margin = margin
        self.net = FakeSegmenter(objects) if task == "segmentation" else FakeDetector(objects)
        self.calls = 0

    @property
    def task(self) -> str:
        """The task the maps serve."""
        return self._task

    @property
    def fingerprint(self) -> str:
        """Depends on the objects, task and margin."""
        return f"{self.net.fingerprint}:{self._task}:{self.margin}"

    def extract(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr") -> list[SemanticMap]:
        """One map per frame, from the fixed objects."""
        bgr = to_bgr(frames, color)
        self.calls += 1
        out = []
        for d in self.net.detect(bgr):
            if self._task == "classification":
                h, w = d.shape
                yy, xx = np.mgrid[0:h, 0:w]
                s = 0.25 * min(h, w)
                v = np.exp(-(((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * s * s))).astype(np.float32)
            elif self._task == "segmentation" and d.masks is not None:
                v = np.zeros(d.shape, np.float32)
                for m, c in zip(d.masks, d.conf, strict=True):
                    v[m] = np.maximum(v[m], c)
            else:
                v = box_map(d.shape, d.boxes, d.conf, self.margin)
            output = TaskOutput.objects(d.boxes, d.conf, d.cls)
            if self._task == "classification":
                output = TaskOutput.classes(np.eye(max(len(d), 1), dtype=np.float32)[0])
            out.append(SemanticMap(v, self._task, "fake", output))
        return out


class FakeVideoDetector:
    """A fake detector whose output degrades with coding noise, for the video env's tests.

    The objects are fixed (relative coordinates); on a frame it estimates the noise level from the
    mean absolute Laplacian of the luma (the fakes' frames are smooth, so coding noise dominates
    it), lowers each confidence by ``exp(-noise / 8)`` and shifts each box by ``noise / 2`` pixels,
    so coarser coding loses confidence and box precision, as a real net does.

    Args:
        objects: The objects; the default is a person and a car.
    """

    def __init__(self, objects: Sequence[FakeObject] = DEFAULT_OBJECTS) -> None:
        self.detector = FakeDetector(objects)
        self.fingerprint = f"fake-video:{self.detector.fingerprint}"
        self.calls = 0

    def __call__(self, frames: Sequence[NDArray[np.uint8]]) -> list[TaskOutput]:
        """Detections of each (H, W, 3) uint8 RGB frame."""
        self.calls += 1
        out = []
        for frame in frames:
            luma = frame.astype(np.float32).mean(axis=2)
            lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
            noise = float(np.abs(lap).mean()) / 4
            d = self.detector._on(frame.shape[:2])
            out.append(TaskOutput.objects(d.boxes + noise / 2, d.conf * np.exp(-noise / 8), d.cls))
        return out

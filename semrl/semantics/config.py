"""Configurations of semantic-map extraction (frozen, JSON round-trip) and per-class weights."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from semrl.errors import InputNotFoundError, InvalidInputError

DEFAULT_CLASS_WEIGHTS = Path(__file__).with_name("class_weights.yaml")

Method = Literal["boxes", "class_scores", "masks", "gradcam", "gradient"]
METHODS: dict[str, tuple[Method, ...]] = {
    "detection": ("boxes", "class_scores", "gradient"),
    "segmentation": ("masks", "gradient"),
    "classification": ("gradcam", "gradient"),
}
CLASS_WEIGHTED_METHODS: tuple[Method, ...] = ("boxes", "class_scores", "masks")
"""The methods whose maps weigh each object by its class (:class:`ClassWeights`); the others
(``gradcam``, ``gradient``) follow the net's gradients, whatever the class."""
DEFAULT_WEIGHTS = {
    "detection": "yolov8n.pt",
    "segmentation": "yolo11n-seg.pt",
    "classification": "yolov8n-cls.pt",
}


@dataclass(frozen=True)
class ClassWeights:
    """Importance of each class in 0..1, by class name; unlisted classes get ``default``."""

    default: float = 1.0
    weights: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name, w in (("default", self.default), *self.weights):
            if not 0.0 <= w <= 1.0:
                raise InvalidInputError(f"class weight of {name!r} must be in 0..1, got {w}")

    def of(self, name: str) -> float:
        """Weight of the class called ``name``."""
        return dict(self.weights).get(name, self.default)


def load_class_weights(path: str | os.PathLike[str] | None = None) -> ClassWeights:
    """Load per-class weights from a YAML file (``default:`` and ``weights: {name: w}``).

    Args:
        path: The file; None loads semrl's shipped ``class_weights.yaml``.

    Raises:
        InputNotFoundError: The file does not exist.
        InvalidInputError: It is not of that shape, or a weight is outside 0..1.
    """
    import yaml

    p = Path(path) if path is not None else DEFAULT_CLASS_WEIGHTS
    if not p.is_file():
        raise InputNotFoundError(f"class weights file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{p} is not YAML: {e}") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("weights", {}), dict):
        raise InvalidInputError(f"{p}: expected 'default: <w>' and 'weights: {{name: w}}'")
    other = sorted(str(k) for k in raw if k not in ("default", "weights"))
    if other:
        raise InvalidInputError(
            f"{p}: unknown key(s) {', '.join(other)}; expected 'default: <w>' and 'weights: {{name: w}}' "
            "(a class's weight goes under weights:)"
        )
    try:
        items = tuple(sorted((str(k), float(v)) for k, v in (raw.get("weights") or {}).items()))
        return ClassWeights(float(raw.get("default", 1.0)), items)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{p}: bad class weight: {e}") from e


@dataclass(frozen=True)
class MapConfig:
    """How a semantic map is computed.

    Attributes:
        task: ``"detection"``, ``"segmentation"`` or ``"classification"``.
        method: One of :data:`METHODS` for the task; None picks the first (boxes, masks,
            gradcam).
        weights: The network's weights (file or bare name); None picks the task's default.
        imgsz: Long side of the network input (classification nets use their own 224).
        conf: Confidence from which detections and instances enter the map.
        margin: Pixels added around each box (detection).
        boundary_width: Width in pixels of the emphasised band along instance boundaries.
        interior_level: Value of an instance's interior relative to its boundary (0..1).
        smooth_sigma: Gaussian sigma in pixels smoothing gradient maps.
        class_weights: Per-class weights (detection and segmentation).
    """

    task: str = "detection"
    method: str | None = None
    weights: str | None = None
    imgsz: int = 640
    conf: float = 0.25
    margin: int = 16
    boundary_width: int = 6
    interior_level: float = 0.7
    smooth_sigma: float = 8.0
    class_weights: ClassWeights = field(default_factory=ClassWeights)

    def __post_init__(self) -> None:
        if self.task not in METHODS:
            raise InvalidInputError(f"unknown task {self.task!r}; expected one of {list(METHODS)}")
        if self.method is not None and self.method not in METHODS[self.task]:
            raise InvalidInputError(
                f"method {self.method!r} does not fit task {self.task!r}; choose one of {METHODS[self.task]}"
            )
        if not 0.0 <= self.interior_level <= 1.0:
            raise InvalidInputError(f"interior_level must be in 0..1, got {self.interior_level}")
        if self.margin < 0 or self.boundary_width < 0 or self.smooth_sigma < 0 or self.imgsz < 32:
            raise InvalidInputError(f"invalid MapConfig sizes: {self}")

    @property
    def resolved_method(self) -> str:
        """The method, with the task's default filled in."""
        return self.method or METHODS[self.task][0]

    @property
    def resolved_weights(self) -> str:
        """The weights, with the task's default filled in."""
        return self.weights or DEFAULT_WEIGHTS[self.task]

    def to_json(self) -> str:
        """Serialise (stable key order) for saving and for cache keys."""
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> MapConfig:
        """Inverse of :meth:`to_json`."""
        d: dict[str, Any] = json.loads(text)
        cw = d.pop("class_weights", {}) or {}
        weights = tuple((str(k), float(v)) for k, v in cw.get("weights", ()))
        return MapConfig(**d, class_weights=ClassWeights(float(cw.get("default", 1.0)), weights))

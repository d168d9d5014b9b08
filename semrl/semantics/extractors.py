"""Semantic maps from real YOLO networks: boxes, class scores, masks, Grad-CAM, input gradients.

Every extractor computes maps on the original frames, in batches, on CUDA when present.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError
from semrl.semantics.config import MapConfig
from semrl.semantics.frames import ColorOrder, Frame, to_bgr
from semrl.semantics.maps import SemanticMap, TaskOutput, box_map, normalise
from semrl.semantics.yolo import Detections, InferenceSettings, Letterbox, YoloNet, needs_compiled_nms

if TYPE_CHECKING:
    import torch

MAP_VERSION = "1"
"""Bumped whenever a map's definition changes, so cached maps are not reused across versions."""


@runtime_checkable
class SemanticExtractor(Protocol):
    """Anything that turns frames into semantic maps (real networks or fakes)."""

    @property
    def task(self) -> str:
        """The task the maps serve."""
        ...

    @property
    def fingerprint(self) -> str:
        """Identifies the network weights and settings; part of every cache key."""
        ...

    def extract(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr") -> list[SemanticMap]:
        """One map per frame, each at its frame's resolution."""
        ...


class YoloMapExtractor:
    """Semantic maps from an Ultralytics YOLO network.

    Methods by task (:class:`MapConfig`):

    - detection ``boxes``: boxes with confidence >= ``conf``, value confidence x class weight,
      grown by ``margin`` pixels, overlaps take the maximum;
    - detection ``class_scores``: the detector's dense class-score map (per anchor the best
      class score x class weight, each stride level upsampled, maximum over levels);
    - segmentation ``masks``: instance masks with confidence >= ``conf``, value confidence x class
      weight, ``interior_level`` of that inside and the full value on a band of
      ``boundary_width`` pixels along the boundary;
    - classification ``gradcam``: Grad-CAM of the top-1 class on the classifier's last
      convolution, normalised to a maximum of 1;
    - ``gradient`` (any net): |d loss / d input| (maximum over colour channels), smoothed by a
      Gaussian of ``smooth_sigma`` pixels and scaled so its 99th percentile is 1. The loss is the
      net's own pseudo-label loss: cross-entropy against its top-1 class for a classifier, and
      for a detector the negative log of the best class score of every anchor whose score is at
      least ``conf`` (the 16 best anchors when none is).

    Args:
        config: What to compute.
        device: ``"cpu"`` or ``"cuda[:n]"``; None picks CUDA when present.
        net: A loaded network to reuse (must match ``config``'s task).
        batch: Frames per forward pass.
    """

    def __init__(
        self,
        config: MapConfig | None = None,
        device: str | None = None,
        net: YoloNet | None = None,
        batch: int = 8,
    ) -> None:
        self.config = config or MapConfig()
        self.net = net or YoloNet(
            self.config.resolved_weights, device=device, compiled_nms=needs_compiled_nms(self.config.conf)
        )
        if self.net.task != self.config.task:
            raise InvalidInputError(f"{self.net.weights_path} is a {self.net.task} net, not a {self.config.task} net")
        self.method = self.config.resolved_method
        self.batch = batch
        self._class_w = np.array(
            [self.config.class_weights.of(self.net.names[i]) for i in sorted(self.net.names)],
            dtype=np.float32,
        )

    @property
    def task(self) -> str:
        """The task the maps serve."""
        return self.config.task

    def with_input_size(self, imgsz: int) -> YoloMapExtractor:
        """The same maps with the network run at another input size, sharing the loaded net."""
        return YoloMapExtractor(replace(self.config, imgsz=imgsz), net=self.net, batch=self.batch)

    @property
    def fingerprint(self) -> str:
        """Weights hash, configuration and map version."""
        return f"v{MAP_VERSION}:{self.net.fingerprint}:{self.config.to_json()}"

    def extract(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr") -> list[SemanticMap]:
        """Compute one semantic map per frame.

        Args:
            frames: HxWx3 uint8 frames.
            color: Their channel order.

        Returns:
            Maps at each frame's resolution.
        """
        bgr = to_bgr(frames, color)
        if not bgr:
            return []
        task = self.config.task
        outputs: list[TaskOutput | None] = [None] * len(bgr)
        if self.method in ("boxes", "masks"):
            found = self._detect(bgr)
            draw = self._boxes if self.method == "boxes" else self._masks
            values = [draw(d) for d in found]
            outputs = [TaskOutput.objects(d.boxes, d.conf, d.cls) for d in found]
        elif self.method == "class_scores":
            values = self._class_scores(bgr)
        elif self.method == "gradcam":
            values, probs = self._gradcam(bgr)
            outputs = [TaskOutput.classes(p) for p in probs]
        else:
            values = self._gradient(bgr)
        return [SemanticMap(v, task, self.method, o) for v, o in zip(values, outputs, strict=True)]  # type: ignore[arg-type]

    # ---- boxes and masks -----------------------------------------------------------------

    def _detect(self, bgr: list[Frame]) -> list[Detections]:
        settings = InferenceSettings(
            imgsz=self.config.imgsz, conf=self.config.conf, multi_label=False, batch=self.batch
        )
        return self.net.detect(bgr, settings)

    def _weights_of(self, d: Detections) -> NDArray[np.float32]:
        return (d.conf * self._class_w[d.cls]).astype(np.float32)

    def _boxes(self, d: Detections) -> NDArray[np.float32]:
        return box_map(d.shape, d.boxes, self._weights_of(d), self.config.margin)

    def _masks(self, d: Detections) -> NDArray[np.float32]:
        import cv2

        out = np.zeros(d.shape, np.float32)
        if d.masks is None or len(d) == 0:
            return out
        k = 2 * (self.config.boundary_width // 2) + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        # Lowest confidence first, so the more confident instance wins where instances overlap.
        for i in np.argsort(d.conf, kind="stable"):
            m = d.masks[i].astype(np.uint8)
            w = float(self._weights_of(d)[i])
            value = np.where(m > 0, w * self.config.interior_level, 0.0).astype(np.float32)
            if self.config.boundary_width > 0:
                band = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, kernel) > 0
                value[band] = w
            np.maximum(out, value, out=out)
        return out

    # ---- dense maps from the network's tensors --------------------------------------------

    def _letterboxed(self, bgr: list[Frame]) -> Iterator[tuple[list[int], torch.Tensor, list[Letterbox]]]:
        groups: dict[tuple[int, int], list[tuple[int, NDArray[np.uint8], Letterbox]]] = {}
        for i, f in enumerate(bgr):
            im, lb = self.net.letterbox(f, self.config.imgsz)
            groups.setdefault(lb.input_shape, []).append((i, im, lb))
        for items in groups.values():
            for s in range(0, len(items), self.batch):
                chunk = items[s : s + self.batch]
                yield (
                    [i for i, _, _ in chunk],
                    self.net.to_tensor([im for _, im, _ in chunk]),
                    [lb for _, _, lb in chunk],
                )

    def _class_scores(self, bgr: list[Frame]) -> list[NDArray[np.float32]]:
        import torch
        import torch.nn.functional as F  # noqa: N812

        nc = len(self.net.names)
        cw = torch.from_numpy(self._class_w).to(self.net.device)[None, :, None]
        out: list[NDArray[np.float32]] = [np.zeros((1, 1), np.float32)] * len(bgr)
        strides = [int(s) for s in self.net.model.stride]
        with torch.inference_mode():
            for idx, x, lbs in self._letterboxed(bgr):
                pred, _ = self.net.raw(x)
                best = (pred[:, 4 : 4 + nc] * cw).amax(1)  # (B, anchors)
                ih, iw = x.shape[2:]
                dense = torch.zeros((len(idx), 1, ih, iw), device=x.device)
                start = 0
                for s in strides:
                    h, w = ih // s, iw // s
                    level = best[:, start : start + h * w].reshape(-1, 1, h, w)
                    start += h * w
                    up = F.interpolate(level, (ih, iw), mode="bilinear", align_corners=False)
                    dense = torch.maximum(dense, up)
                for k, (i, lb) in enumerate(zip(idx, lbs, strict=True)):
                    out[i] = _to_frame(dense[k, 0].cpu().numpy(), lb)
        return [np.clip(v, 0.0, 1.0).astype(np.float32) for v in out]

    def _gradient(self, bgr: list[Frame]) -> list[NDArray[np.float32]]:
        import torch

        out: list[NDArray[np.float32]] = [np.zeros((1, 1), np.float32)] * len(bgr)
        if self.net.task == "classification":
            for s in range(0, len(bgr), self.batch):
                frames = bgr[s : s + self.batch]
                x = self.net.classify_tensor(frames).requires_grad_(True)
                with torch.enable_grad():
                    logits = _logits(self.net.model(x))
                    target = logits.argmax(1)
                    loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, x)
                g = grad.abs().amax(1).cpu().numpy()
                for k, f in enumerate(frames):
                    out[s + k] = _crop_to_frame(self._smooth(g[k]), f.shape[:2])
            return [normalise(v, 99.0) for v in out]
        nc = len(self.net.names)
        for idx, x, lbs in self._letterboxed(bgr):
            x = x.clone().requires_grad_(True)
            with torch.enable_grad():
                pred, _ = self.net.raw(x)
                best = pred[:, 4 : 4 + nc].amax(1).clamp_min(1e-6)  # (B, anchors)
                chosen = best >= self.config.conf
                top = best.topk(min(16, best.shape[1]), dim=1).indices
                fallback = torch.zeros_like(chosen).scatter_(1, top, True)
                chosen = torch.where(chosen.any(1, keepdim=True), chosen, fallback)
                loss = -(best.log() * chosen).sum()
                (grad,) = torch.autograd.grad(loss, x)
            g = grad.abs().amax(1).cpu().numpy()
            for k, (i, lb) in enumerate(zip(idx, lbs, strict=True)):
                out[i] = _to_frame(self._smooth(g[k]), lb)
        return [normalise(v, 99.0) for v in out]

    def _smooth(self, g: NDArray[np.floating]) -> NDArray[np.float32]:
        import cv2

        g = np.asarray(g, np.float32)
        if self.config.smooth_sigma <= 0:
            return g
        return np.asarray(cv2.GaussianBlur(g, (0, 0), self.config.smooth_sigma), dtype=np.float32)

    def _gradcam(self, bgr: list[Frame]) -> tuple[list[NDArray[np.float32]], list[NDArray[np.float32]]]:
        import torch
        import torch.nn.functional as F  # noqa: N812

        head = self.net.model.model[-1]
        layer = head.conv if hasattr(head, "conv") else head
        feats: list[torch.Tensor] = []

        def keep(_m: Any, _i: Any, o: torch.Tensor) -> None:
            feats.append(o)

        out: list[NDArray[np.float32]] = []
        probs: list[NDArray[np.float32]] = []
        handle = layer.register_forward_hook(keep)
        try:
            for s in range(0, len(bgr), self.batch):
                frames = bgr[s : s + self.batch]
                feats.clear()
                x = self.net.classify_tensor(frames).requires_grad_(True)
                with torch.enable_grad():
                    logits = _logits(self.net.model(x))
                    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
                    (grad,) = torch.autograd.grad(score, feats[0])
                a = feats[0].detach()
                weights = grad.mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * a).sum(1, keepdim=True))
                cam = F.interpolate(cam, x.shape[2:], mode="bilinear", align_corners=False)
                p = torch.softmax(logits.detach().float(), dim=1).cpu().numpy()
                for k, f in enumerate(frames):
                    out.append(normalise(_crop_to_frame(cam[k, 0].cpu().numpy(), f.shape[:2])))
                    probs.append(p[k].astype(np.float32))
        finally:
            handle.remove()
        return out, probs


def _logits(y: Any) -> torch.Tensor:
    """Logits of a classification head's output ((probs, logits) in eval mode)."""
    logits: torch.Tensor = y
    if isinstance(y, (list, tuple)):
        logits = y[1] if len(y) > 1 else y[0]
    return logits


def _to_frame(values: NDArray[np.floating], lb: Letterbox) -> NDArray[np.float32]:
    """Map an array over the letterboxed network input back onto the frame."""
    import cv2

    left, top = round(lb.pad[0] - 0.1), round(lb.pad[1] - 0.1)
    h0, w0 = lb.shape
    nh, nw = max(round(h0 * lb.ratio), 1), max(round(w0 * lb.ratio), 1)
    crop: Any = np.ascontiguousarray(values[top : top + nh, left : left + nw], dtype=np.float32)
    if crop.shape != (h0, w0):
        crop = cv2.resize(crop, (w0, h0), interpolation=cv2.INTER_LINEAR)
    return np.asarray(crop, dtype=np.float32)


def _crop_to_frame(values: NDArray[np.floating], shape: tuple[int, int]) -> NDArray[np.float32]:
    """Place a map over the classifier's centre crop into a frame of ``shape`` (zeros outside).

    Ultralytics' classification transform resizes the short side to the input size and crops
    the centre, so the crop covers the frame's central square.
    """
    import cv2

    h, w = shape
    side = min(h, w)
    out = np.zeros((h, w), np.float32)
    sq = cv2.resize(np.asarray(values, np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    top, left = (h - side) // 2, (w - side) // 2
    out[top : top + side, left : left + side] = np.maximum(sq, 0.0)
    return out


def make_extractor(
    task: str,
    method: str | None = None,
    *,
    weights: str | None = None,
    device: str | None = None,
    config: MapConfig | None = None,
    batch: int = 8,
) -> YoloMapExtractor:
    """Build the real extractor for a task (see :class:`YoloMapExtractor` for the methods).

    Args:
        task: ``"detection"``, ``"segmentation"`` or ``"classification"``.
        method: A method of the task, None for its default.
        weights: Weights file or name, None for the task's default (yolov8n, yolo11n-seg,
            yolov8n-cls); a classification or detection net fits ``method="gradient"`` too.
        device: ``"cpu"`` or ``"cuda[:n]"``; None picks CUDA when present.
        config: Full configuration; ``task``, ``method`` and ``weights`` override its fields.
        batch: Frames per forward pass.
    """
    base = config or MapConfig(task=task)
    cfg = MapConfig(
        **{
            **{f: getattr(base, f) for f in base.__dataclass_fields__},
            "task": task,
            "method": method if method is not None else base.method,
            "weights": weights if weights is not None else base.weights,
        }
    )
    return YoloMapExtractor(cfg, device=device, batch=batch)

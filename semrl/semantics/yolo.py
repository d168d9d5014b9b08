"""One wrapper around an Ultralytics YOLO network for maps and metrics.

Detection and segmentation run with the preprocessing of Ultralytics' ``val`` (long side resized
to ``imgsz``, letterboxed to the rectangle ``val`` uses for a batch of one, padding value 114)
and its NMS (multi-label, ``conf`` 0.001, ``iou`` 0.7, 300 detections), so metrics computed from
these predictions agree with ``YOLO(...).val(...)``. Classification uses Ultralytics'
``classify_transforms`` as its predictor and validator do.

torch and ultralytics are imported lazily, after :func:`semrl.assets.configure_ultralytics`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from semrl.assets import file_sha256, load_yolo
from semrl.errors import InvalidInputError
from semrl.semantics.frames import ColorOrder, Frame, to_bgr

if TYPE_CHECKING:
    import torch

YOLO_TASKS = {"detect": "detection", "segment": "segmentation", "classify": "classification"}

NMS = "torchvision"
"""The NMS that :meth:`YoloNet.detect` runs: Ultralytics' ``non_max_suppression`` calls
torchvision's compiled kernel only when torchvision is already imported (as it is in Ultralytics'
``val``), and otherwise a pure-torch loop that is about 14 times slower on CPU (20 against 1.5 ms
a frame of ``people_800x450`` at ``conf`` 0.001: a seventh of the detector's time) and may keep a
different one of two boxes with equal scores when ``max_det`` cuts. :class:`YoloNet` imports
torchvision, so every process runs the same NMS; the benchmark's caches name it.

Except where a net is made with ``compiled_nms=False`` (:func:`needs_compiled_nms`): nets that
find objects from ``conf`` 0.25 on, as ``semrl encode``'s task net
(:data:`semrl.semantics.regions.REGION_CONF`) and the semantic maps of the shipped policies do:
a few dozen boxes a frame, which ``max_det`` never cuts. There both NMS keep the same boxes
(tested on coco8; the same on 60 frames of each of three clips, and the same bytes on six) in the
same time, and not importing torchvision spares a command about 1.3-1.6 s of start-up:
torchvision imports ``torch._dynamo``."""

FEW_BOXES_CONF = 0.25
"""The confidence threshold from which a pass leaves few enough boxes for Ultralytics' own NMS."""


def needs_compiled_nms(conf: float) -> bool:
    """Whether passes at confidence threshold ``conf`` want torchvision's NMS (see :data:`NMS`)."""
    return conf < FEW_BOXES_CONF


NET_STRIDE = 32
"""YOLO input sizes are multiples of the largest stride."""


def own_input_size(frame_shape: tuple[int, ...], largest: int) -> int:
    """The input size that runs a net on ``(H, W)`` frames at their own scale, at most ``largest``.

    The long side rounded up to :data:`NET_STRIDE`: a frame smaller than the net's trained input is
    not upscaled (half the cost of a 480x360 frame at 640, and the objects' maps change little).
    """
    return min(largest, -(-max(frame_shape[:2]) // NET_STRIDE) * NET_STRIDE)


MEMORY_FORMAT = "channels_last"
"""How :class:`YoloNet` lays out its weights and inputs: channels-last lets oneDNN run yolov8n's
convolutions 1.26x faster on CPU at one thread (8 frames of 672x512: 0.76 against 0.96 s) and
the benchmark's video run 1.15x faster end to end; the net's outputs move by about 1e-3 px (box
coordinates) and its mAP50-95 on a clip by up to 0.004 points, so the benchmark's caches name it."""

PRECISIONS = ("fp32", "bf16")
"""The number formats :class:`YoloNet` runs in: ``fp32``, or ``bf16`` (torch autocast: convolutions
and matrix products in bfloat16, the boxes decoded and the outputs cast back to float32 before
NMS). On a CPU with native bfloat16 (AVX512-BF16 or AMX, :func:`native_bf16`) bf16 runs yolov8n
1.6-1.9x faster at one thread (``benchmarks/results/net-precision``); its boxes move by about 1 %
of their size and its confidences by about 0.002-0.01, so an object near a confidence threshold
may cross it. The benchmark's task net (the metric) stays fp32, and so do the Grad-CAM maps of a
classification net (:mod:`semrl.semantics.extractors`), which call the model directly for its
gradients."""

MASK_RATIO = 4
"""Ultralytics' ``mask_ratio``: its val compares instance masks on the network input downsampled
by this factor, which is the grid of the mask prototypes."""


@dataclass(frozen=True)
class InferenceSettings:
    """Settings of a detection or segmentation pass; the defaults are Ultralytics val's.

    Attributes:
        imgsz: Long side of the network input in pixels.
        conf: Confidence threshold before NMS.
        iou: NMS IoU threshold.
        max_det: Most detections kept per frame.
        multi_label: Whether a box may carry several classes (val: True; predict: False).
        batch: Frames per forward pass.
        coarse_masks: Threshold instance masks at the prototype resolution (a quarter of the
            input, as Ultralytics' val compares them) and then enlarge them, instead of
            thresholding bilinearly upsampled mask logits at the frame's resolution (as
            Ultralytics' predict with ``retina_masks``). The masks on the prototype grid are
            also kept, as :attr:`Detections.grid_masks` with the frame's :class:`Letterbox`, so
            that mask mAP is computed where val computes it.
        native_masks: Keep :attr:`Detections.masks` at the frame's resolution. False (with
            ``coarse_masks`` only) keeps the masks on the prototype grid alone, all that mask
            mAP needs where both sides of the match carry them: it saves enlarging every find's
            mask to the frame, most of the time a segmenter's pass takes after the net itself.
    """

    imgsz: int = 640
    conf: float = 0.001
    iou: float = 0.7
    max_det: int = 300
    multi_label: bool = True
    batch: int = 8
    coarse_masks: bool = False
    native_masks: bool = True

    def __post_init__(self) -> None:
        if not self.native_masks and not self.coarse_masks:
            raise InvalidInputError("native_masks=False needs coarse_masks: a segmenter's finds would have no masks")


@dataclass(frozen=True, eq=False)
class Detections:
    """Objects found in (or labelled on) one frame, in the frame's pixel coordinates.

    Attributes:
        boxes: float32 (N, 4) xyxy.
        conf: float32 (N,) confidence (1.0 for labels), in descending order for predictions.
        cls: int64 (N,) class ids.
        masks: bool (N, H, W) instance masks at the frame's resolution, or None.
        shape: (H, W) of the frame.
        grid_masks: bool (N, h, w) instance masks on Ultralytics val's mask grid, the letterboxed
            network input downsampled by :data:`MASK_RATIO` (``letterbox.grid_shape``), or None.
            Predictions made with ``coarse_masks`` and labels read for them carry these; val
            computes mask IoU on this grid, padding included.
        letterbox: Where the frame sits in the network input; needed with ``grid_masks``.
    """

    boxes: NDArray[np.float32]
    conf: NDArray[np.float32]
    cls: NDArray[np.int64]
    shape: tuple[int, int]
    masks: NDArray[np.bool_] | None = None
    grid_masks: NDArray[np.bool_] | None = None
    letterbox: Letterbox | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.conf.shape != (n,) or self.cls.shape != (n,):
            raise InvalidInputError(
                f"Detections: boxes {self.boxes.shape}, conf {self.conf.shape} and cls {self.cls.shape} disagree"
            )
        if self.masks is not None and self.masks.shape != (n, *self.shape):
            raise InvalidInputError(f"Detections: masks {self.masks.shape} do not match {n} objects of {self.shape}")
        if self.grid_masks is not None:
            if self.letterbox is None:
                raise InvalidInputError("Detections: grid_masks need the frame's letterbox")
            if self.grid_masks.shape != (n, *self.letterbox.grid_shape):
                raise InvalidInputError(
                    f"Detections: grid masks {self.grid_masks.shape} do not match {n} objects "
                    f"on the mask grid {self.letterbox.grid_shape}"
                )

    def __len__(self) -> int:
        return len(self.boxes)

    def above(self, conf: float) -> Detections:
        """Return the detections whose confidence is at least ``conf``."""
        return self.subset(self.conf >= conf)

    def subset(self, keep: NDArray[np.bool_]) -> Detections:
        """Return the detections where ``keep`` (a bool mask over them) is true."""
        return Detections(
            self.boxes[keep],
            self.conf[keep],
            self.cls[keep],
            self.shape,
            None if self.masks is None else self.masks[keep],
            None if self.grid_masks is None else self.grid_masks[keep],
            self.letterbox,
        )

    @staticmethod
    def empty(shape: tuple[int, int], with_masks: bool = False) -> Detections:
        """No objects on a frame of ``shape``."""
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            shape,
            np.zeros((0, *shape), bool) if with_masks else None,
        )


def class_ids(
    names: dict[int, str], wanted: Sequence[str], source: str = "this net", option: str = "--classes"
) -> frozenset[int]:
    """The ids of class names, as a net names them (``YoloNet.names``).

    Args:
        names: The net's class names by id.
        wanted: The names asked for.
        source: What the names are checked against, for the message.
        option: Where the names came from, for the message.

    Raises:
        InvalidInputError: A name the net does not know (the message lists some it does).
    """
    by_name = {name: i for i, name in names.items()}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        known = ", ".join(list(by_name)[:12]) + (", ..." if len(by_name) > 12 else "")
        raise InvalidInputError(f"{option} {', '.join(unknown)}: not classes of {source} ({known})")
    return frozenset(by_name[w] for w in wanted)


def default_device() -> str:
    """``"cuda"`` when a CUDA device is usable, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None) -> str:
    """The torch device to run nets on: ``device`` checked, or :func:`default_device` for None.

    Raises:
        InvalidInputError: ``device`` is not a torch device name, or names a CUDA device this
            machine does not have.
    """
    import torch

    if device is None:
        return default_device()
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise InvalidInputError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from e
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidInputError(f"device {device!r}: no CUDA GPU is usable on this machine; use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise InvalidInputError(f"device {device!r}: this machine has {count} CUDA GPU(s)")
    elif parsed.type != "cpu":
        raise InvalidInputError(f"device {device!r}: semrl runs its nets on cpu or cuda")
    return device


@dataclass
class Letterbox:
    """Where a frame went in the network input, as Ultralytics' val places it.

    Attributes:
        shape: (H, W) of the frame.
        input_shape: (H, W) of the network input.
        ratio: Input pixels per frame pixel.
        pad: (left, top) padding in input pixels.
        resized: (H, W) of the frame inside the input.
        loaded: (H, W) after val's first resize (long side to ``imgsz``), to which its labels are
            denormalised before the letterbox scales and pads them.
    """

    shape: tuple[int, int]
    input_shape: tuple[int, int]
    ratio: float
    pad: tuple[float, float]
    resized: tuple[int, int] = field(default=(0, 0))
    loaded: tuple[int, int] = field(default=(0, 0))

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(h, w) of val's mask grid (the mask prototypes' resolution)."""
        return (self.input_shape[0] // MASK_RATIO, self.input_shape[1] // MASK_RATIO)


class YoloNet:
    """A loaded Ultralytics YOLO network (detect, segment or classify) on one device.

    Args:
        weights: Weights file or bare name (resolved by :func:`semrl.assets.resolve_weights`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None picks CUDA when present.
        precision: One of :data:`PRECISIONS`.
        compiled_nms: Import torchvision, so that Ultralytics runs its compiled NMS in this
            process (see :data:`NMS`). False only for nets whose passes leave few boxes
            (:func:`needs_compiled_nms`), where Ultralytics' own NMS keeps the same ones as fast.

    Attributes:
        task: ``"detection"``, ``"segmentation"`` or ``"classification"``.
        names: Class id to class name.
        weights_path: The weights file that was loaded.
        weights_sha256: Its sha256, part of every cache key.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] = "yolov8n.pt",
        device: str | None = None,
        precision: str = "fp32",
        *,
        compiled_nms: bool = True,
    ):
        import torch

        if compiled_nms:
            import torchvision  # noqa: F401 (see NMS: makes Ultralytics use its compiled NMS)

        if precision not in PRECISIONS:
            raise InvalidInputError(f"unknown net precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.precision = precision

        yolo = load_yolo(weights)
        ytask = str(yolo.task)
        if ytask not in YOLO_TASKS:
            raise InvalidInputError(f"{weights}: unsupported YOLO task {ytask!r}")
        self.task: str = YOLO_TASKS[ytask]
        self.names: dict[int, str] = {int(k): str(v) for k, v in yolo.names.items()}
        self.weights_path = Path(str(yolo.ckpt_path)) if yolo.ckpt_path else Path(str(weights))
        self.weights_sha256 = file_sha256(self.weights_path)
        self.device = check_device(device)
        net: Any = yolo.model
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.model: Any = net.to(self.device).to(memory_format=getattr(torch, MEMORY_FORMAT))
        if precision != "fp32":
            _decode_in_float32(self.model, torch.device(self.device).type)
        self.stride = int(max(int(s) for s in net.stride)) if hasattr(net, "stride") else 32
        self.imgsz_cls = int(getattr(net, "args", {}).get("imgsz", 224) or 224)
        self.fingerprint = f"{Path(self.weights_path).name}:{self.weights_sha256[:16]}" + (
            "" if precision == "fp32" else f":{precision}"
        )
        self._graphs: dict[tuple[int, ...], Any] = {}

    def freeze(self, frame_shape: tuple[int, int], imgsz: int) -> bool:
        """Run the net as a frozen TorchScript graph on frames of one size, where that is exact.

        Detection and segmentation in fp32 on CPU: the net is traced on the input
        :meth:`detect` makes of an ``(H, W)`` frame at ``imgsz`` and frozen. The graph computes
        the same outputs bit for bit (the same operators, without Python between them) in about
        10 % less time (yolov8n on PETS's 384x512 input at one thread: 48 against 54 ms); inputs
        of any other shape run eagerly. A trace holds the head's anchors for its shape, hence one
        graph per shape. ``torch.jit`` is deprecated in favour of ``torch.compile``, which gained
        nothing here (53 ms after 33 s of compiling); where tracing fails the net runs eagerly.

        Call it before other threads use the net (tracing silences torch's warnings for a moment).

        Returns:
            Whether a graph now serves that shape.
        """
        import warnings

        import torch

        if self.task == "classification" or self.precision != "fp32" or torch.device(self.device).type != "cpu":
            return False
        height, width = frame_shape
        _, box = self.letterbox(np.zeros((height, width, 3), np.uint8), imgsz)
        x = torch.zeros((1, 3, *box.input_shape), device=self.device).contiguous(
            memory_format=getattr(torch, MEMORY_FORMAT)
        )
        if tuple(x.shape) in self._graphs:
            return True
        with warnings.catch_warnings():
            # TracerWarnings name the head's shape checks (hence a graph per shape); the rest are deprecations.
            warnings.simplefilter("ignore")
            try:
                with torch.no_grad():
                    traced = torch.jit.trace(_traceable(self.model), x, check_trace=False)  # type: ignore[no-untyped-call]
                    graph = torch.jit.freeze(traced)
            except (RuntimeError, AttributeError, TypeError):
                return False
        self._graphs[tuple(x.shape)] = graph
        return True

    # ---- preprocessing -------------------------------------------------------------------

    def letterbox(self, frame: Frame, imgsz: int) -> tuple[NDArray[np.uint8], Letterbox]:
        """Resize and pad a BGR frame exactly as Ultralytics ``val`` does for a batch of one."""
        import cv2

        h0, w0 = frame.shape[:2]
        r = imgsz / max(h0, w0)
        im: Any = frame
        if r != 1:
            w, h = min(math.ceil(w0 * r), imgsz), min(math.ceil(h0 * r), imgsz)
            im = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        h1, w1 = im.shape[:2]
        # val's rectangle for a batch: ceil(shape * imgsz / stride + 0.5) * stride on the
        # aspect-ratio-normalised shape.
        ar = h0 / w0
        rel = (ar, 1.0) if ar < 1 else (1.0, 1.0 / ar)
        ih, iw = (int(np.ceil(s * imgsz / self.stride + 0.5)) * self.stride for s in rel)
        ratio = min(ih / h1, iw / w1, 1.0)
        nw, nh = max(round(w1 * ratio), 1), max(round(h1 * ratio), 1)
        if (nw, nh) != (w1, h1):
            im = cv2.resize(im, (nw, nh), interpolation=cv2.INTER_LINEAR)
        dw, dh = (iw - nw) / 2, (ih - nh) / 2
        top, bottom = round(dh - 0.1), round(dh + 0.1)
        left, right = round(dw - 0.1), round(dw + 0.1)
        im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114,) * 3)
        total = r * ratio
        pad = (float(left), float(top))
        return im, Letterbox((h0, w0), (ih, iw), total, pad, (nh, nw), (h1, w1))

    def to_tensor(self, images: Sequence[NDArray[np.uint8]]) -> torch.Tensor:
        """Stack BGR uint8 images into a float RGB NCHW tensor in 0..1 on the device."""
        import torch

        arr = np.stack([im[:, :, ::-1].transpose(2, 0, 1) for im in images])
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device).float() / 255.0
        return x.contiguous(memory_format=getattr(torch, MEMORY_FORMAT))

    def classify_tensor(self, frames_bgr: Sequence[Frame]) -> torch.Tensor:
        """Apply Ultralytics' classification transforms (resize short side, centre crop)."""
        import torch
        from PIL import Image
        from ultralytics.data.augment import classify_transforms

        tf = classify_transforms(size=self.imgsz_cls)
        ims = [tf(Image.fromarray(np.ascontiguousarray(f[:, :, ::-1]))) for f in frames_bgr]
        return torch.stack(ims).to(self.device).float().contiguous(memory_format=getattr(torch, MEMORY_FORMAT))

    # ---- inference -----------------------------------------------------------------------

    def detect(
        self,
        frames: Sequence[Frame],
        settings: InferenceSettings = InferenceSettings(),
        *,
        color: ColorOrder = "bgr",
    ) -> list[Detections]:
        """Detect (and for a segmentation net, segment) objects in frames.

        Args:
            frames: HxWx3 uint8 frames.
            settings: Inference settings (default: Ultralytics val's).
            color: Channel order of ``frames``.

        Returns:
            One :class:`Detections` per frame, in frame coordinates, masks at frame resolution
            for a segmentation net.
        """
        import torch

        if self.task == "classification":
            raise InvalidInputError(f"{self.weights_path}: a classification net does not detect")
        bgr = to_bgr(frames, color)
        out: list[Detections] = [Detections.empty((1, 1))] * len(bgr)
        boxes_in: list[tuple[int, NDArray[np.uint8], Letterbox]] = []
        for i, f in enumerate(bgr):
            im, lb = self.letterbox(f, settings.imgsz)
            boxes_in.append((i, im, lb))
        # Frames of one size share a batch; a video's frames all do.
        groups: dict[tuple[int, int], list[tuple[int, NDArray[np.uint8], Letterbox]]] = {}
        for item in boxes_in:
            groups.setdefault(item[2].input_shape, []).append(item)
        with torch.inference_mode():
            for items in groups.values():
                for s in range(0, len(items), settings.batch):
                    chunk = items[s : s + settings.batch]
                    x = self.to_tensor([im for _, im, _ in chunk])
                    dets = self._postprocess(self._forward(x), [lb for _, _, lb in chunk], settings)
                    for (i, _, _), d in zip(chunk, dets, strict=True):
                        out[i] = d
        return out

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Split a forward pass into the prediction tensor (B, 4 + nc [+ nm], A) and protos."""
        return _split(self._forward(x))

    def _forward(self, x: torch.Tensor) -> Any:
        """The network's outputs on ``x``, in float32 whatever :attr:`precision` it runs in."""
        import torch

        if self.precision == "fp32":
            graph = self._graphs.get(tuple(x.shape))
            return self.model(x) if graph is None else graph(x)
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
            return _to_float(self.model(x))

    def _postprocess(self, preds: Any, lbs: Sequence[Letterbox], settings: InferenceSettings) -> list[Detections]:
        import torch
        from ultralytics.utils import nms, ops

        pred, proto = _split(preds)
        seg = self.task == "segmentation"
        outputs = nms.non_max_suppression(
            pred,
            settings.conf,
            settings.iou,
            nc=len(self.names) if seg else 0,
            multi_label=settings.multi_label,
            max_det=settings.max_det,
        )
        result = []
        for k, (o, lb) in enumerate(zip(outputs, lbs, strict=True)):
            h0, w0 = lb.shape
            boxes: Any = ops.scale_boxes(
                lb.input_shape, o[:, :4].clone(), lb.shape, ratio_pad=((lb.ratio, lb.ratio), lb.pad)
            )
            masks = grid = None
            if seg:
                assert proto is not None
                if settings.native_masks:
                    masks = _native_masks(proto[k], o[:, 6:], boxes, lb, settings.coarse_masks)
                if settings.coarse_masks:
                    # val's own masks: thresholded on the prototype grid, cropped to the input box
                    grid = ops.process_mask(proto[k], o[:, 6:], o[:, :4], shape=lb.input_shape)
                    grid = grid.to(torch.bool).cpu().numpy()
            result.append(
                Detections(
                    boxes.cpu().numpy().astype(np.float32),
                    o[:, 4].cpu().numpy().astype(np.float32),
                    o[:, 5].cpu().numpy().astype(np.int64),
                    (h0, w0),
                    masks,
                    grid,
                    lb if grid is not None else None,
                )
            )
        return result

    def classify(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr", batch: int = 32) -> NDArray[np.float32]:
        """Class probabilities (N, nc) of frames for a classification net."""
        import torch

        if self.task != "classification":
            raise InvalidInputError(f"{self.weights_path}: not a classification net")
        bgr = to_bgr(frames, color)
        probs = []
        with torch.inference_mode():
            for s in range(0, len(bgr), batch):
                y = self._forward(self.classify_tensor(bgr[s : s + batch]))
                y = y[0] if isinstance(y, (list, tuple)) else y
                probs.append(y.float().cpu().numpy())
        if not probs:
            return np.zeros((0, len(self.names)), np.float32)
        return np.concatenate(probs).astype(np.float32)


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` computes in bfloat16 natively, so that ``bf16`` runs faster than ``fp32`` there.

    A CPU needs AVX512-BF16 or AMX; a CUDA GPU, bfloat16 tensor cores (Ampere or later).
    """
    import torch

    if torch.device(device).type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's; absent in older torch
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def _to_float(outputs: Any) -> Any:
    """``outputs`` (a tensor, or lists, tuples and dicts of them) with every floating tensor in float32."""
    import torch

    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_to_float(o) for o in outputs)
    if isinstance(outputs, dict):
        return {key: _to_float(value) for key, value in outputs.items()}
    return outputs


def _decode_in_float32(model: Any, device_type: str) -> None:
    """Make a detection or segmentation head decode its boxes in float32 under bf16 autocast.

    In bfloat16 a coordinate of a few hundred pixels is rounded to 1-2 px, which moves a 20 px box
    by a tenth of its size (IoU 0.89 with the fp32 net's on coco8); decoded from the head's
    bfloat16 outputs in float32, boxes stay within about 1 % of the fp32 net's. The decoding is a
    small share of the net's time.
    """
    import torch

    head = model.model[-1]
    inference = getattr(head, "_inference", None)
    if inference is None:  # a classification net: no boxes
        return

    def decode(x: Any) -> Any:
        with torch.autocast(device_type, enabled=False):
            return inference(_to_float(x))

    head._inference = decode


def _native_masks(
    proto: torch.Tensor,
    coeffs: torch.Tensor,
    boxes: torch.Tensor,
    lb: Letterbox,
    coarse: bool = False,
) -> NDArray[np.bool_]:
    """Instance masks at the frame's resolution from prototypes, coefficients and frame boxes.

    ``ops.process_mask_native`` infers the letterbox padding assuming one side is unpadded,
    which val's rectangles (padded on both sides) break, so the padding is passed explicitly.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's convention)
    from ultralytics.utils import ops

    h0, w0 = lb.shape
    out = np.zeros((len(coeffs), h0, w0), bool)
    c, mh, mw = proto.shape
    chunk = max(1, 8_000_000 // (lb.input_shape[0] * lb.input_shape[1] + h0 * w0))
    for s in range(0, len(coeffs), chunk):
        logits = (coeffs[s : s + chunk] @ proto.float().view(c, -1)).view(-1, mh, mw)
        if coarse:
            logits = logits.gt(0.0).float() * 2.0 - 1.0
            up = F.interpolate(logits[None], lb.input_shape, mode="nearest")
        else:
            up = F.interpolate(logits[None], lb.input_shape, mode="bilinear", align_corners=False)
        native = ops.scale_masks(up, (h0, w0), ratio_pad=((lb.ratio, lb.ratio), lb.pad))[0]
        m = ops.crop_mask(native.gt(0.0).byte(), boxes[s : s + chunk])
        out[s : s + chunk] = m.to(torch.bool).cpu().numpy()
    return out


def _traceable(net: Any) -> Any:
    """``net`` as a module whose output is what :func:`_split` reads of it (a tensor, or two).

    The head's eval output also holds a dict of tensors and lists, which tracing refuses.
    """
    import torch

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> Any:
            pred, proto = _split(self.net(x))
            return pred if proto is None else (pred, proto)

    return Outputs().eval()


def _split(preds: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (prediction tensor, mask prototypes or None) from a YOLO head's eval output."""
    if isinstance(preds, (list, tuple)):
        first = preds[0]
        if isinstance(first, (list, tuple)):  # segment: ((pred, proto), feats) in some versions
            return first[0], first[1]
        second = preds[1] if len(preds) > 1 else None
        if second is not None and hasattr(second, "ndim") and second.ndim == 4:
            return first, second  # segment: (pred, proto)
        return first, None
    return preds, None

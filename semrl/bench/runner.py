"""The rate-accuracy benchmark: real encodes by the patched x265, FFmpeg decodes, real task nets.

For every method and operating point each picture (or clip) is encoded in-process, the stream is
decoded by FFmpeg and checked equal to the encoder's reconstruction, and the task net runs on the
decoded pictures. Rate is whole-stream bits per original pixel (images) or kbit/s (video).

Pictures must have even sizes for 4:2:0: an odd image is padded by one row or column of edge
pixels before coding and the decoded picture is cropped back before the task net and the
distortion metrics; its rate is still counted per original pixel. The reference for "no loss" is
the 4:2:0 picture the encoder receives (RGB -> BT.601 4:2:0 -> RGB, no coding); the score on the
original file (JPEG) is reported beside it.

Encodes (stream and statistics) and task evaluations are cached under
``<semrl cache>/bench``, keyed by the picture's content hash, the encoder configuration, the
offsets' hash, the x265 version and patch hash, and the weights' sha256, so a rerun computes only
what changed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.policy import Policy, PolicyInput, apply_offsets, describe
from semrl.codec import AnnexBWriter, Encoder, EncoderConfig, Yuv420, load_library
from semrl.codec.decode import decode_ffmpeg, probe
from semrl.errors import CodecError, InputNotFoundError, InvalidInputError
from semrl.files import atomic_write
from semrl.paths import cache_root

BENCH_VERSION = 1
"""Bumped when what a cache entry holds changes meaning."""

PSNR_CAP = 100.0
"""PSNR of a picture identical to its reference is reported as this (JSON has no infinity)."""

EVAL_CHUNK = 8  # frames per task-net call: bounds memory of full-resolution instance masks


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark setting.

    Attributes:
        name: ``detection``, ``segmentation``, ``classification`` or ``video``.
        data: Dataset name, folder or yaml; for video a file or a folder of videos.
        weights: Task net weights.
        metric: Name of the headline metric.
        rate_unit: ``bpp`` or ``kbit/s``.
    """

    name: str
    data: str
    weights: str
    metric: str
    rate_unit: str

    @property
    def video(self) -> bool:
        """Whether the items are clips coded low-delay P."""
        return self.name == "video"


def default_videos() -> str:
    """The shared test-video folder."""
    from semrl.assets import assets_root

    root = assets_root()
    return str(root / "videos") if root is not None else "videos"


TASKS: dict[str, TaskSpec] = {
    "detection": TaskSpec("detection", "coco-det", "yolov8n.pt", "mAP50-95 (box)", "bpp"),
    "segmentation": TaskSpec("segmentation", "coco-seg", "yolo11n-seg.pt", "mAP50-95 (mask)", "bpp"),
    "classification": TaskSpec("classification", "imagenet-cls", "yolov8n-cls.pt", "top-1", "bpp"),
    "video": TaskSpec("video", "", "yolov8n.pt", "mAP50-95 (box, pseudo GT, COCO AP)", "kbit/s"),
}


@dataclass(frozen=True)
class Method:
    """A method: a family of operating points.

    Attributes:
        name: Unique name (``uniform``, ``x265-aq``, ``roi-d8``, ``policy:...``).
        family: ``A1``, ``A2``, ``A3`` or ``policy``.
        points: Base QPs (constant-QP methods; above 51 for a policy means a virtual base, see
            :class:`~semrl.bench.policy.PolicyInput`) or CRF values (``crf``).
        crf: Whether points are CRF values (x265's own rate control and AQ).
        policy: Offsets per CTU for constant-QP methods; None for none.
    """

    name: str
    family: str
    points: tuple[float, ...]
    crf: bool = False
    policy: Policy | None = None

    def label(self, point: float) -> str:
        """The point's label, e.g. ``qp=37`` or ``crf=30``."""
        return f"{'crf' if self.crf else 'qp'}={point:g}"


@dataclass
class Item:
    """One image or clip, in every form the benchmark needs.

    Attributes:
        name: File name.
        digest: Content hash (pixels for images; file hash and frame count for clips).
        source: Original RGB frames (unpadded) as the task net and ROI analysis see them.
        yuv: The 4:2:0 frames the encoder receives (padded to even sizes).
        shape: (H, W) of the original frames.
        fps: Frame rate of a clip; None for images.
        label: Label file (detection, segmentation) or None.
        class_id: Class of a classification image, else None.
        label_digest: Hash of the label, part of evaluation keys.
    """

    name: str
    digest: str
    source: list[NDArray[np.uint8]]
    yuv: list[Yuv420]
    shape: tuple[int, int]
    fps: float | None = None
    label: Path | None = None
    class_id: int | None = None
    label_digest: str = "none"

    @property
    def coded_size(self) -> tuple[int, int]:
        """(W, H) as encoded."""
        return self.yuv[0].width, self.yuv[0].height

    def reference(self, i: int) -> NDArray[np.uint8]:
        """Frame i after the 4:2:0 round trip, cropped to the original size (RGB)."""
        h, w = self.shape
        return self.yuv[i].to_rgb()[:h, :w]


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def pad_even(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pad an RGB frame by one row and/or column of edge pixels to an even size."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def image_item(path: Path, label: Path | None = None, class_id: int | None = None) -> Item:
    """Load an image file into an :class:`Item`."""
    from semrl.semantics.frames import read_image

    rgb = np.ascontiguousarray(read_image(path)[:, :, ::-1])
    h, w = rgb.shape[:2]
    digest = _sha(np.ascontiguousarray(rgb).tobytes() + f"{h}x{w}".encode())
    label_digest = _sha(label.read_bytes()) if label is not None and label.is_file() else "none"
    return Item(
        path.name, digest, [rgb], [Yuv420.from_rgb(pad_even(rgb))], (h, w),
        label=label, class_id=class_id, label_digest=label_digest,
    )  # fmt: skip


def video_item(path: Path, frames: int) -> Item:
    """Read the first ``frames`` frames of a video (cropped to even size) into an :class:`Item`."""
    from semrl.assets import file_sha256

    info = probe(path)
    w, h = int(str(info["width"])), int(str(info["height"]))
    w, h = w - w % 2, h - h % 2
    num, _, den = str(info.get("r_frame_rate", "25/1")).partition("/")
    fps = float(num) / float(den or 1)
    command = [
        "ffmpeg", "-v", "error", "-i", str(path), "-frames:v", str(frames), "-vf", f"crop={w}:{h}:0:0",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
    ]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    size = w * h * 3 // 2
    data = np.frombuffer(raw, np.uint8)
    yuv = [Yuv420.from_i420(data[i : i + size], w, h).copy() for i in range(0, len(raw) - size + 1, size)]
    if not yuv:
        raise InvalidInputError(f"no frames decoded from {path}")
    digest = _sha(f"{file_sha256(path)}:{len(yuv)}:{w}x{h}")
    # The clip is already 4:2:0, so the original the net and the ROI see is that picture.
    return Item(path.name, digest, [f.to_rgb() for f in yuv], yuv, (h, w), fps=fps)


def load_items(task: TaskSpec, names: dict[int, str] | None, limit: int | None, frames: int) -> list[Item]:
    """Load the items of a task's data (first ``limit`` of them)."""
    from semrl.fidelity.labels import classification_images, dataset_images

    if task.video:
        root = Path(task.data or default_videos())
        if not root.exists():
            raise InputNotFoundError(f"video file or folder not found: {root}")
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov", ".y4m")) \
            if root.is_dir() else [root]
        files = files[:limit] if limit else files
        return [video_item(f, frames) for f in files]
    if task.name == "classification":
        assert names is not None
        listed = classification_images(task.data, names)
        listed = listed[:limit] if limit else listed
        return [image_item(p, class_id=c) for p, c in listed]
    images = dataset_images(task.data)
    images = images[:limit] if limit else images
    return [image_item(im.image, im.label) for im in images]


# ---- cache -------------------------------------------------------------------------------------


class Cache:
    """Files under ``root``: ``enc/<key>.hevc|.json``, ``eval/<key>.npz``, ``analysis/<key>.npz``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("enc", "eval", "analysis"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def stream(self, key: str) -> Path:
        """Path of an encode's Annex-B stream."""
        return self.root / "enc" / f"{key}.hevc"

    def get_json(self, key: str) -> dict[str, Any] | None:
        """An encode's statistics, or None."""
        p = self.root / "enc" / f"{key}.json"
        if not p.is_file() or not self.stream(key).is_file():
            return None
        data: dict[str, Any] = json.loads(p.read_text())
        return data

    def put_json(self, key: str, data: dict[str, Any]) -> None:
        """Store an encode's statistics atomically."""
        atomic_write(self.root / "enc" / f"{key}.json", json.dumps(data).encode())

    def get_npz(self, kind: str, key: str) -> dict[str, NDArray[Any]] | None:
        """Arrays stored under ``kind`` (``eval`` or ``analysis``), or None."""
        p = self.root / kind / f"{key}.npz"
        if not p.is_file():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    def put_npz(self, kind: str, key: str, arrays: dict[str, NDArray[Any]]) -> None:
        """Store arrays atomically."""
        target = self.root / kind / f"{key}.npz"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp.npz")
        os.close(fd)
        try:
            np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ---- per-frame scores --------------------------------------------------------------------------


@dataclass
class FrameScore:
    """What a task metric needs of one frame, so the metric can be recomputed on any subset.

    Detection-like tasks: ``tp`` (N, 10) true positives at IoU 0.50..0.95, ``conf``, ``pred_cls``
    and the ground truth's ``target_cls``. Classification: ``pred_cls`` (1,) and ``target_cls``.
    """

    pred_cls: NDArray[np.int64]
    target_cls: NDArray[np.int64]
    tp: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 10), bool))
    conf: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))


def pack_scores(scores: Sequence[FrameScore]) -> dict[str, NDArray[Any]]:
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


def unpack_scores(z: dict[str, NDArray[Any]]) -> list[FrameScore]:
    """Inverse of :func:`pack_scores`."""
    out = []
    p = t = c = 0
    for n_p, n_t, n_c in zip(z["n_pred"], z["n_target"], z["n_conf"], strict=True):
        tp = z["tp"][c : c + n_c] if n_c else np.zeros((0, 10), bool)
        out.append(
            FrameScore(z["pred_cls"][p : p + n_p], z["target_cls"][t : t + n_t], tp, z["conf"][c : c + n_c])
        )
        p, t, c = p + int(n_p), t + int(n_t), c + int(n_c)
    return out


def task_metric(task: str, scores: Sequence[FrameScore]) -> tuple[float, float]:
    """(headline, secondary) metric in 0..1 of a set of frames.

    Detection and segmentation: (mAP50-95, mAP50) with Ultralytics val's AP (as
    :func:`semrl.fidelity.detection.mean_average_precision`); video: the same with COCO's
    101-point AP against pseudo ground truth; classification: (top-1, top-1).
    """
    if task == "classification":
        pred = np.concatenate([s.pred_cls for s in scores])
        target = np.concatenate([s.target_cls for s in scores])
        acc = float((pred == target).mean()) if len(target) else math.nan
        return acc, acc
    target_cls = np.concatenate([s.target_cls for s in scores])
    if len(target_cls) == 0:
        return math.nan, math.nan
    tp = np.concatenate([s.tp for s in scores])
    if len(tp) == 0:
        return 0.0, 0.0
    conf = np.concatenate([s.conf for s in scores])
    pred_cls = np.concatenate([s.pred_cls for s in scores])
    if task == "video":
        from semrl.fidelity.detection import coco_ap_per_class

        ap = coco_ap_per_class(tp, conf, pred_cls, target_cls)
    else:
        from semrl.assets import configure_ultralytics

        configure_ultralytics()
        from ultralytics.utils.metrics import ap_per_class

        ap = ap_per_class(tp, conf, pred_cls, target_cls, plot=False)[5]
    return float(ap.mean()), float(ap[:, 0].mean())


# ---- the task net ------------------------------------------------------------------------------


@dataclass
class Analysis:
    """The task net's output on one item's original frames, for ROI and pseudo ground truth.

    Attributes:
        regions: Per frame, bool (H, W) relevant pixels (objects >= 0.25 or Grad-CAM >= 0.5).
        boxes: Per frame, (N, 4) boxes of objects with confidence >= 0.25.
        cls: Per frame, (N,) their classes.
    """

    regions: list[NDArray[np.bool_]]
    boxes: list[NDArray[np.float32]]
    cls: list[NDArray[np.int64]]


class TaskNet:
    """A task's net and how it scores decoded frames of an item."""

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
        """Weights file and sha256."""
        return self.net.fingerprint

    def analyse(self, item: Item) -> Analysis:
        """Run the net on the original frames (for ROI and pseudo ground truth)."""
        from semrl.semantics.regions import task_regions
        from semrl.semantics.yolo import InferenceSettings

        # val's settings, then objects >= semrl.semantics.regions.REGION_CONF (the cached analyses' definition)
        found = task_regions(self.net, item.source, color="rgb", chunk=EVAL_CHUNK, settings=InferenceSettings())
        return Analysis([f.region for f in found], [f.boxes for f in found], [f.cls for f in found])

    def score(self, item: Item, frames: Sequence[NDArray[np.uint8]], analysis: Analysis) -> list[FrameScore]:
        """Score decoded (cropped, RGB) frames of one item."""
        name = self.task.name
        if name == "classification":
            probs = self.net.classify(list(frames), color="rgb")
            assert item.class_id is not None
            label = np.array([item.class_id], np.int64)
            return [FrameScore(np.array([int(p.argmax())], np.int64), label) for p in probs]
        from semrl.fidelity.detection import correct_matrix
        from semrl.fidelity.segmentation import MASK_EVAL
        from semrl.semantics.yolo import Detections, InferenceSettings

        settings = MASK_EVAL if name == "segmentation" else InferenceSettings()
        out: list[FrameScore] = []
        for s in range(0, len(frames), EVAL_CHUNK):
            preds = self.net.detect(list(frames[s : s + EVAL_CHUNK]), settings, color="rgb")
            for k, pred in enumerate(preds):
                i = s + k
                if name == "video":
                    n = len(analysis.boxes[i])
                    target = Detections(analysis.boxes[i], np.ones(n, np.float32), analysis.cls[i], item.shape)
                elif name == "segmentation":
                    target = self._target(item, pred.letterbox)
                else:
                    target = self._target(item, None)
                tp = correct_matrix(pred, target, "mask" if name == "segmentation" else "box")
                out.append(FrameScore(pred.cls.astype(np.int64), target.cls.astype(np.int64), tp, pred.conf))
        return out

    def _target(self, item: Item, letterbox: Any) -> Any:
        from semrl.fidelity.labels import read_yolo_labels

        if item.digest not in self._targets:
            assert item.label is not None
            masks = self.task.name == "segmentation"
            self._targets[item.digest] = [read_yolo_labels(item.label, item.shape, masks=masks, letterbox=letterbox)]
        return self._targets[item.digest][0]


# ---- one operating point -----------------------------------------------------------------------


@dataclass
class PointResult:
    """One method at one operating point, with per-frame data for the bootstrap.

    Attributes:
        method: Method name.
        family: A1, A2, A3 or policy.
        point: QP or CRF.
        label: ``qp=37`` or ``crf=30``.
        frame_bits: Per frame (all items in order), bits of its access unit (for images the
            whole stream of the image).
        frame_units: Per frame, pixels (images) or seconds (video) the rate divides by.
        scores: Per frame scores.
        psnr: Per frame RGB PSNR against the 4:2:0 reference (capped at :data:`PSNR_CAP`).
        psnr_y: Per frame luma PSNR (encoder's reconstruction against its input).
        ssim_y: Per frame luma SSIM against the 4:2:0 reference.
        encode_s: Seconds spent in x265 for the whole point (cached value when cached).
        mean_qp: Mean CTU QP over all frames.
    """

    method: str
    family: str
    point: float
    label: str
    frame_bits: list[int]
    frame_units: list[float]
    scores: list[FrameScore]
    psnr: list[float]
    psnr_y: list[float]
    ssim_y: list[float]
    encode_s: float
    mean_qp: float


def rate_of(bits: Sequence[int], units: Sequence[float], video: bool) -> float:
    """Bpp (bits / pixels) or kbit/s (bits / seconds / 1000)."""
    total = float(np.sum(units))
    return float(np.sum(bits)) / total / (1000.0 if video else 1.0)


def _ssim_y(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=255))  # type: ignore[no-untyped-call]


@dataclass
class Context:
    """What every point of a task run shares."""

    task: TaskSpec
    items: list[Item]
    net: TaskNet
    cache: Cache
    analyses: list[Analysis]
    preset: str
    keyint: int
    x265_key: str
    progress: bool = True
    counts: dict[str, int] = field(default_factory=lambda: {"encoded": 0, "encode_cached": 0, "evaluated": 0,
                                                             "eval_cached": 0})


def encode_key(ctx: Context, item: Item, config: EncoderConfig, offsets: list[NDArray[np.int32]] | None) -> str:
    """Cache key of one encode: picture, encoder configuration, offsets, x265 build."""
    cfg = {k: v for k, v in config.__dict__.items() if k not in ("log_level",)}
    cfg["gop"] = str(config.gop.value)
    off = _sha(b"".join(o.astype(np.int8).tobytes() for o in offsets)) if offsets is not None else "none"
    return _sha(json.dumps([BENCH_VERSION, item.digest, cfg, off, ctx.x265_key], sort_keys=True, default=str))


def eval_key(ctx: Context, item: Item, enc_key: str) -> str:
    """Cache key of one task evaluation of an encode (or of ``reference``/``original``)."""
    return _sha(json.dumps([BENCH_VERSION, enc_key, ctx.task.name, ctx.net.fingerprint, item.label_digest,
                            item.class_id, item.digest]))  # fmt: skip


def _config(ctx: Context, item: Item, method: Method, point: float) -> EncoderConfig:
    w, h = item.coded_size
    fps = (round((item.fps or 25.0) * 1001), 1001)
    common: dict[str, Any] = {"preset": ctx.preset, "threads": 1, "fps": fps}
    if ctx.task.video:
        common.update(gop="ldp", keyint=ctx.keyint)
    else:
        common.update(gop="intra")
    if method.crf:
        return EncoderConfig(w, h, crf=float(point), **common)
    # A base above 51 (ROI's low-rate end) is coded at 51 with offsets from the virtual base.
    return EncoderConfig(w, h, qp=min(int(point), 51), **common)


def _encode(
    ctx: Context, item: Item, config: EncoderConfig, offsets: list[NDArray[np.int32]] | None, key: str
) -> tuple[dict[str, Any], list[NDArray[np.uint8]]]:
    """Encode, write the stream, decode it with FFmpeg and check it; statistics and decoded frames."""
    h, w = item.shape
    start = time.perf_counter()
    with Encoder(config) as encoder:
        coded = []
        for i, frame in enumerate(item.yuv):
            coded += encoder.encode(frame, offsets[i] if offsets is not None else None)
        coded += encoder.flush()
    seconds = time.perf_counter() - start
    path = ctx.cache.stream(key)
    with AnnexBWriter(path) as stream:
        for c in coded:
            stream.write(c.nal)
    decoded = decode_ffmpeg(path, config.width, config.height)
    by_poc = sorted(coded, key=lambda c: c.poc)
    if len(decoded) != len(by_poc):
        raise CodecError(f"FFmpeg decoded {len(decoded)} pictures of {path}, the encoder made {len(by_poc)}")
    for i, (d, c) in enumerate(zip(decoded, by_poc, strict=True)):
        if d != c.recon:
            raise CodecError(f"{item.name} frame {i}: FFmpeg's picture differs from x265's reconstruction ({config})")
    frames = [d.to_rgb()[:h, :w] for d in decoded]
    from semrl.fidelity.distortion import psnr

    psnrs = [min(psnr(item.reference(i), f), PSNR_CAP) for i, f in enumerate(frames)]
    ssims = [_ssim_y(item.yuv[i].y[:h, :w], d.y[:h, :w]) for i, d in enumerate(decoded)]
    stats = {
        "frame_bits": [c.bits for c in by_poc],
        "encode_s": seconds,
        "psnr": psnrs,
        "psnr_y": [min(c.psnr_y, PSNR_CAP) for c in by_poc],
        "ssim_y": ssims,
        "mean_qp": float(np.mean([c.ctu_qp.mean() for c in by_poc])),
        "decoder_check": "ffmpeg == x265 reconstruction",
    }
    ctx.cache.put_json(key, stats)
    return stats, frames


def _decode_cached(item: Item, config: EncoderConfig, path: Path) -> list[NDArray[np.uint8]]:
    h, w = item.shape
    return [d.to_rgb()[:h, :w] for d in decode_ffmpeg(path, config.width, config.height)]


def run_point(ctx: Context, method: Method, point: float) -> PointResult:
    """Encode every item at one operating point and score the decoded frames."""
    result = PointResult(method.name, method.family, point, method.label(point), [], [], [], [], [], [], 0.0, 0.0)
    qps = []
    for item, analysis in zip(ctx.items, ctx.analyses, strict=True):
        config = _config(ctx, item, method, point)
        offsets: list[NDArray[np.int32]] | None = None
        if method.policy is not None and not method.crf:
            ctu_shape = (math.ceil(config.height / 64), math.ceil(config.width / 64))
            offsets = []
            for i, frame in enumerate(item.yuv):
                inputs = PolicyInput(frame.to_rgb(), int(point), ctu_shape, analysis.regions[i], analysis.boxes[i], i)
                offsets.append(apply_offsets(method.policy, inputs, config.qp))
            if not any(o.any() for o in offsets):
                offsets = None
        key = encode_key(ctx, item, config, offsets)
        ekey = eval_key(ctx, item, key)
        stats = ctx.cache.get_json(key)
        cached_eval = ctx.cache.get_npz("eval", ekey)
        frames: list[NDArray[np.uint8]] | None = None
        ctx.counts["encoded" if stats is None else "encode_cached"] += 1
        ctx.counts["evaluated" if cached_eval is None else "eval_cached"] += 1
        if stats is None:
            stats, frames = _encode(ctx, item, config, offsets, key)
        if cached_eval is None:
            if frames is None:
                frames = _decode_cached(item, config, ctx.cache.stream(key))
            scores = ctx.net.score(item, frames, analysis)
            ctx.cache.put_npz("eval", ekey, pack_scores(scores))
        else:
            scores = unpack_scores(cached_eval)
        n = len(item.yuv)
        h, w = item.shape
        result.frame_bits += [int(b) for b in stats["frame_bits"]]
        result.frame_units += [1.0 / float(item.fps)] * n if item.fps else [float(h * w)] * n
        result.scores += scores
        result.psnr += [float(v) for v in stats["psnr"]]
        result.psnr_y += [float(v) for v in stats["psnr_y"]]
        result.ssim_y += [float(v) for v in stats["ssim_y"]]
        result.encode_s += float(stats["encode_s"])
        qps += [float(stats["mean_qp"])] * n
    result.mean_qp = float(np.mean(qps))
    return result


def reference_scores(ctx: Context, which: str) -> list[FrameScore]:
    """Scores of the uncoded frames: ``reference`` (4:2:0 round trip) or ``original`` (the file)."""
    out: list[FrameScore] = []
    for item, analysis in zip(ctx.items, ctx.analyses, strict=True):
        key = eval_key(ctx, item, which)
        cached = ctx.cache.get_npz("eval", key)
        if cached is not None:
            out += unpack_scores(cached)
            continue
        frames = [item.reference(i) for i in range(len(item.yuv))] if which == "reference" else item.source
        scores = ctx.net.score(item, frames, analysis)
        ctx.cache.put_npz("eval", key, pack_scores(scores))
        out += scores
    return out


def analyse_items(ctx: Context) -> list[Analysis]:
    """The task net's output on every item's original frames (cached)."""
    out = []
    for item in _progress(ctx.items, "analysing originals", ctx.progress):
        key = _sha(json.dumps([BENCH_VERSION, "analysis", ctx.task.name, ctx.net.fingerprint, item.digest]))
        z = ctx.cache.get_npz("analysis", key)
        if z is None:
            a = ctx.net.analyse(item)
            h, w = item.shape
            z = {
                "regions": np.packbits(np.stack(a.regions).reshape(len(a.regions), -1), axis=1),
                "boxes": np.concatenate(a.boxes) if a.boxes else np.zeros((0, 4), np.float32),
                "cls": np.concatenate(a.cls) if a.cls else np.zeros(0, np.int64),
                "n": np.array([len(b) for b in a.boxes], np.int64),
                "shape": np.array([h, w], np.int64),
            }
            ctx.cache.put_npz("analysis", key, z)
        out.append(_unpack_analysis(z))
    return out


def _unpack_analysis(z: dict[str, NDArray[Any]]) -> Analysis:
    h, w = (int(v) for v in z["shape"])
    regions = [np.unpackbits(r, count=h * w).astype(bool).reshape(h, w) for r in z["regions"]]
    bounds = np.concatenate([[0], np.cumsum(z["n"])])
    boxes = [z["boxes"][a:b].astype(np.float32) for a, b in itertools.pairwise(bounds)]
    cls = [z["cls"][a:b].astype(np.int64) for a, b in itertools.pairwise(bounds)]
    return Analysis(regions, boxes, cls)


def _progress(iterable: Sequence[Any], desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False)


def x265_key() -> tuple[str, dict[str, str]]:
    """Cache key part and description of the loaded x265 build."""
    build = load_library().build
    info = {"x265": build.version, "x265_build": str(build.build_number), "x265_patch_hash": build.patch_hash}
    return f"{build.version}:{build.build_number}:{build.patch_hash}", info


def make_context(
    task: TaskSpec,
    *,
    limit: int | None = None,
    frames: int = 30,
    preset: str = "medium",
    keyint: int = 250,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Context:
    """Load the net and the items, and analyse the originals."""
    key, _ = x265_key()
    net = TaskNet(task)
    items = load_items(task, net.net.names, limit, frames)
    if not items:
        raise InvalidInputError(f"no items found for task {task.name} in {task.data or default_videos()}")
    cache = Cache(cache_dir if cache_dir is not None else cache_root() / "bench")
    ctx = Context(task, items, net, cache, [], preset, keyint, key, progress)
    ctx.analyses = analyse_items(ctx)
    return ctx


def run_methods(
    ctx: Context, methods: Sequence[Method], on_point: Callable[[PointResult], None] | None = None
) -> list[PointResult]:
    """Run every operating point of every method (one at a time, with a progress bar)."""
    jobs = [(m, p) for m in methods for p in m.points]
    results = []
    bar = _progress(jobs, f"{ctx.task.name} points", ctx.progress)
    for m, p in bar:
        if ctx.progress:
            bar.set_postfix_str(f"{m.name} {m.label(p)}")
        r = run_point(ctx, m, p)
        results.append(r)
        if on_point is not None:
            on_point(r)
    return results


def method_id(method: Method) -> str:
    """Description of a method for the report."""
    return describe(method.policy) if method.policy is not None else ("x265 crf + aq" if method.crf else "constant qp")

"""What an encode kept: the task's accuracy on the encoded video against the original, frame by frame.

``semrl eval ORIGINAL ENCODED --task T`` decodes both (the original as encode read it), runs the
task net on each frame of both, and scores the encoded frames:

- detection and segmentation: mAP50-95 (box, or mask) against the net's objects on the original
  frame (pseudo ground truth, COCO AP: the original scores 1.0), or against real person labels
  (MOTChallenge ``gt.txt``; found beside the original like the benchmark finds them, or named with
  ``--labels``; person class only, detections overlapping no labelled box are "don't care");
- classification: whether the top-1 class is the original frame's (agreement).

Beside the accuracy: each frame's bits (those of the coded stream, parameter sets with the first
picture, as ``semrl encode`` counts them: :func:`frame_bits`), luma PSNR and SSIM against the
original. It writes a per-frame CSV, a summary JSON and a PNG of accuracy and bits over time, each
atomically.
"""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InputWarning, InvalidInputError
from semrl.files import atomic_write, json_text
from semrl.media import open_source
from semrl.semantics import TASKS


@dataclass
class EvalReport:
    """The result of an evaluation.

    Attributes:
        original: The original video.
        encoded: The encoded video.
        task: The task.
        against: ``pseudo ground truth`` or the labels file.
        frames: Frames compared.
        fps: Frame rate of the encoded video.
        accuracy: The pooled task metric over all frames in 0..1 (mAP50-95 or top-1 agreement).
        accuracy50: mAP50 (detection, segmentation) or the same agreement.
        objects: mAP50-95 with each class's AP weighted by its objects, so a class seen a few times
            moves it by its objects' share, not a whole class's (detection, segmentation; the
            benchmark's ``objects``), or the same agreement.
        kbps: Rate of the encoded video.
        psnr_y: Mean luma PSNR (dB).
        ssim_y: Mean luma SSIM.
        rows: Per frame: index, bits, accuracy (NaN for a frame with nothing to find), PSNR, SSIM.
    """

    original: str
    encoded: str
    task: str
    against: str
    frames: int
    fps: float
    accuracy: float
    accuracy50: float
    objects: float
    kbps: float
    psnr_y: float
    ssim_y: float
    rows: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        """The lines ``semrl eval`` prints."""
        metric = "top-1 agreement" if self.task == "classification" else "mAP50-95"
        detail = f" (mAP50 {100 * self.accuracy50:.1f}, object-weighted {100 * self.objects:.1f})"
        return (
            f"{self.encoded} against {self.original} ({self.task}, {self.against}): {self.frames} frames\n"
            f"{metric} {100 * self.accuracy:.1f}{'' if self.task == 'classification' else detail}"
            f", {self.kbps:.1f} kbit/s, luma PSNR {self.psnr_y:.2f} dB, SSIM {self.ssim_y:.4f}"
        )

    def write(self, folder: Path, stem: str) -> list[Path]:
        """``STEM.json`` (summary and rows), ``STEM.csv`` (rows) and ``STEM.png`` (plot) in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        out = [
            atomic_write(folder / f"{stem}.json", json_text(asdict(self))),  # a frame without objects: null
            atomic_write(folder / f"{stem}.csv", _csv(self.rows)),
            atomic_write(folder / f"{stem}.png", _plot(self)),
        ]
        return out


def _csv(rows: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def _plot(report: EvalReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = [r["frame"] for r in report.rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    top.plot(index, [100 * r["accuracy"] for r in report.rows], marker=".", ms=3, lw=0.8)
    top.set_ylabel("top-1 agreement" if report.task == "classification" else "mAP50-95 x 100")
    top.set_ylim(-2, 102)
    top.grid(alpha=0.3)
    bottom.bar(index, [r["bits"] / 1000 for r in report.rows], width=1.0)
    bottom.set_ylabel("kbit per frame")
    bottom.set_xlabel("frame")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{Path(report.encoded).name}: {report.task} against {report.against}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


ANNEX_B_FILTERS = {"hevc": "hevc_mp4toannexb", "h264": "h264_mp4toannexb"}
"""FFmpeg's bitstream filters that turn a container's packets of these codecs into the Annex B
stream an encoder writes: the parameter sets that MP4 keeps in its header go back in front of the
first picture, and each NAL unit's length field becomes a start code."""


def frame_bits(path: Path) -> list[int]:
    """Bits of each picture of a video file, in display order, as in the coded stream.

    An HEVC (or H.264) picture counts as in an Annex B stream, parameter sets with the first
    picture, wherever the container keeps them: so an MP4 and the raw ``.hevc`` of one encode come
    to the bits ``semrl encode`` reports, within a byte for each NAL unit that FFmpeg's filter
    gives a four-byte start code where x265 wrote three (the first picture's slice, after the
    parameter sets). An MP4's timestamps give the display order; a raw ``.hevc`` stream has none,
    so its pictures are decoded to find it (it differs from the decode order with B-frames,
    ``--gop ra``).
    """
    import av
    from av.bitstream import BitStreamFilterContext

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            name = ANNEX_B_FILTERS.get(stream.codec_context.name)
            to_annex_b = None if name is None else BitStreamFilterContext(name, stream)
            packets: list[Any] = []
            for packet in container.demux(stream):
                if to_annex_b is None:
                    packets.append(packet)
                else:  # the filter keeps each packet's timestamps; a flush (size 0) yields what it held
                    packets += to_annex_b.filter(packet if packet.size else None)
            packets = [p for p in packets if p.size]
            order = (
                sorted(range(len(packets)), key=lambda i: (packets[i].pts, i))
                if all(p.pts is not None for p in packets)
                else _display_order(stream.codec_context, packets)
            )
    except (av.FFmpegError, OSError, IndexError) as e:
        raise InvalidInputError(f"cannot read the packets of {path}: {e}") from e
    return [8 * packets[i].size for i in order]


def _display_order(decoder: Any, packets: list[Any]) -> list[int]:
    """The indices of ``packets`` (in decode order, without timestamps) in the order their pictures are shown.

    Each packet is stamped with its index, which the decoder hands on to the picture it makes, in
    display order. Where the pictures do not match the packets one for one, the decode order.
    """
    shown: list[int] = []
    for i, packet in enumerate(packets):
        packet.pts = packet.dts = i
        shown += [frame.pts for frame in decoder.decode(packet)]
    shown += [frame.pts for frame in decoder.decode(None)]
    return shown if sorted(shown) == list(range(len(packets))) else list(range(len(packets)))


def evaluate(
    original: Path,
    encoded: Path,
    task: str,
    *,
    labels: Path | None = None,
    pseudo_gt: bool = False,
    max_frames: int | None = None,
    device: str | None = None,
    weights: str | None = None,
    classes: tuple[str, ...] | None = None,
) -> EvalReport:
    """Score an encoded video against its original (see the module docstring).

    A target without a single object on the frames compared leaves the accuracy undefined: NaN
    (``semrl eval`` refuses it; a benchmark's row keeps it).

    Args:
        original: The video (or image, or folder of images) that was encoded.
        encoded: The encode (``.mp4`` or ``.hevc``).
        task: ``detection``, ``segmentation`` or ``classification``.
        labels: A MOTChallenge ``gt.txt`` in the original's pixels (detection only); None looks for
            labels beside the original as the benchmark does, else pseudo ground truth.
        pseudo_gt: Score against the net's own objects on the original even where labels lie
            beside it (a labelled clip then reads like any other).
        max_frames: Compare at most this many frames.
        device: Torch device of the task net.
        weights: The task net's weights (any Ultralytics checkpoint of the task; default the task's).
        classes: Score only these classes (detection, segmentation; against pseudo ground truth).

    Raises:
        InvalidInputError: Unknown task, sizes that differ, labels with another task, classes with
            classification, no frames.
        InputNotFoundError: A file is missing.
    """
    from semrl.fidelity.distortion import clip_psnr, frame_psnr, plane_psnr, plane_ssim
    from semrl.semantics.config import DEFAULT_WEIGHTS
    from semrl.semantics.yolo import YoloNet, class_ids

    if task not in TASKS:
        raise InvalidInputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if pseudo_gt and labels is not None:
        raise InvalidInputError("give --labels or --pseudo-gt, not both: one says what to score against")
    if task == "classification" and classes is not None:
        raise InvalidInputError(
            "--classes scores the objects of detection and segmentation; classification compares each frame's top-1 "
            "class with the original's: drop --classes"
        )
    with (
        open_source(encoded, max_frames=max_frames) as decoded,
        open_source(original, max_frames=max_frames, crop_even=True) as reference,
    ):
        fps = float(decoded.info.fps)
        size, wanted_size = (decoded.info.width, decoded.info.height), (reference.info.width, reference.info.height)
        if size != wanted_size:
            raise InvalidInputError(
                f"{encoded} is {size[0]}x{size[1]} but {original} is {wanted_size[0]}x{wanted_size[1]}: "
                "not an encode of it"
            )
        net = YoloNet(weights or DEFAULT_WEIGHTS[task], device=device)
        if net.task != task:
            raise InvalidInputError(f"--weights {weights} is a {net.task} net, not a {task} net")
        against = "the original's classes" if task == "classification" else "pseudo ground truth"
        truth = None
        wanted = None
        if task != "classification":
            truth = None if pseudo_gt else _labels(original, labels, task, (size[1], size[0]))
            if truth is not None:
                against = f"labels {truth[0]}"
                if classes is not None and set(classes) != {"person"}:
                    raise InvalidInputError(
                        f"--classes {','.join(classes)}: the labels {truth[0]} box persons only; drop --classes, "
                        "or add --pseudo-gt to score those classes against the net's objects on the original"
                    )
            if classes is not None:
                wanted = np.array(sorted(class_ids(net.names, classes, net.weights_path.name)), np.int64)
                against += f" ({', '.join(classes)})"
        scores = _Scores(net, task, None if truth is None else truth[1], wanted)
        psnrs: list[float] = []
        ssims: list[float] = []
        # Frames go through in batches of the net's, so memory stays flat however long the clip.
        encoded_frames, original_frames = iter(decoded), iter(reference)
        left_over = 0  # encoded frames past the original's last
        while not left_over:
            batch = []
            for frame in itertools.islice(encoded_frames, EVAL_BATCH):
                source = next(original_frames, None)
                if source is None:
                    left_over = 1 + sum(1 for _ in encoded_frames)
                    break
                batch.append((source, frame))
            if not batch:
                break
            psnrs += [frame_psnr(plane_psnr(r.y, d.y)) for r, d in batch]
            ssims += [plane_ssim(r.y, d.y) for r, d in batch]
            scores.add([r.to_rgb() for r, _ in batch], [d.to_rgb() for _, d in batch])
    n = len(psnrs)
    if not n:
        raise InvalidInputError(f"no frames to compare: {original if left_over else encoded} gives none")
    if left_over:
        counts = f"{encoded} has {n + left_over} frames and {original} {n}"
        warnings.warn(InputWarning(f"{counts}: the first {n} compared"), stacklevel=2)
    bits = frame_bits(encoded)[:n]
    if len(bits) < n:
        raise InvalidInputError(f"{encoded}: {len(bits)} packets for {n} frames")
    per_frame, main, secondary, objects = scores.result()
    rows = [
        {"frame": i, "bits": bits[i], "accuracy": per_frame[i], "psnr_y": psnrs[i], "ssim_y": ssims[i]}
        for i in range(n)
    ]
    return EvalReport(
        str(original), str(encoded), task, against, n, fps, main, secondary, objects,
        float(np.sum(bits)) * fps / n / 1000, clip_psnr(psnrs), float(np.mean(ssims)), rows,
    )  # fmt: skip


EVAL_BATCH = 8
"""Frames the task net reads at once, and all the frames ``semrl eval`` holds at a time."""


def _labels(original: Path, labels: Path | None, task: str, shape: tuple[int, int]) -> tuple[Path, list[Any]] | None:
    from semrl.fidelity.labels import clip_labels, read_mot_boxes, sequence_size

    if labels is not None and task != "detection":
        raise InvalidInputError(f"--labels are MOTChallenge person boxes, for detection, not {task}")
    h, w = shape
    if labels is not None:
        size = sequence_size(labels.parent.parent)  # a gt.txt inside its MOTChallenge sequence folder
        found: tuple[Path, float] | None = (labels, w / size[0] if size else 1.0)
    else:
        found = clip_labels(original, w, h) if task == "detection" else None
    if found is None:
        return None
    return found[0], read_mot_boxes(found[0], None, shape, found[1])


class _Scores:
    """The task's score of each encoded frame, fed batch by batch, and the pooled metric at the end.

    Detection and segmentation: each frame's predictions matched against its target (the net's
    objects on the original, or the labels), pooled as COCO AP (Ultralytics' AP against labels);
    segmentation against the original's own finds, on the same mask grid as the benchmark.
    Classification: whether the frame's top-1 class is the original's.
    """

    def __init__(self, net: Any, task: str, truth: list[Any] | None, wanted: NDArray[np.int64] | None) -> None:
        from semrl.fidelity.segmentation import MASK_SCORE
        from semrl.semantics.yolo import InferenceSettings

        self.net, self.task, self.truth, self.wanted = net, task, truth, wanted
        self.kind: Literal["box", "mask"] = "mask" if task == "segmentation" else "box"
        self.settings = MASK_SCORE if task == "segmentation" else InferenceSettings()
        self.records: list[Any] = []
        self.per_frame: list[float] = []

    def add(self, ref: list[NDArray[np.uint8]], dec: list[NDArray[np.uint8]]) -> None:
        """Scores the next frames: the originals' and the encoded ones' RGB pictures, in order."""
        from semrl.fidelity.classification import top1_classes
        from semrl.fidelity.detection import average_precision, match_frame, pseudo_target
        from semrl.fidelity.labels import labelled_subset

        if self.task == "classification":
            same = top1_classes(self.net.classify(dec, color="rgb")) == top1_classes(
                self.net.classify(ref, color="rgb")
            )
            self.per_frame += [float(v) for v in same]
            return
        decoded = self.net.detect(dec, self.settings, color="rgb")
        originals = self.net.detect(ref, self.settings, color="rgb") if self.truth is None else [None] * len(dec)
        for pred, orig in zip(decoded, originals, strict=True):
            if self.truth is None:
                target = pseudo_target(orig)
                if self.wanted is not None:
                    keep = np.isin(target.cls, self.wanted), np.isin(pred.cls, self.wanted)
                    target, pred = target.subset(keep[0]), pred.subset(keep[1])
            else:
                target = self._label(len(self.per_frame), pred.shape)
                pred = labelled_subset(pred, target)
            m = match_frame(pred, target, self.kind)
            self.records.append(m)
            self.per_frame.append(average_precision([m], "coco" if self.truth is None else "ultralytics").map50_95)

    def _label(self, index: int, shape: tuple[int, int]) -> Any:
        """The labels of frame ``index``; none past the last labelled frame."""
        from semrl.semantics.yolo import Detections

        assert self.truth is not None
        if index < len(self.truth):
            return self.truth[index]
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), shape)

    def result(self) -> tuple[list[float], float, float, float]:
        """Per-frame scores, then the pooled metric, its 50 % IoU variant and its object-weighted one."""
        from semrl.fidelity.detection import average_precision

        if self.task == "classification":
            agreement = float(np.mean(self.per_frame))
            return self.per_frame, agreement, agreement, agreement
        pooled = average_precision(self.records, "coco" if self.truth is None else "ultralytics")
        return self.per_frame, pooled.map50_95, pooled.map50, pooled.map50_95_objects

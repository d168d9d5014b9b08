"""What a benchmark runs on: the task settings and the images or clips, in every form it needs.

Pictures must have even sizes for 4:2:0: an odd image is padded by one row or column of edge
pixels before coding (:func:`pad_even`) and the decoded picture is cropped back before the task
net and the distortion metrics. The reference for "no loss" is the 4:2:0 picture the encoder
receives (:meth:`Item.reference`).

Clips are scored against the net's own objects on the source (pseudo ground truth) and, where a
clip has real labels (:func:`semrl.fidelity.labels.clip_labels`: MOTChallenge person boxes),
against those too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from semrl.codec import Yuv420, require_one_ctu
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.media import VIDEO_SUFFIXES, open_source
from semrl.semantics.yolo import Detections

_T = TypeVar("_T")

VIDEO_FOLDERS = ("videos", "videos-extra", "videos-extra/labelled/TUD-Campus")
"""The shared asset folders whose clips make the default video benchmark."""


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark setting.

    Attributes:
        name: ``detection``, ``segmentation``, ``classification`` or ``video``.
        data: Dataset name, folder or yaml; for video a file or a folder of videos (empty: the
            shared clips of :data:`VIDEO_FOLDERS`).
        weights: Task net weights.
        metric: Name of the headline metric.
        rate_unit: ``bpp`` or ``kbit/s``.
        split: Images: the dataset split (the key of its ``data.yaml``, or the classification
            dataset's folder); ``val`` for the headline figures, ``train`` to tune on.
        sure_conf: Video: the pseudo ground truth is only the original's finds at this confidence
            or more, and detections of its less sure finds are "don't care"
            (:func:`semrl.fidelity.detection.dont_care_subset`); None: every find at
            :data:`semrl.fidelity.detection.PSEUDO_GT_CONF` or more is ground truth.
    """

    name: str
    data: str
    weights: str
    metric: str
    rate_unit: str
    split: str = "val"
    sure_conf: float | None = None

    @property
    def video(self) -> bool:
        """Whether the items are clips coded low-delay P."""
        return self.name == "video"

    @property
    def scoring(self) -> str:
        """What a coding's scores depend on besides the net: the task, and any non-default pseudo ground truth."""
        return self.name if self.sure_conf is None else f"{self.name}:sure={self.sure_conf:g}"


def default_videos() -> str:
    """The shared test-video folders, comma-separated (for reports)."""
    from semrl.assets import assets_root

    root = assets_root()
    return ",".join(str(root / f) if root is not None else f for f in VIDEO_FOLDERS)


def video_files(data: str) -> list[Path]:
    """The clips of ``data`` (a video file, a folder of videos, or several comma-separated).

    Raises:
        InputNotFoundError: A named file or folder does not exist, or none holds a video.
    """
    files: list[Path] = []
    for part in (data or default_videos()).split(","):
        root = Path(part.strip())
        if not root.exists():
            raise InputNotFoundError(f"video file or folder not found: {root}")
        if root.is_dir():
            files += sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            files.append(root)
    if not files:
        raise InputNotFoundError(f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) in {data or default_videos()}")
    return files


TASKS: dict[str, TaskSpec] = {
    "detection": TaskSpec("detection", "coco-det", "yolov8n.pt", "mAP50-95 (box)", "bpp"),
    "classification": TaskSpec("classification", "imagenet-cls", "yolov8n-cls.pt", "top-1", "bpp"),
    "segmentation": TaskSpec("segmentation", "coco-seg", "yolo11n-seg.pt", "mAP50-95 (mask)", "bpp"),
    "video": TaskSpec("video", "", "yolov8n.pt", "mAP50-95 (box, pseudo GT, COCO AP)", "kbit/s"),
}
"""The four benchmark settings, in the order ``--task all`` runs them."""


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
        frame_labels: Per frame, a clip's real person boxes
            (:func:`semrl.fidelity.labels.clip_labels`), or None.
        clip: The file a clip's frames come from (several windows of one clip share it; the
            bootstrap draws them together); empty for images.
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
    frame_labels: list[Detections] | None = None
    clip: str = ""
    _references: dict[int, NDArray[np.uint8]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def coded_size(self) -> tuple[int, int]:
        """(W, H) as encoded."""
        return self.yuv[0].width, self.yuv[0].height

    def reference(self, i: int) -> NDArray[np.uint8]:
        """Frame i after the 4:2:0 round trip, cropped to the original size (RGB).

        Kept once made: every operating point's PSNR compares against it.
        """
        if i not in self._references:
            h, w = self.shape
            self._references[i] = self.yuv[i].to_rgb()[:h, :w]
        return self._references[i]


def sha256_hex(data: bytes | str) -> str:
    """Hex sha256 of bytes, or of text as UTF-8 (item digests and cache keys)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def pad_even(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pad an RGB frame by one row and/or column of edge pixels to an even size."""
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def image_item(path: Path, label: Path | None = None, class_id: int | None = None) -> Item:
    """Load an image file into an :class:`Item`.

    Raises:
        FrameTooSmallError: The picture is smaller than a CTU on a side (x265 cannot code it).
    """
    from semrl.semantics.frames import read_image

    rgb = np.ascontiguousarray(read_image(path)[:, :, ::-1])
    h, w = rgb.shape[:2]
    require_one_ctu(str(path), w, h)
    digest = sha256_hex(np.ascontiguousarray(rgb).tobytes() + f"{h}x{w}".encode())
    label_digest = sha256_hex(label.read_bytes()) if label is not None and label.is_file() else "none"
    return Item(
        path.name, digest, [rgb], [Yuv420.from_rgb(pad_even(rgb))], (h, w),
        label=label, class_id=class_id, label_digest=label_digest,
    )  # fmt: skip


def video_item(path: Path, frames: int, start: int = 0) -> Item:
    """Read ``frames`` frames of a video from frame ``start`` (cropped to even size) into an :class:`Item`.

    Args:
        path: The video.
        frames: How many frames.
        start: Index of the first frame read (it is coded as an IDR frame); 0: from the beginning.

    Raises:
        InvalidInputError: No frame decoded from ``start`` on, or ``start`` is negative.
    """
    from semrl.assets import file_sha256

    if start < 0:
        raise InvalidInputError(f"the first frame must be 0 or later, got {start}")
    # The reader encode and training use, so the benchmark codes the frames they see.
    with open_source(path, max_frames=start + frames, crop_even=True) as source:
        yuv = [frame.copy() for k, frame in enumerate(source) if k >= start]
        w, h, fps = source.info.width, source.info.height, float(source.info.fps)
    if not yuv:
        raise InvalidInputError(f"no frames decoded from {path}" + (f" from frame {start} on" if start else ""))
    require_one_ctu(str(path), w, h)
    # Clips read from their first frame keep the digests they always had (cached points stay valid).
    later = f":from{start}" if start else ""
    digest = sha256_hex(f"{file_sha256(path)}:{len(yuv)}:{w}x{h}{later}")
    from semrl.fidelity.labels import clip_labels, read_mot_boxes

    labels, label_digest = None, "none"
    found = clip_labels(path, w, h)
    if found is not None:
        gt, scale = found
        labels = read_mot_boxes(gt, start + len(yuv), (h, w), scale)[start:]
        label_digest = sha256_hex(f"{file_sha256(gt)}:{scale}{later}")
    # The clip is already 4:2:0, so the original the net and the ROI see is that picture.
    return Item(
        path.name, digest, [f.to_rgb() for f in yuv], yuv, (h, w), fps=fps, label_digest=label_digest,
        frame_labels=labels, clip=str(path),
    )  # fmt: skip


def load_items(
    task: TaskSpec, names: dict[int, str] | None, limit: int | None, frames: int, start: int | Sequence[int] = 0
) -> list[Item]:
    """Load the items of a task's data (first ``limit`` of them).

    Args:
        task: The setting.
        names: The net's class names (classification: to map folders to class ids).
        limit: First N images or clips (after ``start``); None for all.
        frames: Video: N frames of each clip.
        start: Video: the first frame read of each clip, or several (each clip is then read in
            each window of ``frames`` frames, an item named ``<file>@<start>``: tuning that reads
            more than one stretch of each scene overfits less). Images: the images before it (in
            the split's sorted order, as ``semrl train --limit`` takes them) are left out, so a
            policy trained with ``--limit N`` is measured with ``start`` N on pictures it never saw.

    Raises:
        InvalidInputError: ``start`` is negative, or leaves no image; several starts for images,
            or the same start twice.
    """
    from semrl.fidelity.labels import classification_images, dataset_images

    starts = [start] if isinstance(start, int) else [int(s) for s in start]
    if not starts or len(set(starts)) != len(starts):
        raise InvalidInputError(f"give each first frame once, got {starts}")
    if task.video:
        files = video_files(task.data)
        files = files[:limit] if limit else files
        if len(starts) == 1:
            return [video_item(f, frames, starts[0]) for f in files]
        return [
            replace(item, name=f"{item.name}@{s}") for f in files for s in starts for item in [video_item(f, frames, s)]
        ]
    if len(starts) > 1:
        raise InvalidInputError(f"several first frames ({starts}) are for video; images take one --start")
    start = starts[0]
    if task.name == "classification":
        assert names is not None
        listed = _window(classification_images(task.data, names, task.split), start, limit, task)
        return [image_item(p, class_id=c) for p, c in listed]
    images = _window(dataset_images(task.data, task.split), start, limit, task)
    return [image_item(im.image, im.label) for im in images]


def _window(listed: list[_T], start: int, limit: int | None, task: TaskSpec) -> list[_T]:
    """Images ``start`` to ``start + limit`` of a split's list."""
    if start < 0 or (start and start >= len(listed)):
        raise InvalidInputError(
            f"--start {start}: the {task.split} split of {task.data} holds {len(listed)} images; give 0 to "
            f"{len(listed) - 1}"
        )
    listed = listed[start:]
    return listed[:limit] if limit else listed

"""Reading YOLO-format labels and datasets into :class:`~semrl.semantics.yolo.Detections`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from semrl.assets import resolve_dataset
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.media import IMAGE_SUFFIXES
from semrl.semantics.yolo import MASK_RATIO, Detections, Letterbox

SEGMENT_POINTS = 1000
"""Points Ultralytics' datasets resample every label polygon to before rasterising it."""


def _read_rows(label_file: Path) -> list[list[float]]:
    if not label_file.is_file():
        return []  # Ultralytics' convention: an image without a label file has no objects.
    rows = []
    for n, line in enumerate(label_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            rows.append([float(v) for v in parts])
        except ValueError as e:
            raise InvalidInputError(f"{label_file}:{n}: not a YOLO label line: {line!r}") from e
        if len(rows[-1]) < 5:
            raise InvalidInputError(f"{label_file}:{n}: needs a class and at least 4 numbers")
    return rows


def read_yolo_labels(
    label_file: str | os.PathLike[str],
    shape: tuple[int, int],
    masks: bool = False,
    letterbox: Letterbox | None = None,
) -> Detections:
    """Read a YOLO label file (boxes ``c cx cy w h`` or polygons ``c x1 y1 x2 y2 ...``).

    Args:
        label_file: The ``.txt`` file; a missing file means no objects.
        shape: (H, W) of the image, to turn normalised coordinates into pixels.
        masks: Rasterise polygons into instance masks as Ultralytics' val does (overlaps go to
            the smaller instance); needs polygon labels.
        letterbox: With ``masks``, also rasterise the polygons on val's mask grid of this
            letterbox (take it from the prediction on the same image:
            ``Detections.letterbox``), into ``grid_masks``; see :func:`grid_masks`.

    Returns:
        Labels as Detections with confidence 1.

    Raises:
        InvalidInputError: A malformed line, or ``masks`` with box-only labels.
    """
    path = Path(label_file)
    h, w = shape
    rows = _read_rows(path)
    cls = np.array([int(r[0]) for r in rows], dtype=np.int64)
    boxes = np.zeros((len(rows), 4), np.float32)
    normalised: list[NDArray[np.float32]] = []
    polygons: list[NDArray[np.float32]] = []
    for i, r in enumerate(rows):
        if len(r) == 5:
            cx, cy, bw, bh = r[1:]
            boxes[i] = [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
            normalised.append(np.zeros((0, 2), np.float32))
            polygons.append(np.zeros((0, 2), np.float32))
        else:
            norm = np.asarray(r[1:], np.float32).reshape(-1, 2)
            pts = norm * np.array([w, h], np.float32)
            normalised.append(norm)
            polygons.append(pts)
            boxes[i] = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
    inst: NDArray[np.bool_] | None = None
    grid: NDArray[np.bool_] | None = None
    if masks:
        if any(len(p) == 0 for p in polygons):
            raise InvalidInputError(f"{path}: mask labels need polygons, found box-only lines")
        inst = polygons_to_masks(polygons, shape)
        if letterbox is not None:
            if letterbox.shape != (h, w):
                raise InvalidInputError(f"{path}: letterbox of a {letterbox.shape} frame for an image of {(h, w)}")
            grid = grid_masks(normalised, letterbox)
    return Detections(
        boxes,
        np.ones(len(rows), np.float32),
        cls,
        (h, w),
        inst,
        grid,
        letterbox if grid is not None else None,
    )


def grid_masks(polygons: list[NDArray[np.float32]], letterbox: Letterbox) -> NDArray[np.bool_]:
    """Rasterise normalised label polygons on val's mask grid, step for step as Ultralytics does.

    Its dataset resamples each polygon to :data:`SEGMENT_POINTS` points, denormalises it to the
    image after the first resize (``letterbox.loaded``), scales and pads it into the letterboxed
    input (float32 throughout), fills it at the input's resolution with integer vertices and
    resizes the fill to the grid (``Format`` with ``mask_ratio`` 4 and ``overlap_mask``: overlaps
    go to the smaller instance).

    Args:
        polygons: Per instance, (K, 2) float32 points in 0..1.
        letterbox: Where the image sits in the network input.

    Returns:
        bool (N, *letterbox.grid_shape), one mask per polygon in the given order.
    """
    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.data.utils import polygons2masks_overlap
    from ultralytics.utils.ops import resample_segments

    n = len(polygons)
    if n == 0:
        return np.zeros((0, *letterbox.grid_shape), bool)
    h1, w1 = letterbox.loaded
    ih, iw = letterbox.input_shape
    if h1 <= 0 or w1 <= 0:
        raise InvalidInputError(f"letterbox without the loaded image size: {letterbox}")
    ratio = min(ih / h1, iw / w1, 1.0)  # LetterBox(scaleup=False)
    longest = max(len(p) for p in polygons)
    points = longest + 1 if longest > SEGMENT_POINTS else SEGMENT_POINTS
    segs = resample_segments([np.asarray(p, np.float32) for p in polygons], n=points)
    placed = []
    for seg in segs:
        s = np.array(seg, np.float32)
        s[:, 0] *= w1
        s[:, 1] *= h1
        s *= ratio
        s[:, 0] += letterbox.pad[0]
        s[:, 1] += letterbox.pad[1]
        placed.append(s)
    index_map, order = polygons2masks_overlap((ih, iw), placed, downsample_ratio=MASK_RATIO)
    out = np.zeros((n, *index_map.shape), bool)
    for rank, i in enumerate(order):
        out[i] = index_map == rank + 1
    return out


def polygons_to_masks(polygons: list[NDArray[np.float32]], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Rasterise pixel polygons to non-overlapping instance masks with Ultralytics' own routine."""
    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.data.utils import polygons2masks_overlap

    n = len(polygons)
    if n == 0:
        return np.zeros((0, *shape), bool)
    index_map, order = polygons2masks_overlap(shape, polygons, downsample_ratio=1)
    out = np.zeros((n, *shape), bool)
    for rank, i in enumerate(order):
        out[i] = index_map == rank + 1
    return out


@dataclass(frozen=True)
class LabelledImage:
    """An image file and its YOLO label file (which may not exist: no objects)."""

    image: Path
    label: Path


def dataset_yaml(data: str | os.PathLike[str]) -> Path:
    """The ``data.yaml`` of a YOLO dataset given by name in the assets folder (``"coco-det"``), folder or yaml.

    Raises:
        AssetNotFoundError: ``data`` is neither a path nor a dataset of the assets folder.
    """
    p = Path(data)
    return p if p.suffix in (".yaml", ".yml") else resolve_dataset(data) / "data.yaml"


def dataset_images(data: str | os.PathLike[str], split: str = "val") -> list[LabelledImage]:
    """List the images of a YOLO dataset split and their label files.

    As in Ultralytics, a split is a folder of images, a ``.txt`` file listing images (one path a
    line; ``./`` means the file's folder, other relative paths the dataset root), or a list of
    these. A folder's images are listed in name order; a list keeps its order.

    Args:
        data: A dataset name in the assets folder (``"coco-det"``), its folder, or its
            ``data.yaml``.
        split: The key in ``data.yaml`` (``"val"``, ``"train"``).

    Raises:
        InputNotFoundError: The dataset, its yaml, or a folder, list or listed image of the
            split do not exist.
        InvalidInputError: The yaml has no such split, or it is neither a path nor a list of them.
    """
    import yaml

    p = dataset_yaml(data)
    if not p.is_file():
        raise InputNotFoundError(f"dataset yaml not found: {p}")
    cfg = yaml.safe_load(p.read_text())
    root = Path(cfg.get("path") or p.parent)
    if not root.is_absolute():
        root = (p.parent / root).resolve()
    if split not in cfg:
        raise InvalidInputError(f"{p}: no split {split!r}")
    parts = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
    if not parts or not all(isinstance(part, str) for part in parts):
        raise InvalidInputError(f"{p}: split {split!r} must be a folder, a .txt list of images, or a list of these")
    images: list[Path] = []
    for part in parts:
        where = root / part
        if where.suffix == ".txt":
            if not where.is_file():
                raise InputNotFoundError(f"image list not found: {where}")
            listed = [line.strip() for line in where.read_text().splitlines() if line.strip()]
            here = [where.parent / line[2:] if line.startswith("./") else root / line for line in listed]
            missing = [im for im in here if not im.is_file()]
            if missing:
                raise InputNotFoundError(f"{where}: {len(missing)} listed images not found, e.g. {missing[0]}")
            images += here
        elif where.is_dir():
            images += sorted(f for f in where.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise InputNotFoundError(f"image folder not found: {where}")
    out = []
    for im in images:
        # Ultralytics' rule: the last "images" folder in the path becomes "labels" (none: the label
        # file lies beside the image).
        path_parts = list(im.parts)
        if "images" in path_parts:
            k = len(path_parts) - 1 - path_parts[::-1].index("images")
            path_parts[k] = "labels"
        out.append(LabelledImage(im, Path(*path_parts).with_suffix(".txt")))
    return out


def classification_images(
    data: str | os.PathLike[str], names: dict[int, str], split: str = "val"
) -> list[tuple[Path, int]]:
    """List a class-per-folder dataset split with each image's class id in the model's names.

    Folder names may be the model's class names or ImageNet WordNet ids (``n01440764``), which
    Ultralytics maps to names; folders of classes the model lacks are left out, as in its val.

    Raises:
        InputNotFoundError: The split folder does not exist.
    """
    from semrl.assets import configure_ultralytics

    configure_ultralytics()
    from ultralytics.nn.autobackend import check_class_names

    root = resolve_dataset(data) / split
    if not root.is_dir():
        raise InputNotFoundError(f"classification split not found: {root}")
    folders = sorted(d for d in root.iterdir() if d.is_dir())
    resolved = check_class_names([d.name for d in folders])
    index = {n: i for i, n in names.items()}
    out: list[tuple[Path, int]] = []
    for k, d in enumerate(folders):
        cid = index.get(resolved[k], index.get(d.name))
        if cid is None:
            continue
        out.extend((f, cid) for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES)
    return out


MOT_PERSON = 0
"""The COCO class MOTChallenge pedestrian boxes are scored as (``person``)."""


def read_mot_boxes(
    gt_file: str | os.PathLike[str], frames: int | None, shape: tuple[int, int], scale: float = 1.0
) -> list[Detections]:
    """MOTChallenge ground truth (``gt.txt``) as per-frame person boxes of a clip.

    Lines are ``frame,id,x,y,w,h,consider[,class,visibility | ,wx,wy,wz]`` with 1-based frames;
    boxes whose ``consider`` flag is 0, and in MOT16 and later those of a class other than
    pedestrian (1), are left out. Boxes are scaled by ``scale`` (the clip's size over the
    sequence's) and clipped to the frame.

    Args:
        gt_file: The ``gt.txt`` file.
        frames: Number of frames of the clip (frame i of the clip is MOT frame i + 1); None: up to
            the last labelled frame.
        shape: (H, W) of the clip's frames.
        scale: Factor from the labels' pixels to the clip's.

    Raises:
        InputNotFoundError: The file does not exist.
        InvalidInputError: A line is not a MOTChallenge line, or its box has no area or no frame.
    """
    path = Path(gt_file)
    if not path.is_file():
        raise InputNotFoundError(f"MOTChallenge ground truth not found: {path}")
    per_frame: list[list[list[float]]] = [[] for _ in range(frames or 0)]
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            v = [float(x) for x in line.split(",")]
        except ValueError as e:
            raise InvalidInputError(f"{path}:{n}: not a MOTChallenge line: {line!r}") from e
        if len(v) < 7:
            raise InvalidInputError(f"{path}:{n}: needs frame, id, x, y, w, h and the consider flag")
        if v[0] < 1 or v[4] <= 0 or v[5] <= 0:
            raise InvalidInputError(
                f"{path}:{n}: a MOTChallenge box needs a frame from 1 and a positive width and height: {line!r}"
            )
        frame = int(v[0]) - 1
        pedestrian = len(v) != 9 or int(v[7]) in (-1, 1)  # 9 columns: MOT16+ (class, visibility)
        if frames is None and frame >= len(per_frame):
            per_frame += [[] for _ in range(frame + 1 - len(per_frame))]
        if 0 <= frame < len(per_frame) and v[6] != 0 and pedestrian:
            per_frame[frame].append([v[2], v[3], v[2] + v[4], v[3] + v[5]])
    h, w = shape
    out = []
    for boxes in per_frame:
        b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32(scale)
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
        n = len(b)
        out.append(Detections(b, np.ones(n, np.float32), np.full(n, MOT_PERSON, np.int64), shape))
    return out


def labelled_subset(pred: Detections, target: Detections) -> Detections:
    """The predictions scored against incomplete person labels (MOTChallenge boxes).

    Only the person class is scored, and a person detection that overlaps no labelled box is
    "don't care" (the labels leave some people out: on PETS frame 150 those on the far walkway),
    not a false positive; detections that overlap a labelled box without matching it still count.
    """
    from semrl.fidelity.detection import box_overlaps

    person = pred.cls == MOT_PERSON
    keep = person & box_overlaps(pred.boxes, target.boxes)
    return Detections(pred.boxes[keep], pred.conf[keep], pred.cls[keep], pred.shape)


LABELLED_CLIPS = {"pets2009_s2l1_480x360.mp4": "videos-extra/labelled/PETS09-S2L1_MOT15"}
"""Shared clips whose MOTChallenge sequence (labels) lies elsewhere in the assets, at another size."""


def sequence_size(folder: Path) -> tuple[int, int] | None:
    """(W, H) of a MOTChallenge sequence from its ``seqinfo.ini``."""
    import configparser

    ini = folder / "seqinfo.ini"
    if not ini.is_file():
        return None
    parser = configparser.ConfigParser()
    parser.read(ini)
    try:
        return int(parser["Sequence"]["imWidth"]), int(parser["Sequence"]["imHeight"])
    except (KeyError, ValueError) as e:
        raise InvalidInputError(f"{ini}: no imWidth/imHeight in [Sequence]") from e


def clip_labels(path: Path, width: int, height: int) -> tuple[Path, float] | None:
    """A clip's MOTChallenge labels and their scale onto the clip, or None when it has none.

    A clip has labels when its folder is a MOTChallenge sequence (``gt/gt.txt`` and
    ``seqinfo.ini``), when ``<clip stem>.gt.txt`` lies beside it (in the clip's pixels), or when it
    is a shared clip of :data:`LABELLED_CLIPS`. The scale is the clip's width over the
    sequence's; a sequence whose aspect ratio differs from the clip's is refused.

    Raises:
        InvalidInputError: The labels' frame does not scale onto the clip.
    """
    from semrl.assets import assets_root

    beside = path.with_name(f"{path.stem}.gt.txt")
    if beside.is_file():
        return beside, 1.0
    folders = [path.parent]
    root = assets_root()
    if root is not None and path.name in LABELLED_CLIPS:
        folders.append(root / LABELLED_CLIPS[path.name])
    for folder in folders:
        gt, size = folder / "gt" / "gt.txt", sequence_size(folder)
        if gt.is_file() and size is not None:
            scale = width / size[0]
            if abs(height / size[1] - scale) > 0.01:
                raise InvalidInputError(
                    f"{gt}: labels for {size[0]}x{size[1]} do not scale onto {path.name} ({width}x{height})"
                )
            return gt, scale
    return None

r"""Unlabelled pictures as a detection dataset: the net's own objects on the originals become the labels.

The video benchmark scores decoded frames against pseudo ground truth (the detector's objects,
confidence >= ``semrl.fidelity.detection.PSEUDO_GT_CONF``, on the uncompressed source). This
script gives pictures the same ground truth, written as a YOLO dataset (``images/``,
``labels/``, ``data.yaml`` whose ``val`` and ``train`` splits both hold every picture), so
that ``bdrate.py --task detection --data <folder>/data.yaml`` scores picture rules on pictures
no labelled set holds: a set to confirm a choice on, beside COCO's. Pictures with no object are
left out (nothing to score), and so are pictures smaller than a CTU on a side (x265 cannot code
them)::

    python benchmarks/pseudo_labels.py ../shared/assets/datasets/imagenet-cls/train \
        ../shared/assets/datasets/imagenet-cls/val -o /tmp/imagenet-det
    python benchmarks/bdrate.py --task detection --data /tmp/imagenet-det/data.yaml ...

The labels come from the net on each picture as the benchmark holds it (``Item.source``, RGB,
val's inference settings), the analysis the video benchmark's pseudo ground truth comes from
(:meth:`semrl.bench.tasknet.TaskNet.analyse`). The dataset is written to a temporary folder
beside the output and renamed at the end: an interrupted run leaves nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import ArrayLike

from semrl.bench.items import TASKS, image_item
from semrl.bench.tasknet import TaskNet
from semrl.errors import FrameTooSmallError, InputNotFoundError, SemrlError
from semrl.files import atomic_folder, check_can_create
from semrl.media import IMAGE_SUFFIXES


def pictures(folders: Sequence[Path]) -> list[Path]:
    """The pictures under ``folders`` (searched recursively), sorted within each folder.

    Raises:
        InputNotFoundError: A folder does not exist or holds no picture.
    """
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise InputNotFoundError(f"picture folder not found: {folder}")
        here = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not here:
            raise InputNotFoundError(f"no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
        found += here
    return found


def yolo_lines(boxes: ArrayLike, classes: ArrayLike, shape: tuple[int, int]) -> str:
    """YOLO label lines (class, centre x, centre y, width, height; normalised) of xyxy pixel boxes."""
    h, w = shape
    xyxy = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0, [w, h, w, h])
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / [w, h]
    size = (xyxy[:, 2:] - xyxy[:, :2]) / [w, h]
    rows = zip(np.asarray(classes, np.int64).reshape(-1), centre, size, strict=True)
    return "".join(f"{c} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n" for c, (x, y), (bw, bh) in rows)


def build(folders: Sequence[Path], output: Path, weights: str) -> tuple[int, int, int, int]:
    """Write the pseudo-labelled dataset of the pictures under ``folders`` to ``output``.

    Returns:
        (pictures read, pictures kept, objects, pictures left out as smaller than a CTU).

    Raises:
        SemrlError: ``output`` exists, or a folder is missing or empty.
    """
    if output.exists():
        raise SemrlError(f"{output} exists; give a new folder (the dataset is written whole or not at all)")
    files = pictures(folders)
    net = TaskNet(replace(TASKS["video"], weights=weights))  # the video benchmark's pseudo ground truth
    with atomic_folder(output) as staging:
        (staging / "images").mkdir()
        (staging / "labels").mkdir()
        kept = objects = small = 0
        for k, path in enumerate(files):
            try:
                item = image_item(path)
            except FrameTooSmallError:
                small += 1
                continue
            analysis = net.analyse(item)
            boxes, classes = analysis.boxes[0], analysis.cls[0]
            if len(boxes) == 0:
                continue
            name = f"{k:05d}_{path.stem}"  # unique across folders, in the order read
            shutil.copyfile(path, staging / "images" / f"{name}{path.suffix.lower()}")
            (staging / "labels" / f"{name}.txt").write_text(yolo_lines(boxes, classes, item.shape))
            kept += 1
            objects += len(boxes)
        names = {int(i): str(n) for i, n in net.net.names.items()}
        (staging / "data.yaml").write_text(yaml.safe_dump({"val": "images", "train": "images", "names": names}))
    return len(files), kept, objects, small


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of pictures (searched recursively)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new dataset folder")
    parser.add_argument("--weights", default=TASKS["video"].weights, help="detection net weights")
    args = parser.parse_args(argv)
    try:
        check_can_create(args.output, "--output")  # before the net runs, not after it
        read, kept, objects, small = build(args.folders, args.output, args.weights)
    except (SemrlError, OSError) as e:  # OSError: an output folder that cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{args.output}: {kept} of {read} pictures hold objects ({objects} objects; {small} smaller than a CTU "
        "left out); data.yaml written"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/pseudo_labels.py: unlabelled pictures become a detection set the benchmark reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from shared_assets import require_assets

from semrl.errors import InputNotFoundError, InvalidInputError, SemrlError


def test_xyxy_pixel_boxes_become_normalised_yolo_lines_clipped_to_the_picture() -> None:
    pseudo = load_benchmark("pseudo_labels")
    text = pseudo.yolo_lines([[10, 20, 50, 60], [-5, 0, 110, 40]], [3, 0], (80, 100))
    assert text == "3 0.300000 0.500000 0.400000 0.500000\n0 0.500000 0.250000 1.000000 0.500000\n"
    assert pseudo.yolo_lines([], [], (80, 100)) == ""


def test_missing_or_empty_folders_and_an_existing_output_are_refused(tmp_path: Path) -> None:
    pseudo = load_benchmark("pseudo_labels")
    with pytest.raises(InputNotFoundError, match="not found"):
        pseudo.pictures([tmp_path / "none"])
    with pytest.raises(InputNotFoundError, match="no pictures"):
        pseudo.pictures([tmp_path])
    (tmp_path / "out").mkdir()
    with pytest.raises(SemrlError, match="exists"):
        pseudo.build([tmp_path], tmp_path / "out", "yolov8n.pt")
    assert pseudo.main([str(tmp_path / "none"), "-o", str(tmp_path / "new")]) == 1
    assert not (tmp_path / "new").exists()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anyway
        assert pseudo.main([str(tmp_path), "-o", str(locked / "new")]) == 1


def test_the_net_s_own_objects_are_the_labels_the_benchmark_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = require_assets("models/yolov8n.pt", "datasets/coco8")
    pseudo = load_benchmark("pseudo_labels")
    from semrl.bench.items import TASKS, image_item
    from semrl.bench.tasknet import TaskNet
    from semrl.fidelity.labels import dataset_images, read_yolo_labels

    folder = tmp_path / "pictures"
    shutil.copytree(root / "datasets/coco8/images/val", folder)
    flat = folder / "flat.png"  # nothing to detect: left out
    import cv2

    cv2.imwrite(str(flat), np.full((64, 96, 3), 128, np.uint8))
    tiny = folder / "tiny.png"  # below one CTU: x265 cannot code it, and the benchmark says so
    cv2.imwrite(str(tiny), cv2.resize(cv2.imread(str(next(folder.glob("*.jpg")))), (76, 56)))
    with pytest.raises(InvalidInputError, match="76x56 are smaller than x265's 64x64"):
        image_item(tiny)
    read, kept, objects, small = pseudo.build([folder], tmp_path / "set", str(root / "models/yolov8n.pt"))
    assert read == 6 and small == 1 and 0 < kept <= 4 and objects >= kept
    images = dataset_images(tmp_path / "set/data.yaml", "val")
    assert len(images) == kept and all(im.label.is_file() for im in images)
    net = TaskNet(TASKS["video"])
    for im in images:
        found = net.analyse(image_item(im.image)).boxes[0]
        item = image_item(im.image, im.label)
        labels = read_yolo_labels(im.label, item.shape)
        np.testing.assert_allclose(np.sort(labels.boxes, 0), np.sort(found, 0), atol=0.01)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left
    (folder / "corrupt.png").write_bytes(b"not a picture")
    assert pseudo.main([str(folder), "-o", str(tmp_path / "again"), "--weights", str(root / "models/yolov8n.pt")]) == 1
    assert "is not an image OpenCV can read" in capsys.readouterr().err
    assert not (tmp_path / "again").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

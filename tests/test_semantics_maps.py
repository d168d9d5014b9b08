"""Fast tests of semantic maps, pooling, configs, fakes and rendering (no weights)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from semrl.codec import ctu_grid
from semrl.errors import InvalidInputError
from semrl.semantics import MapConfig, SemanticMap, load_class_weights, pool_map
from semrl.semantics.config import ClassWeights
from semrl.semantics.extractors import SemanticExtractor
from semrl.semantics.fakes import FakeDetector, FakeExtractor, FakeObject, FakeSegmenter
from semrl.semantics.maps import box_map, normalise
from semrl.semantics.render import write_maps


def test_pool_map_mean_counts_only_pixels_inside_the_picture() -> None:
    v = np.zeros((70, 130), np.float32)
    v[64:, 128:] = 1.0  # the bottom-right CTU holds 6x2 real pixels, all ones
    g = pool_map(v, 64)
    assert g.shape == (2, 3) == ctu_grid(130, 70)
    assert g[1, 2] == pytest.approx(1.0)
    assert g[0, 0] == 0.0
    assert pool_map(v, 16, "max").shape == (5, 9)


def test_pool_map_mean_is_block_average() -> None:
    rng = np.random.default_rng(0)
    v = rng.random((128, 192)).astype(np.float32)
    g = pool_map(v, 64)
    assert g[1, 2] == pytest.approx(v[64:128, 128:192].mean(), rel=1e-5)
    with pytest.raises(InvalidInputError):
        pool_map(v[0], 64)


def test_box_map_margin_and_max_overlap() -> None:
    m = box_map((100, 100), np.array([[10, 10, 20, 20], [15, 15, 50, 50]]), np.array([0.9, 0.5]), 5)
    assert m[5, 5] == pytest.approx(0.9)
    assert m[4, 4] == 0.0
    assert m[18, 18] == pytest.approx(0.9)
    assert m[40, 40] == pytest.approx(0.5)
    assert m[60, 60] == 0.0


def test_semantic_map_rejects_bad_values() -> None:
    with pytest.raises(InvalidInputError):
        SemanticMap(np.full((4, 4), 1.5, np.float32), "detection", "x")
    with pytest.raises(InvalidInputError):
        SemanticMap(np.zeros((4, 4), np.float64), "detection", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        SemanticMap(np.zeros((4, 4), np.float32), "tracking", "x")  # type: ignore[arg-type]
    s = SemanticMap(np.ones((130, 70), np.float32), "detection", "x")
    assert s.ctu_grid().shape == (3, 2) and s.offset_grid().shape == (9, 5)


def test_normalise() -> None:
    assert normalise(np.zeros((3, 3))).max() == 0.0
    n = normalise(np.arange(100.0).reshape(10, 10), 50.0)
    assert n.max() == 1.0 and n.min() == 0.0


def test_config_roundtrip_and_validation() -> None:
    cw = ClassWeights(0.5, (("person", 1.0),))
    c = MapConfig(task="segmentation", method="gradient", class_weights=cw)
    assert MapConfig.from_json(c.to_json()) == c
    assert c.resolved_weights == "yolo11n-seg.pt"
    assert MapConfig(task="classification").resolved_method == "gradcam"
    with pytest.raises(InvalidInputError):
        MapConfig(task="classification", method="boxes")
    with pytest.raises(InvalidInputError):
        ClassWeights(2.0)


def test_shipped_class_weights(tmp_path) -> None:
    cw = load_class_weights()
    assert cw.of("person") == 1.0 and len(cw.weights) == 80
    f = tmp_path / "w.yaml"
    f.write_text("default: 0.2\nweights:\n  car: 0.9\n")
    w = load_class_weights(f)
    assert (w.of("car"), w.of("dog")) == (0.9, 0.2)
    with pytest.raises(FileNotFoundError):
        load_class_weights(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("person: 0.5\n", "unknown key.* person; .*a class's weight goes under weights:"),  # was silently all 1
        (": : :\n", "is not YAML"),  # was yaml's traceback
        ("- 1\n- 2\n", "expected 'default: <w>'"),
        ("weights:\n  car: 2\n", "class weight of 'car' must be in 0..1, got 2.0"),
    ],
)
def test_a_class_weights_file_of_another_shape_is_refused(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        load_class_weights(f)


def test_fake_detector_and_segmenter() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    d = FakeDetector().detect([frame])[0]
    assert d.shape == (100, 200) and len(d) == 2
    assert list(d.conf) == sorted(d.conf, reverse=True)
    np.testing.assert_allclose(d.boxes[0], [20, 20, 80, 70])
    s = FakeSegmenter([FakeObject((0.0, 0.0, 0.5, 1.0))]).detect([frame])[0]
    assert s.masks is not None and s.masks[0, 50, 50] and not s.masks[0, 50, 150]


@pytest.mark.parametrize("task", ["detection", "segmentation", "classification"])
def test_fake_extractor_is_an_extractor(task: str) -> None:
    e = FakeExtractor(task)
    assert isinstance(e, SemanticExtractor)
    frame = np.zeros((96, 160, 3), np.uint8)
    (m,) = e.extract([frame])
    assert m.shape == (96, 160) and m.task == task and 0 < m.values.max() <= 1
    rgb = e.extract([frame], color="rgb")[0]
    np.testing.assert_array_equal(m.values, rgb.values)


def test_write_maps_png_and_csv(tmp_path) -> None:
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        cv2.imwrite(str(src / f"im{k}.png"), np.full((100, 150, 3), 40 * k, np.uint8))
    out = tmp_path / "out"
    written = write_maps(src, out, FakeExtractor(), max_frames=2)
    assert [w.name for w in written] == ["im0", "im1"]
    png = cv2.imread(str(written[0].png))
    assert png.shape == (100, 150, 3)
    assert (png[:, 64] == 255).all()  # CTU grid line
    rows = list(csv.DictReader(written[0].csv.read_text().splitlines()))
    assert len(rows) == 2 * 3 and rows[-1]["ctu"] == "5"
    assert float(rows[0]["importance"]) == pytest.approx(float(written[0].ctu_importance[0, 0]))


def test_write_maps_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        write_maps(tmp_path / "nope.jpg", tmp_path / "o", FakeExtractor())
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InvalidInputError, match=r"x\.txt"):
        write_maps(tmp_path / "x.txt", tmp_path / "o", FakeExtractor())
    assert not (tmp_path / "o").exists()  # a source that cannot be read leaves no output folder

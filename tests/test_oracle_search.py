"""The search oracle's grouping and choice of map (its search runs with the real x265 and detector)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from shared_assets import require_assets


@pytest.fixture(scope="module")
def oracle_search() -> ModuleType:
    return load_benchmark("oracle_search")


def test_ctus_are_grouped_by_object_ring_and_rest(oracle_search: ModuleType) -> None:
    boxes = np.array([[10, 10, 50, 50], [0, 0, 200, 100]], np.float32)  # a small object inside a large one
    groups = oracle_search.block_groups(boxes, (256, 384), max_groups=8)
    assert groups.shape == (4, 6)
    assert groups[0, 0] == 0  # the smaller object wins the CTU both touch
    assert groups[1, 1] == 1 and groups[0, 3] == 1  # the large object
    assert groups[2, 0] == groups[2, 4] == groups[0, 4] == 2  # the ring of one CTU around the objects
    assert groups[3, 0] == groups[3, 5] == groups[0, 5] == 3  # the rest
    many = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], np.float32)
    assert oracle_search.block_groups(many, (256, 384), max_groups=8).max() + 1 <= 3  # size class, ring, rest
    assert set(np.unique(oracle_search.block_groups(np.zeros((0, 4), np.float32), (128, 128), 8))) == {0}


def test_16x16_blocks_hug_the_objects_and_keep_a_ring_one_ctu_wide(oracle_search: ModuleType) -> None:
    boxes = np.array([[40, 40, 70, 70]], np.float32)  # grown by 8 px: 32..78, blocks 2..4
    groups = oracle_search.block_groups(boxes, (256, 384), max_groups=8, block=16)
    assert groups.shape == (16, 24)
    obj = np.zeros((16, 24), bool)
    obj[2:5, 2:5] = True
    assert (groups[obj] == 0).all() and (groups[~obj] > 0).all()
    assert groups[8, 8] == 1 and groups[9, 9] == 2  # ring: 4 blocks (64 px) beyond the object's blocks


def _coded(oracle_search: ModuleType, qp: int, bits: int, hit: bool, conf: float) -> object:
    from semrl.fidelity.detection import FrameMatches

    tp = np.full((1, 10), hit)
    matches = FrameMatches(tp, np.array([conf], np.float32), np.array([0]), np.array([0]))
    return oracle_search.Coded(np.full((2, 2), qp, np.int32), bits, matches)


def test_the_fewest_bits_that_keep_the_set_score_are_chosen(oracle_search: ModuleType) -> None:
    other = {37: _coded(oracle_search, 37, 500, True, 0.9)}
    mine = {37: _coded(oracle_search, 37, 100, True, 0.8)}
    keeps = _coded(oracle_search, 42, 60, True, 0.7)  # still found, ranked below the other picture's object
    misses = _coded(oracle_search, 47, 30, False, 0.7)
    lost = _coded(oracle_search, 47, 200, False, 0.95)  # the other picture's cheaper map loses its object
    chosen = oracle_search.choose_jointly([[misses, keeps], [lost]], [mine, other], 37)
    assert chosen[0] is keeps and chosen[1] is other[37]
    assert oracle_search.choose_jointly([[misses], []], [mine, other], 37)[0] is mine[37]


def test_alone_a_picture_keeps_its_score_among_the_pool(oracle_search: ModuleType) -> None:
    from semrl.fidelity.detection import FrameMatches

    pool = [FrameMatches(np.zeros((1, 10), bool), np.array([0.75], np.float32), np.array([0]), np.zeros(0, np.int64))]
    uniform = _coded(oracle_search, 37, 100, True, 0.8)
    falls = _coded(oracle_search, 47, 30, True, 0.7)  # found, but now ranked below the pool's false find
    keeps = _coded(oracle_search, 42, 60, True, 0.76)
    dearer = _coded(oracle_search, 32, 150, True, 0.9)  # keeps the score, but no saving
    assert oracle_search.choose_alone([dearer, falls, keeps], uniform, pool) is keeps
    assert oracle_search.choose_alone([dearer, falls], uniform, pool) is uniform


def test_a_map_is_carried_onto_the_mirror_image_block_for_block(oracle_search: ModuleType) -> None:
    offsets = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.int32)
    assert oracle_search.mirror_offsets(offsets, 64, 16).tolist() == [[3, 2, 1, 0], [7, 6, 5, 4]]
    # 40 px wide, 3 columns of 16: the mirror's block 0 (x 0-15) is the picture's x 24-39 (blocks 1 and 2),
    # block 1 (x 16-31) its x 8-23 (blocks 0 and 1), block 2 (x 32-39) its x 0-7 (block 0).
    assert oracle_search.mirror_offsets(np.array([[5, 9, 2]], np.int32), 40, 16).tolist() == [[2, 5, 5]]


def _write_set(root: Path) -> None:
    import cv2

    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    picture = np.zeros((64, 96, 3), np.uint8)
    picture[:, :10] = 200  # a bright band on the left
    cv2.imwrite(str(root / "images" / "val" / "a.png"), picture)
    (root / "labels" / "val" / "a.txt").write_text("3 0.250000 0.5 0.1 0.2\n")
    (root / "data.yaml").write_text("val: images/val\nnames:\n  3: motorcycle\n")


def test_a_robust_map_keeps_the_set_score_on_every_coding(oracle_search: ModuleType) -> None:
    other = (_coded(oracle_search, 37, 500, True, 0.9), _coded(oracle_search, 37, 500, True, 0.9))
    mine = (_coded(oracle_search, 37, 100, True, 0.8), _coded(oracle_search, 37, 100, True, 0.8))
    lucky = (_coded(oracle_search, 47, 30, True, 0.7), _coded(oracle_search, 47, 30, False, 0.7))  # found on one twin
    kept = (_coded(oracle_search, 42, 60, True, 0.7), _coded(oracle_search, 42, 70, True, 0.7))  # found on both
    chosen = oracle_search.choose_on_every_coding([[lucky, kept], []], [mine, other])
    assert chosen[0] is kept and chosen[1] is other
    assert oracle_search.choose_on_every_coding([[lucky], []], [mine, other])[0] is mine
    # One coding per picture is choose_jointly's rule: the lucky map passes there.
    assert oracle_search.choose_on_every_coding([[lucky[:1], kept[:1]], []], [mine[:1], other[:1]])[0] == lucky[:1]


def _found(classes: list[int], hits: list[bool], conf: list[float], targets: list[int]) -> object:
    from semrl.fidelity.detection import FrameMatches

    tp = np.repeat(np.array(hits, bool)[:, None], 10, axis=1)
    return FrameMatches(tp, np.array(conf, np.float32), np.array(classes), np.array(targets))


def test_a_choice_on_objects_weighs_each_class_by_its_objects(oracle_search: ModuleType) -> None:
    def coded(bits: int, matches: object) -> object:
        return oracle_search.Coded(np.zeros((2, 2), np.int32), bits, matches)

    # Three people, all found, and a false car ranked above the one real car of the other picture.
    people = coded(100, _found([0, 0, 0, 1], [True, True, True, False], [0.9, 0.9, 0.9, 0.95], [0, 0, 0]))
    car = coded(50, _found([1], [True], [0.8], [1]))
    # Cheaper: the false car gone (the car class gains half its AP), one person lost (a third of theirs).
    cheaper = coded(60, _found([0, 0], [True, True], [0.9, 0.9], [0, 0, 0]))
    records = [people.matches, car.matches]
    assert oracle_search.set_score(records, "objects") > oracle_search.set_score(records, "task")
    assert oracle_search.choose_on_every_coding([[(cheaper,)], []], [(people,), (car,)])[0] == (cheaper,)
    assert oracle_search.choose_on_every_coding([[(cheaper,)], []], [(people,), (car,)], "objects")[0] == (people,)
    with pytest.raises(ValueError, match="one of task, objects"):
        oracle_search.set_score(records, "map50")


def test_the_mirror_set_holds_the_flipped_pictures_and_labels(oracle_search: ModuleType, tmp_path: Path) -> None:
    import cv2

    _write_set(tmp_path / "set")
    out = tmp_path / "mirror"
    data = oracle_search.mirror_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, out)
    assert data == out / "data.yaml" and "motorcycle" in data.read_text()
    picture = cv2.imread(str(out / "images" / "val" / "a.png"))
    assert (picture[:, -10:] == 200).all() and (picture[:, :-10] == 0).all()
    assert (out / "labels" / "val" / "a.txt").read_text().split() == [
        "3",
        "0.750000",
        "0.500000",
        "0.100000",
        "0.200000",
    ]
    assert oracle_search.mirror_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, out) == data  # reused
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="not the mirror"):
        oracle_search.mirror_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, tmp_path / "other")
    (tmp_path / "set" / "labels" / "val" / "a.txt").write_text("3 0.1 0.1 0.2 0.1 0.3 0.3\n")  # a polygon
    polygons = oracle_search.mirror_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, tmp_path / "polygons")
    flipped = (polygons.parent / "labels" / "val" / "a.txt").read_text().split()
    assert [float(v) for v in flipped] == pytest.approx([3, 0.9, 0.1, 0.8, 0.1, 0.7, 0.3])
    (tmp_path / "set" / "labels" / "val" / "a.txt").write_text("3 0.1 0.1 0.2 0.1 0.3\n")  # neither
    with pytest.raises(ValueError, match="neither a YOLO box"):
        oracle_search.mirror_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, tmp_path / "broken")
    assert not (tmp_path / "broken").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left beside


def test_the_shifted_set_moves_pictures_and_boxes_by_whole_blocks(oracle_search: ModuleType, tmp_path: Path) -> None:
    import cv2

    _write_set(tmp_path / "set")
    out = tmp_path / "shift"
    data = oracle_search.shift_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, out, shift=16)
    picture = cv2.imread(str(out / "images" / "val" / "a.png"))
    assert picture.shape == (80, 112, 3)  # 64x96 grown by 16 rows on top and 16 columns on the left
    assert (picture[:, :26] == 200).all() and (picture[:, 26:] == 0).all()  # the band, 16 px further right
    # The box of 0.25 * 96 = 24 px centre and 9.6 px width, now centred at 40 px of 112; 0.5 * 64 + 16 = 48 of 80.
    cx, cy, w, h = map(float, (out / "labels" / "val" / "a.txt").read_text().split()[1:])
    assert (cx, cy, w, h) == pytest.approx((40 / 112, 48 / 80, 9.6 / 112, 12.8 / 80), abs=1e-6)
    (tmp_path / "set" / "labels" / "val" / "a.txt").write_text("3 0 0 0.5 0.5 1 0\n")  # a polygon moves the same
    polygon = oracle_search.shift_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, tmp_path / "poly", shift=16)
    moved = [float(v) for v in (polygon.parent / "labels" / "val" / "a.txt").read_text().split()]
    assert moved == pytest.approx([3, 16 / 112, 16 / 80, 64 / 112, 48 / 80, 1, 16 / 80], abs=1e-6)
    assert oracle_search.shift_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, out, shift=16) == data
    with pytest.raises(FileExistsError, match="not the shift32"):
        oracle_search.shift_set(str(tmp_path / "set" / "data.yaml"), "val", 0, 1, tmp_path / "shift", shift=32)
    offsets = np.array([[1, 2], [3, 4]], np.int32)
    assert oracle_search.shift_offsets(offsets, 16, 16).tolist() == [[1, 1, 2], [1, 1, 2], [3, 3, 4]]
    with pytest.raises(ValueError, match="whole number"):
        oracle_search.shift_offsets(offsets, 64, 16)


def test_twins_serve_each_picture_its_own_or_its_mirror_images_map(oracle_search: ModuleType, tmp_path: Path) -> None:
    from semrl.policy import PolicyInput

    frame, mirrored = np.zeros((32, 48, 3), np.uint8), np.ones((32, 48, 3), np.uint8)
    digest = oracle_search._frame_digest
    (tmp_path / "s-a.json").write_text(json.dumps({digest(frame): {"37": [[-2, 0, 3], [1, 1, 1]]}}))
    (tmp_path / "s-b.json").write_text(json.dumps({digest(mirrored): {"37": [[4, 5, 6], [0, 0, 2]]}}))
    with pytest.raises(FileNotFoundError, match="--mirror"):
        oracle_search.TwinOracle(crossed=True, cache_dir=tmp_path)(PolicyInput(frame, 37, (1, 1)))
    (tmp_path / "latest-twins-16.json").write_text(json.dumps({"searches": ["s-a.json", "s-b.json"], "widths": [48]}))
    own, crossed = (oracle_search.TwinOracle(crossed=c, cache_dir=tmp_path) for c in (False, True))
    assert own(PolicyInput(frame, 37, (1, 1))).tolist() == [[-2, 0, 3], [1, 1, 1]]
    assert own(PolicyInput(mirrored, 37, (1, 1))).tolist() == [[4, 5, 6], [0, 0, 2]]
    assert crossed(PolicyInput(frame, 37, (1, 1))).tolist() == [[6, 5, 4], [2, 0, 0]]
    assert crossed(PolicyInput(mirrored, 37, (1, 1))).tolist() == [[3, 0, -2], [1, 1, 1]]
    assert own.fingerprint != crossed.fingerprint
    with pytest.raises(ValueError, match="neither search"):
        crossed(PolicyInput(np.full((32, 48, 3), 9, np.uint8), 37, (1, 1)))
    with pytest.raises(ValueError, match="not 42"):
        crossed(PolicyInput(frame, 42, (1, 1)))


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_search_runs_on_real_pictures_and_feeds_the_oracle(oracle_search: ModuleType, tmp_path: Path) -> None:
    require_assets("models/yolov8n.pt", "datasets/coco8")
    from semrl.policy import PolicyInput

    items = oracle_search.benchmark_items("coco8", 2)
    chosen = oracle_search.search_set(
        items, weights="yolov8n.pt", preset="ultrafast", max_groups=2, workers=1, cache_dir=tmp_path
    )
    assert len(chosen) == 2 and all(set(by_base) == set(oracle_search.BENCH_POINTS) for by_base in chosen.values())
    oracle = oracle_search.SearchOracle(tmp_path)
    frame = items[0].yuv[0].to_rgb()
    shape = (-(-frame.shape[0] // 64), -(-frame.shape[1] // 64))
    offsets = oracle(PolicyInput(frame, 37, shape))
    assert offsets.shape == shape and np.all(37 + offsets >= 22) and np.all(37 + offsets <= 51)
    assert oracle.fingerprint.startswith(f"oracle-search:v{oracle_search.SEARCH_VERSION}:search-")
    with pytest.raises(ValueError, match="did not cover"):
        oracle(PolicyInput(np.zeros((64, 64, 3), np.uint8), 37, (1, 1)))

    # Per 16x16 block: its own search, served beside the per-CTU one.
    with pytest.raises(FileNotFoundError, match="--block 16"):
        oracle_search.SearchOracle(tmp_path, block=16)(PolicyInput(frame, 37, shape))
    oracle_search.search_set(
        items[:1], weights="yolov8n.pt", preset="ultrafast", max_groups=2, workers=1, cache_dir=tmp_path, block=16
    )
    fine = oracle_search.SearchOracle(tmp_path, block=16)
    blocks = fine(PolicyInput(frame, 37, shape))
    assert fine.offset_block == 16 and blocks.shape == (-(-frame.shape[0] // 16), -(-frame.shape[1] // 16))
    assert oracle(PolicyInput(frame, 37, shape)).shape == shape  # the per-CTU search is still served

    # Against the net's own finds, among a pool of other pictures: a method, served beside the oracles.
    with pytest.raises(FileNotFoundError, match="--pseudo"):
        oracle_search.SearchOracle(tmp_path, block=16, pseudo=True)(PolicyInput(frame, 37, shape))
    oracle_search.search_set(
        items[:1], weights="yolov8n.pt", preset="ultrafast", max_groups=2, workers=1, cache_dir=tmp_path, block=16,
        pool=items[1:],
    )  # fmt: skip
    method = oracle_search.SearchOracle(tmp_path, block=16, pseudo=True)
    assert method(PolicyInput(frame, 37, shape)).shape == blocks.shape
    assert method.fingerprint != fine.fingerprint


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_a_mirror_search_serves_each_picture_its_twins_map(
    oracle_search: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_assets("models/yolov8n.pt", "datasets/coco8")
    from semrl.policy import PolicyInput

    monkeypatch.setattr(oracle_search.oracle, "cache_dir", tmp_path / "searches")
    (tmp_path / "searches").mkdir()
    argv = ["--data", "coco8", "--limit", "1", "--preset", "ultrafast", "--max-groups", "2", "--workers", "1"]
    twins = ["--block", "16", "--mirror", str(tmp_path / "mirror")]
    with pytest.raises(SystemExit):  # the robust choice needs the mirror images
        oracle_search.main([*argv, "--block", "16", "--robust", str(tmp_path / "shifted")])
    assert oracle_search.main([*argv, *twins, "--robust", str(tmp_path / "shifted")]) == 0
    original = oracle_search.benchmark_items("coco8", 1)[0]
    mirrored = oracle_search.benchmark_items(str(tmp_path / "mirror" / "data.yaml"), 1)[0]
    assert mirrored.shape == original.shape
    own, crossed = (oracle_search.TwinOracle(c, tmp_path / "searches") for c in (False, True))
    at = [PolicyInput(it.yuv[0].to_rgb(), 37, (1, 1)) for it in (original, mirrored)]
    width = original.shape[1]
    assert np.array_equal(crossed(at[1]), oracle_search.mirror_offsets(own(at[0]), width, 16))
    assert np.array_equal(crossed(at[0]), oracle_search.mirror_offsets(own(at[1]), width, 16))

    # The third coding: the shifted copy is served the original's own, its twin's and the robust map, moved.
    shifted = oracle_search.benchmark_items(str(tmp_path / "shifted" / "data.yaml"), 1)[0]
    assert shifted.shape == (original.shape[0] + 16, original.shape[1] + 16)
    served = {
        source: oracle_search.ShiftOracle(source, tmp_path / "searches")(
            PolicyInput(shifted.yuv[0].to_rgb(), 37, (1, 1))
        )
        for source in ("own", "twin", "robust", "robust_objects")
    }
    assert np.array_equal(served["own"], oracle_search.shift_offsets(own(at[0]), 16))
    assert np.array_equal(served["twin"], oracle_search.shift_offsets(crossed(at[0]), 16))
    # The robust map is uniform, a map on the picture's own path or one on its mirror image's, mirrored.
    searches = json.loads((tmp_path / "searches" / "latest-shifted-16.json").read_text())["searches"]
    kept = [oracle_search.codings_file(tmp_path / "searches" / name) for name in searches]
    paths = [oracle_search.read_codings(codings)["paths"][0] for codings in kept]
    candidates = [c.qp for c in paths[0]] + [oracle_search.mirror_offsets(c.qp, width, 16) for c in paths[1]]
    for source in ("robust", "robust_objects"):  # both choices pick among the same maps
        robust = served[source][1:, 1:] + 37
        assert (robust == 37).all() or any(np.array_equal(robust, qp) for qp in candidates)
    pooled = oracle_search.benchmark_items(str(tmp_path / "shifted" / "pooled.yaml"), 3)
    assert [it.digest for it in pooled] == [original.digest, mirrored.digest, shifted.digest]
    with pytest.raises(ValueError, match="not one of the shifted"):
        oracle_search.ShiftOracle("robust", tmp_path / "searches")(at[0])


def test_the_pooled_set_lists_the_pictures_and_their_other_codings(oracle_search: ModuleType, tmp_path: Path) -> None:
    from semrl.bench.items import TASKS, load_items

    _write_set(tmp_path / "set")
    source = str(tmp_path / "set" / "data.yaml")
    mirror = oracle_search.mirror_set(source, "val", 0, 1, tmp_path / "mirror").parent
    shifted = oracle_search.shift_set(source, "val", 0, 1, tmp_path / "shift").parent
    pooled = oracle_search.pooled_set(source, "val", 0, 1, [mirror, shifted], shifted / "pooled.yaml")
    task = dataclasses.replace(TASKS["detection"], data=str(pooled))
    items = load_items(task, None, None, 1)
    assert [it.name for it in items] == ["a.png"] * 3
    assert [it.shape for it in items] == [(64, 96), (64, 96), (80, 112)]
    assert items[0].yuv[0].to_rgb()[0, 0, 0] == 200 and items[1].yuv[0].to_rgb()[0, 0, 0] == 0  # the band moved
    assert [it.label.parent.parent.parent.name for it in items if it.label] == ["set", "mirror", "shift"]
    units = load_benchmark("bdrate", "bdrate_tool").image_units(items)
    assert [u.tolist() for u in units["picture"]] == [[0, 1, 2]] and len(units["image"]) == 3
    (tmp_path / "other").mkdir()
    _write_set(tmp_path / "other" / "b")
    (tmp_path / "other" / "b" / "images" / "val" / "a.png").rename(
        tmp_path / "other" / "b" / "images" / "val" / "b.png"
    )
    with pytest.raises(ValueError, match="are not val 0-0"):
        oracle_search.pooled_set(source, "val", 0, 1, [tmp_path / "other" / "b"], tmp_path / "other" / "p.yaml")
    assert not (tmp_path / "other" / "p.yaml").exists()

"""The search oracle's grouping and choice of map (its search runs with the real x265 and detector)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from shared_assets import require_assets

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def oracle_search() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oracle_search", ROOT / "benchmarks" / "oracle_search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["oracle_search"] = module
    spec.loader.exec_module(module)
    return module


def test_ctus_are_grouped_by_object_ring_and_rest(oracle_search: ModuleType) -> None:
    boxes = np.array([[10, 10, 50, 50], [0, 0, 200, 100]], np.float32)  # a small object inside a large one
    groups = oracle_search.ctu_groups(boxes, (256, 384), max_groups=8)
    assert groups.shape == (4, 6)
    assert groups[0, 0] == 0  # the smaller object wins the CTU both touch
    assert groups[1, 1] == 1 and groups[0, 3] == 1  # the large object
    assert groups[2, 0] == groups[2, 4] == groups[0, 4] == 2  # the ring of one CTU around the objects
    assert groups[3, 0] == groups[3, 5] == groups[0, 5] == 3  # the rest
    many = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], np.float32)
    assert oracle_search.ctu_groups(many, (256, 384), max_groups=8).max() + 1 <= 3  # size class, ring, rest
    assert set(np.unique(oracle_search.ctu_groups(np.zeros((0, 4), np.float32), (128, 128), 8))) == {0}


def test_the_fewest_bits_that_keep_uniform_scores_are_chosen(oracle_search: ModuleType) -> None:
    point = oracle_search.PathPoint
    qp = np.array([[51, 51], [22, 22]], np.int32)
    path = [
        point(np.full((2, 2), 51, np.int32), 100, 0.1),
        point(qp, 400, 0.6),
        point(np.full((2, 2), 22, np.int32), 900, 0.6),
    ]
    result = oracle_search.SearchResult(path, {22: (900, 0.6), 37: (300, 0.5), 51: (100, 0.1)}, 3, 1.0)
    np.testing.assert_array_equal(result.offsets(22), qp - 22)  # 400 bits keep 0.6
    np.testing.assert_array_equal(result.offsets(37), np.zeros((2, 2)))  # nothing cheaper keeps 0.5
    np.testing.assert_array_equal(result.offsets(51), np.zeros((2, 2)))
    again = oracle_search.SearchResult.from_json(result.to_json())
    np.testing.assert_array_equal(again.offsets(22), qp - 22)
    with pytest.raises(ValueError, match="no uniform point at base QP 30"):
        result.offsets(30)


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_search_path_runs_coarse_to_fine_on_a_real_picture(oracle_search: ModuleType) -> None:
    require_assets("models/yolov8n.pt", "datasets/coco8")
    from semrl.bench.items import image_item
    from semrl.fidelity.labels import dataset_images

    image = dataset_images("coco8")[0]
    searcher = oracle_search.Searcher()
    result = searcher.search(image_item(image.image, image.label), max_groups=3, points=(37, 51))
    assert result.path[0].qp.max() == 51 and result.path[-1].qp.max() == 22
    assert result.path[-1].bits > result.path[0].bits
    assert result.uniform[51][0] == result.path[0].bits  # the coarsest map is uniform 51

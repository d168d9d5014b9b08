"""The object term's weights per object: per picture (default) or as the class-mean mAP weighs them (fakes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from envs.codecs import FakeCodec
from envs.reward import class_object_weights, graded_object_loss, object_terms
from envs.semantic_qp import synthetic_pictures
from envs.tables import DEFAULT_TABLE_QPS, compute_table
from semrl.agent.config import TrainConfig
from semrl.agent.train import weigh_objects
from semrl.errors import InvalidInputError
from semrl.semantics.fakes import FakeExtractor
from semrl.semantics.maps import TaskOutput

SHAPE = (128, 192)  # 2 x 3 CTUs


def _objects(boxes: list[list[float]], cls: list[int]) -> TaskOutput:
    return TaskOutput.objects(np.array(boxes, np.float32), np.full(len(cls), 0.9, np.float32), np.array(cls))


def test_class_weights_are_one_over_classes_times_class_count_scaled_to_pictures() -> None:
    a = _objects([[0, 0, 10, 10], [20, 20, 30, 30], [70, 0, 90, 20]], [0, 0, 1])
    b = _objects([[0, 0, 10, 10]], [0])
    empty = _objects([], [])
    wa, wb, we = class_object_weights([a, b, empty])
    # 3 pictures, 2 classes, class 0 seen 3 times, class 1 once: weight 3 / (2 * n_c).
    np.testing.assert_allclose(wa, [0.5, 0.5, 1.5])
    np.testing.assert_allclose(wb, [0.5])
    assert we.shape == (0,)
    assert sum(w.sum() for w in (wa, wb, we)) == pytest.approx(3.0)  # a picture weighs 1 on average
    with pytest.raises(InvalidInputError, match="classifier"):
        class_object_weights([TaskOutput.classes(np.array([0.2, 0.8]))])


def test_object_terms_spread_each_weighted_loss_over_its_box() -> None:
    reference = _objects([[0, 0, 32, 32], [130, 70, 160, 100]], [0, 1])  # CTU (0, 0) and CTU (1, 2)
    decoded = _objects([[0, 0, 32, 32]], [0])  # the second object is lost
    canvas = np.zeros(SHAPE, np.float32)
    default, _ = object_terms(reference, decoded, canvas)
    assert default[1, 2] == pytest.approx(0.5) and default.sum() == pytest.approx(0.5)
    weighted, _ = object_terms(reference, decoded, canvas, np.array([1.0, 3.0]))
    assert weighted[1, 2] == pytest.approx(3.0) and weighted.sum() == pytest.approx(3.0)
    with pytest.raises(InvalidInputError, match="3 object weights for 2 objects"):
        graded_object_loss(np.ones((1, 2)), reference.boxes, SHAPE, np.ones(3))


def test_a_table_remakes_its_object_term_from_the_grades() -> None:
    picture = synthetic_pictures(1)[0]
    table = compute_table(picture, FakeCodec(), FakeExtractor("detection"), DEFAULT_TABLE_QPS)
    assert table.reference is not None and table.grades is not None
    n = len(table.reference.boxes)
    assert n >= 2 and table.grades.shape == (len(DEFAULT_TABLE_QPS), n)
    # The picture-blind fake finds everything at every QP; give the grades a loss to weigh.
    grades = np.tile(np.linspace(1.0, 0.0, len(DEFAULT_TABLE_QPS))[:, None], (1, n)).astype(np.float32)
    grades[:, 1:] = 1.0  # only the first object is lost, more at coarser QPs
    lossy = replace(table, grades=grades)
    same = lossy.with_object_weights(np.full(n, 1.0 / n))
    np.testing.assert_allclose(same.dobj.sum(axis=(1, 2)), (1.0 - grades[:, 0]) / n, rtol=1e-6)
    heavier = lossy.with_object_weights(np.r_[2.0, np.ones(n - 1)])
    np.testing.assert_allclose(heavier.dobj, same.dobj * 2.0 * n, rtol=1e-5)
    assert heavier.object_weights is not None and heavier.object_weights[0] == 2.0
    with pytest.raises(InvalidInputError, match="grades"):
        replace(table, grades=None).with_object_weights(np.ones(n))


def test_training_weighs_the_objects_only_when_asked() -> None:
    picture = synthetic_pictures(1)[0]
    table = compute_table(picture, FakeCodec(), FakeExtractor("detection"), DEFAULT_TABLE_QPS)
    assert weigh_objects(TrainConfig(task="detection"), [table])[0] is table
    weighed = weigh_objects(TrainConfig(task="detection", object_weighting="class"), [table])[0]
    assert weighed.object_weights is not None and len(weighed.object_weights) == len(table.reference.boxes)  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="classification"):
        TrainConfig(task="classification", object_weighting="class")
    with pytest.raises(InvalidInputError, match="object weighting"):
        TrainConfig(task="detection", object_weighting="area")


def test_a_picture_without_objects_has_no_object_loss() -> None:
    none = graded_object_loss(np.ones((9, 0)), np.zeros((0, 4), np.float32), SHAPE, np.zeros(0))
    assert none.shape == (9, 2, 3) and not none.any()

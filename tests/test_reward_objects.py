"""The object-level fidelity terms: graded by IoU and confidence, spread over the CTUs the boxes cover."""

from __future__ import annotations

import numpy as np
import pytest

from envs.reward import RewardConfig, box_shares, fidelity_loss, fidelity_terms, object_grades, object_terms
from envs.semantic_qp import synthetic_set
from semrl.semantics.maps import TaskOutput

SHAPE = (128, 192)  # 2 x 3 CTUs


def objects(*rows: tuple[float, float, float, float, float, int]) -> TaskOutput:
    """Objects from (x0, y0, x1, y1, conf, cls) rows."""
    a = np.array(rows, np.float64).reshape(-1, 6)
    return TaskOutput.objects(a[:, :4], a[:, 4], a[:, 5].astype(np.int64))


REFERENCE = objects((0, 0, 64, 64, 0.8, 0), (64, 64, 192, 128, 0.5, 2))


def test_box_shares_split_a_box_by_area() -> None:
    shares = box_shares(np.array([[32, 0, 96, 64], [0, 0, 64, 64]]), SHAPE)
    assert shares.shape == (2, 2, 3)
    np.testing.assert_allclose(shares.sum(axis=(1, 2)), 1.0)
    assert shares[0, 0, 0] == pytest.approx(0.5) and shares[0, 0, 1] == pytest.approx(0.5)
    assert shares[1, 0, 0] == pytest.approx(1.0)
    outside = box_shares(np.array([[500, 500, 600, 600]]), SHAPE)  # clipped to nothing: the nearest block
    assert outside.sum() == pytest.approx(1.0)


def test_grades_count_iou_thresholds_and_confidence() -> None:
    assert object_grades(REFERENCE, REFERENCE) == pytest.approx([1.0, 1.0])
    # The same box at a quarter of the confidence: sqrt(1/4).
    weaker = objects((0, 0, 64, 64, 0.2, 0), (64, 64, 192, 128, 0.5, 2))
    assert object_grades(REFERENCE, weaker) == pytest.approx([0.5, 1.0])
    # A box shifted to IoU 0.6 passes the thresholds 0.50 and 0.55 and 0.60 only.
    shifted = objects((0, 0, 64, 64, 0.8, 0), (64 + 32, 64, 192 + 32, 128, 0.5, 2))
    assert object_grades(REFERENCE, shifted)[1] == pytest.approx(0.3)
    wrong_class = objects((0, 0, 64, 64, 0.8, 1))
    assert object_grades(REFERENCE, wrong_class) == pytest.approx([0.0, 0.0])
    assert len(object_grades(objects(), REFERENCE)) == 0


def test_object_terms_put_a_lost_object_on_its_ctus() -> None:
    semantic = np.zeros(SHAPE, np.float32)
    dobj, fobj = object_terms(REFERENCE, REFERENCE, semantic)
    assert dobj.shape == (2, 3) and not dobj.any() and not fobj.any()  # no loss at the reference
    lost_second = objects((0, 0, 64, 64, 0.8, 0))
    dobj, fobj = object_terms(REFERENCE, lost_second, semantic)
    assert dobj.sum() == pytest.approx(0.5)  # one of two objects
    assert dobj[1, 1] == pytest.approx(0.25) and dobj[1, 2] == pytest.approx(0.25) and dobj[0].sum() == 0
    # A detection where no reference object is: a false one, its confidence over its CTU, per reference object.
    false = objects((0, 0, 64, 64, 0.8, 0), (64, 64, 192, 128, 0.5, 2), (128, 0, 192, 64, 0.6, 5))
    dobj, fobj = object_terms(REFERENCE, false, semantic)
    assert not dobj.any() and fobj[0, 2] == pytest.approx(0.3) and fobj.sum() == pytest.approx(0.3)


def test_classifier_terms_follow_the_reference_class_and_its_cam() -> None:
    semantic = np.zeros(SHAPE, np.float32)
    semantic[:64, :64] = 1.0
    reference = TaskOutput.classes(np.array([0.8, 0.1, 0.1]))
    decoded = TaskOutput.classes(np.array([0.4, 0.5, 0.1]))
    dobj, fobj = object_terms(reference, decoded, semantic)
    assert dobj[0, 0] == pytest.approx(0.5) and dobj.sum() == pytest.approx(0.5)  # half the probability lost
    assert fobj[0, 0] == pytest.approx(0.4) and fobj.sum() == pytest.approx(0.4)  # the rival rose 0.1 -> 0.5
    flat = object_terms(reference, decoded, np.zeros(SHAPE, np.float32))[0]
    np.testing.assert_allclose(flat, 0.5 / 6)  # no CAM: spread evenly


def test_fidelity_terms_and_loss_carry_the_object_terms() -> None:
    frame = np.zeros((*SHAPE, 3), np.uint8)
    semantic = np.zeros(SHAPE, np.float32)
    terms = fidelity_terms(frame, frame, semantic, semantic, REFERENCE, objects((0, 0, 64, 64, 0.8, 0)))
    assert terms.dobj.sum() == pytest.approx(0.5)
    assert not fidelity_terms(frame, frame, semantic, semantic).dobj.any()  # no outputs: no object terms
    loss = fidelity_loss(terms, RewardConfig(semantic_weight=0.0, pixel_weight=0.0, object_weight=2.0))
    assert loss.sum() == pytest.approx(1.0)
    assert fidelity_loss(terms, RewardConfig()).sum() == pytest.approx(0.0)  # policies trained before: unchanged


def test_tables_hold_the_object_terms_and_the_reference_output() -> None:
    _, tables, _, _ = synthetic_set(2)
    for t in tables:
        assert t.dobj.shape == t.bits.shape and t.fobj.shape == t.bits.shape
        assert t.reference is not None and len(t.reference.boxes) == 2  # the fake detector's two objects


def test_tables_keep_the_reference_output_through_the_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from envs.tables import CtuTable

    _, tables, _, _ = synthetic_set(1, task="classification")
    tables[0].save(tmp_path / "t.npz")
    back = CtuTable.load(tmp_path / "t.npz")
    assert back.reference is not None and back.reference.probs is not None
    np.testing.assert_array_equal(back.reference.probs, tables[0].reference.probs)  # type: ignore[union-attr]
    np.testing.assert_array_equal(back.dobj, tables[0].dobj)

"""Fast tests of the fidelity metrics on synthetic detections and frames (no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from semrl.errors import InvalidInputError
from semrl.fidelity import (
    plane_ssim,
    psnr,
    semantic_distortion,
    ssim,
    top1_accuracy,
    top1_agreement,
    top1_classes,
    top1_of_classes,
)
from semrl.fidelity.detection import (
    FrameMatches,
    PooledMatches,
    average_precision,
    coco_ap_per_class,
    correct_matrix,
    dont_care_subset,
    match_frame,
    mean_average_precision,
    pseudo_ground_truth,
    pseudo_gt_map,
    pseudo_target,
)
from semrl.fidelity.labels import grid_masks, read_yolo_labels
from semrl.fidelity.segmentation import mean_iou
from semrl.semantics.fakes import FakeObject, FakeSegmenter
from semrl.semantics.yolo import Detections, Letterbox

PERFECT_AP = 0.995  # ap_per_class's 101-point trapezoid ends at precision 0: its perfect score


def _dets(boxes, conf, cls, shape=(100, 100)) -> Detections:
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(conf, np.float32),
        np.asarray(cls, np.int64),
        shape,
    )


def test_map_perfect_partial_and_empty() -> None:
    gt = _dets([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 1], [0, 1])
    perfect = mean_average_precision([_dets(gt.boxes, [0.9, 0.8], [0, 1])], [gt])
    assert perfect.map50_95 == pytest.approx(PERFECT_AP) and perfect.objects == 2
    shifted = _dets([[14, 14, 54, 54], [60, 60, 90, 90]], [0.9, 0.8], [0, 1])
    s = mean_average_precision([shifted], [gt])
    assert s.map50 == pytest.approx(PERFECT_AP) and 0.4 < s.map50_95 < 0.99
    wrong_class = mean_average_precision([_dets(gt.boxes, [0.9, 0.8], [1, 0])], [gt])
    assert wrong_class.map50_95 == 0.0
    none = mean_average_precision([_dets(np.zeros((0, 4)), [], [])], [_dets(np.zeros((0, 4)), [], [])])
    assert np.isnan(none.map50_95)
    with pytest.raises(InvalidInputError):
        mean_average_precision([gt], [])


@pytest.mark.parametrize(("ap_method", "perfect"), [("ultralytics", PERFECT_AP), ("coco", 1.0)])
def test_object_weighted_map_weights_each_class_by_its_objects(ap_method, perfect) -> None:
    # class 0: three objects, all found exactly; class 1: one object, missed
    gt = _dets([[0, 0, 20, 20], [30, 30, 50, 50], [60, 60, 80, 80], [5, 60, 25, 80]], [1, 1, 1, 1], [0, 0, 0, 1])
    pred = _dets(gt.boxes[:3], [0.9, 0.8, 0.7], [0, 0, 0])
    score = mean_average_precision([pred], [gt], ap_method=ap_method)
    assert score.map50_95 == pytest.approx(perfect / 2)  # the class mean: the single object is half of it
    assert score.map50_95_objects == pytest.approx(perfect * 3 / 4)  # every object alike
    # one class: both means agree
    alone = mean_average_precision([pred], [_dets(gt.boxes[:3], [1, 1, 1], [0, 0, 0])], ap_method=ap_method)
    assert alone.map50_95_objects == pytest.approx(alone.map50_95)
    empty = mean_average_precision([pred], [_dets(np.zeros((0, 4)), [], [])], ap_method=ap_method)
    assert np.isnan(empty.map50_95_objects)


def test_pseudo_ground_truth_self_score_and_low_confidence_extras() -> None:
    preds = _dets(
        [[10, 10, 50, 50], [60, 60, 90, 90], [12, 12, 48, 48], [0, 0, 5, 5]],
        [0.9, 0.6, 0.1, 0.01],
        [0, 1, 0, 2],
    )
    gt = pseudo_ground_truth([preds])
    assert len(gt[0]) == 2 and (gt[0].conf == 1).all()
    assert mean_average_precision([preds], gt).map50_95 == pytest.approx(PERFECT_AP)


def test_coco_ap_is_one_when_perfect_and_pycocotools_like_otherwise() -> None:
    gt = _dets([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 1], [0, 1])
    perfect = mean_average_precision([_dets(gt.boxes, [0.9, 0.8], [0, 1])], [gt], ap_method="coco")
    assert perfect.map50_95 == pytest.approx(1.0, abs=1e-9)
    assert perfect.map50 == pytest.approx(1.0, abs=1e-9)
    # TP, FP, TP on two objects: envelope 1.0 up to recall 0.5 (51 thresholds), then 2/3 (50)
    ap = coco_ap_per_class(np.array([[True], [False], [True]]), np.array([0.9, 0.8, 0.7]), np.zeros(3), np.zeros(2))
    assert ap[0, 0] == pytest.approx((51 + 50 * 2 / 3) / 101)
    # a missed object: recall stops at 0.5, thresholds above it read precision 0
    half = coco_ap_per_class(np.array([[True]]), np.array([0.9]), np.zeros(1), np.zeros(2))
    assert half[0, 0] == pytest.approx(51 / 101)
    wrong = mean_average_precision([_dets(gt.boxes, [0.9, 0.8], [1, 0])], [gt], ap_method="coco")
    assert wrong.map50_95 == 0.0
    with pytest.raises(InvalidInputError, match="ap_method"):
        mean_average_precision([gt], [gt], ap_method="voc")  # type: ignore[arg-type]


def test_pseudo_gt_map_self_score_is_exactly_one() -> None:
    ref = _dets(
        [[10, 10, 50, 50], [60, 60, 90, 90], [12, 12, 48, 48], [0, 0, 5, 5]],
        [0.9, 0.6, 0.1, 0.01],
        [0, 1, 0, 2],
    )
    own = pseudo_gt_map([ref], [ref])
    assert own.objects == 2
    assert own.map50_95 == pytest.approx(1.0, abs=1e-9)
    assert own.map50 == pytest.approx(1.0, abs=1e-9)
    shifted = _dets([[16, 16, 56, 56], [60, 60, 90, 90]], [0.9, 0.6], [0, 1])
    assert pseudo_gt_map([ref], [shifted]).map50_95 < 0.9


def test_mask_map_and_miou_with_fake_segmenter() -> None:
    frame = np.zeros((80, 120, 3), np.uint8)
    objs = [FakeObject((0.1, 0.1, 0.5, 0.9), 0, 0.9), FakeObject((0.6, 0.2, 0.9, 0.6), 3, 0.7)]
    pred = FakeSegmenter(objs).detect([frame])
    gt = pseudo_ground_truth(pred)
    assert mean_average_precision(pred, gt, "mask").map50_95 == pytest.approx(PERFECT_AP)
    assert pseudo_gt_map(pred, pred, "mask").map50_95 == pytest.approx(1.0, abs=1e-9)
    assert mean_iou(pred, gt) == 1.0
    smaller = FakeSegmenter([FakeObject((0.1, 0.1, 0.4, 0.9), 0, 0.9), objs[1]]).detect([frame])
    assert 0.5 < mean_iou(smaller, gt) < 1.0


def test_read_yolo_labels_boxes_and_polygons(tmp_path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("3 0.5 0.5 0.2 0.4\n")
    d = read_yolo_labels(f, (100, 200))
    np.testing.assert_allclose(d.boxes[0], [80, 30, 120, 70])
    assert d.cls.tolist() == [3]
    g = tmp_path / "b.txt"
    g.write_text("1 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")
    m = read_yolo_labels(g, (100, 100), masks=True)
    assert m.masks is not None and 1400 < m.masks[0].sum() < 1800
    assert len(read_yolo_labels(tmp_path / "missing.txt", (10, 10))) == 0
    with pytest.raises(InvalidInputError):
        read_yolo_labels(f, (100, 200), masks=True)
    f.write_text("x y\n")
    with pytest.raises(InvalidInputError, match=r"a\.txt"):
        read_yolo_labels(f, (100, 200))


def _letterbox() -> Letterbox:
    # a 100x200 frame, enlarged 2x into a 224x416 input (val's rectangle) with 8 px of padding
    return Letterbox((100, 200), (224, 416), 2.0, (8.0, 12.0), (200, 400), (200, 400))


def test_grid_masks_follow_vals_letterbox() -> None:
    lb = _letterbox()
    square = np.array([[0.25, 0.2], [0.75, 0.2], [0.75, 0.8], [0.25, 0.8]], np.float32)
    inner = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]], np.float32)
    g = grid_masks([square, inner], lb)
    assert g.shape == (2, 56, 104) and lb.grid_shape == (56, 104)
    # input pixels x 108..308, y 52..172; on the quarter grid about 27..77 and 13..43
    ys, xs = np.nonzero(g[0] | g[1])
    assert abs(xs.min() - 27) <= 1 and abs(xs.max() - 76) <= 1
    assert abs(ys.min() - 13) <= 1 and abs(ys.max() - 42) <= 1
    assert not (g[0] & g[1]).any() and g[1].sum() > 0  # overlaps go to the smaller instance


def test_read_yolo_labels_on_the_mask_grid_and_grid_mask_iou(tmp_path) -> None:
    lb = _letterbox()
    f = tmp_path / "a.txt"
    f.write_text("2 0.25 0.2 0.75 0.2 0.75 0.8 0.25 0.8\n")
    lab = read_yolo_labels(f, (100, 200), masks=True, letterbox=lb)
    assert lab.grid_masks is not None and lab.grid_masks.shape == (1, *lb.grid_shape)
    assert lab.letterbox is lb and lab.above(0.5).grid_masks is not None
    with pytest.raises(InvalidInputError, match=r"a\.txt"):
        read_yolo_labels(f, (50, 200), masks=True, letterbox=lb)
    # a prediction equal on the grid but off at frame resolution: the grid decides
    assert lab.masks is not None
    pred = Detections(lab.boxes, np.array([0.9], np.float32), lab.cls, lab.shape, ~lab.masks, lab.grid_masks, lb)
    assert correct_matrix(pred, lab, "mask").all()
    no_grid = Detections(lab.boxes, pred.conf, lab.cls, lab.shape, ~lab.masks)
    assert not correct_matrix(no_grid, lab, "mask").any()
    with pytest.raises(InvalidInputError, match="letterbox"):
        Detections(lab.boxes, pred.conf, lab.cls, lab.shape, lab.masks, lab.grid_masks)
    with pytest.raises(InvalidInputError, match="grid"):
        Detections(lab.boxes, pred.conf, lab.cls, lab.shape, None, lab.grid_masks[:, 1:], lb)


def test_top1() -> None:
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1_accuracy(probs, [1, 0, 0]) == pytest.approx(2 / 3)
    assert top1_agreement(probs, probs) == 1.0
    assert top1_agreement(probs, probs[:, ::-1]) == 0.0


def test_distortion_psnr_ssim() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (70, 130, 3), dtype=np.uint8)
    dec = ref.copy()
    dec[:64, :64] ^= 8  # distort only the first CTU
    w = np.ones((70, 130), np.float32)
    d = semantic_distortion(ref, dec, w)
    assert d.shape == (2, 3) and d[0, 0] > 0 and (d.ravel()[1:] == 0).all()
    assert semantic_distortion(ref, dec, np.zeros_like(w)).max() == 0
    assert psnr(ref, ref) == float("inf")
    assert 20 < psnr(ref, dec) < 60
    assert ssim(ref, ref) == pytest.approx(1.0) and ssim(ref, dec) < 1.0
    with pytest.raises(InvalidInputError):
        psnr(ref, dec[:, :-1])


def test_a_clips_psnr_is_the_mean_of_its_frames_a_lossless_one_counting_100_db() -> None:
    from semrl.fidelity.distortion import clip_psnr

    assert clip_psnr([30.0, 40.0, float("inf")]) == pytest.approx(170.0 / 3)
    with pytest.raises(ValueError, match="at least one frame"):
        clip_psnr([])


def _frames() -> tuple[list[Detections], list[Detections]]:
    """Three frames of predictions and labels: a good one, a shifted one, one with a miss and a false alarm."""
    gts = [
        _dets([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 1], [0, 1]),
        _dets([[20, 20, 70, 70]], [1], [0]),
        _dets([[5, 5, 40, 40], [50, 10, 95, 45]], [1, 1], [1, 2]),
    ]
    preds = [
        _dets([[11, 10, 50, 51], [60, 62, 90, 90], [0, 0, 9, 9]], [0.9, 0.8, 0.05], [0, 1, 0]),
        _dets([[26, 24, 76, 74]], [0.7], [0]),
        _dets([[5, 5, 41, 40], [70, 70, 99, 99]], [0.6, 0.95], [1, 2]),
    ]
    return preds, gts


@pytest.mark.parametrize("ap_method", ["ultralytics", "coco"])
def test_pooled_frame_matches_give_mean_average_precision_on_any_subset(ap_method) -> None:
    preds, gts = _frames()
    records = [match_frame(p, g) for p, g in zip(preds, gts, strict=True)]
    assert records[0].tp.shape == (3, 10) and records[0].target_cls.dtype == np.int64
    whole = mean_average_precision(preds, gts, ap_method=ap_method)
    assert average_precision(records, ap_method) == whole
    assert 0 < whole.map50_95 < whole.map50 < 1 and whole.images == 3 and whole.objects == 5
    # a bootstrap resample: frames drawn with replacement, pooled without matching again
    idx = [2, 0, 2]
    resampled = mean_average_precision([preds[i] for i in idx], [gts[i] for i in idx], ap_method=ap_method)
    assert average_precision([records[i] for i in idx], ap_method) == resampled
    assert np.isnan(average_precision([], ap_method).map50_95)
    with pytest.raises(InvalidInputError, match="ap_method"):
        average_precision(records, "voc")  # type: ignore[arg-type]


@pytest.mark.parametrize("ap_method", ["ultralytics", "coco"])
def test_pooled_matches_weighted_by_draws_equal_pooling_the_drawn_frames(ap_method) -> None:
    preds, gts = _frames()
    records = [match_frame(p, g) for p, g in zip(preds, gts, strict=True)]
    pooled = PooledMatches(records, ap_method)
    assert pooled.score() == average_precision(records, ap_method)
    # a frame drawn twice, a frame left out, and a draw that loses class 2 (only in frame 2)
    for idx in ([2, 0, 2], [1, 1, 1], [0, 1, 1]):
        draws = np.bincount(idx, minlength=3)
        expected = average_precision([records[i] for i in idx], ap_method)
        got = pooled.score(draws)
        assert (got.images, got.objects) == (expected.images, expected.objects) == (3, expected.objects)
        assert got.map50_95 == pytest.approx(expected.map50_95, abs=1e-12)
        assert got.map50 == pytest.approx(expected.map50, abs=1e-12)
        assert got.map50_95_objects == pytest.approx(expected.map50_95_objects, abs=1e-12)
    assert np.isnan(pooled.score(np.zeros(3, np.int64)).map50_95)
    # many frames with random detections (no equal confidences): any draw, the same figures
    rng = np.random.default_rng(3)
    many = []
    for _ in range(30):
        n, m = int(rng.integers(0, 6)), int(rng.integers(0, 4))
        many.append(
            FrameMatches(rng.random((n, 10)) < 0.4, rng.random(n).astype(np.float32), rng.integers(0, 3, n),
                         rng.integers(0, 3, m))
        )  # fmt: skip
    pooled = PooledMatches(many, ap_method)
    for _ in range(5):
        idx = rng.integers(0, len(many), len(many))
        expected = average_precision([many[i] for i in idx], ap_method)
        got = pooled.score(np.bincount(idx, minlength=len(many)))
        assert got.map50_95 == pytest.approx(expected.map50_95, abs=1e-12) and 0 < got.map50_95 < 1
    with pytest.raises(InvalidInputError, match="ap_method"):
        PooledMatches(records, "voc")  # type: ignore[arg-type]


def test_pseudo_target_on_the_reference_scores_exactly_one() -> None:
    preds, _ = _frames()
    targets = [pseudo_target(p) for p in preds]
    assert [len(t) for t in targets] == [2, 1, 2]  # the 0.05 detection is no object
    assert all((t.conf == 1).all() for t in targets)
    assert [len(t) for t in pseudo_ground_truth(preds)] == [2, 1, 2]
    records = [match_frame(p, t) for p, t in zip(preds, targets, strict=True)]
    own = average_precision(records, "coco")
    assert own.map50_95 == 1.0 and own.map50 == 1.0
    assert own == pseudo_gt_map(preds, preds)
    # A target that already is ground truth (confidence 1) is kept whole.
    again = pseudo_target(targets[0])
    assert np.array_equal(again.boxes, targets[0].boxes) and np.array_equal(again.cls, targets[0].cls)


def test_detections_of_the_originals_unsure_finds_are_dont_care() -> None:
    # The original: a sure person A and car B, an unsure person C (0.3) and an unsure "airplane" D (0.35).
    a, b, c, d = [10, 10, 40, 60], [50, 50, 95, 90], [60, 5, 90, 40], [5, 70, 30, 95]
    original = _dets([a, b, d, c, [0, 0, 5, 5]], [0.9, 0.8, 0.35, 0.3, 0.05], [0, 2, 4, 0, 0])
    target = _dets([a, b], [1, 1], [0, 2])
    unsure = _dets([d, c], [0.35, 0.3], [4, 0])
    # Decoded: person C found first (0.95), then A; the car missed; the arrow taken for a "toilet"
    # (class-agnostic: still D's don't care); a false person elsewhere, last.
    decoded = _dets([c, a, d, [70, 60, 99, 99]], [0.95, 0.9, 0.6, 0.2], [0, 0, 61, 0])
    kept = dont_care_subset(decoded, target, unsure)
    assert kept.conf.tolist() == pytest.approx([0.9, 0.2]) and kept.cls.tolist() == [0, 0]
    # Hand-computed COCO AP: person A found before the false person, car missed -> (1 + 0) / 2.
    assert average_precision([match_frame(kept, target)], "coco").map50_95 == pytest.approx(0.5)
    # Without the don't care, C ranks first as a false person: person AP 0.5 (precision 1/2 at
    # recall 1), so the class mean is (0.5 + 0) / 2.
    assert average_precision([match_frame(decoded, target)], "coco").map50_95 == pytest.approx(0.25)
    # The original's own detections still score exactly 1 against its sure finds.
    own = dont_care_subset(original, target, unsure)
    assert average_precision([match_frame(own, target)], "coco").map50_95 == 1.0
    # A detection on an unsure box that also matches a sure object of its class is kept.
    near = _dets([[10, 10, 40, 58]], [0.7], [0])
    assert len(dont_care_subset(near, target, _dets([a], [0.3], [2]))) == 1
    assert len(dont_care_subset(near, target, _dets(np.zeros((0, 4)), [], []))) == 1


def test_top1_from_classes() -> None:
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert list(top1_classes(probs)) == [1, 0, 1]
    assert top1_of_classes([1, 0, 1], [1, 0, 0]) == pytest.approx(2 / 3) == top1_accuracy(probs, [1, 0, 0])
    assert np.isnan(top1_of_classes([], []))
    with pytest.raises(InvalidInputError, match="2 predictions but 3"):
        top1_of_classes([1, 0], [1, 0, 0])
    with pytest.raises(InvalidInputError, match="classes"):
        top1_classes(np.zeros(3))


def test_ssim_is_the_mean_of_the_planes_ssim() -> None:
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (70, 130, 3), dtype=np.uint8)
    dec = ref.copy()
    dec[:40] ^= 5
    # float32 inside, so equal to skimage's float64 computation to 1e-7
    assert ssim(ref, dec) == pytest.approx(structural_similarity(ref, dec, channel_axis=2, data_range=255), abs=1e-7)
    assert ssim(ref, dec) < 1.0
    assert ssim(ref, dec) == pytest.approx(np.mean([plane_ssim(ref[:, :, c], dec[:, :, c]) for c in range(3)]))
    assert plane_ssim(ref[:, :, 0], ref[:, :, 0]) == 1.0
    with pytest.raises(InvalidInputError, match="plane"):
        plane_ssim(ref, dec)
    with pytest.raises(InvalidInputError, match="differ"):
        plane_ssim(ref[:, :, 0], dec[:-1, :, 0])


def test_coco_ap_visiting_true_positives_only_equals_every_rank() -> None:
    from semrl.fidelity.detection import COCO_RECALL_THRESHOLDS, _coco_ap_ranked

    def every_rank(hits: np.ndarray, n_gt: float, w: np.ndarray) -> np.ndarray:
        # the definition: precision and recall at every counted rank, then the envelope
        hits, w = hits[w > 0], w[w > 0]
        tpc = (hits * w[:, None]).cumsum(0)
        precision, recall = tpc / np.cumsum(w)[:, None], tpc / n_gt
        envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
        ap = np.zeros(hits.shape[1])
        for t in range(hits.shape[1]):
            at = np.searchsorted(recall[:, t], COCO_RECALL_THRESHOLDS, side="left")
            ap[t] = envelope[at[at < len(recall)], t].sum() / len(COCO_RECALL_THRESHOLDS)
        return ap

    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 400):
        hits = rng.random((n, 10)) < rng.random(10)
        n_gt = float(max(1, hits[:, 0].sum() + rng.integers(0, 5)))
        for w in (np.ones(n), rng.integers(0, 3, n).astype(np.float64)):
            assert np.array_equal(_coco_ap_ranked(hits, n_gt, w), every_rank(hits, n_gt, w))
        assert np.array_equal(_coco_ap_ranked(hits, n_gt), every_rank(hits, n_gt, np.ones(n)))

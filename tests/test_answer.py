"""The answer search (the classification policy's; a detector's check too): fakes, then the real x265 and nets."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from semrl.agent.answer import (
    AnswerSearch,
    Trial,
    keep_answer,
    object_score,
    same_objects,
    trade_answer,
    trade_weight,
    trial_coder,
)
from semrl.agent.config import PolicyConfig
from semrl.codec import EncoderConfig, Gop, Yuv420
from semrl.errors import InvalidInputError
from semrl.policy import PolicyInput, TrialCoding
from tests.shared_assets import require_assets


def test_the_shifts_stop_at_the_bound_or_where_every_block_is_at_qp_51() -> None:
    offsets = np.array([[-3, 0], [6, 9]], np.int32)
    assert AnswerSearch(step=3, max_trials=16).shifts(offsets, 40) == [3, 6, 9, 12, 15]  # 37 + 15 >= 51
    assert AnswerSearch(step=3, max_trials=2).shifts(offsets, 40) == [3, 6]
    assert AnswerSearch(step=4, max_trials=16).shifts(offsets, 22) == [4 * k for k in range(1, 9)]  # 19 + 32 >= 51
    assert AnswerSearch().shifts(offsets, 54) == []  # already at 51 everywhere
    for bad in ({"step": 0}, {"max_trials": 0}, {"step": 52}, {"iou": 0.0}):
        with pytest.raises(InvalidInputError, match="answer search needs"):
            AnswerSearch(**bad)  # type: ignore[arg-type]


def _fake(answers: dict[int, int], bits: dict[int, int]) -> tuple[object, object, list[int]]:
    """A coder whose picture carries its shift, and a classifier that answers per shift."""
    coded: list[int] = []

    def code(offsets: np.ndarray) -> tuple[int, np.ndarray]:
        shift = int(offsets.flat[0])
        coded.append(shift)
        return bits[shift], np.full((8, 8, 3), shift + 128, np.uint8)

    def classify(picture: np.ndarray) -> int:
        return answers[int(picture[0, 0, 0]) - 128]

    return code, classify, coded


def test_the_cheapest_trial_that_keeps_the_answer_is_kept() -> None:
    search = AnswerSearch(step=3, max_trials=4)
    offsets = np.zeros((2, 3), np.int32)
    bits = {0: 900, 3: 700, 6: 500, 9: 400, 12: 450}
    # the answer is lost at 6 and back at 9: every trial is judged on its own answer, so 9 (the cheapest) is kept
    code, classify, coded = _fake({0: 7, 3: 7, 6: 2, 9: 7, 12: 2}, bits)
    kept, trials, _ = keep_answer(search, offsets, 30, code, classify)  # type: ignore[arg-type]
    assert coded == [0, 3, 6, 9, 12] and [t.answer for t in trials] == [7, 7, 2, 7, 2]
    assert np.array_equal(kept, offsets + 9)
    # no coarser trial keeps the answer: the policy's own map
    code, classify, _ = _fake({0: 1, 3: 2, 6: 2, 9: 3, 12: 4}, bits)
    assert np.array_equal(keep_answer(search, offsets, 30, code, classify)[0], offsets)  # type: ignore[arg-type]
    # the answer kept is the policy map's, whatever it is: its coding may already differ from the source's
    code, classify, _ = _fake({0: 5, 3: 5, 6: 5, 9: 5, 12: 5}, {**bits, 12: 300})
    assert np.array_equal(keep_answer(search, offsets, 30, code, classify)[0], offsets + 12)  # type: ignore[arg-type]


def test_a_background_shift_moves_only_the_blocks_it_is_given() -> None:
    search = AnswerSearch(step=3, max_trials=4)
    offsets = np.array([[0, -6], [3, 9]], np.int32)
    where = np.array([[True, False], [True, True]])
    assert search.shifts(offsets, 45, where) == [3, 6]  # the finest shifted block is at 45 (not 39): 51 at 6
    assert search.shifts(offsets, 45) == [3, 6, 9, 12]
    assert search.shifts(offsets, 40, np.zeros((2, 2), bool)) == []  # nothing to shift
    code, classify, coded = _fake({0: 1, 3: 1, 6: 1, 9: 2, 12: 2}, {0: 900, 3: 800, 6: 700, 9: 600, 12: 500})
    kept, _, _ = keep_answer(search, offsets, 40, code, classify, where=where)  # type: ignore[arg-type]
    assert coded == [0, 3, 6, 9, 12]
    assert np.array_equal(kept, offsets + 6 * where)  # the blocks on objects keep the map's offset
    assert AnswerSearch(background=True).tag == "answer=3x4:background"
    assert AnswerSearch.from_dict({"background": True}) == AnswerSearch(background=True)


def test_trial_codings_are_coded_in_order_one_at_a_time_beside_the_reads_and_their_errors_reach_the_caller() -> None:
    import threading

    search = AnswerSearch(step=3, max_trials=4)
    offsets = np.zeros((2, 2), np.int32)
    running, events = threading.Semaphore(1), []

    def code(o: np.ndarray) -> tuple[int, np.ndarray]:
        assert running.acquire(blocking=False), "two codings at once"
        try:
            events.append(("code", int(o.flat[0]), threading.current_thread().name))
            if int(o.flat[0]) == 9:
                raise RuntimeError("x265 failed")
            return 100, np.full((8, 8, 3), int(o.flat[0]) + 128, np.uint8)
        finally:
            running.release()

    def read(shown: np.ndarray) -> int:
        events.append(("read", int(shown[0, 0, 0]) - 128, threading.current_thread().name))
        return 0

    with pytest.raises(RuntimeError, match="x265 failed"):
        keep_answer(search, offsets, 30, code, read)
    coded = [e[1] for e in events if e[0] == "code"]
    assert coded == [0, 3, 6, 9]  # in order, and none after the failure
    # one coding ahead of the reads: the k-th coding starts after the (k-2)-th read
    order = [(kind, shift) for kind, shift, _ in events]
    assert all(order.index(("read", coded[k - 2])) < order.index(("code", coded[k])) for k in range(2, len(coded)))
    assert all(name.startswith("semrl-trial") for kind, _, name in events if kind == "code")
    assert [e[1] for e in events if e[0] == "read"] == [0, 3, 6]  # each read in order, in the caller's thread
    assert all(not name.startswith("semrl-trial") for kind, _, name in events if kind == "read")


def test_a_trade_tries_finer_shifts_too_and_keeps_the_trial_of_most_score_less_its_rates_worth() -> None:
    search = AnswerSearch(step=3, max_trials=3, trade=0.2, finer=2)
    offsets = np.zeros((2, 3), np.int32)
    assert search.shifts(offsets, 30) == [-6, -3, 3, 6, 9]
    assert search.shifts(offsets, 2) == [-3, 3, 6, 9]  # -3 already puts every block at QP 0
    assert search.shifts(offsets, 49) == [-6, -3, 3]  # nor a coarser one past 51
    assert trade_weight(search, 22) == pytest.approx(0.2) and trade_weight(search, 34) == pytest.approx(0.8)
    # an 8x8 picture: bpp = bits / 64; at base QP 28 each bpp is worth 0.4 of score
    bits = {-6: 64 * 3, -3: 64 * 2, 0: 64, 3: 32, 6: 16, 9: 8}
    score = {-6: 0.9, -3: 0.85, 0: 0.6, 3: 0.5, 6: 0.45, 9: 0.1}
    code, _, coded = _fake({}, bits)
    kept, trials, _ = trade_answer(search, offsets, 28, code, lambda shown: score[int(shown[0, 0, 0]) - 128])  # type: ignore[arg-type]
    assert coded == [0, -6, -3, 3, 6, 9] and trials[0].shift == 0
    # values: -6: 0.9 - 1.2, -3: 0.85 - 0.8, 0: 0.6 - 0.4, 3: 0.5 - 0.2, 6: 0.45 - 0.1 (best), 9: 0.1 - 0.05
    assert np.array_equal(kept, offsets + 6)
    kept, _, _ = trade_answer(search, offsets, 10, code, lambda shown: score[int(shown[0, 0, 0]) - 128])  # type: ignore[arg-type]
    assert np.array_equal(kept, offsets - 3)  # at base QP 10 a bpp is worth 0.05: -3 gives 0.85 - 0.1
    assert search.tag == "answer=3x3:trade0.2-2"
    assert AnswerSearch.from_dict(search.to_dict()) == search
    assert "trade" not in AnswerSearch().to_dict()  # older configs read and write as before
    with pytest.raises(InvalidInputError, match="need a trade"):
        AnswerSearch(finer=2)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="trade must be"):
            AnswerSearch(trade=bad)
    with pytest.raises(InvalidInputError, match=r"background_from .* set background and trade"):
        AnswerSearch(trade=0.2, background_from=27)
    with pytest.raises(InvalidInputError, match="background_from must be in"):
        AnswerSearch(trade=0.2, background=True, background_from=60)
    with pytest.raises(InvalidInputError, match="no trade"):
        trade_weight(AnswerSearch(), 30)


def test_a_trades_top_factor_lowers_its_weight_at_the_finest_base_qps_and_fades_out_by_27() -> None:
    search = AnswerSearch(step=3, max_trials=3, trade=0.2, finer=2, top=0.25)
    assert trade_weight(search, 22) == pytest.approx(0.05) and trade_weight(search, 12) == pytest.approx(
        0.05 / 2 ** (10 / 6)
    )
    assert trade_weight(search, 24) == pytest.approx(0.2 * 2 ** (2 / 6) * (0.25 + 0.75 * 2 / 5))  # rising linearly
    for q in (27, 32, 51):  # the benchmark's other points as without it
        assert trade_weight(search, q) == pytest.approx(trade_weight(AnswerSearch(step=3, max_trials=3, trade=0.2), q))
    # top 0: the trial of best score at base QP 22, ties to the fewer bits
    offsets = np.zeros((2, 3), np.int32)
    bits = {-6: 64 * 3, -3: 64 * 2, 0: 64, 3: 32, 6: 16, 9: 8}
    score = {-6: 0.9, -3: 0.9, 0: 0.6, 3: 0.5, 6: 0.45, 9: 0.1}
    code, _, _ = _fake({}, bits)
    best = AnswerSearch(step=3, max_trials=3, trade=0.2, finer=2, top=0.0)
    kept, _, _ = trade_answer(best, offsets, 22, code, lambda shown: score[int(shown[0, 0, 0]) - 128])  # type: ignore[arg-type]
    assert np.array_equal(kept, offsets - 3)
    assert search.tag == "answer=3x3:trade0.2-2:top0.25" and AnswerSearch.from_dict(search.to_dict()) == search
    assert "top" not in AnswerSearch(trade=0.2).to_dict()  # older configs read and write as before
    for bad in ({"top": 0.5}, {"trade": 0.2, "top": 1.5}, {"trade": 0.2, "top": -0.1}):
        with pytest.raises(InvalidInputError, match=r"top must be in 0\.\.1"):
            AnswerSearch(**bad)  # type: ignore[arg-type]


def _two_blocks(
    bits: dict[tuple[int, int], int], score: dict[tuple[int, int], float], coded: list[tuple[int, int]]
) -> tuple[Callable[[np.ndarray], tuple[int, np.ndarray]], Callable[[np.ndarray], float]]:
    """A coder and a scorer keyed by a map's (upper-left, lower-right) offsets; ``coded`` records each coding's key."""
    keys = sorted(bits)

    def code(o: np.ndarray) -> tuple[int, np.ndarray]:
        key = (int(o[0, 0]), int(o[1, 1]))
        coded.append(key)
        return bits[key], np.full((8, 8, 3), keys.index(key), np.uint8)

    def read(shown: np.ndarray) -> float:
        return score[keys[int(shown[0, 0, 0])]]

    return code, read


def test_a_trades_background_stage_shifts_the_blocks_no_object_touches_and_keeps_the_best_by_the_same_rule() -> None:
    search = AnswerSearch(step=3, max_trials=3, trade=0.2, finer=1, background=True, background_from=27)
    offsets = np.zeros((2, 2), np.int32)
    where = np.array([[False, False], [True, True]])  # the lower row holds no object
    coded: list[tuple[int, int]] = []
    # an 8x8 picture: bpp = bits / 64. Keyed by (the objects' shift, the background's shift)
    bits = {(-3, -3): 256, (0, 0): 128, (3, 3): 64, (6, 6): 32, (9, 9): 16, (3, 6): 48, (3, 9): 40, (3, 12): 36}
    score = {
        (-3, -3): 0.8,
        (0, 0): 0.7,
        (3, 3): 0.65,
        (6, 6): 0.3,
        (9, 9): 0.1,
        (3, 6): 0.64,
        (3, 9): 0.6,
        (3, 12): 0.3,
    }
    code, read = _two_blocks(bits, score, coded)

    # at base QP 28 a bpp is worth 0.4: the whole map's best is +3 (0.65 - 0.4); then its background 3
    # coarser (0.64 - 0.3) beats it, 6 coarser (0.6 - 0.25) more so, and 9 coarser loses the objects' score
    kept, trials, _ = trade_answer(search, offsets, 28, code, read, where)
    assert coded == [(0, 0), (-3, -3), (3, 3), (6, 6), (9, 9), (3, 6), (3, 9), (3, 12)]
    assert np.array_equal(kept, offsets + 3 + 6 * where)
    assert [(t.shift, t.background) for t in trials[-3:]] == [(3, 3), (3, 6), (3, 9)]
    # below background_from, without the blocks, or without the flag: the whole map's trade alone
    for args, base in (
        ((search, where), 26),
        ((search, None), 28),
        ((AnswerSearch(3, 3, trade=0.2, finer=1), where), 28),
    ):
        coded.clear()
        kept, _, _ = trade_answer(args[0], offsets, base, code, read, args[1])
        assert len(coded) == 5 and len(np.unique(kept)) == 1
    assert search.tag == "answer=3x3:background:trade0.2-1-from27"
    assert AnswerSearch.from_dict(search.to_dict()) == search
    assert "background_from" not in AnswerSearch(trade=0.2).to_dict()


def test_a_trade_with_a_roi_map_codes_both_maps_shifts_on_trial_and_keeps_the_best_of_either() -> None:
    search = AnswerSearch(step=3, max_trials=3, trade=0.2, finer=1, roi=(8,))
    offsets = np.zeros((2, 2), np.int32)
    roi = np.array([[-8, 8], [8, 8]], np.int32)  # the upper-left block holds the objects
    coded: list[tuple[int, int]] = []
    # an 8x8 picture: bpp = bits / 64. Keyed by (the upper-left block's offset, the lower-right's)
    bits = {(-3, -3): 128, (0, 0): 64, (3, 3): 32, (6, 6): 16, (9, 9): 8}
    score = {(-3, -3): 0.7, (0, 0): 0.6, (3, 3): 0.45, (6, 6): 0.3, (9, 9): 0.1}
    bits |= {(-11, 5): 40, (-8, 8): 20, (-5, 11): 10, (-2, 14): 5, (1, 17): 2}
    score |= {(-11, 5): 0.75, (-8, 8): 0.74, (-5, 11): 0.2, (-2, 14): 0.2, (1, 17): 0.2}
    code, read = _two_blocks(bits, score, coded)

    # at base QP 28 a bpp is worth 0.4: the policy's map is worth 0.45 - 0.4 * 0.5 at best (shift +3); the
    # ROI map at its own offsets 0.74 - 0.4 * 20 / 64, more than any other trial of either map
    kept, trials, _ = trade_answer(search, offsets, 28, code, read, roi_maps={8: roi})
    assert coded == [(0, 0), (-3, -3), (3, 3), (6, 6), (9, 9), (-8, 8), (-11, 5), (-5, 11), (-2, 14), (1, 17)]
    assert np.array_equal(kept, roi)
    assert [t.roi for t in trials] == [0] * 5 + [8] * 5 and [t.shift for t in trials[5:]] == [0, -3, 3, 6, 9]
    # without the ROI map, the policy's map alone
    coded.clear()
    kept, _, _ = trade_answer(search, offsets, 28, code, read)
    assert len(coded) == 5 and np.array_equal(kept, offsets + 3)
    for bad in ({8: np.zeros((3, 2), np.int32)}, {0: roi}):
        with pytest.raises(InvalidInputError, match="ROI map of strength"):
            trade_answer(search, offsets, 28, code, read, roi_maps=bad)
    assert search.tag == "answer=3x3:trade0.2-1:roi8"
    assert search.to_dict()["roi"] == 8  # one strength is written as configs wrote it before there could be several
    assert AnswerSearch.from_dict(search.to_dict()) == search
    assert "roi" not in AnswerSearch(trade=0.2).to_dict()  # older configs read and write as before
    assert AnswerSearch.from_dict({"trade": 0.2, "roi": 0}).roi == ()
    for roi, trade in (((8,), None), ((-1,), 0.2), ((52,), 0.2), ((8, 8), 0.2)):
        with pytest.raises(InvalidInputError, match="roi must be distinct strengths in"):
            AnswerSearch(trade=trade, roi=roi)
    with pytest.raises(InvalidInputError, match="roi must be distinct strengths in"):
        AnswerSearch.from_dict({"trade": 0.2, "roi": [4, 0]})
    for roi in (4.5, "8", [4, "x"], {"d": 4}, [True]):
        with pytest.raises(InvalidInputError, match="roi must be a whole number or a list of them"):
            AnswerSearch.from_dict({"trade": 0.2, "roi": roi})
    for key, value, what in (("step", 3.5, "a whole number"), ("trade", "0.2", "a number"),
                             ("target_conf", "high", "a number"), ("finer", True, "a whole number")):  # fmt: skip
        with pytest.raises(InvalidInputError, match=f"the answer search's {key} must be {what}, got"):
            AnswerSearch.from_dict({"trade": 0.2} | {key: value})
    assert AnswerSearch.from_dict({"trade": 1, "iou": 1}) == AnswerSearch(trade=1.0, iou=1.0)  # JSON's 1 is a number


def test_a_trade_over_several_roi_maps_codes_each_in_turn_and_keeps_the_best_trial_of_any() -> None:
    search = AnswerSearch(step=3, max_trials=1, trade=0.2, roi=(4, 8))
    offsets = np.zeros((2, 2), np.int32)
    roi4, roi8 = np.array([[-4, 4], [4, 4]], np.int32), np.array([[-8, 8], [8, 8]], np.int32)
    coded: list[tuple[int, int]] = []
    bits = {(0, 0): 64, (3, 3): 32, (-4, 4): 40, (-1, 7): 30, (-8, 8): 24, (-5, 11): 12}
    score = {(0, 0): 0.6, (3, 3): 0.45, (-4, 4): 0.7, (-1, 7): 0.5, (-8, 8): 0.62, (-5, 11): 0.64}
    code, read = _two_blocks(bits, score, coded)

    # at base QP 28 (0.4 per bpp): the D=8 map shifted +3 is worth 0.64 - 0.4 * 12 / 64, the most of the six
    kept, trials, trial = trade_answer(search, offsets, 28, code, read, roi_maps={4: roi4, 8: roi8})
    assert coded == [(0, 0), (3, 3), (-4, 4), (-1, 7), (-8, 8), (-5, 11)]
    assert [(t.roi, t.shift) for t in trials] == [(0, 0), (0, 3), (4, 0), (4, 3), (8, 0), (8, 3)]
    assert np.array_equal(kept, roi8 + 3)
    assert trial is trials[5] and trial.describe() == "roi-d8 +3"
    assert trials[0].describe() == "map +0" and Trial(-3, 1, 0.0, background=6).describe() == "map -3, background +6"
    assert search.tag == "answer=3x1:trade0.2-0:roi4+8"
    assert search.to_dict()["roi"] == [4, 8] and AnswerSearch.from_dict(search.to_dict()) == search


class _ShiftDetector:
    """Finds one person on a picture whose value is 128 or more, moved right by the picture's value less 128."""

    task = "detection"

    def detect(self, frames: list[np.ndarray], settings: object = None, *, color: str = "bgr") -> list[object]:
        from semrl.semantics.yolo import Detections

        out = []
        for f in frames:
            moved = float(f[0, 0, 0]) - 128.0
            boxes = np.array([[10 + moved, 10, 50 + moved, 50]], np.float32)[: int(moved >= 0)]
            out.append(
                Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64), f.shape[:2])
            )
        return out


def test_a_codings_score_is_its_map_against_the_nets_objects_on_the_source() -> None:
    source = np.full((64, 64, 3), 128, np.uint8)
    score = object_score(_ShiftDetector(), source)
    assert score(source) == pytest.approx(0.995)  # Ultralytics' AP of a perfect find
    assert score(np.full((64, 64, 3), 132, np.uint8)) < score(source)  # the box moved 4 px: IoU 0.82
    assert score(np.zeros((64, 64, 3), np.uint8)) == 0.0  # the object lost
    empty = object_score(_ShiftDetector(), np.zeros((64, 64, 3), np.uint8))
    assert empty(source) == 1.0  # a source with no object: nothing to lose, every coding scores 1


class _UnsureDetector:
    """Finds a sure person (0.9) on every picture, and an unsure one (0.15) beside it where the value is 128 or more."""

    task = "detection"

    def detect(self, frames: list[np.ndarray], settings: object = None, *, color: str = "bgr") -> list[object]:
        from semrl.semantics.yolo import Detections

        out = []
        for f in frames:
            n = 1 + int(f[0, 0, 0] >= 128)
            boxes = np.array([[0, 0, 20, 20], [30, 30, 60, 60]], np.float32)[:n]
            out.append(Detections(boxes, np.array([0.9, 0.15], np.float32)[:n], np.zeros(n, np.int64), f.shape[:2]))
        return out


def test_a_trades_score_reads_the_finds_down_to_its_target_confidence() -> None:
    source, lost = np.full((64, 64, 3), 128, np.uint8), np.zeros((64, 64, 3), np.uint8)
    # the coding that loses the unsure find: nothing lost against the sure finds alone, half against both
    assert object_score(_UnsureDetector(), source)(lost) == pytest.approx(0.995)
    assert object_score(_UnsureDetector(), source, conf=0.1)(lost) == pytest.approx(0.495)  # recall 0.5
    search = AnswerSearch(step=3, max_trials=3, trade=0.1, finer=2, target_conf=0.1)
    assert search.tag == "answer=3x3:trade0.1-2:target0.1"
    assert search.to_dict()["target_conf"] == 0.1 and AnswerSearch.from_dict(search.to_dict()) == search
    assert "target_conf" not in AnswerSearch(trade=0.1).to_dict()  # older configs read and write as before
    assert AnswerSearch(trade=0.1).tag == "answer=3x4:trade0.1-0"
    for conf, trade in ((0.0, 0.1), (1.5, 0.1), (0.1, None)):
        with pytest.raises(InvalidInputError, match="target_conf must be in"):
            AnswerSearch(trade=trade, target_conf=conf)


def test_a_detectors_objects_are_the_same_answer_when_they_match_one_to_one_by_class_and_iou() -> None:
    boxes = np.array([[0, 0, 100, 100], [200, 200, 300, 260]], np.float32)
    cls = np.array([0, 2], np.int64)
    nudged = boxes + np.array([2, 0, 2, 0], np.float32)  # IoU 0.96 and 0.98
    assert same_objects((boxes, cls), (nudged[::-1], cls[::-1]), 0.9)  # in any order
    assert not same_objects((boxes, cls), (nudged, cls), 0.99)
    assert not same_objects((boxes, cls), (nudged, np.array([0, 3], np.int64)), 0.9)  # a class changed
    assert not same_objects((boxes, cls), (boxes[:1], cls[:1]), 0.9)  # an object lost
    assert not same_objects((boxes[:1], cls[:1]), (boxes, cls), 0.9)  # an object found
    two_on_one = (np.stack([boxes[0], boxes[0] + 1]), np.array([0, 0], np.int64))
    assert not same_objects((boxes, np.array([0, 0], np.int64)), two_on_one, 0.9)  # the second has no match
    none = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert same_objects(none, none, 0.9)


def test_only_a_picture_coded_on_its_own_at_constant_qp_is_coded_on_trial() -> None:
    picture = Yuv420.from_rgb(np.zeros((64, 64, 3), np.uint8))

    def inputs(config: EncoderConfig | None, with_picture: bool = True, index: int = 0) -> PolicyInput:
        coding = None if config is None else TrialCoding(config, (64, 64))
        return PolicyInput(np.zeros((64, 64, 3), np.uint8), 32, (1, 1), frame_index=index,
                           picture=picture if with_picture else None, coding=coding)  # fmt: skip

    intra, ldp = EncoderConfig(64, 64, qp=32, gop=Gop.INTRA), EncoderConfig(64, 64, qp=32, gop=Gop.LOW_DELAY_P)
    assert trial_coder(inputs(intra)) is not None and trial_coder(inputs(intra, index=5)) is not None
    assert trial_coder(inputs(ldp)) is not None  # a clip's first frame is an IDR picture coded on its own
    assert trial_coder(inputs(ldp, index=1)) is None  # a P-frame leans on the frames before it
    assert trial_coder(inputs(None)) is None
    assert trial_coder(inputs(intra, with_picture=False)) is None
    assert trial_coder(inputs(EncoderConfig(64, 64, crf=28.0, gop=Gop.INTRA))) is None


def test_a_config_with_a_malformed_answer_search_is_refused(tmp_path: Path) -> None:
    from semrl.agent.checkpoint import shipped_policy
    from semrl.agent.config import config_path

    config = json.loads(config_path(shipped_policy("classification")).read_text())
    config["answer"] = {"step": 0, "max_trials": 2}
    with pytest.raises(InvalidInputError, match="answer search needs"):
        PolicyConfig.from_json(json.dumps(config))
    config["answer"] = {"steps": 3}
    with pytest.raises(InvalidInputError, match="malformed policy config"):
        PolicyConfig.from_json(json.dumps(config))


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_the_kept_coding_answers_as_the_policy_map_does_with_no_more_bits(tmp_path: Path) -> None:
    root = require_assets("models/yolov8n-cls.pt", "datasets/imagenet-cls/val")
    from semrl.agent.checkpoint import load_checkpoint_policy, shipped_policy
    from semrl.agent.config import config_path
    from semrl.bench.items import image_item
    from semrl.codec import ctu_grid
    from semrl.semantics.yolo import YoloNet

    shipped = shipped_policy("classification")
    config = json.loads(config_path(shipped).read_text())
    config["answer"] = {"step": 3, "max_trials": 4}
    (tmp_path / "ckpt.zip").write_bytes(shipped.read_bytes())
    config_path(tmp_path / "ckpt.zip").write_text(json.dumps(config))
    policy = load_checkpoint_policy(tmp_path / "ckpt.zip", task="classification")
    assert "answer=3x4" in policy.fingerprint
    net = YoloNet(root / "models/yolov8n-cls.pt")
    pictures = sorted((root / "datasets/imagenet-cls/val").glob("*/*.JPEG"))[:2]
    assert pictures, "no ImageNet val pictures"
    for path in pictures:
        item = image_item(path, class_id=0)
        h, w = item.shape
        frame = item.yuv[0]
        coder = EncoderConfig(*item.coded_size, qp=32, preset="ultrafast", gop=Gop.INTRA)
        ctu_shape = ctu_grid(coder.width, coder.height)
        alone = policy(PolicyInput(frame.to_rgb(), 32, ctu_shape, picture=frame))  # no coding given: no search
        kept = policy(PolicyInput(frame.to_rgb(), 32, ctu_shape, picture=frame, coding=TrialCoding(coder, (h, w))))
        shift = np.unique(kept - alone)
        assert len(shift) == 1 and shift[0] in (0, 3, 6, 9, 12)  # the whole map, by one of the trials' shifts

        (bits_alone, answer_alone), (bits_kept, answer_kept) = (
            _coded(coder, frame, offsets, net, (h, w)) for offsets in (alone, kept)
        )
        assert answer_kept == answer_alone and bits_kept <= bits_alone
        assert trial_coder(PolicyInput(frame.to_rgb(), 32, ctu_shape, picture=frame)) is None


def _coded(
    coder: EncoderConfig, frame: Yuv420, offsets: np.ndarray, net: object, shape: tuple[int, int]
) -> tuple[int, int]:
    """Bits of a picture coded with offsets from QP 32, and the classifier's top-1 class of what a decoder shows."""
    from semrl.codec import Encoder
    from semrl.fidelity.classification import top1_classes
    from semrl.policy import clip_offsets

    with Encoder(coder) as encoder:
        out = encoder.encode(frame, clip_offsets(offsets, 32, 32)) + encoder.flush()
    shown = out[0].recon.to_rgb()[: shape[0], : shape[1]]
    return out[0].bits, int(top1_classes(net.classify([shown], color="rgb"))[0])  # type: ignore[attr-defined]


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_semrl_encode_of_a_picture_keeps_the_answer_with_fewer_bits(tmp_path: Path) -> None:
    root = require_assets("models/yolov8n-cls.pt", "datasets/imagenet-cls/val/n01924916/n01924916_flatworm.JPEG")
    from semrl.agent.checkpoint import shipped_policy
    from semrl.agent.config import config_path
    from semrl.media import decode_ffmpeg
    from semrl.pipeline import EncodeSettings, encode_video
    from semrl.semantics.yolo import YoloNet

    picture = root / "datasets/imagenet-cls/val/n01924916/n01924916_flatworm.JPEG"  # 1152x864: even
    shipped = shipped_policy("classification")
    alone = json.loads(config_path(shipped).read_text()) | {"answer": None}
    (tmp_path / "alone.zip").write_bytes(shipped.read_bytes())
    config_path(tmp_path / "alone.zip").write_text(json.dumps(alone))
    net = YoloNet(root / "models/yolov8n-cls.pt")
    answers, bits, kept = {}, {}, {}
    for name, policy in (("alone", str(tmp_path / "alone.zip")), ("shipped", "classification")):
        out = tmp_path / f"{name}.hevc"
        report = encode_video(picture, out, EncodeSettings(policy=policy, task="classification", preset="ultrafast"))
        (shown,) = decode_ffmpeg(out, report.width, report.height)
        answers[name] = int(net.classify([shown.to_rgb()], color="rgb").argmax())
        bits[name] = report.bits
        kept[name] = report.rows[0].kept
    assert answers["shipped"] == answers["alone"] and bits["shipped"] < bits["alone"]
    assert kept["alone"] == "" and re.fullmatch(r"map \+\d+ of [1-5] trials", kept["shipped"]), kept


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_the_trade_and_its_background_stage_keep_the_codings_worth_the_most_on_a_real_picture() -> None:
    root = require_assets("models/yolov8n.pt", "datasets/coco-det/images/val")
    from semrl.agent.answer import OBJECT_MARGIN, ROI_DILATION, trade_weight
    from semrl.agent.checkpoint import load_checkpoint_policy, shipped_policy
    from semrl.bench.items import image_item
    from semrl.codec import Encoder, ctu_grid
    from semrl.policy import clip_offsets, roi_blocks
    from semrl.semantics.regions import box_region
    from semrl.semantics.yolo import YoloNet

    policy = load_checkpoint_policy(shipped_policy("detection"), task="detection")
    assert policy.answer is not None and policy.answer.trade is not None
    assert policy.fingerprint.endswith(":answer=3x3:trade0.1-2:roi4+8+12")
    path = sorted((root / "datasets/coco-det/images/val").glob("*.jpg"))[0]
    item = image_item(path)
    (h, w), frame, base = item.shape, item.yuv[0], 37
    rgb = frame.to_rgb()
    coder = EncoderConfig(*item.coded_size, qp=base, preset="ultrafast", gop=Gop.INTRA, qg_size=16)
    ctu_shape = ctu_grid(coder.width, coder.height)
    alone = policy(PolicyInput(rgb, base, ctu_shape, picture=frame))  # no coding given: the map
    inputs = PolicyInput(rgb, base, ctu_shape, picture=frame, coding=TrialCoding(coder, (h, w)))
    kept = policy(inputs)
    objects = roi_blocks(box_region(policy._analyse(rgb)[1], (h, w)), alone.shape, ROI_DILATION, policy.offset_block)
    assert objects.any() and not objects.all()  # the picture has objects and background
    maps = {"map": alone} | {f"roi-d{d}": np.where(objects, -d, d) for d in (4, 8, 12)}
    shifts = (-6, -3, 0, 3, 6, 9)
    # the learned map or one of the ROI maps, shifted as a whole by one of the trials' shifts
    trial = [(name, s) for name, m in maps.items() for s in shifts if np.array_equal(kept, m + s)]
    assert len(trial) == 1
    assert inputs.report == {"kept": f"{trial[0][0]} {trial[0][1]:+d} of 24 trials"}  # what the encode report says

    # each coding made and scored here on its own: the kept one is worth the most
    score = object_score(YoloNet(root / "models/yolov8n.pt"), rgb[:h, :w])
    weight = trade_weight(policy.answer, base)

    def value(offsets: np.ndarray) -> float:
        with Encoder(coder) as encoder:
            (coded,) = encoder.encode(frame, clip_offsets(offsets, base, base)) + encoder.flush()
        return score(coded.recon.to_rgb()[:h, :w]) - weight * coded.bits / (h * w)

    whole = {s: value(alone + s) for s in shifts}
    values = {("map", s): v for s, v in whole.items()}
    values |= {(name, s): value(m + s) for name, m in maps.items() if name != "map" for s in shifts}
    assert values[trial[0]] == pytest.approx(max(values.values()))

    # the background stage (refused for the shipped detection config; segmentation's has it), on the learned map alone:
    # its best whole shift, then the blocks no object touches as many QP coarser as is worth the most
    policy.answer = AnswerSearch(step=3, max_trials=3, trade=0.1, finer=2, background=True, background_from=27)
    kept = policy(PolicyInput(rgb, base, ctu_shape, picture=frame, coding=TrialCoding(coder, (h, w))))
    shift = max(shifts, key=lambda s: whole[s])
    where = ~roi_blocks(box_region(policy._analyse(rgb)[1], (h, w)), alone.shape, OBJECT_MARGIN, policy.offset_block)
    assert where.any() and not where.all()
    assert np.all((kept - alone)[~where] == shift)
    background = np.unique((kept - alone)[where] - shift)
    assert len(background) == 1
    second = {b: whole[shift] if b == 0 else value(alone + shift + b * where) for b in (0, 3, 6, 9)}
    assert second[int(background[0])] == pytest.approx(max(second.values()))
    # below background_from only the whole map is traded
    low = policy(PolicyInput(rgb, 22, ctu_shape, picture=frame, coding=TrialCoding(coder, (h, w))))
    assert len(np.unique(low - policy(PolicyInput(rgb, 22, ctu_shape, picture=frame)))) == 1

"""benchmarks/mask_grades.py grades a matched instance by its box and by its mask (hand-made instances)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_scripts import load_benchmark


def _instance(box: list[float], cls: int, mask_rows: slice, shape: tuple[int, int] = (40, 40)):  # type: ignore[no-untyped-def]
    mask = np.zeros((1, *shape), bool)
    mask[0, mask_rows, 10:30] = True
    return np.array([box], np.float64), np.array([cls], np.int64), mask


def test_a_box_kept_and_half_its_mask_lost_grade_apart() -> None:
    mask_grades = load_benchmark("mask_grades")
    reference = _instance([10, 0, 30, 40], 3, slice(0, 40))
    half = _instance([10, 0, 30, 40], 3, slice(0, 20))  # the same box, half the mask: mask IoU 0.5
    ((box, mask),) = mask_grades.grades(reference, half)
    assert box == pytest.approx(1.0) and mask == pytest.approx(0.1)  # 0.5 passes only the first threshold
    other_class = _instance([10, 0, 30, 40], 4, slice(0, 40))
    assert mask_grades.grades(reference, other_class) == [(0.0, 0.0)]
    nothing = (np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros((0, 40, 40), bool))
    assert mask_grades.grades(reference, nothing) == [(0.0, 0.0)]

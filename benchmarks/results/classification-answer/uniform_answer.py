"""A1 with the answer search: every CTU at the base QP, then the picture as coarse as keeps the classifier's answer.

How much of the shipped classification policy's saving is its learned map, and how much the picture-level
search (:mod:`semrl.agent.answer`) would give on top of constant QP alone. Run with ``benchmarks/bdrate.py
--task classification --policy uniform-answer=<this file>:uniform_answer``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.answer import AnswerSearch, keep_answer, trial_coder
from semrl.policy import PolicyInput

_NET: list[Any] = []


def _top1(picture: NDArray[np.uint8]) -> int:
    """yolov8n-cls's top-1 class of an RGB picture, as the benchmark's task net scores it (loaded once)."""
    from semrl.assets import resolve_weights
    from semrl.fidelity.classification import top1_classes
    from semrl.semantics.yolo import YoloNet

    if not _NET:
        _NET.append(YoloNet(resolve_weights("yolov8n-cls.pt"), device="cpu"))
    return int(top1_classes(_NET[0].classify([picture], color="rgb"))[0])


class UniformAnswer:
    """Zero offsets, shifted as coarse as keeps the answer (the shipped search: step 3, 4 trials)."""

    needs_regions = False
    runs_own_net = True
    search = AnswerSearch()
    fingerprint = f"uniform+{search.tag}:yolov8n-cls"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The picture's offsets per CTU; codes it on trial."""
        code = trial_coder(inputs)
        if code is None:
            raise RuntimeError("uniform_answer codes each picture on trial: the benchmark's pictures, all-intra")
        return keep_answer(self.search, np.zeros(inputs.ctu_shape, np.int32), int(inputs.base_qp), code, _top1)[0]


uniform_answer = UniformAnswer()

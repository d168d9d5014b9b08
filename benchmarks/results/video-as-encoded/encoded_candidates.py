"""The shipped video policy as ``semrl encode`` runs it: the task net every ``interval`` frames, at the encoder's size.

The benchmark gives a policy the task net's objects on every frame, found at Ultralytics val's settings (input
640 px, multi-label). ``semrl encode`` runs the net every ``--map-interval`` frames (default 10) on the frame it
is about to code, at the frame's own size rounded up to 32 px (at most 640; 480 for a 480x360 clip) with one
label per box, and the video policy decides every frame from the latest of those analyses
(``semrl.pipeline._run``). So the benchmark's video figures describe a coding users do not get. Here the
shipped video policy gets ``semrl encode``'s analyses instead, computed by ``semrl encode``'s own code
(``semrl.pipeline._task_net`` and ``_analyse``) at the net's thread count there (every core but one), so the
benchmark codes what ``semrl encode --qp BASE --map-interval N`` codes; ``check_encoded.py`` verifies that
frame by frame. Run with ``benchmarks/bdrate.py --policy as_encoded10=<this file>:as_encoded10``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.resolve import resolve_policy
from semrl.policy import PolicyInput, policy_offsets

_STATE = "as_encoded"
_POLICY: list[Any] = []


def _video_policy() -> Any:
    """The shipped video policy, loaded once per process."""
    if not _POLICY:
        _POLICY.append(resolve_policy("video", device="cpu"))
    return _POLICY[0]


def _product_analysis(picture: Any) -> Any:
    """The task net's objects on a picture exactly as ``semrl encode`` finds them, with its thread count."""
    import torch

    from semrl.pipeline import EncodeSettings, _analyse, _task_net

    settings = EncodeSettings()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))  # as semrl.pipeline._leave_cores_to_x265
    try:
        return _analyse(_task_net("detection", settings), picture.to_rgb(), settings)
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class AsEncoded:
    """The shipped video policy fed ``semrl encode``'s analysis, every ``interval`` frames."""

    interval: int
    needs_regions = False  # it runs semrl encode's analysis itself
    needs_rgb = False
    frame_level = True

    @property
    def offset_block(self) -> int:
        """The video policy's offset grid."""
        return int(_video_policy().offset_block)

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"as-encoded:interval={self.interval}:{_video_policy().fingerprint}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The video policy's offsets for the frame, from the latest analysis semrl encode would have."""
        if inputs.picture is None:
            raise RuntimeError("AsEncoded analyses the coded picture and needs it")
        if inputs.frame_index % self.interval == 0:
            inputs.state[_STATE] = _product_analysis(inputs.picture)
        found = inputs.state.get(_STATE)
        fed = dataclasses.replace(
            inputs,
            region=None if found is None else found.region,
            boxes=np.zeros((0, 4), np.float32) if found is None else found.boxes,
            cls=np.zeros(0, np.int64) if found is None else found.cls,
            conf=np.zeros(0, np.float32) if found is None else found.conf,
        )
        return policy_offsets(_video_policy(), fed)


as_encoded10 = AsEncoded(10)
as_encoded20 = AsEncoded(20)
as_encoded8 = AsEncoded(8)  # at every decision of the video policy (it decides every 8th frame)
as_encoded5 = AsEncoded(5)

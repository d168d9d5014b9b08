"""The shipped video policy as ``semrl encode`` runs it: the task net every ``interval`` frames, at the encoder's size.

The benchmark gives a policy the task net's objects on every frame, found at Ultralytics val's settings (input
640 px, multi-label). ``semrl encode`` runs the net every ``--map-interval`` frames (default 10) on the frame it
is about to code, at the frame's own size rounded up to 32 px (at most 640; 480 for a 480x360 clip) with one
label per box, and the video policy decides every frame from the latest of those analyses
(``semrl.pipeline._run``). So the benchmark's video figures describe a coding users do not get. Here the
shipped video policy gets ``semrl encode``'s analyses instead, computed by ``semrl encode``'s own code
(``semrl.pipeline.task_net`` and ``frame_regions``) at the net's thread count there (every core but one), so the
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
_POLICIES: dict[str, Any] = {}


def _video_policy(name: str = "video") -> Any:
    """A shipped frame-level policy (``video``, or its reference coding ``video-reference``), loaded once."""
    if name not in _POLICIES:
        _POLICIES[name] = resolve_policy(name, device="cpu")
    return _POLICIES[name]


def _product_analysis(picture: Any, precision: str) -> Any:
    """The task net's objects on a picture exactly as ``semrl encode --net-precision precision`` finds them."""
    import torch

    from semrl.pipeline import EncodeSettings, frame_regions, task_net

    settings = EncodeSettings(net_precision=precision)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))  # as semrl.pipeline._leave_cores_to_x265
    try:
        return frame_regions(task_net("detection", settings), picture.to_rgb(), settings)
    finally:
        torch.set_num_threads(threads)


def _decide(inputs: PolicyInput, policy: str) -> NDArray[np.int32]:
    """The policy's offsets for the frame, given the latest analysis kept in the clip's state."""
    found = inputs.state.get(_STATE)
    fed = dataclasses.replace(
        inputs,
        region=None if found is None else found.region,
        boxes=np.zeros((0, 4), np.float32) if found is None else found.boxes,
        cls=np.zeros(0, np.int64) if found is None else found.cls,
        conf=np.zeros(0, np.float32) if found is None else found.conf,
    )
    return policy_offsets(_video_policy(policy), fed)


@dataclass(frozen=True)
class AsEncoded:
    """The shipped video policy fed ``semrl encode``'s analysis, every ``interval`` frames.

    ``precision`` is ``semrl encode``'s ``--net-precision`` (default ``fp32``, as its default). ``phase`` moves the
    analysed frames: the first frame, then ``phase``, ``phase + interval``, ... (``semrl encode``: 0). ``policy``
    is ``semrl encode --policy``: ``video``, ``video-reference`` (its default on a clip) or ``roi`` (D=8).
    """

    interval: int
    precision: str = "fp32"
    phase: int = 0
    policy: str = "video"
    needs_regions = False  # it runs semrl encode's analysis itself
    needs_rgb = False
    frame_level = True

    @property
    def offset_block(self) -> int:
        """The video policy's offset grid."""
        return int(_video_policy(self.policy).offset_block)

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        phase = f":phase={self.phase}" if self.phase else ""
        return f"as-encoded:interval={self.interval}{phase}:{self.precision}:{_video_policy(self.policy).fingerprint}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The video policy's offsets for the frame, from the latest analysis semrl encode would have."""
        if inputs.picture is None:
            raise RuntimeError(f"{type(self).__name__} analyses the coded picture and needs it")
        if self._due(inputs):
            inputs.state[_STATE] = _product_analysis(inputs.picture, self.precision)
        return _decide(inputs, self.policy)

    def _due(self, inputs: PolicyInput) -> bool:
        """Whether the task net reads this frame."""
        return inputs.frame_index == 0 or inputs.frame_index % self.interval == self.phase % self.interval


@dataclass(frozen=True)
class ChangeTriggered(AsEncoded):
    """:class:`AsEncoded`, analysing again as soon as the picture has changed enough since the last analysed frame.

    The analysis runs at the clip's first frame, then when ``interval`` frames have passed since the last one, or
    earlier when the mean absolute luma change between the frame and the last analysed frame reaches ``threshold``
    (0-255): on a static camera (1.2-1.7 a frame, ``motion.txt``) it stays every ``interval``-th frame; on a
    picture that changes fast (the aerial clip, 12 a frame) the net reads nearly every frame.
    """

    threshold: float = 8.0

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return (
            f"change-triggered:interval={self.interval}:t={self.threshold:g}:{self.precision}:"
            f"{_video_policy(self.policy).fingerprint}"
        )

    def _due(self, inputs: PolicyInput) -> bool:
        """Whether the net reads this frame: the first, ``interval`` after the last read, or a changed one."""
        assert inputs.picture is not None
        luma = inputs.picture.y.astype(np.int16)
        last = inputs.state.get(_STATE + ".last")
        due = (
            last is None
            or inputs.frame_index == 0
            or inputs.frame_index - last[0] >= self.interval
            or float(np.abs(luma - last[1]).mean()) >= self.threshold
        )
        if due:
            inputs.state[_STATE + ".last"] = (inputs.frame_index, luma)
        return due


as_encoded10 = AsEncoded(10)
as_encoded20 = AsEncoded(20)
as_encoded8 = AsEncoded(8)  # at every decision of the video policy (it decides every 8th frame)
as_encoded5 = AsEncoded(5)
change8 = ChangeTriggered(10, threshold=8.0)
as_encoded10_fp32 = AsEncoded(10, precision="fp32")  # as_encoded10, named for the net-precision round
as_encoded10_bf16 = AsEncoded(10, precision="bf16")
as_encoded10_phase1 = AsEncoded(10, phase=1)  # the same interval on other frames: what chance moves
as_encoded10_phase5 = AsEncoded(10, phase=5)
as_encoded10_reference = AsEncoded(10, policy="video-reference")  # semrl encode --policy video-reference
as_encoded10_roi8 = AsEncoded(10, policy="roi")  # semrl encode --policy roi (--roi-delta 8, its default)

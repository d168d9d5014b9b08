r"""Fixed frame-level QP schedules for low-delay P video: what a temporal QP cascade alone buys.

Coding every frame of a low-delay P clip at one QP (A1) spends as much on a frame nothing
references for long as on one every later frame predicts from. Video codecs' reference
configurations instead code a GOP of 4 as a cascade: HEVC's HM low-delay P configuration gives the
frames of each group QP offsets 3, 2, 3 and 1 over the intra QP, so the frame every 4th picture
leans on is the finest. These policies apply such schedules to the whole picture, with no semantic
input, to measure how much of the saving on the detection metric is plain temporal allocation that
a video policy should build on (``frame_level``: the benchmark calls them on every frame in
order). Offsets are relative to the base QP; the IDR frame (index 0) stays at the base::

    S=benchmarks/video_schedules.py
    python benchmarks/bdrate.py --task video --methods uniform,x265-aq,roi,policy --bootstrap 200 \
        --policy cascade3=$S:cascade3 --policy hm_ldp=$S:hm_ldp --output benchmarks/results/video-schedules

``cascade3``: frames 4k at the base, the others +3. ``hm_ldp``: HM's pattern relative to its
finest frame: frames 4k at the base, 4k+1 and 4k+3 at +2, 4k+2 at +1. Positions count from each
IDR frame.

For random access (``--gop ra``), ``ra_layers`` codes by x265's B-frame layers instead: P anchors at
the base, the referenced B-frame +1, the other B-frames +2 (x265's own B-frame offsets in CRF,
which constant QP with per-block offsets turns off; the video policy's reference under random
access, :data:`envs.video.LAYER_OFFSETS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from envs.video import cascade_offset
from semrl.policy import PolicyInput


@dataclass(frozen=True)
class _WholeFrame:
    """A QP offset per frame from a fixed rule, the same on every CTU, with no semantic input.

    Attributes:
        offsets: The rule's offsets (see each subclass).
    """

    offsets: tuple[int, ...]
    kind: ClassVar[str]
    frame_level = True
    needs_regions = False
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the schedule."""
        return f"{self.kind}:" + ",".join(str(o) for o in self.offsets)

    def offset(self, inputs: PolicyInput) -> int:
        """The frame's offset."""
        raise NotImplementedError

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The frame's offset on every CTU."""
        return np.full(inputs.ctu_shape, self.offset(inputs), np.int32)


@dataclass(frozen=True)
class Cascade(_WholeFrame):
    """A QP offset per position in a repeating group of frames (the video MDP's reference cascade).

    Attributes:
        offsets: Offset of the frames at positions 0, 1, ... of each group; position 0 is the
            group's anchor frame (and the IDR frame).
    """

    kind: ClassVar[str] = "cascade"

    def offset(self, inputs: PolicyInput) -> int:
        """The offset of the frame's position in its group, counted from its IDR frame."""
        return cascade_offset(self.offsets, inputs.gop.position(inputs.frame_index))


cascade3 = Cascade((0, 3, 3, 3))
hm_ldp = Cascade((0, 2, 1, 2))


@dataclass(frozen=True)
class Layers(_WholeFrame):
    """A QP offset per temporal layer of a random-access GOP.

    Attributes:
        offsets: Offsets of the P anchors (and IDR frames), the referenced B-frames and the other
            B-frames (:meth:`semrl.codec.GopLayout.layer`); under low delay every frame is an
            anchor.
    """

    kind: ClassVar[str] = "layers"

    def offset(self, inputs: PolicyInput) -> int:
        """The offset of the frame's layer."""
        return self.offsets[inputs.gop.layer(inputs.frame_index)]


ra_layers = Layers((0, 1, 2))

r"""Fixed frame-level QP schedules for low-delay P video: what a temporal QP cascade alone buys.

Coding every frame of a low-delay P clip at one QP (A1) spends as much on a frame nothing
references for long as on one every later frame predicts from. Video codecs' reference
configurations instead code a GOP of 4 as a cascade: HEVC's HM low-delay P configuration gives the
frames of each group QP offsets 3, 2, 3 and 1 over the intra QP, so the frame every 4th picture
leans on is the finest. These policies apply such schedules to the whole picture, with no semantic
input, to measure how much of the saving on the detection metric is plain temporal allocation that
a video policy should build on (``frame_level``: the benchmark calls them on every frame in
order). Offsets are relative to the base QP; the IDR frame (index 0) stays at the base unless
said otherwise::

    S=benchmarks/video_schedules.py
    python benchmarks/bdrate.py --task video --methods uniform,x265-aq,roi,policy --bootstrap 200 \
        --policy cascade3=$S:cascade3 --policy hm_ldp=$S:hm_ldp --output benchmarks/results/video-schedules

``cascade3``: frames 4k at the base, the others +3. ``hm_ldp``: HM's pattern relative to its
finest frame: frames 4k at the base, 4k+1 and 4k+3 at +2, 4k+2 at +1. Positions count from each
IDR frame.

``cascade8`` goes two levels deeper, over groups of 8 (frames 8k at the base, 8k+4 at +2, 8k+2
and 8k+6 at +3, the odd frames at +4) and codes the IDR frame 3 QP finer (x265's own ``ipratio``
1.4 is about -2.9 QP), since every frame of its period leans on it. ``cascade8_roi4`` adds ROI's
block offsets to it (:class:`RoiCascade`, D = 4: the blocks touching the net's objects 4 QP finer
than the frame, the others 4 QP coarser). Both were chosen on the four training clips of the
video policy (people, both bgslibrary clips, aerial) among the IDR offsets -6, -3, 0 and +3, the
HM and the 8-frame cascades, and ROI D = 4, 8, 12 on top, by BD-rate against A1 on the task
metric and on the object-weighted one, then measured once on the three held-out clips::

    python benchmarks/bdrate.py --task video --data <PETS, traffic, TUD-Campus> --roi-deltas 4,8 \
        --bootstrap 200 --policy semrl=video --policy hm_ldp=$S:hm_ldp --policy cascade8=$S:cascade8 \
        --policy cascade8_roi4=$S:cascade8_roi4 --output benchmarks/results/video-roi-cascade

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
from semrl.policy import PolicyInput, RoiPolicy
from semrl.policy.roi import roi_blocks
from semrl.semantics.regions import box_region


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
            group's anchor frame.
        idr: Offset of the IDR frame, which every later frame of its period leans on.
    """

    idr: int = 0
    kind: ClassVar[str] = "cascade"

    @property
    def fingerprint(self) -> str:
        """Identifies the schedule (a cascade with its IDR frame at the base keeps its older name)."""
        return super().fingerprint + (f":idr={self.idr}" if self.idr else "")

    def offset(self, inputs: PolicyInput) -> int:
        """The offset of the frame's position in its group, counted from its IDR frame (:func:`cascade_offset`)."""
        gop = inputs.gop
        return cascade_offset(self.offsets, gop.position(inputs.frame_index), self.idr, intra_only=gop.keyint == 1)


cascade3 = Cascade((0, 3, 3, 3))
hm_ldp = Cascade((0, 2, 1, 2))
cascade8 = Cascade((0, 4, 3, 4, 2, 4, 3, 4), idr=-3)


@dataclass(frozen=True)
class RoiCascade:
    """ROI offsets on a frame cascade: each block gets the frame's offset plus ROI's (-D on objects, +D elsewhere).

    Attributes:
        cascade: The frame-level schedule.
        roi: The block-level recipe (A3's, :class:`semrl.policy.RoiPolicy`).
    """

    cascade: Cascade
    roi: RoiPolicy
    frame_level = True
    needs_regions = True
    needs_rgb = False

    @property
    def fingerprint(self) -> str:
        """Identifies the schedule."""
        return f"{self.cascade.fingerprint}+{self.roi.fingerprint}"

    @property
    def offset_block(self) -> int:
        """The side of the blocks the offsets vary over (ROI's)."""
        return self.roi.offset_block

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """ROI's offsets plus the frame's cascade offset."""
        return (self.roi(inputs) + self.cascade.offset(inputs)).astype(np.int32)


cascade8_roi4 = RoiCascade(cascade8, RoiPolicy(4))


def split_object_roi(
    inputs: PolicyInput, fine: NDArray[np.bool_], other: int, delta: int, dilation: int
) -> NDArray[np.int32]:
    """ROI's CTU offsets with the objects split in two (before the frame's offset): the scratch candidates' coding.

    The CTUs the ``fine`` objects' boxes (grown by ``dilation`` pixels) touch get ``-delta`` as in
    ROI, the other CTUs the region touches ``other``, the rest ``+delta``.

    Args:
        inputs: The frame's input (its region and boxes).
        fine: (N,) which of ``inputs.boxes`` keep ROI's ``-delta``.
        other: Offset of the CTUs only the other objects touch.
        delta: ROI's offset magnitude.
        dilation: Pixels the region and the boxes are grown by.
    """
    shape = inputs.frame.shape[:2] if inputs.region is None else inputs.region.shape
    touched = roi_blocks(inputs.region, inputs.ctu_shape, dilation)
    kept = roi_blocks(box_region(inputs.boxes.reshape(-1, 4)[fine], shape), inputs.ctu_shape, dilation)
    return np.where(kept, -delta, np.where(touched, other, delta)).astype(np.int32)


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

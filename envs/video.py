"""The VideoQP environment: code a clip frame by frame, deciding every few frames how much its objects get.

Registered as ``semrl/VideoQP-v0``.

## The MDP, and why

*A step is one decision*, which holds for the next ``decision_interval`` frames (8 by default,
one group of the reference cascade below), each coded low-delay P by the real patched x265
in-process (each call returns the frame just submitted, :class:`envs.codecs.X265ClipCodec`),
exactly as the video benchmark codes its low-delay P anchor, so the agent meets the references it
will meet there.

*The action* is a pair: the frame's QP offset ``f`` relative to the operating point's base QP, and
an object boost ``s``, both over the reference coding (below): every block (a 64x64 CTU by default,
or a 16x16 quantisation group) that touches the task net's objects on the original frame (grown by
``dilation`` pixels) is coded at ``base + c + f - D - s``, every other block at ``base + c + f +
D``, where ``c`` is the reference's frame offset and ``D`` its ROI delta. The frame-level part is
where the measured gain on video lies: on the random-access benchmark x265's own frame-level
allocation (B-frame QP offsets and cuTree's propagation of reference importance) saves about 25 %
against constant QP while a per-block recipe on top of constant QP saves about 6 %
(``benchmarks/results/video-ra``); a low-delay P stream has no B-frames, so the agent is given the
frame QP and learns when a frame is worth spending on (it is referenced by the frames after it) and
when not. The block part is the region-of-interest decision. It is made per CTU by default: on the
held-out clips ROI at 16x16 cost 26 % more bits than constant QP where ROI per CTU saved 7 % (the
finer grid's delta-QP signalling, and the detector reads context around a person that a tight 16x16
map codes coarsely). Joining both in one ``Discrete(len(frame_offsets) * len(object_boosts))``
action keeps the reference coding (``f = s = 0``) one action and lets DQN or PPO learn it; a
negative boost (down to ``-D``) gives the objects back some of the reference's ROI where the
detector does not need it. The frame offset moves by at most ``max_step`` (3) QP steps from one
frame to the next (the action is clamped, in training and at inference alike), so the decoded
quality does not flicker; the objects' blocks follow the objects, and the background's QP stays put
where the scene does.

*A decision holds for 8 frames* (``decision_interval``): the agent decides at every 8th frame
from the IDR frame and the frames between keep its decision, so the objects' QP does not flicker.
Trained with the same command, frames coded and clips, a policy deciding every frame changed the
boost on 27-47 % of the frames (three held-out clips, 150 frames each, base QP 22-42,
``benchmarks/video_steadiness.py``); holding each decision for a group, on 3-7 %. It also did
better on the held-out clips: -10.5 % BD-rate against constant QP on the object-weighted mAP50-95
(deciding every frame: -4.9 %; the reference coding: -5.7 %) and -23.1 % on the class mean
(-8.2 %; -18.5 %), though not on the real person labels (-0.9 %, where deciding every frame gave
-11.4 % and the reference -8.2 %) nor over all seven clips on ``objects`` (-15.2 % against -16.1 %
and the reference's -19.0 %) (``benchmarks/results/video-policy-decision-interval``). A step's
reward, the mean over its frames, is less noisy than one frame's, and at inference the policy's
net runs once per group.

*By default the frame offset is fixed at 0* (``frame_offsets`` ``(0,)``), and the agent decides the
objects' boost (-4, 0, +4, +8) over the reference coding: trained with the same command, steps and
clips with frame offsets -3..+9 as well (deciding every frame), the policy did worse than the
reference alone on the three held-out clips (+3.3 % BD-rate against constant QP on the
object-weighted mAP50-95, where the reference saves 5.7 %): it moved along the rate-accuracy curve
(coarser at the fine base QPs, finer at the coarse ones) and broke the cascade's temporal pattern
(``benchmarks/results/video-policy-roi-reference``). The frame-level saving is the reference's.

*The state* carries what a frame-level decision needs from the past, all of it computed from the
original frames, the task net's objects on them and the decisions so far, so that a policy
rebuilds it at inference without decoding anything (:class:`VideoObserver`,
:data:`VIDEO_OBS_NAMES`): the temporal change of the frame against the previous one, over the
whole frame and over its objects (how much of the reference is still useful); the objects seen
(coverage, count, how many appeared or vanished since the previous frame); the frame's texture;
and the decisions so far (the last frame offset and boost, the mean frame offset of the last four
frames, frames since the last frame coded at or below the base). The frame's place in the cascade
is left out: a policy given it (trained with the same command and steps) saved less on the
held-out clips, pooled, under both GOPs (``benchmarks/results/video-position-ablation``). Bits
actually spent are left out on purpose: the benchmark and ``semrl encode`` call a policy before
they code a frame, and the rate is the operating point's business, set by the base QP.

*The reference coding* is the best fixed schedule found on the training clips: a temporal QP
cascade over groups of 8 frames (``cascade`` (0, 4, 3, 4, 2, 4, 3, 4): every 8th frame from an IDR
frame at the base QP, the 4th between them 2 QP coarser, the odd ones 4), the IDR frame 3 QP finer
(``idr``, since every frame of its period leans on it), and ROI with D = 4 on top (``roi``: the
blocks touching the objects 4 QP finer than the frame, the others 4 coarser). This is
``cascade8_roi4`` of ``benchmarks/video_schedules.py``, chosen on the four training clips among
IDR offsets, the HM and 8-frame cascades and ROI deltas, then measured on the three held-out
clips: -5.7 % BD-rate against constant QP on the object-weighted mAP50-95 (interval over clips
[-6.4, -1.9] %) and -18.5 % on the class mean, where the policy trained against HM's cascade
alone saved -7.1 % with an interval crossing zero and lost to constant QP on 3 of the 7 clips
(``benchmarks/results/video-roi-cascade``): the frames the next ones lean on, and the blocks the
detector reads, are worth more, and a fixed pattern captures much of that without learning it from
a noisy per-frame signal. The agent's decisions are added to the reference's, so it learns where
to depart from it (scene change, objects appearing, a static scene, objects the detector finds
anyway) rather than relearning it. ``cascade`` (0, 2, 1, 2) with ``idr`` and ``roi`` 0 is HM's
low-delay P pattern, the previous policy's reference. Episodes are low-delay P; under random
access, where x265's B-frames decide which frames are referenced, a policy applies its decisions
over the B-frame layers instead (:data:`LAYER_OFFSETS`, the anchors at the base, the IDR frame at
``idr``), with the same ROI.

*The reward* prices what the frame costs against what it keeps, relative to the reference coding of
the same frames at the same base QP (precomputed per training segment, :func:`build_segments`):
``r_t = -clip(((D_t - D_t^ref) / lambda_b + w (R_t - R_t^ref)) / Rbar_b, -c, c)``, where ``R`` is
the frame's exact bits, ``D`` its task loss (:func:`frame_loss`: each object the net finds on the
original frame, graded after coding by the share of mAP50-95's IoU thresholds its best detection
passes and its confidence, plus the false detections coding creates; the benchmark scores the same
detector against the same pseudo ground truth), ``lambda_b`` the slope of the reference coding at
base ``b`` over the training segments, ``w`` the rate weight and ``Rbar_b`` its mean bits per frame;
a step's reward is the mean of its frames' ``r_t``. The reference action (no offset over the
cascade, no boost) scores exactly 0 at every step (x265 is deterministic), so a positive return is
fidelity per bit bought over it. A frame's influence on the frames that reference it is in the
return: ``D`` and ``R`` of every later frame are measured on the agent's own stream, so a cheap
reference shows up as costlier or worse frames after it, and the discount (default 0.95 per step:
with 8-frame steps it spans the 32-frame episode; low-delay P references the last 3 frames and their
own references in turn) credits the decision with them.

## Episodes

An episode is one segment of ``episode_frames`` consecutive frames of a training clip at one
base QP, drawn from ``base_qps`` (the benchmark's points); its first frame is an IDR picture.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from envs.codecs import ClipCodec
from envs.reward import object_terms
from semrl.codec import BLOCK_SIZE, CTU_SIZE, QP_MAX, QP_MIN, GopLayout, ctu_grid, rgb_luma
from semrl.errors import InvalidInputError
from semrl.files import atomic_write
from semrl.policy.roi import roi_blocks
from semrl.semantics.maps import TaskOutput
from semrl.semantics.regions import REGION_CONF, box_region

VIDEO_TABLE_VERSION = 1
"""Bumped whenever what a segment table holds changes."""

DECODED_CONF = 0.1
"""Detections on a decoded frame from this confidence take part in its loss (lower ones are noise)."""

LAYER_OFFSETS = (0, 1, 2)
"""Under random access, the reference coding's QP offsets of the temporal layers (P anchor,
referenced B-frame, other B-frames): x265's own B-frame offsets in CRF (``pbratio`` 1.3, about
+2.3 QP, the referenced B-frame halfway), which constant QP with per-block offsets turns off."""

MAX_CASCADE = 12
"""Largest reference cascade offset accepted (QP steps)."""

CHANGE_SCALE = 16.0
"""Mean absolute luma difference (0..255) that counts as a full change."""

VIDEO_OBS_NAMES = (
    "base_qp", "first_frame", "change", "change_objects", "coverage", "objects", "appeared", "vanished",
    "texture", "last_offset", "last_boost", "recent_offset", "since_refresh",
)  # fmt: skip
"""What each element of a video observation means (see :class:`VideoObserver`)."""

VIDEO_OBS_DIM = len(VIDEO_OBS_NAMES)


@dataclass(frozen=True)
class VideoSettings:
    """The settings that define the video MDP (saved beside every video policy; must match to load it).

    Attributes:
        frame_offsets: Frame QP offsets over the reference coding's (default ``(0,)``: the
            reference's frame QPs, the agent decides the boost; module docstring).
        object_boosts: How many QP steps finer than the reference's the blocks touching objects
            are coded.
        base_qps: Base QPs episodes are drawn from.
        episode_frames: Frames per episode.
        dilation: Pixels the objects' region is grown by before the blocks touching it are found.
        rate_weight: Multiplier of the rate term (1: uniform coding's slope).
        false_weight: Weight of false detections in the frame's task loss.
        reward_clip: Bound of a step's reward.
        gamma: Discount of the agent (a frame's credit for the frames that reference it).
        max_step: The frame offset moves by at most this many QP steps from one frame to the
            next (the action's offset is clamped to it), so quality does not flicker; None: free.
        decision_interval: Frames one decision covers: the agent decides at every
            ``decision_interval``-th frame from the IDR frame, and the frames between keep its
            decision (one environment step codes them all; its reward is their mean), so the
            objects' QP does not flicker from frame to frame (1 for policies saved before this
            setting existed: a decision every frame).
        block: The side of the blocks the boost applies to: 64 (CTUs, one QP each, as ROI's
            best anchor) or 16 (16x16 quantisation groups).
        cascade: The reference coding's frame QP offsets by position in each group of
            ``len(cascade)`` frames (:meth:`cascade_offset`); the agent's frame offset is added to
            them, and its reward is relative to the reference coding. The default is the 8-frame
            cascade of ``benchmarks/video_schedules.py`` (``cascade8``); ``(0, 2, 1, 2)`` is
            HEVC's HM low-delay P pattern, and ``(0,)`` uniform coding, which policies saved
            before this setting existed were trained against.
        idr: The reference coding's QP offset of each IDR frame, which every later frame of its
            period leans on (0 for policies saved before this setting existed).
        roi: The reference coding's ROI delta D: the blocks touching the objects ``D`` QP finer
            than the frame, the others ``D`` coarser (A3's recipe on top of the cascade; 0: none,
            as for policies saved before this setting existed). The agent's boost moves the
            objects' blocks further (negative boosts, down to ``-roi``, give some of it back).
    """

    frame_offsets: tuple[int, ...] = (0,)
    object_boosts: tuple[int, ...] = (-4, 0, 4, 8)
    base_qps: tuple[int, ...] = (22, 27, 32, 37, 42, 47, 51)
    episode_frames: int = 32
    dilation: int = 16
    rate_weight: float = 1.0
    false_weight: float = 0.5
    reward_clip: float = 10.0
    gamma: float = 0.95
    max_step: int | None = 3
    decision_interval: int = 8
    block: int = CTU_SIZE
    cascade: tuple[int, ...] = (0, 4, 3, 4, 2, 4, 3, 4)
    idr: int = -3
    roi: int = 4

    def __post_init__(self) -> None:
        if not self.frame_offsets or not self.object_boosts or not self.base_qps:
            raise InvalidInputError("video settings need frame offsets, object boosts and base QPs")
        if 0 not in self.frame_offsets or 0 not in self.object_boosts:
            raise InvalidInputError("frame offset 0 and boost 0 (the reference coding) must be actions")
        if not 0 <= self.roi <= MAX_CASCADE or abs(self.idr) > MAX_CASCADE:
            raise InvalidInputError(f"roi must be in 0..{MAX_CASCADE} and idr within +-{MAX_CASCADE}, "
                                    f"got roi {self.roi}, idr {self.idr}")  # fmt: skip
        if min(self.object_boosts) < -self.roi or not all(QP_MIN <= b <= QP_MAX for b in self.base_qps):
            raise InvalidInputError(
                f"boosts must be >= -roi ({-self.roi}: objects never coarser than their frame) and base QPs "
                f"in {QP_MIN}..{QP_MAX}, got boosts {self.object_boosts}, base QPs {self.base_qps}"
            )
        if self.episode_frames < 2 or self.rate_weight <= 0 or not 0 <= self.gamma <= 1:
            raise InvalidInputError("episode_frames >= 2, rate_weight > 0 and gamma in 0..1 are required")
        if self.block not in (BLOCK_SIZE, CTU_SIZE):
            raise InvalidInputError(f"block must be {BLOCK_SIZE} or {CTU_SIZE}, got {self.block}")
        if self.max_step is not None and self.max_step < 1:
            raise InvalidInputError(f"max_step must be at least 1 (or None), got {self.max_step}")
        if self.decision_interval < 1:
            raise InvalidInputError(f"decision_interval must be at least 1 frame, got {self.decision_interval}")
        if not self.cascade or self.cascade[0] != 0 or any(abs(o) > MAX_CASCADE for o in self.cascade):
            raise InvalidInputError(
                f"cascade must start with 0 (its anchor frame at the base QP) and stay within "
                f"+-{MAX_CASCADE}, got {self.cascade}"
            )

    def cascade_offset(self, frame_index: int, gop: GopLayout | None = None) -> int:
        """The reference coding's QP offset of a clip's frame.

        An IDR frame: ``idr`` (0 under all-intra, where no frame leans on it). Other frames, low delay
        (``gop`` None, as in training, or without B-frames): :func:`cascade_offset` of ``cascade`` at the
        frame's position since its IDR frame. Random access: by the frame's temporal layer
        (:data:`LAYER_OFFSETS`), since x265's B-frames set which frames are referenced; uniform coding
        (``cascade`` ``(0,)``) stays uniform.
        """
        position = frame_index if gop is None else gop.position(frame_index)
        if position and gop is not None and gop.bframes and self.cascade != (0,):
            return LAYER_OFFSETS[gop.layer(frame_index)]
        return cascade_offset(self.cascade, position, self.idr, intra_only=gop is not None and gop.keyint == 1)

    def decides_at(self, position: int) -> bool:
        """Whether the frame ``position`` frames after its IDR frame takes a new decision (the others keep theirs)."""
        return position % self.decision_interval == 0

    def decisions(self, frames: int) -> int:
        """How many decisions (environment steps) ``frames`` frames from an IDR frame take."""
        return -(-frames // self.decision_interval)

    @property
    def n_actions(self) -> int:
        """Size of the joint action space."""
        return len(self.frame_offsets) * len(self.object_boosts)

    @property
    def reference_action(self) -> int:
        """The action that codes the frame as the reference coding does (no offset over the cascade, no boost)."""
        return self.action_of(0, 0)

    def action_of(self, frame_offset: int, boost: int) -> int:
        """The action index of a (frame offset, boost) pair.

        Raises:
            InvalidInputError: A frame offset or boost that is not one of the settings' actions.
        """
        if frame_offset not in self.frame_offsets or boost not in self.object_boosts:
            raise InvalidInputError(
                f"({frame_offset}, {boost}) is not an action: frame offsets {self.frame_offsets}, "
                f"boosts {self.object_boosts}"
            )
        return self.frame_offsets.index(frame_offset) * len(self.object_boosts) + self.object_boosts.index(boost)

    def decode(self, action: int) -> tuple[int, int]:
        """(frame offset, object boost) of an action."""
        if not 0 <= int(action) < self.n_actions:
            raise InvalidInputError(f"action {action} outside 0..{self.n_actions - 1}")
        f, s = divmod(int(action), len(self.object_boosts))
        return self.frame_offsets[f], self.object_boosts[s]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> VideoSettings:
        """Inverse of :meth:`to_dict`."""
        tuples = ("frame_offsets", "object_boosts", "base_qps", "cascade")
        values: dict[str, Any] = {k: tuple(int(x) for x in v) if k in tuples else v for k, v in d.items()}
        # Saved before these settings existed: trained against uniform coding, no IDR offset, no ROI.
        values.setdefault("cascade", (0,))
        values.setdefault("idr", 0)
        values.setdefault("roi", 0)
        values.setdefault("decision_interval", 1)
        return VideoSettings(**values)


def cascade_offset(cascade: Sequence[int], position: int, idr: int = 0, *, intra_only: bool = False) -> int:
    """A QP cascade's offset for a frame ``position`` frames after an IDR frame.

    The IDR frame gets ``idr``, except in an all-intra stream (``intra_only``: every frame is an
    IDR frame and none leans on another), where it gets 0; every other frame its group place's.
    """
    if position == 0:
        return 0 if intra_only else idr
    return int(cascade[position % len(cascade)])


def frame_offsets_map(
    region: NDArray[np.bool_] | None,
    shape: tuple[int, int],
    frame_offset: int,
    boost: int,
    base_qp: int,
    dilation: int,
    block: int = CTU_SIZE,
    *,
    roi: int = 0,
    touched: NDArray[np.bool_] | None = None,
    clip: bool = True,
) -> NDArray[np.int32]:
    """Offsets on the ``block`` grid of a frame: ``f - roi - s`` on blocks touching the region, others ``f + roi``.

    Clipped so that every block's QP (base + offset) stays in 0..51, unless ``clip`` is False (a
    policy's answer: :func:`semrl.policy.apply_offsets` clips it). ``roi``: the reference coding's
    ROI delta (:attr:`VideoSettings.roi`). ``touched``: the blocks touching the region grown by
    ``dilation``, when already computed (:attr:`VideoObserver.touched`).
    """
    grid = ctu_grid(shape[1], shape[0], block)
    if not boost and not roi:
        inside = np.zeros(grid, bool)
    elif touched is not None and touched.shape == grid:
        inside = touched
    else:
        inside = roi_blocks(region, grid, dilation, block)
    offsets = np.where(inside, frame_offset - roi - boost, frame_offset + roi)
    if not clip:
        return offsets.astype(np.int32)
    qp = np.clip(base_qp + offsets, QP_MIN, QP_MAX)
    result: NDArray[np.int32] = (qp - base_qp).astype(np.int32)
    return result


def frame_loss(reference: TaskOutput, decoded: TaskOutput, shape: tuple[int, int], false_weight: float) -> float:
    """A frame's task loss after coding: lost or loosened objects plus weighted false detections (0: as uncoded).

    See :func:`loss_terms`; the loss is ``missing + false_weight * false``.
    """
    missing, false = loss_terms(reference, decoded, shape)
    return missing + false_weight * false


def loss_terms(reference: TaskOutput, decoded: TaskOutput, shape: tuple[int, int]) -> tuple[float, float]:
    """(missing, false) shares of one coded frame, from :func:`envs.reward.object_terms` summed over the frame.

    ``reference`` are the net's objects on the original (the pseudo ground truth, confidence >=
    :data:`semrl.semantics.regions.REGION_CONF`), ``decoded`` its detections on the coded frame.
    Missing: the mean over the reference objects of one minus their grade (the share of
    mAP50-95's IoU thresholds the best same-class detection from :data:`DECODED_CONF` passes,
    times its relative confidence). False: the confidence of detections from ``REGION_CONF``
    that match no reference object, over the reference's object count (lower ones barely move
    AP, and are mostly the net's jitter).
    """
    canvas = np.zeros(shape, np.float32)
    dobj, _ = object_terms(reference, objects_above(decoded, DECODED_CONF), canvas)
    _, fobj = object_terms(reference, objects_above(decoded, REGION_CONF), canvas)
    return float(dobj.sum()), float(fobj.sum())


class Detector(Protocol):
    """The task net as the video env uses it: detections (boxes, confidences, classes) of RGB frames."""

    @property
    def fingerprint(self) -> str:
        """Identifies the net and its settings; part of segment table cache keys."""
        ...

    def __call__(self, frames: Sequence[NDArray[np.uint8]]) -> list[TaskOutput]:
        """Detections of each (H, W, 3) uint8 RGB frame, all confidences (the benchmark's val settings)."""
        ...


class YoloDetector:
    """A real Ultralytics YOLO detector with the video benchmark's settings (val's, 640 input).

    Args:
        weights: Weights name or path (default the benchmark's ``yolov8n.pt``).
        device: Torch device (None: CUDA when present).
    """

    def __init__(self, weights: str = "yolov8n.pt", device: str | None = None) -> None:
        from semrl.semantics.yolo import InferenceSettings, YoloNet

        self.net = YoloNet(weights, device=device)
        if self.net.task != "detection":
            raise InvalidInputError(f"{weights} is a {self.net.task} net; the video env needs a detector")
        self.settings = InferenceSettings()

    @property
    def fingerprint(self) -> str:
        """Weights and settings."""
        return f"{self.net.fingerprint}:{self.settings}"

    def __call__(self, frames: Sequence[NDArray[np.uint8]]) -> list[TaskOutput]:
        """Detections of each frame."""
        found = self.net.detect(list(frames), self.settings, color="rgb")
        return [TaskOutput.objects(d.boxes, d.conf, d.cls) for d in found]


def objects_above(output: TaskOutput, conf: float = REGION_CONF) -> TaskOutput:
    """The objects of an output from a confidence (the pseudo ground truth and the ROI's objects)."""
    keep = output.conf >= conf
    return TaskOutput.objects(output.boxes[keep], output.conf[keep], output.cls[keep])


class VideoObserver:
    """Builds a clip's observations frame by frame from originals, objects and the decisions so far.

    Call :meth:`observe` with a frame and its objects, then :meth:`record` with the decision taken
    for it; the same object serves training (:class:`VideoQPEnv`) and inference (the policy keeps
    one per clip), so both see the same state.

    Args:
        settings: The MDP settings (the offset scale).
    """

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        self._scale = float(max(abs(o) for o in (*settings.frame_offsets, *settings.object_boosts))) or 1.0
        self._previous: NDArray[np.float32] | None = None
        self._previous_boxes = np.zeros((0, 4), np.float32)
        self._current: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        self._offsets: list[int] = []
        self._boosts: list[int] = []
        self.touched: NDArray[np.bool_] | None = None
        """The blocks (``settings.block``) touching the last observed frame's grown objects."""
        self._inside: NDArray[np.bool_] | None = None  # the region they were found for
        self.action: int | None = None
        """The decision in force (an action index), held until the next is due (:meth:`VideoSettings.decides_at`)."""

    def observe(self, frame: NDArray[np.uint8] | NDArray[np.float32], region: NDArray[np.bool_] | None,
                boxes: NDArray[np.float32], base_qp: int) -> NDArray[np.float32]:  # fmt: skip
        """The observation of the next frame (see :data:`VIDEO_OBS_NAMES`), in -1..1.

        Args:
            frame: The original frame, (H, W, 3) uint8 RGB, or its full-range luma, (H, W)
                float32 (:meth:`semrl.codec.Yuv420.luma`: the encoder's picture, no RGB needed).
            region: Pixels of the task net's objects on the original (None: none).
            boxes: Their boxes, (N, 4) xyxy.
            base_qp: The operating point.
        """
        luma, inside, touched = self._take(frame, region, boxes)
        first = self._previous is None or self._previous.shape != luma.shape
        diff = np.zeros_like(luma) if first else np.abs(luma - self._previous)  # type: ignore[operator]
        appeared, vanished = _turnover(boxes, self._previous_boxes)
        since = 0
        for o in reversed(self._offsets):
            if o <= 0:
                break
            since += 1
        s = self._scale
        obs = np.array([
            base_qp / QP_MAX,
            1.0 if first else 0.0,
            min(float(diff.mean()) / CHANGE_SCALE, 1.0),
            min(float(diff[inside].mean()) / CHANGE_SCALE, 1.0) if inside.any() else 0.0,
            float(touched.mean()),
            min(len(boxes) / 10.0, 1.0),
            appeared,
            vanished,
            min(float(luma.std()) / 64.0, 1.0),
            self._offsets[-1] / s if self._offsets else 0.0,
            self._boosts[-1] / s if self._boosts else 0.0,
            float(np.mean(self._offsets[-4:])) / s if self._offsets else 0.0,
            min(since / 8.0, 1.0),
        ], np.float32)  # fmt: skip
        return np.clip(obs, -1.0, 1.0)

    def carry(self, frame: NDArray[np.uint8] | NDArray[np.float32], region: NDArray[np.bool_] | None,
              boxes: NDArray[np.float32]) -> None:  # fmt: skip
        """Take the next frame without observing it (it keeps the decision in force): :meth:`observe`'s state only.

        The later observations are the same as if it had been observed; it costs a fraction of
        :meth:`observe` (the blocks its objects touch, :attr:`touched`, are still found).
        """
        self._take(frame, region, boxes)

    def _take(
        self, frame: NDArray[np.uint8] | NDArray[np.float32], region: NDArray[np.bool_] | None, boxes: NDArray[Any]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_]]:
        """The frame's luma, its objects' pixels and the blocks they touch; it becomes the current frame."""
        luma = rgb_luma(frame)
        h, w = luma.shape
        inside = region if region is not None and region.shape == (h, w) else np.zeros((h, w), bool)
        block = self.settings.block
        if inside is not self._inside or self.touched is None:  # the same region touches the same blocks
            self.touched = roi_blocks(inside, ctu_grid(w, h, block), self.settings.dilation, block)
        self._inside = inside
        touched = self.touched
        self._current = (luma, np.asarray(boxes, np.float32).reshape(-1, 4))
        return luma, inside, touched

    @property
    def boosts(self) -> tuple[int, ...]:
        """The boost taken for each frame recorded so far."""
        return tuple(self._boosts)

    def steady(self, frame_offset: int) -> int:
        """The frame offset actually used: ``frame_offset`` clamped to ``max_step`` from the previous frame's."""
        step = self.settings.max_step
        if step is None or not self._offsets:
            return int(frame_offset)
        last = self._offsets[-1]
        return int(min(max(frame_offset, last - step), last + step))

    def record(self, frame_offset: int, boost: int) -> None:
        """Note the decision taken for the frame last observed."""
        if self._current is None:
            raise InvalidInputError("VideoObserver.record before observe")
        self._previous, self._previous_boxes = self._current
        self._current = None
        self._offsets.append(int(frame_offset))
        self._boosts.append(int(boost))


def _turnover(boxes: NDArray[np.float32], previous: NDArray[np.float32]) -> tuple[float, float]:
    """Shares of the current objects new since the previous frame, and of the previous ones gone (IoU < 0.3)."""
    from semrl.fidelity.detection import box_iou

    if len(boxes) == 0 or len(previous) == 0:
        return (1.0 if len(boxes) else 0.0), (1.0 if len(previous) else 0.0)
    iou = box_iou(np.asarray(boxes, np.float32), previous)
    return float((iou.max(axis=1) < 0.3).mean()), float((iou.max(axis=0) < 0.3).mean())


@dataclass(frozen=True, eq=False)
class Segment:
    """A run of consecutive frames of a training clip, with what the net finds and the reference coding's figures.

    Attributes:
        name: ``<clip>#<first frame>``.
        frames: The original frames, (H, W, 3) uint8 RGB, even size.
        objects: Per frame, the net's objects on the original (confidence >= ``REGION_CONF``).
        reference_bits: Per base QP, the reference coding's bits of each frame (the settings'
            cascade; uniform coding for ``(0,)``).
        reference_terms: Per base QP, (frames, 2) the missing and false shares of each frame
            (:func:`frame_loss` is ``missing + false_weight * false``).
    """

    name: str
    frames: list[NDArray[np.uint8]]
    objects: list[TaskOutput]
    reference_bits: dict[int, NDArray[np.int64]] = field(default_factory=dict)
    reference_terms: dict[int, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return self.frames[0].shape[0], self.frames[0].shape[1]

    @property
    def digest(self) -> str:
        """sha256 of the frames."""
        h = hashlib.sha256()
        for f in self.frames:
            h.update(f.tobytes())
        return h.hexdigest()

    def region(self, i: int) -> NDArray[np.bool_]:
        """The objects' region of frame ``i``."""
        return box_region(self.objects[i].boxes, self.shape)

    def reference_loss(self, base_qp: int, false_weight: float) -> NDArray[np.float64]:
        """The reference coding's task loss of each frame at a base QP."""
        t = self.reference_terms[base_qp]
        loss: NDArray[np.float64] = t[:, 0] + false_weight * t[:, 1]
        return loss


def code_segment(
    segment: Segment, codec: ClipCodec, detector: Detector, base_qp: int, settings: VideoSettings
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Code a segment as the reference coding does (cascade, IDR, ROI) at a base QP: bits, loss terms per frame."""
    h, w = segment.shape
    s = settings
    session = codec.open(w, h, base_qp)
    try:
        bits, recons = [], []
        for i, frame in enumerate(segment.frames):
            offset = s.cascade_offset(i)
            grid = None
            if offset or s.roi:
                grid = frame_offsets_map(segment.region(i), (h, w), offset, 0, base_qp, s.dilation, s.block, roi=s.roi)
            coded = session.code(frame, grid)
            bits.append(coded.bits)
            recons.append(coded.recon)
    finally:
        session.close()
    terms = []
    for i in range(0, len(recons), 8):
        for k, decoded in enumerate(detector(recons[i : i + 8])):
            terms.append(loss_terms(segment.objects[i + k], decoded, segment.shape))
    return np.asarray(bits, np.int64), np.asarray(terms, np.float64).reshape(-1, 2)


def build_segments(
    clips: Sequence[tuple[str, Sequence[NDArray[np.uint8]]]],
    codec: ClipCodec,
    detector: Detector,
    settings: VideoSettings,
    *,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> list[Segment]:
    """Cut clips into segments of ``settings.episode_frames`` frames and measure the reference coding on each.

    Per segment: the detector on the original frames, then each base QP of ``settings`` coded
    with the settings' cascade by ``codec`` and the detector on the reconstructions. Cached in
    ``cache_dir`` by the frames' digest, the codec's and detector's fingerprints and the cascade.

    Args:
        clips: (name, frames) of each clip; frames of one clip share an even size.
        codec: The clip codec.
        detector: The task net.
        settings: The MDP settings (segment length and base QPs).
        cache_dir: Cache folder (default ``<semrl cache>/video_tables``).
        progress: Show a progress bar.

    Raises:
        InvalidInputError: A clip shorter than one segment, or frames of odd or mixed size.
    """
    from tqdm import tqdm

    from semrl.paths import cache_root

    cache = cache_dir or cache_root() / "video_tables"
    n = settings.episode_frames
    pieces = []
    for name, frames in clips:
        if len(frames) < n:
            raise InvalidInputError(f"{name}: {len(frames)} frames, fewer than one episode of {n}")
        shapes = {f.shape for f in frames}
        if len(shapes) != 1 or any(s[0] % 2 or s[1] % 2 or s[2:] != (3,) for s in shapes):
            raise InvalidInputError(f"{name}: frames must share one even (H, W, 3) size, got {sorted(shapes)}")
        pieces += [(f"{name}#{s}", list(frames[s : s + n])) for s in range(0, len(frames) - n + 1, n)]
    segments = []
    for name, frames in tqdm(pieces, desc="video segments", unit="segment", disable=not progress):
        digest = hashlib.sha256(b"".join(f.tobytes() for f in frames)).hexdigest()
        ident = f"{VIDEO_TABLE_VERSION}:{digest}:{codec.fingerprint}:{detector.fingerprint}:{settings.cascade}"
        if settings.idr or settings.roi:  # keys of tables built before these settings existed stay valid
            ident += f":idr={settings.idr}:roi={settings.roi}:dil={settings.dilation}:b={settings.block}"
        key = hashlib.sha256(ident.encode()).hexdigest()
        path = cache / f"{key}.npz"
        segment = _load_segment(path, name, frames, settings.base_qps)
        if segment is None:
            found = []
            for i in range(0, n, 8):
                found += detector(frames[i : i + 8])
            segment = Segment(name, frames, [objects_above(o) for o in found])
            for q in settings.base_qps:
                bits, terms = code_segment(segment, codec, detector, q, settings)
                segment.reference_bits[q], segment.reference_terms[q] = bits, terms
            _save_segment(path, segment)
        segments.append(segment)
    return segments


def _save_segment(path: Path, segment: Segment) -> None:
    import io

    counts = np.array([len(o.boxes) for o in segment.objects], np.int64)
    arrays: dict[str, Any] = {
        "counts": counts,
        "boxes": np.concatenate([o.boxes for o in segment.objects]).reshape(-1, 4),
        "conf": np.concatenate([o.conf for o in segment.objects]),
        "cls": np.concatenate([o.cls for o in segment.objects]),
        "qps": np.array(sorted(segment.reference_bits), np.int64),
    }
    for q in segment.reference_bits:
        arrays[f"bits_{q}"] = segment.reference_bits[q]
        arrays[f"terms_{q}"] = segment.reference_terms[q]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def _load_segment(path: Path, name: str, frames: list[NDArray[np.uint8]], qps: Sequence[int]) -> Segment | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            if not set(qps) <= {int(q) for q in z["qps"]}:
                return None
            ends = np.cumsum(z["counts"])
            starts = ends - z["counts"]
            boxes, conf, cls = z["boxes"], z["conf"], z["cls"]
            objects = [TaskOutput.objects(boxes[a:b], conf[a:b], cls[a:b]) for a, b in zip(starts, ends, strict=True)]
            segment = Segment(name, frames, objects)
            for q in qps:
                segment.reference_bits[q] = z[f"bits_{q}"]
                segment.reference_terms[q] = z[f"terms_{q}"]
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is rebuilt
    return segment


def video_lambdas(segments: Sequence[Segment], settings: VideoSettings) -> dict[int, tuple[float, float]]:
    """Per base QP, (lambda, mean bits per frame) of the reference coding over the segments.

    ``lambda`` is the slope of the reference coding, task loss per bit, by finite difference between
    the neighbouring base QPs (one-sided at the ends), floored at a small positive value.
    """
    qps = sorted(settings.base_qps)
    loss = {q: float(np.mean(np.concatenate([s.reference_loss(q, settings.false_weight) for s in segments])))
            for q in qps}  # fmt: skip
    bits = {q: float(np.mean(np.concatenate([s.reference_bits[q] for s in segments]))) for q in qps}
    out = {}
    for k, q in enumerate(qps):
        lo, hi = qps[max(k - 1, 0)], qps[min(k + 1, len(qps) - 1)]
        slope = 0.0 if lo == hi else (loss[hi] - loss[lo]) / max(bits[lo] - bits[hi], 1.0)
        floor = 1e-3 / max(bits[q], 1.0)  # a loss of 0.001 per frame's bits: a flat curve still prices bits
        out[q] = (max(slope, floor), max(bits[q], 1.0))
    return out


class VideoQPEnv(gym.Env[NDArray[np.float32], np.int64]):
    """Code training segments, choosing the frame QP offset and object boost every few frames (module docstring).

    ## Action Space

    ``Discrete(len(frame_offsets) * len(object_boosts))``; :meth:`VideoSettings.decode` gives
    the (frame offset, boost) pair.

    ## Observation Space

    ``Box(-1, 1, (13,), float32)``: :data:`VIDEO_OBS_NAMES`, built by :class:`VideoObserver`.

    A step codes the frames one decision covers (``decision_interval``, the last step of an
    episode fewer when it does not divide ``episode_frames``) with the action's offsets.

    ## Rewards

    Per frame, the Lagrangian of its task loss and exact bits against the reference coding (the
    settings' cascade) of the same frame at the same base QP (module docstring); a step's reward is
    the mean over its frames; 0 for the reference action.

    ## Episode End

    After ``episode_frames`` frames (terminated); never truncated.

    Args:
        segments: Training segments (:func:`build_segments`).
        codec: The clip codec (the one the segments were measured with).
        detector: The task net (the one the segments were measured with).
        settings: The MDP settings.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self, segments: Sequence[Segment], codec: ClipCodec, detector: Detector, settings: VideoSettings | None = None
    ) -> None:
        super().__init__()
        self.settings = settings or VideoSettings()
        if not segments:
            raise InvalidInputError("the video env needs at least one segment")
        for s in segments:
            missing = set(self.settings.base_qps) - set(s.reference_bits)
            if missing or len(s.frames) != self.settings.episode_frames:
                raise InvalidInputError(f"segment {s.name} was not built for these settings (base QPs {missing})")
        self.segments = list(segments)
        self.codec = codec
        self.detector = detector
        self.lambdas = video_lambdas(self.segments, self.settings)
        self.action_space = spaces.Discrete(self.settings.n_actions)
        self.observation_space = spaces.Box(-1.0, 1.0, (VIDEO_OBS_DIM,), np.float32)
        self._session: Any = None
        self._segment = self.segments[0]
        self._base = self.settings.base_qps[0]
        self._t = 0
        self._observer = VideoObserver(self.settings)
        self._reference_loss = np.zeros(0)
        self.frames_coded = 0
        """Frames coded since the env was made (each step codes up to ``decision_interval``)."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode: a segment and a base QP (``options``: ``segment`` index, ``base_qp``)."""
        super().reset(seed=seed)
        options = options or {}
        index = options.get("segment", int(self.np_random.integers(len(self.segments))))
        self._segment = self.segments[int(index)]
        self._base = int(options.get("base_qp", self.np_random.choice(self.settings.base_qps)))
        if self._base not in self.settings.base_qps:
            raise InvalidInputError(f"base QP {self._base} is not one of {self.settings.base_qps}")
        self._close_session()
        h, w = self._segment.shape
        self._session = self.codec.open(w, h, self._base)
        self._t = 0
        self._observer = VideoObserver(self.settings)
        self._reference_loss = self._segment.reference_loss(self._base, self.settings.false_weight)
        return self._observe(), {"segment": self._segment.name, "base_qp": self._base}

    def _observe(self) -> NDArray[np.float32]:
        s, t = self._segment, self._t
        return self._observer.observe(s.frames[t], s.region(t), s.objects[t].boxes, self._base)

    def step(self, action: np.int64 | int) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Code the frames up to the next decision with the action's offsets and score them.

        The reward is the mean of the frames' rewards; ``info`` sums their bits and losses and
        gives the last frame's offset and boost.
        """
        if self._session is None:
            raise InvalidInputError("call reset() before step()")
        frame_offset, boost = self.settings.decode(int(action))
        s = self._segment
        rewards, totals = [], {"bits": 0, "loss": 0.0, "d_bits": 0, "d_loss": 0.0}
        while True:
            reward, info = self._code_frame(frame_offset, boost)
            rewards.append(reward)
            for k in totals:
                totals[k] += info[k]
            self._t += 1
            if self._t >= len(s.frames) or self.settings.decides_at(self._t):
                break
            self._observer.carry(s.frames[self._t], s.region(self._t), s.objects[self._t].boxes)
        done = self._t >= len(s.frames)
        info = {**totals, "frames": len(rewards), "frame_offset": info["frame_offset"], "boost": boost}
        if done:
            self._close_session()
            obs = np.zeros(VIDEO_OBS_DIM, np.float32)
        else:
            obs = self._observe()
        return obs, float(np.mean(rewards)), done, False, info

    def _code_frame(self, frame_offset: int, boost: int) -> tuple[float, dict[str, Any]]:
        """Code the current (observed) frame: its reward and figures."""
        frame_offset = self._observer.steady(frame_offset)
        s, t, settings = self._segment, self._t, self.settings
        coded_offset = frame_offset + settings.cascade_offset(t)
        offsets = frame_offsets_map(s.region(t), s.shape, coded_offset, boost, self._base, settings.dilation,
                                    settings.block, roi=settings.roi, touched=self._observer.touched)  # fmt: skip
        coded = self._session.code(s.frames[t], offsets)
        decoded = self.detector([coded.recon])[0]
        loss = frame_loss(s.objects[t], decoded, s.shape, settings.false_weight)
        lam, mean_bits = self.lambdas[self._base]
        d_loss = loss - float(self._reference_loss[t])
        d_bits = coded.bits - int(s.reference_bits[self._base][t])
        c = settings.reward_clip
        reward = -float(np.clip((d_loss / lam + settings.rate_weight * d_bits) / mean_bits, -c, c))
        self._observer.record(frame_offset, boost)
        self.frames_coded += 1
        return reward, {"bits": coded.bits, "loss": loss, "d_bits": d_bits, "d_loss": d_loss,
                        "frame_offset": frame_offset}  # fmt: skip

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def close(self) -> None:
        """Release the encoder."""
        self._close_session()
        super().close()

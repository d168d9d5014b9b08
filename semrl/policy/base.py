"""The policy protocol, its input, and calling a policy safely.

A policy sees one original frame (and, when it asks for them, the task net's regions on it) and
the base QP, and returns QP offsets: one per 64x64 CTU (``ctu_shape``) or one per 16x16 block
(``block_shape``). :func:`apply_offsets` adds them to the base QP, rounds, clips to 0..51 and
hands the encoder offsets relative to its base QP.

What a policy declares about itself, as optional attributes (a plain function has none and gets
the defaults):

- ``needs_regions`` (default True): the caller runs the task net on the frame and fills
  ``PolicyInput.region`` and ``boxes``; False spares that net (:func:`uniform`, trained policies,
  which compute their own semantic maps).
- ``runs_own_net`` (default False): the policy runs a network of its own on each frame (the
  caller then leaves it the CPU cores x265 does not use).
- ``task`` (default None): the task the policy serves; None serves any.
- ``offset_block`` (default 64): the side of the blocks its offsets may vary over: 64 (one offset
  per CTU; offsets per 16x16 block must then be equal within each CTU) or 16 (the encoder is
  opened with 16x16 quantisation groups, so every block may have its own QP).
- ``needs_rgb`` (default True): False when the policy looks at the frame's brightness only
  (``PolicyInput.luma``); a caller holding the coded YUV picture then gives its luma and may skip
  the RGB conversion, passing a frame with no channels, (H, W, 0).
- ``prefilter`` (default None): a :class:`semrl.policy.Prefilter`; the caller then codes each
  frame smoothed over the blocks the policy codes coarser than its base QP.
- ``own_rate_control`` (default False): the policy leaves the whole allocation to x265's own rate
  control (CRF at the base QP, or its average bitrate under a target rate) with x265's adaptive
  quantisation and cuTree, as people run x265 (the A2 anchor); the caller never calls it and gives
  x265 no offsets (:func:`x265_allocation`).
- ``fingerprint`` (str): changes whenever the behaviour does (benchmark cache keys and reports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from semrl.codec import BLOCK_SIZE, CTU_SIZE, QP_MAX, QP_MIN, EncoderConfig, GopLayout, ScalingLists, Yuv420, ctu_grid
from semrl.errors import InvalidInputError, SemrlError


@dataclass(frozen=True)
class TrialCoding:
    """How the caller codes a frame, for a policy that codes it on trial before it decides.

    Given only for a frame coded on its own, which a trial encode of it alone reproduces: every
    frame of an all-intra coding, or a clip of one frame (a picture), at constant QP.

    Attributes:
        config: The encoder configuration the frame is coded with (its base QP, preset,
            quantisation-group size, GOP).
        shape: (h, w) of the picture as shown: the decoded picture cropped to it is what the task
            net sees.
    """

    config: EncoderConfig
    shape: tuple[int, int]


@dataclass(frozen=True, eq=False)
class PolicyInput:
    """What a policy sees for one frame.

    Attributes:
        frame: The original frame as the encoder receives it, (H, W, 3) uint8 RGB, H and W even
            (odd images are padded by one row or column of edge pixels).
        base_qp: The operating point's base QP. It may exceed 51 (a "virtual" base, used to
            extend ROI curves to the low-rate end): the frame is then coded at QP 51 plus
            offsets, and every CTU's QP is ``base_qp + offset`` clipped to 0..51.
        ctu_shape: (rows, cols) of the 64x64 CTU grid.
        region: bool (h, w) pixels the task net marks as relevant on the original frame (boxes or
            masks of objects with confidence >= 0.25, or the thresholded Grad-CAM for
            classification); (h, w) is the unpadded frame size. None when not computed (the
            policy declared ``needs_regions = False``, or no task net runs).
        boxes: float32 (N, 4) xyxy boxes of the objects with confidence >= 0.25 (detection and
            segmentation), else an empty array.
        frame_index: Index of the frame in its clip (0 for images).
        state: One dict per clip, the same object for every frame of it (fresh for each image):
            where a policy keeps what it carries from frame to frame.
        luma: The frame's full-range luma, (H, W) float32 0..255 (``0.299 R + 0.587 G + 0.114 B``
            of ``frame`` to within rounding), when the caller has the coded YUV picture
            (:meth:`semrl.codec.Yuv420.luma`, taken from ``picture`` when only that is given);
            None otherwise.
        gop: Where the frame sits in the coding structure (:meth:`semrl.codec.EncoderConfig.layout`):
            its IDR interval and, under random access, its B-frame layer. The default is low
            delay with an IDR frame every 250 frames.
        cls: int64 (N,) the classes of ``boxes``, in the same order; empty when not given.
        conf: float32 (N,) the task net's confidences in ``boxes``, in the same order; empty when
            not given.
        picture: The coded YUV picture itself, when the caller has it (a policy that codes the
            frame on trial needs exactly what x265 gets); None otherwise.
        coding: How the caller codes the frame, when it codes it on its own (all-intra or a
            one-frame clip) at constant QP with offsets from ``base_qp`` as given; None otherwise.
        report: Filled by the policy, for the frame's row of the encode report: ``kept``, the trial
            coding it kept and of how many, for a policy that codes the frame on trial.
    """

    frame: NDArray[np.uint8]
    base_qp: int
    ctu_shape: tuple[int, int]
    region: NDArray[np.bool_] | None = None
    boxes: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    frame_index: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    luma: NDArray[np.float32] | None = None
    gop: GopLayout = field(default_factory=GopLayout)
    cls: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    conf: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    picture: Yuv420 | None = None
    coding: TrialCoding | None = None
    report: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.luma is None and self.picture is not None:
            object.__setattr__(self, "luma", self.picture.luma())
        for name, values in (("classes", self.cls), ("confidences", self.conf)):
            if len(values) and len(values) != len(self.boxes):
                raise InvalidInputError(f"{len(values)} {name} for {len(self.boxes)} boxes; give one per box")

    @property
    def block_shape(self) -> tuple[int, int]:
        """(rows, cols) of the 16x16 block grid (offsets may be given per block instead of per CTU)."""
        h, w = self.frame.shape[:2]
        return ctu_grid(w, h, BLOCK_SIZE)


@runtime_checkable
class Policy(Protocol):
    """Anything that maps a :class:`PolicyInput` to QP offsets of shape ``ctu_shape`` or ``block_shape``.

    A plain function qualifies; see the module docstring for the attributes a policy may declare.
    """

    def __call__(self, inputs: PolicyInput) -> NDArray[np.floating] | NDArray[np.integer]:
        """Return QP offsets, shape ``inputs.ctu_shape`` (or ``inputs.block_shape``)."""
        ...


def uniform(inputs: PolicyInput) -> NDArray[np.int32]:
    """No offsets: every CTU at the base QP (the A1 anchor)."""
    return np.zeros(inputs.ctu_shape, np.int32)


uniform.needs_regions = False  # type: ignore[attr-defined]
uniform.fingerprint = "uniform"  # type: ignore[attr-defined]


def x265_allocation(inputs: PolicyInput) -> NDArray[np.int32]:
    """x265's own allocation (the A2 anchor): no semantic offsets; callers code with x265's rate control instead.

    Callers check :func:`own_rate_control` and never call it; called anyway, it gives no offsets.
    """
    return uniform(inputs)


x265_allocation.needs_regions = False  # type: ignore[attr-defined]
x265_allocation.own_rate_control = True  # type: ignore[attr-defined]
x265_allocation.fingerprint = "x265"  # type: ignore[attr-defined]


def own_rate_control(policy: object) -> bool:
    """Whether ``policy`` leaves the allocation to x265's own rate control (CRF or ABR, with its AQ and cuTree)."""
    return bool(getattr(policy, "own_rate_control", False))


def needs_regions(policy: object) -> bool:
    """Whether the caller must run the task net and fill ``PolicyInput.region`` for ``policy``."""
    return bool(getattr(policy, "needs_regions", True))


def needs_rgb(policy: object) -> bool:
    """Whether ``policy`` reads the RGB frame (False: its luma and the frame's size are enough)."""
    return bool(getattr(policy, "needs_rgb", True))


def runs_own_net(policy: object) -> bool:
    """Whether ``policy`` runs a network of its own on every analysed frame."""
    return bool(getattr(policy, "runs_own_net", False))


def offsets_identity(policy: object) -> str | None:
    """What names everything ``policy``'s offsets depend on besides its inputs and semrl's code; None: unnamed.

    A policy that sets ``offsets_identity`` promises that two policies with the same one, given the
    same frames, base QP, coding and task net, return the same offsets: the benchmark then caches
    its maps (a trading policy's trial codings are its cost). Policies without it are run every time.
    """
    identity = getattr(policy, "offsets_identity", None)
    return identity if isinstance(identity, str) and identity else None


def offset_block(policy: object) -> int:
    """The side of the blocks ``policy``'s offsets vary over: the encoder's quantisation-group size for it."""
    size = int(getattr(policy, "offset_block", CTU_SIZE))
    if size not in (BLOCK_SIZE, CTU_SIZE):
        raise InvalidInputError(
            f"policy {describe(policy)} declares offset_block {size}; use {BLOCK_SIZE} or {CTU_SIZE}"
        )
    return size


def scaling_lists(policy: object) -> ScalingLists | None:
    """The quantisation matrices ``policy`` codes with (None: flat, as HEVC without scaling lists)."""
    lists = getattr(policy, "scaling_lists", None)
    if lists is not None and not isinstance(lists, ScalingLists):
        raise InvalidInputError(
            f"policy {describe(policy)} declares scaling_lists {lists!r}; give a ScalingLists or None"
        )
    return lists


def policy_task(policy: object) -> str | None:
    """The task ``policy`` serves, or None when it serves any."""
    task = getattr(policy, "task", None)
    return task if isinstance(task, str) else None


def policy_offsets(policy: Policy | Callable[[PolicyInput], object], inputs: PolicyInput) -> NDArray[np.int32]:
    """Call a policy and return its offsets from ``inputs.base_qp``, rounded, not yet clipped to 0..51.

    The rate controller reads these: near QP 51 clipping would merge the levels of a cascading
    policy's maps (its +4 and +8 frames both coded at 51), and it keeps one model per level.

    Raises:
        InvalidInputError: The policy raised, or returned something other than finite offsets of
            the CTU or block grid's shape.
    """
    try:
        result = policy(inputs)
    except SemrlError:
        raise
    except Exception as e:  # a user's policy: say whose and what, not a traceback
        raise InvalidInputError(f"policy {describe(policy)} failed: {type(e).__name__}: {_short(e)}") from e
    try:
        raw = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(
            f"policy {describe(policy)} returned {type(result).__name__}, not an array of QP offsets "
            f"of the CTU grid {inputs.ctu_shape} or the block grid {inputs.block_shape}"
        ) from e
    if raw.shape not in (inputs.ctu_shape, inputs.block_shape):
        raise InvalidInputError(
            f"policy {describe(policy)} returned offsets of shape {raw.shape}, expected the CTU grid "
            f"{inputs.ctu_shape} or the {BLOCK_SIZE}x{BLOCK_SIZE} block grid {inputs.block_shape}"
        )
    if not np.isfinite(raw).all():
        raise InvalidInputError(f"policy {describe(policy)} returned NaN or infinite offsets")
    # Far beyond any QP, so that the integer cast cannot overflow; the clip to 0..51 comes later.
    offsets: NDArray[np.int32] = np.clip(np.rint(raw), -1000, 1000).astype(np.int32)
    return offsets


def apply_offsets(
    policy: Policy | Callable[[PolicyInput], object], inputs: PolicyInput, coded_base: int | None = None
) -> NDArray[np.int32]:
    """Call a policy and return the offsets to give the encoder (per CTU or per 16x16 block, as returned).

    Each CTU's (or block's) QP is ``inputs.base_qp`` + the policy's offset, rounded and clipped to
    0..51; the result is relative to ``coded_base``, the encoder's base QP (default
    ``inputs.base_qp``).

    Raises:
        InvalidInputError: The policy raised, or returned something other than finite offsets of
            the CTU or block grid's shape.
    """
    return clip_offsets(policy_offsets(policy, inputs), inputs.base_qp, coded_base)


def clip_offsets(offsets: NDArray[np.int32], base_qp: int, coded_base: int | None = None) -> NDArray[np.int32]:
    """A policy's offsets from ``base_qp`` (:func:`policy_offsets`) as the encoder takes them.

    Each block's QP, ``base_qp`` + its offset, is clipped to 0..51 and given relative to
    ``coded_base``, the encoder's base QP (default ``base_qp``).
    """
    qp = np.clip(offsets + base_qp, QP_MIN, QP_MAX)
    coded: NDArray[np.int32] = (qp - (base_qp if coded_base is None else coded_base)).astype(np.int32)
    return coded


def _short(error: Exception, limit: int = 200) -> str:
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(policy: object) -> str:
    """A stable name for a policy: its ``fingerprint`` attribute, else module:qualname."""
    fp = getattr(policy, "fingerprint", None)
    if isinstance(fp, str):
        return fp
    module = getattr(policy, "__module__", type(policy).__module__)
    name = getattr(policy, "__qualname__", type(policy).__qualname__)
    return f"{module}:{name}"

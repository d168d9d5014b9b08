"""Frame-level rate control for ``semrl encode --bitrate``: each frame's QP, the policy's map within it.

Why in semrl and not x265's ABR/VBV: x265's rate control picks QPs per frame and, with AQ, per
block from its own analysis; in its ABR mode the per-block offsets semrl gives are added on top
of x265's own, so the policy no longer decides how bits are shared inside a frame, and the QPs x265
settles on are not the policy's base. Here x265 stays in constant-QP mode (every CU at
frame QP + the policy's offset, exactly), and this controller only shifts each frame's QP. The
pipeline codes each frame at its own slice QP (the median of its CUs'): x265 codes CUs far from the
slice QP dearly (up to 2.2x the bits, ``benchmarks/results/rate-control-slice-qp``).

The model is the usual exponential one, ``bits(q) = c * 2 ** (-q / 6)`` (bits halve every 6 QP),
kept per CTU, per frame type and per level of the policy's maps (their median offset, which a
cascading policy sets per level): each CTU's ``c`` comes from its exact bits in the last coded
frames (exponential average), so the controller predicts what a frame costs with the policy's map
for it, not just with its mean offset. That matters because the policy spends on the objects and
the objects' CTUs hold most of a P-frame's bits: a map that lowers the objects' QP by 6 on a tenth
of the CTUs may double the frame's bits while its mean QP moves by less than 1. A P-frame's CTUs
that change more in the source than those the model was fitted on (:func:`temporal_activity`) are
priced that much higher, so a still scene that starts moving does not burst its second. The first
two frames are coded on trial (an I-frame and a P-frame, :meth:`RateController.calibrate`) to start
the models.

Each frame's budget is the target per frame plus a share of the running surplus or deficit, spread
over the next second, so the stream converges to the target. The policy's maps decide how the
budget is shared between frames: a frame whose map costs more than the recent maps (a video
policy's anchor frame with its objects' boost) gets proportionally more, so the base QP stays
steady and the policy's allocation is kept, as long as the one-second window that ends with the
frame has room for it; where it has not, the frame's QP rises until it fits. The base QP of
consecutive P-frames otherwise moves by at most :data:`MAX_STEP`, so quality does not flicker.
Under random access x265 hands a frame back a GOP and a lookahead after its QP is asked for; the
frames still inside it count in the surplus and the window at their predicted bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from semrl.codec import BLOCK_SIZE, CTU_SIZE, QP_MAX, QP_MIN, ctu_to_blocks, pool_map
from semrl.errors import InvalidInputError

MAX_STEP = 3
"""Most base-QP change between consecutive P-frames, unless the one-second window needs a larger rise."""

VIRTUAL_MAX = QP_MAX + 12
"""Highest frame QP asked for: above 51 the frame is coded at 51 where the policy's offset does not
bring it lower, so a policy that spends on objects still fits a low target."""

SMOOTHING = 0.5
"""Weight of the newest frame in the exponential average of the model constants."""

WINDOW_CAP = 1.35
"""A frame's budget keeps the bits of the last second (itself included) under this many seconds of target."""

CTU_FLOOR = 0.05
"""Least model constant of a CTU, as a share of the mean CTU's: a CTU the last frames skipped (no
bits) still costs bits when the policy lowers its QP or an object moves into it."""

UNSEEN_FINER = 0.5
"""Least cost of a P-frame of a level not seen yet and finer than every P-frame before it, as a share
of an I-frame's at the same QPs (measured on PETS with the shipped video policy: its first anchor
frame cost 0.49-0.59 of the I-frame model where the P-frames' model said 0.1-0.2)."""

ACTIVITY_FLOOR = 1.0
"""Added to each CTU's temporal activity (mean absolute luma change, 0-255) before the ratio of a
frame's to the recent frames': a static camera's noise, so a still CTU's ratio stays near 1."""

_SPLIT = CTU_SIZE // BLOCK_SIZE

Grid = npt.NDArray[np.float64]


@dataclass
class RateController:
    """Chooses each frame's QP to hold a target bitrate.

    Args:
        kbps: Target rate in kbit/s.
        fps: Frame rate (frames per second).
        start_qp: QP of the first frame (calibrate it with :meth:`calibrate`); with ``returns_at_once``
            its base rises where its map would take it past the calibrated cap.
        frames: The clip's length in frames, if known. A clip under two seconds has no second to
            repay its I-frame over: the I-frame takes at most its share of the clip's budget with
            every frame at one QP, as the trial P-frame prices the others (half the budget without
            one; all of it for a one-frame clip).
        returns_at_once: Each frame's bits come back before the next frame's QP is asked for (low
            delay); False under random access. Then the I-frame's calibrated cap also holds with
            the policy's map for it.
    """

    kbps: float
    fps: float
    start_qp: float
    frames: int | None = None
    returns_at_once: bool = True
    _c: dict[str, Grid] = field(default_factory=dict)
    _spent: float = 0.0
    _frames: int = 0
    _last_qp: float | None = None
    _levels: dict[float, Grid] = field(default_factory=dict)
    _relative: list[float] = field(default_factory=list)
    _pending: dict[int, tuple[float | None, Grid | None, float]] = field(default_factory=dict)
    _activity: Grid | None = None
    _recent: list[int] = field(default_factory=list)
    _intra_cap: float | None = None

    def __post_init__(self) -> None:
        if not (self.kbps > 0 and math.isfinite(self.kbps)):
            raise InvalidInputError(f"--bitrate must be a positive number of kbit/s, got {self.kbps}")
        if not self.fps > 0:
            raise InvalidInputError(f"rate control needs a positive frame rate, got {self.fps}")

    @property
    def _second(self) -> int:
        """Frames in one second."""
        return max(1, round(self.fps))

    @property
    def frame_budget(self) -> float:
        """The target bits of one frame."""
        return self.kbps * 1000.0 / self.fps

    @staticmethod
    def qp_for(bits: float, c: float) -> float:
        """The QP at which the model gives ``bits``."""
        return 6.0 * math.log2(max(c, 1.0) / max(bits, 1.0))

    def calibrate(self, intra_bits_at: dict[int, float], inter_bits_at: dict[int, float] | None = None) -> float:
        """Set the models from trial codings of the first frames (QP -> bits); returns the start QP.

        Args:
            intra_bits_at: The first frame coded as an I-frame, at each trial QP.
            inter_bits_at: The second coded as a P-frame after it (None: a one-frame clip).

        With both, the start QP is the one at which a P-frame spends its frame budget, where the
        stream settles, so the I-frame sits where the policy puts it against its P-frames (which
        on a static scene reference its background for the whole clip); unless the I-frame would
        then take more than one second's budget, when it gets exactly one (under low delay with
        the policy's map too: the first frame's base QP rises until it fits). A static scene's
        P-frames cost a few percent of its I-frame: the rule without a P-frame (below) starved
        the I-frame and the P-frames' QP then fell far below it. Without ``inter_bits_at`` the
        I-frame gets ``4 x`` a frame's budget.
        """
        cs = [bits * 2.0 ** (q / 6.0) for q, bits in intra_bits_at.items() if bits > 0]
        if not cs:
            return self.start_qp
        c = sum(cs) / len(cs)
        self._c["I"] = np.full((1, 1), c)
        ps = [bits * 2.0 ** (q / 6.0) for q, bits in (inter_bits_at or {}).items() if bits > 0]
        if ps:
            self._c["P"] = np.full((1, 1), sum(ps) / len(ps))
            steady = self.qp_for(self.frame_budget, float(self._c["P"][0, 0]))  # a P-frame on its budget
            self._intra_cap = self.kbps * 1000.0
            qp = max(steady, self.qp_for(self._intra_cap, c))  # the I-frame there, within a second's budget
        else:
            self._c.setdefault("P", np.full((1, 1), c / 6.0))
            qp = self.qp_for(4.0 * self.frame_budget, c)
        if self.frames is not None and self.frames < 2 * self._second:  # no second to repay the I-frame over
            if ps and self.frames > 1:  # the whole clip at one QP spends its budget: the I-frame's share of it
                short = self.frame_budget * self.frames * c / (c + (self.frames - 1) * float(self._c["P"][0, 0]))
            else:
                short = self.frame_budget * max(1.0, self.frames / 2)
            self._intra_cap = short if self._intra_cap is None else min(self._intra_cap, short)
            qp = max(qp, self.qp_for(short, c))
        self.start_qp = float(min(max(qp, QP_MIN), VIRTUAL_MAX))
        return self.start_qp

    def next_qp(
        self,
        intra: bool,
        offsets: npt.ArrayLike | None = None,
        frame: int | None = None,
        activity: npt.ArrayLike | None = None,
    ) -> int:
        """The base QP to ask for the next frame to code: each of its CUs at this QP plus its offset.

        Args:
            intra: Whether the frame is an I-frame.
            offsets: The policy's QP offsets for the frame, per CTU or per 16x16 block (None: none).
            frame: Its index, to match it with :meth:`update` (frames of a random-access GOP
                come back out of order).
            activity: Its temporal activity per CTU (:func:`temporal_activity`), None: unknown.
                A P-frame's CTUs that change more than they did in the frames the model was
                fitted on are predicted to cost that much more: a scene that starts moving after
                a still start otherwise costs several times its model, at once.
        """
        grid = np.zeros((1, 1)) if offsets is None else np.asarray(offsets, np.float64)
        if grid.ndim != 2 or grid.size == 0:
            raise InvalidInputError(f"QP offsets for rate control must be a 2-D grid, got shape {grid.shape}")
        # A P-frame's level: the median offset, the QP of most of the frame, which a cascading policy sets per level.
        level = None if intra else round(2 * float(np.median(grid))) / 2
        moved = None if activity is None or intra else np.asarray(activity, np.float64)
        # Frames asked for and not coded yet (random access returns them a GOP and a lookahead
        # later): their predicted bits count as spent, so the controller does not spend them twice.
        in_flight = [predicted for _, _, predicted in self._pending.values()]
        weights = None
        if "P" in self._c:
            seen = level in self._levels
            model = self._c["I"] if level is None else self._levels.get(level, self._c["P"])
            moving = self._moving(model, moved)
            plain_weights = _weights(model, grid.shape)
            weights = plain_weights if moving is model else _weights(moving, grid.shape)
            if level is not None and not seen and "I" in self._c and (not self._levels or level < min(self._levels)):
                # Finer than every P-frame so far, it refines its references: the P model underrates it.
                finer = UNSEEN_FINER * _weights(self._c["I"], grid.shape)
                weights, plain_weights = np.maximum(weights, finer), np.maximum(plain_weights, finer)
        if self._frames == 0 or weights is None:
            qp = self.start_qp
            if intra and self.returns_at_once and weights is not None and self._intra_cap is not None:
                # The cap holds with the map: a boost over a picture the objects fill (a talking
                # head) coded the I-frame 15 QP finer than calibrated, 2 seconds' budget. Under random
                # access the frames after it are asked for before it comes back, and capping it there
                # was refused on its rate error (benchmarks/results/rate-control-first-frame).
                qp = max(qp, _solve(weights, grid, self._intra_cap))
        else:
            surplus = self.frame_budget * (self._frames + len(in_flight)) - self._spent - sum(in_flight)
            budget = self.frame_budget + surplus / max(self.fps, 1.0)  # repay over about a second
            budget = min(max(budget, 0.25 * self.frame_budget), 2.5 * self.frame_budget)
            if intra:
                budget *= 4.0
            else:
                # What the frame costs at the same base QP against the recent frames: the policy shares the bits.
                reference = self.start_qp if self._last_qp is None else self._last_qp
                plain = _weights(self._c["P"], (1, 1))
                # The policy's map, not the scene's motion, shares the budget: motion raises the QP.
                relative = _cost(plain_weights, grid, reference) / _cost(plain, np.zeros((1, 1)), reference)
                self._relative = [*self._relative[-(self._second - 1) :], relative]
                budget *= relative / float(np.mean(self._relative))
            # Leave room in the one-second window that ends with this frame.
            room = WINDOW_CAP * self.kbps * 1000.0 - sum([*self._recent, *in_flight][-(self._second - 1) :])
            # A model seen once a GOP goes stale, one not seen yet is borrowed: keep a margin there.
            room = max(room * (1.0 if seen else 0.7), 0.1 * self.frame_budget)
            qp = _solve(weights, grid, min(budget, room))
            if self._last_qp is not None and not intra:
                qp = min(max(qp, self._last_qp - MAX_STEP), self._last_qp + MAX_STEP)
                qp = max(qp, _solve(weights, grid, room))  # the window outranks a smooth step
        if not intra or self._last_qp is None:
            self._last_qp = qp
        asked = int(min(max(round(qp), QP_MIN), VIRTUAL_MAX))
        predicted = self.frame_budget * (4.0 if intra else 1.0) if weights is None else _cost(weights, grid, asked)
        self._pending[-1 if frame is None else frame] = (level, moved, predicted)
        return asked

    def update(
        self,
        bits: int,
        qps: float | npt.ArrayLike,
        intra: bool,
        ctu_bits: npt.ArrayLike | None = None,
        frame: int | None = None,
    ) -> None:
        """Account for a coded frame.

        Args:
            bits: Its exact bits.
            qps: The QP it was coded at: one number, or its CUs' QPs per CTU or per 16x16 block.
            intra: Whether it is an I-frame.
            ctu_bits: Its exact bits per CTU (the model is then kept per CTU); None: per frame.
            frame: Its index, as given to :meth:`next_qp`.
        """
        level, moved, _ = self._pending.pop(-1 if frame is None else frame, (None, None, 0.0))
        if moved is not None:
            same = self._activity is not None and self._activity.shape == moved.shape
            self._activity = _blend(self._activity if same else None, moved)
        grid = np.atleast_2d(np.asarray(qps, np.float64))
        per_ctu = None if ctu_bits is None else np.asarray(ctu_bits, np.float64)
        if per_ctu is not None and per_ctu.sum() > 0 and _fits(per_ctu.shape, grid.shape):
            c = bits * per_ctu / per_ctu.sum() / _ctu_mean(2.0 ** (-grid / 6.0), per_ctu.shape)
        else:
            c = np.full((1, 1), bits / float(np.mean(2.0 ** (-grid / 6.0))))
        if level is not None:
            self._levels[level] = _blend(self._levels.get(level), c)
        kind = "I" if intra else "P"  # all P-frames together
        self._c[kind] = _blend(self._c.get(kind), c)
        if intra and "P" not in self._c:
            self._c["P"] = c / 6.0
        self._spent += bits
        self._frames += 1
        self._recent = [*self._recent[-round(2 * self.fps) :], bits]

    def _moving(self, model: Grid, activity: Grid | None) -> Grid:
        """``model`` scaled up where the frame's CTUs change more than those it was fitted on."""
        if activity is None or self._activity is None or self._activity.shape != activity.shape:
            return model
        ratio = np.maximum((activity + ACTIVITY_FLOOR) / (self._activity + ACTIVITY_FLOOR), 1.0)
        model = _floored(model)  # floored before scaling: a skipped CTU that starts moving costs bits
        if model.shape == ratio.shape:
            scaled: Grid = model * ratio
            return scaled
        frame_ratio = (activity.mean() + ACTIVITY_FLOOR) / (self._activity.mean() + ACTIVITY_FLOOR)
        return model * max(float(frame_ratio), 1.0)


def temporal_activity(luma: npt.NDArray[np.uint8], previous: npt.NDArray[np.uint8], ctu_shape: tuple[int, int]) -> Grid:
    """Each CTU's mean absolute luma change from ``previous`` to ``luma`` (source frames, same size)."""
    if luma.shape != previous.shape:
        raise InvalidInputError(f"temporal activity needs frames of one size, got {luma.shape} and {previous.shape}")
    change = pool_map(np.abs(luma.astype(np.int16) - previous.astype(np.int16)), CTU_SIZE).astype(np.float64)
    if change.shape != ctu_shape:
        raise InvalidInputError(f"frames of {luma.shape} do not cover a CTU grid of {ctu_shape}")
    return change


def _blend(old: Grid | None, new: Grid) -> Grid:
    """The exponential average of a model's constants with a new frame's."""
    if old is None:
        return new
    if old.shape != new.shape:  # the model goes per CTU: keep its total's history
        old = new * (old.sum() / max(new.sum(), 1e-9))
    blended: Grid = (1 - SMOOTHING) * old + SMOOTHING * new
    return blended


def _fits(ctu_shape: tuple[int, ...], grid_shape: tuple[int, ...]) -> bool:
    """Whether ``grid_shape`` is ``ctu_shape`` or the 16x16 block grid over it (or a single number)."""
    rows, cols = ctu_shape
    return grid_shape in ((1, 1), (rows, cols)) or (
        -(-grid_shape[0] // _SPLIT) == rows and -(-grid_shape[1] // _SPLIT) == cols
    )


def _ctu_mean(values: Grid, ctu_shape: tuple[int, ...]) -> Grid:
    """Per-CTU mean of per-CTU or per-block ``values`` (one number: the same everywhere)."""
    if values.shape == ctu_shape:
        return values
    if values.shape == (1, 1):
        return np.full(ctu_shape, float(values[0, 0]))
    rows, cols = ctu_shape
    padded = np.full((rows * _SPLIT, cols * _SPLIT), np.nan)
    padded[: values.shape[0], : values.shape[1]] = values
    mean: Grid = np.nanmean(padded.reshape(rows, _SPLIT, cols, _SPLIT), axis=(1, 3))
    return mean


def _floored(c: Grid) -> Grid:
    """Model constants raised to at least :data:`CTU_FLOOR` of their mean."""
    floored: Grid = np.maximum(c, CTU_FLOOR * float(c.mean()))
    return floored


def _weights(c: Grid, shape: tuple[int, ...]) -> Grid:
    """The model constants spread over a grid of ``shape`` (each CTU's shared among its blocks)."""
    c = _floored(c)
    if c.shape == shape:
        return c
    if (1, 1) in (c.shape, shape) or not _fits(c.shape, shape):
        return np.full(shape, float(c.sum()) / math.prod(shape))
    rows, cols = shape
    per_row = np.minimum(_SPLIT, rows - _SPLIT * (np.arange(rows) // _SPLIT))
    per_col = np.minimum(_SPLIT, cols - _SPLIT * (np.arange(cols) // _SPLIT))
    spread: Grid = ctu_to_blocks(c, (rows, cols)) / np.outer(per_row, per_col)
    return spread


def _cost(weights: Grid, offsets: Grid, qp: float) -> float:
    """The model's bits for a frame at base ``qp`` with ``offsets``."""
    return float((weights * 2.0 ** (-np.clip(qp + offsets, QP_MIN, QP_MAX) / 6.0)).sum())


def _solve(weights: Grid, offsets: Grid, bits: float) -> float:
    """The lowest base QP in QP_MIN..VIRTUAL_MAX at which the model's bits are at most ``bits``."""
    low, high = float(QP_MIN), float(VIRTUAL_MAX)
    if _cost(weights, offsets, low) <= bits:
        return low
    if _cost(weights, offsets, high) > bits:
        return high
    for _ in range(30):  # bisection: the cost falls with the QP
        middle = (low + high) / 2
        low, high = (low, middle) if _cost(weights, offsets, middle) <= bits else (middle, high)
    return high

"""Frame-level rate control for ``semrl encode --bitrate``: each frame's QP, the policy's map within it.

Why in semrl and not x265's ABR/VBV: x265's rate control picks QPs per frame and, with AQ, per
block from its own analysis; in its ABR mode the per-block offsets semrl gives are added on top
of x265's own, so the policy no longer decides how bits are shared inside a frame, and the QPs x265
settles on are not the policy's base. Here x265 stays in constant-QP mode (every CU at
frame QP + the policy's offset, exactly), and this controller only shifts each frame's QP.

The model is the usual exponential one, ``bits(q) = c * 2 ** (-q / 6)`` per frame type (bits
halve every 6 QP), with ``c`` re-estimated after every coded frame (exponential average). Each
frame's budget is the target per frame plus a share of the running surplus or deficit, spread
over the next second, so the stream converges to the target and a one-second window stays near
it. The QP of consecutive P-frames moves by at most :data:`MAX_STEP`, so quality does not flicker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from semrl.codec import QP_MAX, QP_MIN
from semrl.errors import InvalidInputError

MAX_STEP = 3
"""Most QP change between consecutive P-frames (and from the I-frame to the first P-frame: 2 x)."""

VIRTUAL_MAX = QP_MAX + 12
"""Highest frame QP asked for: above 51 the frame is coded at 51 where the policy's offset does not
bring it lower, so a policy that spends on objects still fits a low target."""

SMOOTHING = 0.5
"""Weight of the newest frame in the exponential average of the model constant."""

WINDOW_CAP = 1.35
"""A frame's budget keeps the bits of the last second (itself included) under this many seconds of target."""


@dataclass
class RateController:
    """Chooses each frame's QP to hold a target bitrate.

    Args:
        kbps: Target rate in kbit/s.
        fps: Frame rate (frames per second).
        start_qp: QP of the first frame (calibrate it with :meth:`calibrate`).
    """

    kbps: float
    fps: float
    start_qp: float
    _c: dict[str, float] = field(default_factory=dict)
    _spent: float = 0.0
    _frames: int = 0
    _last_qp: float | None = None
    _bias: dict[str, float] = field(default_factory=dict)
    _asked: dict[int, float] = field(default_factory=dict)
    _recent: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (self.kbps > 0 and math.isfinite(self.kbps)):
            raise InvalidInputError(f"--bitrate must be a positive number of kbit/s, got {self.kbps}")
        if not self.fps > 0:
            raise InvalidInputError(f"rate control needs a positive frame rate, got {self.fps}")

    @property
    def frame_budget(self) -> float:
        """The target bits of one frame."""
        return self.kbps * 1000.0 / self.fps

    @staticmethod
    def qp_for(bits: float, c: float) -> float:
        """The QP at which the model gives ``bits``."""
        return 6.0 * math.log2(max(c, 1.0) / max(bits, 1.0))

    def calibrate(self, intra_bits_at: dict[int, float]) -> float:
        """Set the I-frame model from trial codings of the first frame (QP -> bits); returns the start QP.

        The start QP spends about a second's worth of the budget's share the first frame
        would take in a stream of all-P frames: ``4 x`` a frame's budget, as an I-frame of a
        static scene costs several P-frames.
        """
        cs = [bits * 2.0 ** (q / 6.0) for q, bits in intra_bits_at.items() if bits > 0]
        if not cs:
            return self.start_qp
        self._c["I"] = sum(cs) / len(cs)
        self._c.setdefault("P", self._c["I"] / 6.0)
        self.start_qp = float(min(max(self.qp_for(4.0 * self.frame_budget, self._c["I"]), QP_MIN), VIRTUAL_MAX))
        return self.start_qp

    def next_qp(self, intra: bool, frame: int | None = None) -> int:
        """The QP to ask for the next frame to code (intra: an I-frame).

        The answer corrects for the measured difference between the QP asked for and the frames'
        mean QP (x265's I/P/B QP offsets, the policy's mean offset), per frame type.

        Args:
            intra: Whether the frame is an I-frame.
            frame: Its index, to match it with :meth:`update` (frames of a random-access GOP
                come back out of order).
        """
        kind = "I" if intra else "P"
        if self._frames == 0 or kind not in self._c:
            qp = self.start_qp
        else:
            surplus = self.frame_budget * self._frames - self._spent
            budget = self.frame_budget + surplus / max(self.fps, 1.0)  # repay over about a second
            budget = min(max(budget, 0.25 * self.frame_budget), 2.5 * self.frame_budget)
            if intra:
                budget *= 4.0
            # Leave room in the one-second window that ends with this frame.
            room = WINDOW_CAP * self.kbps * 1000.0 - sum(self._recent[-(max(1, round(self.fps)) - 1) :])
            # An I-frame's model is seen only once a GOP and goes stale: keep a margin for it.
            budget = max(min(budget, room * (0.7 if intra else 1.0)), 0.1 * self.frame_budget)
            qp = self.qp_for(budget, self._c[kind])
            if self._last_qp is not None and not intra:
                # Smooth steps down; a step up may be larger when the window has no room left.
                qp = max(qp, self._last_qp - MAX_STEP)
                if budget > 0.1 * self.frame_budget:
                    qp = min(qp, self._last_qp + MAX_STEP)
        if not intra or self._last_qp is None:
            self._last_qp = qp
        asked = float(min(max(round(qp - self._bias.get(kind, 0.0)), QP_MIN), VIRTUAL_MAX))
        if frame is not None:
            self._asked[frame] = asked
        return int(asked)

    def update(self, bits: int, mean_qp: float, intra: bool, frame: int | None = None) -> None:
        """Account for a coded frame: its exact bits, its mean CTU QP and (optionally) its index."""
        kind = "I" if intra else "P"
        asked = self._asked.pop(frame, None) if frame is not None else None
        if asked is not None:
            bias = mean_qp - asked
            self._bias[kind] = bias if kind not in self._bias else (1 - SMOOTHING) * self._bias[kind] + SMOOTHING * bias
        c = bits * 2.0 ** (mean_qp / 6.0)
        old = self._c.get(kind)
        self._c[kind] = c if old is None else (1 - SMOOTHING) * old + SMOOTHING * c
        if kind == "I" and "P" not in self._c:
            self._c["P"] = c / 6.0
        self._spent += bits
        self._frames += 1
        self._recent = [*self._recent[-round(2 * self.fps) :], bits]

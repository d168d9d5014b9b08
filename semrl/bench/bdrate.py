"""BD-rate on task-accuracy curves, made safe for curves that are not monotonic.

The Bjontegaard delta is computed with the ``bjontegaard`` package (pchip, and akima as a check)
over the overlapping accuracy range. Task curves (mAP against bits) are often flat and noisy at
high rate, and a spline through a non-monotonic curve gives a meaningless number; so every curve
is first made monotonic by dropping the points that are not above every lower-rate point
(:func:`monotone_fit`), the dropped points are reported, and a comparison that cannot be made
(too few points left, no overlap) is reported as such, never as a number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from semrl.errors import InvalidInputError

MIN_POINTS = 3
"""Fewest points a curve must keep after the monotone fit for a BD-rate to be computed."""

UNSTABLE_SPREAD = 5.0
"""pchip and akima differing by more than this many percentage points flags a result unstable."""


@dataclass(frozen=True)
class Curve:
    """Operating points of one method: rate (bpp or kbit/s) and quality (e.g. mAP50-95 x 100).

    Attributes:
        rates: Positive rates, any order.
        quality: Quality at each rate (higher is better).
        labels: A name per point (e.g. ``"qp=37"``), used to report dropped points.
    """

    rates: tuple[float, ...]
    quality: tuple[float, ...]
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.rates) != len(self.quality):
            raise InvalidInputError(f"{len(self.rates)} rates but {len(self.quality)} quality values")
        if self.labels and len(self.labels) != len(self.rates):
            raise InvalidInputError(f"{len(self.labels)} labels for {len(self.rates)} points")
        bad = [r for r in self.rates if not (math.isfinite(r) and r > 0)]
        if bad:
            raise InvalidInputError(f"rates must be finite and positive, got {bad}")
        if not self.labels:
            object.__setattr__(self, "labels", tuple(f"p{i}" for i in range(len(self.rates))))

    @staticmethod
    def of(rates: Sequence[float], quality: Sequence[float], labels: Sequence[str] = ()) -> Curve:
        """Build a curve from sequences."""
        return Curve(tuple(map(float, rates)), tuple(map(float, quality)), tuple(labels))


@dataclass(frozen=True)
class MonotoneCurve:
    """A curve after :func:`monotone_fit`: quality strictly increasing with rate.

    Attributes:
        rates: Kept rates, ascending.
        quality: Kept quality, strictly ascending.
        labels: Kept points' labels.
        dropped: Labels of the points dropped, in rate order.
    """

    rates: tuple[float, ...]
    quality: tuple[float, ...]
    labels: tuple[str, ...]
    dropped: tuple[str, ...]


def monotone_fit(curve: Curve) -> MonotoneCurve:
    """Keep only the points whose quality is above that of every lower-rate point.

    Points with a non-finite quality are dropped too.
    """
    order = np.argsort(np.asarray(curve.rates), kind="stable")
    kept_r: list[float] = []
    kept_q: list[float] = []
    kept_l: list[str] = []
    dropped: list[str] = []
    best = -math.inf
    for i in order:
        r, q, label = curve.rates[i], curve.quality[i], curve.labels[i]
        if math.isfinite(q) and q > best:
            kept_r.append(r)
            kept_q.append(q)
            kept_l.append(label)
        else:
            dropped.append(label)
        if math.isfinite(q):
            best = max(best, q)
    return MonotoneCurve(tuple(kept_r), tuple(kept_q), tuple(kept_l), tuple(dropped))


@dataclass(frozen=True)
class BDRate:
    """The BD-rate of a test curve against an anchor (negative: the test needs fewer bits).

    Attributes:
        pchip: BD-rate in % with pchip interpolation, None when not comparable.
        akima: The same with akima interpolation (the check).
        comparable: Whether a number could be computed.
        reason: Why not, when not comparable.
        quality_range: (low, high) quality range the delta is averaged over.
        overlap: That range's share of the union of both curves' quality ranges.
        dropped_anchor: Anchor points dropped by the monotone fit.
        dropped_test: Test points dropped by the monotone fit.
        flags: Warnings: ``non-monotonic`` (points were dropped), ``unstable`` (pchip and akima
            differ by more than :data:`UNSTABLE_SPREAD` points or in sign), ``small-overlap``.
    """

    pchip: float | None
    akima: float | None
    comparable: bool
    reason: str | None = None
    quality_range: tuple[float, float] | None = None
    overlap: float | None = None
    dropped_anchor: tuple[str, ...] = ()
    dropped_test: tuple[str, ...] = ()
    flags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "pchip": self.pchip,
            "akima": self.akima,
            "comparable": self.comparable,
            "reason": self.reason,
            "quality_range": list(self.quality_range) if self.quality_range else None,
            "overlap": self.overlap,
            "dropped_anchor": list(self.dropped_anchor),
            "dropped_test": list(self.dropped_test),
            "flags": list(self.flags),
        }


def _bd(anchor: MonotoneCurve, test: MonotoneCurve, method: str) -> float:
    import bjontegaard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(
            list(anchor.rates), list(anchor.quality), list(test.rates), list(test.quality),
            method=method, require_matching_points=False, min_overlap=0,
        )  # fmt: skip
    return float(value)


def bd_rate(anchor: Curve, test: Curve, min_points: int = MIN_POINTS) -> BDRate:
    """BD-rate of ``test`` against ``anchor`` on quality, over the overlapping quality range.

    Both curves are made monotonic first (:func:`monotone_fit`). Not comparable (``pchip`` None)
    when either keeps fewer than ``min_points`` points or the quality ranges do not overlap.

    Args:
        anchor: The reference method's curve.
        test: The method measured.
        min_points: Fewest points each curve must keep.

    Returns:
        The result with its flags.
    """
    a, t = monotone_fit(anchor), monotone_fit(test)
    flags: list[str] = []
    if a.dropped or t.dropped:
        flags.append("non-monotonic")
    common = {"dropped_anchor": a.dropped, "dropped_test": t.dropped}
    for name, c in (("anchor", a), ("test", t)):
        if len(c.rates) < min_points:
            return BDRate(
                None, None, False,
                f"{name} keeps {len(c.rates)} monotone point(s), fewer than {min_points}",
                flags=tuple(flags), **common,  # type: ignore[arg-type]
            )  # fmt: skip
    low, high = max(a.quality[0], t.quality[0]), min(a.quality[-1], t.quality[-1])
    union = max(a.quality[-1], t.quality[-1]) - min(a.quality[0], t.quality[0])
    if high <= low:
        return BDRate(
            None, None, False, "quality ranges do not overlap",
            flags=tuple(flags), **common,  # type: ignore[arg-type]
        )  # fmt: skip
    overlap = (high - low) / union if union > 0 else 1.0
    if overlap < 0.5:
        flags.append("small-overlap")
    pchip, akima = _bd(a, t, "pchip"), _bd(a, t, "akima")
    if not (math.isfinite(pchip) and math.isfinite(akima)):
        return BDRate(
            None, None, False, f"interpolation failed (pchip {pchip}, akima {akima})",
            flags=tuple(flags), **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if abs(pchip - akima) > UNSTABLE_SPREAD or (pchip < 0) != (akima < 0):
        flags.append("unstable")
    return BDRate(pchip, akima, True, None, (low, high), overlap, a.dropped, t.dropped, tuple(flags))


def rate_at_quality(curve: Curve, level: float) -> float | None:
    """Rate a curve needs to reach a quality level, by monotone (pchip) interpolation of log rate.

    Returns:
        The rate, or None when the level lies outside the monotone curve's quality range.
    """
    from scipy.interpolate import PchipInterpolator

    m = monotone_fit(curve)
    if not m.rates or not m.quality[0] <= level <= m.quality[-1]:
        return None
    if len(m.rates) == 1:
        return m.rates[0]
    f = PchipInterpolator(np.asarray(m.quality), np.log(np.asarray(m.rates)))
    return float(np.exp(f(level)))


def percent_saving(rate: float | None, reference: float | None) -> float | None:
    """(rate / reference - 1) x 100, None when either is missing."""
    if rate is None or reference is None or reference <= 0:
        return None
    return (rate / reference - 1.0) * 100.0


def interval(values: Sequence[float | None], level: float = 0.95) -> dict[str, float | int | None]:
    """Percentile interval of bootstrap values, counting the resamples that gave no number.

    Returns:
        ``{"low", "high", "median", "valid", "total"}``; bounds None when fewer than half the
        resamples gave a number.
    """
    ok = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    tail = (1.0 - level) / 2.0 * 100.0
    enough = len(ok) >= max(1, len(values) // 2)
    return {
        "low": float(np.percentile(ok, tail)) if enough else None,
        "high": float(np.percentile(ok, 100.0 - tail)) if enough else None,
        "median": float(np.median(ok)) if enough else None,
        "valid": len(ok),
        "total": len(values),
    }

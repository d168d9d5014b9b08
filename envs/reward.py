"""The reward of the SemanticQP environment: one place computes the fidelity terms, combines them, and prices bits.

Fast mode (table lookups) and live mode (the agent's actual QP map coded by x265) both call
:func:`fidelity_terms` (what coding did to one picture's task output and pixels, per CTU),
:func:`fidelity_loss` (the terms weighted by :class:`RewardConfig`) and :func:`ctu_rewards` (the
Lagrangian trade of that loss against the encoder's exact bits). Fast mode reads the terms from
tables made by coding each picture uniformly at every table QP (:mod:`envs.tables`) and
interpolates between table QPs (:func:`interpolated`); :func:`lagrangian` measures the
multiplier, the slope of uniform coding, on those tables.

The fidelity terms of one CTU, for the reference semantic map ``S_ref`` (task net on the uncoded
picture) and ``S_q`` (on the reconstruction):

- ``dsem``: the drop of the task's semantic output, mean max(S_ref - S_q, 0) (boxes weighted by
  confidence for detection, instance masks for segmentation, Grad-CAM for classification): a lost
  or weakened detection or a mask that shrinks shows up there, as the published work counts the
  pixels whose Grad-CAM dropped;
- ``rise``: mean max(S_q - S_ref, 0), the semantic output that appears only after coding
  (hallucinated objects); kept apart because it is mostly the net's jitter on background;
- ``dpix``: the semantic-weighted squared error
  (:func:`semrl.fidelity.distortion.semantic_distortion` / 255^2), a smooth tie-breaker where the
  task output does not change yet;
- ``mse``: the plain squared error / 255^2, which the semantic map does not see: the task net also
  reads the background (weak and missed objects, context), so it is not free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE, QP_MAX
from semrl.errors import InvalidInputError
from semrl.semantics.maps import pool_map

TERM_NAMES = ("dsem", "rise", "dpix", "mse")
"""The fidelity terms, in :class:`FidelityTerms` order."""

SLOPE_DELTA = 3  # QP half-width of the finite difference that measures the uniform curve's slope


class FastTable(Protocol):
    """What the reward reads of a fast-mode table (:class:`envs.tables.CtuTable` has it)."""

    @property
    def qps(self) -> NDArray[np.int32]:
        """(Q,) table QPs, ascending."""
        ...

    @property
    def bits(self) -> NDArray[np.float32]:
        """(Q, rows, cols) exact bits per CTU."""
        ...

    @property
    def terms(self) -> FidelityTerms:
        """(Q, rows, cols) fidelity terms per CTU."""
        ...


@dataclass(frozen=True, eq=False)
class FidelityTerms:
    """Per-CTU fidelity terms (see the module docstring); arrays of one shape, e.g. (rows, cols) or (QPs, rows, cols).

    Attributes:
        dsem: Drop of the task's semantic output.
        rise: Semantic output that appears only after coding.
        dpix: Semantic-weighted squared error / 255^2.
        mse: Plain squared error / 255^2.
    """

    dsem: NDArray[np.floating]
    rise: NDArray[np.floating]
    dpix: NDArray[np.floating]
    mse: NDArray[np.floating]

    def astype(self, dtype: type[np.floating]) -> FidelityTerms:
        """The terms as ``dtype`` arrays."""
        return FidelityTerms(*(np.asarray(v).astype(dtype) for v in (self.dsem, self.rise, self.dpix, self.mse)))


def fidelity_terms(
    frame: NDArray[np.uint8],
    recon: NDArray[np.uint8],
    reference_map: NDArray[np.float32],
    decoded_map: NDArray[np.float32],
) -> FidelityTerms:
    """The fidelity terms of every CTU of one coded picture.

    Args:
        frame: The uncoded picture, (H, W, 3) uint8 RGB.
        recon: Its reconstruction, same shape.
        reference_map: (H, W) the task's semantic map of ``frame``.
        decoded_map: (H, W) the same net's map of ``recon``.

    Returns:
        (rows, cols) terms: ``dsem`` and ``rise`` as float32, ``dpix`` and ``mse`` as float64.
    """
    from semrl.fidelity.distortion import semantic_distortion

    return FidelityTerms(
        dsem=pool_map(np.maximum(reference_map - decoded_map, 0), CTU_SIZE, "mean"),
        rise=pool_map(np.maximum(decoded_map - reference_map, 0), CTU_SIZE, "mean"),
        dpix=semantic_distortion(frame, recon, reference_map) / 255.0**2,
        mse=semantic_distortion(frame, recon, np.ones_like(reference_map)) / 255.0**2,
    )


def fidelity_loss(terms: FidelityTerms, reward: RewardConfig) -> NDArray[np.floating]:
    """The fidelity loss ``dsem + rise_weight * rise + pixel_weight * dpix + mse_weight * mse`` (the terms' dtype)."""
    out: NDArray[np.floating] = (
        terms.dsem + reward.rise_weight * terms.rise + reward.pixel_weight * terms.dpix + reward.mse_weight * terms.mse
    )
    return out


def ctu_rewards(
    bits: NDArray[np.float64],
    loss: NDArray[np.float64],
    ref_bits: NDArray[np.float64],
    ref_loss: NDArray[np.float64],
    lam: float,
    mean_bits: float,
    reward: RewardConfig,
) -> NDArray[np.float32]:
    """Per-CTU rewards ``-clip(((D - D_ref) / lam + rate_weight * (R - R_ref)) / mean_bits, -clip, clip)``.

    Args:
        bits: Exact bits of each CTU as coded.
        loss: Fidelity loss of each CTU as coded (:func:`fidelity_loss`).
        ref_bits: Bits of each CTU under uniform coding at the base QP.
        ref_loss: Fidelity loss of each CTU under uniform coding at the base QP.
        lam: Slope of uniform coding at the base QP (fidelity loss per bit, :func:`lagrangian`).
        mean_bits: Mean bits of a CTU at the base QP (the scale of a reward).
        reward: The weights.
    """
    cost = (loss - ref_loss) / lam + reward.rate_weight * (bits - ref_bits)
    out: NDArray[np.float32] = (-np.clip(cost / mean_bits, -reward.clip, reward.clip)).astype(np.float32)
    return out


@dataclass(frozen=True)
class RewardConfig:
    """How fidelity and bits are traded.

    Attributes:
        rate_weight: Multiplies the Lagrange multiplier; 1 is the slope of uniform coding at the
            base QP, more than 1 saves more bits, less than 1 keeps more fidelity.
        pixel_weight: Weight of the semantic-weighted squared error beside the semantic-output
            drop in the fidelity term.
        mse_weight: Weight of the plain squared error (/ 255^2) in the fidelity term: the price
            of the background, which the semantic map calls free but the task net still reads
            (objects too weak to be in the map, context). Its scale depends on the task's terms;
            ``semrl train`` sets it from a share (:func:`task_to_mse_ratio`).
        rise_weight: Weight of semantic output that appears only after coding (hallucinations);
            0 by default: on background it is mostly the task net's jitter, and counting it kept
            policies from sending background to the coarsest QP, where a detector loses little.
        clip: Per-CTU rewards are clipped to +-clip (detector jitter on one CTU must not dominate).
    """

    rate_weight: float = 1.0
    pixel_weight: float = 1.0
    mse_weight: float = 0.0
    rise_weight: float = 0.0
    clip: float = 20.0

    def __post_init__(self) -> None:
        weights = (self.pixel_weight, self.mse_weight, self.rise_weight)
        if not (self.rate_weight > 0 and min(weights) >= 0 and self.clip > 0):
            raise InvalidInputError(f"invalid reward config {self}")


def interpolated(
    table: FastTable, qp_min: int, reward: RewardConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bits and fidelity loss of every CTU at every integer QP 0..51, (52, N) each.

    Bits are interpolated linearly in log2 between table QPs and fidelity linearly, after making
    fidelity loss non-decreasing in QP; QPs below ``qp_min`` or the table take the lowest table QP.
    """
    qps = table.qps.astype(np.float64)
    n = table.bits.shape[1] * table.bits.shape[2]
    logb = np.log2(np.maximum(table.bits.reshape(len(qps), n).astype(np.float64), 1.0))
    dist = fidelity_loss(table.terms, reward).reshape(len(qps), n).astype(np.float64)
    # Fidelity cannot improve with a coarser quantiser; a dip at a higher QP is the task net's
    # jitter, which a policy would otherwise learn to chase. Keep the running maximum over QP.
    dist = np.maximum.accumulate(dist, axis=0)
    grid = np.clip(np.arange(52, dtype=np.float64), max(qp_min, qps[0]), qps[-1])
    k = np.clip(np.searchsorted(qps, grid, side="right") - 1, 0, len(qps) - 2)
    t = ((grid - qps[k]) / (qps[k + 1] - qps[k]))[:, None]
    bits = 2.0 ** (logb[k] * (1 - t) + logb[k + 1] * t)
    fid = dist[k] * (1 - t) + dist[k + 1] * t
    return bits, fid


def lagrangian(
    tables: Sequence[FastTable], qp_min: int, base_qps: tuple[int, int], reward: RewardConfig
) -> tuple[dict[int, float], dict[int, float]]:
    """Per base QP, the slope of uniform coding (fidelity loss per bit) and the mean bits per CTU.

    Both are measured over all the tables: the slope is the finite difference of total fidelity
    loss over total bits between base - 3 and base + 3.
    """
    total_b = np.zeros(52)
    total_d = np.zeros(52)
    ctus = 0
    for t in tables:
        b, d = interpolated(t, qp_min, reward)
        total_b += b.sum(axis=1)
        total_d += d.sum(axis=1)
        ctus += b.shape[1]
    lo, hi = base_qps
    slopes, mean_bits = {}, {}
    for q in range(lo, hi + 1):
        a, c = max(q - SLOPE_DELTA, qp_min), min(q + SLOPE_DELTA, QP_MAX)
        db = total_b[a] - total_b[c]
        slopes[q] = float((total_d[c] - total_d[a]) / db) if db > 0 else 0.0
        mean_bits[q] = float(total_b[q] / max(ctus, 1))
    positive = [s for s in slopes.values() if s > 0 and math.isfinite(s)]
    floor = min(positive) if positive else 1.0
    slopes = {q: s if s > 0 and math.isfinite(s) else floor for q, s in slopes.items()}
    return slopes, mean_bits


def task_to_mse_ratio(tables: Sequence[FastTable], low_qp: int, pixel_weight: float) -> float:
    """How much more the task term grows than the plain squared error, from ``low_qp`` to 51.

    Summed over the tables under uniform coding (each term made non-decreasing in QP, as the
    environment does); 0 when the squared error does not grow.
    """
    task = mse = 0.0
    for t in tables:
        k = int(np.clip(np.searchsorted(t.qps, low_qp), 0, len(t.qps) - 1))
        q = len(t.qps)
        task_term = t.terms.dsem + pixel_weight * t.terms.dpix  # the fidelity loss without the background's price
        term = np.maximum.accumulate(task_term.reshape(q, -1).astype(np.float64), axis=0)
        plain = np.maximum.accumulate(t.terms.mse.reshape(q, -1).astype(np.float64), axis=0)
        task += float(term[-1].sum() - term[k].sum())
        mse += float(plain[-1].sum() - plain[k].sum())
    return task / mse if mse > 0 else 0.0

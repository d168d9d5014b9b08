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
  reads the background (weak and missed objects, context), so it is not free;
- ``dobj``: what the task net's own output lost, object by object (:func:`object_terms`): each
  object the net finds in the uncoded picture scores how well the net still finds it after coding
  (the share of the IoU thresholds 0.50..0.95 of mAP50-95 the best same-class detection passes,
  times the square root of its confidence relative to the reference's, capped at 1), and the
  object's loss ``(1 - score) / objects`` is spread over the CTUs its box covers. For a
  classifier, the drop of the reference class's probability (relative), spread over the CTUs by
  the reference Grad-CAM. Box precision, not just presence, counts; the top of the curve is 0;
- ``fobj``: the net's output that coding created: detections that match no reference object
  (IoU under 0.5), their confidence spread over their boxes' CTUs and divided by the reference's
  object count; for a classifier, the rise of the strongest rival class's probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE, QP_MAX, ctu_grid, pool_map
from semrl.errors import InvalidInputError
from semrl.fidelity.detection import same_class_iou
from semrl.semantics.maps import TaskOutput

TERM_NAMES = ("dsem", "rise", "dpix", "mse", "dobj", "fobj")
"""The fidelity terms, in :class:`FidelityTerms` order."""

SLOPE_DELTA = 3  # QP half-width of the finite difference that measures the uniform curve's slope

IOU_THRESHOLDS = 0.5 + 0.05 * np.arange(10)
"""The IoU thresholds of mAP50-95, at which an object's detection after coding is graded."""

CONF_EXPONENT = 0.5
"""How much a detection's confidence, relative to the reference's, weighs in an object's grade (0: none)."""

FALSE_IOU = 0.5
"""A detection after coding that overlaps no same-class reference object this much is a false one."""


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
        dobj: The task output's loss, object by object.
        fobj: Task output that coding created (false objects, rival classes).
    """

    dsem: NDArray[np.floating]
    rise: NDArray[np.floating]
    dpix: NDArray[np.floating]
    mse: NDArray[np.floating]
    dobj: NDArray[np.floating]
    fobj: NDArray[np.floating]

    def astype(self, dtype: type[np.floating]) -> FidelityTerms:
        """The terms as ``dtype`` arrays."""
        return FidelityTerms(*(np.asarray(getattr(self, name)).astype(dtype) for name in TERM_NAMES))


def fidelity_terms(
    frame: NDArray[np.uint8],
    recon: NDArray[np.uint8],
    reference_map: NDArray[np.float32],
    decoded_map: NDArray[np.float32],
    reference_output: TaskOutput | None = None,
    decoded_output: TaskOutput | None = None,
    object_weights: NDArray[np.floating] | None = None,
) -> FidelityTerms:
    """The fidelity terms of every CTU of one coded picture.

    Args:
        frame: The uncoded picture, (H, W, 3) uint8 RGB.
        recon: Its reconstruction, same shape.
        reference_map: (H, W) the task's semantic map of ``frame``.
        decoded_map: (H, W) the same net's map of ``recon``.
        reference_output: The task net's output on ``frame`` (None: ``dobj`` and ``fobj`` are 0).
        decoded_output: Its output on ``recon``.
        object_weights: Weight of each reference object's loss in ``dobj`` (None: ``1 / objects``,
            see :func:`object_terms`).

    Returns:
        (rows, cols) terms: ``dsem``, ``rise``, ``dobj`` and ``fobj`` as float32, ``dpix`` and
        ``mse`` as float64.
    """
    from semrl.fidelity.distortion import semantic_distortion

    if reference_output is None or decoded_output is None:
        zeros = np.zeros(ctu_grid(reference_map.shape[1], reference_map.shape[0]), np.float32)
        dobj, fobj = zeros, zeros.copy()
    else:
        dobj, fobj = object_terms(reference_output, decoded_output, reference_map, object_weights)
    return FidelityTerms(
        dsem=pool_map(np.maximum(reference_map - decoded_map, 0), CTU_SIZE, "mean"),
        rise=pool_map(np.maximum(decoded_map - reference_map, 0), CTU_SIZE, "mean"),
        dpix=semantic_distortion(frame, recon, reference_map) / 255.0**2,
        mse=semantic_distortion(frame, recon, np.ones_like(reference_map)) / 255.0**2,
        dobj=dobj,
        fobj=fobj,
    )


def box_shares(boxes: NDArray[np.floating], shape: tuple[int, int], block: int = CTU_SIZE) -> NDArray[np.float64]:
    """The share of each box's area (clipped to the picture) in each block, (N, rows, cols), summing to 1 per box."""
    h, w = shape
    rows, cols = ctu_grid(w, h, block)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, x1 = np.clip(b[:, 0], 0, w), np.clip(b[:, 2], 0, w)
    y0, y1 = np.clip(b[:, 1], 0, h), np.clip(b[:, 3], 0, h)

    def overlap(lo: NDArray[np.float64], hi: NDArray[np.float64], n: int) -> NDArray[np.float64]:
        edges = np.arange(n + 1, dtype=np.float64) * block
        out: NDArray[np.float64] = np.clip(
            np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1]), 0, None
        )
        return out

    area = overlap(y0, y1, rows)[:, :, None] * overlap(x0, x1, cols)[:, None, :]
    total = area.sum(axis=(1, 2), keepdims=True)
    # A degenerate box (no area inside the picture) sits in the block of its centre.
    for i in np.flatnonzero(total.reshape(-1) <= 0):
        r = min(int((y0[i] + y1[i]) / 2 // block), rows - 1)
        c = min(int((x0[i] + x1[i]) / 2 // block), cols - 1)
        area[i, r, c] = 1.0
    out: NDArray[np.float64] = area / np.maximum(area.sum(axis=(1, 2), keepdims=True), 1e-12)
    return out


def object_grades(reference: TaskOutput, decoded: TaskOutput) -> NDArray[np.float64]:
    """How well each reference object is still found after coding, in 0..1 (1: as in the reference).

    The best same-class detection's share of the mAP50-95 IoU thresholds it passes, times
    ``min(conf / reference conf, 1) ** CONF_EXPONENT``.
    """
    if len(reference.boxes) == 0:
        return np.zeros(0)
    if len(decoded.boxes) == 0:
        return np.zeros(len(reference.boxes))
    iou = same_class_iou(decoded.boxes, decoded.cls, reference.boxes, reference.cls)
    passed = (iou[:, :, None] >= IOU_THRESHOLDS[None, None, :]).mean(axis=2)
    ratio = np.minimum(decoded.conf[:, None].astype(np.float64) / np.maximum(reference.conf[None, :], 1e-6), 1.0)
    grades: NDArray[np.float64] = (passed * ratio**CONF_EXPONENT).max(axis=0)
    return grades


def object_terms(
    reference: TaskOutput,
    decoded: TaskOutput,
    reference_map: NDArray[np.floating],
    weights: NDArray[np.floating] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-CTU ``dobj`` and ``fobj`` of one coded picture (see the module docstring).

    Args:
        reference: The task net's output on the uncoded picture.
        decoded: Its output on the reconstruction.
        reference_map: (H, W) the reference semantic map (its size is the picture's; a
            classifier's loss is spread over the CTUs by it).
        weights: (objects,) weight of each reference object's loss (None: ``1 / objects``, each
            picture's objects share a weight of 1; :func:`class_object_weights` weighs them as the
            class-mean mAP does). Boxes only; a classifier's single loss is not weighted.

    Returns:
        (rows, cols) float32 ``dobj`` and ``fobj``; with the default weights the sum of ``dobj``
        over a picture is in 0..1.
    """
    shape = (int(reference_map.shape[0]), int(reference_map.shape[1]))
    grid = ctu_grid(shape[1], shape[0])
    if reference.probs is not None:
        if decoded.probs is None or decoded.probs.shape != reference.probs.shape:
            raise InvalidInputError("object_terms: a classifier's outputs must both carry probabilities of one size")
        weights = pool_map(np.asarray(reference_map, np.float64), CTU_SIZE, "mean").astype(np.float64)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(grid, 1.0 / (grid[0] * grid[1]))
        top = int(np.argmax(reference.probs))
        ref_top = max(float(reference.probs[top]), 1e-6)
        lost = max(ref_top - float(decoded.probs[top]), 0.0) / ref_top
        rival = np.delete(decoded.probs, top).max(initial=0.0) - np.delete(reference.probs, top).max(initial=0.0)
        return (weights * lost).astype(np.float32), (weights * max(float(rival), 0.0)).astype(np.float32)
    n = max(len(reference.boxes), 1)
    dobj = np.zeros(grid)
    if len(reference.boxes):
        dobj = graded_object_loss(object_grades(reference, decoded)[None], reference.boxes, shape, weights)[0]
    fobj = np.zeros(grid)
    if len(decoded.boxes):
        if len(reference.boxes):
            iou = same_class_iou(decoded.boxes, decoded.cls, reference.boxes, reference.cls)
            false = iou.max(axis=1) < FALSE_IOU
        else:
            false = np.ones(len(decoded.boxes), bool)
        if false.any():
            shares = box_shares(decoded.boxes[false], shape)
            fobj = np.einsum("f,frc->rc", decoded.conf[false].astype(np.float64), shares) / n
    return dobj.astype(np.float32), fobj.astype(np.float32)


def graded_object_loss(
    grades: NDArray[np.floating],
    boxes: NDArray[np.floating],
    shape: tuple[int, int],
    weights: NDArray[np.floating] | None = None,
) -> NDArray[np.float64]:
    """``dobj`` from the objects' grades: each object's weighted loss spread over the CTUs its box covers.

    Args:
        grades: (Q, objects) :func:`object_grades` of the reference objects in Q codings.
        boxes: (objects, 4) the reference objects' boxes, xyxy pixels.
        shape: (H, W) of the picture.
        weights: (objects,) weight of each object's loss; None: ``1 / objects``.

    Returns:
        (Q, rows, cols) float64.
    """
    g = np.asarray(grades, np.float64)
    w = np.full(len(boxes), 1.0 / max(len(boxes), 1)) if weights is None else np.asarray(weights, np.float64)
    if g.ndim != 2 or g.shape[1] != len(boxes) or w.shape != (len(boxes),):
        raise InvalidInputError(f"grades {g.shape} and {len(w)} object weights for {len(boxes)} objects")
    if not len(boxes):
        return np.zeros((len(g), *ctu_grid(shape[1], shape[0])))
    out: NDArray[np.float64] = np.einsum("qo,orc->qrc", (1.0 - g) * w[None, :], box_shares(boxes, shape))
    return out


def class_object_weights(references: Sequence[TaskOutput]) -> list[NDArray[np.float64]]:
    """Each reference object's weight as one missed object weighs in the class-mean mAP of the set.

    Missing one of the ``n_c`` objects of class ``c`` lowers that class's AP by about ``1 / n_c``,
    and the class-mean mAP averages the ``C`` classes present, so an object weighs ``1 / (C n_c)``;
    scaled by the number of pictures so that a picture's objects weigh 1 on average, as with the
    default ``1 / objects``. The default weighs every picture alike, which the metric does not:
    measured on coco-det train labels, a tenth of the pictures weighs under a quarter of the default
    and another tenth over twice it (pictures of many objects, or of rare classes, count more).

    Args:
        references: The task net's output on each uncoded picture of the set (boxes; a
            classifier's outputs are refused).

    Returns:
        One (objects,) array per picture.
    """
    if any(r.probs is not None for r in references):
        raise InvalidInputError("class weights are for objects with boxes (detection, segmentation), not a classifier")
    classes = np.concatenate([np.asarray(r.cls, np.int64).reshape(-1) for r in references] or [np.zeros(0, np.int64)])
    if not len(classes):
        return [np.zeros(0) for _ in references]
    kinds, counts = np.unique(classes, return_counts=True)
    per_class = dict(zip(kinds.tolist(), counts.tolist(), strict=True))
    scale = len(references) / len(kinds)
    return [
        np.array([scale / per_class[int(c)] for c in np.asarray(r.cls).reshape(-1)], np.float64) for r in references
    ]


def fidelity_loss(terms: FidelityTerms, reward: RewardConfig) -> NDArray[np.floating]:
    """The fidelity loss, the terms weighted by ``reward`` (the terms' dtype).

    ``semantic_weight * dsem + rise_weight * rise + pixel_weight * dpix + mse_weight * mse
    + object_weight * dobj + false_weight * fobj``.
    """
    out: NDArray[np.floating] = (
        reward.semantic_weight * terms.dsem
        + reward.rise_weight * terms.rise
        + reward.pixel_weight * terms.dpix
        + reward.mse_weight * terms.mse
    )
    if reward.object_weight:
        out = out + reward.object_weight * terms.dobj
    if reward.false_weight:
        out = out + reward.false_weight * terms.fobj
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
        semantic_weight: Weight of the semantic map's drop ``dsem``.
        object_weight: Weight of the object-by-object loss of the task output ``dobj``; 0 in
            policies trained before it existed.
        false_weight: Weight of the task output coding created ``fobj`` (false detections).
    """

    rate_weight: float = 1.0
    pixel_weight: float = 1.0
    mse_weight: float = 0.0
    rise_weight: float = 0.0
    clip: float = 20.0
    semantic_weight: float = 1.0
    object_weight: float = 0.0
    false_weight: float = 0.0

    def __post_init__(self) -> None:
        weights = (
            self.pixel_weight, self.mse_weight, self.rise_weight, self.semantic_weight, self.object_weight,
            self.false_weight,
        )  # fmt: skip
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


def task_to_mse_ratio(tables: Sequence[FastTable], low_qp: int, reward: RewardConfig) -> float:
    """How much more the task term grows than the plain squared error, from ``low_qp`` to 51.

    The task term is the fidelity loss of ``reward`` without the background's price (``mse``) and
    without ``rise``. Summed over the tables under uniform coding (each term made non-decreasing in
    QP, as the environment does); 0 when the squared error does not grow.
    """
    from dataclasses import replace

    task_only = replace(reward, mse_weight=0.0, rise_weight=0.0)
    task = mse = 0.0
    for t in tables:
        k = int(np.clip(np.searchsorted(t.qps, low_qp), 0, len(t.qps) - 1))
        q = len(t.qps)
        task_term = fidelity_loss(t.terms, task_only)
        term = np.maximum.accumulate(task_term.reshape(q, -1).astype(np.float64), axis=0)
        plain = np.maximum.accumulate(t.terms.mse.reshape(q, -1).astype(np.float64), axis=0)
        task += float(term[-1].sum() - term[k].sum())
        mse += float(plain[-1].sum() - plain[k].sum())
    return task / mse if mse > 0 else 0.0

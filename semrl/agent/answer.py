"""A picture policy's picture-level decision: its whole map shifted, each shift coded on trial and read by the task net.

A task net's answer depends on how many blocks a picture can coarsen together, not on any one
block's QP (crediting each CTU with its share of the live loss taught the per-CTU policy to coarsen
every CTU and lose the picture: ``benchmarks/results/classification-live``). The answer can instead
be checked, since the encoder holds the source and the task net: the picture is coded on trial with
the policy's map shifted by whole steps of ``step`` QP (:class:`AnswerSearch`), the net reads each
trial's reconstruction (what a decoder shows: x265 is deterministic), and one trial is kept.

- Keep the answer (:func:`keep_answer`, classification): the cheapest trial whose answer is the
  one the policy's own map gives (a classifier's top-1 class; a detector's objects, compared by
  :func:`same_objects`). Top-1 is a function of the class, so the kept coding scores what the map
  scores with as many bits or fewer. The shift is bounded so that the base QP keeps its meaning
  (unbounded, most pictures keep their class at QP 51 and the rate no longer follows the base QP).
- Trade (:func:`trade_answer`, detection and segmentation): mAP50-95 also reads box precision and
  the objects below the threshold, and one picture's test cannot say whether its bits would buy
  more elsewhere. A set's mAP at a given total of bits is highest when every picture trades score
  for bits at the same rate, so the trial of most ``score - w * bpp`` is kept: its score the
  trial's mAP50-95 against the net's own objects on the uncoded source (:func:`object_score`, no
  label), ``w`` doubling every :data:`TRADE_DOUBLING` QP of the base QP (:func:`trade_weight`).
  Pictures whose objects survive coarse coding give their bits to those whose objects fall apart.
  With ``roi``, the ROI recipe's maps of the policy's own objects are traded beside the learned
  map, so each picture takes whichever shape buys its score more cheaply (the learned map traded
  alone was no better than ROI traded alone).

How each setting was chosen on train pictures and judged on others, with the figures:
``benchmarks/results/classification-answer``, ``detection-answer``, ``detection-trade``,
``segmentation-trade``, ``detection-trade-background`` (a background stage: not adopted) and
``detection-trade-roi``; the README's section on training. The cost is an encode and a pass of the
net per trial; the stream is tied to this net's answer (another net may answer otherwise).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from semrl.codec import QP_MAX, Encoder, Gop
from semrl.errors import InvalidInputError
from semrl.fidelity.detection import PSEUDO_GT_CONF
from semrl.policy import PolicyInput, clip_offsets

Coder = Callable[[NDArray[np.int32]], tuple[int, NDArray[np.uint8]]]
"""Codes the picture with offsets from its base QP: its bits and the RGB picture a decoder shows."""

A = TypeVar("A")
"""A task net's answer on a picture (a class id, or objects)."""

Objects = tuple[NDArray[np.float32], NDArray[np.int64]]
"""A detector's answer: xyxy boxes (N, 4) and their classes (N,)."""

ANSWERED_TASKS = ("classification", "detection")
"""The tasks whose policies may search for the coarsest coding that keeps the net's answer."""

TRADED_TASKS = ("detection", "segmentation")
"""The tasks whose policies may trade their objects' score against bits (:func:`trade_answer`)."""

OBJECT_MARGIN = 8
"""Pixels a detector's boxes are grown by before the blocks they touch are kept out of a background shift."""

ROI_DILATION = 16
"""Pixels the objects are grown by before the blocks they touch are fine in a trade's ROI map (as the ROI recipe's)."""

TRADE_QP = 22
"""The base QP at which a trade's score per bpp is its ``trade``."""

TRADE_DOUBLING = 6
"""QPs over which a trade's score per bpp doubles (the best of 3, 6 and no change on coco-det train 64-95)."""

TOP_RAMP = 5
"""QPs above :data:`TRADE_QP` over which a trade's ``top`` factor rises linearly to 1 (none at base QP 27 on)."""


@dataclass(frozen=True)
class AnswerSearch:
    """How far the answer search shifts a picture's map, and in what steps.

    Attributes:
        step: QP steps between two trials.
        max_trials: Most trials coarser than the policy's map.
        iou: A detector's objects on two codings are the same answer when each has one of its
            class on the other at this IoU or more (:func:`same_objects`); unused for a classifier.
        background: Shift only the blocks no object of the policy's map touches (a detector's;
            its boxes grown by :data:`OBJECT_MARGIN`), not the whole map. With a trade, a second
            stage after the whole map's: those blocks of the kept trial shifted coarser on trial
            (``step`` apart, at most ``max_trials``), kept by the same rule.
        trade: A detector's or segmenter's rule instead of keeping the answer: the trial of
            most ``score - w * bpp`` is kept, its score the trial's mAP50-95 against the net's
            objects on the source, ``w`` this at :data:`TRADE_QP` doubling every
            :data:`TRADE_DOUBLING` QP (:func:`trade_answer`); None: keep the answer.
        finer: Trials finer than the policy's map, ``step`` apart (the trade only).
        background_from: The lowest base QP at which a trade's background stage runs (below it
            only the whole map is traded, which keeps the top of the rate-accuracy curve).
        roi: A trade's further maps, each traded beside the policy's at the same shifts: for each
            strength ``D`` here, the blocks the policy's objects touch (grown by
            :data:`ROI_DILATION`) ``D`` QP finer than the base QP, the others ``D`` coarser;
            empty: the policy's map alone. A config may give one strength as a number.
        target_conf: A trade's score is read against the net's finds on the source at this
            confidence or more (:func:`object_score`).
        top: A trade's weight at :data:`TRADE_QP` and below is multiplied by this (0: the trial
            of best score), the factor rising linearly to 1 over :data:`TOP_RAMP` QP above it, so
            the finest operating points sell less of their accuracy for bits (1: no change).
    """

    step: int = 3
    max_trials: int = 4
    iou: float = 0.9
    background: bool = False
    trade: float | None = None
    finer: int = 0
    background_from: int = 0
    roi: tuple[int, ...] = ()
    target_conf: float = PSEUDO_GT_CONF
    top: float = 1.0

    def __post_init__(self) -> None:
        if not (1 <= self.step <= QP_MAX and self.max_trials >= 1 and 0.0 < self.iou <= 1.0):
            raise InvalidInputError(
                f"the answer search needs step in 1..{QP_MAX}, max_trials >= 1 and iou in (0, 1], got step "
                f"{self.step}, max_trials {self.max_trials}, iou {self.iou}"
            )
        if self.trade is not None and not (math.isfinite(self.trade) and self.trade > 0):
            raise InvalidInputError(f"the answer search's trade must be a positive number, got {self.trade}")
        if self.finer < 0 or (self.finer and self.trade is None):
            raise InvalidInputError(
                f"the answer search's finer trials ({self.finer}) need a trade: keeping the answer never keeps one"
            )
        if not 0 <= self.background_from <= QP_MAX:
            raise InvalidInputError(
                f"the answer search's background_from must be in 0..{QP_MAX}, got {self.background_from}"
            )
        if self.background_from and not (self.background and self.trade is not None):
            raise InvalidInputError(
                f"the answer search's background_from ({self.background_from}) is for a trade's background stage: "
                "set background and trade too"
            )
        if (
            not isinstance(self.roi, tuple)
            or len(set(self.roi)) != len(self.roi)
            or not all(1 <= d <= QP_MAX for d in self.roi)
            or (self.roi and self.trade is None)
        ):
            raise InvalidInputError(
                f"the answer search's roi must be distinct strengths in 1..{QP_MAX} and needs a trade, got roi "
                f"{self.roi!r} with trade {self.trade}"
            )
        if not 0.0 < self.target_conf <= 1.0 or (self.target_conf != PSEUDO_GT_CONF and self.trade is None):
            raise InvalidInputError(
                f"the answer search's target_conf must be in (0, 1] and, other than {PSEUDO_GT_CONF}, needs a trade; "
                f"got {self.target_conf} with trade {self.trade}"
            )
        if not (0.0 <= self.top <= 1.0) or (self.top != 1.0 and self.trade is None):
            raise InvalidInputError(
                f"the answer search's top must be in 0..1 and, other than 1, needs a trade; got {self.top} with trade "
                f"{self.trade}"
            )

    @property
    def tag(self) -> str:
        """Names the search in fingerprints."""
        tag = f"answer={self.step}x{self.max_trials}" + ("" if self.iou == 0.9 else f":iou{self.iou:g}")
        tag += ":background" if self.background else ""
        tag += "" if self.trade is None else f":trade{self.trade:g}-{self.finer}"
        tag += f"-from{self.background_from}" if self.background_from else ""
        tag += ":roi" + "+".join(map(str, self.roi)) if self.roi else ""
        tag += "" if self.target_conf == PSEUDO_GT_CONF else f":target{self.target_conf:g}"
        return tag + ("" if self.top == 1.0 else f":top{self.top:g}")

    def shifts(self, offsets: NDArray[np.int32], base_qp: int, where: NDArray[np.bool_] | None = None) -> list[int]:
        """The shifts tried besides the map's own: ``finer`` finer ones, then coarser ones, ``step`` apart.

        At most ``max_trials`` coarser ones, none past every shifted block at QP 51, and no finer
        one past every shifted block at QP 0. ``where``: the blocks shifted (None: all); none
        shifts nothing.
        """
        shifted = offsets if where is None else offsets[where]
        if not shifted.size:
            return []
        finest, coarsest = base_qp + int(np.min(shifted)), base_qp + int(np.max(shifted))
        out = [-k * self.step for k in range(self.finer, 0, -1) if coarsest - (k - 1) * self.step > 0]
        coarser: list[int] = []
        while len(coarser) < self.max_trials and finest + (coarser[-1] if coarser else 0) < QP_MAX:
            coarser.append((len(coarser) + 1) * self.step)
        return out + coarser

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the trade's keys only with a trade, so older configs read the same).

        ``roi``: one strength as a number (as configs wrote it before there could be several), several
        as a list.
        """
        d = asdict(self)
        if self.trade is None:
            del d["trade"], d["finer"]
        if not self.background_from:
            del d["background_from"]
        if self.target_conf == PSEUDO_GT_CONF:
            del d["target_conf"]
        if self.top == 1.0:
            del d["top"]
        if not self.roi:
            del d["roi"]
        elif len(self.roi) == 1:
            d["roi"] = self.roi[0]
        else:
            d["roi"] = list(self.roi)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> AnswerSearch:
        """Inverse of :meth:`to_dict` (a config's ``answer``; missing keys take the defaults).

        Raises:
            TypeError: An unknown key.
            InvalidInputError: A value of the wrong kind or out of range.
        """
        known = {
            "step", "max_trials", "iou", "background", "trade", "finer", "background_from", "roi", "target_conf", "top",
        }  # fmt: skip
        unknown = set(d) - known
        if unknown:
            raise TypeError(f"unknown answer search keys {sorted(unknown)}")
        defaults = AnswerSearch()
        trade = d.get("trade")
        roi = d.get("roi", defaults.roi)
        strengths = tuple(roi) if isinstance(roi, list | tuple) else (roi,) if roi else ()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in strengths):
            raise InvalidInputError(f"the answer search's roi must be a whole number or a list of them, got {roi!r}")

        def number(key: str, kind: type[int] | type[float]) -> Any:
            value = d.get(key, getattr(defaults, key))
            whole = isinstance(value, int) and not isinstance(value, bool)
            if not (whole or (kind is float and isinstance(value, float))):
                what = "a whole number" if kind is int else "a number"
                raise InvalidInputError(f"the answer search's {key} must be {what}, got {value!r}")
            return kind(value)

        return AnswerSearch(
            number("step", int), number("max_trials", int), number("iou", float),
            bool(d.get("background", defaults.background)), None if trade is None else number("trade", float),
            number("finer", int), number("background_from", int), strengths, number("target_conf", float),
            number("top", float),
        )  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """One trial coding: the shift from the policy's map, its bits and the net's answer.

    ``background``: a trade's background stage, the further shift of the blocks no object touches.
    ``roi``: the strength of the trade's ROI map this is a trial of (:attr:`AnswerSearch.roi`); 0:
    the policy's map.
    """

    shift: int
    bits: int
    answer: Any
    background: int = 0
    roi: int = 0

    def describe(self) -> str:
        """The trial in a few words: its map (``map``, or ``roi-dD``) and shift, e.g. ``roi-d8 +3``."""
        name = "map" if self.roi == 0 else f"roi-d{self.roi}"
        return f"{name} {self.shift:+d}" + (f", background {self.background:+d}" if self.background else "")


class Answer(NamedTuple):
    """What an answer search keeps: the offsets coded, every trial (the policy's map first) and the kept one."""

    offsets: NDArray[np.int32]
    trials: list[Trial]
    kept: Trial


def _code_trials(
    search: AnswerSearch,
    maps: dict[int, NDArray[np.int32]],
    base_qp: int,
    code: Coder,
    read: Callable[[NDArray[np.uint8]], Any],
    mask: NDArray[np.bool_],
) -> tuple[list[Trial], int]:
    """Every trial coding, read by ``read``: each map, then ``search``'s shifts of its ``mask`` blocks, map by map.

    ``maps``: by ROI strength, 0 the policy's map (a trial's ``roi``). One pipeline codes them all,
    so the net reads each trial while the next is coded.

    Returns:
        The trials and the pixels of the picture shown.
    """
    tried = [(d, shift) for d, m in maps.items() for shift in (0, *search.shifts(m, base_qp, mask))]
    read_out = _code_each(code, [(maps[d] + shift * mask).astype(np.int32) for d, shift in tried], read)
    trials = [Trial(shift, bits, answer, roi=d) for (d, shift), (bits, answer, _) in zip(tried, read_out, strict=True)]
    return trials, read_out[0][2]


def _code_each(
    code: Coder, maps: list[NDArray[np.int32]], read: Callable[[NDArray[np.uint8]], Any]
) -> list[tuple[int, Any, int]]:
    """Each map coded by ``code`` and read by ``read``, in order: its bits, the answer and the pixels shown.

    The next map is coded while the net reads the last coding (x265 and torch both leave the GIL):
    one coding thread, so the codings run one at a time and in order, as they would in a loop, and
    one coding ahead of the reads, so at most two reconstructions are held at once.
    """
    out: list[tuple[int, Any, int]] = []
    pending = iter(maps)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semrl-trial")
    try:
        first = next(pending, None)
        coding = None if first is None else pool.submit(code, first)
        while coding is not None:
            bits, shown = coding.result()
            following = next(pending, None)
            coding = None if following is None else pool.submit(code, following)
            out.append((bits, read(shown), shown.shape[0] * shown.shape[1]))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def keep_answer(
    search: AnswerSearch,
    offsets: NDArray[np.int32],
    base_qp: int,
    code: Coder,
    answer: Callable[[NDArray[np.uint8]], A],
    same: Callable[[A, A], bool] = operator.eq,
    where: NDArray[np.bool_] | None = None,
) -> Answer:
    """The policy's map shifted to the cheapest trial coding that keeps the net's answer.

    Args:
        search: The shifts to try.
        offsets: The policy's offsets from ``base_qp`` (per CTU or per 16x16 block).
        base_qp: The picture's base QP.
        code: Codes the picture with offsets from ``base_qp`` (:func:`trial_coder`).
        answer: The task net's answer on a coded picture.
        same: Whether two answers are the same (default: equal).
        where: The blocks shifted, the shape of ``offsets``; None: all of them.

    Returns:
        The kept offsets (``offsets`` plus one shift where shifted), every trial (the policy's map
        first) and the kept one.
    """
    mask = np.ones(offsets.shape, bool) if where is None else where
    trials, _ = _code_trials(search, {0: offsets}, base_qp, code, answer, mask)
    kept = min((t for t in trials if same(t.answer, trials[0].answer)), key=lambda t: (t.bits, t.shift))
    return Answer((offsets + kept.shift * mask).astype(np.int32), trials, kept)


def trade_weight(search: AnswerSearch, base_qp: int) -> float:
    """Score per bit per pixel at ``base_qp``: ``trade`` at :data:`TRADE_QP`, doubling every :data:`TRADE_DOUBLING` QP.

    At :data:`TRADE_QP` and below it is further multiplied by ``top``, the factor rising linearly
    to 1 at :data:`TOP_RAMP` QP above it.

    Raises:
        InvalidInputError: The search keeps the answer (no trade).
    """
    if search.trade is None:
        raise InvalidInputError("this answer search keeps the answer; it has no trade")
    rise = min(max(base_qp - TRADE_QP, 0) / TOP_RAMP, 1.0)
    factor = search.top + (1.0 - search.top) * rise
    return float(search.trade * 2.0 ** ((base_qp - TRADE_QP) / TRADE_DOUBLING) * factor)


def trade_answer(
    search: AnswerSearch,
    offsets: NDArray[np.int32],
    base_qp: int,
    code: Coder,
    score: Callable[[NDArray[np.uint8]], float],
    where: NDArray[np.bool_] | None = None,
    roi_maps: Mapping[int, NDArray[np.int32]] | None = None,
) -> Answer:
    """The policy's map shifted to the trial coding of most score less its rate's worth at ``base_qp``.

    With ``roi_maps`` (:attr:`AnswerSearch.roi`), those maps' shifts are coded on trial too and the
    best of all the maps' trials is kept. With ``search.background`` (from ``search.background_from``)
    and ``where``, a second stage then shifts the ``where`` blocks of the kept trial coarser on
    trial and keeps, by the same rule, the best of those and the kept trial.

    Args:
        search: The shifts to try and the trade (:func:`trade_weight`).
        offsets: The policy's offsets from ``base_qp``.
        base_qp: The picture's base QP.
        code: Codes the picture with offsets from ``base_qp`` (:func:`trial_coder`).
        score: The task score, in 0..1, of a coded picture (:func:`object_score`).
        where: The blocks no object touches, the shape of ``offsets`` (the background stage's).
        roi_maps: Further maps traded beside ``offsets`` (the ROI recipe's), by their strength (a
            positive number), each the shape of ``offsets``.

    Returns:
        The kept offsets, every trial (its answer the score: the policy's map first, then the ROI
        maps' in their order, then the background stage's) and the kept one.
    """
    weight = trade_weight(search, base_qp)
    roi_maps = roi_maps or {}
    for d, m in roi_maps.items():
        if d < 1 or m.shape != offsets.shape:
            raise InvalidInputError(
                f"the ROI map of strength {d} (a positive number) has grid {m.shape}, not the policy's {offsets.shape}"
            )
    maps = {0: offsets, **roi_maps}
    trials, pixels = _code_trials(search, maps, base_qp, code, score, np.ones(offsets.shape, bool))

    def worth(t: Trial) -> tuple[float, int]:
        return t.answer - weight * t.bits / pixels, -t.bits

    kept = max(trials, key=worth)
    traded = (maps[kept.roi] + kept.shift).astype(np.int32)
    if where is None or not search.background or base_qp < search.background_from:
        return Answer(traded, trials, kept)
    shifts = [s for s in search.shifts(traded, base_qp, where) if s > 0]  # the background only goes coarser
    read_out = _code_each(code, [(traded + shift * where).astype(np.int32) for shift in shifts], score)
    stage = [
        kept,
        *(
            Trial(kept.shift, bits, answer, shift, kept.roi)
            for shift, (bits, answer, _) in zip(shifts, read_out, strict=True)
        ),
    ]
    trials += stage[1:]
    kept = max(stage, key=worth)
    return Answer((traded + kept.background * where).astype(np.int32), trials, kept)


def object_score(
    net: Any, source: NDArray[np.uint8], masks: bool = False, conf: float = PSEUDO_GT_CONF
) -> Callable[[NDArray[np.uint8]], float]:
    """A coded picture's mAP50-95 (0..1) against the net's objects on its source, as the benchmark scores.

    The objects are the net's finds on ``source`` at confidence ``conf`` or more; each coded
    picture's finds, at the settings the benchmark scores with, are matched against them. A source
    with no object scores every coding 1: nothing on it can be lost, so the trade keeps the cheapest.

    Args:
        net: The detector or segmenter (:class:`semrl.semantics.yolo.YoloNet`).
        source: The uncoded RGB picture, at the size shown.
        masks: Match masks (mask mAP50-95, a segmenter's), not boxes.
        conf: The confidence of the finds taken as objects (:attr:`AnswerSearch.target_conf`).
    """
    from semrl.fidelity.detection import average_precision, match_frame, pseudo_target
    from semrl.fidelity.segmentation import MASK_SCORE
    from semrl.semantics.yolo import InferenceSettings

    settings = MASK_SCORE if masks else InferenceSettings()
    target = pseudo_target(net.detect([source], settings, color="rgb")[0], conf)

    def score(shown: NDArray[np.uint8]) -> float:
        if not len(target.cls):
            return 1.0
        found = net.detect([shown], settings, color="rgb")[0]
        return float(average_precision([match_frame(found, target, "mask" if masks else "box")]).map50_95)

    return score


def same_objects(a: Objects, b: Objects, iou: float) -> bool:
    """Whether two codings' objects are the same answer: as many, each with one of its class on the other at ``iou``."""
    from semrl.fidelity.detection import same_class_iou

    (boxes_a, cls_a), (boxes_b, cls_b) = a, b
    if len(boxes_a) != len(boxes_b):
        return False
    if not len(boxes_a):
        return True
    overlap = same_class_iou(boxes_a, cls_a, boxes_b, cls_b)
    return bool((overlap.max(axis=1) >= iou).all() and (overlap.max(axis=0) >= iou).all())


def trial_coder(inputs: PolicyInput) -> Coder | None:
    """Codes ``inputs.picture`` as the caller will (``inputs.coding``), each trial with a fresh encoder.

    None when the frame cannot be coded on trial as it will be: no coding or picture given, rate
    control (CRF, ABR), or a frame that is not its clip's first under a GOP other than all-intra
    (it leans on the frames before it). Callers give a coding only for frames coded on their own
    (:class:`semrl.policy.TrialCoding`).
    """
    coding, picture = inputs.coding, inputs.picture
    if coding is None or picture is None:
        return None
    config = coding.config
    if config.crf is not None or config.bitrate is not None:
        return None
    if config.gop != Gop.INTRA and inputs.frame_index != 0:
        return None
    h, w = coding.shape
    base = int(inputs.base_qp)

    def code(offsets: NDArray[np.int32]) -> tuple[int, NDArray[np.uint8]]:
        with Encoder(config) as encoder:
            frames = encoder.encode(picture, clip_offsets(offsets, base, config.qp)) + encoder.flush()
        if len(frames) != 1:
            raise RuntimeError(f"an encode of one picture returned {len(frames)} pictures")
        shown: NDArray[np.uint8] = frames[0].recon.to_rgb()[:h, :w]
        return int(frames[0].bits), shown

    return code

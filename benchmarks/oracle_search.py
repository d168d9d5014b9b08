r"""The real limit of per-CTU (or per-16x16-block) QP maps on detection: a greedy search, real detector in the loop.

An upper-bound-style benchmark policy, not a method: it reads the pictures' own labels, and the
set of pictures it is benchmarked on. mAP50-95 is pooled over the set (each detection is ranked by
confidence against every picture's), so a picture's map is judged by what it does to the set's
score, not to its own: a first version that kept each picture's own mAP kept the pictures'
scores and still lost 8 points of the set's mAP (confidences fell), reaching only -18 % against A1.

1. Every picture of the set is coded uniformly at each base QP of the benchmark (22, 27, ..., 51)
   and its detections matched against its labels (:func:`semrl.fidelity.detection.match_frame`).
2. Per picture, the CTUs are grouped by the labelled objects they touch (each CTU goes to the
   smallest object touching its box grown by 8 px; more than ``max_groups - 2`` objects are
   grouped by COCO size class) and the background (a ring of one CTU around the objects, and the
   rest). With ``--block 16`` the same is done on the grid of 16x16 blocks (x265's quantisation
   groups), which hugs the objects; the ring stays one CTU (64 px) wide. From every group at QP
   51, the search repeatedly lowers the QP of one group by one level (51, 47, 42, 37, 32, 27, 22)
   and keeps the move that raises the set's mAP50-95 (this picture coded with the candidate map,
   the others uniformly at QP :data:`SEARCH_BASE`) most per extra bit, until every group is at
   22. Each candidate is coded by the patched x265 (all-intra, the benchmark's preset) and scored
   by the task net on the reconstruction (which FFmpeg decodes identically).
3. At base QP ``b``, the pictures are visited from the most bits to the fewest, and each takes
   the map of fewest bits on its path that keeps the set's mAP50-95 (the pictures before it with
   their chosen maps, those after it uniform at ``b``) at least at uniform coding's at ``b``, else
   stays uniform: together the maps keep the set's score (a second version chose each picture's
   map with the others uniform, and together they lost 3 points at base 22). Here every map is
   coded exactly as the benchmark will code it at ``b`` (the same per-CTU QPs at another base QP
   give x265 other pixels, and the detector another answer: a third version that chose on the
   search's own codings lost 3.3 points at base 22 in the benchmark).

Greedy, so a bound from below on what per-CTU (per-block) maps can reach.

Run the search on the benchmark's first ``--limit`` pictures (it writes the choices and makes them
the oracle's), then benchmark on the same pictures::

    python benchmarks/oracle_search.py --limit 24 --workers 2
    python benchmarks/oracle_search.py --limit 24 --workers 2 --block 16    # QPs per 16x16 block
    python benchmarks/bdrate.py --task detection --limit 24 --roi-blocks 64,16 \
        --policy oracle=benchmarks/oracle_search.py:oracle --policy oracle16=benchmarks/oracle_search.py:oracle16 \
        --policy semrl=detection --output benchmarks/results/oracle_search

The same search without the labels (``--pseudo N``) is a method, if a slow one: an
encode-time search with the detector in the loop. Each picture is judged against the net's own
finds on the uncoded picture (confidence >= 0.25) and grouped by them, among a fixed pool of
other pictures (the train split's first ``N``, each against its own finds, coded uniformly)
instead of the set it is benchmarked with, and at each base QP it takes the map of fewest bits on
its path that keeps its score among the pool at uniform coding's (:func:`choose_alone`). Every
coding is kept beside its choices (``search-<key>.codings.json``, each detection matched against
the labels too, which choose nothing) so that other rules can be judged after
(``benchmarks/results/oracle_search/pseudo_rules.py``; results in ``pseudo.md`` there)::

    python benchmarks/oracle_search.py --limit 24 --workers 2 --block 16 --pseudo 24
    python benchmarks/bdrate.py --task detection --limit 24 --roi-blocks 64,16 \
        --policy pseudo16=benchmarks/oracle_search.py:pseudo16 --policy semrl=detection

The oracle chooses on the very codings and labels the benchmark scores, so part of what it
saves is selection on the benchmark's own noise. ``--mirror DIR`` measures it out of sample: it
also writes the set's left-right mirror images (PNG, labels flipped) to ``DIR`` and searches
them; the same content coded twice gives the detector two answers with independent noise, and
``crossed16`` serves each picture the map its mirror image's search chose, mirrored
(:class:`TwinOracle`; ``own16`` serves its own, in sample). Benchmark both sets::

    python benchmarks/oracle_search.py --limit 24 --workers 2 --block 16 --mirror /tmp/mirror
    python benchmarks/bdrate.py --task detection --limit 24 --roi-blocks 64,16 \
        --policy own16=benchmarks/oracle_search.py:own16 --policy crossed16=benchmarks/oracle_search.py:crossed16
    python benchmarks/bdrate.py --task detection --data /tmp/mirror/data.yaml --limit 24 --roi-blocks 64,16 \
        --policy own16=benchmarks/oracle_search.py:own16 --policy crossed16=benchmarks/oracle_search.py:crossed16

Out of sample, each twin's maps fall behind (``twins.md``): a map that kept the score on one
coding passed by luck as often as not. ``--robust SHIFTED`` (with ``--mirror DIR --block 16``)
chooses more robustly: among the maps on both twins' paths, each coded on both twins, a picture
takes the cheapest that keeps the set's score on the set and on its mirror images at once
(:func:`choose_robustly`). It writes the set moved by 16 px (:func:`shift_set`: other CTUs, other
predictions, the detector's grid elsewhere) as a third coding none of the choices saw, where the
``shifted_own16``, ``shifted_twin16`` and ``shifted_robust16`` policies (:class:`ShiftOracle`)
judge the three choices side by side::

    python benchmarks/oracle_search.py --limit 24 --workers 2 --block 16 --mirror /tmp/mirror --robust /tmp/shifted
    python benchmarks/bdrate.py --task detection --data /tmp/shifted/data.yaml --limit 24 --roi-blocks 64,16 \
        --policy own=benchmarks/oracle_search.py:shifted_own16 \
        --policy twin=benchmarks/oracle_search.py:shifted_twin16 \
        --policy robust=benchmarks/oracle_search.py:shifted_robust16 --policy semrl=detection

The robust choice is made twice: keeping the set's class mean (``shifted_robust16``) and keeping
its ``objects`` score, each class's AP weighted by its labelled objects
(``shifted_robust_objects16``), the benchmark's other headline figure; both pick among the same
maps (the paths were searched on the class mean). ``--robust`` also writes ``SHIFTED/pooled.yaml``
(:func:`pooled_set`): the pictures, their mirror images and their shifted copies in one split, so
a method is judged on three codings of each content at once; with ``--codings`` ``bdrate.py``
draws each content with all its codings in its bootstrap::

    python benchmarks/bdrate.py --task detection --data /tmp/shifted/pooled.yaml --split val --codings \
        --roi-blocks 64,16 --policy semrl=detection

Searches are cached under ``<semrl cache>/oracle_search`` (keyed by the set, the picture, the
weights, the x265 build and the settings).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.cache import x265_key
from semrl.bench.items import Item, image_item
from semrl.codec import CTU_SIZE, Encoder, EncoderConfig, Gop, Yuv420, ctu_grid
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.files import atomic_folder, atomic_write
from semrl.paths import cache_root
from semrl.policy import PolicyInput

LEVELS = (51, 47, 42, 37, 32, 27, 22)
"""QPs a group steps through, coarse to fine."""
BENCH_POINTS = (22, 27, 32, 37, 42, 47, 51)
"""The benchmark's default base QPs (``benchmarks/bdrate.py --qps``)."""
SEARCH_BASE = 32
"""The others' uniform QP while a picture's path is searched (the middle of the benchmark's range)."""
SEARCH_VERSION = 4
"""Bumped when a cached search changes meaning."""
SHIFT = 16
"""Pixels the third coding of a set (:func:`shift_set`) moves its pictures by: a whole 16x16 block."""
SHIFT_SOURCES = ("own", "twin", "robust", "robust_objects")
"""The choices :class:`ShiftOracle` serves on the shifted set."""
MARGIN = 8  # pixels a labelled box is grown by before the CTUs it touches are found
SMALL, MEDIUM = 32**2, 96**2  # COCO's object size classes (pixel area)


@dataclass(frozen=True, eq=False)
class Coded:
    """One picture coded with one QP map: its bits and its detections matched against its labels."""

    qp: NDArray[np.int32]
    bits: int
    matches: Any  # semrl.fidelity.detection.FrameMatches
    truth: Any = None  # with --pseudo, the same detections matched against the labels (not used to choose)


def block_groups(
    boxes: NDArray[np.float32], shape: tuple[int, int], max_groups: int, block: int = CTU_SIZE
) -> NDArray[np.int32]:
    """Group id of every block: objects first (smallest object wins a block), then the ring, then the rest.

    Args:
        boxes: (N, 4) xyxy labelled boxes in pixels.
        shape: (H, W) of the coded picture.
        max_groups: Most groups; more objects than ``max_groups - 2`` are grouped by size class.
        block: Block side: 64 (CTUs) or 16 (x265's 16x16 quantisation groups). The ring is one
            CTU wide (64 px) at both.

    Returns:
        int32 (rows, cols) ids 0..G-1 on the ``block`` grid, with no empty id.
    """
    h, w = shape
    rows, cols = ctu_grid(w, h, block)
    ring = CTU_SIZE // block
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    if len(boxes) > max_groups - 2:
        object_group = np.where(areas < SMALL, 0, np.where(areas < MEDIUM, 1, 2))
    else:
        object_group = np.arange(len(boxes))
    ids = np.full((rows, cols), -1, np.int32)
    best_area = np.full((rows, cols), np.inf)
    near = np.zeros((rows, cols), bool)
    for box, area, group in zip(boxes, areas, object_group, strict=True):
        x0, y0, x1, y1 = box
        r0, r1 = int(max(y0 - MARGIN, 0) // block), int(min(y1 + MARGIN, h - 1) // block)
        c0, c1 = int(max(x0 - MARGIN, 0) // block), int(min(x1 + MARGIN, w - 1) // block)
        touched = np.zeros((rows, cols), bool)
        touched[r0 : r1 + 1, c0 : c1 + 1] = True
        wins = touched & (area < best_area)
        ids[wins], best_area[wins] = group, area
        near[max(r0 - ring, 0) : r1 + ring + 1, max(c0 - ring, 0) : c1 + ring + 1] = True
    objects = int(object_group.max()) + 1 if len(boxes) else 0
    ids[(ids < 0) & near] = objects
    ids[ids < 0] = objects + 1
    _, dense = np.unique(ids, return_inverse=True)  # drop empty ids
    return dense.reshape(rows, cols).astype(np.int32)


METRICS = ("task", "objects")
"""What a choice keeps: the set's mAP50-95 over its classes (``task``), or with each class weighted by its objects."""


def set_score(records: Sequence[Any], metric: str = "task") -> float:
    """mAP50-95 of a set of pictures from their match records (Ultralytics val's AP, as the benchmark).

    Args:
        records: Per picture, its detections matched against its labels.
        metric: ``task`` (the class mean, the benchmark's headline) or ``objects`` (each class
            weighted by its labelled objects, the benchmark's ``objects``).
    """
    from semrl.fidelity.detection import average_precision

    if metric not in METRICS:
        raise InvalidInputError(f"metric {metric!r}: one of {', '.join(METRICS)}")
    score = average_precision(records)
    return float(score.map50_95 if metric == "task" else score.map50_95_objects)


class Searcher:
    """Codes a picture with QP maps and matches the task net's detections to its labels (one per process).

    Args:
        weights: Detector weights.
        preset: x265 preset (the benchmark's).
        block: Side of the blocks a map gives QPs to: 64 (per CTU) or 16 (per 16x16 block,
            coded with 16x16 quantisation groups).
    """

    def __init__(
        self, weights: str = "yolov8n.pt", preset: str = "medium", block: int = CTU_SIZE, pseudo: bool = False
    ) -> None:
        from semrl.semantics.yolo import YoloNet

        self.net = YoloNet(weights, device="cpu")
        self.preset = preset
        self.block = block
        self.pseudo = pseudo
        self._labels: dict[str, Any] = {}
        self._truth: dict[str, Any] = {}

    def truth(self, item: Item) -> Any:
        """The item's labels, read once, where it has them (kept beside a pseudo search to judge it after)."""
        from semrl.fidelity.labels import read_yolo_labels

        if item.label is None:
            return None
        if item.digest not in self._truth:
            self._truth[item.digest] = read_yolo_labels(item.label, item.shape)
        return self._truth[item.digest]

    def labels(self, item: Item) -> Any:
        """The item's labels, or with ``pseudo`` the net's finds on the uncoded picture (once per item)."""
        from semrl.fidelity.detection import pseudo_target
        from semrl.semantics.yolo import InferenceSettings

        if item.digest not in self._labels:
            if self.pseudo:
                h, w = item.shape
                found = self.net.detect([item.yuv[0].to_rgb()[:h, :w]], InferenceSettings(), color="rgb")[0]
                self._labels[item.digest] = pseudo_target(found)
            else:
                self._labels[item.digest] = self.truth(item)
        return self._labels[item.digest]

    def code(self, item: Item, qp: NDArray[np.int32], base: int | None = None) -> Coded:
        """The picture coded with the absolute per-block QPs ``qp``, and its matched detections.

        With ``base``, coded exactly as the benchmark codes it at that base QP (x265 gives other
        pixels for the same per-CTU QPs at another base QP); else at the map's highest QP.
        """
        from semrl.bench.encoding import encoder_config
        from semrl.fidelity.detection import match_frame
        from semrl.semantics.yolo import InferenceSettings

        yuv: Yuv420 = item.yuv[0]
        if base is None:
            base = int(qp.max())
            config = EncoderConfig(yuv.width, yuv.height, qp=base, preset=self.preset, gop=Gop.INTRA, threads=1,
                                   qg_size=self.block)  # fmt: skip
        else:
            config = encoder_config(item, base, crf=False, video=False, preset=self.preset, keyint=250,
                                    qg_size=self.block)  # fmt: skip
        offsets = (qp - base).astype(np.int32)
        with Encoder(config) as encoder:
            coded = encoder.encode(yuv, offsets if offsets.any() else None) + encoder.flush()
        h, w = item.shape
        pred = self.net.detect([coded[0].recon.to_rgb()[:h, :w]], InferenceSettings(), color="rgb")[0]
        labels = self.truth(item) if self.pseudo else None
        return Coded(qp, int(coded[0].bits), match_frame(pred, self.labels(item)),
                     None if labels is None else match_frame(pred, labels))  # fmt: skip

    def uniform(self, item: Item, points: Sequence[int]) -> dict[int, Coded]:
        """The picture coded uniformly at each of ``points``, as the benchmark codes it."""
        rows, cols = ctu_grid(item.yuv[0].width, item.yuv[0].height, self.block)
        return {q: self.code(item, np.full((rows, cols), q, np.int32), q) for q in points}

    def recode(self, item: Item, path: Sequence[Coded], budgets: dict[int, int]) -> dict[int, list[Coded]]:
        """The path's maps coded as the benchmark would at each base QP of ``budgets``.

        At a base, only the maps the search coded in fewer bits than 1.1 times the budget (uniform
        coding's bits there): the others cannot save bits.
        """
        return {q: [self.code(item, c.qp, q) for c in path if c.bits < 1.1 * limit] for q, limit in budgets.items()}

    def path(self, item: Item, others: Sequence[Any], max_groups: int) -> list[Coded]:
        """The greedy path of one picture, coarse to fine, judged with ``others`` (match records) in the set."""
        boxes = self.labels(item).boxes
        yuv: Yuv420 = item.yuv[0]
        groups = block_groups(boxes, (yuv.height, yuv.width), max_groups, self.block)
        levels = np.asarray(LEVELS, np.int32)
        done: dict[tuple[int, ...], tuple[Coded, float]] = {}

        def judged(state: tuple[int, ...]) -> tuple[Coded, float]:
            if state not in done:
                coded = self.code(item, levels[np.asarray(state)][groups])
                done[state] = (coded, set_score([*others, coded.matches]))
            return done[state]

        state = (0,) * (int(groups.max()) + 1)
        path = [judged(state)[0]]
        while any(level < len(LEVELS) - 1 for level in state):
            here, score = judged(state)
            best: tuple[float, int, tuple[int, ...]] | None = None
            for g, level in enumerate(state):
                if level == len(LEVELS) - 1:
                    continue
                moved = (*state[:g], level + 1, *state[g + 1 :])
                coded, new_score = judged(moved)
                extra = max(coded.bits - here.bits, 1)
                if best is None or ((new_score - score) / extra, -extra) > best[:2]:
                    best = ((new_score - score) / extra, -extra, moved)
            assert best is not None
            state = best[2]
            path.append(judged(state)[0])
        return path


def choose_jointly(paths: Sequence[Sequence[Coded]], uniform: Sequence[dict[int, Coded]], base: int) -> list[Coded]:
    """Per picture, the map used at ``base``: the set's mAP50-95 never falls below uniform coding's.

    Pictures are visited from the most bits under uniform coding to the fewest; each takes the map
    of fewest bits on its path that keeps the set's score (the pictures before it with their chosen
    maps, those after it uniform) at least at uniform coding's, else stays uniform.

    Args:
        paths: Per picture of the set, its search path.
        uniform: Per picture, its uniform codings by QP.
        base: The base QP.
    """
    picks = choose_on_every_coding([[(c,) for c in path] for path in paths], [(u[base],) for u in uniform])
    return [pick[0] for pick in picks]


def choose_on_every_coding(
    candidates: Sequence[Sequence[tuple[Coded, ...]]], uniform: Sequence[tuple[Coded, ...]], metric: str = "task"
) -> list[tuple[Coded, ...]]:
    """Per picture, the candidate map that keeps the set's score on every coding of it (:func:`choose_jointly`'s rule).

    A set coded several ways (the pictures and their mirror images, say) gives each candidate map
    one coding per way. Pictures are visited from the most bits under uniform coding (summed over
    the ways) to the fewest; each takes the candidate of fewest bits (summed) that keeps the set's
    mAP50-95 at least at uniform coding's on every way at once, else stays uniform.

    Args:
        candidates: Per picture, its candidate maps, each as its codings (one per way, same order).
        uniform: Per picture, its uniform codings at the base QP (one per way).
        metric: The set's score kept (:func:`set_score`).

    Returns:
        Per picture, the chosen codings (one per way).
    """
    chosen = list(uniform)
    ways = range(len(chosen[0])) if chosen else range(0)
    keep = [set_score([c[w].matches for c in chosen], metric) for w in ways]

    def bits(codings: tuple[Coded, ...]) -> int:
        return sum(c.bits for c in codings)

    for i in sorted(range(len(chosen)), key=lambda k: -bits(chosen[k])):
        for candidate in sorted((c for c in candidates[i] if bits(c) < bits(chosen[i])), key=bits):
            if all(
                set_score([candidate[w].matches if k == i else c[w].matches for k, c in enumerate(chosen)], metric)
                >= keep[w]
                for w in ways
            ):
                chosen[i] = candidate
                break
    return chosen


def choose_alone(path: Sequence[Coded], uniform: Coded, others: Sequence[Any], keep: float | None = None) -> Coded:
    """The map of fewest bits on a picture's path that keeps its score among ``others`` at uniform coding's.

    Args:
        path: The picture's path coded at the base QP.
        uniform: The picture coded uniformly at the base QP.
        others: Match records of the pool's pictures coded uniformly at the base QP.
        keep: The score to keep instead of uniform coding's (mAP, 0..1).
    """
    if keep is None:
        keep = set_score([*others, uniform.matches])
    for candidate in sorted((c for c in path if c.bits < uniform.bits), key=lambda c: c.bits):
        if set_score([*others, candidate.matches]) >= keep:
            return candidate
    return uniform


def _frame_digest(frame: NDArray[np.uint8]) -> str:
    return hashlib.sha256(np.ascontiguousarray(frame).tobytes() + str(frame.shape).encode()).hexdigest()


def benchmark_items(data: str, limit: int, split: str = "val", start: int = 0) -> list[Item]:
    """The benchmark's pictures ``start`` to ``start + limit`` of ``data``'s ``split``, as it loads them."""
    from semrl.fidelity.labels import dataset_images

    return [image_item(im.image, im.label) for im in dataset_images(data, split)[start : start + limit]]


def _pack_matches(m: Any) -> dict[str, Any]:
    return {
        "tp": np.packbits(m.tp).tolist(), "n": int(m.tp.shape[0]), "conf": m.conf.tolist(),
        "pred_cls": m.pred_cls.tolist(), "target_cls": m.target_cls.tolist(),
    }  # fmt: skip


def _unpack_matches(d: dict[str, Any]) -> Any:
    from semrl.fidelity.detection import FrameMatches

    tp = np.unpackbits(np.asarray(d["tp"], np.uint8), count=d["n"] * 10).astype(bool).reshape(d["n"], 10)
    conf, pred_cls = np.asarray(d["conf"], np.float32), np.asarray(d["pred_cls"], np.int64)
    return FrameMatches(tp, conf, pred_cls, np.asarray(d["target_cls"], np.int64))


def _pack(coded: Coded) -> dict[str, Any]:
    truth = {} if coded.truth is None else {"truth": _pack_matches(coded.truth)}
    return {"qp": coded.qp.tolist(), "bits": coded.bits, **_pack_matches(coded.matches), **truth}


def _unpack(d: dict[str, Any]) -> Coded:
    truth = _unpack_matches(d["truth"]) if "truth" in d else None
    return Coded(np.asarray(d["qp"], np.int32), int(d["bits"]), _unpack_matches(d), truth)


class _Worker:
    searcher: Searcher | None = None


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


@dataclass(frozen=True)
class Mode:
    """What a worker's :class:`Searcher` is built with."""

    weights: str
    preset: str
    block: int = CTU_SIZE
    pseudo: bool = False


def _searcher(mode: Mode) -> Searcher:
    s = _Worker.searcher
    if s is None or (s.preset, s.block, s.pseudo) != (mode.preset, mode.block, mode.pseudo):
        s = _Worker.searcher = Searcher(mode.weights, mode.preset, mode.block, mode.pseudo)
    return s


def _uniform_job(job: tuple[Item, tuple[int, ...], Mode]) -> list[dict[str, Any]]:
    item, points, mode = job
    return [_pack(c) for c in _searcher(mode).uniform(item, points).values()]


def _recode_job(job: tuple[Item, list[dict[str, Any]], dict[int, int], Mode]) -> dict[int, list[dict[str, Any]]]:
    item, path, budgets, mode = job
    recoded = _searcher(mode).recode(item, [_unpack(c) for c in path], budgets)
    return {q: [_pack(c) for c in coded] for q, coded in recoded.items()}


def _path_job(job: tuple[Item, list[dict[str, Any]], int, Mode]) -> tuple[list[dict[str, Any]], float]:
    item, others, max_groups, mode = job
    start = time.perf_counter()
    path = _searcher(mode).path(item, [_unpack(o).matches for o in others], max_groups)
    return [_pack(c) for c in path], time.perf_counter() - start


def _mapper(stack: contextlib.ExitStack, workers: int) -> Any:
    """``map``, or with ``workers > 1`` the ordered ``imap`` of a pool of that many processes closed with ``stack``."""
    if workers <= 1:
        return map
    # The workers import this file by its name, from its folder.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    return stack.enter_context(multiprocessing.get_context("spawn").Pool(workers, _init_worker)).imap


def search_file(
    items: Sequence[Item],
    weights: str,
    preset: str,
    max_groups: int,
    cache_dir: Path,
    block: int = CTU_SIZE,
    pool: Sequence[Item] | None = None,
) -> Path:
    """Where :func:`search_set` keeps the search of these pictures with these settings."""
    from semrl.assets import file_sha256, resolve_weights

    key_text = json.dumps([
        SEARCH_VERSION, [it.digest for it in items], [it.label_digest for it in items], LEVELS, BENCH_POINTS,
        SEARCH_BASE, max_groups, preset, file_sha256(resolve_weights(weights)), x265_key()[0],
        *([] if block == CTU_SIZE else [block]),  # keeps the keys of the searches per CTU
        *([] if pool is None else ["pseudo", [it.digest for it in pool]]),
    ])  # fmt: skip
    return cache_dir / f"search-{hashlib.sha256(key_text.encode()).hexdigest()[:24]}.json"


def search_set(
    items: Sequence[Item],
    *,
    weights: str,
    preset: str,
    max_groups: int,
    workers: int,
    cache_dir: Path,
    block: int = CTU_SIZE,
    pool: Sequence[Item] | None = None,
    keep_codings: bool = False,
) -> dict[str, dict[int, list[int]]]:
    """Run the search on a set of pictures; per picture (frame digest), per base QP, the chosen offsets.

    The offsets are per ``block`` (64: CTUs; 16: 16x16 blocks). Cached: a set searched before with
    the same settings is read back; the search becomes the latest of its block size (what
    :class:`SearchOracle` of that size serves).

    With ``pool``, the search is a method rather than an oracle (``--pseudo``): every picture is
    judged against the net's own finds on it (confidence >= 0.25, :func:`pseudo_target`) instead of
    its labels, among the ``pool`` pictures (other pictures, also against their own finds) instead
    of the set's, and each picture's map at a base QP is chosen alone (:func:`choose_alone`).

    A search with ``pool``, or with ``keep_codings``, keeps every coding beside its choices
    (``search-<key>.codings.json``: the uniform codings, the paths and the paths coded at every base
    QP, each with its matches), so that other rules can choose from them after (:func:`read_codings`);
    a cached search without them is run again.
    """
    latest = latest_name(block, "pseudo" if pool is not None else "")
    target = search_file(items, weights, preset, max_groups, cache_dir, block, pool)
    keep_codings = keep_codings or pool is not None
    if target.is_file() and (not keep_codings or codings_file(target).is_file()):
        chosen: dict[str, dict[int, list[int]]] = {
            k: {int(q): v for q, v in by_base.items()} for k, by_base in json.loads(target.read_text()).items()
        }
        atomic_write(cache_dir / latest, json.dumps({"search": target.name}))
        return chosen
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        mapper = _mapper(stack, workers)
        mode = Mode(weights, preset, block, pseudo=pool is not None)
        jobs = [(it, BENCH_POINTS, mode) for it in [*items, *(pool or [])]]
        packed = list(mapper(_uniform_job, jobs))
        coded = [{q: _unpack(p) for q, p in zip(BENCH_POINTS, codes, strict=True)} for codes in packed]
        uniform, pooled = coded[: len(items)], coded[len(items) :]
        print(f"uniform codings: {time.perf_counter() - start:.0f} s", flush=True)
        path_jobs = [
            (it, [_pack(u[SEARCH_BASE]) for j, u in enumerate(pooled or uniform) if pool or j != i], max_groups, mode)
            for i, it in enumerate(items)
        ]
        paths: list[list[Coded]] = []
        for i, (packed_path, seconds) in enumerate(mapper(_path_job, path_jobs)):
            paths.append([_unpack(p) for p in packed_path])
            print(f"picture {i}: path of {len(packed_path)} maps in {seconds:.0f} s", flush=True)
        recode_jobs = [
            (it, [_pack(c) for c in path], {q: u[q].bits for q in BENCH_POINTS}, mode)
            for it, path, u in zip(items, paths, uniform, strict=True)
        ]
        recoded = [{q: [_unpack(p) for p in codes] for q, codes in r.items()} for r in mapper(_recode_job, recode_jobs)]
        print(f"paths coded at every base QP: {time.perf_counter() - start:.0f} s", flush=True)
    if keep_codings:  # every coding, with its matches (against the labels too): selection rules judged after
        atomic_write(codings_file(target), json.dumps({
            "uniform": [{q: _pack(c) for q, c in u.items()} for u in uniform],
            "pool": [{q: _pack(c) for q, c in u.items()} for u in pooled],
            "paths": [[_pack(c) for c in path] for path in paths],
            "recoded": [{q: [_pack(c) for c in cs] for q, cs in r.items()} for r in recoded],
        }))  # fmt: skip
    chosen = {_frame_digest(it.yuv[0].to_rgb()): {} for it in items}
    for q in BENCH_POINTS:
        at_base = [r[q] for r in recoded]
        if pool is None:
            picks = choose_jointly(at_base, uniform, q)
        else:
            others = [p[q].matches for p in pooled]
            picks = [choose_alone(r, u[q], others) for r, u in zip(at_base, uniform, strict=True)]
        for it, pick in zip(items, picks, strict=True):
            chosen[_frame_digest(it.yuv[0].to_rgb())][q] = (pick.qp - q).tolist()
    atomic_write(target, json.dumps(chosen))
    atomic_write(cache_dir / latest, json.dumps({"search": target.name}))
    print(f"{len(items)} pictures in {time.perf_counter() - start:.0f} s with {workers} workers -> {target}")
    return chosen


def codings_file(search: Path) -> Path:
    """Where a search kept its codings (``keep_codings``), beside its choices."""
    return search.with_suffix(".codings.json")


def read_codings(codings: Path) -> dict[str, Any]:
    """The codings a search kept (its :func:`codings_file`).

    Returns:
        ``uniform`` and ``pool`` (with ``--pseudo``; else empty) per picture by base QP, ``paths``
        per picture (empty in files kept before the paths were), ``recoded`` per picture by base QP.
    """
    raw = json.loads(codings.read_text())

    def by_base(pictures: list[dict[str, Any]]) -> list[dict[int, Coded]]:
        return [{int(q): _unpack(c) for q, c in u.items()} for u in pictures]

    return {
        "uniform": by_base(raw["uniform"]),
        "pool": by_base(raw["pool"]),
        "paths": [[_unpack(c) for c in path] for path in raw.get("paths", [])],
        "recoded": [{int(q): [_unpack(c) for c in cs] for q, cs in r.items()} for r in raw["recoded"]],
    }


def robust_file(searches: Sequence[Path], cache_dir: Path, metric: str = "task") -> Path:
    """Where :func:`choose_robustly` keeps its choice from these two searches, keeping ``metric``."""
    key = hashlib.sha256(json.dumps([SEARCH_VERSION, [p.name for p in searches]]).encode()).hexdigest()[:24]
    return cache_dir / f"robust-{key}{'' if metric == 'task' else f'-{metric}'}.json"


def crossed_codings(
    items: Sequence[Item],
    mirrored: Sequence[Item],
    searches: Sequence[Path],
    *,
    mode: Mode,
    workers: int,
    cache_dir: Path,
) -> list[list[dict[int, list[Coded]]]]:
    """Each twin's search path coded on the other twin as the benchmark codes it (cached beside the choice).

    Returns:
        ``crossed[w][i][q]``: the other twin's path of picture ``i``, carried over by
        :func:`mirror_offsets` and coded on twin ``w`` (0: ``items``, 1: ``mirrored``) at base QP
        ``q``, in the order of that twin's own ``recoded`` maps.
    """
    target = codings_file(robust_file(searches, cache_dir))
    if target.is_file():
        packed = json.loads(target.read_text())
    else:
        start = time.perf_counter()
        sides = [read_codings(codings_file(search)) for search in searches]
        widths = [it.shape[1] for it in items]
        budgets = [[{q: u[q].bits for q in BENCH_POINTS} for u in side["uniform"]] for side in sides]
        jobs = [
            (it, [_pack(Coded(mirror_offsets(c.qp, widths[i], mode.block), c.bits, c.matches))
                  for c in sides[1 - w]["paths"][i]], budgets[1 - w][i], mode)
            for w, twins in enumerate((items, mirrored)) for i, it in enumerate(twins)
        ]  # fmt: skip
        with contextlib.ExitStack() as stack:
            coded = list(_mapper(stack, workers)(_recode_job, jobs))
        packed = [coded[: len(items)], coded[len(items) :]]
        atomic_write(target, json.dumps(packed))
        print(f"each twin's paths coded on the other: {time.perf_counter() - start:.0f} s", flush=True)
    return [[{int(q): [_unpack(c) for c in cs] for q, cs in r.items()} for r in side] for side in packed]


def choose_robustly(
    items: Sequence[Item],
    mirrored: Sequence[Item],
    searches: Sequence[Path],
    *,
    weights: str,
    preset: str,
    block: int,
    workers: int,
    cache_dir: Path,
    metric: str = "task",
) -> list[dict[int, list[list[int]]]]:
    """Per picture and base QP, the offsets of the map keeping the set's score on both the pictures and their mirrors.

    The candidates of a picture at a base QP are the maps on its own search path and on its
    mirror image's (carried over by :func:`mirror_offsets`), each coded as the benchmark codes it on
    both twins: the search's own codings (``keep_codings``) and, for the other twin's maps, new
    ones (:func:`crossed_codings`). :func:`choose_on_every_coding` then takes, per picture, the map
    of fewest bits (summed over the twins) that keeps the set's ``metric`` at uniform coding's on
    both sets at once. A map that passed on one coding by chance seldom passes on the other, so
    this choice leans less on the noise of any one coding; it is judged on a third
    (:func:`shift_set`). Cached beside the searches.

    The paths were searched on the class mean (each step the most mAP50-95 per bit); choosing on
    ``objects`` picks among the same maps.

    Args:
        items: The set's pictures.
        mirrored: Their mirror images, in the same order.
        searches: The two searches (:func:`search_file`; run with ``keep_codings``).
        weights: Detector weights, as the searches'.
        preset: x265 preset, as the searches'.
        block: Block side of the searches' maps.
        workers: Processes coding the other twin's maps.
        cache_dir: Where the searches are, and the choice is cached.
        metric: The set's score kept (:func:`set_score`).

    Returns:
        Per picture of ``items``, by base QP, the chosen offsets on its own grid.
    """
    target = robust_file(searches, cache_dir, metric)
    if target.is_file():
        return [{int(q): v for q, v in by_base.items()} for by_base in json.loads(target.read_text())]
    sides = [read_codings(codings_file(search)) for search in searches]
    mode = Mode(weights, preset, block)
    crossed = crossed_codings(items, mirrored, searches, mode=mode, workers=workers, cache_dir=cache_dir)
    chosen: list[dict[int, list[list[int]]]] = [{} for _ in items]
    for q in BENCH_POINTS:
        candidates = [
            [*zip(sides[0]["recoded"][i][q], crossed[1][i][q], strict=True),
             *zip(crossed[0][i][q], sides[1]["recoded"][i][q], strict=True)]
            for i in range(len(items))
        ]  # fmt: skip
        uniform = [(sides[0]["uniform"][i][q], sides[1]["uniform"][i][q]) for i in range(len(items))]
        picks = choose_on_every_coding(candidates, uniform, metric)
        for i, pick in enumerate(picks):
            chosen[i][q] = (pick[0].qp - q).tolist()
        share = [sum(p[w].bits for p in picks) / sum(u[w].bits for u in uniform) for w in (0, 1)]
        mapped = sum(p[0] is not u[0] for p, u in zip(picks, uniform, strict=True))
        print(
            f"{metric}, base QP {q}: {mapped} of {len(items)} pictures mapped; "
            f"bits {share[0]:.2f} / {share[1]:.2f} of uniform"
        )
    atomic_write(target, json.dumps(chosen))
    return chosen


def latest_name(block: int, kind: str = "") -> str:
    """The file naming the latest search of a block size and kind.

    Args:
        block: 64 (per CTU) or 16.
        kind: ``""`` (against the labels), ``"pseudo"`` (against the net's own finds, ``--pseudo``),
            ``"twins"`` (the pair of a set's and its mirror images' searches, ``--mirror``) or
            ``"shifted"`` (that pair and its robust choice, served on the shifted set, ``--robust``).
    """
    return "latest" + (f"-{kind}" if kind else "") + ("" if block == CTU_SIZE else f"-{block}") + ".json"


def read_pointer(cache_dir: Path, block: int, kind: str, missing: str, how: str) -> dict[str, Any]:
    """The latest search of a block size and kind (:func:`latest_name`), as its pointer file names it.

    Raises:
        InputNotFoundError: There is none; the message says ``missing`` and the arguments (``how``)
            of the ``oracle_search.py`` run that makes one.
    """
    pointer = cache_dir / latest_name(block, kind)
    if not pointer.is_file():
        raise InputNotFoundError(f"{missing} in {cache_dir}: run python benchmarks/oracle_search.py {how} first")
    loaded: dict[str, Any] = json.loads(pointer.read_text())
    return loaded


def _offsets_at(by_base: dict[str, list[list[int]]], base_qp: int, source: str) -> NDArray[np.int32]:
    """The offsets a search chose at ``base_qp`` (``by_base`` keyed by the base QP as text, as stored)."""
    offsets = by_base.get(str(int(base_qp)))
    if offsets is None:
        raise InvalidInputError(f"{source}: searched at base QPs {sorted(by_base)}, not {base_qp}")
    return np.asarray(offsets, np.int32)


class SearchOracle:
    """The maps the last search chose, as a benchmark policy for the detection setting (see the module docstring).

    Args:
        cache_dir: Where searches are cached (default ``<semrl cache>/oracle_search``).
        block: The block size of the search to serve: 64 (per CTU) or 16 (``--block 16``).
    """

    needs_regions = False
    task = "detection"

    def __init__(self, cache_dir: Path | None = None, block: int = CTU_SIZE, pseudo: bool = False) -> None:
        self.cache_dir = cache_dir or cache_root() / "oracle_search"
        self.offset_block = block
        self.pseudo = pseudo
        self._chosen: dict[str, dict[str, list[list[int]]]] | None = None
        self._name = ""

    def _load(self) -> dict[str, dict[str, list[list[int]]]]:
        if self._chosen is None:
            self._name = read_pointer(
                self.cache_dir, self.offset_block, "pseudo" if self.pseudo else "",
                f"no oracle search per {self.offset_block}x{self.offset_block} block",
                f"--limit N --block {self.offset_block}{' --pseudo' if self.pseudo else ''}",
            )["search"]  # fmt: skip
            self._chosen = json.loads((self.cache_dir / self._name).read_text())
        return self._chosen

    @property
    def fingerprint(self) -> str:
        """The search the maps come from."""
        self._load()
        return f"oracle-search:v{SEARCH_VERSION}:{self._name}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The offsets the search chose for this picture at this base QP."""
        by_base = self._load().get(_frame_digest(inputs.frame))
        if by_base is None:
            raise InvalidInputError(
                f"oracle-search: a {inputs.frame.shape} frame the last search did not cover; "
                "benchmark the same pictures (--limit) the search ran on"
            )
        return _offsets_at(by_base, inputs.base_qp, "oracle-search")


def mirror_offsets(offsets: NDArray[np.int32], width: int, block: int) -> NDArray[np.int32]:
    """A picture's offsets carried onto its left-right mirror image.

    Args:
        offsets: (rows, cols) offsets on the picture's ``block`` grid.
        width: The picture's width in pixels (before any padding to an even size).
        block: The grid's block side.

    Returns:
        The mirror image's offsets on its own grid: block column ``j`` covers the picture's pixel
        columns ``width - 1 - x`` for its own columns ``x``; where the grid does not divide the
        width these fall in two of the picture's block columns, and the block takes the finer
        (lower) offset of the two, so an object's blocks stay covered.
    """
    out = np.empty_like(offsets)
    for j in range(offsets.shape[1]):
        xs = np.arange(j * block, min((j + 1) * block, width))
        out[:, j] = offsets[:, np.unique((width - 1 - xs) // block)].min(axis=1)
    return out


def mirror_set(data: str, split: str, start: int, limit: int, out: Path) -> Path:
    """Write the left-right mirror images of a split's pictures ``start`` to ``start + limit``, with their labels.

    The pictures are written as PNG (the flipped pixels exactly; no second lossy coding), in the
    same order and under the same split name, so ``--data <out>/data.yaml --split <split> --limit
    <limit>`` benchmarks them. Written beside ``out`` and renamed into place; an ``out`` already
    holding the mirror of the same pictures is reused.

    Returns:
        The mirrored set's ``data.yaml``.

    Raises:
        FileExistsError: ``out`` exists and is not the mirror of these pictures.
        InvalidInputError: A label line is neither a YOLO box nor a YOLO polygon.
    """

    def point(x: float, y: float, shape: tuple[int, int]) -> tuple[float, float]:
        return 1 - x, y

    def scale(shape: tuple[int, int]) -> tuple[float, float]:
        return 1.0, 1.0

    return _write_set(data, split, start, limit, out, "mirror", lambda image: image[:, ::-1], point, scale)


def shift_set(data: str, split: str, start: int, limit: int, out: Path, shift: int = SHIFT) -> Path:
    """Write a split's pictures ``start`` to ``start + limit`` moved ``shift`` px right and down, with their labels.

    Each picture gains ``shift`` rows on top and columns on the left, copies of its edge, so its
    content sits ``shift`` px further into the coding grid (other CTUs, other predictions) and the
    detector sees it at another place and a slightly other scale: a third coding of the same content
    beside the pictures and their mirror images. Written as PNG like :func:`mirror_set`, and reused
    the same way.

    Returns:
        The shifted set's ``data.yaml``.

    Raises:
        FileExistsError: ``out`` exists and is not this shift of these pictures.
        InvalidInputError: A label line is neither a YOLO box nor a YOLO polygon.
    """

    def point(x: float, y: float, shape: tuple[int, int]) -> tuple[float, float]:
        height, width = shape
        return (x * width + shift) / (width + shift), (y * height + shift) / (height + shift)

    def scale(shape: tuple[int, int]) -> tuple[float, float]:
        height, width = shape
        return width / (width + shift), height / (height + shift)

    def move(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return np.pad(image, ((shift, 0), (shift, 0), (0, 0)), mode="edge")

    return _write_set(data, split, start, limit, out, f"shift{shift}", move, point, scale)


def pooled_set(data: str, split: str, start: int, limit: int, codings: Sequence[Path], out: Path) -> Path:
    """Write a ``data.yaml`` whose split holds pictures ``start`` to ``start + limit`` and other codings of them.

    The pictures are listed in ``<out stem>.txt`` beside ``out`` (the dataset's own files, not
    copied); ``codings`` are the folders :func:`mirror_set` and :func:`shift_set` wrote for the same
    pictures. A benchmark of the pooled set codes every content several ways and its bootstrap
    draws each content with all its codings (``benchmarks/bdrate.py --codings``: the ``picture`` unit),
    so coding luck averages out of its figures while the interval still counts contents.

    Returns:
        ``out``.

    Raises:
        InvalidInputError: A folder of ``codings`` does not hold the same pictures.
    """
    import yaml

    from semrl.fidelity.labels import dataset_images, dataset_yaml

    images = dataset_images(data, split)[start : start + limit]
    names = yaml.safe_load(dataset_yaml(data).read_text()).get("names")
    stems = [im.image.stem for im in images]
    for folder in codings:
        theirs = [im.image.stem for im in dataset_images(folder / "data.yaml", split)]
        if theirs != stems:
            window = f"{split} {start}-{start + limit - 1} of {data}"
            raise InvalidInputError(f"{folder}: its {split} pictures are not {window}")
    listed = out.with_suffix(".txt")
    atomic_write(listed, "".join(f"{im.image.resolve()}\n" for im in images))
    parts = [str(listed.resolve()), *(str((folder / "images" / split).resolve()) for folder in codings)]
    atomic_write(out, yaml.safe_dump({split: parts, "names": names}))
    return out


def _carried(
    values: list[float],
    shape: tuple[int, int],
    point: Callable[[float, float, tuple[int, int]], tuple[float, float]],
    scale: Callable[[tuple[int, int]], tuple[float, float]],
) -> tuple[float, ...]:
    """A YOLO label line's numbers after the class, on the written picture (see :func:`_write_set`)."""
    if len(values) == 4:  # a box: its centre moves as a point, its size scales
        x_scale, y_scale = scale(shape)
        return (*point(values[0], values[1], shape), values[2] * x_scale, values[3] * y_scale)
    return tuple(c for k in range(0, len(values), 2) for c in point(values[k], values[k + 1], shape))


def _write_set(
    data: str,
    split: str,
    start: int,
    limit: int,
    out: Path,
    kind: str,
    picture: Callable[[NDArray[np.uint8]], NDArray[np.uint8]],
    point: Callable[[float, float, tuple[int, int]], tuple[float, float]],
    scale: Callable[[tuple[int, int]], tuple[float, float]],
) -> Path:
    """Write pictures of a split transformed by ``picture`` (an image array to another), their labels with them.

    ``point(x, y, (height, width))`` maps a point normalised to the source picture to the written
    picture's: each vertex of a YOLO polygon (segmentation labels) and each YOLO box's centre, whose
    width and height are multiplied by ``scale((height, width))``. The folder is stamped
    (``<kind>.json``) with its source, so it is reused for the same pictures and refused for others.
    """
    import cv2
    import yaml

    from semrl.fidelity.labels import dataset_images, dataset_yaml
    from semrl.semantics.frames import read_image

    images = dataset_images(data, split)[start : start + limit]
    source = dataset_yaml(data)
    names = yaml.safe_load(source.read_text()).get("names")
    stamp = {"source": str(source), "split": split, "pictures": [im.image.name for im in images]}
    marker = f"{kind}.json"
    if out.exists():
        if (out / marker).is_file() and json.loads((out / marker).read_text()) == stamp:
            return out / "data.yaml"
        raise FileExistsError(f"{out} exists and is not the {kind} of {split} {start}-{start + limit - 1} of {data}")
    with atomic_folder(out) as staging:
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
        for im in images:
            pixels = read_image(im.image)
            target = staging / "images" / split / f"{im.image.stem}.png"
            if not cv2.imwrite(str(target), np.ascontiguousarray(picture(pixels))):
                raise OSError(f"could not write {target}")
            if im.label.is_file():
                rows = [line.split() for line in im.label.read_text().splitlines() if line.strip()]
                if any(len(r) != 5 and (len(r) < 7 or len(r) % 2 == 0) for r in rows):
                    raise InvalidInputError(
                        f"{im.label}: a line is neither a YOLO box (class cx cy w h) nor a polygon "
                        "(class x1 y1 x2 y2 x3 y3 ...)"
                    )
                shape = (pixels.shape[0], pixels.shape[1])
                moved = [(r[0], _carried([float(v) for v in r[1:]], shape, point, scale)) for r in rows]
                lines = [f"{c} {' '.join(f'{v:.6f}' for v in b)}\n" for c, b in moved]
                (staging / "labels" / split / im.label.name).write_text("".join(lines))
        (staging / "data.yaml").write_text(yaml.safe_dump({split: f"images/{split}", "names": names}))
        (staging / marker).write_text(json.dumps(stamp))
    return out / "data.yaml"


def shift_offsets(offsets: NDArray[np.int32], block: int, shift: int = SHIFT) -> NDArray[np.int32]:
    """A picture's offsets carried onto its copy from :func:`shift_set`: the grid moves by whole blocks.

    The added rows and columns of blocks (the copied edge) take the offsets of the blocks beside them.

    Raises:
        ValueError: ``shift`` is not a whole number of blocks.
    """
    if shift % block:
        raise ValueError(f"a shift of {shift} px is not a whole number of {block} px blocks")
    k = shift // block
    return np.pad(offsets, ((k, 0), (k, 0)), mode="edge")


class TwinOracle:
    """The search oracle judged out of sample: each picture served the map its mirror image's search chose.

    ``python benchmarks/oracle_search.py --block 16 --mirror DIR`` searches a set and the set of its
    left-right mirror images. The same content coded twice gives the detector two answers whose
    noise is independent, so the map chosen on the mirror image (carried back by
    :func:`mirror_offsets`) is a choice this picture's codings did not make: its BD-rate is the
    oracle's without its selection on the benchmark's own noise. With ``crossed=False`` it serves
    each picture its own search's map (the in-sample oracle), on either set.

    Args:
        crossed: Serve the mirror image's map (out of sample) rather than the picture's own.
        cache_dir: Where searches are cached (default ``<semrl cache>/oracle_search``).
        block: The block size of the searches (64 or 16).
    """

    needs_regions = False
    task = "detection"

    def __init__(self, crossed: bool, cache_dir: Path | None = None, block: int = 16) -> None:
        self.crossed = crossed
        self.cache_dir = cache_dir or cache_root() / "oracle_search"
        self.offset_block = block
        self._twins: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._twins is None:
            twins = read_pointer(
                self.cache_dir, self.offset_block, "twins", "no searches of a set and its mirror",
                f"--block {self.offset_block} --mirror DIR",
            )  # fmt: skip
            sides = [list(json.loads((self.cache_dir / name).read_text()).items()) for name in twins["searches"]]
            index = {digest: (side, i) for side, maps in enumerate(sides) for i, (digest, _) in enumerate(maps)}
            self._twins = {**twins, "sides": sides, "index": index}
        return self._twins

    @property
    def fingerprint(self) -> str:
        """The two searches, and which map is served."""
        names = self._load()["searches"]
        return f"oracle-twins:v{SEARCH_VERSION}:{names[0]}:{names[1]}:{'crossed' if self.crossed else 'own'}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The offsets chosen at this base QP for this picture (``crossed``: for its mirror image, mirrored)."""
        twins = self._load()
        found = twins["index"].get(_frame_digest(inputs.frame))
        if found is None:
            raise InvalidInputError(
                f"oracle-twins: a {inputs.frame.shape} frame neither search covered; benchmark the searched set "
                "or its mirror (--data DIR/data.yaml)"
            )
        side, i = found
        by_base = twins["sides"][1 - side if self.crossed else side][i][1]
        chosen = _offsets_at(by_base, inputs.base_qp, "oracle-twins")
        return mirror_offsets(chosen, twins["widths"][i], self.offset_block) if self.crossed else chosen


class ShiftOracle:
    """Maps chosen on a set (and its mirror images) served on the set's shifted copy: a third coding judges them.

    ``python benchmarks/oracle_search.py --block 16 --mirror DIR --robust SHIFTED`` searches a set
    and its mirror images, chooses robustly on both (:func:`choose_robustly`) and writes the set
    moved by :data:`SHIFT` px (:func:`shift_set`) to ``SHIFTED``. None of the three choices below
    saw the shifted pictures' codings, so each is judged out of sample there, side by side:

    - ``own``: the map the set's own search chose (the in-sample oracle of ``oracle16``);
    - ``twin``: the map the mirror images' search chose, mirrored (``crossed16``);
    - ``robust``: the map that kept the score on both;
    - ``robust_objects``: the map that kept the ``objects`` score (each class weighted by its
      objects) on both.

    Args:
        source: ``"own"``, ``"twin"``, ``"robust"`` or ``"robust_objects"``.
        cache_dir: Where searches are cached (default ``<semrl cache>/oracle_search``).
        block: The block size of the searches (16).
    """

    needs_regions = False
    task = "detection"

    def __init__(self, source: str, cache_dir: Path | None = None, block: int = 16) -> None:
        if source not in SHIFT_SOURCES:
            raise ValueError(f"source {source!r}: one of {', '.join(SHIFT_SOURCES)}")
        self.source = source
        self.cache_dir = cache_dir or cache_root() / "oracle_search"
        self.offset_block = block
        self._loaded: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._loaded is None:
            loaded = read_pointer(
                self.cache_dir, self.offset_block, "shifted", "no robust choice",
                f"--block {self.offset_block} --mirror DIR --robust SHIFTED",
            )  # fmt: skip
            sides = [list(json.loads((self.cache_dir / name).read_text()).values()) for name in loaded["searches"]]
            maps = {"own": sides[0], "twin": sides[1]}
            for source in ("robust", "robust_objects"):
                if source in loaded:  # pointers written before the objects choice lack it
                    maps[source] = json.loads((self.cache_dir / loaded[source]).read_text())
            if self.source not in maps:
                raise InputNotFoundError(
                    f"no {self.source} choice in {self.cache_dir}: run python benchmarks/oracle_search.py "
                    f"--block {self.offset_block} --mirror DIR --robust SHIFTED again (the searches are cached)"
                )
            index = {digest: i for i, digest in enumerate(loaded["shifted"])}
            self._loaded = {**loaded, "maps": maps, "index": index}
        return self._loaded

    @property
    def fingerprint(self) -> str:
        """The searches, the robust choice, and which map is served."""
        loaded = self._load()
        names = ":".join([*loaded["searches"], loaded[self.source if self.source.startswith("robust") else "robust"]])
        return f"oracle-shifted:v{SEARCH_VERSION}:{names}:{loaded['shift']}:{self.source}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The offsets chosen at this base QP for the picture this one is the shifted copy of, shifted."""
        loaded = self._load()
        i = loaded["index"].get(_frame_digest(inputs.frame))
        if i is None:
            raise InvalidInputError(
                f"oracle-shifted: a {inputs.frame.shape} frame that is not one of the shifted set's; benchmark "
                "--data SHIFTED/data.yaml with the searched split and --limit"
            )
        chosen = _offsets_at(loaded["maps"][self.source][i], inputs.base_qp, "oracle-shifted")
        if self.source == "twin":
            chosen = mirror_offsets(chosen, loaded["widths"][i], self.offset_block)
        return shift_offsets(chosen, self.offset_block, loaded["shift"])


oracle = SearchOracle()
"""The maps of the last search per CTU (``python benchmarks/oracle_search.py``)."""
oracle16 = SearchOracle(block=16)
"""The maps of the last search per 16x16 block (``python benchmarks/oracle_search.py --block 16``)."""
pseudo16 = SearchOracle(block=16, pseudo=True)
"""The maps of the last search per 16x16 block against the net's own finds (``--block 16 --pseudo``)."""
own16 = TwinOracle(crossed=False)
"""Each picture's own map from the last ``--block 16 --mirror`` pair of searches (in sample; either set)."""
crossed16 = TwinOracle(crossed=True)
"""Each picture's mirror image's map from the last ``--block 16 --mirror`` pair, mirrored (out of sample)."""
own = TwinOracle(crossed=False, block=CTU_SIZE)
"""Each picture's own map from the last per-CTU ``--mirror`` pair of searches (in sample; either set)."""
crossed = TwinOracle(crossed=True, block=CTU_SIZE)
"""Each picture's mirror image's map from the last per-CTU ``--mirror`` pair, mirrored (out of sample)."""
shifted_own16 = ShiftOracle("own")
"""On the shifted set of the last ``--robust``: each picture's map from its original's own search."""
shifted_twin16 = ShiftOracle("twin")
"""On the shifted set of the last ``--robust``: each picture's map from its original's mirror image's search."""
shifted_robust16 = ShiftOracle("robust")
"""On the shifted set of the last ``--robust``: each picture's map chosen on its original and its mirror image."""
shifted_robust_objects16 = ShiftOracle("robust_objects")
"""The same, chosen to keep the set's ``objects`` score (each class weighted by its objects) on both."""


def main(argv: list[str] | None = None) -> int:
    """Search the benchmark's first ``--limit`` detection pictures and make the result the oracle's."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default="coco-det", help="dataset (default coco-det, the benchmark's)")
    parser.add_argument("--limit", type=int, default=24, help="first N pictures, as bdrate.py --limit (default 24)")
    parser.add_argument("--weights", default="yolov8n.pt")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--max-groups", type=int, default=8, help="most CTU groups searched per picture (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2; 1: in this process)")
    parser.add_argument(
        "--block", type=int, choices=(CTU_SIZE, 16), default=CTU_SIZE, help="QP per CTU (64, default) or 16x16 block"
    )
    parser.add_argument("--split", default="val", help="split searched (default val, the benchmark's)")
    parser.add_argument("--start", type=int, default=0, help="first picture of the split, as bdrate.py --start")
    parser.add_argument(
        "--pseudo", type=int, default=None, metavar="N",
        help="a method, not an oracle: judge each picture against the net's own finds, among the train split's "
        "first N pictures (also against their finds), choosing each picture's map alone",
    )  # fmt: skip
    parser.add_argument(
        "--mirror", type=Path, default=None, metavar="DIR",
        help="also write the set's left-right mirror images to DIR and search them: the own16 and crossed16 "
        "policies then serve the oracle in and out of sample",
    )  # fmt: skip
    parser.add_argument(
        "--robust", type=Path, default=None, metavar="SHIFTED",
        help=f"with --mirror and --block 16: also choose the maps that keep the score on the set and its mirror "
        f"images at once (on the class mean, and on objects), and write the set moved by {SHIFT} px to SHIFTED, "
        "where the shifted_own16, shifted_twin16, shifted_robust16 and shifted_robust_objects16 policies judge "
        "the choices out of sample; SHIFTED/pooled.yaml holds the set's three codings",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.mirror is not None and args.pseudo is not None:
        parser.error("--mirror judges the label oracle; it does not go with --pseudo")
    if args.robust is not None and (args.mirror is None or args.block != 16):
        parser.error("--robust chooses on a set and its mirror images per 16x16 block: give --mirror DIR --block 16")
    items = benchmark_items(args.data, args.limit, args.split, args.start)
    if args.pseudo is None:
        items = [it for it in items if it.label is not None]
    pool = None if args.pseudo is None else benchmark_items(args.data, args.pseudo, "train")
    if pool is not None and args.split == "train" and args.start < args.pseudo:
        parser.error(f"--start {args.start}: the searched pictures overlap the pool (train 0-{args.pseudo - 1})")
    settings = {"weights": args.weights, "preset": args.preset, "max_groups": args.max_groups, "block": args.block}
    if args.mirror is not None:  # before the long search: a wrong folder fails at once
        try:
            mirrored_yaml = mirror_set(args.data, args.split, args.start, args.limit, args.mirror)
        except FileExistsError as e:
            parser.error(f"--mirror: {e}; give a new folder")
    if args.robust is not None:
        try:
            shifted_yaml = shift_set(args.data, args.split, args.start, args.limit, args.robust)
        except FileExistsError as e:
            parser.error(f"--robust: {e}; give a new folder")
    keep = args.robust is not None
    search_set(items, workers=args.workers, cache_dir=oracle.cache_dir, pool=pool, keep_codings=keep, **settings)
    if args.mirror is not None:
        mirrored = [it for it in benchmark_items(str(mirrored_yaml), args.limit, args.split) if it.label is not None]
        if [it.shape for it in mirrored] != [it.shape for it in items]:
            raise InvalidInputError(f"{args.mirror}: its pictures are not the mirror images of the searched ones")
        search_set(mirrored, workers=args.workers, cache_dir=oracle.cache_dir, keep_codings=keep, **settings)
        searches = [search_file(s, cache_dir=oracle.cache_dir, **settings) for s in (items, mirrored)]
        names = [search.name for search in searches]
        widths = [it.shape[1] for it in items]
        atomic_write(
            oracle.cache_dir / latest_name(args.block, "twins"), json.dumps({"searches": names, "widths": widths})
        )
        print(f"mirror images: --data {mirrored_yaml} --split {args.split} --limit {args.limit}")
    if args.robust is not None:
        for metric in METRICS:
            choose_robustly(
                items, mirrored, searches, weights=args.weights, preset=args.preset, block=args.block,
                workers=args.workers, cache_dir=oracle.cache_dir, metric=metric,
            )  # fmt: skip
        shifted = [it for it in benchmark_items(str(shifted_yaml), args.limit, args.split) if it.label is not None]
        if len(shifted) != len(items):
            raise InvalidInputError(f"{args.robust}: its pictures are not the shifted copies of the searched ones")
        pointer = {
            "searches": names, "robust": robust_file(searches, oracle.cache_dir).name,
            "robust_objects": robust_file(searches, oracle.cache_dir, "objects").name, "widths": widths,
            "shift": SHIFT, "shifted": [_frame_digest(it.yuv[0].to_rgb()) for it in shifted],
        }  # fmt: skip
        atomic_write(oracle.cache_dir / latest_name(args.block, "shifted"), json.dumps(pointer))
        print(f"shifted pictures: --data {shifted_yaml} --split {args.split} --limit {args.limit}")
        pooled = pooled_set(
            args.data, args.split, args.start, args.limit, [mirrored_yaml.parent, shifted_yaml.parent],
            shifted_yaml.parent / "pooled.yaml",
        )  # fmt: skip
        print(f"the three codings pooled: --data {pooled} --split {args.split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

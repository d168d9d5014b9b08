"""Replay a clip-level trade of the video reference coding on the benchmark's cached codings.

For each clip and each of the benchmark's base QPs ``q``, the trade keeps, of the reference
coding (``--policy video-reference``) coded whole at base QPs ``q-10, q-5, q, q+5, q+10``, the one
of most ``score - w * bpp``: ``score`` the clip's mAP50-95 (class mean, COCO AP) against the net's
finds on the source (what an encoder can measure, since it has the source), ``bpp`` the clip's
bits over its pixels and frames, ``w = w0 * 2 ** ((q - 22) / 6)``. Each trial is a real coding
of the whole clip, so the traded point is exactly what an encoder that codes the clip at the
five shifts and keeps one would write. The pooled points then give BD-rates against A1 and
against the reference coding itself.

``--trials ref,uniform,boost4`` also offers A1's constant-QP coding of the whole clip, and A1 with
the objects' CTUs 4 QP finer, at the same shifts beside the reference coding, as the detection
trade offers two shapes of map; ``--score`` scores trials on the class mean (``task``), on
``objects`` or on their mean (``both``).

``--segment N`` also replays the same trade per segment of N frames. That one is not exact (a
segment's trial was coded after frames of its own shift, not of the shift chosen before it), so
it is reported as an indication only.

Run ``benchmarks/bdrate.py --task video --methods uniform,policy --policy ref=video-reference
--qps 12,17,22,27,32,37,42,47,51`` first with the same clips and frames (with ``--policy boost4=...``
for that trial; the README has the commands): every coding is then read from the cache.

    python benchmarks/results/video-trade/replay_clips.py [--data CLIPS] [--start S] [--frames 150] \
        --output replay.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semrl.agent.resolve import resolve_named_policy
from semrl.bench.bdrate import bd_rate
from semrl.bench.items import TASKS
from semrl.bench.report import curves, point_quality, point_rate
from semrl.bench.runner import Method, PointResult, make_context, run_methods
from semrl.bench.tasknet import PooledScores
from semrl.files import atomic_write

BASE_QPS = (22, 27, 32, 37, 42, 47, 51)
LADDER = (12, 17, 22, 27, 32, 37, 42, 47, 51)
SHIFTS = (-10, -5, 0, 5, 10)
TRIALS = {
    "ref": "ref=video-reference",
    "uniform": None,
    "boost4": "boost4=benchmarks/results/video-ra-boost/boost_candidates.py:boost4",
}
"""Codings a trade may offer, with their policy: the reference coding, A1's constant QP, and A1 with
the objects' CTUs 4 QP finer (round 4)."""
WEIGHTS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
QUALITIES = ("task", "objects", "labels")


def _slice(p: PointResult, lo: int, hi: int) -> PointResult:
    """Frames ``lo:hi`` of a point."""
    return dataclasses.replace(
        p,
        frame_bits=p.frame_bits[lo:hi],
        frame_units=p.frame_units[lo:hi],
        scores=p.scores[lo:hi],
        psnr=p.psnr[lo:hi],
        psnr_y=p.psnr_y[lo:hi],
        ssim_y=p.ssim_y[lo:hi],
        label_scores=p.label_scores[lo:hi],
    )


def _join(parts: Sequence[PointResult], name: str, point: float) -> PointResult:
    """One point made of the parts' frames, in order."""
    out = PointResult(name, "policy", point, f"qp={point:g}", [], [], [], [], [], [], 0.0, 0.0)
    for p in parts:
        out.frame_bits += p.frame_bits
        out.frame_units += p.frame_units
        out.scores += p.scores
        out.psnr += p.psnr
        out.psnr_y += p.psnr_y
        out.ssim_y += p.ssim_y
        out.label_scores += p.label_scores
    return out


SCORES = ("task", "objects", "both")
"""What a trial is scored on: the class mean, ``objects`` (each class by its objects), or their mean."""


def _score(part: PointResult, score: str = "task") -> float:
    """The part's score in 0..1 against the net's finds on the source (1: none to find).

    Args:
        part: The frames scored.
        score: One of :data:`SCORES`.
    """
    pooled = PooledScores("video", part.scores)
    values = {"task": pooled.metric()[0], "objects": pooled.objects()}
    value = values[score] if score != "both" else (values["task"] + values["objects"]) / 2
    return 1.0 if math.isnan(value) else value


Span = tuple[int, int, int]
"""(first frame, end, pixels per frame) of a clip or segment."""


def scored_trials(
    codings: dict[str, dict[int, PointResult]], spans: Sequence[Span], score: str
) -> dict[tuple[int, str, int], tuple[float, float]]:
    """Every trial's (score, bpp), once: by (span index, coding, ladder QP).

    Args:
        codings: Each coding offered as a trial (by name), at every ladder QP.
        spans: The clips or segments, in order.
        score: What each trial is scored on (:data:`SCORES`).
    """
    return {
        (k, coding, qp): (_score(_slice(p, lo, hi), score), sum(p.frame_bits[lo:hi]) / (pixels * (hi - lo)))
        for k, (lo, hi, pixels) in enumerate(spans)
        for coding, by_qp in codings.items()
        for qp, p in by_qp.items()
    }


def traded(
    codings: dict[str, dict[int, PointResult]],
    spans: Sequence[Span],
    trials: dict[tuple[int, str, int], tuple[float, float]],
    w0: float,
    name: str,
) -> tuple[list[PointResult], list[list[str]]]:
    """The trade's point at every base QP, and the trial it kept for every span.

    Args:
        codings: Each coding offered as a trial (by name), at every ladder QP.
        spans: The clips or segments, in order.
        trials: Every trial's (score, bpp) (:func:`scored_trials` of the same codings and spans).
        w0: The weight per bpp at base QP 22.
        name: The method's name.

    Returns:
        The points, and per base QP each span's kept trial as ``<coding><shift>``, e.g. ``ref+5``.
    """
    points, kept = [], []
    for q in BASE_QPS:
        w = w0 * 2 ** ((q - 22) / 6)
        parts, chosen = [], []
        for k, (lo, hi, _) in enumerate(spans):
            best: tuple[float, float, str, int] | None = None
            for coding, by_qp in codings.items():
                for s in SHIFTS:
                    if q + s not in by_qp:
                        continue
                    value, bpp = trials[(k, coding, q + s)]
                    if best is None or (value - w * bpp, -bpp) > best[:2]:
                        best = (value - w * bpp, -bpp, coding, s)
            assert best is not None
            parts.append(_slice(codings[best[2]][q + best[3]], lo, hi))
            chosen.append(f"{best[2]}{best[3]:+d}")
        points.append(_join(parts, name, q))
        kept.append(chosen)
    return points, kept


def _bd(anchor: Sequence[PointResult], test: Sequence[PointResult], quality: str) -> dict[str, Any]:
    """BD-rate of one method's points against another's (each list is one method)."""
    a, t = (next(iter(curves("video", ps, quality).values())) for ps in (anchor, test))
    if any(math.isnan(v) for v in a.quality + t.quality):
        return {"pchip": None, "akima": None, "flags": ["no labels"]}
    r = bd_rate(a, t)
    return {"pchip": r.pchip, "akima": r.akima, "flags": list(r.flags)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="", help="clips (default: the benchmark's)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--segment", type=int, default=50, help="frames per segment of the indicative replay")
    parser.add_argument("--score", choices=SCORES, default="task", help="what a trial is scored on (round 1: task)")
    parser.add_argument(
        "--trials", default="ref", help="trials offered: ref, uniform, boost4 (rounds 1-2: ref; 3: ref,uniform)"
    )
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    trials = args.trials.split(",")
    if not trials or set(trials) - set(TRIALS):
        parser.error(f"--trials: a comma list of {', '.join(TRIALS)}")

    task = TASKS["video"]
    if args.data:
        task = dataclasses.replace(task, data=args.data)
    ctx = make_context(task, frames=args.frames, start=args.start, progress=False, workers=2)
    methods = [
        Method("uniform", "A1", tuple(map(float, LADDER if "uniform" in trials else BASE_QPS))),
    ]
    for name in ("ref", *(t for t in trials if t not in ("ref", "uniform"))):
        spec = TRIALS[name]
        assert spec is not None
        methods.append(Method(name, "policy", tuple(map(float, LADDER)), policy=resolve_named_policy(spec)[1]))
    results = run_methods(ctx, methods, workers=2)
    by_method: dict[str, dict[int, PointResult]] = {}
    for p in results:
        by_method.setdefault(p.method, {})[int(p.point)] = p
    a1, ref = [by_method["uniform"][q] for q in BASE_QPS], by_method["ref"]
    codings = {name: by_method[name] for name in trials}
    ref_base = [ref[q] for q in BASE_QPS]

    clips: list[Span] = []
    segments: list[Span] = []
    at = 0
    for item in ctx.items:
        n, pixels = len(item.yuv), item.shape[0] * item.shape[1]
        clips.append((at, at + n, pixels))
        segments += [(lo, min(lo + args.segment, at + n), pixels) for lo in range(at, at + n, args.segment)]
        at += n
    assert at == len(a1[0].frame_bits), "items and points disagree on frames"

    report: dict[str, Any] = {
        "command": "python benchmarks/results/video-trade/replay_clips.py " + " ".join(argv or []),
        "clips": [item.name for item in ctx.items],
        "counts": dict(ctx.counts),
        "score": args.score,
        "trials": trials,
        "ref": {q: _bd(a1, ref_base, q) for q in QUALITIES},
        "trials_vs_A1": {
            name: {q: _bd(a1, [codings[name][b] for b in BASE_QPS], q) for q in QUALITIES} for name in trials
        },
        "clip": {},
        "segment": {},
    }
    for kind, spans in (("clip", clips), ("segment", segments)):
        scored = scored_trials(codings, spans, args.score)
        for w0 in WEIGHTS:
            points, kept = traded(codings, spans, scored, w0, f"trade{w0:g}")
            report[kind][f"{w0:g}"] = {
                "vs_A1": {q: _bd(a1, points, q) for q in QUALITIES},
                "vs_ref": {q: _bd(ref_base, points, q) for q in QUALITIES},
                "points": [
                    {"qp": q, "kbps": point_rate("video", p), "task": point_quality("video", p, "task"),
                     "objects": point_quality("video", p, "objects"), "kept": s}
                    for q, p, s in zip(BASE_QPS, points, kept, strict=True)
                ],
            }  # fmt: skip
    report["A1"] = [{"qp": p.point, "kbps": point_rate("video", p), "task": point_quality("video", p, "task"),
                     "objects": point_quality("video", p, "objects")} for p in a1]  # fmt: skip
    atomic_write(args.output, (json.dumps(report, indent=1, default=float) + "\n").encode())
    print(_table(report))
    return 0


def _table(report: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:+.1f}"

    lines = [
        "| trade | w0 | task vs A1 | objects vs A1 | labels vs A1 | task vs ref | objects vs ref |",
        "|---|---|---|---|---|---|---|",
    ]
    r = {q: f(v["pchip"]) for q, v in report["ref"].items()}
    lines.append(f"| reference | | {r['task']} | {r['objects']} | {r['labels']} | | |")
    for kind in ("clip", "segment"):
        for w0, v in report[kind].items():
            a, b = v["vs_A1"], v["vs_ref"]
            lines.append(
                f"| {kind} | {w0} | {f(a['task']['pchip'])} | {f(a['objects']['pchip'])} | {f(a['labels']['pchip'])} "
                f"| {f(b['task']['pchip'])} | {f(b['objects']['pchip'])} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

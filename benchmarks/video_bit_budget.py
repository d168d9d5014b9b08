r"""Where constant-QP HEVC (A1) spends its bits on video, and so what coding the background coarser can save.

Every clip is coded as the video benchmark codes A1 (low-delay P or random access, preset medium,
one QP for every CTU), and each CTU's exact bits (the patched x265's per-CTU CABAC count) are
split by what the CTU holds:

- ``intra_objects`` / ``intra_background``: the IDR (and any other intra) frames' CTUs that the
  objects below touch, and the others;
- ``objects_moving`` / ``objects_static``: CTUs of inter frames that a box of the detector's
  objects on the source frame (confidence at least 0.25, the pseudo ground truth's and ROI's
  objects), grown by ROI's dilation, touches (everything the benchmark's pseudo ground truth scores
  is in them), split by whether the source changed there since the previous frame (more than 1 %
  of the CTU's pixels differ by more than 10 in luma after a 3x3 mean);
- ``moving`` / ``static``: the other CTUs of inter frames, split the same way;
- ``overhead``: headers, slice termination and emulation prevention.

A method that codes the objects' CTUs as A1 does and the rest for free saves at most the
``background`` share (``intra_background`` + ``moving`` + ``static``) of A1's bits at the same
accuracy on the pseudo ground truth (to first order: a coarser background also changes what later
frames predict from). That bounds what block-level semantic coding (ROI, the policies' block
offsets) can save on these clips; more has to come from coding the objects themselves more cheaply
(temporal allocation, as the frame cascades do)::

    python benchmarks/video_bit_budget.py                      # the video benchmark's 7 clips, 150 frames
    python benchmarks/video_bit_budget.py --gop ra --output benchmarks/results/video_bit_budget_ra.json
    python benchmarks/video_bit_budget.py --policy semrl=video \
        --policy cascade8_roi4=benchmarks/video_schedules.py:cascade8_roi4

With ``--policy`` the same split is made for each policy's codings at the same base QPs (with the
bits each spends against A1's), to see where it moves the bits.

Writes the shares per clip and QP, and pooled over the clips (bits summed), as JSON, and prints
the pooled table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.resolve import resolve_named_policy
from semrl.bench.encoding import encode_item
from semrl.bench.items import TASKS, Item, default_videos
from semrl.bench.runner import Context, Method, coding, make_context, map_forked
from semrl.bench.tasknet import Analysis
from semrl.codec import CTU_SIZE, ctu_grid
from semrl.errors import InvalidInputError, SemrlError
from semrl.files import atomic_write, check_can_create
from semrl.policy import RoiPolicy
from semrl.policy.roi import roi_blocks

ROOT = Path(__file__).resolve().parents[1]
SHARES = ("intra_objects", "intra_background", "objects_moving", "objects_static", "moving", "static", "overhead")
"""How a coding's bits are split (see the module docstring)."""

CHANGE_LEVEL, CHANGE_SHARE = 10.0, 0.01  # a CTU changed: > 1 % of its pixels differ by > 10 (3x3 mean luma)


def background(shares: dict[str, Any]) -> float:
    """The share of the bits outside the objects' CTUs (intra and inter): what free background would save."""
    return float(shares["intra_background"] + shares["moving"] + shares["static"])


def changed_ctus(
    previous: NDArray[np.float32], current: NDArray[np.float32], grid: tuple[int, int]
) -> NDArray[np.bool_]:
    """Which CTUs of ``grid`` changed between two luma frames (see :data:`CHANGE_LEVEL`)."""
    import cv2

    rows, cols = grid
    diff = np.abs(cv2.blur(current, (3, 3)) - cv2.blur(previous, (3, 3))) > CHANGE_LEVEL
    canvas = np.zeros((rows * CTU_SIZE, cols * CTU_SIZE), bool)
    h, w = diff.shape
    canvas[:h, :w] = diff
    share = canvas.reshape(rows, CTU_SIZE, cols, CTU_SIZE).mean(axis=(1, 3))
    changed: NDArray[np.bool_] = share > CHANGE_SHARE
    return changed


@dataclass(frozen=True)
class CtuMasks:
    """Per frame of a clip, which CTUs its objects touch and which changed since the previous frame.

    Attributes:
        objects: (rows, cols) bool per frame: touched by a box of the net's objects grown by ROI's dilation.
        changed: (rows, cols) bool per frame: :func:`changed_ctus` (all True on the first frame).
    """

    objects: list[NDArray[np.bool_]]
    changed: list[NDArray[np.bool_]]


def ctu_masks(item: Item, analysis: Analysis) -> CtuMasks:
    """The :class:`CtuMasks` of a clip (the same for every method and base QP that codes it)."""
    w, h = item.coded_size
    grid = ctu_grid(w, h)
    dilation = RoiPolicy().dilation
    lumas = [frame.luma() for frame in item.yuv]
    return CtuMasks(
        [roi_blocks(region, grid, dilation) for region in analysis.regions],
        [np.ones(grid, bool)] + [changed_ctus(a, b, grid) for a, b in pairwise(lumas)],
    )


def budget(ctx: Context, method: Method, item: Item, analysis: Analysis, masks: CtuMasks, qp: int) -> dict[str, float]:
    """Bits of one clip coded by ``method`` at base ``qp`` as the benchmark codes it, split into :data:`SHARES`.

    Args:
        ctx: The benchmark's context (its configuration and cache keys).
        method: A1 or a policy.
        item: The clip.
        analysis: The net's objects on its frames (the policies' input).
        masks: Its :func:`ctu_masks`.
        qp: The base QP.

    Returns:
        Bits (not shares) per part.
    """
    c = coding(ctx, method, qp, item, analysis)  # the benchmark's configuration and the method's offsets
    coded = encode_item(item, c.config, c.offsets, c.sources(item))
    out = dict.fromkeys(SHARES, 0.0)
    for frame in coded:
        out["overhead"] += frame.overhead_bits
        bits = frame.ctu_bits.astype(np.float64)
        objects, changed = masks.objects[frame.poc], masks.changed[frame.poc]
        if frame.slice_type == "I":
            out["intra_objects"] += bits[objects].sum()
            out["intra_background"] += bits[~objects].sum()
            continue
        out["objects_moving"] += bits[objects & changed].sum()
        out["objects_static"] += bits[objects & ~changed].sum()
        out["moving"] += bits[~objects & changed].sum()
        out["static"] += bits[~objects & ~changed].sum()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default="", help="a video, a folder of videos or a comma list (default: the benchmark's clips)"
    )
    parser.add_argument("--frames", type=int, default=150, help="frames of each clip (default 150)")
    parser.add_argument("--qps", default="22,27,32,37,42,47,51", help="base QPs (default: the benchmark's)")
    parser.add_argument("--gop", choices=("ldp", "ra"), default="ldp", help="low-delay P (default) or random access")
    parser.add_argument("--keyint", type=int, default=250, help="IDR interval (default 250, the benchmark's)")
    parser.add_argument("--workers", type=int, default=2, help="processes coding the clips (default 2)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="the benchmark's cache (for the analyses)")
    parser.add_argument("--policy", action="append", default=[], metavar="NAME=SPEC",
                        help="also split a policy's bits at the same base QPs (as bdrate.py --policy)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "video_bit_budget.json")
    args = parser.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it
    try:
        qps = [int(q) for q in args.qps.split(",")]
        if args.frames < 2 or not all(0 <= q <= 51 for q in qps):
            raise ValueError
    except ValueError:
        wrong = f"--frames must be at least 2 and --qps a comma list of QPs 0..51, got {args.frames} and {args.qps!r}"
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        task = replace(TASKS["video"], data=args.data) if args.data else TASKS["video"]
        methods = [Method("uniform", "A1", tuple(qps))]
        for spec in args.policy:
            name, policy = resolve_named_policy(spec)
            if name == "uniform":
                raise InvalidInputError(f"--policy takes NAME=SPEC with a name other than uniform, got {spec!r}")
            methods.append(Method(name, "policy", tuple(qps), policy=policy))
        ctx = make_context(
            task, frames=args.frames, cache_dir=args.cache_dir, progress=False, gop=args.gop, keyint=args.keyint
        )
        masks = {item.name: ctu_masks(item, analysis) for item, analysis in zip(ctx.items, ctx.analyses, strict=True)}
        jobs = [
            (ctx, method, item, analysis, masks[item.name], qp)
            for method in methods
            for item, analysis in zip(ctx.items, ctx.analyses, strict=True)
            for qp in qps
        ]
        results = list(map_forked(budget, jobs, args.workers))
    except SemrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    a1 = {(item.name, qp): sum(bits.values()) for (_, m, item, _, _, qp), bits in zip(jobs, results, strict=True)
          if m.name == "uniform"}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for (_, method, item, _, clip_masks, qp), bits in zip(jobs, results, strict=True):
        total = sum(bits.values())
        seconds = len(item.yuv) / (item.fps or 25.0)
        shares = {s: bits[s] / total for s in SHARES}
        object_ctus = float(np.mean([o.mean() for o in clip_masks.objects]))  # of all frames' CTUs
        rows.append({"method": method.name, "clip": item.name, "qp": qp, "kbit_s": total / seconds / 1000,
                     "bits_vs_a1": total / a1[item.name, qp], "object_ctus": object_ctus, **shares,
                     "background": background(shares)})  # fmt: skip
    pooled = []
    for method in methods:
        for qp in qps:
            mine = [b for (_, m, _, _, _, q), b in zip(jobs, results, strict=True) if m is method and q == qp]
            total = sum(sum(b.values()) for b in mine)
            shares = {s: sum(b[s] for b in mine) / total for s in SHARES}
            base = sum(a1[key] for key in a1 if key[1] == qp)
            pooled.append({"method": method.name, "qp": qp, "bits_vs_a1": total / base, **shares,
                           "background": background(shares)})  # fmt: skip
    report = {
        "command": "python benchmarks/video_bit_budget.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": args.data or default_videos(), "frames": args.frames, "gop": args.gop, "keyint": args.keyint,
        "roi_dilation_px": RoiPolicy().dilation, "seconds": round(time.perf_counter() - started, 1),
        "machine": f"{platform.node()} {platform.machine()}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pooled": pooled, "clips": rows,
    }  # fmt: skip
    atomic_write(args.output, json.dumps(report, indent=1).encode())
    print(f"{args.gop}, {len(ctx.items)} clips, {args.frames} frames: share of the bits (%), pooled over the clips")
    print("| method | QP | bits vs A1 | " + " | ".join(SHARES) + " | background (intra_background + moving + static) |")
    print("|---|---|---|" + "---|" * (len(SHARES) + 1))
    for p in pooled:
        cells = " | ".join(f"{100 * p[s]:.1f}" for s in SHARES)
        print(f"| {p['method']} | {p['qp']} | {p['bits_vs_a1']:.3f} | {cells} | {100 * background(p):.1f} |")
    print(f"written {args.output} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

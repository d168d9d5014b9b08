"""BD-rate of QP-allocation methods on task accuracy, with real x265 encodes and real task nets.

Methods, each at several operating points over one rate range, all through the patched x265
in-process: A1 ``uniform`` (constant QP), A2 ``x265-aq`` (CRF with the preset's adaptive
quantisation, cuTree for video), A3 ``roi-d<D>`` (offsets from the task net's objects on the
original: -D inside, +D outside; the best D is reported), and any policy (``--policy``), or any
policy on top of A2 (``--aq-policy``: its offsets added to x265's own AQ offsets at A2's CRF points).

    python benchmarks/bdrate.py --task detection        # one task
    python benchmarks/bdrate.py --task all              # the four settings and the summary table
    python benchmarks/bdrate.py --task detection --policy mine=my_pkg.policies:fn   # add a method
    python benchmarks/bdrate.py --task video --gop ra --data my_clips/     # video: random access, own clips
    python benchmarks/bdrate.py --task detection --split train --start 96 --policy run=run/ckpt.zip
        # train pictures 96.. : those a policy trained with `semrl train --limit 96` never saw
    python benchmarks/bdrate.py --task all --ray auto     # every coding as a task on a running Ray cluster

Video runs on the shared clips of ``videos/``, ``videos-extra/`` and TUD-Campus (``--data`` takes
any video, folder of videos, or a comma list), the first ``--frames`` frames of each (from frame
``--start``, e.g. to measure on the frames after those a policy trained on); clips with
real labels (MOTChallenge person boxes: PETS 2009 S2.L1, TUD-Campus, or ``<clip>.gt.txt`` beside a
clip) are also scored against them. Intervals come from a bootstrap over clips and over
``--segment`` frame segments.

Beside the task metric, detection-style tasks (and video) report quality ``objects``: the same
mAP50-95 with each class's AP weighted by its ground-truth objects, with its own BD-rates and
interval over the first bootstrap unit. Against pseudo ground truth a clip set holds many classes
seen only a few times (the 7 default clips: 20 classes, 11 with 12 objects or fewer, 66 % of the
objects persons), and each of them moves the class mean by a twentieth as one object is found or
lost; weighted by objects, every object counts alike (on those clips no curve of
``benchmarks/results/video-roi-cascade`` is then non-monotonic, where 82 BD-rate rows on the class
mean are).

Writes ``benchmarks/results/<task>/{bdrate.json,points.csv,bdrate.md,curves.png}`` (video with several
clips also ``clip_points.csv``: each clip's own curve points) and
``benchmarks/results/bdrate_summary.md``. Encodes and evaluations are cached (``--cache-dir``),
so adding a method computes only that method.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import platform
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from semrl.agent.resolve import resolve_named_policy
from semrl.assets import portable
from semrl.bench.cache import x265_key
from semrl.bench.items import TASKS, TaskSpec, default_videos
from semrl.bench.report import analyse, ground_truth_objects, markdown, plot, summary, write_csv, write_json
from semrl.bench.runner import (
    Method,
    make_context,
    method_id,
    reference_label_scores,
    reference_scores,
    run_methods,
)
from semrl.bench.tasknet import PooledScores, label_metric, task_metric
from semrl.cli.options import numbers
from semrl.cluster import add_ray_option, session
from semrl.codec import CTU_SIZE, QP_MAX, QP_MIN
from semrl.errors import InvalidInputError, SemrlError
from semrl.fidelity.detection import PSEUDO_GT_CONF
from semrl.files import atomic_write, check_can_create
from semrl.policy import Policy, RoiPolicy, own_rate_control

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_QPS = "22,27,32,37,42,47,51"
# CRF points spanning A1's rate range: in all-intra x265 codes CRF c at about QP c - 4 (its I-frame
# offset), so images use CRF 26..51; CRF 51 cannot reach the rate of QP 51.
DEFAULT_CRFS = {"image": "26,31,36,41,46,49,51", "video": "22,27,32,37,42,47,51"}
# On video D=12 was never the best (7 clips, LDP: D=4 +7.1, D=8 +0.7, D=12 +9.5 % against A1) and its
# points, objects at base - 12, are the dearest to code and score: the default video run leaves it out
# to finish within 45 minutes on 2 cores (``--roi-deltas 4,8,12`` runs it).
DEFAULT_ROI_DELTAS = {"image": "4,8,12", "video": "4,8"}
ALL_TASKS = tuple(TASKS)


def roi_points(qps: tuple[float, ...], delta: int) -> tuple[float, ...]:
    """A3's base QPs: the A1 points, and where they reach 51, virtual bases 51 + D/2 and 51 + D.

    ROI codes objects at base - D, so with bases capped at 51 its curve stops short of A1's
    low-rate end; the virtual bases (objects at 51 - D/2 and 51, the rest at 51) extend it.
    """
    if max(qps) < QP_MAX or delta <= 0:
        return qps
    return (*qps, QP_MAX + math.ceil(delta / 2), QP_MAX + delta)


GOP_TEXT = {
    "ldp": "ldp (low-delay P, no B-frames)",
    "ra": "ra (random access: the preset's B-frames, fixed GOP for constant QP, adaptive for CRF)",
}


def video_units(items: Any, segment: int) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Bootstrap units of a video run (whole clips, and segments of ``segment`` frames) and each item's frames.

    The windows of one clip (``--start 0,200``) are one clip unit: a resample draws the scene whole.
    """
    import numpy as np

    by_clip: dict[str, list[Any]] = {}
    segments, frames = [], {}
    start = 0
    for item in items:
        idx = np.arange(start, start + len(item.yuv))
        by_clip.setdefault(item.clip or item.name, []).append(idx)
        segments += [idx[s : s + segment] for s in range(0, len(idx), segment)]
        frames[item.name] = idx
        start += len(item.yuv)
    clips = [np.concatenate(windows) for windows in by_clip.values()]
    return {"clip": clips, f"{segment}-frame segment": segments}, frames


def image_units(items: Any) -> dict[str, list[Any]]:
    """Bootstrap units of a picture set holding several codings of each content under one file name (``--codings``).

    A pooled set (the pictures, their mirror images and their shifted copies, say: one
    ``data.yaml`` listing the three folders) holds each picture several times under the same file
    name: a resample draws a content with all its codings (``picture``), so the interval is that of
    the contents, not of codings that share their luck; ``image`` resamples every coding alone.
    """
    import numpy as np

    by_stem: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_stem.setdefault(Path(item.name).stem, []).append(i)
    return {"picture": [np.array(idx) for idx in by_stem.values()], "image": [np.array([i]) for i in range(len(items))]}


def _starts(text: str) -> list[int]:
    """``--start``: one first frame (or image), or a comma list of first frames."""
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"--start takes a whole number or a comma list of them, got {text!r}") from None


CONTROLLED_OPTIONS = frozenset({
    "preset", "input-res", "fps", "input-csp", "ctu", "qg-size", "qp", "crf", "bitrate", "cqp-offsets", "keyint",
    "bframes", "b-adapt", "frame-threads", "pools", "log-level", "rc-lookahead", "scenecut",
})  # fmt: skip
"""x265 options the benchmark sets itself (operating points, GOP, picture format): ``--x265`` may not."""


def x265_options(specs: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``--x265 NAME=VALUE`` options, checked against x265 itself (its parser) before any work.

    Raises:
        InvalidInputError: Not NAME=VALUE, an option the benchmark sets itself, or one x265 rejects.
    """
    from semrl.codec import EncoderConfig

    options = []
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        name = name.strip().removeprefix("--")
        if not sep or not name:
            raise InvalidInputError(f"--x265 takes NAME=VALUE (e.g. psy-rd=0), got {spec!r}")
        if name in CONTROLLED_OPTIONS:
            raise InvalidInputError(f"--x265 {name}: the benchmark sets it itself (use its own options)")
        options.append((name, value.strip()))
    if options:
        EncoderConfig(64, 64, options=tuple(options)).layout()  # x265 parses them: an unknown one fails here
    return tuple(options)


@dataclasses.dataclass(frozen=True)
class Request:
    """The options that take work to check, parsed and checked once, before any task runs.

    Attributes:
        starts: ``--start``: the first frame (or image) of each window.
        options: ``--x265``: options x265's own parser accepted.
        policies: ``--policy``: (name, policy), each resolved once (a checkpoint is loaded once);
            none unless ``--methods`` names ``policy``.
        aq_policies: ``--aq-policy``: the same, for policies on top of x265's CRF and AQ.
    """

    starts: list[int]
    options: tuple[tuple[str, str], ...]
    policies: tuple[tuple[str, Policy], ...]
    aq_policies: tuple[tuple[str, Policy], ...]

    @classmethod
    def of(cls, args: argparse.Namespace) -> Request:
        """Parse and check ``args``.

        Raises:
            SemrlError: A malformed option, or a policy that cannot be resolved.
        """
        wanted = "policy" in args.methods.split(",")
        policies = tuple(resolve_named_policy(spec, unnamed="policy") for spec in (args.policy or []) if wanted)
        aq_specs = args.aq_policy or []
        aq_policies = tuple(resolve_named_policy(spec, unnamed="policy-aq") for spec in aq_specs if wanted)
        for name, policy in policies + aq_policies:
            if own_rate_control(policy):
                raise InvalidInputError(
                    f"policy {name} is x265's own allocation, which the benchmark codes as its A2 anchor "
                    "(method x265-aq, in every run by default); leave it out"
                )
        return cls(_starts(args.start), x265_options(args.x265), policies, aq_policies)


def build_methods(args: argparse.Namespace, video: bool, request: Request | None = None) -> list[Method]:
    """The methods a run compares, from the command line (``request``: its parsed options, else parsed here)."""
    qps = tuple(numbers(args.qps, "--qps", "22,27,32"))
    for q in qps:
        if not (q == int(q) and QP_MIN <= q <= QP_MAX):
            raise InvalidInputError(f"QP points must be integers in {QP_MIN}..{QP_MAX}, got {q:g}")
    crfs = tuple(numbers(args.crfs or DEFAULT_CRFS["video" if video else "image"], "--crfs", "22,27,32"))
    wanted = set(args.methods.split(","))
    unknown = wanted - {"uniform", "x265-aq", "roi", "policy"}
    if unknown:
        raise InvalidInputError(f"unknown methods {sorted(unknown)}; choose from uniform, x265-aq, roi, policy")
    methods = []
    if "uniform" in wanted:
        methods.append(Method("uniform", "A1", qps))
    if "x265-aq" in wanted:
        methods.append(Method("x265-aq", "A2", crfs, crf=True))
    if "roi" in wanted:
        deltas = numbers(args.roi_deltas or DEFAULT_ROI_DELTAS["video" if video else "image"], "--roi-deltas", "4,8")
        for block in numbers(args.roi_blocks, "--roi-blocks", "64,16"):
            for d in deltas:
                policy = RoiPolicy(int(d), args.roi_dilation, int(block))
                name = f"roi-d{d:g}" if block == CTU_SIZE else f"roi{block:g}-d{d:g}"
                methods.append(Method(name, "A3", roi_points(qps, int(d)), policy=policy))
    if "policy" in wanted:
        request = request or Request.of(args)
        methods += [Method(name, "policy", qps, policy=policy) for name, policy in request.policies]
        methods += [Method(name, "policy", crfs, crf=True, policy=policy) for name, policy in request.aq_policies]
    return methods


def describe(
    args: argparse.Namespace,
    task: TaskSpec,
    ctx: Any,
    methods: list[Method],
    seconds: float,
    argv: list[str],
    starts: list[int],
) -> dict[str, Any]:
    """The ``description`` of the JSON: tools, machine, date, settings, and the methods that ran."""
    import numpy
    import torch
    import ultralytics

    _, x265 = x265_key()
    import bjontegaard

    frames = sum(len(i.yuv) for i in ctx.items)
    return {
        "command": portable("python benchmarks/bdrate.py " + " ".join(shlex.quote(a) for a in argv)),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''} "
                   f"{__import__('os').cpu_count()} cores, no GPU used".replace("  ", " "),
        "python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
        "ultralytics": ultralytics.__version__, "bjontegaard": bjontegaard.__version__,
        "ffmpeg": _ffmpeg_version(), **x265,
        "task": task.name, "metric": task.metric, "rate_unit": task.rate_unit,
        "data": portable(task.data or default_videos()) + ("" if task.split == "val" else f", {task.split} split"),
        "items": len(ctx.items),
        "frames": (f"{frames}, each clip's from its frame {args.start}" if len(starts) == 1
                   else f"{frames}, each clip in windows from its frames {args.start}")
                  if starts != [0] and task.video else frames,
        **({"first_item": f"image {args.start} of the split (those before it left out)"}
           if starts != [0] and not task.video else {}),
        "weights": f"{task.weights} ({ctx.net.fingerprint})",
        "preset": args.preset, **({"x265_options": dict(ctx.options)} if ctx.options else {}),
        "gop": GOP_TEXT[args.gop] + ", keyint " + str(args.keyint)
        if task.video else "intra (one IDR picture per image)",
        "rate": "bits of the whole stream / original pixels" if not task.video
                else "bits of the whole stream / clip duration / 1000 (kbit/s), clips pooled",
        "reference": "4:2:0 round trip (BT.601 limited range) of the original, no coding",
        "odd_sizes": "padded by one edge row/column to even for coding, cropped back before the net",
        "psnr": "RGB PSNR against the 4:2:0 reference, mean over frames (capped at 100 dB)",
        "ssim": "luma SSIM (skimage) against the 4:2:0 reference, mean over frames",
        "roi": f"boxes/masks of the task net on the original at conf 0.25 (Grad-CAM >= 0.5 for classification), "
               f"dilated {args.roi_dilation} px; blocks ({args.roi_blocks} px) touching: -D, others +D "
               f"(roi16-dD: per 16x16 block); base+offset clipped to 0..51",
        "bd_rate": "bjontegaard bd_rate on (rate, quality), pchip and akima, over the overlapping quality range, "
                   "after dropping points not above every lower-rate point; fewer than 3 kept: not comparable",
        "run_seconds": seconds,
        "work": dict(ctx.counts),
        "parallelism": f"Ray tasks at {args.ray}" if args.ray else f"{args.workers} worker processes",
        "methods": {m.name: method_id(m) for m in methods},
    }  # fmt: skip


def _ffmpeg_version() -> str:
    from semrl.media import ffmpeg_version

    return ffmpeg_version()


def run_task(name: str, args: argparse.Namespace, argv: list[str], request: Request | None = None) -> Path:
    """Run one task and write its files; returns the task's result folder.

    ``request`` is ``args``' parsed options (:meth:`Request.of`; parsed here when None). With
    ``--no-cache`` the fresh cache is a temporary folder, removed when the task ends.
    """
    request = request or Request.of(args)
    if not args.no_cache:
        return _run_task(name, args, argv, args.cache_dir, request)
    temporary = Path(tempfile.mkdtemp(prefix="semrl-bench-"))
    try:
        return _run_task(name, args, argv, temporary, request)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _run_task(name: str, args: argparse.Namespace, argv: list[str], cache_dir: Path | None, request: Request) -> Path:
    start = time.perf_counter()
    task = TASKS[name]
    if task.video and args.codings:
        raise InvalidInputError("--codings is for pictures; a clip's frames are drawn by clip and segment")
    if args.data or args.weights or args.split != "val":
        if task.video and args.split != "val":
            raise InvalidInputError(f"--split {args.split} is for images; give clips with --data")
        task = dataclasses.replace(
            task, data=args.data or task.data, weights=args.weights or task.weights, split=args.split
        )
    if args.sure_conf is not None:
        if not task.video:
            raise InvalidInputError(f"--sure-conf is for video's pseudo ground truth; {name} has labels")
        if not PSEUDO_GT_CONF < args.sure_conf <= 1:
            raise InvalidInputError(f"--sure-conf {args.sure_conf:g}: give a confidence in ({PSEUDO_GT_CONF:g}, 1]")
        metric = f"mAP50-95 (box, pseudo GT of the finds >= {args.sure_conf:g}, less sure ones don't care, COCO AP)"
        task = dataclasses.replace(task, sure_conf=args.sure_conf, metric=metric)
    ctx = make_context(
        task, limit=args.limit, frames=args.frames, start=request.starts, preset=args.preset, keyint=args.keyint,
        cache_dir=cache_dir, progress=not args.no_progress, gop=args.gop, options=request.options,
        workers=args.workers,
    )  # fmt: skip
    methods = build_methods(args, task.video, request)
    points = run_methods(ctx, methods, workers=args.workers, ray=args.ray)
    reference = PooledScores(name, reference_scores(ctx, "reference", args.workers))
    ref = reference.metric()
    orig = task_metric(name, reference_scores(ctx, "original", args.workers))
    units, items, labels_ref = None, None, None
    if args.codings:
        units = image_units(ctx.items)
    elif task.video:
        units, items = video_units(ctx.items, args.segment)
        labelled = reference_label_scores(ctx, args.workers)
        labels_ref = label_metric(labelled) if labelled else None
    results = analyse(
        name, points, ref, orig, bootstrap=args.bootstrap, seed=args.seed, units=units, label_reference=labels_ref,
        items=items, workers=1 if args.ray else args.workers, objects_reference=reference.objects(),
        ground_truth=None if name == "classification" else ground_truth_objects(reference.matches, ctx.net.net.names),
        baseline=args.baseline,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    description = describe(args, task, ctx, methods, seconds, argv, request.starts)
    out = Path(args.output) / name
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bdrate.json", f"bdrate-{name}", description, results)
    write_csv(out / "points.csv", results["points"])
    if "item_points" in results:
        write_csv(out / "clip_points.csv", results["item_points"])
    atomic_write(out / "bdrate.md", markdown(name, task.metric, task.rate_unit, results, description).encode())
    plot(out / "curves.png", name, task.metric, task.rate_unit, results)
    print(f"{name}: {seconds:.0f} s -> {out}")
    return out


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--task", default="detection", help=f"one of {', '.join(ALL_TASKS)}, a comma list, or 'all'")
    p.add_argument("--data", help="dataset name/folder/yaml, or a video file/folder (default: the task's)")
    p.add_argument("--weights", help="task net weights (default: the task's)")
    p.add_argument("--methods", default="uniform,x265-aq,roi,policy", help="subset of uniform,x265-aq,roi,policy")
    p.add_argument("--qps", default=DEFAULT_QPS, help="base QPs of A1, A3 and policies")
    crfs = f"images {DEFAULT_CRFS['image']}, video {DEFAULT_CRFS['video']}"
    p.add_argument("--crfs", help=f"CRF points of A2 (default: {crfs})")
    deltas = f"images {DEFAULT_ROI_DELTAS['image']}, video {DEFAULT_ROI_DELTAS['video']}"
    p.add_argument("--roi-deltas", help=f"A3 offset magnitudes D (default: {deltas})")
    p.add_argument("--roi-dilation", type=int, default=16, help="pixels the ROI region is grown by")
    p.add_argument(
        "--roi-blocks", default=str(CTU_SIZE), help="A3 block sizes: 64 (per CTU), 16 (per 16x16 block) or 64,16"
    )
    p.add_argument("--policy", action="append", help="NAME=module:function | file.py:function | checkpoint")
    p.add_argument(
        "--aq-policy",
        action="append",
        help="as --policy, but its offsets go on top of A2 (x265's CRF, AQ and cuTree) at A2's CRF points",
    )
    p.add_argument(
        "--baseline",
        help="a --policy NAME every other policy is also measured against (BD-rate and a paired bootstrap "
        "interval of the difference), e.g. the shipped policy beside candidates",
    )
    p.add_argument("--limit", type=int, help="first N images (or clips)")
    p.add_argument("--split", default="val", help="images: the dataset split (train to tune on; default val)")
    p.add_argument("--frames", type=int, default=150, help="video: first N frames of each clip (bounds the run)")
    p.add_argument(
        "--start",
        default="0",
        help="video: code each clip from its frame N on (as an IDR frame), e.g. the frames after those a "
        "policy trained on, or from each of several (0,200: each clip in two windows of --frames frames, "
        "drawn together by the bootstrap over clips); images: leave out the split's first N images, e.g. "
        "those a policy trained on with `semrl train --limit N` (default 0)",
    )
    p.add_argument("--gop", choices=("ldp", "ra"), default="ldp", help="video: low-delay P or random access")
    p.add_argument(
        "--sure-conf",
        type=float,
        metavar="C",
        help="video: pseudo ground truth only the original's finds at confidence C or more; detections of its "
        f"less sure finds (IoU 0.5) are don't care (default: every find >= {PSEUDO_GT_CONF:g} is ground truth)",
    )
    p.add_argument("--segment", type=int, default=30, help="video: frames per bootstrap segment")
    p.add_argument(
        "--codings", action="store_true",
        help="images: the set holds several codings of each picture under one file name (a pooled set, "
        "oracle_search.py --robust): the bootstrap draws each picture with all its codings",
    )  # fmt: skip
    p.add_argument("--preset", default="medium")
    p.add_argument(
        "--x265",
        action="append",
        metavar="NAME=VALUE",
        help="a further x265 option for every coding of the run, anchors included (e.g. psy-rd=0); repeatable",
    )
    p.add_argument("--keyint", type=int, default=250, help="video: IDR interval")
    p.add_argument("--workers", type=int, default=2, help="operating points coded at once (processes; default 2)")
    add_ray_option(p, "every image or clip at every point (instead of --workers)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples over images (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=str(RESULTS), help="results root (one folder per task)")
    p.add_argument("--cache-dir", type=Path, help="cache root (default: <semrl cache>/bench)")
    p.add_argument("--no-cache", action="store_true", help="use a fresh temporary cache")
    p.add_argument("--no-progress", action="store_true")
    return p


VIDEO_OPTIONS = ("--gop", "--frames", "--segment", "--keyint")
"""Options of the video setting alone, refused when a run codes only pictures."""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    names = ALL_TASKS if args.task == "all" else tuple(t.strip() for t in args.task.split(","))
    try:
        for n in names:
            if n not in TASKS:
                raise InvalidInputError(f"unknown task {n!r}; choose from {', '.join(ALL_TASKS)} or all")
        for option, value, least in (("--workers", args.workers, 1), ("--limit", args.limit, 1),
                                     ("--frames", args.frames, 1), ("--segment", args.segment, 1),
                                     ("--keyint", args.keyint, 1), ("--bootstrap", args.bootstrap, 0),
                                     ("--seed", args.seed, 0), ("--roi-dilation", args.roi_dilation, 0)):  # fmt: skip
            if value is not None and value < least:
                raise InvalidInputError(f"{option} must be at least {least}, got {value}")
        if not any(TASKS[n].video for n in names):
            for option in VIDEO_OPTIONS:  # pictures are coded each on its own: these would change nothing
                value = getattr(args, option.removeprefix("--"))
                if value != parser().get_default(option.removeprefix("--")):
                    raise InvalidInputError(
                        f"{option} {value} is for video; this run codes pictures alone ({', '.join(names)})"
                    )
        check_can_create(args.output, "--output")  # before the run, not after it
        if args.cache_dir is not None:
            check_can_create(args.cache_dir, "--cache-dir")
        request = Request.of(args)  # everything checked (and every policy loaded) before any heavy work
        methods = build_methods(args, False, request)
        policies = [m.name for m in methods if m.family == "policy"]
        if args.baseline is not None and args.baseline not in policies:
            raise InvalidInputError(
                f"--baseline {args.baseline!r} is not a --policy NAME of this run"
                + (f"; give one of: {', '.join(policies)}" if policies else "; add the policy with --policy NAME=...")
            )
        with session(args.ray) if args.ray else contextlib.nullcontext():
            for n in names:
                run_task(n, args, argv, request)
        root = Path(args.output)
        table = summary(root, "python benchmarks/bdrate.py --task all")
        atomic_write(root / "bdrate_summary.md", table.encode())
    except SemrlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Request", "build_methods", "main", "parser", "run_task"]

"""The rate-accuracy benchmark: real encodes by the patched x265, FFmpeg decodes, real task nets.

For every method and operating point each picture (or clip) is encoded in-process, the stream is
decoded by FFmpeg and checked equal to the encoder's reconstruction
(:mod:`semrl.bench.encoding`), and the task net scores the decoded pictures
(:mod:`semrl.bench.tasknet`). Rate is whole-stream bits per original pixel (images) or kbit/s
(video); an odd image padded to even for coding still counts its rate per original pixel. The
reference for "no loss" is the 4:2:0 picture the encoder receives (RGB -> BT.601 4:2:0 -> RGB,
no coding); the score on the original file (JPEG) is reported beside it.

Encodes and task evaluations are cached (:mod:`semrl.bench.cache`), so a rerun computes only
what changed.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from semrl.bench.cache import Cache, analysis_key, encode_key, eval_key, offsets_key, x265_key
from semrl.bench.encoding import decode_stream, encode_and_verify, encoder_config
from semrl.bench.items import Item, TaskSpec, default_videos, load_items
from semrl.bench.tasknet import (
    NET_THREADS,
    Analysis,
    TaskNet,
    net_threads,
    pack_analysis,
    pack_scores,
    unpack_analysis,
    unpack_scores,
)
from semrl.codec import CTU_SIZE, EncoderConfig, Gop, Yuv420, ctu_grid
from semrl.errors import InvalidInputError
from semrl.fidelity.detection import FrameMatches
from semrl.paths import cache_root
from semrl.policy import (
    Policy,
    PolicyInput,
    Prefilter,
    TrialCoding,
    clip_offsets,
    describe,
    needs_rgb,
    offset_block,
    offsets_identity,
    policy_offsets,
    prefilter_of,
    scaling_lists,
)


@dataclass(frozen=True)
class Method:
    """A method: a family of operating points.

    Attributes:
        name: Unique name (``uniform``, ``x265-aq``, ``roi-d8``, ``policy:...``).
        family: ``A1``, ``A2``, ``A3`` or ``policy``.
        points: Base QPs (constant-QP methods; above 51 for a policy means a virtual base, see
            :class:`~semrl.policy.PolicyInput`) or CRF values (``crf``).
        crf: Whether points are CRF values (x265's own rate control and AQ).
        policy: Offsets per CTU (or 16x16 block); None for none. With ``crf`` they are added to
            x265's own adaptive-quantisation offsets (the policy sees the CRF value as its base).
    """

    name: str
    family: str
    points: tuple[float, ...]
    crf: bool = False
    policy: Policy | None = None

    def label(self, point: float) -> str:
        """The point's label, e.g. ``qp=37`` or ``crf=30``."""
        return f"{'crf' if self.crf else 'qp'}={point:g}"


@dataclass
class PointResult:
    """One method at one operating point, with per-frame data for the bootstrap.

    Attributes:
        method: Method name.
        family: A1, A2, A3 or policy.
        point: QP or CRF.
        label: ``qp=37`` or ``crf=30``.
        frame_bits: Per frame (all items in order), bits of its access unit (for images the
            whole stream of the image).
        frame_units: Per frame, pixels (images) or seconds (video) the rate divides by.
        scores: Per frame scores.
        psnr: Per frame RGB PSNR against the 4:2:0 reference (capped at
            :data:`~semrl.fidelity.distortion.PSNR_CAP`; JSON has no infinity).
        psnr_y: Per frame luma PSNR (encoder's reconstruction against its input).
        ssim_y: Per frame luma SSIM against the 4:2:0 reference.
        encode_s: Seconds spent in x265 for the whole point (cached value when cached).
        mean_qp: Mean CTU QP over all frames.
        label_scores: Per frame, its person score against the clip's real labels (None for frames
            of items without them).
    """

    method: str
    family: str
    point: float
    label: str
    frame_bits: list[int]
    frame_units: list[float]
    scores: list[FrameMatches]
    psnr: list[float]
    psnr_y: list[float]
    ssim_y: list[float]
    encode_s: float
    mean_qp: float
    label_scores: list[FrameMatches | None] = field(default_factory=list)


def rate_of(bits: ArrayLike, units: ArrayLike, video: bool, draws: NDArray[np.int64] | None = None) -> float:
    """Bpp (bits / pixels) or kbit/s (bits / seconds / 1000).

    Args:
        bits: Per frame, its bits.
        units: Per frame, its pixels or seconds.
        video: kbit/s rather than bpp.
        draws: Per frame, the times it counts (a bootstrap resample); None: once each.
    """
    b, u = np.asarray(bits, np.float64), np.asarray(units, np.float64)
    w = np.ones(len(b)) if draws is None else np.asarray(draws, np.float64)
    return float(np.dot(w, b)) / float(np.dot(w, u)) / (1000.0 if video else 1.0)


@dataclass
class Context:
    """What every point of a task run shares.

    Attributes:
        task: The setting.
        items: Its images or clips.
        net: The task net.
        cache: Encodes and evaluations.
        analyses: Per item, the net's output on the original frames.
        preset: x265 preset.
        keyint: Video: IDR interval.
        x265_key: The x265 build's part of the cache keys.
        gop: Video: ``ldp`` or ``ra``.
        progress: Show progress bars.
        options: Further x265 options (name, value) every coding of the run gets.
        counts: Encodes and evaluations computed and found cached, for the report.
    """

    task: TaskSpec
    items: list[Item]
    net: TaskNet
    cache: Cache
    analyses: list[Analysis]
    preset: str
    keyint: int
    x265_key: str
    progress: bool = True
    gop: str = "ldp"
    options: tuple[tuple[str, str], ...] = ()
    counts: dict[str, int] = field(
        default_factory=lambda: {"encoded": 0, "encode_cached": 0, "evaluated": 0, "eval_cached": 0}
    )


def _cached_maps(
    ctx: Context, key: str | None, frames: int, run: Callable[[], list[NDArray[np.int32]]]
) -> tuple[list[NDArray[np.int32]], bool | None]:
    """A policy's maps of every frame of an item: read from the cache under ``key``, or ``run`` and stored there.

    Returns:
        The maps, and whether they were read (None: no key, so the policy is run every time).
    """
    if key is None:
        return run(), None
    found = ctx.cache.get_npz("policy", key)
    if found is not None and len(found) == frames:
        return [found[f"frame{i}"].astype(np.int32) for i in range(frames)], True
    given = run()
    ctx.cache.put_npz("policy", key, {f"frame{i}": o for i, o in enumerate(given)})
    return given, False


def _run_policy(
    method: Method,
    item: Item,
    analysis: Analysis,
    point: float,
    config: EncoderConfig,
    prefilter: Prefilter | None,
) -> list[NDArray[np.int32]]:
    """Runs ``method.policy`` on every frame of an item: its offsets as it gave them.

    ``prefilter``: the policy's (:func:`semrl.policy.prefilter_of`), which changes the frames x265 codes.
    """
    assert method.policy is not None
    ctu_shape = ctu_grid(config.width, config.height)
    state: dict[str, Any] = {}  # one per clip, shared by its frames
    given = []
    rgb = needs_rgb(method.policy)
    gop = config.layout()
    # a policy may code a picture on trial as the benchmark will: all-intra, without a pre-filter changing it
    alone = config.gop == Gop.INTRA and prefilter is None
    trial = TrialCoding(config, item.shape) if alone else None
    for i, frame in enumerate(item.yuv):
        frame_rgb = frame.to_rgb() if rgb else np.zeros((*frame.y.shape, 0), np.uint8)
        inputs = PolicyInput(
            frame_rgb,
            int(point),
            ctu_shape,
            analysis.regions[i],
            analysis.boxes[i],
            i,
            state,
            gop=gop,
            cls=analysis.cls[i],
            conf=analysis.conf[i],
            picture=frame,
            coding=trial,
        )
        given.append(policy_offsets(method.policy, inputs))
    return given


def _encoder_offsets(
    given: list[NDArray[np.int32]], method: Method, point: float, config: EncoderConfig
) -> list[NDArray[np.int32]] | None:
    """A policy's offsets as the encoder takes them: clipped to 0..51 around its base; None when all are 0."""
    base = int(point) if method.crf else config.qp
    clipped = [clip_offsets(o, int(point), base) for o in given]
    return clipped if any(o.any() for o in clipped) else None  # none: the keys plain encodes have


@dataclass(frozen=True)
class Coding:
    """One item at one operating point: its encoder configuration and its cache keys.

    Attributes:
        config: The encoder configuration.
        offsets: Per frame, the policy's offsets; None for none.
        key: The encode's cache key.
        eval_key: The task evaluation's cache key.
        label_key: The real-label evaluation's cache key; None for an item without labels.
        prefilter: What the policy does to the frames before x265 codes them; None: nothing.
        policy_offsets: With a pre-filter, the policy's own offsets per frame, which it reads.
        maps_cached: Whether the policy's maps were read from the cache; None: not cached (no policy,
            or one that does not name what its maps depend on: :func:`semrl.policy.offsets_identity`).
    """

    config: EncoderConfig
    offsets: list[NDArray[np.int32]] | None
    key: str
    eval_key: str
    label_key: str | None
    prefilter: Prefilter | None = None
    policy_offsets: list[NDArray[np.int32]] | None = None
    maps_cached: bool | None = None

    def sources(self, item: Item) -> list[Yuv420] | None:
        """The frames x265 codes, smoothed only when an encode needs them; None: the item's own."""
        if self.prefilter is None or self.policy_offsets is None:
            return None
        return [self.prefilter.soften(f, o) for f, o in zip(item.yuv, self.policy_offsets, strict=True)]


def _config(ctx: Context, method: Method, point: float, item: Item) -> EncoderConfig:
    """The encoder configuration of one item at one point."""
    qg_size = offset_block(method.policy) if method.policy is not None else CTU_SIZE
    return encoder_config(
        item, point, crf=method.crf, video=ctx.task.video, preset=ctx.preset, keyint=ctx.keyint, qg_size=qg_size,
        gop=ctx.gop, options=ctx.options, scaling_lists=scaling_lists(method.policy),
    )  # fmt: skip


def _policy_key(ctx: Context, method: Method, point: float, item: Item, config: EncoderConfig) -> str | None:
    """The cache key of a policy's maps of one item at one point; None: the policy is not named, or none."""
    identity = None if method.policy is None else offsets_identity(method.policy)
    if identity is None:
        return None
    analysed = analysis_key(item, ctx.task.name, ctx.net.fingerprint)
    return offsets_key(item, config, point, ctx.x265_key, identity, analysed)


def coding(ctx: Context, method: Method, point: float, item: Item, analysis: Analysis) -> Coding:
    """The encoder configuration, offsets and cache keys of an item at a point (runs the policy, or reads its maps)."""
    config = _config(ctx, method, point, item)
    prefilter = prefilter_of(method.policy)
    given: list[NDArray[np.int32]] = []
    maps_cached = None
    if method.policy is not None:
        maps_key = _policy_key(ctx, method, point, item, config)
        run = functools.partial(_run_policy, method, item, analysis, point, config, prefilter)
        given, maps_cached = _cached_maps(ctx, maps_key, len(item.yuv), run)
    offsets = _encoder_offsets(given, method, point, config)
    key = encode_key(item, config, offsets, ctx.x265_key, None if prefilter is None else prefilter.fingerprint)
    return Coding(config, offsets, key, eval_key(item, key, ctx.task.scoring, ctx.net.fingerprint),
                  label_key(item, key, ctx.net.fingerprint), prefilter,
                  None if prefilter is None else given, maps_cached)  # fmt: skip


def _known_cached(ctx: Context, method: Method, point: float, item: Item, analysis: Analysis) -> bool:
    """Whether a coding is cached, found without running a named policy whose maps are not.

    Such a policy's coding is then taken as not cached: it is run where the coding is (a Ray
    worker, whose maps come back), not once more here.
    """
    key = _policy_key(ctx, method, point, item, _config(ctx, method, point, item))
    if key is not None and not ctx.cache.has("policy", key):
        return False
    return is_cached(ctx, coding(ctx, method, point, item, analysis))


def is_cached(ctx: Context, c: Coding) -> bool:
    """Whether the encode and every evaluation of a coding are in the cache."""
    return (
        ctx.cache.get_json(c.key) is not None
        and ctx.cache.has("eval", c.eval_key)
        and (c.label_key is None or ctx.cache.has("eval", c.label_key))
    )


def run_point(ctx: Context, method: Method, point: float) -> PointResult:
    """Encode every item at one operating point and score the decoded frames."""
    result = PointResult(method.name, method.family, point, method.label(point), [], [], [], [], [], [], 0.0, 0.0)
    qps = []
    for item, analysis in zip(ctx.items, ctx.analyses, strict=True):
        c = coding(ctx, method, point, item, analysis)
        config, offsets, key, ekey, lkey = c.config, c.offsets, c.key, c.eval_key, c.label_key
        if c.maps_cached is not None:
            maps = "policy_cached" if c.maps_cached else "policy_run"
            ctx.counts[maps] = ctx.counts.get(maps, 0) + 1
        stats = ctx.cache.get_json(key)
        cached_eval = ctx.cache.get_npz("eval", ekey)
        cached_labels = ctx.cache.get_npz("eval", lkey) if lkey is not None else None
        frames: list[NDArray[np.uint8]] | None = None
        ctx.counts["encoded" if stats is None else "encode_cached"] += 1
        missing = cached_eval is None or (lkey is not None and cached_labels is None)
        ctx.counts["evaluated" if missing else "eval_cached"] += 1
        if stats is None:
            stats, frames = encode_and_verify(item, config, offsets, ctx.cache.stream(key), c.sources(item))
            ctx.cache.put_json(key, stats)
        labelled: list[FrameMatches] | None = None
        if missing:
            if frames is None:
                frames = decode_stream(item, config, ctx.cache.stream(key))
            scores, labelled = ctx.net.score_all(item, frames, analysis)
            ctx.cache.put_npz("eval", ekey, pack_scores(scores))
            if lkey is not None and labelled is not None:
                ctx.cache.put_npz("eval", lkey, pack_scores(labelled))
        else:
            assert cached_eval is not None
            scores = unpack_scores(cached_eval)
            labelled = unpack_scores(cached_labels) if cached_labels is not None else None
        n = len(item.yuv)
        h, w = item.shape
        result.frame_bits += [int(b) for b in stats["frame_bits"]]
        result.frame_units += [1.0 / float(item.fps)] * n if item.fps else [float(h * w)] * n
        result.scores += scores
        result.label_scores += list(labelled) if labelled is not None else [None] * n
        result.psnr += [float(v) for v in stats["psnr"]]
        result.psnr_y += [float(v) for v in stats["psnr_y"]]
        result.ssim_y += [float(v) for v in stats["ssim_y"]]
        result.encode_s += float(stats["encode_s"])
        qps += [float(stats["mean_qp"])] * n
    result.mean_qp = float(np.mean(qps))
    return result


def label_key(item: Item, stream_key: str, fingerprint: str) -> str | None:
    """Cache key of a coding's scores against an item's real labels (None: the item has none)."""
    if item.frame_labels is None:
        return None
    return eval_key(item, stream_key, "video-labels", fingerprint)


def reference_label_scores(ctx: Context, workers: int = 1) -> list[FrameMatches]:
    """Scores of the 4:2:0 reference frames against the clips' real labels (labelled clips only).

    Args:
        ctx: The run.
        workers: Items scored at once (forked processes), those not cached.
    """
    keys = [label_key(item, "reference", ctx.net.fingerprint) for item in ctx.items]
    return [s for z in _cached_per_item(ctx, "eval", keys, _labelled_reference, workers) for s in unpack_scores(z)]


def _labelled_reference(ctx: Context, k: int) -> dict[str, NDArray[Any]]:
    item = ctx.items[k]
    labelled = ctx.net.score_all(item, _reference_frames(item), ctx.analyses[k])[1]
    assert labelled is not None
    return pack_scores(labelled)


def _reference_frames(item: Item) -> list[NDArray[np.uint8]]:
    return [item.reference(i) for i in range(len(item.yuv))]


def reference_scores(ctx: Context, which: str, workers: int = 1) -> list[FrameMatches]:
    """Scores of the uncoded frames: ``reference`` (4:2:0 round trip) or ``original`` (the file).

    Args:
        ctx: The run.
        which: ``reference`` or ``original``.
        workers: Items scored at once (forked processes), those not cached.
    """
    keys = [eval_key(item, which, ctx.task.scoring, ctx.net.fingerprint) for item in ctx.items]
    found = _cached_per_item(ctx, "eval", keys, _uncoded_scores, workers, which)
    return [s for z in found for s in unpack_scores(z)]


def _uncoded_scores(ctx: Context, k: int, which: str) -> dict[str, NDArray[Any]]:
    item = ctx.items[k]
    if which != "reference":
        return pack_scores(ctx.net.score(item, item.source, ctx.analyses[k]))
    scores, labelled = ctx.net.score_all(item, _reference_frames(item), ctx.analyses[k])
    key = label_key(item, "reference", ctx.net.fingerprint)
    if labelled is not None and key is not None:  # the same net pass: reference_label_scores then reads it
        ctx.cache.put_npz("eval", key, pack_scores(labelled))
    return pack_scores(scores)


def analyse_items(ctx: Context, workers: int = 1) -> list[Analysis]:
    """The task net's output on every item's original frames (cached; those not cached in ``workers`` processes)."""
    keys = [analysis_key(item, ctx.task.name, ctx.net.fingerprint) for item in ctx.items]
    return [unpack_analysis(z) for z in _cached_per_item(ctx, "analysis", keys, _analysed, workers)]


def _analysed(ctx: Context, k: int) -> dict[str, NDArray[Any]]:
    item = ctx.items[k]
    analysis, original = ctx.net.analyse_all(item)
    if original is not None:  # the same net pass: reference_scores(ctx, "original") then reads it
        key = eval_key(item, "original", ctx.task.scoring, ctx.net.fingerprint)
        ctx.cache.put_npz("eval", key, pack_scores(original))
    return pack_analysis(analysis, item.shape)


def _cached_per_item(
    ctx: Context, kind: str, keys: Sequence[str | None], compute: Callable[..., dict[str, NDArray[Any]]],
    workers: int, *args: Any,
) -> list[dict[str, NDArray[Any]]]:  # fmt: skip
    """Per item with a key, in item order: its cached arrays, or those ``compute(ctx, k, *args)`` makes.

    The items not cached are computed in ``workers`` forked processes, then cached.
    """
    found = {k: ctx.cache.get_npz(kind, key) for k, key in enumerate(keys) if key is not None}
    missing = [k for k, z in found.items() if z is None]
    computed = map_forked(compute, [(ctx, k, *args) for k in missing], workers)
    for k, z in zip(missing, _progress(computed, f"{kind}: uncoded frames", ctx.progress, len(missing)), strict=True):
        key = keys[k]
        assert key is not None
        ctx.cache.put_npz(kind, key, z)
        found[k] = z
    return [z for _, z in sorted(found.items()) if z is not None]


def _progress(iterable: Iterable[Any], desc: str, enabled: bool, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, total=total)


def make_context(
    task: TaskSpec,
    *,
    limit: int | None = None,
    frames: int = 30,
    start: int | Sequence[int] = 0,
    preset: str = "medium",
    keyint: int = 250,
    cache_dir: Path | None = None,
    progress: bool = True,
    gop: str = "ldp",
    options: tuple[tuple[str, str], ...] = (),
    workers: int = 1,
) -> Context:
    """Load the net and the items, and analyse the originals.

    Args:
        task: The setting.
        limit: First N images or clips.
        frames: Video: N frames of each clip.
        start: Video: the first frame of each clip read (coded as an IDR frame; 0: its first), or
            several: each clip is then read in each window (:func:`semrl.bench.items.load_items`).
        preset: x265 preset.
        keyint: Video: IDR interval.
        cache_dir: Cache root (default ``<semrl cache>/bench``).
        progress: Show progress bars.
        gop: Video: ``ldp`` (low-delay P) or ``ra`` (random access).
        options: Further x265 options (name, value) for every coding of the run, anchors included.
        workers: Items analysed at once (forked processes), those not cached.

    Raises:
        InvalidInputError: The task's data has no items.
    """
    if gop not in ("ldp", "ra"):
        raise InvalidInputError(f"gop must be 'ldp' or 'ra', got {gop!r}")
    key, _ = x265_key()
    net = TaskNet(task)
    items = load_items(task, net.net.names, limit, frames, start)
    if not items:
        raise InvalidInputError(f"no items found for task {task.name} in {task.data or default_videos()}")
    cache = Cache(cache_dir if cache_dir is not None else cache_root() / "bench")
    ctx = Context(task, items, net, cache, [], preset, keyint, key, progress, gop, options)
    ctx.analyses = analyse_items(ctx, workers)
    return ctx


_FORKED: dict[str, Any] = {}  # what forked workers inherit instead of unpickling it


class _WorkerTerminated(BaseException):
    """SIGTERM in a forked worker while it runs a job."""


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise _WorkerTerminated


def _forked_call(k: int) -> Any:
    # When one worker dies, the executor terminates the others (SIGTERM), maybe in the middle of
    # writing a cache file: unwinding removes the temporary file, which the default SIGTERM would
    # leave behind; then the worker exits at once, as terminated.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _FORKED["function"](*_FORKED["jobs"][k])
    except _WorkerTerminated:
        os._exit(128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def map_forked(function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int) -> Iterator[Any]:
    """``function`` on each job's arguments in up to ``workers`` forked processes; results in job order.

    The workers inherit the jobs (a context, its net and items, the points of a run) instead of
    unpickling them; only the results travel back. One worker, or one job, runs here. When a
    worker dies, the executor terminates the others; they unwind first, so a file they were
    writing atomically leaves no temporary behind.

    Raises:
        BrokenProcessPool: A worker died (an executor, unlike ``Pool``, does not wait forever).
    """
    if workers <= 1 or len(jobs) <= 1:
        yield from (function(*job) for job in jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _FORKED.update(function=function, jobs=list(jobs))
    try:
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=fork) as pool:
            yield from pool.map(_forked_call, range(len(jobs)))
    finally:
        _FORKED.clear()


def _forked_point(ctx: Context, methods: Sequence[Method], k: int, point: float) -> tuple[PointResult, dict[str, int]]:
    import torch

    torch.set_num_threads(NET_THREADS)  # one point per CPU, and the same sums as in-process
    ctx.counts = dict.fromkeys(ctx.counts, 0)  # this worker's own tally, added up by the parent
    return run_point(ctx, methods[k], point), ctx.counts


@dataclass(frozen=True)
class TaskNetFactory:
    """Builds a task net in a worker process (picklable, hashable: one net per process and task)."""

    task: TaskSpec

    def __call__(self) -> TaskNet:
        """The net."""
        return TaskNet(self.task)


def _ray_coding(job: tuple[Any, ...]) -> tuple[dict[str, str], tuple[dict[str, bytes], dict[str, int]]]:
    """A Ray task: one item at one point, coded and scored into a scratch cache whose files go back."""
    import tempfile

    import ray

    from semrl.cluster import per_process

    task, item, analysis, method, point, preset, keyint, gop, options = job
    item = ray.get(item) if isinstance(item, ray.ObjectRef) else item
    net = per_process(TaskNetFactory(task))
    key, _ = x265_key()
    with tempfile.TemporaryDirectory(prefix="semrl-ray-") as scratch:
        sub = Context(task, [item], net, Cache(Path(scratch)), [analysis], preset, keyint, key, False, gop, options)
        run_point(sub, method, point)
        return bench_identity(key, net), (sub.cache.files(), sub.counts)


def bench_identity(x265: str, net: TaskNet) -> dict[str, str]:
    """What a coding's files depend on besides the item and the point: the x265 build and the weights."""
    return {"x265": x265, "weights sha256": net.net.weights_sha256}


def _run_on_ray(ctx: Context, methods: Sequence[Method], address: str) -> dict[str, int]:
    """Codes and scores every (item, point) the cache lacks as Ray tasks, into the cache.

    Items with a failed coding are dropped from ``ctx`` (with a warning naming them), so every
    method is compared on the same items.

    Returns:
        Encodes and evaluations the workers computed.
    """
    import warnings

    import ray

    from semrl.cluster import ClusterError, report_failures, run_jobs, session

    with session(address):
        refs = [ray.put(item) for item in ctx.items]
        jobs, owners = [], []
        for m in methods:
            for p in m.points:
                for k, (item, analysis) in enumerate(zip(ctx.items, ctx.analyses, strict=True)):
                    if not _known_cached(ctx, m, p, item, analysis):
                        job = (ctx.task, refs[k], analysis, m, p, ctx.preset, ctx.keyint, ctx.gop, ctx.options)
                        jobs.append((f"{item.name} {m.name} {m.label(p)}", job))
                        owners.append(k)
        done = {"encoded": 0, "evaluated": 0, "policy_run": 0}

        def store(index: int, result: tuple[dict[str, bytes], dict[str, int]]) -> None:
            files, counts = result
            ctx.cache.put_files(files)
            for name in done:
                done[name] += counts.get(name, 0)

        identity = bench_identity(ctx.x265_key, ctx.net)
        failures = run_jobs(_ray_coding, jobs, identity=identity, on_result=store,
                            desc=f"{ctx.task.name} codings", progress=ctx.progress)  # fmt: skip
    if failures:
        bad = sorted({owners[f.index] for f in failures})
        message = report_failures(failures, "coding(s)")
        if len(bad) == len(ctx.items):
            raise ClusterError(message)
        names = ", ".join(ctx.items[k].name for k in bad)
        warnings.warn(f"{message}; left out of every method: {names}", stacklevel=3)
        ctx.items = [item for k, item in enumerate(ctx.items) if k not in bad]
        ctx.analyses = [a for k, a in enumerate(ctx.analyses) if k not in bad]
    return done


def run_methods(
    ctx: Context,
    methods: Sequence[Method],
    on_point: Callable[[PointResult], None] | None = None,
    workers: int = 1,
    ray: str | None = None,
) -> list[PointResult]:
    """Run every operating point of every method, with a progress bar; results in method and point order.

    Args:
        ctx: The run's context.
        methods: The methods.
        on_point: Called with each finished point.
        workers: Points run at once, each in a forked process that inherits the context (the
            net, the items and the policies) and runs the net on one thread; 1 runs them here.
            Results are the same either way (each point's encodes and scores are deterministic
            and cached under the same keys).
        ray: Ray address (:mod:`semrl.cluster`): every item at every point the cache lacks is
            coded and scored as one Ray task, its cache entries sent back and stored here, then
            the points are read from the cache (``workers`` is not used). An item whose coding
            fails is left out of every method with a warning.
    """
    if ray is not None:
        remote = _run_on_ray(ctx, methods, ray)
        read = run_methods(ctx, methods, on_point)  # all cached now: read, in method and point order
        pairs = (("encoded", "encode_cached"), ("evaluated", "eval_cached"), ("policy_run", "policy_cached"))
        for computed, cached in pairs:
            if remote[computed]:
                ctx.counts[computed] = ctx.counts.get(computed, 0) + remote[computed]
                ctx.counts[cached] -= remote[computed]
        return read
    jobs = [(k, p) for k, m in enumerate(methods) for p in m.points]
    results: list[PointResult] = []
    bar = _progress(jobs, f"{ctx.task.name} points", ctx.progress)
    if workers <= 1 or len(jobs) <= 1:
        for k, p in bar:
            m = methods[k]
            if ctx.progress:
                bar.set_postfix_str(f"{m.name} {m.label(p)}")
            with net_threads():  # as in a forked worker: the policies' nets give the same maps
                r = run_point(ctx, m, p)
            results.append(r)
            if on_point is not None:
                on_point(r)
        return results
    for r, counts in map_forked(_forked_point, [(ctx, methods, k, p) for k, p in jobs], workers):
        results.append(r)
        for name, n in counts.items():
            ctx.counts[name] = ctx.counts.get(name, 0) + n
        if ctx.progress:
            bar.update()
        if on_point is not None:
            on_point(r)
    return results


def method_id(method: Method) -> str:
    """Description of a method for the report."""
    rate_control = "x265 crf + aq" if method.crf else "constant qp"
    if method.policy is None:
        return rate_control
    return f"{describe(method.policy)} on {rate_control}" if method.crf else describe(method.policy)

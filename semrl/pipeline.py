"""``semrl encode``: frames -> semantic analysis -> policy -> patched x265 -> standard HEVC."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import os
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from semrl.codec import (
    QP_MAX,
    QP_MIN,
    AnnexBWriter,
    EncodedFrame,
    Encoder,
    EncoderConfig,
    Gop,
    ScalingLists,
    Yuv420,
    psnr_from_sse,
    require_one_ctu,
)
from semrl.errors import AudioError, InputWarning, InvalidInputError, MediaToolError
from semrl.fidelity.distortion import clip_psnr, frame_psnr
from semrl.files import atomic_output, atomic_write, check_can_create, json_text
from semrl.media import (
    VIDEO_SUFFIXES,
    FrameSource,
    FrameTimes,
    SourceInfo,
    frame_times,
    has_audio,
    mux_mp4,
    open_source,
)
from semrl.policy import (
    Policy,
    PolicyInput,
    TrialCoding,
    clip_offsets,
    needs_regions,
    needs_rgb,
    offset_block,
    own_rate_control,
    policy_offsets,
    policy_task,
    prefilter_of,
    runs_own_net,
    scaling_lists,
)
from semrl.ratecontrol import RateController, temporal_activity
from semrl.semantics import TASKS
from semrl.semantics.yolo import PRECISIONS

OUTPUT_SUFFIXES = (".hevc", ".h265", ".265", ".mp4")
"""What ``semrl encode`` writes: a raw HEVC stream, or an MP4 (pictures and audio)."""
LOOKAHEAD_INTERVALS = 3
"""Frames are buffered this many map intervals ahead of the encoder, so a slow analysis (the
worker shares the CPU with x265) is absorbed before the encoder has to wait for it..."""
LOOKAHEAD_FRAMES = 64
"""...but never more frames than this, so memory stays bounded whatever the interval."""
FREEZE_MIN_ANALYSES = 32
"""Analysed frames from which ``semrl encode`` runs its task net as a frozen graph
(:meth:`semrl.semantics.yolo.YoloNet.freeze`): tracing takes about 0.4 s, which a clip with fewer
analyses does not win back (the built-in 16-frame sample has 2; PETS, 795 frames, 80)."""
STAGES = ("setup", "decode", "semantics", "policy", "wait", "encode")


def writes_mp4(output: Path) -> bool:
    """Whether ``output`` is an MP4 (else a raw HEVC stream, which holds no audio)."""
    return output.suffix.lower() == ".mp4"


@dataclass(frozen=True)
class EncodeSettings:
    """What ``semrl encode`` does; the defaults are the command's.

    Attributes:
        policy: ``auto`` (the default: :data:`AUTO_VIDEO_POLICY` for a video or the built-in clip,
            :data:`AUTO_BITRATE_VIDEO_POLICY` for them under ``bitrate``,
            :data:`AUTO_RANDOM_ACCESS_VIDEO_POLICY` under random access without it, the shipped
            ``detection`` policy for images), a task name (the policy shipped for it), ``video``,
            ``video-reference``, ``uniform``, ``roi``, ``x265``, a checkpoint path (``ckpt.zip``),
            or ``module:function``.
        task: the task whose net drives the policy; None takes the policy's own (``roi``: detection).
        qp: base QP.
        preset: x265 preset.
        gop: GOP structure.
        keyint: IDR interval.
        max_frames: encode at most this many frames.
        map_interval: run the task net every this many frames; in between, the last analysis and
            its QP offsets are reused (a speed/accuracy trade-off for video).
        map_size: network input size of the task net (detection and segmentation); None: the
            frame's long side rounded up to a multiple of 32, at most 640 (no upscaling of small video).
        roi_delta: ``roi``: QP offset magnitude (inside -delta, outside +delta).
        threads: x265 worker threads; None: one per core, as x265 itself defaults. x265 codes the
            same bytes for any count (:class:`semrl.codec.EncoderConfig`); on CPU the task net gets
            the cores an explicit count leaves.
        device: task-net device (None: CUDA when present).
        net_precision: the number format of the task net that finds the objects on the analysed
            frames (:data:`semrl.semantics.yolo.PRECISIONS`). ``bf16`` runs the net 1.6x faster on
            a CPU that computes in bfloat16 natively, and slower elsewhere (a warning says so);
            its objects differ near the confidence threshold, which moved the class-mean BD-rate
            by +3.3, +5.1 and +14.4 % on three sets of frames and the object-weighted one by
            -0.6, -0.3 and -0.7 % (``benchmarks/results/net-precision``, rounds 1 and 3), so the
            default stays ``fp32``. In ``fp32`` on CPU, for a clip of at least
            :data:`FREEZE_MIN_ANALYSES` analysed frames, the net runs as a frozen graph
            (:meth:`semrl.semantics.yolo.YoloNet.freeze`: the same objects, 10 % faster). The
            image policies' own nets, which read their features, stay ``fp32``, as they were trained.
        fps: frame rate for image inputs, or to override a video's.
        crop_even: code an input of odd width or height without its last column or row (HEVC
            4:2:0 needs an even size); False refuses it.
        qp_maps: folder for PNGs of decoded frames with their QP map drawn over them, or None.
        qp_map_every: with ``qp_maps``, every this many frames (from the first).
        weights: the task net's weights (any Ultralytics checkpoint of the task, custom classes
            included) instead of the task's default; a trained policy accepts only the weights it
            was trained with.
        classes: class names the policy cares about (the net's objects of other classes are
            ignored); policies fed by the task net only (``roi``, ``module:function``).
        bitrate: target rate in kbit/s: each frame's QP is chosen by
            :class:`semrl.ratecontrol.RateController` (``qp`` is then unused), the policy still
            shares the bits inside the frame; None: constant base QP ``qp``.
        audio: put a video's first audio track into an MP4 output beside the pictures, cut to
            the frames coded (copied where MP4 holds its codec, else re-encoded to AAC); False
            leaves it out. Not carried when ``fps`` re-times the video (a warning says so).
    """

    policy: str = "auto"
    task: str | None = None
    qp: int = 32
    preset: str = "medium"
    gop: Gop = Gop.LOW_DELAY_P
    keyint: int = 250
    max_frames: int | None = None
    map_interval: int = 10
    map_size: int | None = None
    roi_delta: int = 8
    threads: int | None = None
    device: str | None = None
    net_precision: str = "fp32"
    fps: Fraction | None = None
    crop_even: bool = False
    qp_maps: Path | None = None
    qp_map_every: int = 25
    weights: str | None = None
    classes: tuple[str, ...] | None = None
    bitrate: float | None = None
    audio: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gop", Gop(self.gop))
        if self.task is not None and self.task not in TASKS:
            raise InvalidInputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InvalidInputError(f"--frames must be at least 1, got {self.max_frames}")
        if self.net_precision not in PRECISIONS:
            raise InvalidInputError(
                f"unknown --net-precision {self.net_precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if self.map_interval < 1:
            raise InvalidInputError(f"--map-interval must be at least 1, got {self.map_interval}")
        if not QP_MIN <= self.qp <= QP_MAX:
            raise InvalidInputError(f"--qp must be in {QP_MIN}..{QP_MAX}, got {self.qp}")
        if self.fps is not None and self.fps <= 0:
            raise InvalidInputError(f"--fps must be above 0, got {self.fps}")
        if self.map_size is not None and (self.map_size < 32 or self.map_size % 32):
            raise InvalidInputError(f"--map-size must be a multiple of 32 from 32 up, got {self.map_size}")
        if self.bitrate is not None and not self.bitrate > 0:
            raise InvalidInputError(f"--bitrate must be a positive number of kbit/s, got {self.bitrate}")
        if self.qp_map_every < 1:
            raise InvalidInputError(f"--qp-map-every must be at least 1, got {self.qp_map_every}")
        for option, value, least in (("--keyint", self.keyint, 1), ("--threads", self.threads, 1),
                                     ("--roi-delta", self.roi_delta, 0)):  # fmt: skip
            if value is not None and value < least:
                raise InvalidInputError(f"{option} must be at least {least}, got {value}")
        if self.roi_delta > QP_MAX:
            raise InvalidInputError(f"--roi-delta must be at most {QP_MAX}, got {self.roi_delta}")

    @property
    def x265_threads(self) -> int:
        """The x265 worker threads: ``threads``, or one per core."""
        return self.threads if self.threads is not None else os.cpu_count() or 1


@dataclass(frozen=True)
class FrameRow:
    """One coded frame in the report.

    ``recon_md5``: MD5 of the decoded picture's I420 bytes. ``kept``: for a policy that codes the
    frame on trial, the trial it kept and of how many (e.g. ``roi-d8 +3 of 24 trials``); else empty.
    """

    index: int
    poc: int
    slice_type: str
    bits: int
    mean_qp: float
    psnr_y: float
    analysed: bool
    recon_md5: str
    kept: str = ""


@dataclass
class EncodeReport:
    """What an encode produced, with the time spent in each stage.

    ``psnr_y`` is the clip's luma PSNR as ``semrl eval`` gives it: the mean of the frames'
    (:func:`semrl.fidelity.distortion.clip_psnr`).
    """

    input: str
    output: str
    policy: str
    task: str | None
    width: int
    height: int
    fps: float
    frames: int
    bits: int
    kbps: float
    mean_qp: float
    psnr_y: float
    wall_s: float
    stage_s: dict[str, float]
    settings: dict[str, Any]
    rows: list[FrameRow] = field(default_factory=list)
    deinterlaced: bool = False
    """The input was interlaced and its frames were read deinterlaced (:attr:`SourceInfo.interlaced`)."""
    variable_rate: bool = False
    """The frames keep the input's own times, which do not come every ``1 / fps`` (``fps`` is then
    their average rate)."""
    audio: str | None = None
    """What became of the input's audio in the output, and its rate (e.g. ``aac, copied, 128.4 kbit/s``: not
    counted in ``bits`` and ``kbps``, which are the pictures'); None: none carried."""

    @property
    def encode_fps(self) -> float:
        """Frames per second over the whole run."""
        return self.frames / self.wall_s if self.wall_s > 0 else float("inf")

    def summary(self) -> str:
        """The few lines printed at the end of ``semrl encode``."""
        split = ", ".join(f"{stage} {self.stage_s[stage]:.2f} s" for stage in STAGES)
        split += " (semantics and policy run beside encoding; wait is the encoder waiting for them)"
        return (
            f"wrote {self.output}: {self.frames} frames {self.width}x{self.height} at {self.fps:.4g} fps"
            + (" on average (variable rate)" if self.variable_rate else "")
            + (" (deinterlaced)" if self.deinterlaced else "")
            + ", "
            f"policy {self.policy}" + (f" ({self.task})" if self.task else "") + "\n"
            f"{self.kbps:.1f} kbit/s, {self.bits / 8 / 1024:.1f} KiB, mean QP {self.mean_qp:.2f}, "
            f"luma PSNR {self.psnr_y:.2f} dB"
            + (f"; beside it audio: {self.audio}" if self.audio else "")
            + "\n"
            + (f"kept trial coding: {self.rows[0].kept}\n" if len(self.rows) == 1 and self.rows[0].kept else "")
            + f"{self.wall_s:.2f} s ({self.encode_fps:.1f} frames/s): {split}"
        )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (summary and per-frame rows)."""
        data = asdict(self)
        data["encode_fps"] = self.encode_fps
        return data

    def write(self, path: Path) -> None:
        """Writes the report: ``.csv`` gives the per-frame rows, anything else JSON (with a CSV beside)."""
        if path.suffix.lower() == ".csv":
            _atomic_write(path, self._csv())
            return
        _atomic_write(path, json_text(self.to_json(), indent=2))
        _atomic_write(path.with_suffix(".csv"), self._csv())

    def _csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(FrameRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in self.rows)
        return buffer.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    try:
        atomic_write(path, text)
    except OSError as error:
        raise InvalidInputError(f"cannot write {path}: {error.strerror}") from error


class _Stopwatch:
    """Seconds spent per stage, added up from the encode's threads."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def timed(self, stage: str, iterator: Iterator[Any]) -> Iterator[Any]:
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(stage, time.perf_counter() - start)
                return
            self.add(stage, time.perf_counter() - start)
            yield item

    def call(self, stage: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.add(stage, time.perf_counter() - start)


def qp_map_stem(info: SourceInfo) -> str:
    """The file-name stem of an input's QP-map pictures."""
    if info.path is None:
        return "sample"
    return info.path.name if info.path.is_dir() else info.path.stem


def _check_folder(folder: Path, option: str) -> None:
    """Create ``folder`` if needed; fail early if it is a file or not writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise InvalidInputError(f"{option} {folder} is a file, not a folder") from e
    except OSError as e:
        raise InvalidInputError(f"{option} {folder} cannot be created: {e.strerror}") from e
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"{option} folder {folder} is not writable")


def check_output_path(output: Path, input_path: Path | None = None) -> None:
    """Fails early, before any work, on an output the encode could not write or must not.

    Raises:
        InvalidInputError: unknown suffix, missing or unwritable folder, a folder at ``output``,
            or ``output`` naming the input itself (directly, or through a link).
    """
    if input_path is not None and output.exists() and input_path.exists() and os.path.samefile(output, input_path):
        raise InvalidInputError(f"output {output} is the input {input_path}: the encode would overwrite its source")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InvalidInputError(f"output {output} must end in {', '.join(OUTPUT_SUFFIXES)}")
    check_writable(output, "output")


def check_writable(path: Path, what: str) -> None:
    """Fails before any work on a file that could not be written after it: a missing or unwritable folder, a folder.

    Args:
        path: the file to be written.
        what: how messages name it (``output``, ``--report``).

    Raises:
        InvalidInputError: as above.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"{what} folder {folder} does not exist")
    if path.is_dir():
        raise InvalidInputError(f"{what} {path} is a folder; name a file in it")
    check_can_create(folder, what)


def encode_video(
    input_path: Path | None,
    output: Path,
    settings: EncodeSettings,
    *,
    progress: bool = False,
) -> EncodeReport:
    """Encodes a video, an image, a folder of images or (``input_path`` None) the built-in sample.

    Frames are streamed; the output appears only when the whole encode succeeded (written to a
    temporary file and renamed), so a failure or Ctrl-C leaves no partial file.

    Raises:
        InputNotFoundError: missing input.
        InvalidInputError: unreadable input, odd frame size, zero frames, bad settings, an
            unwritable output, or a policy for another task.
        CodecError: the encoder failed.
    """
    check_output_path(output, input_path)
    settings = concrete_policy(settings, input_path)
    from semrl.semantics.yolo import check_device

    check_device(settings.device)
    if settings.qp_maps is not None:
        _check_folder(settings.qp_maps, "--qp-maps")
    watch = _Stopwatch()
    start = time.perf_counter()
    policy, task = watch.call("setup", resolve_policy, settings)
    warn_outside_training(policy, settings)
    warn_net_options_unused(policy, settings)
    source = _open(input_path, settings)
    with source:
        info = source.info
        require_one_ctu(info.name, info.width, info.height)
        raw = not writes_mp4(output)
        audio_from = _audio_source(info, settings, output)
        writer_target = output if raw else output.with_name(f".{output.name}.hevc")
        with AnnexBWriter(writer_target) as stream:
            rows, decoded_order = _run(source, settings, policy, task, stream, watch, progress)
        audio, times = None, None
        try:
            if not raw:
                times = _frame_times(info, settings, len(rows))
                with atomic_output(output, suffix=".mp4") as temporary:
                    mux = functools.partial(mux_mp4, writer_target, temporary, info.fps, decoded_order, times=times)
                    try:
                        audio = watch.call("encode", mux, audio_from=audio_from)
                    except AudioError as error:
                        # the pictures are coded: an audio track that cannot be read does not cost them
                        warnings.warn(
                            InputWarning(
                                f"{error}; {output.name} is written without audio (--no-audio asks for that "
                                "without this warning)"
                            ),
                            stacklevel=2,
                        )
                        audio = watch.call("encode", mux, audio_from=None)
        finally:
            if writer_target != output:
                writer_target.unlink(missing_ok=True)
        wall = time.perf_counter() - start
    bits = sum(row.bits for row in rows)
    report = EncodeReport(
        input=info.name,
        output=str(output),
        policy=settings.policy,
        task=task,
        width=info.width,
        height=info.height,
        fps=float(info.fps),
        frames=len(rows),
        bits=bits,
        kbps=bits * float(info.fps) / len(rows) / 1000,
        mean_qp=float(np.mean([row.mean_qp for row in rows])),
        psnr_y=clip_psnr([row.psnr_y for row in rows]),
        wall_s=wall,
        stage_s=watch.seconds,
        settings={k: _json_value(v) for k, v in asdict(settings).items()},
        rows=rows,
        deinterlaced=info.interlaced,
        variable_rate=times is not None,
        audio=audio,
    )
    warn_rate_missed(settings.bitrate, report.kbps, report.mean_qp, report.frames)
    return report


def _json_value(value: Any) -> Any:
    """A setting as the report writes it: a GOP by its option name (``ra``), a rate or a path as text."""
    if isinstance(value, Gop):
        return value.value
    return str(value) if isinstance(value, (Fraction, Path)) else value


def _frame_times(info: SourceInfo, settings: EncodeSettings, coded: int) -> FrameTimes | None:
    """A video's own frame times, where they do not come every ``1 / fps`` and no ``--fps`` replaces them.

    None: every frame lasts ``1 / fps`` (the video's average rate).
    """
    if info.kind != "video" or settings.fps is not None or info.path is None:
        return None
    whole = settings.max_frames is None or coded < settings.max_frames
    try:
        times = frame_times(info.path, None if whole else coded)
    except MediaToolError as error:
        warnings.warn(InputWarning(f"{error}: it is coded at its average rate"), stacklevel=3)
        return None
    if times is None or times.every(info.fps):
        return None
    if len(times.ticks) < coded or (whole and len(times.ticks) != coded):
        warnings.warn(
            InputWarning(
                f"{info.name} has a variable frame rate, but its {len(times.ticks)} timestamps do not match the "
                f"{coded} frames decoded: it is coded at its average rate, {float(info.fps):.4g} fps"
            ),
            stacklevel=3,
        )
        return None
    return times


def _audio_source(info: SourceInfo, settings: EncodeSettings, output: Path) -> Path | None:
    """The video whose audio goes into the output; None without one to carry.

    None also where ``--fps`` re-times the pictures, or the output is a raw HEVC stream, which
    holds no audio: each with a warning, given before the encode.
    """
    if info.kind != "video" or not settings.audio or info.path is None:
        return None
    if not writes_mp4(output):
        if has_audio(info.path):
            warnings.warn(
                InputWarning(
                    f"{info.name} has audio, which a raw HEVC stream ({output.name}) cannot hold: write an .mp4 "
                    "to keep it (--no-audio says it is not wanted, without this warning)"
                ),
                stacklevel=3,
            )
        return None
    if settings.fps is not None:
        warnings.warn(
            InputWarning(
                f"--fps {settings.fps} re-times {info.name}'s pictures, so its audio would drift from them: "
                "the audio is left out (--no-audio says so without this warning)"
            ),
            stacklevel=3,
        )
        return None
    return info.path


AUTO_POLICY = "auto"
"""The default policy: the video MDP's reference coding for clips, the image policy for pictures."""

AUTO_VIDEO_POLICY = "video-reference"
"""What ``auto`` codes a clip with at a constant base QP: the video MDP's fixed reference coding.

On three clips no run had read (``benchmarks/results/video-fresh-clips``, by a rule written before
they were coded), the reference coding as ``semrl encode`` runs it saved 3.0 % on the class mean
and 13.9 % on the object-weighted mAP50-95 against the learned ``video`` policy, which was also
behind it on the object-weighted measure on earlier held-out clips.
"""

AUTO_RANDOM_ACCESS_VIDEO_POLICY = "x265"
"""What ``auto`` codes a clip with under ``--gop ra`` at a constant quality: x265's own allocation.

Under random access x265's CRF with its AQ, cuTree and adaptive B-frames (the A2 anchor) was ahead
of every coding semrl ships on every set of clips measured. On three clips no run had read
(``benchmarks/results/video-ra-default``, by a rule written before they were coded), the reference
coding as ``semrl encode`` runs it needed 32.4 % more bits than x265's own for the same class-mean
mAP50-95, and 11.4 % more for the object-weighted one.
"""

AUTO_BITRATE_VIDEO_POLICY = "video"
"""What ``auto`` codes a clip with under ``--bitrate``: the learned video policy.

Under the rate controller the two keep about the same accuracy, but the reference coding bursts to
1.51x and 1.53x the target in a one-second window on two clips, the policy to 1.46x at most
(``benchmarks/results/rate-control-reference``).
"""


def concrete_policy(settings: EncodeSettings, input_path: Path | None) -> EncodeSettings:
    """``settings`` with ``auto`` replaced by the shipped coding for the input.

    :data:`AUTO_VIDEO_POLICY` for a video or the built-in clip (:data:`AUTO_BITRATE_VIDEO_POLICY`
    under ``--bitrate``, :data:`AUTO_RANDOM_ACCESS_VIDEO_POLICY` under ``--gop ra`` without it),
    ``detection`` for an image or a folder of images (the ``--task``'s policy with another task: the
    video codings serve detection only).
    """
    if settings.policy != AUTO_POLICY:
        return settings
    video = input_path is None or (input_path.is_file() and input_path.suffix.lower() in VIDEO_SUFFIXES)
    if video and settings.task in (None, "detection"):
        if settings.bitrate is not None:
            return replace(settings, policy=AUTO_BITRATE_VIDEO_POLICY)
        random_access = settings.gop == Gop.RANDOM_ACCESS
        return replace(settings, policy=AUTO_RANDOM_ACCESS_VIDEO_POLICY if random_access else AUTO_VIDEO_POLICY)
    return replace(settings, policy=settings.task or "detection")


X265_COLOUR_NAMES = {
    "colorprim": ("bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
                  "smpte432"),
    "transfer": ("bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100", "log316", "iec61966-2-4",
                 "bt1361e", "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084", "smpte428", "arib-std-b67"),
    "colormatrix": ("gbr", "bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c",
                    "smpte2085", "chroma-derived-nc", "chroma-derived-c", "ictcp"),
}  # fmt: skip
"""The H.273 names x265 3.5 takes for each option of a stream's colour description (``x265.h``)."""

FFMPEG_TO_X265_TRANSFER = {"gamma22": "bt470m", "gamma28": "bt470bg"}
"""FFmpeg's names for the transfer characteristics that x265 names otherwise."""


def stream_description(info: SourceInfo) -> tuple[tuple[str, str], ...]:
    """x265 options that describe the source in the stream's VUI, so that players show it as the source.

    The pixel aspect ratio (``sar``, where pixels are not square) and the colour description
    (``colorprim``, ``transfer``, ``colormatrix``, where the source says it and x265 has a name for
    it): without them a player shows non-square pixels stretched and guesses the colours from the
    picture size. They change the stream's headers only, not how any picture is coded.
    """
    options = []
    aspect = info.pixel_aspect.limit_denominator(65535)  # the VUI holds 16-bit terms
    if aspect != 1:
        options.append(("sar", f"{aspect.numerator}:{aspect.denominator}"))
    colour = info.colour
    transfer = FFMPEG_TO_X265_TRANSFER.get(colour.transfer or "", colour.transfer)
    for name, value in (("colorprim", colour.primaries), ("transfer", transfer), ("colormatrix", colour.matrix)):
        if value in X265_COLOUR_NAMES[name]:
            options.append((name, str(value)))
    return tuple(options)


def _open(input_path: Path | None, settings: EncodeSettings) -> FrameSource:
    if input_path is not None:
        return open_source(input_path, max_frames=settings.max_frames, fps=settings.fps, crop_even=settings.crop_even)
    from semrl.samples import sample_clip

    clip = sample_clip(settings.max_frames or 16)
    height, width = clip[0].shape[:2]
    info = SourceInfo(None, "sample", width, height, settings.fps or Fraction(25), len(clip))
    return FrameSource(info, (Yuv420.from_rgb(frame) for frame in clip))


def _run(
    source: FrameSource,
    settings: EncodeSettings,
    policy: Policy,
    task: str | None,
    stream: AnnexBWriter,
    watch: _Stopwatch,
    progress: bool,
) -> tuple[list[FrameRow], list[int]]:
    """Encodes every frame; the task net runs in a second thread on frames ahead of the encoder.

    The worker may run up to ``LOOKAHEAD_INTERVALS * map_interval`` frames ahead (at most
    ``LOOKAHEAD_FRAMES``). Analyses are requested for fixed frames (every ``map_interval``-th), so
    the output does not depend on timing; the lookahead bounds the memory held. A frame-level
    policy decides every frame in a third thread, in order, as far ahead: it reads only the
    pictures and the analyses, never what the encoder returns. The reconstructions' MD5s are
    computed in a fourth. So x265, whose calling thread waits while its pool codes, overlaps with
    the rest.

    Returns:
        The per-frame rows (in display order; each frame's luma PSNR is against its source frame, or
        its original where a pre-filter smoothed it) and each coded frame's index in decode order.
    """
    info = source.info
    config = replace(
        x265_config(info, settings),
        qg_size=offset_block(policy), scaling_lists=scaling_lists(policy), options=stream_description(info),
    )  # fmt: skip
    gop = config.layout()
    x265_rate = own_rate_control(policy)  # x265's own CRF (at --qp) or ABR, AQ and cuTree: no offsets
    config = x265_rate_control(config, settings, policy)
    if settings.bitrate is not None and settings.gop == Gop.RANDOM_ACCESS and not x265_rate:
        # x265 returns a frame a lookahead later (20 frames at preset medium): the rate controller
        # learns a frame's cost only then. The fixed GOP of constant-QP random access needs only
        # the B-frames' span (b-adapt 0), so the shortest lookahead x265 takes.
        config = replace(config, options=(*config.options, ("rc-lookahead", str(gop.bframes + 1))))
    net = watch.call("setup", task_net, task, settings) if task is not None and needs_regions(policy) else None
    if net is not None:
        _leave_cores_to_x265(net.device, settings)
    elif runs_own_net(policy):
        _leave_cores_to_x265(settings.device or "cpu", settings)  # as resolve_policy loads it
    bar = _progress_bar(info, settings, progress)
    lookahead = min(LOOKAHEAD_INTERVALS * settings.map_interval, LOOKAHEAD_FRAMES)
    rows: list[FrameRow] = []
    decoded_order: list[int] = []  # each coded frame's index, in decode order (not the frames: memory stays flat)
    pending: deque[tuple[int, Yuv420, Future[Any] | None]] = deque()
    offsets: npt.NDArray[np.int32] | None = None
    # A frame-level policy (the video policy) decides every frame, in order, from the latest analysis.
    frame_level = bool(getattr(policy, "frame_level", False))
    wants_rgb = needs_rgb(policy)
    latest: Any = None
    clip_state: dict[str, Any] = {}  # the policy's, carried from frame to frame
    length = settings.max_frames if info.frames is None else min(info.frames, settings.max_frames or info.frames)
    if net is not None and (length is None or -(-length // settings.map_interval) >= FREEZE_MIN_ANALYSES):
        # before the threads start: tracing silences warnings for a moment
        net.freeze((info.height, info.width), _net_input_size(settings, (info.height, info.width)))
    rate = None
    if settings.bitrate is not None and not x265_rate:
        at_once = settings.gop != Gop.RANDOM_ACCESS  # low delay: each frame comes back before the next is asked
        rate = RateController(settings.bitrate, float(info.fps), settings.qp, length, returns_at_once=at_once)
    policy_base = settings.qp  # the base QP the policy decides around (with --bitrate, the calibrated start)
    requested: dict[int, npt.NDArray[np.int32]] = {}  # with --bitrate: each frame's QPs as asked of x265
    kept: dict[int, str] = {}  # the trial coding a policy kept, by frame (PolicyInput.report)
    prefilter = prefilter_of(policy)
    # a policy that codes a frame on trial (the classification policy's answer search) codes it as this
    # encode will: a frame coded on its own (all-intra, or a picture), not under --bitrate, whose slice
    # QPs come later, nor from a pre-filtered source
    alone = settings.gop == Gop.INTRA or length == 1
    trial = TrialCoding(config, (info.height, info.width)) if alone and rate is None and prefilter is None else None
    originals: dict[int, npt.NDArray[np.uint8]] = {}  # luma of the frames a pre-filter smoothed, until coded
    previous_y: npt.NDArray[np.uint8] | None = None  # with --bitrate: the last source frame's luma, for its motion
    hashes: list[Future[str]] = []
    with (
        Encoder(config) as encoder,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="semrl-task-net") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="semrl-policy") as decider,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="semrl-md5") as hasher,
    ):

        def decide(
            index: int, rgb: npt.NDArray[np.uint8] | None, regions: Any, picture: Yuv420 | None = None
        ) -> npt.NDArray[np.int32]:
            start = time.perf_counter()
            if rgb is None:
                assert picture is not None
                rgb = picture.to_rgb() if wants_rgb else np.zeros((*picture.y.shape, 0), np.uint8)
            inputs = PolicyInput(
                frame=rgb, base_qp=policy_base, ctu_shape=encoder.ctu_shape,
                region=None if regions is None else regions.region,
                boxes=np.zeros((0, 4), np.float32) if regions is None else regions.boxes, frame_index=index,
                state=clip_state, gop=gop,
                cls=np.zeros(0, np.int64) if regions is None else regions.cls,
                conf=np.zeros(0, np.float32) if regions is None else regions.conf, picture=picture,
                coding=trial,
            )  # fmt: skip
            # Unclipped: with --bitrate the controller fixes the frame's QP first, and a pre-filter
            # reads the policy's own offsets; the clip to 0..51 comes when the frame is coded.
            result = policy_offsets(policy, inputs)
            if "kept" in inputs.report:
                kept[index] = inputs.report["kept"]
            watch.add("policy", time.perf_counter() - start)
            return result

        def analyse(index: int, picture: Yuv420) -> Any:
            # runs in the worker thread: torch and x265 both release the GIL
            start = time.perf_counter()
            rgb = picture.to_rgb() if net is not None or wants_rgb else None
            regions = None if rgb is None else frame_regions(net, rgb, settings)
            watch.add("semantics", time.perf_counter() - start)
            return rgb, regions

        def analysed_at(index: int) -> bool:
            # fixed frames, so that the output does not depend on timing
            return index % settings.map_interval == 0

        def offsets_for(index: int, picture: Yuv420) -> npt.NDArray[np.int32]:
            rgb, regions = analyse(index, picture)
            return decide(index, rgb, regions, picture)

        def frame_offsets(index: int, picture: Yuv420, analysis: Future[Any] | None) -> npt.NDArray[np.int32]:
            # runs in the policy's thread, every frame in order: the frame-level policy from the latest analysis
            nonlocal latest
            if analysis is not None:
                latest = analysis.result()
            # the analysed frame's RGB comes with its analysis: decide converts the others if needed
            rgb = latest[0] if analysis is not None else None
            return decide(index, rgb, None if latest is None else latest[1], picture)

        def collect(frames: list[EncodedFrame]) -> None:
            for frame in frames:
                original = originals.pop(frame.pts, None)
                sse = float(frame.ctu_distortion.sum()) if original is None else _luma_sse(original, frame.recon.y)
                if rate is not None:
                    # The QPs asked for, not the reconstruction's: CUs without residual carry the slice QP.
                    coded_qps = requested.pop(frame.pts, frame.ctu_qp)
                    rate.update(frame.bits, coded_qps, frame.slice_type == "I", frame.ctu_bits, frame.pts)
                stream.write(frame.nal)
                decoded_order.append(frame.pts)
                row = FrameRow(
                    index=frame.pts, poc=frame.poc, slice_type=frame.slice_type, bits=frame.bits,
                    mean_qp=float(frame.ctu_qp.mean()), psnr_y=frame_psnr(psnr_from_sse(sse, frame.recon.y.size)),
                    analysed=analysed_at(frame.pts), recon_md5="", kept=kept.pop(frame.pts, ""),
                )  # fmt: skip
                rows.append(row)
                hashes.append(hasher.submit(_md5, frame.recon))
                if settings.qp_maps is not None and frame.pts % settings.qp_map_every == 0:
                    from semrl.qp_maps import write_qp_map

                    rgb = frame.recon.to_rgb()[: info.height, : info.width]
                    write_qp_map(settings.qp_maps / f"{qp_map_stem(info)}_qp_{frame.pts:06d}.png", rgb, frame.ctu_qp)
                if bar is not None:
                    bar.update(1)

        def encode_next() -> None:
            nonlocal offsets, previous_y
            index, picture, job = pending.popleft()
            if job is not None:
                offsets = watch.call("wait", job.result)
            given = None if offsets is None else clip_offsets(offsets, settings.qp)
            slice_qp = None
            if rate is not None:  # the frame's QP from the rate controller, the policy's map around it
                map_offsets = np.zeros(encoder.ctu_shape, np.int32) if offsets is None else offsets
                moved = None if previous_y is None else temporal_activity(picture.y, previous_y, encoder.ctu_shape)
                previous_y = picture.y
                qp = rate.next_qp(gop.position(index) == 0, map_offsets, index, moved)
                frame_qps = np.clip(qp + map_offsets, QP_MIN, QP_MAX)
                requested[index] = frame_qps
                # The frame gets its own slice QP: x265 codes CUs far from the slice QP dearly
                # (crowd clip, preset medium: 48 frames with every CU at QP 51 took 2.2x the
                # bits under slice QP 32 that they take under 51), and --qp's base is far from
                # the controller's QPs at most rates.
                slice_qp = int(np.median(frame_qps))
                given = (frame_qps - slice_qp).astype(np.int32)
            if prefilter is not None and offsets is not None:
                originals[index] = picture.y
                picture = watch.call("policy", prefilter.soften, picture, offsets)
            collect(watch.call("encode", encoder.encode, picture, given, slice_qp))

        pictures: Iterator[Yuv420] = watch.timed("decode", iter(source))
        if rate is not None:  # the rate model is calibrated on the first frames (fewer on a shorter clip)
            head = list(itertools.islice(pictures, CALIBRATION_FRAMES))
            if head:
                policy_base = watch.call("setup", _calibrate, rate, head, settings, config.scaling_lists)
            pictures = itertools.chain(head, pictures)
        for index, picture in enumerate(pictures):
            fresh = analysed_at(index)
            job = None
            if frame_level and not x265_rate:  # with x265's own allocation the policy is never asked
                analysis = pool.submit(analyse, index, picture) if fresh else None
                job = decider.submit(frame_offsets, index, picture, analysis)
            elif fresh and not x265_rate:
                job = pool.submit(offsets_for, index, picture)
            pending.append((index, picture, job))
            if len(pending) > lookahead:
                encode_next()
        if not pending and not decoded_order:
            raise InvalidInputError(f"{info.name} has no frames")
        while pending:
            encode_next()
        collect(watch.call("encode", encoder.flush))
        rows = [replace(row, recon_md5=digest.result()) for row, digest in zip(rows, hashes, strict=True)]
    if bar is not None:
        bar.close()
    rows.sort(key=lambda row: row.index)
    return rows, decoded_order


def x265_config(info: SourceInfo, settings: EncodeSettings) -> EncoderConfig:
    """x265's configuration of ``settings`` for ``info``'s frames: size, frame rate, preset, GOP, base QP, threads.

    A policy's own choices (its offset block, its matrices), the stream's description and the rate
    control (:func:`x265_rate_control`) come on top.
    """
    return EncoderConfig(
        info.width, info.height, qp=settings.qp, preset=settings.preset, gop=settings.gop,
        keyint=settings.keyint, threads=settings.x265_threads, fps=(info.fps.numerator, info.fps.denominator),
    )  # fmt: skip


def x265_rate_control(config: EncoderConfig, settings: EncodeSettings, policy: Policy) -> EncoderConfig:
    """``config`` as ``semrl encode`` codes with ``policy``.

    Where the policy leaves the allocation to x265 (:func:`semrl.policy.own_rate_control`), x265's own
    rate control: CRF at ``--qp``, or its ABR under ``--bitrate``; otherwise ``config`` as it is.
    """
    if not own_rate_control(policy):
        return config
    crf = float(settings.qp) if settings.bitrate is None else None
    return replace(config, crf=crf, bitrate=settings.bitrate)


def _md5(picture: Yuv420) -> str:
    """MD5 of the picture's I420 bytes, fed plane by plane (half the time of joining them first)."""
    digest = hashlib.md5()
    for plane in picture.planes:
        digest.update(np.ascontiguousarray(plane).data)
    return digest.hexdigest()


def _luma_sse(original: npt.NDArray[np.uint8], recon: npt.NDArray[np.uint8]) -> float:
    return float(((original.astype(np.int64) - recon.astype(np.int64)) ** 2).sum())


CALIBRATION_FRAMES = 2
"""Frames ``--bitrate`` codes on trial (at two QPs) before the first: an I-frame and a P-frame."""


def _calibrate(
    rate: RateController, pictures: list[Yuv420], settings: EncodeSettings, lists: ScalingLists | None
) -> int:
    """Code the first frames (an I-frame, then a P-frame) at two QPs to fit the rate model; returns the start QP.

    They are coded with the stream's quantisation matrices (``lists``), which price every QP.
    """
    intra, inter = {}, {}
    gop = Gop.INTRA if settings.gop == Gop.INTRA or len(pictures) < 2 else Gop.LOW_DELAY_P
    trial_frames = pictures[:1] if gop == Gop.INTRA else pictures[:2]
    for qp in (27, 37):
        config = EncoderConfig(
            pictures[0].width, pictures[0].height, qp=qp, preset=settings.preset, gop=gop, scaling_lists=lists
        )
        with Encoder(config) as trial:
            frames = [f for picture in trial_frames for f in trial.encode(picture)] + trial.flush()
        intra[qp] = float(frames[0].bits)
        if len(frames) > 1:
            inter[qp] = float(frames[1].bits)
    return min(round(rate.calibrate(intra, inter or None)), QP_MAX)  # the policy decides around a real QP


def _progress_bar(info: SourceInfo, settings: EncodeSettings, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    total = info.frames if settings.max_frames is None else min(info.frames or settings.max_frames, settings.max_frames)
    return tqdm(total=total, unit="frame", desc="encoding", leave=False)


def task_net(task: str, settings: EncodeSettings) -> Any:
    """The task net ``semrl encode`` finds objects with, loaded once per process.

    The task's default weights or ``settings.weights``, at ``settings.net_precision``.

    Raises:
        InvalidInputError: ``settings.weights`` are a net of another task.
    """
    from semrl.semantics.config import DEFAULT_WEIGHTS

    net = _load_net(settings.weights or DEFAULT_WEIGHTS[task], settings.device, settings.net_precision)
    if net.task != task:
        raise InvalidInputError(f"--weights {settings.weights} is a {net.task} net; this encode needs a {task} net")
    return net


@functools.lru_cache(maxsize=2)
def _load_net(weights: str, device: str | None, precision: str) -> Any:
    """The task net, loaded once per process for a run of several encodes (inference keeps no state).

    It finds objects at :data:`semrl.semantics.regions.REGION_CONF`, where Ultralytics' own NMS
    keeps the same boxes as torchvision's, so it does not import torchvision (``compiled_nms``):
    1.6 s less before the first frame.
    """
    from semrl.semantics.regions import REGION_CONF
    from semrl.semantics.yolo import YoloNet, native_bf16, needs_compiled_nms

    net = YoloNet(weights, device=device, precision=precision, compiled_nms=needs_compiled_nms(REGION_CONF))
    if precision == "bf16" and not native_bf16(net.device):
        what = "this CPU lacks AVX512-BF16 and AMX" if net.device == "cpu" else f"{net.device} lacks bfloat16 cores"
        warnings.warn(
            InputWarning(
                f"--net-precision bf16: {what}, so the task net computes bfloat16 without native instructions and "
                "runs slower than with fp32"
            ),
            stacklevel=2,
        )
    return net


def warn_outside_training(policy: Policy, settings: EncodeSettings) -> None:
    """Warn when ``--qp`` lies outside the base QPs a learned policy trained at (it still runs).

    A picture policy still decides there (measured for the shipped ones at base QPs 12 and 17:
    ``benchmarks/results/below-training-range``); the video policy codes with its reference coding
    instead (:meth:`semrl.agent.video.VideoPolicy.decide`), and says so through
    ``outside_training``. Under ``--bitrate`` the base QP is chosen per frame, and a policy without
    learning (``roi``, ``video-reference``) has no such range.
    """
    trained = getattr(policy, "trained_base_qps", None)
    if trained is None or settings.bitrate is not None:
        return
    lo, hi = trained
    if not lo <= settings.qp <= hi:
        what = getattr(policy, "outside_training", "it still decides, though it never trained there")
        warnings.warn(
            InputWarning(
                f"the policy was trained at base QPs {lo}-{hi}; at --qp {settings.qp} {what} "
                f"(a policy without learning, such as uniform, roi or video-reference, has no such range)"
            ),
            stacklevel=2,
        )


RATE_MISSED = 1.5
"""How far over ``--bitrate`` a whole stream may come before the encode warns that the target was not reached."""


def warn_rate_missed(target: float | None, kbps: float, mean_qp: float, frames: int) -> None:
    """Warn when a stream coded under ``--bitrate`` came to well over its target (it is written all the same).

    Two causes: the target is below what the clip costs at x265's coarsest QP with the policy's map
    (its frames' mean QP near 51), or the clip is too short for the rate to be repaid (its first frame,
    coded on its own, holds most of the bits).

    Args:
        target: ``--bitrate`` in kbit/s; None: no target, no warning.
        kbps: The stream's rate (:attr:`EncodeReport.kbps`).
        mean_qp: Its frames' mean QP (:attr:`EncodeReport.mean_qp`).
        frames: Its frames.
    """
    if target is None or kbps <= RATE_MISSED * target:
        return
    why = (
        f"its frames' mean QP is {mean_qp:.1f} (x265's coarsest is {QP_MAX}): this clip costs more than the "
        f"target even there, so ask for more"
        if mean_qp >= QP_MAX - 3
        else f"{frames} frames are too few to repay the first frame's bits, which are most of them"
    )
    warnings.warn(
        InputWarning(f"--bitrate {target:g} kbit/s was not reached: the stream is {kbps:.1f} kbit/s; {why}"),
        stacklevel=3,
    )


def warn_net_options_unused(policy: Policy, settings: EncodeSettings) -> None:
    """Warn when ``--weights`` or ``--classes`` is given for a policy that runs no task net (they change nothing)."""
    if needs_regions(policy) or runs_own_net(policy):
        return
    given = [name for name, value in (("--weights", settings.weights), ("--classes", settings.classes)) if value]
    if given:
        warnings.warn(
            InputWarning(
                f"{' and '.join(given)} {'change' if len(given) > 1 else 'changes'} nothing: "
                f"policy {settings.policy} runs no task net"
            ),
            stacklevel=2,
        )


@functools.lru_cache(maxsize=4)
def encode_identity(settings: EncodeSettings) -> dict[str, str]:
    """What an encode's result depends on besides the input: the x265 build, the task net's weights and precision.

    A Ray worker reports it with each file it encodes (:func:`encode_task`); the driver refuses a
    file from a worker that reports another. Worked out once per process and settings.
    """
    from semrl.assets import file_sha256, resolve_weights
    from semrl.codec import load_library
    from semrl.semantics.config import DEFAULT_WEIGHTS

    identity = {"x265": load_library().build.key}
    _, task = resolve_policy(concrete_policy(settings, None))
    if task is not None:
        identity["weights sha256"] = file_sha256(Path(resolve_weights(settings.weights or DEFAULT_WEIGHTS[task])))
        identity["net precision"] = settings.net_precision
    return identity


def encode_task(job: tuple[str, str, EncodeSettings]) -> tuple[dict[str, str], tuple[bytes, EncodeReport]]:
    """A Ray task: encode one input into a scratch file and send the file back with its report.

    x265 gets one worker thread unless the settings name more: each task holds one CPU.

    Args:
        job: (input path, output file name, settings). The input must be at this path on the
            worker's node (shared storage on a cluster).

    Raises:
        InputNotFoundError: The input is not on this node.
    """
    import socket

    from semrl.errors import InputNotFoundError

    source, name, settings = job
    if settings.threads is None:  # a task holds one CPU (semrl.cluster): x265's default pool would oversubscribe it
        settings = replace(settings, threads=1)
    path = Path(source)
    if not path.exists():
        raise InputNotFoundError(
            f"{path} not found on node {socket.gethostname()}: on a cluster every node must see the inputs "
            "at the same path (shared storage)"
        )
    with tempfile.TemporaryDirectory(prefix="semrl-encode-") as scratch:
        output = Path(scratch) / name
        report = encode_video(path, output, settings)
        return dict(encode_identity(settings)), (output.read_bytes(), report)


def _leave_cores_to_x265(device: str, settings: EncodeSettings) -> None:
    """The task net runs beside x265's threads: on CPU it gets the cores an explicit ``threads`` leaves.

    With the default (x265 on every core) it keeps every core but one, as beside one x265 thread:
    the net's sums depend on its thread count, so its detections, and the coded bytes, do not
    change with the default.
    """
    if device == "cpu":
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) - (settings.threads or 1)))


def frame_regions(net: Any, rgb: npt.NDArray[np.uint8], settings: EncodeSettings) -> Any:
    """What ``semrl encode`` finds on an analysed frame (a :class:`semrl.semantics.regions.TaskRegions`).

    The net runs at ``settings.map_size``, or the frame's long side rounded up to a multiple of 32
    (at most 640), keeping one label per box and the objects of ``settings.classes``; None without
    a net. The caller sets torch's threads (``semrl encode`` leaves x265 its cores first).
    """
    if net is None:
        return None
    from semrl.semantics.regions import task_regions
    from semrl.semantics.yolo import class_ids

    imgsz = _net_input_size(settings, rgb.shape[:2])
    classes = None if settings.classes is None else class_ids(net.names, settings.classes)
    return task_regions(net, [rgb], color="rgb", imgsz=imgsz, classes=classes)[0]


def _net_input_size(settings: EncodeSettings, frame_shape: tuple[int, ...]) -> int:
    """``settings.map_size``, or the frames' own scale (:func:`semrl.semantics.yolo.own_input_size`), at most 640."""
    from semrl.semantics.yolo import own_input_size

    return settings.map_size or own_input_size(frame_shape, 640)


def _trained_weights(policy: Policy) -> str | None:
    """The sha256 of the task net a learned policy was trained on (its own net's, or the video policy's detector's)."""
    return getattr(getattr(policy, "config", None), "weights_sha256", None)


def _check_own_net(policy: Policy, settings: EncodeSettings) -> None:
    """A learned policy takes only the weights it was trained with, and all classes.

    It learned from what that net finds of every class: a picture policy runs the net itself, the
    video policy reads the objects of ``semrl encode``'s net (its counts, coverage and changes).
    """
    from semrl.errors import PolicyMismatchError

    if settings.classes is not None:
        raise PolicyMismatchError(
            f"policy {settings.policy} reads the classes it was trained with; --classes works with roi, "
            "video-reference and module:function policies: name one with --policy"
        )
    trained = _trained_weights(policy)
    if settings.weights is not None and trained is not None:
        from semrl.assets import file_sha256, resolve_weights

        given = file_sha256(resolve_weights(settings.weights))
        if given != trained:
            raise PolicyMismatchError(
                f"policy {settings.policy} was trained with other weights (sha256 {trained[:12]}) than "
                f"--weights {settings.weights} ({given[:12]}); train a policy with --weights {settings.weights}"
            )


def resolve_policy(settings: EncodeSettings) -> tuple[Policy, str | None]:
    """The policy object and the task whose net feeds it (or that it serves).

    Raises:
        InvalidInputError: unknown policy, or a policy trained for another task than ``--task``
            (``PolicyMismatchError``).
        InputNotFoundError: a checkpoint that does not exist.
    """
    from semrl.agent import resolve_policy as resolve

    policy = resolve(settings.policy, task=settings.task, device=settings.device, roi_delta=settings.roi_delta)
    if (runs_own_net(policy) or _trained_weights(policy) is not None) and (
        settings.weights is not None or settings.classes is not None
    ):
        _check_own_net(policy, settings)
    task = policy_task(policy) or settings.task
    if task is None and needs_regions(policy):
        task = "detection"
    return policy, task

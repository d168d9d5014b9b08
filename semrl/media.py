"""Everything semrl does with FFmpeg, and reading frames from videos, images and folders of images.

One module owns the FFmpeg tools: finding them (:func:`ffmpeg_tool`), probing a file
(:func:`probe`), decoding to raw 4:2:0 pictures (:func:`open_source` streams them;
:func:`decode_ffmpeg` and :func:`decode_libde265` decode a whole stream to check it) and muxing
(:func:`mux_mp4`). Encode, training and the benchmark all read inputs through :func:`open_source`,
so a video decodes to the same frames in each of them.

Frames come as :class:`~semrl.codec.Yuv420` pictures: FFmpeg converts video to 4:2:0 as it decodes
(as the x265 CLI would read it), and images are converted once on reading.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from semrl.codec.picture import Yuv420
from semrl.errors import AudioError, CodecError, InputNotFoundError, InputWarning, InvalidInputError, MediaToolError

FFMPEG_SIGNALLED = 255
"""FFmpeg's exit status when a signal (SIGINT, SIGTERM) stopped it; it then prints nothing."""

SIGNAL_GRACE_S = 1.0
"""How long a decode stopped by a signal waits for that signal to reach semrl itself."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""Suffixes of the image files semrl reads (lower case)."""
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".y4m", ".hevc", ".h265")
"""Suffixes of the video files semrl reads (lower case)."""

RgbFrame = npt.NDArray[np.uint8]


def ffmpeg_tool(name: str) -> str:
    """The path of an FFmpeg tool (``ffmpeg``, ``ffprobe``) or of ``libde265-dec265``.

    Raises:
        MediaToolError: the tool is not on PATH.
    """
    path = shutil.which(name)
    if path is None:
        raise MediaToolError(f"{name} not found on PATH: run scripts/setup.sh, or apt-get install ffmpeg")
    return path


def ffmpeg_version() -> str:
    """FFmpeg's version string (e.g. ``5.1.6-0+deb12u1``), or ``"unknown"`` without FFmpeg."""
    try:
        out = subprocess.run([ffmpeg_tool("ffmpeg"), "-version"], capture_output=True, text=True, check=False).stdout
    except (MediaToolError, OSError):
        return "unknown"
    return out.split("\n", 1)[0].replace("ffmpeg version ", "").split(" Copyright")[0]


def probe(path: str | Path, *, count_frames: bool = False) -> dict[str, object]:
    """The first video stream's properties as ffprobe reports them.

    Keys include ``codec_name``, ``profile``, ``width``, ``height``, ``r_frame_rate``,
    ``avg_frame_rate`` and (when the container says) ``nb_frames``.

    Args:
        path: a video file or a raw stream.
        count_frames: also decode the stream to count its frames (``nb_read_frames``); slow.

    Raises:
        InputNotFoundError: no such file.
        InvalidInputError: the file has no video stream FFmpeg can read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    command = [ffmpeg_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json"]
    command += ["-count_frames"] if count_frames else []
    result = subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams or not streams[0].get("width"):
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no video stream"
        raise InvalidInputError(f"{path} is not a video or image FFmpeg can read ({reason})")
    return dict(streams[0])


@dataclass(frozen=True)
class Colour:
    """How a picture's YUV values are to be shown: its colour description, in ITU-T H.273's names (as FFmpeg's).

    Attributes:
        primaries: colour primaries (e.g. ``bt709``, ``bt2020``), or None when not said.
        transfer: transfer characteristics (e.g. ``bt709``, ``arib-std-b67`` for HLG), or None.
        matrix: the matrix from RGB to YUV (e.g. ``bt709``, ``smpte170m`` for BT.601), or None.
    """

    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None


FROM_RGB = Colour(matrix="smpte170m")
"""Frames converted to YUV from RGB, with BT.601's matrix (:meth:`Yuv420.from_rgb`, and FFmpeg's default)."""


@dataclass(frozen=True)
class SourceInfo:
    """What is known about an input before reading it.

    Attributes:
        path: the input (a video, an image or a folder); None for the built-in sample.
        kind: "video", "image", "folder" or "sample".
        width: frame width in pixels (as read, i.e. after any crop or scale).
        height: frame height in pixels (as read).
        fps: frame rate (the source's for videos; 25 or ``--fps`` for images).
        frames: number of frames if known (None when the container does not say).
        pixel_aspect: the width of a pixel over its height as it is to be shown (a video's sample
            aspect ratio, e.g. 16:15 for PAL-era D1 cameras); 1 for square pixels.
        colour: how the frames' YUV values are to be shown: a YUV video's own description (FFmpeg
            passes its values through), else BT.601's matrix, with which RGB is converted.
        interlaced: the video says its frames are interlaced (two fields each, a camcorder's or a
            broadcast's): :func:`open_source` reads them deinterlaced (FFmpeg's ``bwdif``, a frame
            for each frame), as a detector and a progressive stream both need.
    """

    path: Path | None
    kind: str
    width: int
    height: int
    fps: Fraction
    frames: int | None
    pixel_aspect: Fraction = Fraction(1)
    colour: Colour = FROM_RGB
    interlaced: bool = False

    @property
    def name(self) -> str:
        """A short name for messages and reports."""
        return str(self.path) if self.path is not None else "built-in sample"


class FrameSource:
    """Frames of one input as :class:`Yuv420` pictures, read one at a time.

    Videos are decoded by an FFmpeg process whose output is read frame by frame, so memory stays
    bounded on long videos. Use as a context manager (or call :meth:`close`) to end that process.
    """

    def __init__(self, info: SourceInfo, frames: Iterator[Yuv420], process: subprocess.Popen[bytes] | None = None):
        self.info = info
        self._frames = frames
        self._process = process

    def __iter__(self) -> Iterator[Yuv420]:
        return self._frames

    def close(self) -> None:
        """Stops the decoder process, if any. Idempotent."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            for pipe in (self._process.stdout, self._process.stderr):
                if pipe is not None:
                    pipe.close()
        self._process = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_info(path: Path) -> SourceInfo:
    """A video's size, frame rate and frame count, from :func:`probe`.

    Raises:
        InputNotFoundError: no such file.
        InvalidInputError: the file is not a video FFmpeg can read.
    """
    stream = probe(path)
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")) or Fraction(25)
    count = stream.get("nb_frames")
    width, height = int(str(stream["width"])), int(str(stream["height"]))
    aspect = _rate(str(stream.get("sample_aspect_ratio", "")).replace(":", "/")) or Fraction(1)
    if _quarter_turned(stream):
        width, height, aspect = height, width, 1 / aspect
    return SourceInfo(
        path=path, kind="video", width=width, height=height, fps=fps,
        frames=int(str(count)) if count and str(count).isdigit() else None, pixel_aspect=aspect,
        colour=_colour(stream), interlaced=str(stream.get("field_order", "")) in INTERLACED_ORDERS,
    )  # fmt: skip


INTERLACED_ORDERS = ("tt", "bb", "tb", "bt")
"""ffprobe's ``field_order`` values of interlaced video (``progressive`` and ``unknown`` are not)."""

DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=interlaced"
"""FFmpeg's filter for interlaced input: one frame for each frame (the rate stays), motion-adaptive,
applied to the frames the decoder marks interlaced."""


def _colour(stream: dict[str, object]) -> Colour:
    """A video's colour description as its frames reach semrl: a YUV stream's own; RGB is converted with BT.601."""
    if not str(stream.get("pix_fmt", "")).startswith(("yuv", "nv", "p0", "p2", "y2", "uyvy", "yvyu")):
        return FROM_RGB

    def said(key: str) -> str | None:
        value = stream.get(key)
        return str(value) if value and value not in ("unknown", "reserved") else None

    return Colour(said("color_primaries"), said("color_transfer"), said("color_space"))


def _quarter_turned(stream: dict[str, object]) -> bool:
    """Whether a video's display matrix turns it by 90 or 270 degrees (a phone held upright).

    FFmpeg's decoder turns such frames upright, so they come out with the stream's width and
    height swapped.
    """
    sides = stream.get("side_data_list")
    for side in sides if isinstance(sides, list) else []:
        if isinstance(side, dict) and side.get("rotation") is not None:
            return round(float(side["rotation"])) % 180 == 90
    tags = stream.get("tags")
    rotate = tags.get("rotate") if isinstance(tags, dict) else None  # older FFmpeg
    return rotate is not None and round(float(rotate)) % 180 == 90


def _rate(text: object) -> Fraction | None:
    try:
        rate = Fraction(str(text)) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate and rate > 0 else None


def _check_even(info: SourceInfo) -> None:
    if info.width % 2 or info.height % 2:
        raise InvalidInputError(
            f"{info.name} is {info.width}x{info.height}: HEVC 4:2:0 needs an even width and height; "
            "drop its last column or row (semrl encode --crop-even) or crop or scale it first "
            "(e.g. ffmpeg -i IN -vf 'crop=trunc(iw/2)*2:trunc(ih/2)*2' OUT)"
        )


def _even(info: SourceInfo, crop: bool) -> SourceInfo:
    """``info`` with an odd width or height one less where ``crop``; else refused if odd."""
    if crop:
        info = replace(info, width=info.width - info.width % 2, height=info.height - info.height % 2)
    _check_even(info)
    return info


def open_source(
    path: Path,
    *,
    max_frames: int | None = None,
    fps: Fraction | None = None,
    crop_even: bool = False,
    size: tuple[int, int] | None = None,
) -> FrameSource:
    """Opens a video, an image, or a folder of images (sorted by name, all of one size).

    Args:
        path: the input.
        max_frames: read at most this many frames.
        fps: frame rate for images and folders (default 25), or to override a video's.
        crop_even: for an input of odd width or height, drop its last column or row instead of
            refusing it (4:2:0 pictures need an even size).
        size: for a video, scale its frames to this (width, height) with FFmpeg (bicubic).

    Raises:
        InputNotFoundError: nothing at ``path``.
        InvalidInputError: not readable as video or image, odd frame size, images of
            different sizes, an empty folder.
        MediaToolError: FFmpeg is missing.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"input not found: {path}")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            videos = videos_in(path)
            hint = (
                f"; its videos are inputs of their own (semrl encode {path}/*{Path(videos[0]).suffix} -o OUTDIR/)"
                if videos
                else ""
            )
            raise InvalidInputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}){hint}")
        warn_of_videos_beside_images(path, "its images are coded as one clip, the videos left out")
        first = _read_image(images[0])
        info = SourceInfo(path, "folder", first.shape[1], first.shape[0], fps or Fraction(25), len(images))
        info = _even(info, crop_even)
        frames = (Yuv420.from_rgb(f[: info.height, : info.width]) for f in _folder_frames(images, first))
        return FrameSource(info, _limit(frames, max_frames))
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = _read_image(path)
        info = _even(SourceInfo(path, "image", image.shape[1], image.shape[0], fps or Fraction(25), 1), crop_even)
        return FrameSource(info, iter([Yuv420.from_rgb(image[: info.height, : info.width])]))
    info = video_info(path)
    sizes = keyframe_sizes(path)
    if len(sizes) > 1:
        seen = ", ".join(f"{w}x{h}" for w, h in sizes)
        warnings.warn(
            InputWarning(
                f"{info.name} changes its picture size mid-stream ({seen}): FFmpeg scales every frame to the "
                f"first size, {info.width}x{info.height}, without keeping the others' aspect ratio; split the file "
                "at the change to encode each part at its own size"
            ),
            stacklevel=2,
        )
    if fps is not None:
        info = replace(info, fps=fps)
    filters = [DEINTERLACE] if info.interlaced else []  # first: a scale would mix the fields
    if crop_even and (info.width % 2 or info.height % 2):
        info = _even(info, crop_even)
        filters.append(f"crop={info.width}:{info.height}:0:0")
    if size is not None:  # FFmpeg's scale keeps the picture's shape as shown
        aspect = info.pixel_aspect * Fraction(info.width * size[1], info.height * size[0])
        info = replace(info, width=size[0], height=size[1], pixel_aspect=aspect)
        filters.append(f"scale={size[0]}:{size[1]}:flags=bicubic")
    _check_even(info)
    command = [ffmpeg_tool("ffmpeg"), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0"]
    if max_frames is not None:
        command += ["-frames:v", str(max_frames)]
    if filters:
        command += ["-vf", ",".join(filters)]
    command += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    _widen_pipe(process.stdout.fileno(), info.width * info.height * 3 // 2 * PIPE_FRAMES)
    listed = info.frames if max_frames is None or info.frames is None else min(info.frames, max_frames)
    return FrameSource(info, _video_frames(process, info, listed), process)


PIPE_FRAMES = 4
"""Decoded frames the pipe from FFmpeg holds: FFmpeg decodes that far ahead while semrl codes,
instead of waiting for each read (a pipe holds 64 KiB by default, a quarter of a 480x360 frame)."""


def _widen_pipe(fd: int, size: int) -> None:
    """Grow a pipe to ``size`` bytes where the system allows (Linux, up to ``/proc/sys/fs/pipe-max-size``)."""
    import fcntl  # Unix only

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = 1 << 20
    with contextlib.suppress(OSError):  # a smaller pipe only costs speed
        fcntl.fcntl(fd, setpipe, min(size, limit))


def videos_in(folder: Path) -> list[str]:
    """The names of the video files in ``folder`` (by suffix, :data:`VIDEO_SUFFIXES`), sorted."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def warn_of_videos_beside_images(folder: Path, consequence: str) -> None:
    """Warn, naming them, that ``folder``, read for its pictures, holds videos too, and what becomes of them."""
    videos = videos_in(folder)
    if videos:
        warnings.warn(
            InputWarning(
                f"folder {folder} holds {len(videos)} video(s) beside its images ({', '.join(videos[:3])}"
                f"{', ...' if len(videos) > 3 else ''}): {consequence}"
            ),
            stacklevel=3,
        )


def _limit(frames: Iterator[Yuv420], max_frames: int | None) -> Iterator[Yuv420]:
    for index, frame in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            return
        yield frame


def _read_image(path: Path) -> RgbFrame:
    return np.ascontiguousarray(read_bgr_image(path)[:, :, ::-1])


def read_bgr_image(path: Path) -> npt.NDArray[np.uint8]:
    """An image file as OpenCV reads it (BGR, turned as its EXIF orientation says); a JPEG cut short warns.

    Raises:
        InputNotFoundError: The file does not exist.
        InvalidInputError: The file is not an image OpenCV reads.
    """
    import cv2

    if not path.is_file():
        raise InputNotFoundError(f"image not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInputError(f"{path} is not an image OpenCV can read")
    if _truncated_jpeg(path):
        warnings.warn(
            InputWarning(f"{path}: damaged or truncated JPEG: read with its missing part as the decoder fills it"),
            stacklevel=2,
        )
    return np.ascontiguousarray(bgr, dtype=np.uint8)


def _truncated_jpeg(path: Path) -> bool:
    """Whether ``path`` is a JPEG that ends before its picture does.

    OpenCV decodes such a file without a word to its caller (libjpeg prints a line and fills the
    rest); Pillow's decoder says so. Other formats OpenCV refuses when they are cut short.
    """
    from PIL import Image

    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
    try:
        with Image.open(path) as image:
            image.draft("RGB", (image.width // 8, image.height // 8))  # every byte read, an eighth of the work
            image.load()
    except OSError as error:
        return "truncated" in str(error)
    except Exception:  # Pillow may refuse what OpenCV reads: that is no damage
        return False
    return False


def _folder_frames(images: list[Path], first: RgbFrame) -> Iterator[RgbFrame]:
    yield first
    for path in images[1:]:
        image = _read_image(path)
        if image.shape != first.shape:
            raise InvalidInputError(
                f"{path} is {image.shape[1]}x{image.shape[0]}, the folder's first image "
                f"{first.shape[1]}x{first.shape[0]}: a folder must hold frames of one size"
            )
        yield image


def keyframe_sizes(path: Path) -> list[tuple[int, int]]:
    """The distinct picture sizes of a video's key frames, in order of appearance (one decode of key frames only).

    A stream that changes resolution does so at a key frame (a new sequence header), so this finds
    every change without decoding the whole video. Empty when FFprobe reads nothing.
    """
    result = subprocess.run(
        [ffmpeg_tool("ffprobe"), "-v", "error", "-skip_frame", "nokey", "-select_streams", "v:0",
         "-show_entries", "frame=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    sizes: list[tuple[int, int]] = []
    for line in result.stdout.splitlines():
        parts = [p for p in line.split(",") if p.strip()]
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            size = (int(parts[0]), int(parts[1]))
            if size not in sizes:
                sizes.append(size)
    return sizes


def _video_frames(process: subprocess.Popen[bytes], info: SourceInfo, listed: int | None) -> Iterator[Yuv420]:
    """The decoded frames; a warning (:class:`InputWarning`) when FFmpeg met damage but went on.

    FFmpeg decodes a truncated or corrupt file as far as it can and exits 0; its errors and a
    frame count short of what the container lists are the only signs, so they are passed on.
    """
    assert process.stdout is not None
    size = info.width * info.height * 3 // 2
    decoded = 0
    while True:
        data = process.stdout.read(size)
        if len(data) < size:
            break
        decoded += 1
        yield Yuv420.from_i420(np.frombuffer(data, dtype=np.uint8), info.width, info.height)
    process.wait()
    assert process.stderr is not None
    error = process.stderr.read().decode(errors="replace").strip()
    process.stdout.close()  # read to the end: nothing is left open for the source's close
    process.stderr.close()
    if process.returncode == FFMPEG_SIGNALLED and not error:
        # A terminal's Ctrl-C (or a SIGTERM to the group) reaches FFmpeg and semrl together; FFmpeg
        # may stop first. Let semrl's own handler raise (KeyboardInterrupt, or the SIGTERM one)
        # rather than report an interrupted decode as a damaged file.
        time.sleep(SIGNAL_GRACE_S)
        raise InvalidInputError(f"FFmpeg was stopped by a signal while decoding {info.name}, after {decoded} frames")
    if process.returncode not in (0, None) or (data and len(data) < size):
        raise InvalidInputError(f"FFmpeg failed while decoding {info.name}: {error or 'truncated frame'}")
    short = listed is not None and decoded < listed
    if error or short:
        import warnings

        count = f"decoded {decoded} of the {listed} frames the file lists" if short else f"decoded {decoded} frames"
        first = error.splitlines()[0] if error else ""
        detail = f"; FFmpeg reported {len(error.splitlines())} error line(s), the first: {first}" if error else ""
        warnings.warn(InputWarning(f"{info.name}: damaged or truncated input: {count}{detail}"), stacklevel=2)


def _split_i420(raw: bytes, width: int, height: int, source: str) -> list[Yuv420]:
    size = width * height * 3 // 2
    if len(raw) % size:
        raise CodecError(f"{source} produced {len(raw)} bytes, not a whole number of {width}x{height} frames")
    data = np.frombuffer(raw, dtype=np.uint8)
    return [Yuv420.from_i420(data[i : i + size], width, height) for i in range(0, len(raw), size)]


def decode_ffmpeg(path: str | Path, width: int, height: int) -> list[Yuv420]:
    """Decodes a whole HEVC stream with FFmpeg into YUV 4:2:0 pictures in display order.

    For checking what an encoder wrote; to read inputs, use :func:`open_source`.

    Raises:
        InputNotFoundError: no such file.
        CodecError: FFmpeg cannot decode the stream, or it is not of ``width`` x ``height``.
        MediaToolError: FFmpeg is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    result = subprocess.run(
        [ffmpeg_tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CodecError(f"FFmpeg cannot decode {path}: {result.stderr.decode(errors='replace').strip()}")
    return _split_i420(result.stdout, width, height, f"FFmpeg decoding {path}")


def decode_libde265(path: str | Path, width: int, height: int) -> list[Yuv420]:
    """Decodes an HEVC stream with libde265's ``libde265-dec265`` (a decoder written apart from FFmpeg).

    Raises:
        InputNotFoundError: no such file.
        CodecError: dec265 cannot decode the stream, or it is not of ``width`` x ``height``.
        MediaToolError: dec265 is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    with tempfile.TemporaryDirectory(prefix="semrl-dec-") as folder:
        out = Path(folder) / "out.yuv"
        result = subprocess.run(
            [ffmpeg_tool("libde265-dec265"), "-q", "-o", str(out), str(path)], capture_output=True, check=False
        )
        if result.returncode != 0 or not out.exists():
            raise CodecError(f"dec265 cannot decode {path}: {result.stderr.decode(errors='replace').strip()}")
        return _split_i420(out.read_bytes(), width, height, f"dec265 decoding {path}")


@dataclass(frozen=True)
class FrameTimes:
    """When each frame of a video is shown.

    Attributes:
        time_base: the unit of ``ticks``, in seconds (the source stream's).
        ticks: each frame's display time, in display order, counted from the first frame's (0).
    """

    time_base: Fraction
    ticks: tuple[int, ...]

    def every(self, fps: Fraction) -> bool:
        """Whether the frames come every ``1 / fps`` seconds, to within a tick of the time base."""
        step = 1 / (fps * self.time_base)
        return all(abs(b - a - step) <= 1 for a, b in itertools.pairwise(self.ticks))


REORDER_MARGIN = 32
"""Packets read past the frames wanted: in decode order, a picture comes at most this many before
one it is shown after (HEVC and H.264 reorder by 16 pictures at most)."""


def frame_times(path: Path, frames: int | None = None) -> FrameTimes | None:
    """When a video's frames are shown, from its container's timestamps (without decoding).

    A video of variable frame rate (a phone's clip, often) coded at its average rate instead
    would drift from its own audio wherever its rate changes.

    Args:
        path: The video.
        frames: Only the first this many frames' times are wanted (the file is read that far, and
            :data:`REORDER_MARGIN` packets more); None: every frame's.

    Returns:
        The frames' times; None where the container does not give every frame's (or gives two
        frames one time).

    Raises:
        MediaToolError: the file cannot be read.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = (p.pts for p in container.demux(stream) if p.size and not p.is_discard)
            shown = list(packets if frames is None else itertools.islice(packets, frames + REORDER_MARGIN))
            time_base = stream.time_base
    except (av.FFmpegError, IndexError) as e:
        raise MediaToolError(f"cannot read the frame times of {path}: {e}") from e
    known = [t for t in shown if t is not None]
    if len(shown) < 2 or len(known) < len(shown) or time_base is None:
        return None
    ticks = sorted(known)[:frames]
    if any(a == b for a, b in itertools.pairwise(ticks)):
        return None
    return FrameTimes(Fraction(time_base), tuple(t - ticks[0] for t in ticks))


MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"})
"""Audio codecs an MP4 holds as they are: such a track is copied; any other is re-encoded to AAC."""

USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0(side)", 6: "5.1(side)", 7: "6.1", 8: "7.1"}
"""FFmpeg's usual channel layout for each channel count AAC takes, for a source that gives only the count."""

AAC_FRAME = 1024
"""Samples in one AAC frame (what FFmpeg's AAC encoder takes per call)."""


def mux_mp4(
    hevc: Path,
    output: Path,
    fps: Fraction,
    display: Sequence[int],
    *,
    times: FrameTimes | None = None,
    audio_from: Path | None = None,
) -> str | None:
    """Puts an Annex-B HEVC stream into an MP4 (stream tagged ``hvc1``, the given frame rate), with the source's audio.

    The access units keep the stream's decode order and get explicit timestamps: presentation
    from ``display`` (each coded picture's display index, in decode order; the encoder knows it),
    decode times counting up from minus the largest reordering delay. FFmpeg's raw HEVC reader
    would give B-frames presentation times equal to their decode times, and players then drop
    pictures of a random-access stream. The written file is read back: it must hold every picture.

    With ``audio_from``, that video's first audio track goes in beside the pictures, cut to the
    time they cover and kept in step with them: the picture coded first is the source's first video
    frame, so the track is shifted by that frame's time and what lies before it, or after the
    last picture, is left out (to the nearest audio frame). A track MP4 holds
    (:data:`MP4_AUDIO_CODECS`) is copied as it is, any other re-encoded to AAC.

    Args:
        hevc: The Annex-B stream.
        output: The MP4 to write (the caller makes it atomic).
        fps: Frame rate.
        display: Display index of each coded picture in decode order (in order without B-frames).
        times: When each picture is shown, for a source of variable frame rate
            (:func:`frame_times`); None: every ``1 / fps``.
        audio_from: The video the pictures were read from, its frames from the first on, at
            ``fps`` or ``times``; None: no audio.

    Returns:
        What became of the audio and its rate over the pictures' time (e.g. ``"aac, copied,
        128.4 kbit/s"``), or None when none was carried (no ``audio_from``, or it has no audio
        track).

    Raises:
        AudioError: The source's audio cannot be read or carried.
        MediaToolError: The stream cannot be read, or the MP4 could not be written in full (for
            example a full disk).
    """
    import av

    carried = None
    try:
        with contextlib.ExitStack() as stack:
            order = list(display)
            source = stack.enter_context(av.open(str(hevc), format="hevc"))
            if times is not None and len(times.ticks) < len(order):
                raise MediaToolError(f"{len(times.ticks)} frame times for {len(order)} pictures")
            if times is None:
                times = FrameTimes(Fraction(fps.denominator, fps.numerator), tuple(range(len(order))))
            time_base, ticks = times.time_base, times.ticks[: len(order)]
            steps = [b - a for a, b in itertools.pairwise(ticks)] or [round(1 / (fps * time_base))]
            ends = [*ticks[1:], ticks[-1] + steps[-1]] if ticks else []
            length = (ends[-1] if ends else 0) * time_base
            delay = max((i - d for i, d in enumerate(order)), default=0)
            # decode times: the display times ``delay`` pictures back, so each is at most its own display time
            decoded = [ticks[0] - (delay - i) * steps[0] for i in range(min(delay, len(order)))]
            decoded += ticks[: len(order) - len(decoded)]
            sink = stack.enter_context(av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"}))
            stream = sink.add_stream_from_template(source.streams.video[0])
            stream.codec_tag = "hvc1"
            stream.time_base = time_base
            audio: Iterator[tuple[Fraction, Any]] = iter(())
            if audio_from is not None:
                track = _open_audio(stack, audio_from)
                if track is not None:
                    carried, audio = _carry_audio(track, sink, length)

            found = 0  # pictures read from the stream, one at a time: a long stream is never held whole

            def pictures() -> Iterator[tuple[Fraction, Any]]:
                nonlocal found
                for packet in source.demux(source.streams.video[0]):
                    if not packet.size:
                        continue
                    if found == len(order):
                        raise MediaToolError(f"{hevc} holds more pictures than the {len(order)} the encoder made")
                    i, shown = found, order[found]
                    found += 1
                    packet.stream = stream
                    packet.time_base = time_base
                    packet.pts, packet.dts, packet.duration = ticks[shown], decoded[i], ends[shown] - ticks[shown]
                    yield decoded[i] * time_base, packet

            sound = 0  # bytes of audio
            for _, packet in heapq.merge(pictures(), audio, key=lambda item: item[0]):
                sound += packet.size if packet.stream is not stream else 0
                sink.mux(packet)
            if found != len(order):
                raise MediaToolError(f"{hevc} holds {found} pictures, the encoder made {len(order)}")
            if carried is not None:
                carried += f", {sound * 8 / float(length) / 1000:.1f} kbit/s"
        with av.open(str(output)) as check:
            written = sum(1 for p in check.demux(check.streams.video[0]) if p.size)
    except (av.FFmpegError, OSError) as e:
        if audio_from is not None and carried is not None and not isinstance(e, OSError):
            raise AudioError(f"the audio of {audio_from} ({carried}) could not go into the MP4: {e}") from e
        raise MediaToolError(f"could not write {output}: {e}") from e
    if written != len(order):
        raise MediaToolError(f"{output} holds {written} of {len(order)} pictures (is the disk full?)")
    return carried


def has_audio(path: Path) -> bool:
    """Whether a video holds an audio track FFmpeg can read (False for a file it cannot open)."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except av.FFmpegError:
        return False


def _open_audio(stack: contextlib.ExitStack, path: Path) -> tuple[Any, Any, Fraction] | None:
    """The source's container, its first audio track and its first video frame's time (s); None without audio."""
    import av

    try:
        container = stack.enter_context(av.open(str(path)))
    except av.FFmpegError as e:
        raise AudioError(f"cannot read the audio of {path}: {e}") from e
    if not container.streams.audio or not container.streams.video:
        return None
    video = container.streams.video[0]
    start = Fraction(video.start_time or 0) * video.time_base if video.time_base else Fraction(0)
    return container, container.streams.audio[0], start


def _carry_audio(
    track: tuple[Any, Any, Fraction], sink: Any, length: Fraction
) -> tuple[str, Iterator[tuple[Fraction, Any]]]:
    """Adds the audio track to ``sink``; its packets over the pictures' ``length`` seconds, with their decode times.

    The output stream is added at once (an MP4's streams are all set before its first packet);
    the packets come as they are muxed.
    """
    import av

    container, audio, start = track
    name = audio.codec_context.codec.canonical_name  # the format's name (mp3), not its decoder's (mp3float)
    if name in MP4_AUDIO_CODECS:
        out = sink.add_stream_from_template(audio)
        return f"{name}, copied", _copied(container, audio, out, start, length)
    layout = audio.codec_context.layout
    if layout.name not in USUAL_LAYOUTS.values():  # a source may give only the count ("1 channels")
        if layout.nb_channels not in USUAL_LAYOUTS:
            raise AudioError(
                f"the audio of {container.name} has {layout.nb_channels} channels, which AAC does not take"
            )
        layout = av.AudioLayout(USUAL_LAYOUTS[layout.nb_channels])
    out = sink.add_stream("aac", rate=audio.codec_context.sample_rate, layout=layout.name)
    return f"{name}, re-encoded to AAC", _reencoded(container, audio, out, start, length)


def _copied(container: Any, audio: Any, out: Any, start: Fraction, length: Fraction) -> Iterator[tuple[Fraction, Any]]:
    tb = audio.time_base
    shift = round(start / tb)
    for packet in container.demux(audio):
        if packet.pts is None or not packet.size:
            continue
        begin = packet.pts * tb - start
        if begin >= length:
            break
        if begin + (packet.duration or 0) * tb < 0:  # over before the first picture
            continue
        # one that overlaps the first picture (or an encoder's priming frame, ending there) goes in
        # before the start: MP4's edit list then starts the track in step with the picture
        packet.pts -= shift
        packet.dts = packet.pts if packet.dts is None else packet.dts - shift
        packet.stream = out
        packet.time_base = tb
        yield packet.dts * tb, packet


def _reencoded(
    container: Any, audio: Any, out: Any, start: Fraction, length: Fraction
) -> Iterator[tuple[Fraction, Any]]:
    import av

    rate = out.codec_context.sample_rate
    resampler = av.AudioResampler(format="fltp", layout=out.codec_context.layout, rate=rate, frame_size=AAC_FRAME)
    at: int | None = None  # the next sample's time in the output, in samples
    read = 0  # samples decoded so far, the time of frames that carry none

    def encoded(frames: list[Any]) -> Iterator[tuple[Fraction, Any]]:
        nonlocal at
        for frame in frames:
            assert at is not None
            frame.pts, frame.time_base = at, Fraction(1, rate)
            at += frame.samples
            for packet in out.encode(frame):
                yield packet.dts * packet.time_base, packet

    for frame in container.decode(audio):
        shown = Fraction(frame.time) if frame.time is not None else Fraction(read, frame.sample_rate)
        begin = shown - start
        read += frame.samples
        if begin >= length:
            break
        if begin < 0:  # before the first picture: the track starts with the next frame, in step
            continue
        if at is None:  # a track that starts after the first picture keeps its delay
            at = round(begin * rate)
        frame.pts = None
        yield from encoded(resampler.resample(frame))
    if at is not None:
        yield from encoded(resampler.resample(None))
    for packet in out.encode(None):
        yield packet.dts * packet.time_base, packet

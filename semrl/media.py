"""Reading frames from videos, images and folders of images, streamed with bounded memory.

Frames come as :class:`~semrl.codec.Yuv420` pictures: FFmpeg converts video to 4:2:0 as it decodes
(as the x265 CLI would read it), and images are converted once on reading.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt

from semrl.codec.picture import Yuv420
from semrl.errors import InputNotFoundError, InvalidInputError, SemrlError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
RgbFrame = npt.NDArray[np.uint8]


class MediaToolError(SemrlError, RuntimeError):
    """FFmpeg or ffprobe is missing or failed."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MediaToolError(f"{name} not found on PATH: run scripts/setup.sh, or apt-get install ffmpeg")
    return path


@dataclass(frozen=True)
class SourceInfo:
    """What is known about an input before reading it.

    Attributes:
        path: the input (a video, an image or a folder); None for the built-in sample.
        kind: "video", "image", "folder" or "sample".
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate (the source's for videos; 25 or ``--fps`` for images).
        frames: number of frames if known (None when the container does not say).
    """

    path: Path | None
    kind: str
    width: int
    height: int
    fps: Fraction
    frames: int | None

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
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_video(path: Path) -> SourceInfo:
    """Reads a video's size, frame rate and frame count with ffprobe.

    Raises:
        InvalidInputError: the file is not a video FFmpeg can read.
    """
    result = subprocess.run(
        [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,codec_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams or not streams[0].get("width"):
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no video stream"
        raise InvalidInputError(f"{path} is not a video or image FFmpeg can read ({reason})")
    stream = streams[0]
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")) or Fraction(25)
    count = stream.get("nb_frames")
    return SourceInfo(
        path=path, kind="video", width=int(stream["width"]), height=int(stream["height"]), fps=fps,
        frames=int(count) if count and str(count).isdigit() else None,
    )  # fmt: skip


def _rate(text: str | None) -> Fraction | None:
    try:
        rate = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate and rate > 0 else None


def _check_even(info: SourceInfo) -> None:
    if info.width % 2 or info.height % 2:
        raise InvalidInputError(
            f"{info.name} is {info.width}x{info.height}: HEVC 4:2:0 needs an even width and height; "
            f"crop or scale it first (e.g. ffmpeg -i IN -vf 'crop=trunc(iw/2)*2:trunc(ih/2)*2' OUT)"
        )


def open_source(path: Path, *, max_frames: int | None = None, fps: Fraction | None = None) -> FrameSource:
    """Opens a video, an image, or a folder of images (sorted by name, all of one size).

    Args:
        path: the input.
        max_frames: read at most this many frames.
        fps: frame rate for images and folders (default 25), or to override a video's.

    Raises:
        InputNotFoundError: nothing at ``path``.
        InvalidInputError: not readable as video or image, odd frame size, images of
            different sizes, an empty folder.
    """
    if not path.exists():
        raise InputNotFoundError(f"input not found: {path}")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InvalidInputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        first = _read_image(images[0])
        info = SourceInfo(path, "folder", first.shape[1], first.shape[0], fps or Fraction(25), len(images))
        _check_even(info)
        return FrameSource(info, _limit((Yuv420.from_rgb(f) for f in _folder_frames(images, first)), max_frames))
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = _read_image(path)
        info = SourceInfo(path, "image", image.shape[1], image.shape[0], fps or Fraction(25), 1)
        _check_even(info)
        return FrameSource(info, iter([Yuv420.from_rgb(image)]))
    info = probe_video(path)
    if fps is not None:
        info = SourceInfo(info.path, info.kind, info.width, info.height, fps, info.frames)
    _check_even(info)
    command = [_tool("ffmpeg"), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0"]
    if max_frames is not None:
        command += ["-frames:v", str(max_frames)]
    command += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return FrameSource(info, _video_frames(process, info), process)


def _limit(frames: Iterator[Yuv420], max_frames: int | None) -> Iterator[Yuv420]:
    for index, frame in enumerate(frames):
        if max_frames is not None and index >= max_frames:
            return
        yield frame


def _read_image(path: Path) -> RgbFrame:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInputError(f"{path} is not an image OpenCV can read")
    return np.ascontiguousarray(bgr[:, :, ::-1])


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


def _video_frames(process: subprocess.Popen[bytes], info: SourceInfo) -> Iterator[Yuv420]:
    assert process.stdout is not None
    size = info.width * info.height * 3 // 2
    while True:
        data = process.stdout.read(size)
        if len(data) < size:
            break
        yield Yuv420.from_i420(np.frombuffer(data, dtype=np.uint8), info.width, info.height)
    process.wait()
    assert process.stderr is not None
    error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode not in (0, None) or (data and len(data) < size):
        raise InvalidInputError(f"FFmpeg failed while decoding {info.name}: {error or 'truncated frame'}")


def mux_mp4(hevc: Path, output: Path, fps: Fraction) -> None:
    """Puts an Annex-B HEVC stream into an MP4 (stream tagged ``hvc1``, the given frame rate).

    Raises:
        MediaToolError: FFmpeg failed (its message is included).
    """
    command = [
        _tool("ffmpeg"), "-v", "error", "-nostdin", "-y", "-f", "hevc", "-r", f"{fps.numerator}/{fps.denominator}",
        "-i", str(hevc), "-c", "copy", "-tag:v", "hvc1", "-movflags", "+faststart", "-f", "mp4", str(output),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MediaToolError(f"FFmpeg could not write {output}: {result.stderr.strip()}")

"""Independent decoders for checking streams: FFmpeg (and libde265's ``dec265``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from semrl.codec.picture import Yuv420
from semrl.errors import CodecError, InputNotFoundError


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CodecError(f"{name} not found on PATH: run scripts/setup.sh or install it (apt-get install ffmpeg)")
    return path


def probe(path: str | Path) -> dict[str, object]:
    """The first video stream's properties as ffprobe reports them (codec_name, profile, ...)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    result = subprocess.run(
        [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_streams", "-count_frames",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    streams = json.loads(result.stdout or "{}").get("streams", [])
    if result.returncode != 0 or not streams:
        raise CodecError(f"ffprobe cannot read {path}: {result.stderr.strip()}")
    return dict(streams[0])


def _split_i420(raw: bytes, width: int, height: int, source: str) -> list[Yuv420]:
    size = width * height * 3 // 2
    if len(raw) % size:
        raise CodecError(f"{source} produced {len(raw)} bytes, not a whole number of {width}x{height} frames")
    data = np.frombuffer(raw, dtype=np.uint8)
    return [Yuv420.from_i420(data[i : i + size], width, height) for i in range(0, len(raw), size)]


def decode_ffmpeg(path: str | Path, width: int, height: int) -> list[Yuv420]:
    """Decodes an HEVC stream with FFmpeg into YUV 4:2:0 pictures in display order."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    result = subprocess.run(
        [_tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CodecError(f"FFmpeg cannot decode {path}: {result.stderr.decode(errors='replace').strip()}")
    return _split_i420(result.stdout, width, height, f"FFmpeg decoding {path}")


def decode_libde265(path: str | Path, width: int, height: int) -> list[Yuv420]:
    """Decodes an HEVC stream with libde265's ``libde265-dec265`` (a decoder written apart from FFmpeg)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no such file: {path}")
    with tempfile.TemporaryDirectory(prefix="semrl-dec-") as folder:
        out = Path(folder) / "out.yuv"
        result = subprocess.run(
            [_tool("libde265-dec265"), "-q", "-o", str(out), str(path)], capture_output=True, check=False
        )
        if result.returncode != 0 or not out.exists():
            raise CodecError(f"dec265 cannot decode {path}: {result.stderr.decode(errors='replace').strip()}")
        return _split_i420(out.read_bytes(), width, height, f"dec265 decoding {path}")

"""Frames per second of the in-process patched x265 against the patched x265 CLI on the same frames.

Both encode the same raw YUV 4:2:0 frames with the same options (``EncoderConfig.cli_args``) and
write an Annex-B file; the CLI's time includes its process start, as a user would pay it. Runs
alternate between the two so machine noise hits both alike; medians over ``--runs``.

    python benchmarks/codec_speed.py            # writes benchmarks/results/codec_speed.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from semrl.cli.options import at_least
from semrl.codec import AnnexBWriter, Encoder, EncoderConfig, Gop, Yuv420, load_library
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.files import atomic_write, check_can_create, json_text
from semrl.media import open_source, probe

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
DEFAULT_SOURCES = (
    f"{ASSETS / 'videos' / 'pets2009_s2l1_480x360.mp4'}:480x360:60",
    f"{ASSETS / 'videos' / 'people_800x450.mp4'}:1280x720:16",
)


def read_frames(path: Path, width: int, height: int, count: int) -> list[Yuv420]:
    """Decodes (and scales, bicubic) the first ``count`` frames of a video with FFmpeg."""
    with open_source(path, max_frames=count, size=(width, height)) as source:
        return list(source)


def time_in_process(config: EncoderConfig, frames: list[Yuv420], output: Path) -> float:
    start = time.perf_counter()
    with Encoder(config) as encoder, AnnexBWriter(output) as stream:
        for frame in frames:
            for coded in encoder.encode(frame):
                stream.write(coded.nal)
        for coded in encoder.flush():
            stream.write(coded.nal)
    return time.perf_counter() - start


def time_cli(x265: Path, config: EncoderConfig, source: Path, output: Path) -> float:
    command = [str(x265), *config.cli_args(), "--input", str(source), "--output", str(output)]
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def source_spec(spec: str) -> tuple[Path, int, int, int]:
    """``--source VIDEO:WxH:FRAMES`` as (video, width, height, frames).

    Raises:
        InvalidInputError: Not of that shape, or a size or count below 1.
        InputNotFoundError: The video is not there.
    """
    parts = spec.rsplit(":", 2)
    try:
        width, height = (int(v) for v in parts[1].split("x"))
        count = int(parts[2])
    except (IndexError, ValueError):
        raise InvalidInputError(f"--source takes VIDEO:WxH:FRAMES, e.g. clip.mp4:1280x720:60; got {spec!r}") from None
    if min(width, height, count) < 1:
        raise InvalidInputError(f"--source {spec}: the size and the frames must be at least 1")
    if not Path(parts[0]).is_file():
        raise InputNotFoundError(f"--source {spec}: {parts[0]} not found")
    return Path(parts[0]), width, height, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", action="append", help="VIDEO:WxH:FRAMES (repeatable); default: PETS and a 720p clip"
    )
    parser.add_argument("--presets", default="ultrafast,medium")
    parser.add_argument("--gops", default="intra,ldp")
    parser.add_argument("--runs", type=at_least(1), default=3)
    parser.add_argument("--qp", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "codec_speed.json")
    args = parser.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it
    sources = [source_spec(spec) for spec in args.source or DEFAULT_SOURCES]

    build = load_library().build
    x265 = build.prefix / "bin" / "x265"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="semrl-bench-") as work:
        folder = Path(work)
        for video, width, height, count in sources:
            frames = read_frames(video, width, height, count)
            source = folder / "source.yuv"
            source.write_bytes(b"".join(frame.to_i420() for frame in frames))
            for preset in args.presets.split(","):
                for gop in args.gops.split(","):
                    config = EncoderConfig(width, height, qp=args.qp, preset=preset, gop=Gop(gop), threads=args.threads)
                    ours, theirs = [], []
                    for _ in range(args.runs):
                        ours.append(time_in_process(config, frames, folder / "ours.hevc"))
                        theirs.append(time_cli(x265, config, source, folder / "cli.hevc"))
                    identical = (folder / "ours.hevc").read_bytes() == (folder / "cli.hevc").read_bytes()
                    row = {
                        "video": Path(video).name, "size": f"{width}x{height}", "frames": len(frames),
                        "preset": preset, "gop": gop, "profile": probe(folder / "ours.hevc").get("profile"),
                        "in_process_fps": len(frames) / statistics.median(ours),
                        "cli_fps": len(frames) / statistics.median(theirs),
                        "in_process_s": ours, "cli_s": theirs, "identical_bitstreams": identical,
                    }  # fmt: skip
                    row["ratio"] = row["in_process_fps"] / row["cli_fps"]
                    rows.append(row)
                    print(
                        f"{row['video']:28s} {row['size']:>9s} {preset:9s} {gop:5s} "
                        f"in-process {row['in_process_fps']:7.2f} fps  CLI {row['cli_fps']:7.2f} fps  "
                        f"ratio {row['ratio']:.3f}  identical {identical}",
                        flush=True,
                    )
    ratios: list[float] = [float(row["ratio"]) for row in rows]
    result = {
        "name": "codec_speed",
        "description": {
            "what": "frames/s of the in-process patched x265 vs the patched x265 CLI, same frames and options",
            "x265": build.version,
            "patch_hash": build.patch_hash,
            "library": str(build.library_path),
            "python": sys.version.split()[0],
            "machine": f"{platform.machine()} {platform.processor()}",
            "cpus": __import__("os").cpu_count(),
            "threads": args.threads,
            "qp": args.qp,
            "runs": args.runs,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/codec_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "results": {"rows": rows, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios)},
    }
    atomic_write(args.output, json_text(result, indent=2))
    median = statistics.median(ratios)
    print(f"median ratio in-process/CLI {median:.3f}, min {min(ratios):.3f}; saved {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

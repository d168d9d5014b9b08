"""``semrl encode``: a video, image or folder to a standard HEVC stream with a QP policy."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from semrl.semantics import TASKS


def register(subparsers: Any) -> None:
    """Adds the ``encode`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "encode",
        help="encode a video, image or folder to HEVC with a per-CTU QP policy",
        description="Encode INPUT (any video FFmpeg reads, an image, or a folder of images) to a standard HEVC "
        "stream whose per-CTU QPs come from a policy. Without INPUT, a short built-in clip is encoded.",
    )
    parser.add_argument("input", nargs="?", type=Path, help="video, image or folder (default: built-in sample)")
    parser.add_argument("-o", "--output", type=Path, help="OUT.mp4 (tagged hvc1) or OUT.hevc (Annex-B)")
    parser.add_argument(
        "--policy", default="detection",
        help="detection|segmentation|classification (the shipped policies), uniform, roi, a ckpt.zip, or "
        "module:function (default detection)",
    )  # fmt: skip
    parser.add_argument("--task", choices=TASKS, help="task net to use")
    parser.add_argument("--qp", type=int, default=32, help="base QP (default 32)")
    parser.add_argument("--preset", default="medium", help="x265 preset (default medium)")
    parser.add_argument("--gop", choices=("ldp", "ra", "intra"), default="ldp", help="GOP structure (default ldp)")
    parser.add_argument("--keyint", type=int, default=250, help="IDR interval (default 250)")
    parser.add_argument("--frames", type=int, help="encode at most N frames")
    parser.add_argument("--map-interval", type=int, default=10, help="run the task net every N frames (default 10)")
    parser.add_argument(
        "--map-size", type=int, help="task-net input size (default: the frame's long side, at most 640)"
    )
    parser.add_argument("--roi-delta", type=int, default=8, help="roi policy: QP offset magnitude (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="x265 worker threads (default 1)")
    parser.add_argument("--device", help="task-net device, e.g. cpu or cuda (default: CUDA when present)")
    parser.add_argument("--fps", type=Fraction, help="frame rate for images, or to override the video's")
    parser.add_argument("--report", type=Path, help="write the summary and per-frame rows (JSON, and CSV beside)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def default_output(input_path: Path | None) -> Path:
    """``NAME.semrl.mp4`` beside the input, or ``semrl-sample.mp4`` for the built-in sample."""
    if input_path is None:
        return Path("semrl-sample.mp4")
    stem = input_path.name if input_path.is_dir() else input_path.stem
    return input_path.parent / f"{stem}.semrl.mp4"


def run(args: argparse.Namespace) -> int:
    """Runs the encode and prints its summary."""
    from semrl.pipeline import EncodeSettings, encode_video

    settings = EncodeSettings(
        policy=args.policy, task=args.task, qp=args.qp, preset=args.preset, gop=args.gop, keyint=args.keyint,
        max_frames=args.frames, map_interval=args.map_interval, map_size=args.map_size, roi_delta=args.roi_delta,
        threads=args.threads, device=args.device, fps=args.fps,
    )  # fmt: skip
    output = args.output or default_output(args.input)
    report = encode_video(args.input, output, settings, progress=not args.no_progress and sys.stderr.isatty())
    if args.report:
        report.write(args.report)
    print(report.summary())
    return 0

"""``semrl encode``: a video, image or folder to a standard HEVC stream with a QP policy."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from semrl.cli.options import class_names
from semrl.cluster import add_ray_option
from semrl.semantics import TASKS
from semrl.semantics.yolo import PRECISIONS


def register(subparsers: Any) -> None:
    """Adds the ``encode`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "encode",
        help="encode a video, image or folder to HEVC with a per-CTU QP policy",
        description="Encode INPUT (any video FFmpeg reads, an image, or a folder of images) to a standard HEVC "
        "stream whose per-CTU QPs come from a policy. Without INPUT, a short built-in clip is encoded.",
    )
    parser.add_argument(
        "input", nargs="*", type=Path,
        help="video, image or folder (default: built-in sample); several inputs need -o OUTDIR/",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output", type=Path,
        help="OUT.mp4 (tagged hvc1) or OUT.hevc (Annex-B); a folder (several inputs need one): each input "
        "written into it as NAME.mp4",
    )  # fmt: skip
    parser.add_argument(
        "--policy", default="auto",
        help="auto (default: video-reference for videos, the learned video policy under --bitrate, x265 under "
        "--gop ra without it, the detection policy for images), video|detection|segmentation|classification (the "
        "shipped policies), video-reference (the video policy's reference coding alone: temporal cascade, finer "
        "IDR frame, ROI D=4; no learning), uniform, roi, x265 (x265's own allocation: CRF at --qp, or its ABR "
        "under --bitrate, with its AQ and cuTree; no semantic offsets), a ckpt.zip, or module:function",
    )  # fmt: skip
    parser.add_argument("--task", choices=TASKS, help="task net to use")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--qp", type=int, default=32, help="base QP (default 32)")
    rate.add_argument(
        "--bitrate", type=float, metavar="KBPS",
        help="target rate in kbit/s instead of a constant base QP: semrl picks each frame's QP, the policy the map",
    )  # fmt: skip
    parser.add_argument("--preset", default="medium", help="x265 preset (default medium)")
    parser.add_argument("--gop", choices=("ldp", "ra", "intra"), default="ldp", help="GOP structure (default ldp)")
    parser.add_argument("--keyint", type=int, default=250, help="IDR interval (default 250)")
    parser.add_argument("--frames", type=int, help="encode at most N frames")
    parser.add_argument("--map-interval", type=int, default=10, help="run the task net every N frames (default 10)")
    parser.add_argument(
        "--map-size", type=int, help="task-net input size (default: the frame's long side, at most 640)"
    )
    parser.add_argument("--roi-delta", type=int, default=8, help="roi policy: QP offset magnitude (default 8)")
    parser.add_argument(
        "--threads", type=int, help="x265 worker threads (default: one per core); x265 codes the same for any count"
    )
    parser.add_argument("--device", help="task-net device, e.g. cpu or cuda (default: CUDA when present)")
    parser.add_argument(
        "--net-precision", choices=PRECISIONS, default="fp32",
        help="the task net's number format (default fp32; bf16 is 1.6x faster on a CPU with native bfloat16 and "
        "finds slightly other objects near the confidence threshold)",
    )  # fmt: skip
    parser.add_argument("--weights", help="the task net's weights: any Ultralytics checkpoint of the task")
    parser.add_argument("--classes", help="comma-separated class names to care about, e.g. person,car")
    parser.add_argument("--fps", type=Fraction, help="frame rate for images, or to override the video's")
    parser.add_argument("--crop-even", action="store_true",
                        help="code an input of odd width or height without its last column or row "
                        "(HEVC 4:2:0 needs even sizes; default: refuse it)")  # fmt: skip
    parser.add_argument("--no-audio", action="store_true",
                        help="leave the video's audio out (default: its first audio track goes into an MP4 "
                        "output, copied, or re-encoded to AAC where MP4 does not hold its codec)")  # fmt: skip
    parser.add_argument("--report", type=Path, help="write the summary and per-frame rows (JSON, and CSV beside)")
    parser.add_argument("--qp-maps", type=Path, metavar="DIR",
                        help="write PNGs of decoded frames with their per-CTU QPs drawn over them")  # fmt: skip
    parser.add_argument("--qp-map-every", type=int, default=25, metavar="N",
                        help="with --qp-maps, every N-th frame (default 25)")  # fmt: skip
    add_ray_option(parser, "one encode per input")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def default_output(input_path: Path | None) -> Path:
    """``NAME.semrl.mp4`` beside the input, or ``semrl-sample.mp4`` for the built-in sample."""
    if input_path is None:
        return Path("semrl-sample.mp4")
    return input_path.parent / f"{_name(input_path)}.semrl.mp4"


def _name(input_path: Path) -> str:
    """What an input's output is named after: a folder's name, a file's stem."""
    return input_path.name if input_path.is_dir() else input_path.stem


def run(args: argparse.Namespace) -> int:
    """Runs the encode(s) and prints the summary; with several inputs one line each, 1 if any failed."""
    from semrl.errors import InvalidInputError, SemrlError
    from semrl.pipeline import OUTPUT_SUFFIXES, EncodeSettings, check_writable, encode_video

    settings = EncodeSettings(
        policy=args.policy, task=args.task, qp=args.qp, preset=args.preset, gop=args.gop, keyint=args.keyint,
        max_frames=args.frames, map_interval=args.map_interval, map_size=args.map_size, roi_delta=args.roi_delta,
        threads=args.threads, device=args.device, net_precision=args.net_precision, fps=args.fps,
        crop_even=args.crop_even,
        qp_maps=args.qp_maps, qp_map_every=args.qp_map_every, weights=args.weights,
        classes=class_names(args.classes), bitrate=args.bitrate, audio=not args.no_audio,
    )  # fmt: skip
    progress = not args.no_progress and sys.stderr.isatty()
    inputs: list[Path] = list(args.input)
    if len(inputs) <= 1 and not args.ray:
        source = inputs[0] if inputs else None
        output = args.output or default_output(source)
        if output.is_dir():
            output = output / f"{_name(source) if source is not None else 'semrl-sample'}.mp4"
        if args.report:
            check_writable(args.report, "--report")
        report = encode_video(source, output, settings, progress=progress)
        if args.report:
            report.write(args.report)
        print(report.summary())
        return 0
    folder = args.output
    if not inputs:
        raise InvalidInputError("--ray encodes the given inputs, one task each; name at least one input")
    if folder is None or folder.suffix.lower() in OUTPUT_SUFFIXES:
        what = f"{len(inputs)} inputs need" if len(inputs) > 1 else "--ray needs"
        raise InvalidInputError(f"{what} -o OUTDIR/ (a folder), not {folder or 'no -o'}")
    if args.ray and args.qp_maps:
        raise InvalidInputError("--qp-maps writes on the node that encodes; run it without --ray")
    if args.report:
        raise InvalidInputError("--report writes one file; with several inputs each summary is printed instead")
    names = [_name(p) for p in inputs]
    if len(set(names)) < len(names):
        raise InvalidInputError(f"inputs share a name ({', '.join(sorted(n for n in names if names.count(n) > 1))}): "
                                "their outputs would overwrite each other")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    if args.ray:
        return _encode_on_ray(inputs, [folder / f"{name}.mp4" for name in names], settings, args.ray, progress)
    failed = 0
    for source, name in zip(inputs, names, strict=True):
        output = folder / f"{name}.mp4"
        try:
            report = encode_video(source, output, settings, progress=progress)
        except (SemrlError, OSError) as error:
            failed += 1
            print(f"{source}: failed: {error}", file=sys.stderr)
            continue
        _print_line(source, output, report)
    return _finish(failed, len(inputs))


def _print_line(source: Path, output: Path, report: Any) -> None:
    print(
        f"{source} -> {output}: {report.frames} frames, {report.kbps:.1f} kbit/s, mean QP {report.mean_qp:.2f}, "
        f"luma PSNR {report.psnr_y:.2f} dB, {report.wall_s:.1f} s"
    )


def _finish(failed: int, total: int) -> int:
    if failed:
        print(f"semrl encode: {failed} of {total} inputs failed; the others were written", file=sys.stderr)
    return 1 if failed else 0


def _encode_on_ray(inputs: list[Path], outputs: list[Path], settings: Any, address: str, progress: bool) -> int:
    """One Ray task per input; each stream comes back here and is written atomically to its output."""
    from semrl.cluster import run_jobs, session
    from semrl.files import atomic_write
    from semrl.pipeline import check_output_path, encode_identity, encode_task

    pairs = list(zip(inputs, outputs, strict=True))
    for source, output in pairs:
        check_output_path(output, source)
    identity = encode_identity(settings)
    jobs = [(str(source), (str(source.resolve()), output.name, settings)) for source, output in pairs]

    def store(index: int, result: tuple[bytes, Any]) -> None:
        data, report = result
        atomic_write(outputs[index], data)
        report.output = str(outputs[index])
        _print_line(inputs[index], outputs[index], report)

    with session(address):
        failures = run_jobs(encode_task, jobs, identity=identity, on_result=store, desc="encodes", progress=progress)
    for failure in failures:
        print(f"{failure.name}: failed: {failure.reason}", file=sys.stderr)
    return _finish(len(failures), len(inputs))

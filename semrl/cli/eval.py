"""``semrl eval``: what an encode kept of the task, frame by frame, against its original."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from semrl.cli.options import class_names
from semrl.semantics import TASKS


def register(subparsers: Any) -> None:
    """Adds the ``eval`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="score an encoded video against its original for a task (accuracy, bits, PSNR per frame)",
        description="Run the task net on ORIGINAL and ENCODED and report the task's accuracy on the encoded "
        "frames (against the original's own output, or real labels), bits, PSNR and SSIM per frame, with a CSV, "
        "a JSON summary and a PNG of accuracy and bits over time.",
    )
    parser.add_argument("original", type=Path, help="the video (or image, or folder) that was encoded")
    parser.add_argument("encoded", type=Path, help="the encode (.mp4 or .hevc)")
    parser.add_argument("--task", required=True, choices=TASKS, help="vision task")
    parser.add_argument(
        "--labels", type=Path, help="MOTChallenge gt.txt (detection; scaled by its seqinfo.ini in a sequence folder)"
    )
    parser.add_argument(
        "--pseudo-gt",
        action="store_true",
        help="score against the net's objects on the original even where labels lie beside it",
    )
    parser.add_argument("--frames", type=int, help="compare at most N frames")
    parser.add_argument("--device", help="task-net device (default: CUDA when present)")
    parser.add_argument("--weights", help="the task net's weights: any Ultralytics checkpoint of the task")
    parser.add_argument("--classes", help="comma-separated class names to score, e.g. person,car")
    parser.add_argument("-o", "--output", type=Path, help="folder for ENCODED.eval.{csv,json,png} (default: beside it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluates, prints the summary and writes the files."""
    from semrl.errors import InvalidInputError
    from semrl.evaluate import evaluate
    from semrl.files import check_can_create

    if args.frames is not None and args.frames < 1:
        raise InvalidInputError(f"--frames must be at least 1, got {args.frames}")
    folder = args.output or args.encoded.parent
    check_can_create(folder, "-o")
    report = evaluate(
        args.original, args.encoded, args.task, labels=args.labels, pseudo_gt=args.pseudo_gt, max_frames=args.frames,
        device=args.device, weights=args.weights, classes=class_names(args.classes),
    )  # fmt: skip
    if report.task != "classification" and math.isnan(report.accuracy):
        hint = "drop --classes or name classes the clip shows" if args.classes else "score frames that show objects"
        raise InvalidInputError(
            f"nothing to score: {report.against} holds no objects on the {report.frames} frames compared, so "
            f"{args.encoded}'s accuracy is undefined; {hint}"
        )
    written = report.write(folder, f"{args.encoded.name}.eval")
    print(report.summary())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0

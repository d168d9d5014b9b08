"""``semrl smoke``: encode the built-in clip with the patched x265 and check it decodes exactly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Adds the ``smoke`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "smoke",
        help="encode a short built-in clip and verify the stream",
        description="Encode a short built-in clip (a pan over Ultralytics' bundled bus.jpg) with the "
        "patched x265 in-process, write it as Annex-B HEVC and check that FFmpeg decodes it to exactly "
        "the encoder's reconstruction.",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("semrl-smoke.hevc"), help="output .hevc file")
    parser.add_argument("--frames", type=int, default=16, help="number of frames (default 16)")
    parser.add_argument("--qp", type=int, default=32, help="base QP (default 32)")
    parser.add_argument("--preset", default="medium", help="x265 preset (default medium)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the smoke encode and prints its summary."""
    from semrl.codec import QP_MAX, QP_MIN
    from semrl.errors import InvalidInputError
    from semrl.smoke import run_smoke

    if args.frames < 1:
        raise InvalidInputError(f"--frames must be at least 1, got {args.frames}")
    if not QP_MIN <= args.qp <= QP_MAX:
        raise InvalidInputError(f"--qp must be in {QP_MIN}..{QP_MAX}, got {args.qp}")
    report = run_smoke(args.output, frames=args.frames, qp=args.qp, preset=args.preset)
    print(report.summary())
    return 0

"""``semrl encode --bitrate`` against x265's own rate control at the same target: rate held, accuracy kept.

For each clip (default: the three of ``videos/``) and each target bitrate, the first ``--frames``
frames are coded with each policy and with x265, low-delay P (``--gop ra``: random access), preset medium:

- semrl: ``semrl encode --bitrate KBPS`` with the default policy (``auto``: the shipped video
  policy) or those of ``--policies`` (semrl's frame-level rate control, the policy's map inside
  each frame);
- x265: x265's ABR (``--bitrate KBPS``) with its default AQ and cuTree, as people run it.

Each is scored by ``semrl eval`` (detection mAP50-95, COCO AP, and the same with each class
weighted by its objects): against the net's objects on the source, or against the clip's real
labels where the assets have them, as ``semrl eval`` finds them (PETS: its MOTChallenge person
boxes; each row says which; ``--pseudo-gt`` scores every clip against pseudo ground truth).
Reported per clip and target: the achieved rate and its error, the largest one-second window over
the target (and the first second's, where the I-frame sits), the largest change of luma PSNR from one
frame to the next (how much the quality pulses), and the accuracy.

    python benchmarks/rate_control.py --frames 150
    python benchmarks/rate_control.py --policies auto,detection,PATH.zip --no-x265

Writes ``benchmarks/results/rate_control.json``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PSEUDO_GT = "pseudo ground truth"
"""What ``semrl eval`` scores against when the clip has no labels (``EvalReport.against``)."""


def x265_abr(source: Path, output: Path, kbps: float, frames: int, gop: str = "ldp", keyint: int = 250) -> None:
    """Code ``source`` with x265's ABR at ``kbps`` (preset medium, default AQ and cuTree; ``gop`` ldp or ra).

    Random access is x265's own (its adaptive B-frames), as people run it.
    """
    from semrl.codec import AnnexBWriter, Encoder, EncoderConfig, Gop
    from semrl.media import open_source

    with open_source(source, max_frames=frames, crop_even=True) as clip:
        fps = clip.info.fps
        config = EncoderConfig(clip.info.width, clip.info.height, bitrate=kbps, gop=Gop(gop), keyint=keyint,
                               fps=(fps.numerator, fps.denominator))  # fmt: skip
        with Encoder(config) as encoder, AnnexBWriter(output) as stream:
            for coded in encoder.encode_all(iter(clip)):
                stream.write(coded.nal)


def window_ratio(bits: list[int], fps: float, kbps: float, first: bool = False) -> float:
    """The largest sum of bits over one second of frames (``first``: the first second's), over the target's."""
    n = max(1, round(fps))
    sums = [sum(bits[i : i + n]) for i in range(1 if first else max(1, len(bits) - n + 1))]
    return max(sums) / (kbps * 1000.0)


def psnr_step(psnrs: list[float]) -> float:
    """The largest change of luma PSNR (dB) from one frame to the next, the first frame left out.

    The first P-frame after the I-frame drops by design; past it, a large step is the quality
    pulsing (a policy's boost over the whole picture switched on or off).
    """
    steps = [abs(b - a) for a, b in itertools.pairwise(psnrs[1:]) if math.isfinite(a) and math.isfinite(b)]
    return max(steps, default=0.0)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns 0."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", nargs="*", type=Path, help="clips (default: the shared videos/)")
    parser.add_argument("--rates", default="50,100,200", help="target kbit/s (default 50,100,200)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument(
        "--policies", default="auto", help="semrl --policy values, comma-separated (empty: x265's ABR alone)"
    )
    parser.add_argument("--gop", choices=("ldp", "ra"), default="ldp", help="low-delay P (default) or random access")
    parser.add_argument("--keyint", type=int, default=250, help="IDR interval of both (default 250, x265's)")
    parser.add_argument("--no-x265", action="store_true", help="leave out x265's ABR (when comparing semrl runs)")
    parser.add_argument(
        "--pseudo-gt", action="store_true", help="score every clip against pseudo ground truth, labelled ones too"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "rate_control.json")
    args = parser.parse_args(argv)
    from semrl.files import check_can_create

    check_can_create(args.output.parent, "--output")  # before the run, not after it
    policies = [p for p in args.policies.split(",") if p]
    if not policies and args.no_x265:
        print("error: nothing to run: give --policies or leave out --no-x265", file=sys.stderr)
        return 2
    from semrl.cli.options import numbers

    rates = numbers(args.rates, "--rates")

    import torch

    from semrl.assets import assets_root
    from semrl.codec import Gop
    from semrl.evaluate import evaluate
    from semrl.files import atomic_write, json_text
    from semrl.pipeline import EncodeSettings, encode_video

    torch.set_num_threads(2)
    root = assets_root()
    clips = args.clips or (sorted((root / "videos").glob("*.mp4")) if root is not None else [])
    if not clips:
        print("error: no clips: pass --clips or set SEMRL_ASSETS", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="semrl-rc-") as work:
        for clip in clips:
            for kbps in rates:
                runs: list[tuple[str, Path]] = []
                for policy in policies:
                    ours = Path(work) / f"semrl-{len(runs)}.mp4"
                    settings = EncodeSettings(
                        policy=policy, bitrate=kbps, max_frames=args.frames, gop=Gop(args.gop), keyint=args.keyint
                    )
                    encode_video(clip, ours, settings)
                    runs.append(("semrl" if policy == "auto" else f"semrl[{Path(policy).stem}]", ours))
                if not args.no_x265:
                    runs.append(("x265-abr", Path(work) / "x265.hevc"))
                    x265_abr(clip, runs[-1][1], kbps, args.frames, args.gop, args.keyint)
                for method, path in runs:
                    report = evaluate(clip, path, "detection", max_frames=args.frames, pseudo_gt=args.pseudo_gt)
                    fps = clip_fps(clip) if method == "x265-abr" else report.fps
                    bits = [int(r["bits"]) for r in report.rows]
                    rate = sum(bits) * fps / len(bits) / 1000
                    rows.append({
                        "clip": clip.name, "target_kbps": kbps, "method": method, "frames": report.frames,
                        "kbps": rate, "rate_error_percent": 100 * (rate / kbps - 1),
                        "max_1s_window_ratio": window_ratio(bits, fps, kbps),
                        "first_1s_window_ratio": window_ratio(bits, fps, kbps, first=True),
                        "psnr_step_db": psnr_step([float(r["psnr_y"]) for r in report.rows]),
                        "map50_95": 100 * report.accuracy, "objects_map50_95": 100 * report.objects,
                        "psnr_y": report.psnr_y,
                        "against": "labels" if report.against != PSEUDO_GT else PSEUDO_GT,
                    })  # fmt: skip
                    r = rows[-1]
                    print(f"{clip.name} {kbps:g} kbit/s {method:9s}: {r['kbps']:.1f} kbit/s "
                          f"({r['rate_error_percent']:+.1f} %), 1-s window {r['max_1s_window_ratio']:.2f}x "
                          f"(first {r['first_1s_window_ratio']:.2f}x), "
                          f"mAP50-95 {r['map50_95']:.1f} (objects {r['objects_map50_95']:.1f}), "
                          f"PSNR-Y {r['psnr_y']:.2f} (step {r['psnr_step_db']:.2f} dB)", flush=True)  # fmt: skip
    seconds = time.perf_counter() - start
    x265 = "" if args.no_x265 else "; x265: ABR with its AQ and cuTree"
    description = (
        f"{len(clips)} clips, first {args.frames} frames, {args.gop.upper()}, keyint {args.keyint}, preset medium; "
        + (
            f"semrl: --bitrate with the policies {', '.join(_shown(p) for p in policies)}"
            if policies
            else "semrl: not run"
        )
        + f"{x265}; "
        "mAP50-95 (COCO AP) against pseudo ground truth, "
        "or the clip's real labels where it has them (each row's 'against'); "
        f"{seconds:.0f} s on {platform.machine()}, {datetime.now(timezone.utc).date()}"
    )
    atomic_write(args.output, json_text({"description": description, "rows": rows}, indent=1))
    print(description)
    return 0


def _shown(policy: str) -> str:
    """A policy as the results show it: a file inside the repository by its relative path, outside by its name."""
    path = Path(policy).resolve()
    if not path.is_file():
        return policy  # a name: auto, video, detection...
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def clip_fps(clip: Path) -> float:
    """A clip's frame rate (an ``.hevc`` stream carries none, so an encode's rate is read off its source)."""
    from semrl.media import video_info

    return float(video_info(clip).fps)


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

"""How steady a video policy's decisions are from frame to frame (flicker of the objects' QP).

The video policy codes the blocks touching the objects ``roi + boost`` QP finer than the frame's
QP; the cascade and the ROI delta are fixed patterns, so what can flicker is the boost the policy
decides. For each clip (its first ``--frames`` frames, low-delay P, the video benchmark's analysis
of the originals) and base QP, this calls each policy frame by frame, exactly as the benchmark
and ``semrl encode`` do, and counts the frames whose boost differs from the previous frame's and by
how much; pooled over clips, per base QP.

    python benchmarks/video_steadiness.py --policy semrl=video --policy new=runs/v1/ckpt.zip
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semrl.agent.resolve import resolve_policy
from semrl.agent.video import OBSERVER_KEY, VideoPolicy
from semrl.bench.items import TASKS
from semrl.bench.runner import make_context
from semrl.cli.options import at_least
from semrl.codec import EncoderConfig, ctu_grid
from semrl.errors import InvalidInputError
from semrl.files import atomic_write, check_can_create, json_text
from semrl.policy import PolicyInput, apply_offsets

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
HELD_OUT = ",".join(
    str(ASSETS / p)
    for p in ("videos/pets2009_s2l1_480x360.mp4", "videos/traffic_640x360.mp4", "videos-extra/labelled/TUD-Campus")
)


def boosts(policy: VideoPolicy, frames: list[Any], analysis: Any, qp: int, config: EncoderConfig) -> list[int]:
    """The boost the policy decides for each frame of a clip, called as the benchmark calls it."""
    state: dict[str, Any] = {}
    gop = config.layout()
    ctu_shape = ctu_grid(config.width, config.height)
    out = []
    for i, frame in enumerate(frames):
        empty = np.zeros((*frame.y.shape, 0), np.uint8)
        inputs = PolicyInput(empty, qp, ctu_shape, analysis.regions[i], analysis.boxes[i], i, state,
                             picture=frame, gop=gop, cls=analysis.cls[i], conf=analysis.conf[i])  # fmt: skip
        apply_offsets(policy, inputs, qp)
        out.append(state[OBSERVER_KEY].boosts[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=HELD_OUT, help="clips: a video, a folder or a comma list (default: held out)")
    parser.add_argument("--frames", type=at_least(1), default=150, help="first N frames of each clip (default 150)")
    parser.add_argument("--qps", default="22,27,32,37,42", help="base QPs (default 22,27,32,37,42)")
    parser.add_argument("--policy", action="append", default=[], metavar="NAME=SPEC",
                        help="a video policy: 'video' (shipped) or a checkpoint (default semrl=video)")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=None, help="the video benchmark's cache (analyses)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "video_steadiness.json")
    args = parser.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it
    specs = dict(p.split("=", 1) for p in (args.policy or ["semrl=video"]))
    policies = {}
    for name, spec in specs.items():
        policy = resolve_policy(spec, task="detection", device="cpu")
        if not isinstance(policy, VideoPolicy):
            raise InvalidInputError(f"{name}={spec} is not a video policy")
        policies[name] = policy
    qps = [int(q) for q in args.qps.split(",")]
    task = dataclasses.replace(TASKS["video"], data=args.data)
    ctx = make_context(task, frames=args.frames, cache_dir=args.cache_dir, progress=False)
    rows = []
    for name, policy in policies.items():
        for qp in qps:
            changes, steps, sizes = 0, 0, []
            for item, analysis in zip(ctx.items, ctx.analyses, strict=True):
                h, w = item.shape
                config = EncoderConfig(w, h, qp=qp, keyint=ctx.keyint)
                b = np.asarray(boosts(policy, item.yuv, analysis, qp, config))
                step = np.abs(np.diff(b))
                changes += int((step > 0).sum())
                steps += len(step)
                sizes += step[step > 0].tolist()
            row = {"policy": name, "base_qp": qp, "frames": steps + len(ctx.items), "changed_share": changes / steps,
                   "mean_change": float(np.mean(sizes)) if sizes else 0.0}  # fmt: skip
            rows.append(row)
            print(f"{name:>10}  QP {qp}: boost changes on {100 * row['changed_share']:5.1f} % of frames"
                  f" (by {row['mean_change']:.1f} QP on average)")  # fmt: skip
    description = {
        "what": "share of frames whose object boost differs from the previous frame's, pooled over clips",
        "clips": [item.name for item in ctx.items], "frames_per_clip": args.frames,
        "policies": {name: policy.fingerprint for name, policy in policies.items()},
        "python": platform.python_version(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/video_steadiness.py " + shlex.join(sys.argv[1:] if argv is None else argv),
    }  # fmt: skip
    result = {"name": "video_steadiness", "description": description, "results": rows}
    atomic_write(args.output, json_text(result, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

"""Peak memory of the ``semrl encode`` and ``semrl eval`` commands against the length of the clip.

``semrl encode`` streams its frames: FFmpeg decodes a few ahead, the encoder holds its lookahead,
and what each coded frame leaves behind for the report is a row of figures. So the peak resident
memory of the command should not grow with the clip; until 2026-12-06 it kept every coded frame's
decoded picture until the end (0.26 MB a frame at 480x360, 3.1 MB at 1080p: 56 GB for ten minutes
of 1080p at 30 fps) and the whole compressed stream while muxing. Each run is a process of its own
(``semrl encode`` as a user runs it), its peak read from the kernel's accounting of that child
(``os.wait4``); the growth is the slope between the two longest runs, in MB per 1000 frames (the
shorter runs show the start-up: the task net runs as a frozen graph only from 32 analysed frames).
``semrl eval`` (``--pseudo-gt``, detection, on the first frames of one encode) held both clips'
frames, as 4:2:0 and as RGB, until 2026-12-06; it now reads them a batch of the net's at a time.

    python benchmarks/encode_memory.py          # writes benchmarks/results/encode_memory.json
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from semrl.files import atomic_write, check_can_create, json_text
from semrl.media import video_info

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "assets" / "videos" / "pets2009_s2l1_480x360.mp4"


def peak_mb(command: list[str]) -> float:
    """Runs ``command`` and returns its peak resident memory in MB (what Linux reports for that child)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {errors.strip()}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument(
        "--frames", default="100,400,0", help="frame counts to code, comma-separated; 0: the whole clip"
    )
    parser.add_argument("--policies", default="auto,uniform", help="semrl encode --policy values, comma-separated")
    parser.add_argument("--no-eval", action="store_true", help="leave out semrl eval's peak")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "encode_memory.json")
    args = parser.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it
    if not args.video.is_file():
        parser.error(f"no such video: {args.video} (give one with --video)")
    total = video_info(args.video).frames
    asked = [int(n) or total for n in args.frames.split(",")]
    counts = [n for n in asked if n is not None]
    if len(counts) < max(2, len(asked)):
        parser.error(f"give at least two frame counts in --frames ({args.video} says {total} frames)")
    rows = []
    semrl = [sys.executable, "-c", "import sys; from semrl.cli import main; sys.exit(main(sys.argv[1:]))"]
    runs = args.policies.split(",") + ([] if args.no_eval else ["eval"])
    with tempfile.TemporaryDirectory(prefix="semrl-memory-") as folder:
        encode = Path(folder) / "out.mp4"
        for run in runs:
            if run == "eval":  # scores the first frames of one encode of the longest count (not measured)
                longest = [*semrl, "encode", str(args.video), "-o", str(encode), "--frames", str(max(counts))]
                subprocess.run([*longest, "--policy", "uniform", "--no-progress"], check=True, capture_output=True)
            for frames in counts:
                if run == "eval":
                    command = [*semrl, "eval", str(args.video), str(encode), "--task", "detection", "--pseudo-gt",
                               "--frames", str(frames), "-o", folder]  # fmt: skip
                else:
                    command = [*semrl, "encode", str(args.video), "-o", str(encode), "--policy", run,
                               "--frames", str(frames), "--no-progress"]  # fmt: skip
                peak = peak_mb(command)
                rows.append({"run": run, "frames": frames, "peak_mb": round(peak, 1)})
                print(f"{run:>8} {frames:>6} frames: peak {peak:7.1f} MB", flush=True)
    growth = {}
    for policy in runs:
        (shorter, low), (longer, high) = [(r["frames"], r["peak_mb"]) for r in rows if r["run"] == policy][-2:]
        growth[policy] = round((high - low) / (longer - shorter) * 1000, 1)
        print(f"{policy:>8}: {growth[policy]:+.1f} MB per 1000 frames from {shorter} to {longer} frames")
    info = video_info(args.video)
    result = {
        "name": "encode_memory",
        "description": {
            "what": "peak resident memory of the semrl encode command (own process) against the frames it codes",
            "video": str(args.video),
            "size": f"{info.width}x{info.height}",
            "machine": f"{platform.machine()} {platform.processor()}".strip(),
            "cpus": os.cpu_count(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/encode_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "results": {"rows": rows, "growth_mb_per_1000_frames": growth},
    }
    atomic_write(args.output, json_text(result, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

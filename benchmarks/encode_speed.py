"""Wall time of ``semrl encode`` against the patched x265 CLI encoding the same frames.

The CLI gets the same preset, GOP (``--gop``), base QP and x265 options (``EncoderConfig.cli_args``;
CRF at the base QP where ``semrl encode`` codes with x265's own allocation, the random-access default)
and reads the video through an FFmpeg pipe, as a user would run it. ``semrl encode`` runs in-process with
its defaults; with ``--as-command``, the ``semrl encode`` command runs in a process of its own, as
a user runs it, so Python's imports, loading the policy and the task net, and tracing the net
count too (on PETS on this 2-core machine, 4.6 s before the command stopped importing torchvision
and ``torch._dynamo``, about 2.3 s since; the in-process timing leaves them out). The CLI
runs twice: with ``semrl encode``'s threads (``ratio``) and with the thread pool and frame threads
left to x265, as people run it (``ratio_own_threads``). Runs alternate; medians over ``--runs``,
after ``--warmup`` untimed runs of each (the first run of ``semrl encode`` in a process loads its
nets and traces the task net, which a median of few runs would not shed); the per-stage split of
``semrl encode`` comes from its report.

The machine's pace drifts between runs by more than the margins in question (the CLI's median
moved by 7 % between two runs of this script), so each of ``semrl encode``'s runs is also divided
by the CLI run right after it: ``paired_ratio`` is the median of those ratios, with a 95 %
bootstrap interval over the runs (``paired_ratio_interval``, from 3 runs). CPU seconds (every
thread and child process: FFmpeg's decode, x265's pool, the task net) are measured beside the wall
time: they show the work done, which the pace of a shared machine moves less.

    python benchmarks/encode_speed.py          # writes benchmarks/results/encode_speed.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import stats

from semrl.cli.options import at_least
from semrl.codec import EncoderConfig, load_library
from semrl.files import atomic_write, check_can_create, json_text
from semrl.media import ffmpeg_tool, video_info
from semrl.pipeline import (
    STAGES,
    EncodeSettings,
    concrete_policy,
    encode_video,
    resolve_policy,
    x265_config,
    x265_rate_control,
)
from semrl.policy import Policy

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "assets" / "videos" / "pets2009_s2l1_480x360.mp4"
INTERVAL_MIN_RUNS = 3
"""The fewest runs a bootstrap interval of the paired ratio is drawn from."""


def cpu_seconds() -> float:
    """CPU seconds so far of this process's threads and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def paired_ratio(ours: list[float], theirs: list[float], seed: int = 0) -> tuple[float, list[float] | None]:
    """The median of ``ours[i] / theirs[i]``, and its 95 % bootstrap interval over the pairs.

    Returns:
        The median ratio, and the percentile interval (None with fewer than
        :data:`INTERVAL_MIN_RUNS` pairs, or when every pair gives the same ratio).
    """
    ratios = np.asarray(ours) / np.asarray(theirs)
    median = float(np.median(ratios))
    if len(ratios) < INTERVAL_MIN_RUNS or np.ptp(ratios) == 0:
        return median, None
    result = stats.bootstrap(
        (ratios,), np.median, confidence_level=0.95, n_resamples=9999, method="percentile", rng=seed
    )
    interval = result.confidence_interval
    return median, [float(interval.low), float(interval.high)]


def cli_config(video: Path, settings: EncodeSettings, policy: Policy) -> EncoderConfig:
    """The x265 CLI's configuration for ``semrl encode``'s ``settings``: the same preset, GOP, base QP and threads.

    Where ``policy`` (``semrl encode``'s, resolved) leaves the allocation to x265 (``x265``, the
    random-access default), x265's own rate control as ``semrl encode`` runs it (CRF at the base QP).
    """
    return x265_rate_control(x265_config(video_info(video), settings), settings, policy)


def time_cli(
    video: Path, settings: EncodeSettings, policy: Policy, output: Path, own_threads: bool = False
) -> tuple[float, float]:
    """Wall and CPU seconds of ``ffmpeg -i video -f yuv4mpegpipe - | x265 ... --y4m --input -``.

    Args:
        video: The input.
        settings: ``semrl encode``'s settings, whose preset, GOP, base QP and threads the CLI gets.
        policy: ``semrl encode``'s policy, resolved (:func:`cli_config`).
        output: Where the CLI writes its stream.
        own_threads: Leave the thread pool and the frame threads to x265, as people run it.
    """
    args = cli_config(video, settings, policy).cli_args()
    if own_threads:
        for option in ("--pools", "--frame-threads"):
            at = args.index(option)
            del args[at : at + 2]
    x265 = load_library().build.prefix / "bin" / "x265"
    frames = ["-frames:v", str(settings.max_frames)] if settings.max_frames else []
    cpu = cpu_seconds()
    start = time.perf_counter()
    decode = [ffmpeg_tool("ffmpeg"), "-v", "error", "-nostdin", "-i", str(video), *frames, "-pix_fmt", "yuv420p"]
    with subprocess.Popen([*decode, "-f", "yuv4mpegpipe", "-"], stdout=subprocess.PIPE) as decoder:
        encoder = subprocess.run(
            [str(x265), *args, "--y4m", "--input", "-", "--output", str(output)],
            stdin=decoder.stdout, capture_output=True, check=False,
        )  # fmt: skip
    elapsed = time.perf_counter() - start
    if encoder.returncode != 0 or decoder.returncode != 0:
        raise RuntimeError(f"x265 CLI failed: {encoder.stderr.decode(errors='replace')}")
    return elapsed, cpu_seconds() - cpu


def time_command(video: Path, settings: EncodeSettings, output: Path) -> tuple[float, float, SimpleNamespace]:
    """Wall and CPU seconds of the ``semrl encode`` command, as a user runs it, and its report.

    A process of its own: Python and its imports (torch about 1.2 s here), loading the policy and
    the task net, and tracing the net, come on top of the encode.

    Args:
        video: The input.
        settings: The settings to give on its command line (policy, frames, threads, map
            interval, net precision).
        output: Where it writes its stream (its report beside it, ``.json``).
    """
    report = output.with_suffix(".json")
    command = [sys.executable, "-m", "semrl", "encode", str(video), "-o", str(output), "--no-progress"]
    command += ["--report", str(report)]
    command += ["--policy", settings.policy, "--map-interval", str(settings.map_interval)]
    command += ["--net-precision", settings.net_precision, "--gop", settings.gop.value]
    if settings.max_frames:
        command += ["--frames", str(settings.max_frames)]
    if settings.threads:
        command += ["--threads", str(settings.threads)]
    cpu = cpu_seconds()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"semrl encode failed: {result.stderr.decode(errors='replace')}")
    return elapsed, cpu_seconds() - cpu, SimpleNamespace(**json.loads(report.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--runs", type=at_least(1), default=3)
    parser.add_argument(
        "--warmup", type=at_least(0), default=1,
        help="untimed runs of each before the timed ones (the first loads and traces the net; default: 1)",
    )  # fmt: skip
    parser.add_argument("--policies", default="auto,roi,uniform", help="semrl policies to time (default: these)")
    parser.add_argument("--frames", type=int, help="encode only the first N frames")
    parser.add_argument("--gop", choices=("ldp", "ra", "intra"), default="ldp", help="GOP of both (default ldp)")
    parser.add_argument("--threads", type=int, help="x265 worker threads of semrl encode (default: its default)")
    parser.add_argument("--map-interval", type=int, help="semrl encode's --map-interval (default: its default)")
    parser.add_argument(
        "--net-precisions", default=EncodeSettings().net_precision,
        help="semrl encode's --net-precision, one row each, e.g. fp32,bf16 (default: its default)",
    )  # fmt: skip
    parser.add_argument(
        "--as-command", action="store_true",
        help="time the semrl encode command, a process of its own (imports, loading the nets), not in-process",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "encode_speed.json")
    args = parser.parse_args(argv)
    check_can_create(args.output.parent, "--output")  # before the run, not after it

    rows: list[dict[str, Any]] = []
    map_interval = EncodeSettings().map_interval if args.map_interval is None else args.map_interval
    with tempfile.TemporaryDirectory(prefix="semrl-encode-bench-") as work:
        folder = Path(work)
        for policy, precision in itertools.product(args.policies.split(","), args.net_precisions.split(",")):
            settings = EncodeSettings(
                policy=policy, max_frames=args.frames, threads=args.threads, map_interval=map_interval,
                net_precision=precision, gop=args.gop,
            )  # fmt: skip
            resolved, _ = resolve_policy(concrete_policy(settings, args.video))  # as semrl encode resolves it
            ours: list[float] = []
            theirs: list[float] = []
            own: list[float] = []
            cpu: dict[str, list[float]] = {"semrl": [], "cli": [], "cli_own_threads": []}
            stages: list[dict[str, float]] = []
            for _ in range(args.warmup):
                if args.as_command:
                    time_command(args.video, settings, folder / "semrl.mp4")
                else:
                    encode_video(args.video, folder / "semrl.mp4", settings)
                time_cli(args.video, settings, resolved, folder / "cli.hevc")
            for _ in range(args.runs):
                report: Any
                if args.as_command:
                    wall, seconds, report = time_command(args.video, settings, folder / "semrl.mp4")
                else:
                    before = cpu_seconds()
                    start = time.perf_counter()
                    report = encode_video(args.video, folder / "semrl.mp4", settings)
                    wall, seconds = time.perf_counter() - start, cpu_seconds() - before
                ours.append(wall)
                cpu["semrl"].append(seconds)
                stages.append(report.stage_s)
                for runs, own_threads, name in ((theirs, False, "cli"), (own, True, "cli_own_threads")):
                    wall, seconds = time_cli(
                        args.video, settings, resolved, folder / "cli.hevc", own_threads=own_threads
                    )
                    runs.append(wall)
                    cpu[name].append(seconds)
            row = {
                "policy": policy,
                "net_precision": report.settings["net_precision"],
                "frames": report.frames,
                "kbps": report.kbps,
                "mean_qp": report.mean_qp,
                "semrl_s": statistics.median(ours),
                "cli_s": statistics.median(theirs),
                "cli_own_threads_s": statistics.median(own),
                "stage_s": {stage: statistics.median(s[stage] for s in stages) for stage in STAGES},
                "semrl_runs_s": ours,
                "cli_runs_s": theirs,
                "cli_own_threads_runs_s": own,
            }
            row["ratio"] = row["semrl_s"] / row["cli_s"]
            row["ratio_own_threads"] = row["semrl_s"] / row["cli_own_threads_s"]
            row["paired_ratio"], row["paired_ratio_interval"] = paired_ratio(ours, theirs)
            row["cpu_s"] = {name: statistics.median(runs) for name, runs in cpu.items()}
            row["cpu_ratio"] = row["cpu_s"]["semrl"] / row["cpu_s"]["cli"]
            row["cpu_runs_s"] = cpu
            rows.append(row)
            interval = row["paired_ratio_interval"]
            paired = f"paired {row['paired_ratio']:.3f}" + (
                "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"
            )
            split = ", ".join(f"{k} {v:.2f}" for k, v in row["stage_s"].items())
            print(
                f"policy {policy:8s} net {row['net_precision']} semrl encode {row['semrl_s']:6.2f} s  "
                f"x265 CLI {row['cli_s']:6.2f} s  "
                f"ratio {row['ratio']:.3f}, {paired}; CPU s {row['cpu_s']['semrl']:.2f} / {row['cpu_s']['cli']:.2f}  "
                f"(x265 CLI, its own threads {row['cli_own_threads_s']:6.2f} s, ratio "
                f"{row['ratio_own_threads']:.2f}; {report.frames} frames, {report.kbps:.1f} kbit/s; stages s: {split})",
                flush=True,
            )
    build = load_library().build
    result = {
        "name": "encode_speed",
        "description": {
            "what": "wall time of semrl encode (defaults; in-process, or with as_command the command) vs "
            "ffmpeg | patched x265 CLI, same frames, preset, GOP, base QP; "
            "the CLI with semrl's threads (ratio) and with its own (ratio_own_threads); "
            "paired_ratio: median of each run's semrl / the CLI run right after, 95 % bootstrap interval; "
            "cpu_s: CPU seconds of all threads and child processes",
            "x265_threads": EncodeSettings(threads=args.threads).x265_threads,
            "map_interval": map_interval,
            "gop": args.gop,
            "video": args.video.name,
            "x265": build.version,
            "patch_hash": build.patch_hash,
            "python": sys.version.split()[0],
            "machine": f"{platform.machine()} {platform.processor()}",
            "cpus": os.cpu_count(),
            "runs": args.runs,
            "warmup": args.warmup,
            "as_command": args.as_command,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/encode_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        "results": {"rows": rows},
    }
    atomic_write(args.output, json_text(result, indent=2))
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

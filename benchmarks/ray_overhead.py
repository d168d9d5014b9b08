"""Ray's overhead on the fast-mode table build, and a projection of a large training set over many workers.

    python benchmarks/ray_overhead.py                       # detection, train split, 2 CPUs
    python benchmarks/ray_overhead.py --task segmentation --limit 32 --repeats 2

The tables of the task's training split are built from scratch (fresh temporary caches) twice in
one run, the same way ``semrl train`` builds them: locally in ``--cpus`` worker processes
(``--workers``), and as Ray tasks on a local Ray instance of ``--cpus`` CPUs (``--ray``), its
start-up included. With ``--repeats`` the two alternate (local, ray, ray, local, ...) and medians
are reported. The tables of both paths are checked equal.

From the Ray run come the per-task cost (CPU-seconds per picture), the driver's CPU time per
result (it receives every table and writes the cache), the bytes each task moves (picture out,
table back) and the per-process start-up (x265 and the task net). The projection of a
10,000-picture set on N workers is ``start + setup + T * max(cost / N, driver)``, with the
driver's link (``--link-gbit``, an assumption, not measured here) as a further bound.

Writes ``benchmarks/results/ray/ray_overhead_<task>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from envs.tables import DEFAULT_TABLE_QPS, CtuTable, RealExtractorFactory, X265CodecFactory, build_tables, load_pictures
from semrl.agent.config import DEFAULT_DATA
from semrl.cluster import LOCAL, session
from semrl.files import atomic_write, check_can_create, json_text
from semrl.semantics import TASKS
from semrl.semantics.config import MapConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ray"
PROJECTED_PICTURES = 10_000
PROJECTED_WORKERS = (1, 8, 64)


def _same_tables(a: list[Any], b: list[Any]) -> bool:
    names = ("bits", "dsem", "rise", "dpix", "mse", "dobj", "fobj", "grids", "semantic")
    return len(a) == len(b) and all(
        getattr(x, n).tobytes() == getattr(y, n).tobytes() for x, y in zip(a, b, strict=True) for n in names
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the builds and returns the figures."""
    pictures = load_pictures(args.data or DEFAULT_DATA[args.task], split=args.split, limit=args.limit)
    codec_factory = X265CodecFactory(args.preset)
    extractor_factory = RealExtractorFactory(MapConfig(task=args.task).to_json())
    t0 = time.perf_counter()
    codec, extractor = codec_factory(), extractor_factory()
    setup_s = time.perf_counter() - t0
    common: dict[str, Any] = {
        "codec_factory": codec_factory, "extractor_factory": extractor_factory, "qps": DEFAULT_TABLE_QPS,
        "progress": not args.no_progress,
    }  # fmt: skip
    # alternating (local, ray, ray, local, ...), so drift of a shared machine favours neither
    order = [m for r in range(args.repeats) for m in (("local", "ray") if r % 2 == 0 else ("ray", "local"))]
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    starts, driver_cpu, tables = [], [], {}
    for mode in order:
        scratch = Path(tempfile.mkdtemp(prefix=f"semrl-ray-overhead-{mode}-"))
        try:
            start = time.perf_counter()
            if mode == "local":
                built = build_tables(pictures, cache_dir=scratch, workers=args.cpus, codec=codec, extractor=extractor,
                                     **common)  # fmt: skip
            else:
                with session(LOCAL, num_cpus=args.cpus):
                    starts.append(time.perf_counter() - start)
                    cpu0 = time.process_time()
                    built = build_tables(pictures, cache_dir=scratch, ray=LOCAL, codec=codec, extractor=extractor,
                                         **common)  # fmt: skip
                    cpu1 = time.process_time()
                # the driver's own work per result, without reading the tables back (the local path does too)
                [CtuTable.load(path) for path in scratch.glob("*.npz")]
                driver_cpu.append(2 * cpu1 - cpu0 - time.process_time())
            walls[mode].append(time.perf_counter() - start)
            tables[mode] = built
            print(f"{mode}: {walls[mode][-1]:.1f} s for {len(built)} tables", file=sys.stderr)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    n = len(pictures)
    local, ray = statistics.median(walls["local"]), statistics.median(walls["ray"])
    start_s = statistics.median(starts)
    cost = args.cpus * (ray - start_s - setup_s) / n
    driver = statistics.median(driver_cpu) / n
    bytes_out = statistics.median(len(pickle.dumps(p)) for p in pictures)
    bytes_back = statistics.median(len(pickle.dumps(t)) for t in tables["ray"])
    link = args.link_gbit * 1e9 / 8 / (bytes_out + bytes_back)
    projection = {}
    for workers in PROJECTED_WORKERS:
        per_task = max(cost / workers, driver, 1 / link)
        projection[str(workers)] = {
            "hours": (start_s + setup_s + PROJECTED_PICTURES * per_task) / 3600,
            "bound": "workers" if per_task == cost / workers else ("driver cpu" if per_task == driver else "link"),
        }
    return {
        "pictures": n,
        "tables_equal": _same_tables(tables["local"], tables["ray"]),
        "local_s": walls["local"],
        "ray_s": walls["ray"],
        "local_median_s": local,
        "ray_median_s": ray,
        "ray_over_local": ray / local,
        "ray_start_s": start_s,
        "worker_setup_s": setup_s,
        "tasks_per_s": n / ray,
        "task_cost_cpu_s": cost,
        "driver_cpu_s_per_task": driver,
        "bytes_per_task": {"picture": bytes_out, "table": bytes_back},
        "link_gbit": args.link_gbit,
        "projection": {"pictures": PROJECTED_PICTURES, "workers": projection},
    }


def markdown(results: dict[str, Any], description: dict[str, Any]) -> str:
    """The report."""
    r = results
    rows = "\n".join(f"| {w} | {p['hours']:.2f} h | {p['bound']} |" for w, p in r["projection"]["workers"].items())
    return (
        f"# Ray overhead: {description['task']} tables ({r['pictures']} pictures, {description['cpus']} CPUs)\n\n"
        f"`{description['command']}` ({description['date']}, {description['machine']})\n\n"
        f"| path | wall (median) |\n|---|---|\n"
        f"| local, {description['cpus']} worker processes | {r['local_median_s']:.1f} s |\n"
        f"| Ray, local instance of {description['cpus']} CPUs (start included) | {r['ray_median_s']:.1f} s |\n\n"
        f"- Ray / local: **{r['ray_over_local']:.3f}** ({(r['ray_over_local'] - 1) * 100:+.1f} %); tables equal: "
        f"{r['tables_equal']}\n"
        f"- tasks per second: {r['tasks_per_s']:.3f}; per-task cost {r['task_cost_cpu_s']:.2f} CPU-s; "
        f"Ray start {r['ray_start_s']:.1f} s; x265 + task net start-up {r['worker_setup_s']:.1f} s per process\n"
        f"- driver: {r['driver_cpu_s_per_task'] * 1000:.1f} ms CPU per result; per task "
        f"{r['bytes_per_task']['picture'] / 1e6:.2f} MB out, {r['bytes_per_task']['table'] / 1e6:.2f} MB back\n\n"
        f"Projection, {r['projection']['pictures']:,} pictures (start + setup + T x max(cost / N, driver, link at "
        f"{r['link_gbit']:g} Gbit/s)):\n\n| workers | wall | bound by |\n|---|---|---|\n{rows}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--task", default="detection", choices=TASKS)
    p.add_argument("--data", help="training data (default: the task's)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, help="first N pictures")
    p.add_argument("--cpus", type=int, default=2, help="worker processes and Ray CPUs (default 2)")
    p.add_argument("--repeats", type=int, default=1, help="builds of each path (alternating; medians)")
    p.add_argument("--preset", default="medium")
    p.add_argument("--link-gbit", type=float, default=1.0, help="assumed bandwidth of the driver's link")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    check_can_create(args.output, "--output")  # before the run, not after it
    results = measure(args)  # a semrl error is run_script's to report
    description = {
        "command": "python benchmarks/ray_overhead.py " + " ".join(argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "task": args.task, "cpus": args.cpus, "repeats": args.repeats, "table_qps": list(DEFAULT_TABLE_QPS),
    }  # fmt: skip
    data = {"name": f"ray_overhead_{args.task}", "description": description, "results": results}
    atomic_write(args.output / f"ray_overhead_{args.task}.json", json_text(data, indent=1))
    text = markdown(results, description)
    atomic_write(args.output / f"ray_overhead_{args.task}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

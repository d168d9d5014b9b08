"""Speed of the SemanticQP environment (fast and live mode), the fast mode's error, and training time.

    python benchmarks/env_speed.py --task detection --live-episodes 8 --policy semrl/policies/detection.zip
    python benchmarks/env_speed.py --task detection --runs runs/detection runs/segmentation

- fast mode: env steps per second on one core (random actions, tables of the task's training
  pictures, from the cache; they are built first when missing);
- live mode: steps per second when every episode's QP map is coded by the patched x265 and scored
  by the real task net;
- fast vs live: for the same episodes (random actions, and the policy's if ``--policy`` is given),
  the episode returns and bits predicted by the tables against those of the live encode;
- training wall time: ``timing.json`` of each run folder given with ``--runs``.

Writes ``benchmarks/results/env_speed[_<task>].json`` ({"name", "description", "results"}).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from semrl.errors import InputNotFoundError
from semrl.files import atomic_write, check_can_create
from semrl.semantics import TASKS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _episode(env: Any, options: dict[str, int], act: Any) -> dict[str, Any]:
    obs, _ = env.reset(options=options)
    term = False
    while not term:
        obs, _, term, _, info = env.step(act(obs))
    result: dict[str, Any] = info
    return result


def _gap(pairs: list[dict[str, Any]]) -> dict[str, float]:
    fast = np.array([p["fast_return"] for p in pairs])
    live = np.array([p["live_return"] for p in pairs])
    ctus = np.array([len(p["fast_ctu_rewards"]) for p in pairs])
    bits_f = np.array([p["bits_fast"] for p in pairs])
    bits_l = np.array([p["bits_live"] for p in pairs])
    per_ctu = np.concatenate([p["fast_ctu_rewards"] - p["live_ctu_rewards"] for p in pairs])
    return {
        "episodes": len(pairs),
        "mean_fast_return_per_ctu": float((fast / ctus).mean()),
        "mean_live_return_per_ctu": float((live / ctus).mean()),
        "mean_abs_return_gap_per_ctu": float((np.abs(fast - live) / ctus).mean()),
        "ctu_reward_mae": float(np.abs(per_ctu).mean()),
        "return_correlation": float(np.corrcoef(fast, live)[0, 1]) if len(pairs) > 2 else float("nan"),
        "bits_rel_error_mean": float(((bits_f - bits_l) / bits_l).mean()),
        "bits_rel_error_abs_mean": float((np.abs(bits_f - bits_l) / bits_l).mean()),
        "sign_agreement": float((np.sign(fast) == np.sign(live)).mean()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="detection", choices=TASKS)
    parser.add_argument("--data", default=None, help="training data (default: the task's shared dataset)")
    parser.add_argument("--limit", type=int, default=None, help="first N pictures")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--fast-steps", type=int, default=50_000)
    parser.add_argument("--live-episodes", type=int, default=8)
    parser.add_argument("--policy", default=None, help="a ckpt.zip whose actions are also checked live")
    parser.add_argument("--runs", nargs="*", default=[], help="training output folders (timing.json)")
    parser.add_argument("--tables-s", nargs="*", default=[], metavar="TASK=SECONDS",
                        help="table build times measured separately (cached tables make a run's own 0)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default=None, help="JSON path (default: results/env_speed_<task>.json)")
    args = parser.parse_args(argv)
    check_can_create(Path(args.output).parent if args.output else RESULTS, "--output")  # before the run, not after it
    for run in args.runs:
        if not (Path(run) / "timing.json").is_file():
            raise InputNotFoundError(f"--runs {run}: no timing.json there (semrl train -o writes one)")

    import torch

    torch.set_num_threads(1)
    from envs.codecs import X265Codec
    from envs.semantic_qp import SemanticQPEnv
    from envs.tables import DEFAULT_TABLE_QPS, RealExtractorFactory, X265CodecFactory, build_tables, load_pictures
    from semrl.agent.config import DEFAULT_DATA
    from semrl.codec import load_library
    from semrl.semantics.config import MapConfig

    data = args.data or DEFAULT_DATA[args.task]
    pictures = load_pictures(data, split="train", limit=args.limit)
    factory = RealExtractorFactory(MapConfig(task=args.task).to_json())
    extractor = factory()
    codec = X265Codec(args.preset)
    tables = build_tables(pictures, codec_factory=X265CodecFactory(args.preset), extractor_factory=factory,
                          qps=DEFAULT_TABLE_QPS, codec=codec, extractor=extractor, workers=2)  # fmt: skip
    results: dict[str, Any] = {"task": args.task, "data": data, "pictures": len(pictures)}

    env = SemanticQPEnv(tables)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    actions = [env.action_space.sample() for _ in range(args.fast_steps)]
    start = time.perf_counter()
    for a in actions:
        _, _, term, _, _ = env.step(a)
        if term:
            env.reset()
    fast_s = time.perf_counter() - start
    results["fast_steps_per_s"] = args.fast_steps / fast_s

    policy_model = None
    if args.policy:
        from semrl.agent.checkpoint import load_checkpoint_policy

        trained = load_checkpoint_policy(args.policy, task=args.task, extractor=extractor)
        policy_model = trained.model
        lambdas = {int(q): v for q, v in trained.config.lambdas.items()}
        env = SemanticQPEnv(tables, settings=trained.settings, lambdas=lambdas)
    live = SemanticQPEnv(tables, mode="live", pictures=pictures, codec=codec, extractor=extractor,
                         settings=env.settings, lambdas=env.lambdas)  # fmt: skip
    rng = np.random.default_rng(args.seed)
    lo, hi = env.settings.base_qps
    episodes = [
        {"picture": int(rng.integers(len(tables))), "base_qp": int(rng.integers(lo, hi + 1))}
        for _ in range(args.live_episodes)
    ]
    n_actions = len(live.offsets)
    random_pairs, steps = [], 0
    start = time.perf_counter()
    for options in episodes:
        info = _episode(live, options, lambda _obs: int(rng.integers(n_actions)))
        random_pairs.append(info)
        steps += len(info["fast_ctu_rewards"])
    live_s = time.perf_counter() - start
    results["live_steps_per_s"] = steps / live_s
    results["live_episodes_per_s"] = len(episodes) / live_s
    results["fast_vs_live_random_actions"] = _gap(random_pairs)
    if policy_model is not None:
        pairs = [
            _episode(live, options, lambda obs: int(policy_model.predict(obs, deterministic=True)[0]))
            for options in episodes
        ]
        results["fast_vs_live_policy_actions"] = _gap(pairs)
        results["policy"] = args.policy
    timings = {}
    for run in args.runs:
        timings[run] = json.loads((Path(run) / "timing.json").read_text())
    if timings:
        results["training_wall_s"] = timings
    if args.tables_s:
        results["table_build_wall_s"] = {k: float(v) for k, _, v in (t.partition("=") for t in args.tables_s)}

    build = load_library().build
    description = (
        f"SemanticQP env, x265 {build.version} (patch {build.patch_hash}) preset {args.preset}, all-intra; "
        f"torch {torch.__version__} (1 thread); Python {platform.python_version()}, {platform.machine()} "
        f"{platform.platform()}, {os.cpu_count()} CPUs shared with other jobs (load average at the end "
        f"{os.getloadavg()[0]:.1f}); {datetime.now(timezone.utc).date()}"
    )
    document = {"name": "env_speed", "description": description, "results": results}
    target = Path(args.output) if args.output else RESULTS / f"env_speed_{args.task}.json"
    atomic_write(target, json.dumps(document, indent=1, sort_keys=True))
    print(json.dumps(results, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

"""Fine-tune a picture policy on live encodes: the picture-level live reward, spread over the CTUs.

The fast mode's tables fail where a task net's answer under a mixed QP map is not the sum of its
answers under uniform codings (``benchmarks/signal_validation.py``: for classification the tables
agree with the live terms at 0.57, the live terms with the live score at 0.87). This tries the
direct remedy: start from a trained DQN policy and go on learning in the environment's live mode,
where every episode's QP map is coded by the real x265 and scored by the real task net, and each
CTU's reward is its exact bits against the live fidelity terms of the whole picture (for
classification the reference class's probability drop, spread over the CTUs by Grad-CAM; with
the policy's reward settings and multipliers). With discount 0 the Q-value of each action regresses
onto that reward, epsilon-greedy over the policy's own actions.

Two credit schemes (``--credit``): ``spread``, each CTU's live reward as the environment gives it
(the picture's live loss spread by the map); ``marginal``, up to ``--credited`` CTUs per episode
credited with their own effect (the episode's live return minus that of the same map with the CTU
alone at offset 0: one more live encode each). A CTU's share of the picture's loss barely depends
on its own action and one coarser CTU rarely moves a classifier, while its bits always fall, so
both push every CTU coarser; on held-aside pictures both fine-tuned policies coded coarser and
lost (``benchmarks/results/classification-live``). Kept as that measured negative result.

Usage::

    python benchmarks/live_finetune.py BASE.zip OUT_DIR --task classification --limit 150 \
        --episodes 1500 --seed 0

``OUT_DIR`` receives ``ckpt.zip`` (the fine-tuned net), ``ckpt.json`` (the base policy's config,
which the net still fits, with the fine-tuning recorded: its steps added to ``timesteps``, and
under ``data`` its base checkpoint, pictures and settings) and ``episodes.csv`` (each episode's
picture, base QP, live and fast return).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from envs.semantic_qp import EnvSettings, SemanticQPEnv
from envs.tables import DEFAULT_TABLE_QPS, RealExtractorFactory, X265CodecFactory, build_tables, load_pictures
from semrl.agent.config import DEFAULT_DATA, PolicyConfig, TrainConfig, config_path
from semrl.agent.train import weigh_objects
from semrl.errors import InvalidInputError
from semrl.files import atomic_output, atomic_write


def finetune(args: argparse.Namespace) -> Path:
    """Run the fine-tuning of ``args.base`` and write it to ``args.output``; returns the checkpoint."""
    import torch
    from stable_baselines3 import DQN

    base = Path(args.base)
    config = PolicyConfig.read(config_path(base))
    if config.algorithm != "dqn":
        raise InvalidInputError(f"{base} is a {config.algorithm} policy; live fine-tuning regresses DQN Q-values")
    if config.task != args.task:
        raise InvalidInputError(f"{base} is a {config.task} policy, not a {args.task} policy")
    settings = EnvSettings.from_dict(config.env)
    lambdas = {int(q): float(v) for q, v in config.lambdas.items()}
    pictures = load_pictures(args.data or DEFAULT_DATA[args.task], split="train", limit=args.limit)
    codec_factory, extractor_factory = X265CodecFactory(config.preset), RealExtractorFactory(config.map_config)
    codec, extractor = codec_factory(), extractor_factory()
    tables = build_tables(pictures, codec_factory=codec_factory, extractor_factory=extractor_factory,
                          qps=DEFAULT_TABLE_QPS, workers=1, codec=codec, extractor=extractor,
                          progress=False)  # fmt: skip
    tables = weigh_objects(TrainConfig.from_json(json.dumps(config.train)), tables)  # as the base trained
    env = SemanticQPEnv(tables, mode="live", pictures=pictures, codec=codec, extractor=extractor,
                        settings=settings, lambdas=lambdas)  # fmt: skip
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = DQN.load(base, device="cpu")
    q_net = model.policy.q_net
    optimiser = torch.optim.Adam(q_net.parameters(), lr=args.learning_rate)
    rng = np.random.default_rng(args.seed)
    if args.credit == "marginal" and 0 not in settings.offsets:
        raise InvalidInputError("marginal credit measures each action against offset 0, which the policy lacks")
    zero_action = settings.offsets.index(0) if 0 in settings.offsets else -1
    observations: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[float] = []
    episodes: list[tuple[int, int, float, float]] = []
    steps = 0
    start = time.perf_counter()
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        done, info = False, dict[str, Any]()
        episode_obs: list[np.ndarray] = []
        episode_actions: list[int] = []
        while not done:
            if rng.random() < args.epsilon:
                action = int(rng.integers(len(settings.offsets)))
            else:
                with torch.no_grad():
                    action = int(q_net(torch.as_tensor(obs[None])).argmax())
            episode_obs.append(obs)
            episode_actions.append(action)
            obs, _, done, _, info = env.step(action)
        live = np.asarray(info["live_ctu_rewards"], np.float32)
        steps += len(episode_actions)
        if args.credit == "spread":
            credited = list(zip(episode_obs, episode_actions, live.tolist(), strict=True))
        else:
            credited = _marginal_credit(env, info["offsets"], float(live.sum()), episode_obs, episode_actions,
                                        zero_action, args.credited, rng)  # fmt: skip
        for obs_i, action_i, reward_i in credited:
            observations.append(obs_i)
            actions.append(action_i)
            rewards.append(reward_i)
        episodes.append((int(info["picture"]), int(info["base_qp"]), float(live.sum()), float(info["fast_return"])))
        obs_t = torch.as_tensor(np.asarray(observations))
        act_t = torch.as_tensor(np.asarray(actions))
        rew_t = torch.as_tensor(np.asarray(rewards, np.float32))
        for _ in range(args.gradient_steps if rewards else 0):
            batch = torch.as_tensor(rng.integers(len(rewards), size=args.batch_size))
            predicted = q_net(obs_t[batch]).gather(1, act_t[batch, None]).squeeze(1)
            loss = torch.nn.functional.smooth_l1_loss(predicted, rew_t[batch])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch's own annotation
            torch.nn.utils.clip_grad_norm_(q_net.parameters(), 10.0)
            optimiser.step()
        if episode % 100 == 0:
            recent = np.asarray([e[2:] for e in episodes[-100:]])
            print(f"episode {episode}: {time.perf_counter() - start:.0f} s, mean return of the last 100: "
                  f"live {recent[:, 0].mean():+.2f}, fast {recent[:, 1].mean():+.2f}", flush=True)  # fmt: skip
    model.policy.q_net_target.load_state_dict(q_net.state_dict())
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "ckpt.zip"
    with atomic_output(checkpoint, suffix=".zip") as temporary:  # SB3 adds ".zip" to a path without it
        model.save(temporary)
    atomic_write(config_path(checkpoint), finetuned_config(config, args, len(pictures), steps).to_json())
    lines = ["picture,base_qp,live_return,fast_return"] + [",".join(map(str, e)) for e in episodes]
    atomic_write(out / "episodes.csv", "\n".join(lines) + "\n")
    return checkpoint


def finetuned_config(config: PolicyConfig, args: argparse.Namespace, pictures: int, steps: int) -> PolicyConfig:
    """The base policy's config with the fine-tuning recorded (what ``ckpt.json`` says of the new net).

    Args:
        config: The base policy's config.
        args: The fine-tuning's command line.
        pictures: Pictures it fine-tuned on.
        steps: Environment steps (CTU decisions) it took.
    """
    record = {
        "base": str(args.base), "source": args.data or DEFAULT_DATA[args.task], "split": "train",
        "pictures": pictures, "episodes": args.episodes, "steps": steps, "credit": args.credit,
        "credited": args.credited, "epsilon": args.epsilon, "learning_rate": args.learning_rate,
        "gradient_steps": args.gradient_steps, "batch_size": args.batch_size, "seed": args.seed,
    }  # fmt: skip
    return dataclasses.replace(
        config, timesteps=config.timesteps + steps, data={**config.data, "live_finetune": record}
    )


def _marginal_credit(
    env: SemanticQPEnv, offsets: np.ndarray, episode_return: float, observations: list[np.ndarray],
    actions: list[int], zero_action: int, credited: int, rng: np.random.Generator,
) -> list[tuple[np.ndarray, int, float]]:  # fmt: skip
    """Credit up to ``credited`` CTUs of an episode with their own effect on the live return.

    A CTU that took an action other than offset 0 is credited with the episode's live return minus
    that of the same map with this CTU alone at offset 0 (one more live encode each): its
    difference reward, which is 0 for offset 0 by definition (as in the fast mode, uniform coding
    scores 0), so as many CTUs that took offset 0 are added with reward 0 at no cost.
    """
    moved = [i for i, a in enumerate(actions) if a != zero_action]
    kept = [i for i, a in enumerate(actions) if a == zero_action]
    out: list[tuple[np.ndarray, int, float]] = []
    for i in rng.permutation(moved)[:credited]:
        alternative = offsets.copy()
        alternative.reshape(-1)[i] = 0
        without = float(env.live_rewards(alternative)[0].sum())
        out.append((observations[i], actions[i], episode_return - without))
    for i in rng.permutation(kept)[: len(out)]:
        out.append((observations[i], actions[i], 0.0))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="a trained DQN picture policy (ckpt.zip)")
    p.add_argument("output", help="folder for the fine-tuned policy")
    p.add_argument("--task", default="classification", help="the policy's task (checked)")
    p.add_argument("--data", help="training pictures (default: the task's)")
    p.add_argument("--limit", type=int, help="first N pictures of the train split")
    p.add_argument("--episodes", type=int, default=1500)
    p.add_argument("--epsilon", type=float, default=0.1, help="share of random actions")
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--gradient-steps", type=int, default=8, help="per episode")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--credit",
        choices=("spread", "marginal"),
        default="spread",
        help="spread: each CTU's live reward (the picture's loss spread by the map); marginal: "
        "the change in the picture's live return when the CTU alone is coded at offset 0",
    )
    p.add_argument("--credited", type=int, default=8, help="marginal: CTUs credited per episode")
    args = p.parse_args(argv)
    print(finetune(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

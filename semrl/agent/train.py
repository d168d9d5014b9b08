"""Train a per-CTU QP policy with Stable-Baselines3 (DQN or PPO) on the fast-mode environment.

Output folder: ``ckpt.zip`` (the SB3 model), ``ckpt.json`` (:class:`PolicyConfig`, checked on
loading), ``train_config.json`` (the request; a resume must match it), ``checkpoints/`` (periodic
saves a resume starts from), ``tb/`` (TensorBoard logs) and ``timing.json``. An ensemble
(``TrainConfig.ensemble``) holds one such run per member in ``members/seed<S>/``, and its
``ckpt.zip`` is their mean (:mod:`semrl.agent.ensemble`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envs.augment import augment_pictures
from envs.codecs import Codec
from envs.observation import OBS_NAMES
from envs.reward import RewardConfig, class_object_weights, task_to_mse_ratio
from envs.semantic_qp import EnvSettings, SemanticQPEnv
from envs.tables import (
    DEFAULT_TABLE_QPS,
    CtuTable,
    Picture,
    RealExtractorFactory,
    X265CodecFactory,
    build_tables,
    load_pictures,
    video_sources,
)
from semrl.agent.config import (
    DEFAULT_ANSWER_SEARCH,
    DEFAULT_REFINEMENT,
    DEVIATION,
    PolicyConfig,
    TrainConfig,
    config_path,
    option_name,
)
from semrl.agent.run import CHECKPOINT_NAME, ProgressCallback, run_provenance, save_model
from semrl.errors import InvalidInputError
from semrl.files import atomic_write, check_can_create
from semrl.semantics.extractors import SemanticExtractor

MEMBERS = "members"
"""Subfolder of an ensemble's run holding one ordinary run per member (``seed<S>``)."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: Path of ``ckpt.zip``.
        config: Path of ``ckpt.json``.
        pictures: Training pictures.
        timesteps: Steps the model has been trained in total (the video MDP: frames coded).
        seconds: Wall time by phase (``load``, ``tables``, ``train``, ``total``).
        members: Nets averaged into the policy (an ensemble's ``timesteps`` and ``seconds`` are
            summed over them).
    """

    checkpoint: Path
    config: Path
    pictures: int
    timesteps: int
    seconds: dict[str, float]
    members: int = 1


def _hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """SB3 keyword arguments; discount 0 because each CTU is a contextual bandit (see the env)."""
    net = list(config.net_arch)
    if config.algorithm == "ppo":
        return {
            "n_steps": 1024, "batch_size": 256, "n_epochs": 4, "gamma": 0.0, "gae_lambda": 1.0,
            "ent_coef": 0.01, "learning_rate": config.learning_rate,
            "policy_kwargs": {"net_arch": {"pi": net, "vf": net}},
        }  # fmt: skip
    return {
        "gamma": 0.0, "learning_rate": config.learning_rate, "buffer_size": 100_000, "learning_starts": 1000,
        "batch_size": 128, "train_freq": 4, "target_update_interval": 1000, "exploration_fraction": 0.3,
        "exploration_final_eps": 0.05, "policy_kwargs": {"net_arch": net},
    }  # fmt: skip


def _latest_checkpoint(output: Path) -> Path | None:
    """The saved model with the most steps: ``ckpt.zip`` or one of ``checkpoints/*.zip``."""
    candidates = sorted((output / "checkpoints").glob("ckpt_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    if (output / CHECKPOINT_NAME).is_file():
        return output / CHECKPOINT_NAME
    return candidates[-1] if candidates else None


def env_settings(config: TrainConfig, tables: Sequence[CtuTable]) -> EnvSettings:
    """The MDP settings of a training config on its tables (which scale the squared-error weight)."""
    base = RewardConfig(rate_weight=config.rate_weight, false_weight=config.false_weight, **config.fidelity_weights)
    reward = replace(base, mse_weight=config.mse_share * task_to_mse_ratio(tables, config.base_qps[0], base))
    return EnvSettings(base_qps=config.base_qps, qp_min=DEFAULT_TABLE_QPS[0], reward=reward)


def weigh_objects(config: TrainConfig, tables: Sequence[CtuTable]) -> list[CtuTable]:
    """The tables with the object term weighted as ``config.object_weighting`` says."""
    if config.object_weighting == "picture":
        return list(tables)
    references = [t.reference for t in tables]
    if any(r is None for r in references):
        raise InvalidInputError("--object-weighting class needs tables with the task net's objects; rebuild them")
    weights = class_object_weights([r for r in references if r is not None])
    return [t.with_object_weights(w) for t, w in zip(tables, weights, strict=True)]


def _trained_steps(output: Path) -> int:
    """The environment steps the run in ``output`` has saved: its latest checkpoint's, or its members' fewest."""
    latest = _latest_checkpoint(output)
    if latest is None:
        return min((_trained_steps(member) for member in (output / MEMBERS).glob("*")), default=0)
    try:
        with zipfile.ZipFile(latest) as saved:
            return int(json.loads(saved.read("data"))["num_timesteps"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise InvalidInputError(f"cannot resume from {latest}: not a readable Stable-Baselines3 model ({e})") from e


def _check_resume(output: Path, config: TrainConfig) -> None:
    saved_path = output / "train_config.json"
    if not saved_path.is_file():
        raise InvalidInputError(f"cannot resume: {saved_path} does not exist")
    saved = TrainConfig.from_json(saved_path.read_text())
    ours = dataclasses.replace(config, timesteps=saved.timesteps, workers=saved.workers)
    if saved != ours:
        diff = "; ".join(
            f"{option_name(f.name)} {getattr(saved, f.name)!r} then, {getattr(ours, f.name)!r} now"
            for f in dataclasses.fields(TrainConfig)
            if getattr(saved, f.name) != getattr(ours, f.name)
        )
        raise InvalidInputError(
            f"cannot resume {output}: the run was started with other settings ({diff}); "
            "pass them as they were, or train into another folder"
        )
    if config.timesteps < saved.timesteps:
        done = _trained_steps(output)
        raise InvalidInputError(
            f"cannot resume {output} with --timesteps {config.timesteps}: the run was started for "
            f"{saved.timesteps} steps and has trained {done}, and a resume trains only up to --timesteps; "
            f"pass --timesteps {saved.timesteps} to finish it, or more to train further"
        )


def train(
    config: TrainConfig,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
    pictures: Sequence[Picture] | None = None,
    codec_factory: Callable[[], Codec] | None = None,
    extractor_factory: Callable[[], SemanticExtractor] | None = None,
    cache_dir: Path | None = None,
    ray: str | None = None,
) -> TrainResult:
    """Build (or load) the fast-mode tables, train a policy and write the checkpoint and its config.

    Videos in ``config.data`` train the video policy (:func:`semrl.agent.video.train_video`) unless
    ``config.mdp`` is ``image`` (every ``video_stride``-th frame is then a picture).

    Args:
        config: The training request.
        output: Output folder.
        resume: Continue from the latest checkpoint in ``output`` up to ``config.timesteps``.
        progress: Show progress bars.
        pictures: Training pictures (default: loaded from ``config.data``).
        codec_factory: Builds the codec (default: the patched x265 at ``config.preset``).
        extractor_factory: Builds the semantic extractor (default: the real one of the task).
        cache_dir: Table cache folder (default ``<semrl cache>/env_tables``).
        ray: Build the tables as Ray tasks on this Ray address (:mod:`semrl.cluster`); pictures
            that fail there are left out with a warning.

    Raises:
        InvalidInputError: ``output`` is a file or nothing can be made there, it holds a run and
            ``resume`` is False, or a resume whose settings differ.
    """
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import set_random_seed

    check_can_create(output, "output")
    sources = video_sources(config.resolved_data) if config.mdp != "image" else []
    if config.mdp == "video" and not sources:
        raise InvalidInputError(f"the video MDP trains on videos; {config.resolved_data} names none")
    if config.algorithm == DEVIATION and not (sources and pictures is None):
        raise InvalidInputError("--algo deviation trains the video policy; give videos with --data, or use dqn or ppo")
    if sources and pictures is None:
        config.refuse_picture_options("videos")
        if resume or ray is not None:
            raise InvalidInputError("a video policy's run cannot --resume or use --ray yet; start a new run locally")
        from semrl.agent.video import train_video

        checkpoint, summary = train_video(config, output, sources=sources, progress=progress, cache_dir=cache_dir)
        return TrainResult(checkpoint, config_path(checkpoint), summary["frames"], summary["frames_coded"],
                           summary["seconds"])  # fmt: skip
    start = time.perf_counter()
    out = Path(output)
    seconds: dict[str, float] = {}
    if resume:
        _check_resume(out, config)
    elif _latest_checkpoint(out) is not None or (out / MEMBERS).is_dir():
        raise InvalidInputError(f"{out} already holds a training run; pass --resume or choose another folder")
    if pictures is None:  # before anything is written: bad data leaves no run folder behind
        pictures = load_pictures(config.resolved_data, split=config.split, limit=config.limit,
                                 video_stride=config.video_stride, hold_out=config.hold_out)  # fmt: skip
    if codec_factory is None:
        codec_factory = X265CodecFactory(config.preset, config.quantisation)
    if extractor_factory is None:
        from semrl.semantics.config import MapConfig

        map_config = MapConfig(task=config.task, method=config.method, weights=config.weights)
        extractor_factory = RealExtractorFactory(map_config.to_json())
    codec, extractor = codec_factory(), extractor_factory()  # damaged weights, too, leave no run folder behind
    if extractor.task != config.task:
        raise InvalidInputError(f"the extractor serves {extractor.task}, the run trains {config.task}")
    atomic_write(out / "train_config.json", config.to_json())
    if config.ensemble > 1:
        kwargs = {"progress": progress, "pictures": pictures, "codec_factory": codec_factory,
                  "extractor_factory": extractor_factory, "cache_dir": cache_dir, "ray": ray}  # fmt: skip
        return _train_ensemble(config, out, resume=resume, start=start,
                               load_seconds=time.perf_counter() - start, **kwargs)  # fmt: skip

    pictures = augment_pictures(pictures, config.augment)
    seconds["load"] = time.perf_counter() - start
    t0 = time.perf_counter()
    tables = build_tables(
        pictures, codec_factory=codec_factory, extractor_factory=extractor_factory, qps=DEFAULT_TABLE_QPS,
        workers=config.workers, cache_dir=cache_dir, progress=progress, codec=codec, extractor=extractor, ray=ray,
    )  # fmt: skip
    seconds["tables"] = time.perf_counter() - t0
    if len(tables) < len(pictures):
        kept = {t.digest for t in tables}
        pictures = [p for p in pictures if p.digest in kept]

    tables = weigh_objects(config, tables)
    settings = env_settings(config, tables)
    env = Monitor(SemanticQPEnv(tables, settings=settings))
    base_env: SemanticQPEnv = env.unwrapped  # type: ignore[assignment]
    set_random_seed(config.seed)
    # Networks this small run fastest on one thread; more threads only contend with the env.
    torch.set_num_threads(1)
    algo = PPO if config.algorithm == "ppo" else DQN
    latest = _latest_checkpoint(out) if resume else None
    tb = str(out / "tb")
    if latest is not None:
        model = algo.load(latest, env=env, tensorboard_log=tb, device="cpu")
    else:
        model = algo("MlpPolicy", env, seed=config.seed, tensorboard_log=tb, device="cpu", verbose=0,
                     **_hyperparameters(config))  # fmt: skip
    remaining = config.timesteps - int(model.num_timesteps)
    t0 = time.perf_counter()
    if remaining > 0:
        save_freq = max(config.timesteps // 10, 1000)
        callbacks = CallbackList([
            CheckpointCallback(save_freq, str(out / "checkpoints"), name_prefix="ckpt"),
            ProgressCallback(config.timesteps, int(model.num_timesteps), enabled=progress),
        ])  # fmt: skip
        model.learn(remaining, callback=callbacks, reset_num_timesteps=latest is None, tb_log_name=config.algorithm)
    seconds["train"] = time.perf_counter() - t0

    checkpoint = out / CHECKPOINT_NAME
    save_model(model, checkpoint)
    digest = hashlib.sha256("".join(p.digest for p in pictures).encode()).hexdigest()
    refinement = DEFAULT_REFINEMENT.get(config.task)
    answer = DEFAULT_ANSWER_SEARCH.get(config.task)
    lists = config.quantisation
    policy_config = PolicyConfig(
        task=config.task,
        map_config=extractor.config.to_json() if hasattr(extractor, "config") else extractor.fingerprint,
        env=settings.to_dict(),
        table_qps=DEFAULT_TABLE_QPS,
        lambdas={str(q): v for q, v in base_env.lambdas.items()},
        obs_names=OBS_NAMES,
        data={"source": config.resolved_data, "split": config.split, "pictures": len(pictures), "digest": digest},
        refinement=None if refinement is None else refinement.to_dict(),
        answer=None if answer is None else answer.to_dict(),
        scaling_lists=None if lists is None else lists.to_dict(),
        **run_provenance(config, model, extractor, codec),
    )
    atomic_write(config_path(checkpoint), policy_config.to_json())
    seconds["total"] = time.perf_counter() - start
    atomic_write(out / "timing.json", json.dumps(seconds, indent=1, sort_keys=True))
    return TrainResult(checkpoint, config_path(checkpoint), len(pictures), int(model.num_timesteps), seconds)


def _train_ensemble(
    config: TrainConfig, out: Path, *, resume: bool, start: float, load_seconds: float, **kwargs: Any
) -> TrainResult:
    """Train ``config.ensemble`` nets as ordinary runs in ``out/members`` and write their mean as one.

    Each member is a whole run of its own (a resume continues each where it stopped); they share
    the tables, so only the first may build them, and the pictures, read once before
    (``load_seconds``).
    """
    from semrl.agent.ensemble import fuse_checkpoints

    results = []
    for k in range(config.ensemble):
        member = replace(config, seed=config.seed + k, ensemble=1)
        folder = out / MEMBERS / f"seed{member.seed}"
        again = resume and _latest_checkpoint(folder) is not None
        results.append(train(member, folder, resume=again, **kwargs))
    checkpoint = fuse_checkpoints([r.checkpoint for r in results], out / CHECKPOINT_NAME)
    first = PolicyConfig.read(results[0].config)
    atomic_write(config_path(checkpoint), replace(first, train=json.loads(config.to_json())).to_json())
    seconds = {phase: sum(r.seconds[phase] for r in results) for phase in ("load", "tables", "train")}
    seconds["load"] += load_seconds
    seconds["total"] = time.perf_counter() - start
    atomic_write(out / "timing.json", json.dumps(seconds, indent=1, sort_keys=True))
    return TrainResult(checkpoint, config_path(checkpoint), results[0].pictures, sum(r.timesteps for r in results),
                       seconds, members=len(results))  # fmt: skip

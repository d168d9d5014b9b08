"""The video policy: train it on clips (:mod:`envs.video`) and run it as a :class:`semrl.policy.Policy`.

The policy decides the frame QP offset and its objects' boost, every ``decision_interval`` frames
from each IDR frame (the frames between keep the decision), over its settings' reference
coding (:meth:`envs.video.VideoSettings.cascade_offset`: the IDR frame's offset, then under low
delay by the frame's position since its IDR frame, under random access by its B-frame layer; and
the reference's ROI delta, :attr:`envs.video.VideoSettings.roi`), from the state
:class:`envs.video.VideoObserver` builds, one observer per clip, fresh at each IDR frame (kept in
:attr:`semrl.policy.PolicyInput.state`), from the frames, the task net's objects on them (the
caller's analysis: the benchmark's, or ``semrl encode``'s every ``--map-interval`` frames) and its
own decisions so far. It runs no net of its own, so its cost per frame is a small MLP at each
decision and the block map.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from envs.codecs import ClipCodec, X265ClipCodec
from envs.video import (
    VIDEO_OBS_DIM,
    VIDEO_OBS_NAMES,
    Detector,
    Segment,
    VideoObserver,
    VideoQPEnv,
    VideoSettings,
    YoloDetector,
    build_segments,
    frame_offsets_map,
)
from semrl.agent.config import DEVIATION, VIDEO_MDP, PolicyConfig, TrainConfig, config_path
from semrl.agent.deviation import Deviations, choose_margin, collect_deviations, fit_q_net
from semrl.agent.run import CHECKPOINT_NAME, ProgressCallback, run_provenance, save_model
from semrl.errors import InputNotFoundError, InvalidInputError, PolicyMismatchError
from semrl.files import atomic_write
from semrl.policy import PolicyInput

OBSERVER_KEY = "semrl.video-observer"
"""Where a clip's :class:`VideoObserver` lives in ``PolicyInput.state``."""
REGION_KEY = "semrl.video-region"
"""Where :class:`VideoCoding` keeps the last region it was given, and that region fitted to the frame."""


class VideoCoding:
    """Codes a clip as the video MDP does: its settings' reference coding plus a decision held per group.

    Subclasses say what the decision is (:meth:`act`); everything else (the observer, when to
    decide, the reference's frame offsets and ROI, the block map) is shared, so a learned policy and
    the reference coding alone run the very same path.

    Args:
        settings: The MDP's settings.
        task: The task it serves.
        fingerprint: Identifies it in caches and reports.
    """

    needs_regions = True
    needs_rgb = False  # the observer reads luma only
    runs_own_net = False
    frame_level = True

    def __init__(self, settings: VideoSettings, task: str, fingerprint: str) -> None:
        self.settings = settings
        self.offset_block = settings.block
        self.task = task
        self.fingerprint = fingerprint

    def act(self, obs: NDArray[np.float32]) -> int:
        """The action (:meth:`envs.video.VideoSettings.decode`) at a decision, from its observation."""
        raise NotImplementedError

    def decide(self, obs: NDArray[np.float32], base_qp: int) -> int:
        """The action at a decision of a frame coded around ``base_qp`` (default: :meth:`act`)."""
        return self.act(obs)

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Offsets on the ``settings.block`` grid for the next frame of a clip (call once per frame, in order)."""
        observer = inputs.state.get(OBSERVER_KEY)
        if observer is None or inputs.gop.position(inputs.frame_index) == 0:
            # Every IDR frame starts afresh, as every training episode does: nothing before it is referenced.
            observer = inputs.state[OBSERVER_KEY] = VideoObserver(self.settings)
        h, w = inputs.frame.shape[:2]
        region = None if inputs.region is None else _fitted(inputs.region, (h, w), inputs.state)
        picture = inputs.luma if inputs.luma is not None else inputs.frame
        base, s = int(inputs.base_qp), self.settings
        reference = s.cascade_offset(inputs.frame_index, inputs.gop)
        action = observer.action
        if action is None or s.decides_at(inputs.gop.position(inputs.frame_index)):
            action = observer.action = self.decide(observer.observe(picture, region, inputs.boxes, base), base)
        else:
            observer.carry(picture, region, inputs.boxes)
        frame_offset, boost = s.decode(action)
        frame_offset = observer.steady(frame_offset)
        observer.record(frame_offset, boost)
        coded_offset = frame_offset + reference
        # Unclipped: near QP 51 the cascade's levels would merge, and the rate controller keeps one model per level.
        return frame_offsets_map(region, (h, w), coded_offset, boost, base, s.dilation, s.block, roi=s.roi,
                                 touched=observer.touched, clip=False)  # fmt: skip


def _fitted(region: NDArray[np.bool_], shape: tuple[int, int], state: dict[str, Any]) -> NDArray[np.bool_]:
    """``region`` cut or padded to ``shape``: the same array for as long as the same region comes.

    ``semrl encode`` gives the frames between two analyses the same region, and the observer then
    keeps the blocks it touches instead of finding them again (:meth:`VideoObserver.carry`).
    """
    last = state.get(REGION_KEY)
    if last is not None and last[0] is region and last[1].shape == shape:
        return cast(NDArray[np.bool_], last[1])
    fitted = np.zeros(shape, bool)
    rh, rw = min(shape[0], region.shape[0]), min(shape[1], region.shape[1])
    fitted[:rh, :rw] = region[:rh, :rw]
    state[REGION_KEY] = (region, fitted)
    return fitted


class VideoPolicy(VideoCoding):
    """A trained video policy (see the module docstring).

    Args:
        model: The Stable-Baselines3 model.
        config: Its saved config (``mdp`` ``video``).
        digest: sha256 of the checkpoint file (part of the fingerprint).
    """

    def __init__(self, model: Any, config: PolicyConfig, digest: str) -> None:
        fingerprint = f"semrl-video:{config.task}:{config.algorithm}:{digest[:16]}"
        super().__init__(VideoSettings.from_dict(config.env), config.task, fingerprint)
        self.model = model
        self.config = config

    @property
    def trained_base_qps(self) -> tuple[int, int]:
        """The lowest and highest base QP of its training episodes."""
        return int(min(self.settings.base_qps)), int(max(self.settings.base_qps))

    def decide(self, obs: NDArray[np.float32], base_qp: int) -> int:
        """The net's action inside its training range of base QPs, the reference action outside it.

        Outside that range the net's decisions were never measured, and they are worse than what it
        was trained to improve on: trained at base QPs 22-51, the shipped net coarsened the objects at
        base QP 12 and kept 78 of the class-mean mAP50-95 where its reference keeps 90 (7 clips;
        ``benchmarks/results/video-policy-fallback`` measures the rule). The observer still sees every frame, so the
        state is whole when the base QP (under ``--bitrate``, chosen per frame) comes back in range.
        """
        lo, hi = self.trained_base_qps
        return self.act(obs) if lo <= base_qp <= hi else self.settings.reference_action

    @property
    def outside_training(self) -> str:
        """What it does at a base QP outside :attr:`trained_base_qps` (for the warning of ``semrl encode``)."""
        return "it codes with its reference coding there (as --policy video-reference)"

    def act(self, obs: NDArray[np.float32]) -> int:
        """Deterministic action of one observation, straight through the network (SB3's predict checks too much)."""
        import torch

        policy = self.model.policy
        with torch.no_grad():
            x = torch.from_numpy(obs[None])
            if hasattr(policy, "q_net"):
                return int(policy.q_net(x).argmax(dim=1)[0])
            return int(policy.get_distribution(x).get_actions(deterministic=True)[0])


class ReferenceVideoPolicy(VideoCoding):
    """The video MDP's reference coding alone: the action that adds nothing to it, at every decision.

    With the default settings this is ``cascade8_roi4`` of ``benchmarks/video_schedules.py`` under
    low delay (the 8-frame cascade, the IDR frame 3 QP finer, ROI D = 4 on the detector's objects)
    and, under random access, x265's B-frame layers with the same IDR offset and ROI. It is what
    every learned video policy is trained to improve on, shipped as ``video-reference`` (no
    learning, no checkpoint).

    Args:
        settings: The MDP's settings (default: today's, those of the shipped video policy).
    """

    def __init__(self, settings: VideoSettings | None = None) -> None:
        settings = settings if settings is not None else VideoSettings()
        digest = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True).encode()).hexdigest()
        super().__init__(settings, "detection", f"semrl-video-reference:{digest[:16]}")

    def act(self, obs: NDArray[np.float32]) -> int:
        """The reference action, whatever the observation."""
        return self.settings.reference_action


def load_video_policy(path: Path, config: PolicyConfig, device: str = "cpu") -> VideoPolicy:
    """Load a video checkpoint whose config has been read; checks the spaces.

    Raises:
        PolicyMismatchError: Unknown algorithm, a damaged file, or spaces that do not fit this semrl.
    """
    from semrl.agent.checkpoint import load_model

    model = load_model(path, config, device, to_act=True)
    settings = VideoSettings.from_dict(config.env)
    obs_shape = tuple(getattr(model.observation_space, "shape", ()) or ())
    n_actions = int(getattr(model.action_space, "n", -1))
    if obs_shape != (VIDEO_OBS_DIM,) or n_actions != settings.n_actions:
        raise PolicyMismatchError(
            f"{path}: model spaces obs {obs_shape}, actions {n_actions} do not fit the video env "
            f"(obs ({VIDEO_OBS_DIM},), actions {settings.n_actions})"
        )
    if tuple(config.obs_names) != VIDEO_OBS_NAMES:
        raise PolicyMismatchError(
            f"{path}: trained on observations {config.obs_names}, this semrl builds {VIDEO_OBS_NAMES}"
        )
    return VideoPolicy(model, config, hashlib.sha256(path.read_bytes()).hexdigest())


CLIP_MEMORY_SHARE = 0.5
"""The share of the memory free when training starts that the decoded training clips may take (the
rest is for x265, the nets and the segments' reference codings)."""


def load_clips(sources: Sequence[Path], max_frames: int | None) -> list[tuple[str, list[NDArray[np.uint8]]]]:
    """Decode training clips (even size, the first ``max_frames`` frames) as (name, RGB frames).

    Training holds every frame, so clips that would take more than :data:`CLIP_MEMORY_SHARE` of
    the free memory are refused as soon as they reach it, with the ``--max-frames`` that fits,
    instead of the machine running out of memory (ten minutes of 1080p take 112 GB as RGB).

    Raises:
        InputNotFoundError: A clip with no frames.
        InvalidInputError: The clips' frames do not fit in memory.
    """
    from semrl.media import open_source

    free = available_memory()
    budget = None if free is None else int(free * CLIP_MEMORY_SHARE)
    held = 0
    clips = []
    for path in sources:
        frames = []
        with open_source(path, crop_even=True, max_frames=max_frames) as source:
            for picture in source:
                frames.append(picture.to_rgb())
                held += frames[-1].nbytes
                if budget is not None and held > budget:
                    fit = budget // frames[-1].nbytes // len(sources)
                    raise InvalidInputError(
                        f"the training clips' frames take more than {budget / 2**30:.1f} GiB as RGB ({path.name} "
                        f"reached it after {len(frames)} frames), half of the memory free: train on fewer frames "
                        f"with --max-frames (about {fit} of each clip fit)"
                    )
        if not frames:
            raise InputNotFoundError(f"{path}: no frames")
        clips.append((path.name, frames))
    return clips


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux's ``MemAvailable``); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _hyperparameters(config: TrainConfig, settings: VideoSettings) -> dict[str, Any]:
    """SB3 keyword arguments for the video env: few, costly steps (each codes and scores the frames of a decision).

    Counted in decisions, set so that learning starts after the same frames, and the network takes
    as many gradient steps per frame coded, whatever the decision interval.
    """
    net = list(config.net_arch)
    episode = settings.decisions(settings.episode_frames)
    k = settings.decision_interval
    if config.algorithm == "ppo":
        return {
            "n_steps": max(4 * episode, 64), "batch_size": 64, "n_epochs": 10, "gamma": settings.gamma,
            "gae_lambda": 0.9, "ent_coef": 0.01, "learning_rate": config.learning_rate,
            "policy_kwargs": {"net_arch": {"pi": net, "vf": net}},
        }  # fmt: skip
    return {
        "gamma": settings.gamma, "learning_rate": config.learning_rate, "buffer_size": 50_000,
        "learning_starts": 2 * episode, "batch_size": 64, "train_freq": 1, "gradient_steps": 2 * k,
        "target_update_interval": max(250 // k, 1), "exploration_fraction": 0.5, "exploration_final_eps": 0.05,
        "policy_kwargs": {"net_arch": net},
    }  # fmt: skip


DEVIATIONS_NAME = "deviations.npz"
"""The measured deviations a ``deviation`` run keeps beside its checkpoint."""


def _clip_indices(segments: Sequence[Segment]) -> list[int]:
    """The clip index of each segment (segments are named ``clip#start``), in order of first appearance."""
    names = [s.name.rsplit("#", 1)[0] for s in segments]
    order = list(dict.fromkeys(names))
    return [order.index(n) for n in names]


def _rollouts(segments: int, settings: VideoSettings) -> int:
    """How many rollouts the deviations of ``segments`` segments take."""
    return segments * len(settings.base_qps) * settings.decisions(settings.episode_frames) * (settings.n_actions - 1)


def _collect(env: VideoQPEnv, segments: Sequence[Segment], progress: bool) -> Deviations:
    """All deviations of the env's segments, in this process."""
    from tqdm import tqdm

    with tqdm(total=_rollouts(len(segments), env.settings), desc="deviations", unit="rollout",
              disable=not progress) as bar:  # fmt: skip
        return collect_deviations(env, _clip_indices(segments), on_rollout=lambda: bar.update(1))


def _collect_share(config: TrainConfig, sources: Sequence[Path], settings: VideoSettings, cache_dir: Path | None,
                   share: int, count: int, done: Any = None) -> Deviations:  # fmt: skip
    """One worker's deviations: every ``count``-th segment from ``share`` (its own codec and detector).

    ``done``: a queue told of every rollout finished (the parent's progress bar).
    """
    import torch

    torch.set_num_threads(1)
    codec = X265ClipCodec(config.preset, qg_size=settings.block)
    detector = YoloDetector(config.weights or "yolov8n.pt")
    segments = build_segments(load_clips(sources, config.max_frames), codec, detector, settings, cache_dir=cache_dir)
    segments = segments[: config.limit] if config.limit is not None else segments
    env = VideoQPEnv(segments, codec, detector, settings)
    try:
        return collect_deviations(env, _clip_indices(segments), segments=range(share, len(segments), count),
                                  on_rollout=None if done is None else lambda: done.put(1))  # fmt: skip
    finally:
        env.close()


def _collect_in_workers(config: TrainConfig, sources: Sequence[Path], settings: VideoSettings,
                        cache_dir: Path | None, progress: bool, count: int, segments: int) -> Deviations:  # fmt: skip
    """All deviations, the ``segments`` segments shared among ``count`` processes (the tables are cached by then)."""
    import multiprocessing
    import queue
    from concurrent.futures import ProcessPoolExecutor, wait

    from tqdm import tqdm

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(count, mp_context=context) as pool:
        done = manager.Queue()
        futures = [pool.submit(_collect_share, config, sources, settings, cache_dir, i, count, done)
                   for i in range(count)]  # fmt: skip
        with tqdm(total=_rollouts(segments, settings), desc="deviations", unit="rollout", disable=not progress) as bar:
            running = True
            while running:
                running = bool(wait(futures, timeout=1.0).not_done)
                try:
                    while True:
                        bar.update(done.get_nowait())
                except queue.Empty:
                    pass
        parts = [f.result() for f in futures]
    return Deviations.concatenate(parts)


def fit_deviation_policy(model: Any, deviations: Deviations, settings: VideoSettings, seed: int) -> dict[str, Any]:
    """Fit a DQN's Q-network to the deviations, the margin chosen over clips left out (:mod:`semrl.agent.deviation`).

    Returns:
        The cross-validation's report (:func:`semrl.agent.deviation.choose_margin`) and the rollouts measured.
    """
    import copy

    reference = settings.reference_action
    margin, report = choose_margin(lambda: copy.deepcopy(model.q_net), deviations, reference, seed=seed)
    if margin is None:
        warnings.warn(
            "no departure from the reference coding paid on the training clips left out of the fit: the policy "
            "codes as --policy video-reference does (the run's timing.json has the cross-validation)",
            stacklevel=2,
        )
    fit_q_net(model.q_net, deviations, reference, margin=margin, seed=seed)
    model.q_net_target.load_state_dict(model.q_net.state_dict())
    return {"deviation": report, "rollouts": len(deviations),
            "frames_coded": len(deviations) * settings.episode_frames}  # fmt: skip


def train_video(
    config: TrainConfig,
    output: str | os.PathLike[str],
    *,
    sources: Sequence[Path],
    progress: bool = True,
    codec: ClipCodec | None = None,
    detector: Detector | None = None,
    clips: Sequence[tuple[str, Sequence[NDArray[np.uint8]]]] | None = None,
    settings: VideoSettings | None = None,
    cache_dir: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train a video policy on clips and write ``ckpt.zip`` and ``ckpt.json`` into ``output``.

    Args:
        config: The training request (``timesteps`` are frames coded; ``max_frames`` bounds each clip).
        output: Output folder (must not hold a run).
        sources: The training clips.
        progress: Show progress bars.
        codec: The clip codec (default the patched x265, low-delay P, ``config.preset``).
        detector: The task net (default the video benchmark's detector, ``config.weights``).
        clips: Decoded clips instead of ``sources`` (tests).
        settings: The MDP (default :class:`VideoSettings`, with ``config.rate_weight``).
        cache_dir: Segment table cache folder.

    Returns:
        The checkpoint's path and the run's summary (segments, frames, seconds by phase).
    """
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import set_random_seed

    start = time.perf_counter()
    out = Path(output)
    if (out / CHECKPOINT_NAME).exists():
        raise InvalidInputError(f"{out} already holds a training run; choose another folder")
    if config.task != "detection":
        raise InvalidInputError(f"the video policy serves detection, not {config.task}")
    settings = settings or VideoSettings(rate_weight=config.rate_weight)
    own_parts = clips is None and codec is None and detector is None  # workers can rebuild them from ``sources``
    if clips is None:  # before anything is written: a clip that cannot be read leaves no run folder behind
        clips = load_clips(sources, config.max_frames)
    codec = codec or X265ClipCodec(config.preset, qg_size=settings.block)
    detector = detector or YoloDetector(config.weights or "yolov8n.pt")  # damaged weights: no run folder either
    atomic_write(out / "train_config.json", config.to_json())
    seconds = {"load": time.perf_counter() - start}
    t0 = time.perf_counter()
    segments: list[Segment] = build_segments(clips, codec, detector, settings, cache_dir=cache_dir, progress=progress)
    if config.limit is not None:
        segments = segments[: config.limit]
    seconds["tables"] = time.perf_counter() - t0

    env = VideoQPEnv(segments, codec, detector, settings)
    monitored = Monitor(env)
    set_random_seed(config.seed)
    torch.set_num_threads(1)
    algo: Any = PPO if config.algorithm == "ppo" else DQN
    model = algo("MlpPolicy", monitored, seed=config.seed, tensorboard_log=str(out / "tb"), device="cpu", verbose=0,
                 **_hyperparameters(config, settings))  # fmt: skip
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if config.algorithm == DEVIATION:
        workers = min(config.workers, len(segments)) if own_parts and sources else 1
        deviations = (_collect_in_workers(config, sources, settings, cache_dir, progress, workers, len(segments))
                      if workers > 1 else _collect(env, segments, progress))  # fmt: skip
        seconds["rollouts"] = time.perf_counter() - t0
        deviations.save(out / DEVIATIONS_NAME)
        extra = fit_deviation_policy(model, deviations, settings, seed=config.seed)
    else:
        # ``timesteps`` counts frames coded; each step codes up to ``decision_interval`` of them.
        steps = max(config.timesteps // settings.decision_interval, 1)
        model.learn(steps, callback=ProgressCallback(steps, 0, enabled=progress), tb_log_name=config.algorithm)
    seconds["train"] = time.perf_counter() - t0
    env.close()

    checkpoint = out / CHECKPOINT_NAME
    save_model(model, checkpoint)
    digest = hashlib.sha256("".join(s.digest for s in segments).encode()).hexdigest()
    policy_config = PolicyConfig(
        task=config.task,
        map_config=json.dumps({"detector": detector.fingerprint}),
        env=settings.to_dict(),
        table_qps=settings.base_qps,
        lambdas={str(q): lam for q, (lam, _) in env.lambdas.items()},
        obs_names=VIDEO_OBS_NAMES,
        data={
            "source": [str(s) for s in sources] or [name for name, _ in clips],
            "segments": [s.name for s in segments],
            "digest": digest,
        },
        mdp=VIDEO_MDP,
        **{**run_provenance(config, model, detector, codec), "algorithm": algo.__name__.lower()},
    )
    atomic_write(config_path(checkpoint), policy_config.to_json())
    seconds["total"] = time.perf_counter() - start
    summary = {"segments": len(segments), "frames": len(segments) * settings.episode_frames, "seconds": seconds,
               "timesteps": int(model.num_timesteps), "frames_coded": env.frames_coded, **extra}  # fmt: skip
    atomic_write(out / "timing.json", json.dumps(summary, indent=1, sort_keys=True))
    return checkpoint, summary

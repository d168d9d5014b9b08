"""Configurations of training runs and of trained policies (frozen, JSON round-trip)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from envs.augment import check_augmentations
from envs.reward import RewardConfig
from semrl.agent.answer import AnswerSearch
from semrl.assets import portable
from semrl.codec import QP_MAX, QP_MIN, ScalingLists, check_preset
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.semantics import TASKS

MAX_SEED = 2**32 - 1
"""The largest seed NumPy's generators take (Stable-Baselines3 seeds them with ``seed``)."""

_OPTIONS = {"algorithm": "--algo", "base_qps": "--base-qp", "net_arch": "net_arch", "learning_rate": "learning_rate"}


def option_name(name: str) -> str:
    """The ``semrl train`` option that sets the :class:`TrainConfig` field ``name`` (else the field's name)."""
    return _OPTIONS.get(name, "--" + name.replace("_", "-"))


DEVIATION = "deviation"
"""The algorithm that fits one-step improvement over the video reference by rollout (:mod:`semrl.agent.deviation`)."""
ALGORITHMS = ("ppo", "dqn", DEVIATION)
MDPS = ("image", "video")
OBJECT_WEIGHTINGS = ("picture", "class")
"""How the object term weighs each object: every picture's objects alike, or as the class-mean mAP does."""
VIDEO_MDP = "video"
"""The environments a policy learns on: pictures (per-CTU QPs) or clips (frame QP and object boost)."""
DEFAULT_DATA = {"detection": "coco-det", "segmentation": "coco-seg", "classification": "imagenet-cls"}
POLICY_FORMAT = 1
"""Bumped when the meaning of a saved policy config changes."""


# The reward's own defaults: the semantic map's drop and the semantic-weighted pixel error.
_MAP_TERMS = {name: float(getattr(RewardConfig, name)) for name in ("semantic_weight", "pixel_weight", "object_weight")}
_OBJECT_TERMS = {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0}
DEFAULT_FIDELITY_WEIGHTS: dict[str, dict[str, float]] = {
    "detection": _MAP_TERMS,
    "segmentation": _OBJECT_TERMS,
    "classification": _OBJECT_TERMS,
}
"""The fidelity weights ``semrl train`` uses per task unless given.

Detection learns from the semantic map's drop and the semantic-weighted pixel error;
classification and segmentation from the object term alone (:func:`envs.reward.object_terms`:
for classification the reference class's probability drop, spread over the CTUs by Grad-CAM;
for segmentation each reference object's loss, graded by its box, spread over the CTUs the box
covers). For classification it ranks live encodes better (``benchmarks/signal_validation.py``:
0.49 against 0.30 on policy maps); for both, chosen by a rule fixed in advance on train pictures
held aside from training, it saves more there (``benchmarks/results/classification-reward``,
``benchmarks/results/segmentation-reward``). For detection the same terms did not beat the map
terms on val (``benchmarks/results/object_terms``). Every task keeps the background's price
(``mse_share``).
"""


@dataclass(frozen=True)
class TrainConfig:
    """What ``semrl train`` was asked to do (saved as ``train_config.json``; a resume must match it).

    Attributes:
        task: ``detection``, ``segmentation`` or ``classification``.
        data: Dataset name, yaml or folder, folder of images, or video; None: the task's default
            shared dataset.
        split: Dataset split to train on.
        limit: Use the first ``limit`` pictures.
        hold_out: Images: ``(start, stop)``, leave pictures ``start`` to ``stop - 1`` (of those
            ``limit`` keeps) out of training, to measure the policy on them; None: none.
        video_stride: Every n-th frame of a video becomes a picture.
        algorithm: ``dqn`` (default) or ``ppo``. With discount 0 each CTU is a contextual bandit and
            DQN regresses each action's expected reward; on the detection tables it reached about
            70 % of the per-CTU oracle's fast-mode return in 300k steps, PPO about 45 %.
            ``deviation`` (video policies only): one-step improvement over the video MDP's
            reference, fitted to every one-decision departure measured by rollout
            (:mod:`semrl.agent.deviation`; ``timesteps`` is then unused).
        timesteps: Environment steps (one per CTU).
        base_qps: Inclusive base QP range of episodes.
        rate_weight: Multiplier of the Lagrangian rate term (1: uniform coding's slope).
        pixel_weight: Weight of the semantic-weighted squared error in the fidelity term (None:
            the task's, :data:`DEFAULT_FIDELITY_WEIGHTS`; so are ``semantic_weight`` and
            ``object_weight``).
        mse_share: The background's price: the plain squared error enters the fidelity term with
            the weight that makes its growth under uniform coding, from the lowest base QP to 51
            over the training tables, this share of the task term's (0: background is free).
            Resolved per run, as the task terms' scales differ; the weight is saved with the policy.
        semantic_weight: Weight of the semantic map's drop in the fidelity term.
        object_weight: Weight of the task output's object-by-object loss (``dobj``,
            :mod:`envs.reward`).
        false_weight: Weight of the task output created by coding (``fobj``: false detections).
        object_weighting: How the object term weighs each object: ``picture`` (each picture's
            objects share a weight of 1) or ``class`` (as one missed object weighs in the
            class-mean mAP over the training pictures, :func:`envs.reward.class_object_weights`;
            detection and segmentation).
        seed: Random seed (environment, network initialisation, sampling).
        preset: x265 preset the tables are coded with (the benchmark's is medium).
        method: Semantic map method (None: the task's default).
        weights: Task net weights (None: the task's default).
        workers: Processes building the fast-mode tables.
        net_arch: Hidden layer sizes of the policy (and value) network.
        learning_rate: Optimiser step size.
        mdp: ``image`` (per-CTU QPs of pictures, :mod:`envs.semantic_qp`), ``video`` (each frame's
            QP and its objects' boost, frame by frame, :mod:`envs.video`), or None: ``video``
            when ``data`` names videos, else ``image``.
        max_frames: Video: read at most this many frames of each clip.
        augment: Picture policies: add to the training pictures a transformed copy of each for every
            transformation named (``flip``, ``shift``, ``scale``; :mod:`envs.augment`).
        ensemble: Picture policies, DQN: train this many nets, with seeds ``seed``, ``seed + 1``, ...
            on the same tables, and ship the mean of their Q-values as one net
            (:mod:`semrl.agent.ensemble`). 1 by default: on detection three nets averaged did
            no better than one (``benchmarks/results/detection-ensemble``).
        scaling_lists: Picture policies: the quantisation matrices (:class:`semrl.codec.ScalingLists`
            as a dict) the tables are coded with and the policy then codes with; ``{}`` or slope 0:
            flat. None: the task's default, :data:`DEFAULT_SCALING_LISTS` (resolved once, saved
            resolved).
    """

    task: str = "detection"
    data: str | None = None
    split: str = "train"
    limit: int | None = None
    hold_out: tuple[int, int] | None = None
    video_stride: int = 10
    algorithm: str = "dqn"
    timesteps: int = 300_000
    base_qps: tuple[int, int] = (22, 51)
    rate_weight: float = 1.0
    pixel_weight: float | None = None
    mse_share: float = 0.25
    semantic_weight: float | None = None
    object_weight: float | None = None
    false_weight: float = 0.0
    object_weighting: str = "picture"
    seed: int = 0
    preset: str = "medium"
    method: str | None = None
    weights: str | None = None
    workers: int = 2
    net_arch: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    mdp: str | None = None
    max_frames: int | None = None
    ensemble: int = 1
    augment: tuple[str, ...] = ()
    scaling_lists: dict[str, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment", check_augmentations(self.augment))
        if self.scaling_lists is None:
            default = DEFAULT_SCALING_LISTS.get(self.task)
            object.__setattr__(self, "scaling_lists", {} if default is None else default.to_dict())
        _ = self.quantisation  # checked here, not when the tables are half built
        check_preset(self.preset)
        if self.hold_out is not None:
            start, stop = self.hold_out
            if not 0 <= start < stop:
                raise InvalidInputError(f"--hold-out START:STOP needs 0 <= START < STOP, got {start}:{stop}")
        if self.ensemble < 1:
            raise InvalidInputError(f"--ensemble must be at least 1, got {self.ensemble}")
        if self.ensemble > 1 and self.algorithm != "dqn":
            raise InvalidInputError(
                f"--ensemble {self.ensemble} averages DQN picture policies; drop it for --algo {self.algorithm}"
            )
        if self.mdp is not None and self.mdp not in MDPS:
            raise InvalidInputError(f"unknown MDP {self.mdp!r}; expected one of {MDPS}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InvalidInputError(f"--max-frames must be positive, got {self.max_frames}")
        if self.video_stride < 1:
            raise InvalidInputError(f"--video-stride must be positive, got {self.video_stride}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidInputError(f"--seed must lie in 0..{MAX_SEED} (NumPy's seeds), got {self.seed}")
        if self.ensemble > 1 and self.seed + self.ensemble - 1 > MAX_SEED:
            raise InvalidInputError(
                f"--ensemble {self.ensemble} seeds its members {self.seed}, {self.seed + 1}, ...: "
                f"the last would pass {MAX_SEED}; pass a smaller --seed"
            )
        if self.task not in TASKS:
            raise InvalidInputError(f"unknown task {self.task!r}; expected one of {TASKS}")
        for name, value in DEFAULT_FIDELITY_WEIGHTS[self.task].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolved once, saved resolved
        if self.object_weighting not in OBJECT_WEIGHTINGS:
            raise InvalidInputError(
                f"unknown object weighting {self.object_weighting!r}; expected one of {OBJECT_WEIGHTINGS}"
            )
        if self.object_weighting == "class" and self.task == "classification":
            raise InvalidInputError(
                "--object-weighting class weighs objects with boxes in pictures (detection, segmentation); "
                "drop it for classification"
            )
        if self.mdp == VIDEO_MDP:
            self.refuse_picture_options("the video MDP")
        if self.algorithm not in ALGORITHMS:
            raise InvalidInputError(f"unknown algorithm {self.algorithm!r}; expected one of {ALGORITHMS}")
        if self.timesteps < 1:
            raise InvalidInputError(f"--timesteps must be at least 1, got {self.timesteps}")
        if self.workers < 1:
            raise InvalidInputError(f"--workers must be at least 1, got {self.workers}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise InvalidInputError(f"every hidden layer needs at least one unit, got {self.net_arch}")
        lo, hi = self.base_qps
        if not QP_MIN <= lo <= hi <= QP_MAX:
            raise InvalidInputError(f"--base-qp LOW-HIGH needs {QP_MIN} <= LOW <= HIGH <= {QP_MAX}, got {lo}-{hi}")
        if self.rate_weight <= 0:
            raise InvalidInputError(f"--rate-weight must be above 0, got {self.rate_weight}")
        if self.learning_rate <= 0:
            raise InvalidInputError(f"learning_rate must be above 0, got {self.learning_rate}")
        weights = {**self.fidelity_weights, "mse_share": self.mse_share, "false_weight": self.false_weight}
        for name, value in weights.items():
            if value < 0:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 0, got {value}")
        if sum(self.fidelity_weights.values()) == 0:
            raise InvalidInputError("the fidelity term needs a task part: semantic, object or pixel weight above 0")

    def refuse_picture_options(self, video: str) -> None:
        """Refuse the options only picture policies take, for a run that trains a video policy.

        Args:
            video: What makes the run a video run, for the message (``the video MDP``, ``videos``).

        Raises:
            InvalidInputError: ``ensemble``, ``object_weighting``, ``augment`` or ``hold_out`` is set, or
                ``scaling_lists`` other than the task's default.
        """
        if self.ensemble > 1:
            raise InvalidInputError(f"--ensemble {self.ensemble} averages picture policies; drop it for {video}")
        if self.object_weighting != "picture":
            raise InvalidInputError(f"--object-weighting class weighs objects in pictures; drop it for {video}")
        if self.augment:
            raise InvalidInputError(f"--augment adds transformed pictures; drop it for {video} (or pass --mdp image)")
        if self.hold_out is not None:
            raise InvalidInputError(f"--hold-out leaves pictures of a split out; drop it for {video}")
        if self.quantisation not in (None, DEFAULT_SCALING_LISTS.get(self.task)):  # the default is its pictures'
            raise InvalidInputError(
                f"--scaling-lists shapes the quantisation of picture policies; pass --scaling-lists 0 for {video}"
            )

    @property
    def fidelity_weights(self) -> dict[str, float]:
        """``semantic_weight``, ``pixel_weight`` and ``object_weight``, the task's defaults filled in."""
        return {name: float(getattr(self, name)) for name in DEFAULT_FIDELITY_WEIGHTS[self.task]}

    @property
    def quantisation(self) -> ScalingLists | None:
        """``scaling_lists`` parsed; None: flat quantisation.

        Raises:
            InvalidInputError: An unknown key or a value out of range.
        """
        return ScalingLists.from_config(self.scaling_lists)

    @property
    def resolved_data(self) -> str:
        """The data, with the task's default filled in."""
        return self.data or DEFAULT_DATA[self.task]

    def to_json(self) -> str:
        """Serialise (stable key order)."""
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @staticmethod
    def from_json(text: str) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        d: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(d) - known
        if unknown:
            raise InvalidInputError(f"unknown train config keys {sorted(unknown)}")
        d["base_qps"] = tuple(d["base_qps"])
        d["net_arch"] = tuple(d["net_arch"])
        d["augment"] = tuple(d.get("augment", ()))
        d["hold_out"] = None if d.get("hold_out") is None else tuple(d["hold_out"])
        return TrainConfig(**d)


@dataclass(frozen=True)
class BlockRefinement:
    """The second level of a picture policy's decision: from each CTU's QP to its 16x16 blocks.

    The agent picks one QP per 64x64 CTU (its MDP, fast-mode tables and observations are per
    CTU). Most CTUs that touch an object are mostly background (on the coco-det val labels, boxes
    grown by 8 px touch 65 % of 64x64 blocks but 56 % of 16x16 blocks), and the 16x16 greedy
    oracle saves 12 points of BD-rate more than the per-CTU one
    (``benchmarks/results/oracle_search``). So inside every CTU, the 16x16 blocks that no object
    of the policy's own semantic map touches (its boxes grown by ``dilation`` pixels) are coded
    ``delta`` QP coarser than the CTU; the blocks on objects keep the CTU's QP. The encoder is then
    opened with 16x16 quantisation groups; the signalling of the extra delta QPs is in the bits.

    ``delta`` and ``dilation`` were chosen on 32 pictures of the train split (not val):
    ``benchmarks/results/refinement``. There ``min_base_qp`` 27 (no deltas at base QP 22) kept
    the BD-rate (-37.9 against -38.3 % vs A1) and the bits at 95 % accuracy (-37.2 % both) and
    raised the top of the curve (mAP50-95 57.4 against 56.9 at QP 22, A1 56.4): the finest
    operating point is where users ask for the detector's full accuracy.

    Attributes:
        delta: QP steps added to the background blocks of each CTU.
        dilation: Pixels the objects' boxes are grown by before the blocks they touch are found.
        object_delta: QP steps taken off the blocks on objects (0: they keep the CTU's QP).
        min_base_qp: Base QPs below it keep one QP per CTU (no delta either way), so the finest
            operating points, whose accuracy is the top of the curve, spend as the CTU decided.
    """

    delta: int = 4
    dilation: int = 8
    object_delta: int = 0
    min_base_qp: int = 0

    def __post_init__(self) -> None:
        span = QP_MAX - QP_MIN
        if (
            not (0 <= self.delta <= span and 0 <= self.object_delta <= span)
            or self.dilation < 0
            or not (0 <= self.min_base_qp <= QP_MAX)
        ):
            raise InvalidInputError(
                f"block refinement needs delta and object_delta in 0..{span}, dilation >= 0 and min_base_qp in "
                f"0..{QP_MAX}, got delta {self.delta}, object_delta {self.object_delta}, dilation {self.dilation}, "
                f"min_base_qp {self.min_base_qp}"
            )

    @property
    def tag(self) -> str:
        """Its values, for policy fingerprints."""
        tail = f":{self.object_delta}" if self.object_delta else ""
        tail += f":from{self.min_base_qp}" if self.min_base_qp else ""
        return f"refine={self.delta}:{self.dilation}{tail}"

    def deltas_at(self, base_qp: int) -> tuple[int, int]:
        """(background delta, object delta) at a base QP: (0, 0) below ``min_base_qp``."""
        return (self.delta, self.object_delta) if base_qp >= self.min_base_qp else (0, 0)

    def to_dict(self) -> dict[str, int]:
        """JSON-ready dict."""
        return asdict(self)


DEFAULT_REFINEMENT: dict[str, BlockRefinement] = {"detection": BlockRefinement(min_base_qp=27)}
"""The refinement ``semrl train`` writes into a picture policy's config, per task (none: per CTU only)."""

DEFAULT_ANSWER_SEARCH: dict[str, AnswerSearch] = {
    "classification": AnswerSearch(),
    "detection": AnswerSearch(step=3, max_trials=3, trade=0.1, finer=2, roi=(4, 8, 12)),
    "segmentation": AnswerSearch(step=3, max_trials=3, trade=0.1, finer=2, background=True),
}
"""The answer search (:mod:`semrl.agent.answer`) ``semrl train`` writes into a picture policy's config, per task.

Segmentation's background stage (after the whole map's trade, the blocks no object touches traded
on their own) was chosen on coco-seg train 0-49 and adopted by a rule judged on val
(``benchmarks/results/segmentation-trade-background``); detection's was refused by its own, on the trade
before its ROI maps and again on the union trade (``benchmarks/results/detection-trade-roi-background``).
Detection's three ROI maps, traded beside segmentation's learned map, won on val and then lost on
train 50-99 in the confirmation run, so segmentation does not use them
(``benchmarks/results/segmentation-trade-roi-background``).
"""

DEFAULT_SCALING_LISTS: dict[str, ScalingLists] = {"segmentation": ScalingLists(5.0)}
"""The quantisation matrices a picture policy's tables are coded with and ``semrl train`` writes into its config, per
task (none: flat). Segmentation's were chosen on coco-seg train 0-49 and adopted by a rule judged on val against the
flat policy shipped before; a flat retrain, run after as a control, did about as well on the class mean
(``benchmarks/results/scaling-lists-trained``)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Everything a trained policy depends on, saved beside ``ckpt.zip`` as ``ckpt.json``.

    Attributes:
        task: The task the policy serves.
        map_config: ``MapConfig`` JSON of the semantic maps it observes.
        env: ``EnvSettings.to_dict()``: QP offsets (actions), base QP range, reward weights.
        table_qps: QPs of the fast-mode tables.
        lambdas: Per base QP, the Lagrange multiplier used in the reward (JSON keys are strings).
        obs_names: Meaning of each observation element.
        algorithm: ``ppo`` or ``dqn``.
        timesteps: Environment steps trained (the video MDP: decisions, each holding for the
            ``env`` decision interval's frames, where ``train``'s ``timesteps`` counts frames coded).
        train: The :class:`TrainConfig` as a dict.
        x265_version: x265 version of the tables' encoder.
        x265_patch_hash: Hash of the patch series it was built with.
        preset: x265 preset of the tables.
        weights: Task net weights file name.
        weights_sha256: Their sha256.
        data: Training data and its picture count and digest.
        extractor_fingerprint: Fingerprint of the semantic extractor.
        codec_fingerprint: Fingerprint of the codec.
        versions: semrl, Stable-Baselines3, torch and gymnasium versions.
        format: :data:`POLICY_FORMAT`.
        mdp: The environment it was trained on (:data:`MDPS`); ``env`` and ``obs_names`` are that
            environment's.
        refinement: :class:`BlockRefinement` as a dict (a picture policy then decides per 16x16
            block); None: one QP per CTU.
        answer: :class:`semrl.agent.answer.AnswerSearch` as a dict (a classification or detection
            policy then codes each picture as coarse as keeps its net's answer); None: the map as
            decided.
        scaling_lists: :class:`semrl.codec.ScalingLists` as a dict: the quantisation matrices every
            coding of the policy uses; None: flat.
    """

    task: str
    map_config: str
    env: dict[str, Any]
    table_qps: tuple[int, ...]
    lambdas: dict[str, float]
    obs_names: tuple[str, ...]
    algorithm: str
    timesteps: int
    train: dict[str, Any]
    x265_version: str
    x265_patch_hash: str
    preset: str
    weights: str
    weights_sha256: str
    data: dict[str, Any]
    extractor_fingerprint: str
    codec_fingerprint: str
    versions: dict[str, str] = field(default_factory=dict)
    format: int = POLICY_FORMAT
    mdp: str = "image"
    refinement: dict[str, int] | None = None
    answer: dict[str, Any] | None = None
    scaling_lists: dict[str, float] | None = None

    @property
    def refinement_stage(self) -> BlockRefinement | None:
        """``refinement`` parsed (its keys and ranges checked); None: one QP per CTU."""
        return None if self.refinement is None else BlockRefinement(**self.refinement)

    @property
    def answer_stage(self) -> AnswerSearch | None:
        """``answer`` parsed (its keys and ranges checked); None: the map as decided."""
        return None if self.answer is None else AnswerSearch.from_dict(self.answer)

    @property
    def quantisation(self) -> ScalingLists | None:
        """``scaling_lists`` parsed (its keys and ranges checked); None (or slope 0): flat quantisation."""
        return ScalingLists.from_config(self.scaling_lists)

    @property
    def stage_tags(self) -> str:
        """What fingerprints add for the stages after the map and for its quantisation, each when set.

        ``:<refinement tag>:<answer tag>:<scaling-lists tag>``.
        """
        stages = (self.refinement_stage, self.answer_stage, self.quantisation)
        return "".join(f":{stage.tag}" for stage in stages if stage is not None)

    def to_json(self) -> str:
        """Serialise (stable key order).

        Paths under the assets folder (the training data's) are written as ``$SEMRL_ASSETS/...``,
        since the config ships with a policy; :func:`semrl.assets.local_path` reads one back.
        """
        return portable(json.dumps(asdict(self), sort_keys=True, indent=1))

    @staticmethod
    def from_json(text: str) -> PolicyConfig:
        """Inverse of :meth:`to_json`.

        Raises:
            InvalidInputError: Malformed JSON or missing or unknown keys.
        """
        try:
            d: dict[str, Any] = json.loads(text)
            d["table_qps"] = tuple(int(q) for q in d["table_qps"])
            d["obs_names"] = tuple(d["obs_names"])
            config = PolicyConfig(**d)
            _ = config.stage_tags  # parses the stages: their keys and ranges
            return config
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInputError(f"malformed policy config: {e}") from e

    @staticmethod
    def read(path: Path) -> PolicyConfig:
        """Read a config file.

        Raises:
            InputNotFoundError: No such file.
        """
        if not path.is_file():
            raise InputNotFoundError(f"policy config not found: {path} (it is written beside the checkpoint)")
        return PolicyConfig.from_json(path.read_text())


def config_path(checkpoint: Path) -> Path:
    """Where the config of a checkpoint lives: ``<stem>.json`` beside it."""
    return checkpoint.with_suffix(".json")

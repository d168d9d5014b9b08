"""Load a trained policy (``ckpt.zip`` + ``ckpt.json``) as a QP-offset policy for encode and benchmarks.

The policy sees only the frame and the base QP, as at training: it computes the task's semantic
map of the frame with the same extractor, builds the observations with the environment's own
builder (:class:`envs.observation.ObservationBuilder`) and picks each CTU's offset in raster order
(deterministic actions). A frame smaller than the trained network input
is not upscaled: the net runs at the frame's own size (rounded up to its stride), which halves the
cost of a 480x360 video frame's map and changes the map little (the training pictures, COCO and
ImageNet, are mostly 640 pixels or less on their long side).

A policy whose config has a :class:`~semrl.agent.config.BlockRefinement` then refines its CTU
offsets per 16x16 block: the blocks of each CTU that none of its map's objects touches are coded
coarser than the CTU (the reasons are in that class's docstring). A picture policy whose config
has an :class:`~semrl.agent.answer.AnswerSearch` then shifts its whole map, coding the picture on
trial (:mod:`semrl.agent.answer`): a classifier's as coarse as keeps its top-1 class, a detector's
or segmenter's (a ``trade``) to the trial whose finds score best against the net's objects on the
source for their bits. It does so when the caller says how it
codes the picture (``PolicyInput.coding``: a picture coded on its own at constant QP); without
that (the environment, ``semrl maps``, a clip's P-frames) the map is returned as decided.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.observation import OBS_DIM, OBS_NAMES, ObservationBuilder, static_grids, static_observations
from envs.semantic_qp import EnvSettings
from semrl.agent.answer import (
    ANSWERED_TASKS,
    OBJECT_MARGIN,
    ROI_DILATION,
    TRADED_TASKS,
    Answer,
    Objects,
    keep_answer,
    object_score,
    same_objects,
    trade_answer,
    trial_coder,
)
from semrl.agent.config import VIDEO_MDP, PolicyConfig, config_path
from semrl.codec import BLOCK_SIZE, CTU_SIZE, QP_MAX, ctu_grid, ctu_to_blocks
from semrl.errors import InputNotFoundError, InvalidInputError, PolicyMismatchError
from semrl.policy import PolicyInput, RoiPolicy, roi_blocks
from semrl.semantics import TASKS
from semrl.semantics.extractors import SemanticExtractor
from semrl.semantics.regions import box_region
from semrl.semantics.yolo import own_input_size

RECENT_FRAMES = 16  # frames whose semantic features are kept between calls

SHIPPED = Path(__file__).resolve().parents[1] / "policies"
"""Folder of the policies shipped with semrl: ``<task>.zip`` and ``<task>.json``."""


VIDEO_POLICY = "video"
"""Name of the shipped video policy (detection, frame by frame, :mod:`semrl.agent.video`)."""


def shipped_policy(task: str) -> Path:
    """Path of the shipped policy of a task, or of the video policy (``video``).

    Raises:
        InvalidInputError: Unknown task.
        InputNotFoundError: The package has no policy for it.
    """
    if task not in (*TASKS, VIDEO_POLICY):
        raise InvalidInputError(f"no shipped policy for {task!r}; shipped: {(*TASKS, VIDEO_POLICY)}")
    path = SHIPPED / f"{task}.zip"
    if not path.is_file():
        raise InputNotFoundError(f"shipped policy missing: {path}")
    return path


class TrainedPolicy:
    """A trained SB3 model as a :class:`semrl.policy.Policy` (it computes its own semantic maps).

    Args:
        model: The Stable-Baselines3 model.
        config: Its saved config.
        extractor: The semantic extractor the policy observes (the one it was trained with).
        digest: sha256 of the checkpoint file (part of the fingerprint).

    Its ``offsets_identity`` (:func:`semrl.policy.offsets_identity`) names the checkpoint, its whole
    config and its maps' extractor, so the benchmark can cache its maps.
    """

    needs_regions = False
    runs_own_net = True

    def __init__(self, model: Any, config: PolicyConfig, extractor: SemanticExtractor, digest: str) -> None:
        self.model = model
        self.config = config
        self.extractor = extractor
        self.settings = EnvSettings.from_dict(config.env)
        self.offsets = np.asarray(self.settings.offsets, np.int64)
        self._scale = float(np.abs(self.offsets).max()) or 1.0
        self.refinement = config.refinement_stage
        if self.refinement is not None and config.task == "classification":
            raise InvalidInputError("a classification policy cannot refine per block: its maps hold no objects")
        self.answer = config.answer_stage
        self.scaling_lists = config.quantisation
        if self.answer is not None and self.answer.trade is None and config.task not in ANSWERED_TASKS:
            raise InvalidInputError(
                f"keeping the net's answer is for {' and '.join(ANSWERED_TASKS)} policies, this one serves "
                f"{config.task}"
            )
        if self.answer is not None and self.answer.trade is not None and config.task not in TRADED_TASKS:
            raise InvalidInputError(
                f"the answer search's trade scores the net's objects ({' and '.join(TRADED_TASKS)} policies); this "
                f"policy serves {config.task}"
            )
        if self.answer is not None and self.answer.background and config.task == "classification":
            raise InvalidInputError(
                "a classification policy cannot shift the background alone: its maps hold no objects"
            )
        self._recent: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}
        self._sized: dict[int, SemanticExtractor] = {}
        self.fingerprint = f"semrl-agent:{config.task}:{config.algorithm}:{digest[:16]}{config.stage_tags}"
        # The model's file, its whole config and the maps it observes: all its offsets depend on.
        config_digest = hashlib.sha256(config.to_json().encode()).hexdigest()[:16]
        self.offsets_identity = f"{self.fingerprint}:config={config_digest}:maps={extractor.fingerprint}"

    @property
    def offset_block(self) -> int:
        """16 when the CTU offsets are refined per 16x16 block, else 64."""
        return CTU_SIZE if self.refinement is None else BLOCK_SIZE

    @property
    def trained_base_qps(self) -> tuple[int, int]:
        """The lowest and highest base QP of its training episodes."""
        lo, hi = self.settings.base_qps
        return int(lo), int(hi)

    @property
    def task(self) -> str:
        """The task the policy serves."""
        return self.config.task

    def _analyse(self, frame: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Static CTU features and object boxes of a frame (the last few kept: a benchmark asks at every base QP)."""
        key = hashlib.sha256(frame.tobytes() + str(frame.shape).encode()).hexdigest()
        found = self._recent.get(key)
        if found is None:
            semantic = self._extractor_for(frame).extract([frame], color="rgb")[0]
            boxes = np.zeros((0, 4), np.float32) if semantic.output is None else semantic.output.boxes
            found = static_grids(frame, semantic.values), boxes
            if len(self._recent) >= RECENT_FRAMES:
                self._recent.pop(next(iter(self._recent)))
            self._recent[key] = found
        return found

    def _extractor_for(self, frame: NDArray[np.uint8]) -> SemanticExtractor:
        """The extractor at the frame's own scale: a smaller frame than the trained input is not upscaled."""
        resize = getattr(self.extractor, "with_input_size", None)
        trained = getattr(getattr(self.extractor, "config", None), "imgsz", None)
        if resize is None or trained is None:
            return self.extractor
        size = own_input_size(frame.shape, int(trained))
        if size not in self._sized:
            self._sized[size] = resize(size)
        extractor: SemanticExtractor = self._sized[size]
        return extractor

    def _act(self, obs: NDArray[np.float32]) -> int:
        """Deterministic action of one observation.

        Straight through the network: SB3's ``predict`` checks and converts its input on every
        call, which costs three times the forward pass.
        """
        import torch

        x = torch.from_numpy(obs)
        policy = self.model.policy
        if hasattr(policy, "q_net"):
            return int(policy.q_net(x).argmax(dim=1)[0])
        return int(policy.get_distribution(x).get_actions(deterministic=True)[0])

    def offsets_for(self, frame: NDArray[np.uint8], base_qp: int) -> NDArray[np.int32]:
        """Per-CTU QP offsets for an RGB frame at a base QP (clipped so QPs stay in qp_min..51)."""
        return self._ctu_offsets(self._analyse(frame)[0], base_qp)

    def _ctu_offsets(self, grids: NDArray[np.float32], base_qp: int) -> NDArray[np.int32]:
        import torch

        rows, cols = grids.shape[1:]
        n = rows * cols
        builder = ObservationBuilder(static_observations(grids, float(base_qp)), cols, base_qp, self._scale)
        chosen = np.zeros(n, np.int64)
        with torch.no_grad():
            for i in range(n):
                a = self._act(builder.observe(i)[None])
                chosen[i] = a
                builder.record(i, float(self.offsets[a]))
        qps = np.clip(base_qp + self.offsets[chosen], self.settings.qp_min, QP_MAX)
        return (qps - base_qp).reshape(rows, cols).astype(np.int32)

    def refine(
        self,
        frame_shape: tuple[int, ...],
        ctu_offsets: NDArray[np.int32],
        boxes: NDArray[np.float32],
        base_qp: int,
    ) -> NDArray[np.int32]:
        """Offsets per 16x16 block: each CTU's, plus ``refinement.delta`` on the blocks no object touches.

        The blocks on objects (``boxes``, xyxy pixels, grown by ``refinement.dilation``) get the
        CTU's offset minus ``refinement.object_delta``; below ``refinement.min_base_qp`` every
        block keeps its CTU's offset.
        """
        r = self.refinement
        if r is None:
            raise InvalidInputError(f"policy {self.fingerprint} has no block refinement in its config")
        h, w = frame_shape[:2]
        grid = ctu_grid(w, h, BLOCK_SIZE)
        objects = roi_blocks(box_region(boxes, (h, w)), grid, r.dilation, BLOCK_SIZE)
        fine = ctu_to_blocks(ctu_offsets, grid)
        delta, object_delta = r.deltas_at(base_qp)
        refined: NDArray[np.int32] = np.where(objects, fine - object_delta, fine + delta).astype(np.int32)
        return refined

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Offsets for ``inputs.frame`` at ``inputs.base_qp``: per CTU, or per 16x16 block when refined.

        With an answer search and a caller that says how it codes the picture, the map is then
        shifted as coarse as keeps the task net's answer (:func:`semrl.agent.answer.keep_answer`).
        """
        grids, boxes = self._analyse(inputs.frame)
        offsets = self._ctu_offsets(grids, int(inputs.base_qp))
        if offsets.shape != tuple(inputs.ctu_shape):
            raise InvalidInputError(
                f"frame {inputs.frame.shape} gives a CTU grid {offsets.shape}, expected {inputs.ctu_shape}"
            )
        if self.refinement is not None:
            offsets = self.refine(inputs.frame.shape, offsets, boxes, int(inputs.base_qp))
        code = None if self.answer is None else trial_coder(inputs)
        if self.answer is None or code is None:
            return offsets
        base = int(inputs.base_qp)
        where = None
        region = box_region(boxes, inputs.frame.shape[:2]) if self.answer.background or self.answer.roi else None
        if self.answer.background:
            where = ~roi_blocks(region, offsets.shape, OBJECT_MARGIN, self.offset_block)
        if self.answer.trade is not None:
            assert inputs.coding is not None  # trial_coder gave a coder
            h, w = inputs.coding.shape
            source = inputs.frame[:h, :w]
            score = object_score(self._net(), source, self.task == "segmentation", self.answer.target_conf)
            around = dataclasses.replace(inputs, region=region) if self.answer.roi else inputs
            roi = {d: RoiPolicy(d, ROI_DILATION, self.offset_block)(around) for d in self.answer.roi}
            return _reported(trade_answer(self.answer, offsets, base, code, score, where, roi), inputs)
        if self.task == "classification":
            return _reported(keep_answer(self.answer, offsets, base, code, self._top1), inputs)
        iou = self.answer.iou

        def same(a: Objects, b: Objects) -> bool:
            return same_objects(a, b, iou)

        return _reported(keep_answer(self.answer, offsets, base, code, self._objects, same, where), inputs)

    def _net(self) -> Any:
        """The task net of the policy's maps (the answer search reads the trial codings with it)."""
        net = getattr(self.extractor, "net", None)
        if net is None or getattr(net, "task", None) != self.task:
            raise InvalidInputError(f"policy {self.fingerprint}: the answer search needs the maps' {self.task} net")
        return net

    def _top1(self, picture: NDArray[np.uint8]) -> int:
        """The classifier's top-1 class of an RGB picture, as the benchmark's task net scores it."""
        from semrl.fidelity.classification import top1_classes

        return int(top1_classes(self._net().classify([picture], color="rgb"))[0])

    def _objects(self, picture: NDArray[np.uint8]) -> Objects:
        """The detector's objects on an RGB picture (confidence at least ``REGION_CONF``), at its 640 px input."""
        from semrl.semantics.regions import task_regions

        found = task_regions(self._net(), [picture], color="rgb")[0]
        return found.boxes, found.cls


def _reported(answer: Answer, inputs: PolicyInput) -> NDArray[np.int32]:
    """The answer search's offsets, its kept trial written in the frame's report."""
    inputs.report["kept"] = f"{answer.kept.describe()} of {len(answer.trials)} trials"
    return answer.offsets


def _check_spaces(model: Any, config: PolicyConfig, path: Path) -> None:
    obs_shape = tuple(getattr(model.observation_space, "shape", ()) or ())
    n_actions = int(getattr(model.action_space, "n", -1))
    expected_actions = len(config.env["offsets"])
    if obs_shape != (OBS_DIM,) or n_actions != expected_actions:
        raise PolicyMismatchError(
            f"{path}: model spaces obs {obs_shape}, actions {n_actions} do not fit the env "
            f"(obs ({OBS_DIM},), actions {expected_actions})"
        )
    if tuple(config.obs_names) != OBS_NAMES:
        raise PolicyMismatchError(f"{path}: trained on observations {config.obs_names}, this semrl builds {OBS_NAMES}")


def check_build(config: PolicyConfig, path: Path, strict: bool) -> None:
    """Refuse (or with ``strict`` False, warn about) a policy trained with another x265 build."""
    if config.x265_version.startswith("none"):
        return
    from semrl.codec import load_library

    build = load_library().build
    if build.patch_hash != config.x265_patch_hash or build.version != config.x265_version:
        message = (
            f"{path}: trained on x265 {config.x265_version} (patch {config.x265_patch_hash}), "
            f"this is x265 {build.version} (patch {build.patch_hash})"
        )
        if strict:
            raise PolicyMismatchError(message + "; pass strict=False to use it anyway")
        warnings.warn(message, stacklevel=3)


class _NoOptimizer:
    """Stands in for the optimizer of a model loaded to act, which never learns.

    Stable-Baselines3 builds a policy's optimizer whenever it builds the policy, and the first
    optimizer of a process imports ``torch._dynamo`` (torch's optimizers disable it lazily): 1.3 s
    of `semrl encode`'s start-up on this 2-core machine, for an object the encode never uses. The
    checkpoint's optimizer state is read and dropped.
    """

    def __init__(self, params: Any, **kwargs: Any) -> None:
        del params, kwargs

    def state_dict(self) -> dict[str, Any]:
        raise PolicyMismatchError("a model loaded to act (load_model(..., to_act=True)) cannot be saved")

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        del state, strict

    def zero_grad(self, set_to_none: bool = True) -> None:
        raise PolicyMismatchError("a model loaded to act (load_model(..., to_act=True)) cannot learn")


def load_model(path: Path, config: PolicyConfig, device: str, *, to_act: bool = False) -> Any:
    """The Stable-Baselines3 model of a checkpoint whose config has been read.

    Args:
        path: The checkpoint.
        config: Its config.
        device: Torch device.
        to_act: Load it only to pick actions (``semrl encode``, benchmarks): its policy gets no
            optimizer (:class:`_NoOptimizer`), so such a model cannot learn or be saved.

    Raises:
        PolicyMismatchError: Unknown algorithm, or a truncated or damaged file.
    """
    import zipfile

    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.save_util import json_to_data

    algo: Any = {"ppo": PPO, "dqn": DQN}.get(config.algorithm)
    if algo is None:
        raise PolicyMismatchError(f"{path}: unknown algorithm {config.algorithm!r}")
    try:
        if not to_act:
            return algo.load(path, device=device)
        # only the small "data" entry: the weights are read once, by load
        with zipfile.ZipFile(path) as archive:
            data = json_to_data(archive.read("data").decode())
        kwargs = {**data.get("policy_kwargs", {}), "optimizer_class": _NoOptimizer}
        return algo.load(path, device=device, custom_objects={"policy_kwargs": kwargs})
    except (ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as e:
        damaged = f"{path}: not a readable {config.algorithm} checkpoint (truncated or damaged?)"
        raise PolicyMismatchError(f"{damaged}: {e}") from e


def load_checkpoint_policy(
    path: str | Path,
    *,
    task: str | None = None,
    extractor: SemanticExtractor | None = None,
    device: str | None = "cpu",
    strict: bool = True,
) -> TrainedPolicy:
    """Load ``ckpt.zip`` and its ``ckpt.json`` as a policy, checking that they fit.

    Args:
        path: The checkpoint, or a task name for the shipped policy. A policy trained on clips
            (``mdp`` ``video``) is refused: :func:`semrl.agent.resolve.resolve_policy` loads both.
        task: The task it must serve (None: any).
        extractor: The semantic extractor to observe with (default: built from the saved map
            config with the real net); its fingerprint must match the saved one.
        device: Torch device of the extractor and model.
        strict: Refuse a checkpoint trained with another x265 build (else warn).

    Raises:
        InputNotFoundError: The checkpoint or its config is missing.
        PolicyMismatchError: Wrong task, incompatible spaces or observations, other detector
            weights, or another x265 build (strict).
    """
    p = Path(path)
    if str(path) in TASKS and not p.exists():
        p = shipped_policy(str(path))
    if not p.is_file():
        raise InputNotFoundError(f"policy checkpoint not found: {p}")
    config = PolicyConfig.read(config_path(p))
    if task is not None and config.task != task:
        raise PolicyMismatchError(f"{p} is a {config.task} policy, not a {task} policy")
    if config.mdp == VIDEO_MDP:
        raise PolicyMismatchError(f"{p} is a video policy (frame by frame); load it with semrl.agent.resolve_policy")
    from semrl.semantics.yolo import check_device

    device = check_device(device or "cpu")
    model = load_model(p, config, device, to_act=True)
    _check_spaces(model, config, p)
    check_build(config, p, strict)
    if extractor is None:
        from semrl.semantics.config import MapConfig
        from semrl.semantics.extractors import make_extractor

        map_config = MapConfig.from_json(config.map_config)
        extractor = make_extractor(map_config.task, config=map_config, device=device)
    if extractor.task != config.task:
        raise PolicyMismatchError(f"{p}: a {config.task} policy cannot observe {extractor.task} maps")
    if extractor.fingerprint != config.extractor_fingerprint:
        raise PolicyMismatchError(
            f"{p}: trained on maps {config.extractor_fingerprint} (weights sha256 {config.weights_sha256[:16]}), "
            f"the extractor is {extractor.fingerprint}"
        )
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    return TrainedPolicy(model, config, extractor, digest)

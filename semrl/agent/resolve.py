"""One resolver from a policy spec (command line, benchmark, Python) to a policy object.

A spec is one of:

- ``uniform``: no offsets (:func:`semrl.policy.uniform`);
- ``x265``: x265's own allocation, CRF (or its ABR) with its AQ and cuTree, no semantic offsets
  (:func:`semrl.policy.x265_allocation`);
- ``roi``: :class:`semrl.policy.RoiPolicy` with ``roi_delta``;
- a task name (``detection``, ``segmentation``, ``classification``): the policy shipped for it;
- ``video``: the shipped video policy (detection, each frame's QP and its objects' boost);
- ``video-reference``: the video MDP's reference coding alone, no learning
  (:class:`semrl.agent.video.ReferenceVideoPolicy`);
- a checkpoint path, loaded by :data:`CHECKPOINT_LOADERS` by suffix (``.zip``: ``semrl train``'s,
  with its ``ckpt.json`` beside it);
- ``module:function`` or ``path/to/file.py:function``: any callable taking a
  :class:`semrl.policy.PolicyInput`.

It lives in the agent layer because it loads trained checkpoints; the policy layer below knows
nothing of training.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from semrl.errors import InputNotFoundError, InvalidInputError, PolicyMismatchError
from semrl.policy import Policy, RoiPolicy, policy_task, uniform, x265_allocation
from semrl.semantics import TASKS

CheckpointLoader = Callable[..., Policy]
"""Loads a checkpoint file: ``loader(path, task=..., device=...)``."""


def _trained_policy(path: Path, *, task: str | None, device: str | None) -> Policy:
    """``semrl train``'s checkpoint: a picture policy, or a video policy (``mdp`` ``video`` in its config)."""
    from semrl.agent.checkpoint import load_checkpoint_policy
    from semrl.agent.config import VIDEO_MDP, PolicyConfig, config_path
    from semrl.agent.video import load_video_policy

    config = PolicyConfig.read(config_path(path))
    if config.mdp != VIDEO_MDP:
        return load_checkpoint_policy(path, task=task, device=device or "cpu")
    if task is not None and config.task != task:
        raise PolicyMismatchError(f"{path} is a {config.task} policy, not a {task} policy")
    from semrl.agent.checkpoint import check_build
    from semrl.semantics.yolo import check_device

    check_build(config, path, strict=True)
    return load_video_policy(path, config, check_device(device or "cpu"))


CHECKPOINT_LOADERS: dict[str, CheckpointLoader] = {".zip": _trained_policy}
"""Loaders of policy checkpoints by file suffix (``.zip``: Stable-Baselines3, from ``semrl train``)."""

_CHECKPOINT_SUFFIXES = (".zip", ".pt", ".pth", ".ckpt", ".onnx")

VIDEO_REFERENCE = "video-reference"
"""The spec of the video MDP's reference coding (no checkpoint)."""

X265_ALLOCATION = "x265"
"""The spec of x265's own allocation (CRF or ABR with its AQ and cuTree; :func:`semrl.policy.x265_allocation`)."""


def resolve_policy(spec: str, *, task: str | None = None, device: str | None = None, roi_delta: int = 8) -> Policy:
    """The policy a spec names (see the module docstring), checked against ``task``.

    Args:
        spec: The spec.
        task: The task the policy must serve (None: any); a policy that declares another task is
            refused.
        device: Torch device of a trained policy's networks (default CPU).
        roi_delta: ``roi``'s offset magnitude.

    Raises:
        InvalidInputError: A malformed spec, a missing attribute, an object that is not callable,
            or a checkpoint whose suffix has no loader.
        InputNotFoundError: A named file does not exist.
        PolicyMismatchError: The policy serves another task than ``task``.
    """
    if spec == "uniform":
        return uniform
    if spec == X265_ALLOCATION:
        return x265_allocation
    if spec == "roi":
        return RoiPolicy(delta=roi_delta)
    path = Path(spec)
    if spec == VIDEO_REFERENCE and not path.exists():
        from semrl.agent.video import ReferenceVideoPolicy

        policy: Policy = ReferenceVideoPolicy()
        _check_task(spec, policy, task)
        return policy
    if spec in (*TASKS, "video") and not path.exists():
        from semrl.agent.checkpoint import shipped_policy

        path = shipped_policy(spec)
    if path.suffix in _CHECKPOINT_SUFFIXES or (path.is_file() and ":" not in spec):
        policy = _load_checkpoint(path, task, device)
    else:
        policy = _import_callable(spec)
    _check_task(spec, policy, task)
    return policy


def resolve_named_policy(spec: str, *, unnamed: str | None = None, device: str | None = "cpu") -> tuple[str, Policy]:
    """A benchmark's ``NAME=SPEC`` option: the name it reports the policy under, and the policy.

    Args:
        spec: ``NAME=SPEC`` (SPEC as :func:`resolve_policy` takes it), or a bare SPEC when
            ``unnamed`` is given.
        unnamed: Prefix of the name a bare SPEC gets (``unnamed:SPEC``); None requires a name.
        device: Torch device of a checkpoint's net.

    Raises:
        InvalidInputError: No name where one is required, or an empty SPEC.
    """
    name, sep, target = spec.partition("=")
    if not sep and unnamed is not None:
        name, target = f"{unnamed}:{spec}", spec
    if not name or not target:
        raise InvalidInputError(f"a policy option takes NAME=SPEC (e.g. semrl=detection), got {spec!r}")
    return name, resolve_policy(target, device=device)


def _check_task(spec: str, policy: Policy, task: str | None) -> None:
    served = policy_task(policy)
    if task is not None and served is not None and served != task:
        raise PolicyMismatchError(f"policy {spec} serves {served}, not {task}; drop --task to use it for {served}")


def _load_checkpoint(path: Path, task: str | None, device: str | None) -> Policy:
    if not path.is_file():
        raise InputNotFoundError(f"policy checkpoint not found: {path}")
    loader = CHECKPOINT_LOADERS.get(path.suffix)
    if loader is None:
        raise InvalidInputError(
            f"policy checkpoint {path}: no loader for {path.suffix or 'files without a suffix'!r} "
            f"checkpoints yet (registered: {sorted(CHECKPOINT_LOADERS) or 'none'}); "
            "pass a policy as module:function, or register a loader in semrl.agent.resolve.CHECKPOINT_LOADERS"
        )
    return loader(path, task=task, device=device)


def _import_callable(spec: str) -> Policy:
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise InvalidInputError(
            f"policy {spec!r}: expected uniform, roi, {X265_ALLOCATION}, {', '.join(TASKS)}, video, {VIDEO_REFERENCE}, "
            "a checkpoint path (ckpt.zip), module:function or file.py:function"
        )
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise InputNotFoundError(f"policy module file not found: {file}")
        module_spec = importlib.util.spec_from_file_location(f"semrl_policy_{file.stem}", file)
        if module_spec is None or module_spec.loader is None:
            raise InvalidInputError(f"policy {spec!r}: cannot import {file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses and pickling look their module up there
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise InvalidInputError(f"policy {spec!r}: cannot import module {module_name!r}: {e}") from e
    obj = getattr(module, attr, None)
    if obj is None:
        raise InvalidInputError(f"policy {spec!r}: module {module_name!r} has no attribute {attr!r}")
    if not callable(obj):
        raise InvalidInputError(f"policy {spec!r} is a {type(obj).__name__}, not callable")
    return obj  # type: ignore[no-any-return]

"""QP-offset policies: the plug-in point through which any method (ROI, a trained agent) is benchmarked.

A policy sees one original frame, the task net's output on it and the base QP, and returns one QP
offset per 64x64 CTU. The benchmark adds the offsets to the base QP and clips the sum to 0..51.

A policy is named on the command line as ``module:function`` (``my_pkg.policies:aggressive``),
``path/to/file.py:function``, or a checkpoint path. Checkpoints are loaded by the loaders in
:data:`CHECKPOINT_LOADERS`, keyed by file suffix: ``.zip`` is a policy ``semrl train`` wrote (with
its ``ckpt.json`` beside it); other suffixes are refused with a clear error.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InputNotFoundError, InvalidInputError

CTU = 64


@dataclass(frozen=True, eq=False)
class PolicyInput:
    """What a policy sees for one frame.

    Attributes:
        frame: The original frame as the encoder receives it, (H, W, 3) uint8 RGB, H and W even
            (odd images are padded by one row or column of edge pixels).
        base_qp: The operating point's base QP. It may exceed 51 (a "virtual" base, used to
            extend ROI curves to the low-rate end): the frame is then coded at QP 51 plus
            offsets, and every CTU's QP is ``base_qp + offset`` clipped to 0..51.
        ctu_shape: (rows, cols) of the CTU grid the offsets must have.
        region: bool (h, w) pixels the task net marks as relevant on the original frame (boxes or
            masks of objects with confidence >= 0.25, or the thresholded Grad-CAM for
            classification); (h, w) is the unpadded frame size. None when not computed.
        boxes: float32 (N, 4) xyxy boxes of the objects with confidence >= 0.25 (detection and
            segmentation), else an empty array.
        frame_index: Index of the frame in its clip (0 for images).
    """

    frame: NDArray[np.uint8]
    base_qp: int
    ctu_shape: tuple[int, int]
    region: NDArray[np.bool_] | None
    boxes: NDArray[np.float32]
    frame_index: int = 0


@runtime_checkable
class Policy(Protocol):
    """Anything that maps a :class:`PolicyInput` to per-CTU QP offsets of shape ``ctu_shape``.

    A plain function qualifies. Give it a ``fingerprint`` attribute (str) that changes whenever
    its behaviour does; the benchmark's cache keys on the offsets it returns in any case.
    """

    def __call__(self, inputs: PolicyInput) -> NDArray[np.floating] | NDArray[np.integer]:
        """Return QP offsets, shape ``inputs.ctu_shape``."""
        ...


def uniform(inputs: PolicyInput) -> NDArray[np.int32]:
    """No offsets: every CTU at the base QP (the A1 anchor)."""
    return np.zeros(inputs.ctu_shape, np.int32)


@dataclass(frozen=True)
class RoiPolicy:
    """Region-of-interest offsets (the FFmpeg ``addroi`` practice, anchor A3).

    CTUs touching the task net's region, grown by ``dilation`` pixels, get ``-delta``; the
    others ``+delta``.

    Attributes:
        delta: Offset magnitude in QP steps.
        dilation: Pixels the region is grown by before the CTUs touching it are found.
    """

    delta: int = 8
    dilation: int = 16

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"roi:d={self.delta}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Return ``-delta`` on CTUs touching the dilated region, ``+delta`` elsewhere."""
        inside = roi_ctus(inputs.region, inputs.ctu_shape, self.dilation)
        return np.where(inside, -self.delta, self.delta).astype(np.int32)


def roi_ctus(region: NDArray[np.bool_] | None, ctu_shape: tuple[int, int], dilation: int) -> NDArray[np.bool_]:
    """Which CTUs touch ``region`` grown by ``dilation`` pixels (all False without a region)."""
    rows, cols = ctu_shape
    if region is None or not region.any():
        return np.zeros(ctu_shape, bool)
    h, w = region.shape
    canvas: NDArray[np.bool_] = np.zeros((rows * CTU, cols * CTU), bool)
    canvas[:h, :w] = region
    if dilation > 0:
        import cv2

        kernel = np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8)
        canvas = np.asarray(cv2.dilate(canvas.astype(np.uint8), kernel)).astype(bool)
    touched = np.asarray(canvas.reshape(rows, CTU, cols, CTU).any(axis=(1, 3)), dtype=bool)
    return touched


def apply_offsets(
    policy: Policy | Callable[[PolicyInput], object], inputs: PolicyInput, coded_base: int | None = None
) -> NDArray[np.int32]:
    """Call a policy and return the offsets to give the encoder.

    Each CTU's QP is ``inputs.base_qp`` + the policy's offset, rounded and clipped to 0..51; the
    result is relative to ``coded_base``, the encoder's base QP (default ``inputs.base_qp``).

    Raises:
        InvalidInputError: The policy returned the wrong shape or non-finite values.
    """
    raw = np.asarray(policy(inputs), dtype=np.float64)
    if raw.shape != inputs.ctu_shape:
        raise InvalidInputError(
            f"policy {describe(policy)} returned offsets of shape {raw.shape}, expected CTU grid {inputs.ctu_shape}"
        )
    if not np.isfinite(raw).all():
        raise InvalidInputError(f"policy {describe(policy)} returned NaN or infinite offsets")
    qp = np.clip(np.rint(raw) + inputs.base_qp, 0, 51)
    base = inputs.base_qp if coded_base is None else coded_base
    offsets: NDArray[np.int32] = (qp - base).astype(np.int32)
    return offsets


def describe(policy: object) -> str:
    """A stable name for a policy: its ``fingerprint`` attribute, else module:qualname."""
    fp = getattr(policy, "fingerprint", None)
    if isinstance(fp, str):
        return fp
    module = getattr(policy, "__module__", type(policy).__module__)
    name = getattr(policy, "__qualname__", type(policy).__qualname__)
    return f"{module}:{name}"


CheckpointLoader = Callable[[Path], Policy]


def _trained_policy(path: Path) -> Policy:
    from semrl.agent.checkpoint import load_checkpoint_policy

    return load_checkpoint_policy(path)


CHECKPOINT_LOADERS: dict[str, CheckpointLoader] = {".zip": _trained_policy}
"""Loaders of policy checkpoints by file suffix (``.zip``: Stable-Baselines3, from ``semrl train``)."""

_CHECKPOINT_SUFFIXES = (".zip", ".pt", ".pth", ".ckpt", ".onnx")


def load_policy(spec: str) -> Policy:
    """Resolve ``module:function``, ``file.py:function`` or a checkpoint path to a policy.

    Raises:
        InvalidInputError: Malformed spec, a missing attribute, an object that is not callable,
            or a checkpoint whose suffix has no loader in :data:`CHECKPOINT_LOADERS`.
        InputNotFoundError: A named file does not exist.
    """
    path = Path(spec)
    if path.suffix in _CHECKPOINT_SUFFIXES or (path.is_file() and ":" not in spec):
        if not path.is_file():
            raise InputNotFoundError(f"policy checkpoint not found: {path}")
        loader = CHECKPOINT_LOADERS.get(path.suffix)
        if loader is None:
            raise InvalidInputError(
                f"policy checkpoint {path}: no loader for {path.suffix or 'files without a suffix'!r} "
                f"checkpoints yet (registered: {sorted(CHECKPOINT_LOADERS) or 'none'}); "
                "pass a policy as module:function, or register a loader in semrl.bench.policy.CHECKPOINT_LOADERS"
            )
        return loader(path)
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise InvalidInputError(f"policy {spec!r}: expected module:function, file.py:function or a checkpoint path")
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise InputNotFoundError(f"policy module file not found: {file}")
        module_spec = importlib.util.spec_from_file_location(f"semrl_policy_{file.stem}", file)
        if module_spec is None or module_spec.loader is None:
            raise InvalidInputError(f"policy {spec!r}: cannot import {file}")
        module = importlib.util.module_from_spec(module_spec)
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


def clip_base(qp: float) -> int:
    """A base QP as an int in 0..51."""
    if not math.isfinite(qp) or not 0 <= qp <= 51:
        raise InvalidInputError(f"base QP must be in 0..51, got {qp}")
    return int(qp)

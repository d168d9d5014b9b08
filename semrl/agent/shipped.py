"""The policies shipped with semrl, as ``module:attribute`` policies loaded at first use.

``python benchmarks/bdrate.py --policy semrl=semrl.agent.shipped:detection`` benchmarks the
shipped detection policy without a checkpoint loader being registered.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.checkpoint import FrameInput, TrainedPolicy, load_checkpoint_policy, shipped_policy


class LazyPolicy:
    """A shipped policy, loaded (model and task net) on its first call.

    Args:
        task: ``detection``, ``segmentation`` or ``classification``.
    """

    def __init__(self, task: str) -> None:
        self.task = task
        self._policy: TrainedPolicy | None = None

    @property
    def fingerprint(self) -> str:
        """The task and the checkpoint's hash (the checkpoint is not loaded for it)."""
        digest = hashlib.sha256(shipped_policy(self.task).read_bytes()).hexdigest()
        return f"semrl-shipped:{self.task}:{digest[:16]}"

    def load(self) -> TrainedPolicy:
        """The loaded policy."""
        if self._policy is None:
            self._policy = load_checkpoint_policy(shipped_policy(self.task), task=self.task)
        return self._policy

    def __call__(self, inputs: FrameInput) -> NDArray[np.int32]:
        """Offsets for one frame (see :class:`TrainedPolicy`)."""
        return self.load()(inputs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


detection = LazyPolicy("detection")
segmentation = LazyPolicy("segmentation")
classification = LazyPolicy("classification")

"""The policies shipped with semrl, as ``module:attribute`` policies loaded at first use.

``python benchmarks/bdrate.py --policy semrl=semrl.agent.shipped:detection`` benchmarks the
shipped detection policy (the same as ``--policy detection``, resolved when first called).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.checkpoint import TrainedPolicy, shipped_policy
from semrl.agent.config import PolicyConfig, config_path
from semrl.policy import PolicyInput


class LazyPolicy:
    """A shipped policy, loaded (model and task net) on its first call.

    Args:
        task: ``detection``, ``segmentation`` or ``classification``.
    """

    needs_regions = False
    runs_own_net = True

    def __init__(self, task: str) -> None:
        self.task = task
        self._policy: TrainedPolicy | None = None

    @property
    def fingerprint(self) -> str:
        """The task and the checkpoint's hash (the checkpoint is not loaded for it)."""
        checkpoint = shipped_policy(self.task)
        digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        stages = PolicyConfig.read(config_path(checkpoint)).stage_tags
        return f"semrl-shipped:{self.task}:{digest[:16]}{stages}"

    def load(self) -> TrainedPolicy:
        """The loaded policy."""
        if self._policy is None:
            from semrl.agent.resolve import resolve_policy

            policy = resolve_policy(self.task, task=self.task)
            assert isinstance(policy, TrainedPolicy)
            self._policy = policy
        return self._policy

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Offsets for one frame (see :class:`TrainedPolicy`)."""
        return self.load()(inputs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


detection = LazyPolicy("detection")
segmentation = LazyPolicy("segmentation")
classification = LazyPolicy("classification")

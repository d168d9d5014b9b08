"""Detection policies whose far background goes to QP 51 (scratch candidates, kept with their results).

Each attribute ``<model>_<variant>`` is a detection model with its own 16x16 block refinement
(:meth:`semrl.agent.checkpoint.TrainedPolicy.refine`: the shipped values) and then the blocks that
no object of its own semantic map comes near (no box grown by ``ring`` px touches them) coded at
QP 51, from base QP ``from_qp`` up (below it the model's own offsets are kept):

- ``far51_27``: ring 64 px (one CTU, the greedy oracle's ring), from base QP 27;
- ``far51_32``: ring 64 px, from base QP 32;
- ``far51r32_32``: ring 32 px, from base QP 32.

Models: ``f0`` / ``f96`` the held-aside fold models (``/tmp/sz/fold0-s0``: ``semrl train --task
detection --hold-out 0:32 --seed 0``; ``/tmp/sz/fold96-s0``: ``--limit 96 --seed 0``), ``val``
the shipped detection policy. Run with ``benchmarks/`` on ``sys.path``: ``python
benchmarks/bdrate.py ... --policy f96_far51_27=benchmarks/results/far-background/far_candidates.py:f96_far51_27``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.checkpoint import TrainedPolicy, load_checkpoint_policy, shipped_policy
from semrl.codec import BLOCK_SIZE, QP_MAX, ctu_grid
from semrl.errors import InvalidInputError
from semrl.policy import PolicyInput
from semrl.policy.roi import roi_blocks
from semrl.semantics.regions import box_region

MODELS = {"f96": Path("/tmp/sz/fold96-s0/ckpt.zip"), "f0": Path("/tmp/sz/fold0-s0/ckpt.zip")}


class FarBackground:
    """A refined detection checkpoint whose blocks far from every object are coded at QP 51.

    Args:
        checkpoint: The model's ``ckpt.zip``.
        ring: Pixels the boxes are grown by; blocks the grown boxes do not touch are far.
        from_qp: Lowest base QP at which the far blocks go to 51.
    """

    needs_regions = False
    runs_own_net = True
    offset_block = BLOCK_SIZE

    def __init__(self, checkpoint: Path, ring: int, from_qp: int) -> None:
        self.checkpoint, self.ring, self.from_qp = checkpoint, ring, from_qp
        self._policy: TrainedPolicy | None = None
        self._fingerprint = ""

    @property
    def fingerprint(self) -> str:
        """The checkpoint's digest and the variant (read on first use)."""
        if not self._fingerprint:
            digest = hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()[:16]
            self._fingerprint = f"far-background:{digest}:ring{self.ring}:from{self.from_qp}"
        return self._fingerprint

    def _load(self) -> TrainedPolicy:
        if self._policy is None:
            self._policy = load_checkpoint_policy(self.checkpoint, task="detection")
        return self._policy

    def __call__(self, inputs: PolicyInput) -> NDArray[Any]:
        """Offsets per 16x16 block."""
        policy = self._load()
        if policy.refinement is None:
            raise InvalidInputError(f"{self.checkpoint} has no block refinement to start from")
        base = int(inputs.base_qp)
        grids, found = policy._analyse(inputs.frame)
        out = policy.refine(inputs.frame.shape, policy._ctu_offsets(grids, base), found, base)
        if base < self.from_qp:
            return out
        h, w = inputs.frame.shape[:2]
        near = roi_blocks(box_region(found, (h, w)), ctu_grid(w, h, BLOCK_SIZE), self.ring, BLOCK_SIZE)
        result: NDArray[np.int32] = np.where(near, out, np.maximum(out, QP_MAX - base)).astype(np.int32)
        return result


VARIANTS = {"far51_27": (64, 27), "far51_32": (64, 32), "far51r32_32": (32, 32)}
for _model, _path in {**MODELS, "val": shipped_policy("detection")}.items():
    for _name, (_ring, _from) in VARIANTS.items():
        globals()[f"{_model}_{_name}"] = FarBackground(_path, _ring, _from)

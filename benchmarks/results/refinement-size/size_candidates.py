"""Size-aware block refinements of held-aside detection models (scratch candidates, kept with their results).

Each attribute ``f<fold>_<variant>`` is the detection model trained with that fold held aside
(``/tmp/sz/fold96-s0``: ``semrl train --task detection --limit 96 --seed 0``; ``/tmp/sz/fold0-s0``:
``--hold-out 0:32 --seed 0``) with one refinement of its CTU decisions per 16x16 block:

- ``shipped``: the model's own refinement (``semrl train`` writes the shipped values: background blocks +4,
  boxes grown by 8 px, from base QP 27; :meth:`TrainedPolicy.refine`);
- ``large2`` / ``large4``: as shipped, and the blocks touched only by large objects (box area
  at least 96 x 96 px, COCO's large class; no small or medium object's grown box touches them)
  +2 / +4 over their CTU;
- ``large4_edge``: as ``large4``, but only the interior blocks of large boxes: the blocks within
  8 px of a large box's border keep the CTU's QP (mAP50-95 rewards where the box edges fall);
- ``small2``: as shipped, and the blocks touched by small objects (area below 32 x 32 px) 2 QP
  finer than their CTU.

``val_shipped`` and ``val_large2`` are the shipped detection model (``semrl/policies/detection.zip``)
with its own refinement and with ``large2``: the val confirmation of round 2 (README).

Every variant changes nothing below base QP 27 (the shipped ``min_base_qp``). Run with
``benchmarks/`` on ``sys.path``: ``python benchmarks/bdrate.py ... --policy
f96_large2=benchmarks/results/refinement-size/size_candidates.py:f96_large2``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.checkpoint import TrainedPolicy, load_checkpoint_policy, shipped_policy
from semrl.codec import BLOCK_SIZE, ctu_grid
from semrl.codec.encoder import ctu_to_blocks
from semrl.errors import InvalidInputError
from semrl.policy import PolicyInput
from semrl.policy.roi import roi_blocks
from semrl.semantics.regions import box_region

SMALL, LARGE = 32**2, 96**2  # COCO's size classes (pixel area)
MODELS = {"f96": Path("/tmp/sz/fold96-s0/ckpt.zip"), "f0": Path("/tmp/sz/fold0-s0/ckpt.zip")}


class SizeRefined:
    """A detection checkpoint whose CTU offsets are refined per 16x16 block by object size.

    Args:
        checkpoint: The model's ``ckpt.zip``.
        large: QP steps added to blocks only large objects touch.
        edge: Keep the blocks within 8 px of a large box's border at the CTU's QP.
        small: QP steps taken off blocks small objects touch.
    """

    needs_regions = False
    runs_own_net = True
    offset_block = BLOCK_SIZE

    def __init__(self, checkpoint: Path, large: int = 0, edge: bool = False, small: int = 0) -> None:
        self.checkpoint = checkpoint
        self.large, self.edge, self.small = large, edge, small
        self._policy: TrainedPolicy | None = None
        self._fingerprint = ""

    @property
    def fingerprint(self) -> str:
        """The checkpoint's digest and the variant (read on first use: the checkpoint may not exist at import)."""
        if not self._fingerprint:
            digest = hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()[:16]
            self._fingerprint = f"size-refined:{digest}:large{self.large}:edge{int(self.edge)}:small{self.small}"
        return self._fingerprint

    def _load(self) -> TrainedPolicy:
        if self._policy is None:
            self._policy = load_checkpoint_policy(self.checkpoint, task="detection")
        return self._policy

    def __call__(self, inputs: PolicyInput) -> NDArray[Any]:
        """Offsets per 16x16 block."""
        policy = self._load()
        base = int(inputs.base_qp)
        refinement = policy.refinement
        if refinement is None:
            raise InvalidInputError(f"{self.checkpoint} has no block refinement to start from")
        grids, found = policy._analyse(inputs.frame)
        ctu = policy._ctu_offsets(grids, base)
        out = policy.refine(inputs.frame.shape, ctu, found, base)  # the model's own refinement (shipped values)
        if base < refinement.min_base_qp:
            return out
        h, w = inputs.frame.shape[:2]
        grid = ctu_grid(w, h, BLOCK_SIZE)
        fine = ctu_to_blocks(ctu, grid).astype(np.int32)

        def touched(region: NDArray[np.bool_]) -> NDArray[np.bool_]:
            return roi_blocks(region, grid, refinement.dilation, BLOCK_SIZE)

        boxes = np.asarray(found, np.float64).reshape(-1, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        large, small, rest = boxes[area >= LARGE], boxes[area < SMALL], boxes[area < LARGE]
        if self.large:
            only_large = touched(box_region(large, (h, w))) & ~touched(box_region(rest, (h, w)))
            if self.edge:
                inner = np.column_stack([large[:, :2] + 1, large[:, 2:] - 1])
                only_large &= ~touched(box_region(large, (h, w)) & ~box_region(inner, (h, w)))
            out = np.where(only_large, fine + self.large, out)
        if self.small:
            out = np.where(touched(box_region(small, (h, w))), fine - self.small, out)
        result: NDArray[np.int32] = out.astype(np.int32)
        return result


VARIANTS = {
    "shipped": {},
    "large2": {"large": 2},
    "large4": {"large": 4},
    "large4_edge": {"large": 4, "edge": True},
    "small2": {"small": 2},
}
for _fold, _path in MODELS.items():
    for _name, _kw in VARIANTS.items():
        globals()[f"{_fold}_{_name}"] = SizeRefined(_path, **_kw)  # type: ignore[arg-type]
val_shipped = SizeRefined(shipped_policy("detection"))
val_large2 = SizeRefined(shipped_policy("detection"), **VARIANTS["large2"])  # type: ignore[arg-type]

r"""The shipped picture policies with other 16x16 block refinements, to choose the ones they ship with.

Each attribute is a shipped policy (the same model and semantic maps) with its
:class:`~semrl.agent.config.BlockRefinement` replaced. Detection: ``per_ctu`` has none (one QP
per CTU), ``d<delta>`` grows the objects by 8 px, ``d4_dil0`` and ``d4_dil16`` by 0 and 16 px, and
``d4_obj<k>`` also codes the blocks on objects ``k`` QP finer than their CTU, ``d<delta>_from<q>``
refines only from base QP ``q`` (``min_base_qp``; the shipped detection policy is ``d4_from27``);
segmentation: ``seg_per_ctu`` and ``seg_d<delta>`` (8 px). The choice is made on pictures of the
train split, not val (results in ``benchmarks/results/refinement``)::

    R=benchmarks/refinement.py
    python benchmarks/bdrate.py --task detection --split train --limit 32 --methods uniform,roi,policy \
        --roi-deltas 12 --bootstrap 0 --output benchmarks/results/refinement --policy per_ctu=$R:per_ctu \
        --policy d2=$R:d2 --policy d3=$R:d3 --policy d4=$R:d4 --policy d5=$R:d5 \
        --policy d4_dil0=$R:d4_dil0 --policy d4_dil16=$R:d4_dil16 --policy d4_obj2=$R:d4_obj2 \
        --policy d4_obj4=$R:d4_obj4
    python benchmarks/bdrate.py --task detection --split train --limit 32 --methods uniform,roi,policy \
        --roi-deltas 12 --bootstrap 0 --output /tmp/refine-train --policy per_ctu=$R:per_ctu --policy d4=$R:d4 \
        --policy d4_from27=$R:d4_from27 --policy d4_from32=$R:d4_from32 --policy d5_from27=$R:d5_from27 \
        --policy d3_from27=$R:d3_from27     # results in benchmarks/results/refinement/detection-min-base-qp
    python benchmarks/bdrate.py --task segmentation --split train --limit 32 --methods uniform,roi,policy \
        --roi-deltas 8 --bootstrap 0 --output benchmarks/results/refinement --policy per_ctu=$R:seg_per_ctu \
        --policy d2=$R:seg_d2 --policy d4=$R:seg_d4 --policy d6=$R:seg_d6
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from numpy.typing import NDArray

from semrl.agent.checkpoint import TrainedPolicy, load_checkpoint_policy, shipped_policy
from semrl.agent.config import BlockRefinement
from semrl.policy import PolicyInput


class Refined:
    """A shipped policy with ``refinement`` instead of its own (loaded on first call).

    Args:
        task: The shipped policy's task.
        refinement: The refinement to use; None for one QP per CTU.
    """

    needs_regions = False
    runs_own_net = True

    def __init__(self, task: str, refinement: BlockRefinement | None) -> None:
        self.task = task
        self.refinement = refinement
        self._policy: TrainedPolicy | None = None
        digest = hashlib.sha256(shipped_policy(task).read_bytes()).hexdigest()
        tail = "per-ctu" if refinement is None else refinement.tag
        self.fingerprint = f"semrl-shipped:{task}:{digest[:16]}:{tail}"
        self.offset_block = 64 if refinement is None else 16

    def _load(self) -> TrainedPolicy:
        if self._policy is None:
            shipped = load_checkpoint_policy(shipped_policy(self.task), task=self.task)
            refinement = None if self.refinement is None else self.refinement.to_dict()
            config = dataclasses.replace(shipped.config, refinement=refinement)
            self._policy = TrainedPolicy(shipped.model, config, shipped.extractor, self.fingerprint)
        return self._policy

    def __call__(self, inputs: PolicyInput) -> NDArray[Any]:
        """Offsets per CTU, or per 16x16 block when refined."""
        return self._load()(inputs)


per_ctu = Refined("detection", None)
d2 = Refined("detection", BlockRefinement(2, 8))
d3 = Refined("detection", BlockRefinement(3, 8))
d4 = Refined("detection", BlockRefinement(4, 8))
d5 = Refined("detection", BlockRefinement(5, 8))
d4_dil0 = Refined("detection", BlockRefinement(4, 0))
d4_dil16 = Refined("detection", BlockRefinement(4, 16))
d4_obj2 = Refined("detection", BlockRefinement(4, 8, object_delta=2))
d4_obj4 = Refined("detection", BlockRefinement(4, 8, object_delta=4))
d4_from27 = Refined("detection", BlockRefinement(4, 8, min_base_qp=27))
d4_from32 = Refined("detection", BlockRefinement(4, 8, min_base_qp=32))
d5_from27 = Refined("detection", BlockRefinement(5, 8, min_base_qp=27))
d3_from27 = Refined("detection", BlockRefinement(3, 8, min_base_qp=27))
seg_per_ctu = Refined("segmentation", None)
seg_d2 = Refined("segmentation", BlockRefinement(2, 8))
seg_d4 = Refined("segmentation", BlockRefinement(4, 8))
seg_d6 = Refined("segmentation", BlockRefinement(6, 8))

"""A coding offered to the clip trade as one more trial (``replay_clips.py --trials``; issue 13).

``boost4``: constant QP (A1) with the CTUs the net's objects touch (boxes' region grown by 16 px,
ROI's) 4 QP finer, and every other CTU at the frame's QP. So the background is coded as A1 codes
it, which keeps the rare and unsure finds that the class mean counts, and the objects that
`objects` counts are coded finer. Run with
``--policy boost4=benchmarks/results/video-trade/trade_candidates.py:boost4``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.policy import PolicyInput
from semrl.policy.roi import roi_blocks


@dataclass(frozen=True)
class ObjectBoost:
    """The blocks touching the net's region (grown by ``dilation``) get ``-delta``; the others 0.

    Attributes:
        delta: How much finer the objects' CTUs are coded.
        dilation: Pixels the region is grown by (ROI's).
    """

    delta: int = 4
    dilation: int = 16
    needs_regions = True

    @property
    def fingerprint(self) -> str:
        """Identifies the coding."""
        return f"object-boost:d={self.delta}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """``-delta`` on the CTUs touching the dilated region, 0 elsewhere."""
        inside = roi_blocks(inputs.region, inputs.ctu_shape, self.dilation)
        return np.where(inside, -self.delta, 0).astype(np.int32)


boost4 = ObjectBoost(4)

"""Object boosts on top of x265's own coding (A2: CRF, AQ, cuTree): the objects' CTUs finer, the rest untouched.

Run with ``benchmarks/bdrate.py --aq-policy boost4=<this file>:boost4``: the offsets are added to x265's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE
from semrl.policy import PolicyInput, roi_blocks


@dataclass(frozen=True)
class ObjectBoost:
    """CTUs touching the task net's region, grown by ``dilation`` pixels, get ``-delta``; the others 0."""

    delta: int
    dilation: int = 16
    needs_regions = True
    offset_block = CTU_SIZE

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        return f"object-boost:d={self.delta}:dil={self.dilation}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """``-delta`` on the CTUs touching the dilated region, 0 elsewhere."""
        inside = roi_blocks(inputs.region, inputs.ctu_shape, self.dilation)
        return np.where(inside, -self.delta, 0).astype(np.int32)


boost4 = ObjectBoost(4)
boost8 = ObjectBoost(8)

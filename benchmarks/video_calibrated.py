r"""The video reference coding with a boost per clip and base QP chosen on the clip's own earlier frames.

An experiment, not a method users can run: it measures whether what one departure from the
reference is worth carries from a clip's earlier frames to its later ones, on the real benchmark.
``benchmarks/video_deviations.py --calibration --output`` writes, from every one-decision
departure measured on frames 0-95 of each training clip (``semrl train --algo deviation``), the
boost per base QP of largest mean measured advantage over that clip's segments
(``calibration.json``); this policy codes as ``video-reference`` but with that boost on the
objects' blocks, and knows the clip by its frame size (the 4 training clips differ in size; any
other clip gets the reference). Measured: ``benchmarks/results/video-deviation``::

    python benchmarks/bdrate.py --task video --data <4 clips> --start 200 --methods uniform,policy \
        --policy cascade8_roi4=benchmarks/video_schedules.py:cascade8_roi4 \
        --policy calibrated=benchmarks/video_calibrated.py:calibrated --baseline cascade8_roi4

``SEMRL_CALIBRATION`` names another table (default the committed
``benchmarks/results/video-deviation/deviations/calibration.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.video import VideoSettings
from semrl.agent.video import VideoCoding
from semrl.policy import PolicyInput

TABLE = Path(__file__).resolve().parent / "results" / "video-deviation" / "deviations" / "calibration.json"


class ClipCalibrated(VideoCoding):
    """The reference coding plus a fixed boost per (frame size, base QP) from a calibration table.

    Args:
        table: ``calibration.json``'s entries (clip, size, boost per base QP).
        settings: The MDP's settings (default today's).
    """

    def __init__(self, table: list[dict[str, Any]], settings: VideoSettings | None = None) -> None:
        text = json.dumps(table, sort_keys=True)
        super().__init__(settings or VideoSettings(), "detection",
                         f"clip-calibrated:{hashlib.sha256(text.encode()).hexdigest()[:16]}")  # fmt: skip
        self.boosts = {tuple(e["size"]): {int(q): int(b) for q, b in e["boost"].items()} for e in table}
        self._size: tuple[int, int] = (0, 0)

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The reference's offsets with the clip's boost (the clip known by its frame size)."""
        self._size = (int(inputs.frame.shape[0]), int(inputs.frame.shape[1]))
        return super().__call__(inputs)

    def decide(self, obs: NDArray[np.float32], base_qp: int) -> int:
        """The clip's boost at this base QP (0, the reference, for an unknown clip or base QP)."""
        return self.settings.action_of(0, self.boosts.get(self._size, {}).get(int(base_qp), 0))


calibrated = ClipCalibrated(json.loads(Path(os.environ.get("SEMRL_CALIBRATION", TABLE)).read_text()))

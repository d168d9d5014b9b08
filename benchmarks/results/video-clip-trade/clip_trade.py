"""A probe: the picture trade on video, one shift for each clip chosen on trial codings of its IDR frame.

The shipped video policy's offsets for every frame, plus one shift per clip: at the clip's first
frame (its IDR frame) the frame is coded on its own (all-intra, as the clip's coding codes its IDR
frame: same size, preset, base QP and quantisation groups) with the policy's offsets shifted by
-6, -3, 0, +3, +6 and +9 QP, each reconstruction is scored by its mAP50-95 against the detector's
own objects on the source frame (:func:`semrl.agent.answer.object_score`), and the shift of most
``score - w * bpp`` (the IDR frame's bpp; ``w = trade * 2 ** ((q - 22) / 6)``,
:func:`semrl.agent.answer.trade_answer`) is added to every frame of the clip. Clips whose objects
survive coarse coding give their bits to clips whose objects fall apart, as pictures do under the
detection policy's trade. Used as ``--policy NAME=benchmarks/results/video-clip-trade/clip_trade.py:trade_0_2``
(or ``trade_0_1``, ``trade_0_4``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.answer import AnswerSearch, object_score, trade_answer, trial_coder
from semrl.agent.resolve import resolve_policy
from semrl.agent.video import VideoPolicy
from semrl.codec import EncoderConfig, Gop
from semrl.policy import PolicyInput, TrialCoding

SHIFT_KEY = "video-clip-trade.shift"


class ClipTrade:
    """The shipped video policy with one traded shift per clip (see the module docstring).

    Args:
        trade: The score a bpp of the IDR frame is worth at base QP 22.
    """

    needs_regions = True
    needs_rgb = True
    runs_own_net = True
    frame_level = True
    task = "detection"

    def __init__(self, trade: float) -> None:
        inner = resolve_policy("video", task="detection")
        assert isinstance(inner, VideoPolicy)
        self.inner = inner
        self.search = AnswerSearch(step=3, max_trials=3, trade=trade, finer=2)
        self.offset_block = self.inner.offset_block
        self.fingerprint = f"{self.inner.fingerprint}:clip-trade{trade:g}"
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Without the net (a worker loads its own)."""
        return {**self.__dict__, "_net": None}

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The video policy's offsets for the frame plus its clip's shift, chosen at the clip's first frame."""
        offsets = np.asarray(self.inner(inputs), np.int32)
        if inputs.frame_index == 0:
            inputs.state[SHIFT_KEY] = self._shift(inputs, offsets)
        return (offsets + int(inputs.state[SHIFT_KEY])).astype(np.int32)

    def _shift(self, inputs: PolicyInput, offsets: NDArray[np.int32]) -> int:
        if self._net is None:
            from semrl.bench.items import TASKS
            from semrl.bench.tasknet import TaskNet

            self._net = TaskNet(TASKS["detection"]).net
        picture = inputs.picture
        assert picture is not None, "the benchmark gives each frame's coded picture"
        h, w = inputs.frame.shape[:2]
        height, width = picture.y.shape
        config = EncoderConfig(width, height, qp=int(inputs.base_qp), gop=Gop.INTRA, qg_size=self.offset_block)
        trial = PolicyInput(inputs.frame, inputs.base_qp, inputs.ctu_shape, picture=picture,
                            coding=TrialCoding(config, (h, w)))  # fmt: skip
        code = trial_coder(trial)
        assert code is not None
        score = object_score(self._net, inputs.frame[:h, :w])
        kept = trade_answer(self.search, offsets, int(inputs.base_qp), code, score).offsets
        return int(kept.flat[0] - offsets.flat[0])


trade_0_1 = ClipTrade(0.1)
trade_0_2 = ClipTrade(0.2)  # the detection policy's own
trade_0_4 = ClipTrade(0.4)

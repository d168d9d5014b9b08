"""The per-CTU oracle of the fast-mode environment, as a benchmark policy: how far the proxy reaches.

The oracle reads the fast-mode table of the very picture it codes (every CTU coded at every table
QP by the real x265 and scored by the real task net) and gives each CTU the offset with the best
fast-mode reward, with a trained policy's reward settings and Lagrange multipliers. No policy
trained on the same environment can do better on the fast-mode reward; its BD-rate therefore
separates what the reward proxy limits from what learning and generalisation lose.

Use with the BD-rate tool (the checkpoint's task picks the task net)::

    SEMRL_ORACLE_CKPT=semrl/policies/detection.zip \
        python benchmarks/bdrate.py --task detection --policy oracle=benchmarks/oracle_policy.py:oracle

Tables of pictures the oracle has not seen are built (and cached) on first use, one per picture.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.semantic_qp import EnvSettings, SemanticQPEnv
from envs.tables import DEFAULT_TABLE_QPS, RealExtractorFactory, X265CodecFactory, build_tables, make_picture
from semrl.agent.config import PolicyConfig, config_path
from semrl.errors import InvalidInputError
from semrl.policy import PolicyInput


class Oracle:
    """Per-CTU best fast-mode action on each picture's own table.

    Args:
        checkpoint: A trained policy whose reward settings, multipliers and map config to use.
    """

    def __init__(self, checkpoint: str | os.PathLike[str]) -> None:
        path = Path(checkpoint)
        self.config = PolicyConfig.read(config_path(path))
        self.settings = EnvSettings.from_dict(self.config.env)
        self.lambdas = {int(q): float(v) for q, v in self.config.lambdas.items()}
        self.codec_factory = X265CodecFactory(self.config.preset)
        self.extractor_factory = RealExtractorFactory(self.config.map_config)
        self._codec: Any = None
        self._extractor: Any = None
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.fingerprint = f"fast-mode-oracle:{self.config.task}:{digest[:16]}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Offsets of the best fast-mode action of every CTU of ``inputs.frame``."""
        if self._codec is None:
            self._codec, self._extractor = self.codec_factory(), self.extractor_factory()
        picture = make_picture("oracle", inputs.frame)
        table = build_tables(
            [picture], codec_factory=self.codec_factory, extractor_factory=self.extractor_factory,
            qps=DEFAULT_TABLE_QPS, progress=False, codec=self._codec, extractor=self._extractor,
        )[0]  # fmt: skip
        if table.ctu_shape != tuple(inputs.ctu_shape):
            raise InvalidInputError(f"table grid {table.ctu_shape} differs from the frame's {inputs.ctu_shape}")
        lo, hi = self.settings.base_qps
        base = int(np.clip(inputs.base_qp, lo, hi))
        env = SemanticQPEnv([table], settings=self.settings, lambdas=self.lambdas)
        best = env.reward_table(0, base).argmax(axis=1)
        qps = env.qp_of(best, base)
        return (qps - base).reshape(table.ctu_shape).astype(np.int32)


SHIPPED_DETECTION = Path(__file__).resolve().parents[1] / "semrl" / "policies" / "detection.zip"
oracle = Oracle(os.environ.get("SEMRL_ORACLE_CKPT", str(SHIPPED_DETECTION)))

"""The SemanticQP environment: choose the QP of every 64x64 CTU of a picture for a vision task.

Registered as ``semrl/SemanticQP-v0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from envs.codecs import Codec, FakeCodec
from envs.observation import OBS_DIM, ObservationBuilder, static_observations
from envs.reward import RewardConfig, ctu_rewards, fidelity_loss, fidelity_terms, interpolated, lagrangian
from envs.tables import DEFAULT_TABLE_QPS, CtuTable, Picture, compute_table, make_picture
from semrl.codec import QP_MAX, QP_MIN
from semrl.errors import InvalidInputError
from semrl.semantics.extractors import SemanticExtractor

DEFAULT_OFFSETS = (-9, -6, -3, 0, 3, 6, 9, 12, 18, 27)
"""QP offsets an action chooses from (the QP is base + offset, clipped to the table range .. 51)."""

DEFAULT_BASE_QPS = (22, 51)
"""Inclusive range the base QP of an episode is drawn from (the benchmark's operating points)."""


@dataclass(frozen=True)
class EnvSettings:
    """The settings that define the MDP (saved beside every policy; must match to load it).

    Attributes:
        offsets: QP offsets of the discrete actions.
        base_qps: Inclusive (low, high) range of episode base QPs.
        qp_min: Lowest QP a CTU may get (the lowest table QP).
        reward: Reward configuration.
    """

    offsets: tuple[int, ...] = DEFAULT_OFFSETS
    base_qps: tuple[int, int] = DEFAULT_BASE_QPS
    qp_min: int = DEFAULT_TABLE_QPS[0]
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        lo, hi = self.base_qps
        if not (QP_MIN <= lo <= hi <= QP_MAX) or not self.offsets or len(set(self.offsets)) != len(self.offsets):
            raise InvalidInputError(f"invalid env settings: base QPs {self.base_qps}, offsets {self.offsets}")
        if not QP_MIN <= self.qp_min <= lo:
            raise InvalidInputError(f"qp_min {self.qp_min} must be in 0..{lo} (the lowest base QP)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> EnvSettings:
        """Inverse of :meth:`to_dict`."""
        return EnvSettings(
            tuple(int(o) for o in d["offsets"]),
            (int(d["base_qps"][0]), int(d["base_qps"][1])),
            int(d["qp_min"]),
            RewardConfig(**{"mse_weight": 0.0, **d["reward"]}),  # configs from before mse_weight
        )


class SemanticQPEnv(gym.Env[NDArray[np.float32], np.int64]):
    """Pick the QP offset of each 64x64 CTU of a picture so a vision task survives at few bits.

    ## Description

    An episode is one picture (a dataset image or a video frame) at one base QP (the operating
    point, drawn uniformly from ``base_qps``). The agent visits the CTUs in raster order, as the
    encoder codes them, and picks each CTU's QP offset; the picture's QP map is the result. This
    is the per-CTU MDP of Li, Shi and Chen (TIP 2021), kept because its steps are cheap table
    lookups (thousands per second) and its observation is local, so one small network serves
    every picture size. Two changes: the action is an offset around a base QP, not an absolute QP,
    so one policy serves every operating point of a rate-accuracy curve (the benchmark sweeps the
    base QP); and the reward is a Lagrangian whose multiplier is the slope of uniform coding at that
    base QP, so the policy aims at the best accuracy-for-bits trade at every operating point
    rather than at one fixed rate. Video frames are treated as intra pictures: a frame-level agent
    over P-frame references (Xie et al. 2022) is left for a hierarchical env.

    ## Action Space

    ``Discrete(len(offsets))``: action ``a`` codes the current CTU at
    ``clip(base_qp + offsets[a], qp_min, 51)``. Default offsets -9, -6, -3, 0, 3, 6, 9, 12, 18, 27.

    ## Observation Space

    ``Box(-1, 1, (25,), float32)``, computed from the uncoded picture, its semantic map and the
    decisions so far only (so a policy rebuilds it from a frame at inference;
    :data:`envs.observation.OBS_NAMES`): base QP / 51; CTU row and column (0..1); share of the CTU
    inside the picture; the CTU's mean and max semantic importance; the mean importance of its
    four neighbours, of its 3x3 and 5x5 neighbourhoods and of the picture, and the share of the
    picture's CTUs with any importance; luma mean, standard deviation and gradient energy; the
    normalised offsets already chosen for the left, up, up-left and up-right CTUs and whether the
    left and up CTUs exist; the mean normalised offset so far (the budget spent) and the progress
    through the picture.

    ## Rewards

    Per CTU ``i`` coded at QP ``q`` with base ``b``:
    ``r = -clip(((D_i(q) - D_i(b)) / lambda_b + w * (R_i(q) - R_i(b))) / Rbar_b, -c, c)`` where
    ``R`` is the encoder's exact bits of the CTU, ``D`` its task fidelity loss (the terms of
    :mod:`envs.reward` weighted by :class:`envs.reward.RewardConfig`), ``lambda_b`` the slope of
    uniform coding at ``b`` over the training set (fidelity loss per bit), ``w`` the rate weight
    and ``Rbar_b`` the mean bits of a CTU at ``b`` (:mod:`envs.reward` computes the terms, the
    loss and the reward, for both modes). Uniform coding scores 0; a positive return means the
    policy's map buys more fidelity per bit than uniform coding at that operating point. The
    discount should be 0: in the fast mode a CTU's reward depends on its own QP only, so each CTU
    is a contextual bandit.

    Which terms make ``D``. The semantic map's drop (``dsem``, the default weight 1) is what
    policies before the object terms learned from; it measures a map, not what mAP50-95 scores.
    The object terms (``dobj``: each object the net finds in the uncoded picture, graded after
    coding by the share of mAP50-95's IoU thresholds its best same-class detection passes and by
    its relative confidence, spread over the CTUs its box covers; ``fobj``: the detections that
    coding creates) grade the task output the way the metric does: box precision, objects whatever
    the map holds, false positives on coarse background, and 0 loss where the output is as in the
    reference (the top of the curve). A picture's objects share a weight of 1 in ``dobj``; a table's
    :meth:`envs.tables.CtuTable.with_object_weights` weighs them otherwise (``semrl train
    --object-weighting class``: as the class-mean mAP does; it lost on held-aside pictures, as the
    class-blind observation cannot tell a rare class's object). They stay additive over CTUs, so
    the fast mode keeps its table lookups and its speed, at the price of assuming that an object's
    grade under a mixed map is the area-weighted mean of its grades under uniform coding. Both are
    validated against live encodes of random and policy maps by
    ``benchmarks/signal_validation.py``, next to the retest ceiling (two live measurements of
    nearly the same map): a picture's live mAP50-95 moves by several points when one object crosses
    one IoU threshold, so no signal ranks single pictures' score changes much better than the live
    score ranks itself.

    - fast mode: ``R`` and ``D`` come from the tables (each picture coded uniformly at every
      table QP by the real x265 and scored by the real task net; log-linear interpolation
      between table QPs). This assumes a CTU's bits and fidelity depend on its own QP only.
    - live mode: the policy's actual QP map is coded by x265 at the end of the episode and the
      task net scores the reconstruction, against a live uniform encode at the base QP. The
      per-step rewards are then 0 and the last step returns the live sum; ``info`` holds both the
      live and the fast per-CTU rewards so the fast mode's approximation is measured.

    ## Starting State

    A picture and a base QP drawn from the env's generator (``reset(seed=...)``), or named by
    ``options={"picture": index, "base_qp": qp}``.

    ## Episode End

    Terminates after the last CTU of the picture; never truncated. The final ``info`` holds
    ``offsets`` (the QP-offset grid), ``fast_return``, ``bits_fast`` and ``uniform_bits``, and in
    live mode ``live_return``, ``bits_live``, ``live_ctu_rewards`` and ``fast_ctu_rewards``.

    ## Arguments

    - ``tables``: :class:`envs.tables.CtuTable` of the training pictures (see
      :func:`envs.tables.build_tables`); None builds four synthetic pictures with the fake codec
      and fake detector (for demos and tests).
    - ``mode``: ``"fast"`` or ``"live"``.
    - ``pictures``: the :class:`envs.tables.Picture` of each table (live mode).
    - ``codec``, ``extractor``: the codec and semantic extractor the live mode codes and scores
      with (the ones the tables were built with).
    - ``settings``: :class:`EnvSettings` (offsets, base QP range, reward).
    - ``lambdas``: per base QP slopes to use instead of those measured on ``tables`` (a trained
      policy's, to evaluate it on other pictures).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self,
        tables: Sequence[CtuTable] | None = None,
        *,
        mode: str = "fast",
        pictures: Sequence[Picture] | None = None,
        codec: Codec | None = None,
        extractor: SemanticExtractor | None = None,
        settings: EnvSettings | None = None,
        lambdas: dict[int, float] | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("fast", "live"):
            raise InvalidInputError(f"mode must be 'fast' or 'live', got {mode!r}")
        self.settings = settings or EnvSettings()
        if tables is None:
            pictures, tables, codec, extractor = synthetic_set()
        if not tables:
            raise InvalidInputError("SemanticQPEnv needs at least one picture table")
        if mode == "live" and (pictures is None or codec is None or extractor is None):
            raise InvalidInputError("live mode needs pictures, codec and extractor")
        if pictures is not None and [p.digest for p in pictures] != [t.digest for t in tables]:
            raise InvalidInputError("pictures and tables do not match (digests differ)")
        self.mode = mode
        self.tables = list(tables)
        self.pictures = list(pictures) if pictures is not None else None
        self.codec = codec
        self.extractor = extractor
        self.offsets = np.asarray(self.settings.offsets, np.int64)
        self._scale = float(np.abs(self.offsets).max()) or 1.0
        slopes, mean_bits = lagrangian(self.tables, self.settings.qp_min, self.settings.base_qps, self.settings.reward)
        if lambdas is not None:
            missing = [q for q in slopes if q not in lambdas]
            if missing:
                raise InvalidInputError(f"lambdas lack base QPs {missing}")
            slopes = {q: float(lambdas[q]) for q in slopes}
        self.lambdas, self.mean_bits = slopes, mean_bits
        self.action_space = spaces.Discrete(len(self.offsets))
        self.observation_space = spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
        self._static = [static_observations(t.grids, 0.0) for t in self.tables]
        self._interp = [interpolated(t, self.settings.qp_min, self.settings.reward) for t in self.tables]
        self._live_ref: dict[tuple[int, int], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        self._p = 0
        self._base = self.settings.base_qps[0]
        self._i = 0
        self._n = 1
        self._cols = 1
        self._act = np.zeros(1, np.int64)
        self._rewards = np.zeros((1, len(self.offsets)), np.float32)
        self._builder = ObservationBuilder(self._static[0], 1, self._base, self._scale)

    # ---- rewards ---------------------------------------------------------------------------

    def qp_of(self, actions: NDArray[np.int64], base_qp: int) -> NDArray[np.int64]:
        """QPs of actions at a base QP."""
        out: NDArray[np.int64] = np.clip(base_qp + self.offsets[actions], self.settings.qp_min, 51)
        return out

    def _reward(
        self, bits: NDArray[np.float64], fid: NDArray[np.float64], ref_bits: NDArray[np.float64],
        ref_fid: NDArray[np.float64], base: int,
    ) -> NDArray[np.float32]:  # fmt: skip
        return ctu_rewards(bits, fid, ref_bits, ref_fid, self.lambdas[base], self.mean_bits[base], self.settings.reward)

    def reward_table(self, picture: int, base_qp: int) -> NDArray[np.float32]:
        """Fast-mode reward of every action at every CTU, (N, actions)."""
        bits, fid = self._interp[picture]
        qps = self.qp_of(np.arange(len(self.offsets)), base_qp)
        return self._reward(bits[qps].T, fid[qps].T, bits[base_qp][:, None], fid[base_qp][:, None], base_qp)

    # ---- Gymnasium API ---------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start a picture at a base QP (drawn, or from ``options``)."""
        super().reset(seed=seed)
        options = options or {}
        lo, hi = self.settings.base_qps
        self._p = int(options.get("picture", self.np_random.integers(len(self.tables))))
        self._base = int(options.get("base_qp", self.np_random.integers(lo, hi + 1)))
        if not 0 <= self._p < len(self.tables) or not lo <= self._base <= hi:
            raise InvalidInputError(f"picture {self._p} or base QP {self._base} out of range")
        rows, cols = self.tables[self._p].ctu_shape
        self._n, self._cols, self._i = rows * cols, cols, 0
        self._act = np.zeros(self._n, np.int64)
        self._rewards = self.reward_table(self._p, self._base)
        self._builder = ObservationBuilder(self._static[self._p], cols, self._base, self._scale)
        return self._observation(), {"picture": self._p, "base_qp": self._base, "ctus": self._n}

    def _observation(self) -> NDArray[np.float32]:
        return self._builder.observe(self._i).copy()

    def step(self, action: np.int64 | int) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Code the current CTU with offset ``offsets[action]`` and move to the next."""
        a = int(action)
        if not 0 <= a < len(self.offsets):
            raise InvalidInputError(f"action {action} outside 0..{len(self.offsets) - 1}")
        i = self._i
        self._act[i] = a
        self._builder.record(i, float(self.offsets[a]))
        reward = float(self._rewards[i, a])
        self._i += 1
        done = self._i >= self._n
        info: dict[str, Any] = {}
        if done:
            info = self._final_info()
            if self.mode == "live":
                reward = float(info["live_return"])
            self._i = self._n - 1  # the terminal observation repeats the last CTU's position
        elif self.mode == "live":
            reward = 0.0
        obs = self._observation()
        return obs, reward, done, False, info

    def _final_info(self) -> dict[str, Any]:
        rows = self._n // self._cols
        qps = self.qp_of(self._act, self._base)
        bits, _ = self._interp[self._p]
        fast = self._rewards[np.arange(self._n), self._act]
        info: dict[str, Any] = {
            "offsets": (qps - self._base).reshape(rows, self._cols).astype(np.int32),
            "base_qp": self._base,
            "picture": self._p,
            "fast_return": float(fast.sum()),
            "fast_ctu_rewards": fast,
            "bits_fast": float(bits[qps, np.arange(self._n)].sum()),
            "uniform_bits": float(bits[self._base].sum()),
        }
        if self.mode == "live":
            live, live_bits = self.live_rewards(info["offsets"])
            ref_bits, _ = self._live_reference()
            info.update(
                live_return=float(live.sum()), live_ctu_rewards=live, bits_live=float(live_bits.sum()),
                uniform_bits_live=float(ref_bits.sum()),
            )  # fmt: skip
        return info

    # ---- live mode -------------------------------------------------------------------------

    def live_rewards(self, offsets: NDArray[np.int32]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
        """Live per-CTU rewards and exact bits of coding the episode's picture with ``offsets``.

        Live mode only. The episode's picture and base QP (set by :meth:`reset`) are coded with
        the (rows, cols) QP-offset grid ``offsets`` and scored against the live uniform encode at
        the base QP, as at the end of a live episode; a caller can so measure other maps of the same
        picture (e.g. one CTU's action changed, to credit that CTU with its own effect).
        """
        if self.mode != "live":
            raise InvalidInputError("live_rewards needs the live mode (pictures, codec and extractor)")
        live_bits, live_fid = self._live(np.asarray(offsets, np.int32), self._base)
        ref_bits, ref_fid = self._live_reference()
        return self._reward(live_bits, live_fid, ref_bits, ref_fid, self._base), live_bits

    def _live(self, offsets: NDArray[np.int32], base: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-CTU exact bits and fidelity loss of coding the current picture with ``offsets``."""
        assert self.pictures is not None and self.codec is not None and self.extractor is not None
        picture, table = self.pictures[self._p], self.tables[self._p]
        coded = self.codec.code(picture.frame, base, offsets)
        ref = table.semantic.astype(np.float32)
        dec = self.extractor.extract([coded.recon], color="rgb")[0]
        terms = fidelity_terms(
            picture.frame, coded.recon, ref, dec.values, table.reference, dec.output, table.object_weights
        ).astype(np.float64)
        fid = fidelity_loss(terms, self.settings.reward).astype(np.float64, copy=False)
        return coded.ctu_bits.reshape(-1).astype(np.float64), fid.reshape(-1)

    def _live_reference(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        key = (self._p, self._base)
        if key not in self._live_ref:
            rows = self._n // self._cols
            self._live_ref[key] = self._live(np.zeros((rows, self._cols), np.int32), self._base)
        return self._live_ref[key]


def synthetic_pictures(count: int = 4, size: tuple[int, int] = (192, 256)) -> list[Picture]:
    """Deterministic synthetic pictures (gradients, stripes and noise) for demos and tests."""
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for k in range(count):
        base = 60 + 40 * np.sin(xx / (9 + 3 * k)) + 30 * np.cos(yy / (13 + k)) + rng.normal(0, 4 + 6 * k, (h, w))
        rgb = np.stack([base + 20 * c for c in range(3)], axis=2)
        out.append(make_picture(f"synthetic{k}", np.clip(rgb, 0, 255).astype(np.uint8)))
    return out


def synthetic_set(
    count: int = 4, task: str = "detection"
) -> tuple[list[Picture], list[CtuTable], Codec, SemanticExtractor]:
    """Synthetic pictures with their tables from the fake codec and fake extractor."""
    from semrl.semantics.fakes import FakeExtractor

    pictures = synthetic_pictures(count)
    codec, extractor = FakeCodec(), FakeExtractor(task)
    tables = [compute_table(p, codec, extractor, DEFAULT_TABLE_QPS) for p in pictures]
    return pictures, tables, codec, extractor

"""The observation of a CTU: the one builder the environment and trained policies both use.

Everything here is computed from the picture, its semantic map and the decisions already taken
(never from encoder statistics), so a trained policy builds, from an uncoded frame in ``semrl
encode`` or the benchmark, exactly the observations it saw in training.
:class:`ObservationBuilder` is the only code that assembles an observation vector.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from semrl.codec import CTU_SIZE, pool_map, rgb_luma

STATIC_NAMES = ("sem_mean", "sem_max", "valid", "luma_mean", "luma_std", "grad")
"""Rows of the static grid stack :func:`static_grids` returns."""

OBS_NAMES = (
    "base_qp", "row", "col", "valid", "sem_mean", "sem_max",
    "sem_left", "sem_up", "sem_right", "sem_down", "sem_3x3", "sem_5x5", "sem_picture", "sem_share",
    "luma_mean", "luma_std", "grad",
    "dec_left", "dec_up", "dec_upleft", "dec_upright", "has_left", "has_up", "dec_mean", "progress",
)  # fmt: skip
"""Meaning of each element of an observation vector (see :class:`envs.semantic_qp.SemanticQPEnv`)."""
OBS_DIM = len(OBS_NAMES)
N_STATIC_OBS = 17  # the first 17 elements do not depend on the decisions
BASE_QP_SCALE = 51.0  # base QP / this is the first element


def static_grids(frame: NDArray[np.uint8], semantic: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per-CTU content and semantic statistics of one picture, stacked as :data:`STATIC_NAMES`.

    Args:
        frame: (H, W, 3) uint8 RGB.
        semantic: (H, W) semantic map in 0..1.

    Returns:
        float32 (6, rows, cols).
    """
    luma = rgb_luma(frame)
    h, w = luma.shape
    mean = pool_map(luma, CTU_SIZE, "mean")
    sq = pool_map(luma * luma, CTU_SIZE, "mean")
    std = np.sqrt(np.maximum(sq - mean.astype(np.float64) ** 2, 0.0)).astype(np.float32)
    grad = np.zeros_like(luma)
    grad[:, 1:] += np.abs(np.diff(luma, axis=1))
    grad[1:, :] += np.abs(np.diff(luma, axis=0))
    rows, cols = mean.shape
    ys = np.minimum(h - np.arange(rows) * CTU_SIZE, CTU_SIZE) / CTU_SIZE
    xs = np.minimum(w - np.arange(cols) * CTU_SIZE, CTU_SIZE) / CTU_SIZE
    valid = np.outer(ys, xs).astype(np.float32)
    return np.stack(
        [
            pool_map(semantic, CTU_SIZE, "mean"),
            pool_map(semantic, CTU_SIZE, "max"),
            valid,
            mean,
            std,
            pool_map(grad, CTU_SIZE, "mean"),
        ]
    ).astype(np.float32)


def _shifted(grid: NDArray[np.float32], dy: int, dx: int) -> NDArray[np.float32]:
    """grid[r + dy, c + dx] at (r, c), zero outside."""
    rows, cols = grid.shape
    out = np.zeros_like(grid)
    ys, ye = max(0, -dy), min(rows, rows - dy)
    xs, xe = max(0, -dx), min(cols, cols - dx)
    if ys < ye and xs < xe:
        out[ys:ye, xs:xe] = grid[ys + dy : ye + dy, xs + dx : xe + dx]
    return out


def _box_mean(grid: NDArray[np.float32], radius: int) -> NDArray[np.float32]:
    """Mean of the (2r+1)^2 neighbourhood inside the grid."""
    total = np.zeros_like(grid)
    count = np.zeros_like(grid)
    ones = np.ones_like(grid)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            total += _shifted(grid, dy, dx)
            count += _shifted(ones, dy, dx)
    out: NDArray[np.float32] = (total / np.maximum(count, 1)).astype(np.float32)
    return out


def static_observations(grids: NDArray[np.float32], base_qp: float) -> NDArray[np.float32]:
    """The decision-independent part of every CTU's observation, raster order.

    Args:
        grids: Output of :func:`static_grids`.
        base_qp: The operating point's base QP.

    Returns:
        float32 (rows * cols, :data:`N_STATIC_OBS`) in -1..1.
    """
    sem, sem_max, valid, luma, std, grad = grids
    rows, cols = sem.shape
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float32)
    share = float((sem > 0.05).mean())
    parts = [
        np.full_like(sem, base_qp / BASE_QP_SCALE),
        r / max(rows - 1, 1),
        c / max(cols - 1, 1),
        valid,
        sem,
        sem_max,
        _shifted(sem, 0, -1),
        _shifted(sem, -1, 0),
        _shifted(sem, 0, 1),
        _shifted(sem, 1, 0),
        _box_mean(sem, 1),
        _box_mean(sem, 2),
        np.full_like(sem, float(sem.mean())),
        np.full_like(sem, share),
        luma / 255.0,
        np.minimum(std / 64.0, 1.0),
        np.log1p(grad) / np.log(511.0),
    ]
    out = np.stack([p.reshape(-1) for p in parts], axis=1).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


class ObservationBuilder:
    """Builds the observations of one picture's CTUs in raster order, as decisions are taken.

    Args:
        static: float32 (rows * cols, :data:`N_STATIC_OBS`) from :func:`static_observations` (at any
            base QP: the first element is set from ``base_qp`` here).
        cols: CTUs per row.
        base_qp: The episode's (or frame's) base QP.
        scale: Largest |offset| of the action set; decisions are seen as offset / scale.
    """

    def __init__(self, static: NDArray[np.float32], cols: int, base_qp: float, scale: float) -> None:
        self.static = static
        self.cols = cols
        self.count = len(static)
        self.base = min(base_qp / BASE_QP_SCALE, 1.0)  # a virtual base above 51 reads as 51, as in static_observations
        self.scale = scale
        self.decisions = np.zeros(self.count, np.float32)
        self.total = 0.0
        self._obs = np.zeros(OBS_DIM, np.float32)

    def observe(self, index: int) -> NDArray[np.float32]:
        """The observation of CTU ``index`` given the decisions recorded so far.

        Returns an internal buffer, overwritten by the next call: copy it to keep it.
        """
        obs, cols, d = self._obs, self.cols, self.decisions
        obs[:N_STATIC_OBS] = self.static[index]
        obs[0] = self.base
        r, c = divmod(index, cols)
        obs[17] = d[index - 1] if c > 0 else 0.0
        obs[18] = d[index - cols] if r > 0 else 0.0
        obs[19] = d[index - cols - 1] if r > 0 and c > 0 else 0.0
        obs[20] = d[index - cols + 1] if r > 0 and c + 1 < cols else 0.0
        obs[21] = 1.0 if c > 0 else 0.0
        obs[22] = 1.0 if r > 0 else 0.0
        obs[23] = self.total / index if index else 0.0
        obs[24] = index / self.count
        return obs

    def record(self, index: int, offset: float) -> None:
        """Record the QP offset chosen for CTU ``index``."""
        self.decisions[index] = offset / self.scale
        self.total += float(self.decisions[index])

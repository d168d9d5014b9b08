"""One-step improvement over the video MDP's reference coding, fitted to measured deviations.

Why not DQN alone: six seeds of the video DQN (1000 decisions each) never beat their reference
coding on the object-weighted mAP50-95 on frames they did not train on
(``benchmarks/results/video-more-frames``): each decision's reward is a noisy sample, and the
boosts' effect is the size of that noise. This MDP allows a lower-variance estimate. The
reference action scores exactly 0 at every step (x265 and the detector are deterministic), so the
value of departing from the reference at one decision and coding as the reference after it,

    A(s_k, a) = sum_{j >= k} gamma^(j - k) r_j,

is measured exactly by one rollout, later frames' bits and losses included (the frames that lean
on the decision's frames). Acting greedily on A is one step of policy iteration from the
reference, which improves on it wherever A is right (the policy-improvement theorem). A is fitted
by regression on the decision's observation, into the DQN's Q-network (Q(s, reference) = 0,
Q(s, a) = A(s, a), less a margin for the other actions), so the checkpoint loads and runs as every
video policy. The margin is chosen by cross-validation over clips (over segments when there is
one clip), so the policy departs from the reference only where a departure also paid on clips the
fit did not see; where no margin paid there, it never departs (it is the reference coding, and
says so).

The observation's decision history (:data:`HISTORY`) is always the reference's in these rollouts,
so the fit ignores it: the policy is a function of the frame, its objects and the base QP.

Measured (``benchmarks/results/video-deviation``, the shipped policy's 4 clips, frames 0-95, 1008
rollouts, 34 min on 2 cores): the best single departure is worth 0.595 reward units per decision,
but no fit on some clips gains on another (the net's rank correlation there -0.11), and the fitted
policy is the reference within noise on later frames (-0.5 % on the object-weighted mAP50-95).
Pooled with the 3 held-out clips' departures, so that each fit learns from 6 clips, the net gains
on 5 of the 7 clips left out (+0.085 per decision, rank correlation +0.37): what a departure is
worth carries once enough clips are seen; 4 are too few. Fitted on all 7, the policy still trades
the object-weighted mAP50-95 (+11.6 % against the reference on later frames) for the class mean
(-15.5 %).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.video import VIDEO_OBS_NAMES, VideoQPEnv
from semrl.errors import InvalidInputError
from semrl.files import atomic_write

HISTORY = ("last_offset", "last_boost", "recent_offset", "since_refresh")
"""Observation elements the fit ignores: the decisions so far, the reference's in every rollout."""

MARGINS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
"""Margins (reward units: a frame's mean bits at the base QP) the cross-validation chooses among."""

NEVER = 1e6
"""The margin that keeps the reference everywhere (far above any measured advantage)."""


@dataclass(frozen=True)
class Deviations:
    """Measured one-decision departures from the reference coding.

    Attributes:
        obs: (N, D) observation at the decision.
        action: (N,) the departure's action.
        advantage: (N,) its discounted return over the reference's (module docstring).
        clip: (N,) the index of the training clip (the cross-validation's groups).
        segment: (N,) the index of the training segment.
        base_qp: (N,) the operating point.
        step: (N,) the decision's index in its episode.
    """

    obs: NDArray[np.float32]
    action: NDArray[np.int64]
    advantage: NDArray[np.float64]
    clip: NDArray[np.int64]
    segment: NDArray[np.int64]
    base_qp: NDArray[np.int64]
    step: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.action)

    def subset(self, keep: NDArray[np.bool_]) -> Deviations:
        """The deviations where ``keep`` holds."""
        return Deviations(*(getattr(self, f)[keep] for f in _FIELDS))

    @staticmethod
    def concatenate(parts: Sequence[Deviations]) -> Deviations:
        """All deviations of ``parts``, in order."""
        if not parts:
            raise InvalidInputError("no deviations to join")
        return Deviations(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def save(self, path: Path) -> None:
        """Write as ``.npz`` (atomically)."""
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **{f: getattr(self, f) for f in _FIELDS})
        atomic_write(path, buffer.getvalue())

    @staticmethod
    def load(path: Path) -> Deviations:
        """Read what :meth:`save` wrote."""
        with np.load(path) as data:
            return Deviations(*(data[f] for f in _FIELDS))


_FIELDS = ("obs", "action", "advantage", "clip", "segment", "base_qp", "step")


def collect_deviations(
    env: VideoQPEnv,
    clip_of: Sequence[int],
    *,
    segments: Sequence[int] | None = None,
    on_rollout: Callable[[], object] | None = None,
) -> Deviations:
    """Measure every one-decision departure from the reference on the env's segments and base QPs.

    For each segment, base QP, decision k and non-reference action a, one episode codes the
    reference actions except a at decision k; its discounted return from k is A(s_k, a) (the steps
    before k score exactly 0).

    Args:
        env: The video env (its segments, codec, detector and settings).
        clip_of: The clip index of each of the env's segments.
        segments: Indices of the segments to measure (default all; a worker's share).
        on_rollout: Called after each rollout (progress).
    """
    settings = env.settings
    reference = settings.reference_action
    others = [a for a in range(settings.n_actions) if a != reference]
    decisions = settings.decisions(settings.episode_frames)
    rows: list[tuple[NDArray[np.float32], int, float, int, int, int, int]] = []
    for index in range(len(env.segments)) if segments is None else segments:
        for base in settings.base_qps:
            for k in range(decisions):
                for action in others:
                    obs, _ = env.reset(options={"segment": index, "base_qp": base})
                    state, value, done, j = obs, 0.0, False, 0
                    while not done:
                        if j == k:
                            state = obs
                        obs, reward, done, _, _ = env.step(action if j == k else reference)
                        if j >= k:
                            value += settings.gamma ** (j - k) * reward
                        j += 1
                    rows.append((state, action, value, int(clip_of[index]), index, base, k))
                    if on_rollout is not None:
                        on_rollout()
    if not rows:
        raise InvalidInputError("no deviations measured: no segments")
    obs_rows, actions, values, *labels = zip(*rows, strict=True)
    return Deviations(np.stack(obs_rows).astype(np.float32), np.array(actions, np.int64), np.array(values),
                      *(np.array(v, np.int64) for v in labels))  # fmt: skip


def history_mask() -> NDArray[np.float32]:
    """1 for the observation elements the fit reads, 0 for :data:`HISTORY`."""
    return np.array([0.0 if n in HISTORY else 1.0 for n in VIDEO_OBS_NAMES], np.float32)


def fit_q_net(
    q_net: Any,
    deviations: Deviations,
    reference_action: int,
    *,
    margin: float | None = 0.0,
    epochs: int = 400,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> None:
    """Fit a DQN's Q-network (in place) to the deviations: Q(s, reference) = 0, Q(s, a) = A(s, a) - margin.

    The reference action's output row is held at 0, so its Q-value is exactly 0 everywhere.
    Full-batch Adam on a Huber loss (a few rollouts' advantages are far larger than the rest: a
    lost object at a coarse base QP). The history elements are zeroed in training and their input
    weights set to 0 after, so the net reads the frame, its objects and the base QP alone.

    Args:
        q_net: Stable-Baselines3's ``QNetwork`` (``model.q_net``).
        deviations: The measured departures.
        reference_action: The reference action's index.
        margin: Subtracted from every other action's Q-value: the policy departs only where the
            predicted gain clears it. None: never depart (:data:`NEVER`).
        epochs: Gradient steps.
        learning_rate: Adam's step size.
        weight_decay: Adam's L2 penalty.
        seed: Seeds the net's initialisation.
    """
    import torch

    if not len(deviations):
        raise InvalidInputError("no deviations to fit")
    torch.manual_seed(seed)
    for layer in q_net.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    mask = torch.from_numpy(history_mask())
    obs = torch.from_numpy(deviations.obs) * mask
    actions = torch.from_numpy(deviations.action)
    targets = torch.from_numpy(deviations.advantage.astype(np.float32))
    linear = [m for m in q_net.modules() if isinstance(m, torch.nn.Linear)]
    optimizer = torch.optim.Adam(q_net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    q_net.train()
    for _ in range(epochs):
        with torch.no_grad():
            linear[-1].weight[reference_action] = 0.0
            linear[-1].bias[reference_action] = 0.0
        optimizer.zero_grad()
        loss = torch.nn.functional.smooth_l1_loss(q_net(obs)[torch.arange(len(obs)), actions], targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    q_net.eval()
    with torch.no_grad():
        linear[-1].weight[reference_action] = 0.0
        linear[-1].bias[reference_action] = 0.0
        linear[0].weight[:, mask == 0] = 0.0
        others = torch.ones(linear[-1].bias.shape[0], dtype=torch.bool)
        others[reference_action] = False
        linear[-1].bias[others] -= NEVER if margin is None else margin


def gains(predicted: NDArray[np.float64], deviations: Deviations, margin: float) -> float:
    """Mean measured gain per decision of acting on ``predicted`` advantages with a margin.

    At each decision (the rows of one episode state), the policy takes the action of largest
    predicted advantage when it exceeds ``margin``, else the reference (gain 0); its gain is that
    action's measured advantage. One-step: the departures are measured one at a time.

    Args:
        predicted: (N,) predicted advantage of each row.
        deviations: The rows, with their measured advantages.
        margin: The margin.
    """
    total, states = 0.0, 0
    for key in _state_keys(deviations):
        rows = np.flatnonzero(key)
        states += 1
        best = rows[np.argmax(predicted[rows])]
        if predicted[best] > margin:
            total += float(deviations.advantage[best])
    return total / max(states, 1)


def oracle_gain(deviations: Deviations) -> float:
    """Mean gain per decision of the best single departure at each decision (the measured ceiling)."""
    total, states = 0.0, 0
    for key in _state_keys(deviations):
        states += 1
        total += max(0.0, float(deviations.advantage[key].max()))
    return total / max(states, 1)


def _state_keys(deviations: Deviations) -> list[NDArray[np.bool_]]:
    """Row masks of each decision (one segment, base QP and step)."""
    keys: dict[tuple[int, int, int], list[int]] = {}
    for i in range(len(deviations)):
        key = (int(deviations.segment[i]), int(deviations.base_qp[i]), int(deviations.step[i]))
        keys.setdefault(key, []).append(i)
    masks = []
    for rows in keys.values():
        m = np.zeros(len(deviations), bool)
        m[rows] = True
        masks.append(m)
    return masks


def predict(q_net: Any, deviations: Deviations) -> NDArray[np.float64]:
    """The net's Q-value of each row's action (its predicted advantage, margin included)."""
    import torch

    with torch.no_grad():
        q = q_net(torch.from_numpy(deviations.obs))[torch.arange(len(deviations)), torch.from_numpy(deviations.action)]
        chosen: NDArray[np.float64] = q.double().numpy()
    return chosen


def left_out_predictions(
    make_q_net: Callable[[], Any],
    deviations: Deviations,
    group: NDArray[np.int64],
    reference_action: int,
    *,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Each row's predicted advantage by a net fitted (margin 0) on the rows of every other group."""
    predicted = np.zeros(len(deviations))
    for g in np.unique(group):
        net = make_q_net()
        fit_q_net(net, deviations.subset(group != g), reference_action, seed=seed)
        predicted[group == g] = predict(net, deviations.subset(group == g))
    return predicted


def choose_margin(
    make_q_net: Callable[[], Any],
    deviations: Deviations,
    reference_action: int,
    *,
    margins: Sequence[float] = MARGINS,
    seed: int = 0,
) -> tuple[float | None, dict[str, Any]]:
    """The margin with the largest mean gain on clips left out of the fit, and the cross-validation's figures.

    Each clip in turn is left out (each segment, when all come from one clip): the net is fitted
    on the others' deviations and its predicted advantages on the left-out decisions are scored
    by :func:`gains` at every margin.

    Returns:
        The margin (None when no margin's left-out gain is above 0: never depart), and a report:
        per margin the mean left-out gain, the oracle's, the rank correlation of predicted and
        measured advantages on the left-out rows, and the grouping.

    Raises:
        InvalidInputError: Deviations of a single segment (nothing to leave out).
    """
    from scipy.stats import spearmanr

    by = "clip" if len(np.unique(deviations.clip)) > 1 else "segment"
    group = getattr(deviations, by)
    groups = np.unique(group)
    if len(groups) < 2:
        raise InvalidInputError("choosing the margin needs deviations of at least 2 segments (one is left out)")
    predicted = left_out_predictions(make_q_net, deviations, group, reference_action, seed=seed)
    per_margin = {}
    for m in margins:
        per_margin[m] = float(np.mean([gains(predicted[group == g], deviations.subset(group == g), m) for g in groups]))
    best = max(per_margin, key=lambda m: (per_margin[m], m))
    margin = best if per_margin[best] > 0 else None
    report = {
        "left_out_gain": {str(m): g for m, g in per_margin.items()},
        "oracle_gain": float(np.mean([oracle_gain(deviations.subset(group == g)) for g in groups])),
        "spearman": float(spearmanr(predicted, deviations.advantage).statistic),
        "margin": margin,
        "left_out": by,
    }
    return margin, report

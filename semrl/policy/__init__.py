"""QP-offset policies: what a policy sees, what it returns, and the policies that need no training.

The layer below the environment, the agent, the encode pipeline and the benchmark, which all
import it: :class:`PolicyInput` (one frame, its base QP, the grids the offsets may have, the task
net's regions when the policy asks for them, state kept across the frames of a clip), the
:class:`Policy` protocol, :func:`apply_offsets` (call a policy, check and clip its answer;
:func:`policy_offsets` leaves it unclipped, for the rate controller),
:func:`uniform` (A1), :func:`x265_allocation` (A2: x265's own rate control), :class:`RoiPolicy`
(A3), and :class:`Prefilter`, which low-passes the blocks a policy codes coarse in the source
before x265 codes it (:class:`SoftenedPolicy` gives one to any policy). Trained policies live in
:mod:`semrl.agent`, which also resolves a policy spec from the command line
(:func:`semrl.agent.resolve_policy`).

Imports neither torch, gymnasium nor ultralytics.
"""

from semrl.policy.base import (
    Policy,
    PolicyInput,
    TrialCoding,
    apply_offsets,
    clip_offsets,
    describe,
    needs_regions,
    needs_rgb,
    offset_block,
    offsets_identity,
    own_rate_control,
    policy_offsets,
    policy_task,
    runs_own_net,
    scaling_lists,
    uniform,
    x265_allocation,
)
from semrl.policy.roi import RoiPolicy, roi_blocks
from semrl.policy.soften import Prefilter, SoftenedPolicy, prefilter_of, soften_blocks

__all__ = [
    "Policy",
    "PolicyInput",
    "Prefilter",
    "RoiPolicy",
    "SoftenedPolicy",
    "TrialCoding",
    "apply_offsets",
    "clip_offsets",
    "describe",
    "needs_regions",
    "needs_rgb",
    "offset_block",
    "offsets_identity",
    "own_rate_control",
    "policy_offsets",
    "policy_task",
    "prefilter_of",
    "roi_blocks",
    "runs_own_net",
    "scaling_lists",
    "soften_blocks",
    "uniform",
    "x265_allocation",
]

"""Candidates of the background pre-filter rule (README.md here): policies with their coarse blocks low-passed.

Each wraps a policy in :class:`semrl.policy.SoftenedPolicy`: the blocks it codes coarser than its
base QP are smoothed in the source by a Gaussian of ``sigma`` pixels before x265 codes them.
Run as ``--policy NAME=benchmarks/results/background-prefilter/prefilter_candidates.py:NAME``.
"""

from __future__ import annotations

from semrl.agent.resolve import resolve_policy
from semrl.policy import Prefilter, RoiPolicy, SoftenedPolicy

_detection = resolve_policy("detection")
_classification = resolve_policy("classification")
_roi12 = RoiPolicy(12)

det_s1 = SoftenedPolicy(_detection, Prefilter(1.0))
det_s2 = SoftenedPolicy(_detection, Prefilter(2.0))
det_s4 = SoftenedPolicy(_detection, Prefilter(4.0))
roi12_s1 = SoftenedPolicy(_roi12, Prefilter(1.0))
roi12_s2 = SoftenedPolicy(_roi12, Prefilter(2.0))
roi12_s4 = SoftenedPolicy(_roi12, Prefilter(4.0))
cls_s1 = SoftenedPolicy(_classification, Prefilter(1.0))
cls_s2 = SoftenedPolicy(_classification, Prefilter(2.0))
cls_all1 = SoftenedPolicy(_classification, Prefilter(1.0, threshold=-1000))


def _video() -> dict[str, SoftenedPolicy]:
    reference = resolve_policy("video-reference")
    return {f"ref_s{s:g}": SoftenedPolicy(reference, Prefilter(s)) for s in (1.0, 2.0)}


globals().update(_video())

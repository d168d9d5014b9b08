"""The fixed video schedules of ``benchmarks/video_schedules.py`` on hand-made frames (no x265, no weights)."""

from __future__ import annotations

import numpy as np

from semrl.codec import GopLayout
from semrl.policy import PolicyInput, RoiPolicy
from tests.benchmark_scripts import load_benchmark

schedules = load_benchmark("video_schedules")


def _input(index: int, region: np.ndarray | None = None, gop: GopLayout | None = None) -> PolicyInput:
    return PolicyInput(np.zeros((128, 256, 3), np.uint8), 32, (2, 4), region=region, frame_index=index,
                       gop=gop or GopLayout(keyint=12))  # fmt: skip


def test_cascade_codes_its_idr_frame_at_its_own_offset_and_restarts_at_each_idr() -> None:
    c = schedules.cascade8
    offsets = [int(c(_input(i))[0, 0]) for i in range(14)]
    # IDR -3, then the group of 8 (anchor at the base), restarting at the next IDR (keyint 12)
    assert offsets == [-3, 4, 3, 4, 2, 4, 3, 4, 0, 4, 3, 4, -3, 4]
    assert np.all(c(_input(5)) == 4) and c(_input(5)).shape == (2, 4)
    # all-intra: every frame is an IDR frame that nothing leans on, so none is coded finer
    assert [int(c(_input(i, gop=GopLayout(keyint=1)))[0, 0]) for i in range(3)] == [0, 0, 0]
    # a cascade with its IDR frame at the base keeps the name cached results were stored under
    assert schedules.hm_ldp.fingerprint == "cascade:0,2,1,2"
    assert c.fingerprint == "cascade:0,4,3,4,2,4,3,4:idr=-3"


def test_roi_cascade_adds_the_frame_offset_to_roi_offsets() -> None:
    region = np.zeros((128, 256), bool)
    region[10:20, 220:230] = True  # touches the top-right CTU only (dilated by 16 px)
    s = schedules.cascade8_roi4
    assert s.needs_regions and s.frame_level and s.offset_block == 64
    for i in range(10):
        frame = s.cascade.offset(_input(i))
        roi = RoiPolicy(4)(_input(i, region))
        np.testing.assert_array_equal(s(_input(i, region)), roi + frame)
    assert s(_input(0, region)).tolist() == [[1, 1, 1, -7], [1, 1, 1, 1]]
    assert s.fingerprint == "cascade:0,4,3,4,2,4,3,4:idr=-3+roi:d=4:dil=16"


def test_the_shipped_video_reference_codes_as_cascade8_roi4_and_by_layers_under_random_access() -> None:
    from envs.video import LAYER_OFFSETS, VideoSettings
    from semrl.agent.resolve import resolve_policy
    from semrl.agent.video import ReferenceVideoPolicy

    reference = resolve_policy("video-reference", task="detection")
    assert isinstance(reference, ReferenceVideoPolicy) and reference.settings == VideoSettings()
    assert reference.fingerprint.startswith("semrl-video-reference:") and reference.task == "detection"
    state: dict[str, object] = {}
    rng = np.random.default_rng(0)
    for i in range(26):  # two IDR periods of keyint 12, the objects moving
        region = np.zeros((128, 256), bool)
        x = int(rng.integers(0, 230))
        region[40:60, x : x + 20] = True
        inputs = _input(i, region)
        ours = reference(PolicyInput(inputs.frame, 32, (2, 4), region=region, frame_index=i, gop=inputs.gop,
                                     state=state))  # fmt: skip
        np.testing.assert_array_equal(ours, schedules.cascade8_roi4(inputs))
    # random access: the B-frame layers, the IDR frame 3 finer, and the same ROI
    ra = GopLayout(keyint=24, bframes=3, pyramid=True)
    state = {}
    region = np.zeros((128, 256), bool)
    region[10:20, 220:230] = True
    roi = RoiPolicy(4)(_input(0, region))
    for i in range(9):
        layer = -3 if i == 0 else LAYER_OFFSETS[ra.layer(i)]
        ours = reference(PolicyInput(np.zeros((128, 256, 3), np.uint8), 32, (2, 4), region=region, frame_index=i,
                                     gop=ra, state=state))  # fmt: skip
        np.testing.assert_array_equal(ours, roi + layer)

"""The VideoQP environment and the video policy on fakes: frame state carried, rewards over references."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

import envs
from envs.codecs import FakeClipCodec
from envs.video import (
    VIDEO_OBS_DIM,
    VIDEO_OBS_NAMES,
    VideoObserver,
    VideoQPEnv,
    VideoSettings,
    build_segments,
    frame_loss,
    frame_offsets_map,
)
from semrl.agent.video import OBSERVER_KEY
from semrl.codec import GopLayout
from semrl.errors import InvalidInputError, PolicyMismatchError
from semrl.semantics.fakes import FakeVideoDetector
from semrl.semantics.maps import TaskOutput

H, W = 96, 128  # a 6 x 8 grid of 16x16 blocks
SETTINGS = VideoSettings(frame_offsets=(-3, 0, 3, 6, 9), object_boosts=(-4, 0, 4), episode_frames=6,
                         base_qps=(32, 37, 42), max_step=None, block=16, decision_interval=1)  # fmt: skip


def _clip(n: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Smooth frames (a gradient) with a bright square moving right by 4 px a frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = (60 + 0.8 * xx + 0.4 * yy + rng.uniform(0, 20)).astype(np.float32)
    frames = []
    for t in range(n):
        f = base.copy()
        f[30:60, 10 + 4 * t : 40 + 4 * t] += 80
        frames.append(np.repeat(np.clip(f, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2))
    return frames


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> list:  # type: ignore[type-arg]
    cache = tmp_path_factory.mktemp("video_tables")
    return build_segments([("a", _clip(12, 0)), ("b", _clip(6, 1))], FakeClipCodec(), FakeVideoDetector(), SETTINGS,
                          cache_dir=cache)  # fmt: skip


def _env(segments: list) -> VideoQPEnv:  # type: ignore[type-arg]
    return VideoQPEnv(segments, FakeClipCodec(), FakeVideoDetector(), SETTINGS)


def test_segments_cut_measured_and_cached(tmp_path: Path) -> None:
    detector, codec = FakeVideoDetector(), FakeClipCodec()
    first = build_segments([("a", _clip(13))], codec, detector, SETTINGS, cache_dir=tmp_path)
    assert [s.name for s in first] == ["a#0", "a#6"]  # the 13th frame is left over
    s = first[0]
    assert set(s.reference_bits) == {32, 37, 42} and s.reference_terms[32].shape == (6, 2)
    assert s.reference_bits[32].sum() > s.reference_bits[42].sum()  # finer costs more
    assert s.reference_loss(42, 1.0).mean() > s.reference_loss(32, 1.0).mean()  # and keeps more
    calls = detector.calls
    again = build_segments([("a", _clip(13))], codec, detector, SETTINGS, cache_dir=tmp_path)
    assert detector.calls == calls  # from the cache
    np.testing.assert_array_equal(again[1].reference_bits[37], first[1].reference_bits[37])
    np.testing.assert_array_equal(again[0].objects[3].boxes, first[0].objects[3].boxes)


def test_segments_refuse_short_or_odd_clips(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="fewer than one episode"):
        build_segments([("short", _clip(3))], FakeClipCodec(), FakeVideoDetector(), SETTINGS, cache_dir=tmp_path)
    odd = [f[:-1] for f in _clip(6)]
    with pytest.raises(InvalidInputError, match="even"):
        build_segments([("odd", odd)], FakeClipCodec(), FakeVideoDetector(), SETTINGS, cache_dir=tmp_path)


def test_settings_actions_round_trip() -> None:
    s = VideoSettings()
    assert s.decode(s.reference_action) == (0, 0)
    for a in range(s.n_actions):
        assert s.action_of(*s.decode(a)) == a
    assert VideoSettings.from_dict(s.to_dict()) == s
    with pytest.raises(InvalidInputError):
        s.decode(s.n_actions)
    with pytest.raises(InvalidInputError, match="not an action"):
        s.action_of(9, 0)  # the default MDP fixes the frame offset
    with pytest.raises(InvalidInputError, match="reference coding"):
        VideoSettings(frame_offsets=(3, 6))
    # The reference cascade: 8 frames deep by default, the IDR frame 3 QP finer than the base.
    assert [s.cascade_offset(i) for i in range(9)] == [-3, 4, 3, 4, 2, 4, 3, 4, 0]
    hm = VideoSettings(cascade=(0, 2, 1, 2), idr=0)
    assert [hm.cascade_offset(i) for i in range(9)] == [0, 2, 1, 2, 0, 2, 1, 2, 0]
    assert [VideoSettings(cascade=(0,), idr=0).cascade_offset(i) for i in range(3)] == [0, 0, 0]
    # It restarts at every IDR frame; under random access it follows x265's B-frame layers instead.
    assert [s.cascade_offset(i, GopLayout(keyint=6)) for i in range(8)] == [-3, 4, 3, 4, 2, 4, -3, 4]
    ra = GopLayout(bframes=4, pyramid=True)
    assert [s.cascade_offset(i, ra) for i in range(7)] == [-3, 2, 2, 1, 2, 0, 2]
    assert [s.cascade_offset(i, GopLayout(keyint=1)) for i in range(3)] == [0, 0, 0]  # all-intra: nothing leans on it
    assert [VideoSettings(cascade=(0,), idr=0).cascade_offset(i, ra) for i in range(4)] == [0, 0, 0, 0]
    # Saved before the settings existed: uniform coding, no IDR offset, no ROI.
    earlier = VideoSettings(object_boosts=(0, 4, 8), cascade=(0,), idr=0, roi=0)
    old = {k: v for k, v in earlier.to_dict().items() if k not in ("cascade", "idr", "roi")}
    assert VideoSettings.from_dict(old) == earlier
    for bad in ((), (2, 0), (0, 13)):
        with pytest.raises(InvalidInputError, match="cascade"):
            VideoSettings(cascade=bad)
    for bad_settings in ({"roi": -1}, {"roi": 13}, {"idr": -13}, {"object_boosts": (-5, 0)}):
        with pytest.raises(InvalidInputError, match="roi"):
            VideoSettings(**bad_settings)  # type: ignore[arg-type]
    assert VideoSettings(roi=0, object_boosts=(0, 4)).roi == 0


def test_offsets_map_boosts_the_blocks_touching_objects() -> None:
    region = np.zeros((H, W), bool)
    region[20:30, 40:50] = True  # blocks rows 1, cols 2..3
    m = frame_offsets_map(region, (H, W), 3, 8, 32, 0, 16)
    assert m.shape == (6, 8)
    assert set(m[1, 2:4]) == {-5} and (m[0] == 3).all() and (m[:, :2] == 3).all()
    grown = frame_offsets_map(region, (H, W), 3, 8, 32, 16, 16)
    assert (grown == -5).sum() > (m == -5).sum()
    assert (frame_offsets_map(region, (H, W), 9, 0, 48, 0, 16) == 3).all()  # clipped at QP 51
    assert (frame_offsets_map(region, (H, W), 9, 0, 48, 0, 16, clip=False) == 9).all()  # a policy's answer
    assert (frame_offsets_map(None, (H, W), 0, 8, 32, 0, 16) == 0).all()
    ctus = frame_offsets_map(region, (H, W), 3, 8, 32, 0)  # the default: one offset per CTU
    assert ctus.tolist() == [[-5, 3], [3, 3]]
    # The reference's ROI: objects D finer than the frame, the rest D coarser; the boost moves the objects only.
    roi = frame_offsets_map(region, (H, W), 3, 0, 32, 0, 16, roi=4)
    assert set(roi[1, 2:4]) == {-1} and (roi[0] == 7).all() and ((roi == -1).sum(), (roi == 7).sum()) == (2, 46)
    assert set(frame_offsets_map(region, (H, W), 3, -4, 32, 0, 16, roi=4)[1, 2:4]) == {3}
    assert (frame_offsets_map(None, (H, W), 0, 0, 32, 0, 16, roi=4) == 4).all()


def test_frame_loss_grades_objects_and_false_detections() -> None:
    ref = TaskOutput.objects(np.array([[10, 10, 50, 50]]), np.array([0.9]), np.array([0]))
    assert frame_loss(ref, ref, (H, W), 1.0) == pytest.approx(0.0)
    lost = TaskOutput.objects(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    assert frame_loss(ref, lost, (H, W), 1.0) == pytest.approx(1.0)
    shifted = TaskOutput.objects(np.array([[14, 14, 54, 54]]), np.array([0.9]), np.array([0]))
    assert 0 < frame_loss(ref, shifted, (H, W), 1.0) < 1  # loose box: some IoU thresholds fail
    false = TaskOutput.objects(np.array([[10, 10, 50, 50], [70, 60, 90, 90]]), np.array([0.9, 0.5]), np.array([0, 0]))
    assert frame_loss(ref, false, (H, W), 1.0) == pytest.approx(0.5)
    assert frame_loss(ref, false, (H, W), 0.0) == pytest.approx(0.0)


def test_check_env_and_registered_id(segments: list) -> None:  # type: ignore[type-arg]
    env = _env(segments)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, warn=True)
    made = gym.make(envs.VIDEO_ENV_ID, segments=segments, codec=FakeClipCodec(), detector=FakeVideoDetector(),
                    settings=SETTINGS)  # fmt: skip
    obs, info = made.reset(seed=1)
    assert obs.shape == (VIDEO_OBS_DIM,) == (len(VIDEO_OBS_NAMES),)
    assert info["base_qp"] in SETTINGS.base_qps


def test_reference_coding_follows_the_cascade(tmp_path: Path) -> None:
    detector, codec = FakeVideoDetector(), FakeClipCodec()
    flat = replace(SETTINGS, cascade=(0,), idr=0, roi=0, object_boosts=(0, 4))
    hm = replace(flat, cascade=(0, 2, 1, 2))
    cascaded = build_segments([("a", _clip(6))], codec, detector, hm, cache_dir=tmp_path)[0]
    uniform = build_segments([("a", _clip(6))], codec, detector, flat, cache_dir=tmp_path)[0]
    a, b = cascaded.reference_bits[37], uniform.reference_bits[37]
    assert a[0] == b[0]  # the IDR frame at the base in both
    assert a[1] < b[1] and a[2] < b[2]  # frames 1 and 2 are 2 and 1 QP coarser in the cascade
    assert len(list(tmp_path.iterdir())) == 2  # one table each: the cascade is part of the key
    # The IDR offset and the ROI part are the reference's too, and part of the key.
    finer_idr = build_segments([("a", _clip(6))], codec, detector, replace(hm, idr=-3), cache_dir=tmp_path)[0]
    assert finer_idr.reference_bits[37][0] > a[0]
    with_roi = build_segments([("a", _clip(6))], codec, detector, replace(hm, roi=4), cache_dir=tmp_path)[0]
    assert not np.array_equal(with_roi.reference_bits[37], a)
    assert len(list(tmp_path.iterdir())) == 4


def test_the_reference_action_scores_zero_at_every_step(segments: list) -> None:  # type: ignore[type-arg]
    env = _env(segments)
    for base in SETTINGS.base_qps:
        env.reset(options={"segment": 0, "base_qp": base})
        done, steps = False, 0
        while not done:
            _, r, done, trunc, info = env.step(SETTINGS.reference_action)
            assert r == 0.0 and info["d_bits"] == 0 and info["d_loss"] == 0.0 and not trunc
            steps += 1
        assert steps == SETTINGS.episode_frames


def test_state_is_carried_from_frame_to_frame(segments: list) -> None:  # type: ignore[type-arg]
    env = _env(segments)
    idx = {n: i for i, n in enumerate(VIDEO_OBS_NAMES)}
    obs, _ = env.reset(options={"segment": 0, "base_qp": 37})
    assert obs[idx["first_frame"]] == 1 and obs[idx["change"]] == 0 and obs[idx["last_offset"]] == 0
    obs, *_ = env.step(SETTINGS.action_of(6, 4))
    scale = 9.0  # the largest |offset| or boost of SETTINGS
    assert obs[idx["first_frame"]] == 0
    assert obs[idx["change"]] > 0  # the square moved
    assert obs[idx["last_offset"]] == pytest.approx(6 / scale) and obs[idx["last_boost"]] == pytest.approx(4 / scale)
    assert obs[idx["since_refresh"]] == pytest.approx(1 / 8)
    obs, *_ = env.step(SETTINGS.action_of(9, 0))
    assert obs[idx["recent_offset"]] == pytest.approx(7.5 / scale) and obs[idx["since_refresh"]] == pytest.approx(2 / 8)
    obs, *_ = env.step(SETTINGS.action_of(0, 0))
    assert obs[idx["since_refresh"]] == 0


def test_the_frame_offset_moves_by_at_most_max_step(segments: list) -> None:  # type: ignore[type-arg]
    steady = replace(SETTINGS, max_step=3)
    assert VideoSettings().max_step == 3
    env = VideoQPEnv(segments, FakeClipCodec(), FakeVideoDetector(), steady)
    env.reset(options={"segment": 0, "base_qp": 37})
    used = [env.step(steady.action_of(f, 0))[4]["frame_offset"] for f in (9, -3, -3, 9, 9, 0)]
    assert used == [9, 6, 3, 6, 9, 6]  # the first frame is free, then 3 QP steps a frame at most
    with pytest.raises(InvalidInputError, match="max_step"):
        VideoSettings(max_step=0)
    with pytest.raises(InvalidInputError, match="block"):
        VideoSettings(block=32)


def test_a_decision_covers_decision_interval_frames(segments: list) -> None:  # type: ignore[type-arg]
    """One step codes the frames up to the next decision with one action; its reward is their rewards' mean."""
    held = replace(SETTINGS, decision_interval=4)
    env, per_frame = VideoQPEnv(segments, FakeClipCodec(), FakeVideoDetector(), held), _env(segments)
    action = SETTINGS.action_of(3, 4)
    env.reset(options={"segment": 0, "base_qp": 37})
    per_frame.reset(options={"segment": 0, "base_qp": 37})
    rewards, infos = zip(*[(r, i) for _, r, _, _, i in (per_frame.step(action) for _ in range(6))], strict=True)
    obs, r, done, _, info = env.step(action)
    assert not done and info["frames"] == 4 and r == pytest.approx(np.mean(rewards[:4]))
    assert info["d_bits"] == sum(i["d_bits"] for i in infos[:4]) and info["boost"] == 4
    idx = {n: i for i, n in enumerate(VIDEO_OBS_NAMES)}
    assert obs[idx["last_boost"]] == pytest.approx(4 / 9)  # the held frames were recorded
    assert obs[idx["change"]] > 0  # against frame 3, the last one coded
    obs, r, done, _, info = env.step(action)  # the episode's last 2 frames
    assert done and info["frames"] == 2 and r == pytest.approx(np.mean(rewards[4:]))
    env.reset(options={"segment": 0, "base_qp": 42})
    assert [env.step(held.reference_action)[1] for _ in range(2)] == [0.0, 0.0]
    assert VideoSettings().decisions(32) == 4 and held.decisions(6) == 2
    with pytest.raises(InvalidInputError, match="decision_interval"):
        VideoSettings(decision_interval=0)
    # Saved before the setting existed: a decision every frame.
    old = {k: v for k, v in VideoSettings().to_dict().items() if k != "decision_interval"}
    assert VideoSettings.from_dict(old).decision_interval == 1


def test_a_carried_frame_leaves_the_same_state_as_an_observed_one() -> None:
    frames, region = _clip(5), np.zeros((H, W), bool)
    region[30:60, 10:40] = True
    boxes = np.array([[10, 30, 40, 60]], np.float32)
    every, carried = VideoObserver(SETTINGS), VideoObserver(SETTINGS)
    for i, f in enumerate(frames[:-1]):
        every.observe(f, region, boxes, 37)
        if i in (1, 2):
            carried.carry(f, region, boxes)
        else:
            carried.observe(f, region, boxes, 37)
        np.testing.assert_array_equal(carried.touched, every.touched)
        every.record(3, 4)
        carried.record(3, 4)
    last = frames[-1]
    np.testing.assert_array_equal(carried.observe(last, region, boxes, 37), every.observe(last, region, boxes, 37))


def test_video_hyperparameters_keep_the_updates_per_frame() -> None:
    from semrl.agent.config import TrainConfig
    from semrl.agent.video import _hyperparameters

    config = TrainConfig(task="detection", data="fake", algorithm="dqn", timesteps=80, mdp="video")
    every, held = (_hyperparameters(config, VideoSettings(decision_interval=k)) for k in (1, 8))
    assert (every["learning_starts"], every["gradient_steps"], every["target_update_interval"]) == (64, 2, 250)
    assert (held["learning_starts"], held["gradient_steps"], held["target_update_interval"]) == (8, 16, 31)


def test_a_frame_is_credited_with_the_frames_that_reference_it(segments: list) -> None:  # type: ignore[type-arg]
    """A coarse first frame makes the next, uniformly coded, frame cost more: its reward falls."""
    env = _env(segments)
    env.reset(options={"segment": 0, "base_qp": 32})
    *_, info0 = env.step(SETTINGS.action_of(9, 0))
    assert info0["d_bits"] < 0 and info0["d_loss"] > 0  # cheaper and worse itself
    _, r1, *_, info1 = env.step(SETTINGS.reference_action)
    assert info1["d_bits"] > 0  # the next frame predicts from a worse reference
    assert r1 < 0


def test_reset_refuses_an_unknown_base_qp(segments: list) -> None:  # type: ignore[type-arg]
    env = _env(segments)
    with pytest.raises(InvalidInputError, match="base QP"):
        env.reset(options={"base_qp": 33})
    with pytest.raises(InvalidInputError, match="reset"):
        VideoQPEnv(segments, FakeClipCodec(), FakeVideoDetector(), SETTINGS).step(0)


def test_observer_refuses_record_before_observe() -> None:
    with pytest.raises(InvalidInputError):
        VideoObserver(SETTINGS).record(0, 0)


def test_trained_video_policy_loads_and_matches_the_env(segments: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Train a tiny policy on fakes, load it by path, and check it decides per frame as the env's observer sees it."""
    from semrl.agent.config import TrainConfig
    from semrl.agent.resolve import resolve_policy
    from semrl.agent.video import VideoPolicy, train_video
    from semrl.codec import Yuv420
    from semrl.policy import PolicyInput, apply_offsets, needs_rgb, offset_block, policy_offsets

    clips = [("a", _clip(12, 0))]
    config = TrainConfig(task="detection", data="fake", algorithm="dqn", timesteps=80, mdp="video")
    checkpoint, summary = train_video(config, tmp_path / "run", sources=[], progress=False, codec=FakeClipCodec(),
                                      detector=FakeVideoDetector(), clips=clips, settings=SETTINGS,
                                      cache_dir=tmp_path / "cache")  # fmt: skip
    assert summary["segments"] == 2 and summary["timesteps"] == summary["frames_coded"] == 80
    policy = resolve_policy(str(checkpoint), task="detection")
    assert isinstance(policy, VideoPolicy) and offset_block(policy) == 16 and policy.frame_level
    with pytest.raises(PolicyMismatchError, match="detection"):
        resolve_policy(str(checkpoint), task="segmentation")
    from semrl.agent.checkpoint import load_checkpoint_policy

    with pytest.raises(PolicyMismatchError, match="video policy"):
        load_checkpoint_policy(checkpoint)

    frames, state = _clip(6, 0), {}
    observer = VideoObserver(SETTINGS)
    region = np.zeros((H, W), bool)
    region[30:60, 10:40] = True
    boxes = np.array([[10, 30, 40, 60]], np.float32)
    for i, f in enumerate(frames):
        offsets = apply_offsets(policy, PolicyInput(f, 37, (2, 2), region, boxes, i, state))
        assert offsets.shape == (6, 8)
        obs = observer.observe(f, region, boxes, 37)
        frame_offset, boost = SETTINGS.decode(policy.act(obs))
        frame_offset = observer.steady(frame_offset)
        observer.record(frame_offset, boost)
        coded = frame_offset + SETTINGS.cascade_offset(i)  # over the reference cascade, with its ROI
        expected = frame_offsets_map(region, (H, W), coded, boost, 37, 16, 16, roi=SETTINGS.roi)
        np.testing.assert_array_equal(offsets, expected)
    # A later IDR frame starts a fresh state, as a training episode does; the frames after it carry it.
    idr_state: dict[str, object] = {}
    observers = []
    for i, f in enumerate(frames):
        apply_offsets(policy, PolicyInput(f, 37, (2, 2), region, boxes, i, idr_state, gop=GopLayout(keyint=3)))
        observers.append(idr_state[OBSERVER_KEY])
    assert [o is observers[0] for o in observers] == [True, True, True, False, False, False]
    assert observers[3] is observers[4] is observers[5]
    # Under random access the same decisions go over the B-frame layers.
    ra, ra_state = GopLayout(bframes=4, pyramid=True), {}
    observer = VideoObserver(SETTINGS)
    for i, f in enumerate(frames):
        offsets = apply_offsets(policy, PolicyInput(f, 37, (2, 2), region, boxes, i, ra_state, gop=ra))
        frame_offset, boost = SETTINGS.decode(policy.act(observer.observe(f, region, boxes, 37)))
        frame_offset = observer.steady(frame_offset)
        observer.record(frame_offset, boost)
        coded = frame_offset + (SETTINGS.idr, 2, 2, 1, 2, 0)[i]
        expected = frame_offsets_map(region, (H, W), coded, boost, 37, 16, 16, roi=SETTINGS.roi)
        np.testing.assert_array_equal(offsets, expected)

    # A decision every 3rd frame from the IDR frame: the net runs there only, the frames between keep it.
    policy.settings = replace(SETTINGS, decision_interval=3)
    act, calls = policy.act, []
    policy.act = lambda obs: calls.append(obs) or act(obs)  # type: ignore[method-assign]
    held_state: dict[str, object] = {}
    gop = GopLayout(keyint=4)
    held_maps = [apply_offsets(policy, PolicyInput(f, 37, (2, 2), region, boxes, i, held_state, gop=gop))
                 for i, f in enumerate(frames)]  # fmt: skip
    assert len(calls) == 3  # frames 0 and 3, and the IDR frame 4
    decided = [act(obs) for obs in calls]
    for i, (m, a) in enumerate(zip(held_maps, [decided[k] for k in (0, 0, 0, 1, 2, 2)], strict=True)):
        frame_offset, boost = SETTINGS.decode(a)
        coded = frame_offset + SETTINGS.cascade_offset(i, gop)
        np.testing.assert_array_equal(m, frame_offsets_map(region, (H, W), coded, boost, 37, 16, 16, roi=SETTINGS.roi))
    policy.act = act  # type: ignore[method-assign]
    # benchmarks/video_steadiness.py reads the boost decided for each frame: held within a decision.
    from benchmark_scripts import load_benchmark

    from semrl.bench.tasknet import Analysis
    from semrl.codec import EncoderConfig

    steadiness = load_benchmark("video_steadiness")
    analysis = Analysis([region] * 6, [boxes] * 6, [np.zeros(1, np.int64)] * 6, [np.ones(1, np.float32)] * 6)
    held = steadiness.boosts(policy, [Yuv420.from_rgb(f) for f in frames], analysis, 37, EncoderConfig(W, H, qp=37))
    assert len(held) == 6 and held[0] == held[1] == held[2] and held[3] == held[4] == held[5]
    policy.settings = SETTINGS

    # Outside the base QPs it trained at (32-42 here) the net is not asked: it codes as its reference.
    from semrl.agent.video import ReferenceVideoPolicy

    assert policy.trained_base_qps == (32, 42)
    reference = ReferenceVideoPolicy(SETTINGS)
    policy.act = lambda obs: 0 if SETTINGS.reference_action else 1  # type: ignore[method-assign]
    for base in (22, 31, 43, 51):
        ours_state: dict[str, object] = {}
        reference_state: dict[str, object] = {}
        for i, f in enumerate(frames):
            np.testing.assert_array_equal(
                apply_offsets(policy, PolicyInput(f, base, (2, 2), region, boxes, i, ours_state)),
                apply_offsets(reference, PolicyInput(f, base, (2, 2), region, boxes, i, reference_state)),
            )
    # Near QP 51 its answer is left unclipped (apply_offsets clips it): the rate controller tells the levels apart.
    near_51: dict[str, object] = {}
    answers = [policy_offsets(reference, PolicyInput(f, 51, (2, 2), region, boxes, i, near_51))
               for i, f in enumerate(frames)]  # fmt: skip
    assert len({int(np.median(a)) for a in answers}) > 1 and max(int(a.max()) for a in answers) > 0
    inside_state: dict[str, object] = {}
    inside = apply_offsets(policy, PolicyInput(frames[1], 37, (2, 2), region, boxes, 0, inside_state))
    outside = apply_offsets(reference, PolicyInput(frames[1], 37, (2, 2), region, boxes, 0, {}))
    assert not np.array_equal(inside, outside)  # inside, the (here never-reference) action is taken
    policy.act = act  # type: ignore[method-assign]

    # The encoder's side: from the YUV picture's luma, with no RGB (needs_rgb False), the same decisions.
    assert not needs_rgb(policy)
    by_rgb: dict[str, object] = {}
    by_luma: dict[str, object] = {}
    rgb_observer, luma_observer = VideoObserver(SETTINGS), VideoObserver(SETTINGS)
    empty = np.zeros((H, W, 0), np.uint8)
    for i, f in enumerate(frames):
        picture = Yuv420.from_rgb(f)
        rgb, luma = picture.to_rgb(), picture.luma()
        a = apply_offsets(policy, PolicyInput(rgb, 37, (2, 2), region, boxes, i, by_rgb))
        b = apply_offsets(policy, PolicyInput(empty, 37, (2, 2), region, boxes, i, by_luma, luma=luma))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(luma_observer.observe(luma, region, boxes, 37),
                                   rgb_observer.observe(rgb, region, boxes, 37), atol=0.01)  # fmt: skip
        luma_observer.record(0, 0)
        rgb_observer.record(0, 0)


def test_a_region_given_again_keeps_its_blocks_and_codes_as_a_fresh_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # semrl encode gives the frames between two analyses the same region: its blocks are found once
    import envs.video as video_env
    from semrl.agent.video import VideoCoding
    from semrl.policy import PolicyInput

    class Watching(VideoCoding):  # decides from what it observes, so the observations must agree too
        def act(self, obs: np.ndarray) -> int:
            return int(abs(obs).sum() * 7) % self.settings.n_actions

    coding = Watching(SETTINGS, "detection", "test")
    frames, region = _clip(10), np.zeros((H, W), bool)
    region[30:60, 10:40] = True
    boxes = np.array([[10, 30, 40, 60]], np.float32)
    found: list[int] = []
    roi_blocks = video_env.roi_blocks
    monkeypatch.setattr(video_env, "roi_blocks", lambda *a, **k: found.append(1) or roi_blocks(*a, **k))

    def code(regions: list[np.ndarray]) -> list[np.ndarray]:
        state: dict[str, object] = {}
        inputs = (
            PolicyInput(frame=f, base_qp=37, ctu_shape=(2, 2), region=r, boxes=boxes, frame_index=i, state=state)
            for i, (f, r) in enumerate(zip(frames, regions, strict=True))
        )
        return [coding(one) for one in inputs]

    shared = code([region] * 5 + [region.copy()] * 5)  # two analyses
    assert len(found) == 2
    found.clear()
    copies = code([region.copy() for _ in frames])
    assert len(found) == len(frames)
    for a, b in zip(shared, copies, strict=True):
        np.testing.assert_array_equal(a, b)

"""One-step improvement over the video reference, fitted to measured deviations (semrl.agent.deviation), on fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_video_env import H, W, _clip  # the same smooth clips with a moving square

from envs.codecs import FakeClipCodec
from envs.video import VIDEO_OBS_DIM, VIDEO_OBS_NAMES, VideoQPEnv, VideoSettings, build_segments
from semrl.agent.deviation import (
    HISTORY,
    Deviations,
    choose_margin,
    collect_deviations,
    fit_q_net,
    gains,
    oracle_gain,
    predict,
)
from semrl.errors import InvalidInputError
from semrl.semantics.fakes import FakeVideoDetector

SETTINGS = VideoSettings(object_boosts=(-4, 0, 4, 8), episode_frames=4, base_qps=(32, 42), block=16,
                         decision_interval=2)  # fmt: skip
COVERAGE = VIDEO_OBS_NAMES.index("coverage")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> VideoQPEnv:
    clips = [("a", _clip(8, 0)), ("b", _clip(4, 1))]
    segments = build_segments(clips, FakeClipCodec(), FakeVideoDetector(), SETTINGS,
                              cache_dir=tmp_path_factory.mktemp("tables"))  # fmt: skip
    return VideoQPEnv(segments, FakeClipCodec(), FakeVideoDetector(), SETTINGS)


def test_every_departure_is_measured_by_its_own_rollout(env: VideoQPEnv) -> None:
    found = collect_deviations(env, [0, 0, 1])
    decisions = SETTINGS.decisions(SETTINGS.episode_frames)
    assert len(found) == 3 * len(SETTINGS.base_qps) * decisions * (SETTINGS.n_actions - 1)
    assert SETTINGS.reference_action not in set(found.action.tolist())
    assert found.clip.tolist().count(1) == len(found) // 3
    # One row by hand: boost 8 at the second decision of segment 1, base QP 42.
    row = np.flatnonzero((found.segment == 1) & (found.base_qp == 42) & (found.step == 1)
                         & (found.action == SETTINGS.action_of(0, 8)))  # fmt: skip
    assert len(row) == 1
    obs, _ = env.reset(options={"segment": 1, "base_qp": 42})
    obs, r0, *_ = env.step(SETTINGS.reference_action)
    assert r0 == 0.0  # the reference's prefix scores exactly 0
    np.testing.assert_array_equal(found.obs[row[0]], obs)
    _, r1, done, *_ = env.step(SETTINGS.action_of(0, 8))
    assert done and found.advantage[row[0]] == pytest.approx(r1) and r1 != 0.0
    # A departure at the first decision is credited with the later frames that lean on it.
    first = (found.segment == 0) & (found.step == 0) & (found.base_qp == 42)
    env.reset(options={"segment": 0, "base_qp": 42})
    action = int(found.action[first][0])
    _, a0, *_ = env.step(action)
    _, a1, *_ = env.step(SETTINGS.reference_action)
    assert a1 != 0.0
    assert found.advantage[first][0] == pytest.approx(a0 + SETTINGS.gamma * a1)


def _synthetic(n_states: int = 240, seed: int = 0) -> Deviations:
    """Boost 8 pays +1 where coverage > 0.5 and costs 1 elsewhere; the others cost 0.5; 3 clips of 2 segments."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n_states, VIDEO_OBS_DIM)).astype(np.float32)
    boost8 = SETTINGS.action_of(0, 8)
    others = [a for a in range(SETTINGS.n_actions) if a != SETTINGS.reference_action]
    rows = [(i, a, (1.0 if obs[i, COVERAGE] > 0.5 else -1.0) if a == boost8 else -0.5) for i in range(n_states)
            for a in others]  # fmt: skip
    idx = np.array([r[0] for r in rows])
    return Deviations(obs[idx], np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), idx % 3, idx % 6,
                      np.full(len(idx), 32), idx // 6)  # fmt: skip


def _q_net() -> object:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(VIDEO_OBS_DIM, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


def test_fitted_net_departs_where_the_departure_paid_and_reads_no_history() -> None:
    import torch

    data = _synthetic()
    net = _q_net()
    fit_q_net(net, data, SETTINGS.reference_action, margin=0.2)
    probe = np.zeros((2, VIDEO_OBS_DIM), np.float32)
    probe[:, COVERAGE] = [0.9, -0.9]
    with torch.no_grad():
        q = net(torch.from_numpy(probe)).numpy()  # type: ignore[operator]
    assert (q[:, SETTINGS.reference_action] == 0.0).all()  # exactly: the reference row is held at 0
    assert q[0].argmax() == SETTINGS.action_of(0, 8) and q[1].argmax() == SETTINGS.reference_action
    first = net[0].weight.detach().numpy()  # type: ignore[index]
    for name in HISTORY:
        assert (first[:, VIDEO_OBS_NAMES.index(name)] == 0).all()
    # The margin lowers every other action's Q by exactly its size.
    plain = _q_net()
    fit_q_net(plain, data, SETTINGS.reference_action, margin=0.0)
    with torch.no_grad():
        q0 = plain(torch.from_numpy(probe)).numpy()  # type: ignore[operator]
    np.testing.assert_allclose(np.delete(q0 - q, SETTINGS.reference_action, axis=1), 0.2, atol=1e-5)


def test_gains_score_the_measured_advantage_of_what_the_policy_picks() -> None:
    # Two decisions, three departures each: measured advantages and predictions by hand.
    data = Deviations(np.zeros((6, VIDEO_OBS_DIM), np.float32), np.array([0, 2, 3, 0, 2, 3]),
                      np.array([0.3, -0.2, 0.5, -0.1, -0.4, -0.3]), np.zeros(6, np.int64),
                      np.array([0, 0, 0, 1, 1, 1]), np.full(6, 32), np.zeros(6, np.int64))  # fmt: skip
    predicted = np.array([0.4, 0.1, 0.2, 0.3, -1.0, -1.0])
    assert gains(predicted, data, 0.0) == pytest.approx((0.3 - 0.1) / 2)  # picks action 0 twice
    assert gains(predicted, data, 0.35) == pytest.approx(0.3 / 2)  # the second no longer clears the margin
    assert gains(predicted, data, 1.0) == 0.0  # the reference everywhere
    assert oracle_gain(data) == pytest.approx(0.5 / 2)


def test_margin_is_chosen_on_clips_left_out() -> None:
    data = _synthetic()
    margin, report = choose_margin(_q_net, data, SETTINGS.reference_action)
    assert margin in (float(m) for m in report["left_out_gain"])
    assert report["left_out_gain"][str(margin)] == max(report["left_out_gain"].values()) > 0
    assert report["oracle_gain"] >= report["left_out_gain"][str(margin)]
    assert report["spearman"] > 0.5
    assert report["left_out"] == "clip"
    # Where no departure pays on the clips left out, the policy never departs: the reference coding.
    costly = Deviations(*(getattr(data, f) for f in ("obs", "action")), -np.abs(data.advantage) - 0.1,
                        data.clip, data.segment, data.base_qp, data.step)  # fmt: skip
    never, report = choose_margin(_q_net, costly, SETTINGS.reference_action)
    assert never is None and max(report["left_out_gain"].values()) <= 0
    net = _q_net()
    fit_q_net(net, data, SETTINGS.reference_action, margin=never)
    assert (predict(net, data) < -1e5).all()
    one_clip = data.subset(data.clip == 0)
    assert choose_margin(_q_net, one_clip, SETTINGS.reference_action)[1]["left_out"] == "segment"
    with pytest.raises(InvalidInputError, match="2 segments"):
        choose_margin(_q_net, one_clip.subset(one_clip.segment == 0), SETTINGS.reference_action)


def test_deviations_round_trip(tmp_path: Path) -> None:
    data = _synthetic(12)
    data.save(tmp_path / "d.npz")
    back = Deviations.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.advantage, data.advantage)
    np.testing.assert_array_equal(back.obs, data.obs)
    assert len(Deviations.concatenate([data, back])) == 2 * len(data)
    np.testing.assert_array_equal(predict(_q_net(), data).shape, (len(data),))


def test_deviation_trains_a_video_policy_that_loads_as_any(tmp_path: Path) -> None:
    from semrl.agent.config import TrainConfig
    from semrl.agent.resolve import resolve_policy
    from semrl.agent.train import train
    from semrl.agent.video import DEVIATIONS_NAME, VideoPolicy, train_video

    config = TrainConfig(task="detection", data="fake", algorithm="deviation", mdp="video")
    clips = [("a", _clip(8, 0)), ("b", _clip(4, 1))]
    checkpoint, summary = train_video(config, tmp_path / "run", sources=[], progress=False, codec=FakeClipCodec(),
                                      detector=FakeVideoDetector(), clips=clips, settings=SETTINGS,
                                      cache_dir=tmp_path / "cache")  # fmt: skip
    assert summary["rollouts"] == 36 and summary["frames_coded"] == 36 * SETTINGS.episode_frames
    assert summary["deviation"]["margin"] in (None, 0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
    assert len(Deviations.load(tmp_path / "run" / DEVIATIONS_NAME)) == 36
    policy = resolve_policy(str(checkpoint), task="detection")
    assert isinstance(policy, VideoPolicy) and policy.config.train["algorithm"] == "deviation"
    assert policy.config.algorithm == "dqn"  # the network's format
    from benchmark_scripts import load_benchmark

    script = load_benchmark("video_deviations")
    assert script.main([str(tmp_path / "run"), "--output", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "36 rollouts" in text and "| all |" in text and "margin chosen" in text
    assert script.main([str(tmp_path)]) == 2  # not a deviation run
    with pytest.raises(InvalidInputError, match="--algo deviation trains the video policy"):
        train(TrainConfig(task="detection", algorithm="deviation", mdp="image"), tmp_path / "pictures",
              pictures=[])  # fmt: skip


def test_calibrated_reference_takes_the_clips_best_boost_per_base_qp() -> None:
    from benchmark_scripts import load_benchmark

    from envs.video import frame_offsets_map
    from semrl.codec import GopLayout
    from semrl.policy import PolicyInput, apply_offsets

    script = load_benchmark("video_deviations")
    # Clip 0: at base QP 32 boost +4 pays on average over its two segments, at 42 nothing does.
    b4, b8, give = (SETTINGS.action_of(0, b) for b in (4, 8, -4))
    zeros = np.zeros(6, np.int64)
    data = Deviations(np.zeros((6, VIDEO_OBS_DIM), np.float32), np.array([b4, b4, b8, give, b4, b8]),
                      np.array([0.5, -0.1, -0.3, -0.2, -0.1, -0.4]), zeros, np.array([0, 1, 0, 0, 0, 0]),
                      np.array([32, 32, 32, 42, 42, 42]), zeros)  # fmt: skip
    assert script.best_boosts(data, SETTINGS) == {0: {32: 4, 42: 0}}

    policy = load_benchmark("video_calibrated").ClipCalibrated(
        [{"clip": "a", "size": [H, W], "boost": {"32": 4, "42": 0}}], SETTINGS
    )
    region = np.zeros((H, W), bool)
    region[30:60, 10:40] = True
    boxes = np.array([[10, 30, 40, 60]], np.float32)
    for base, boost in ((32, 4), (42, 0), (37, 0)):
        got = apply_offsets(policy, PolicyInput(_clip(1, 0)[0], base, (2, 2), region, boxes, 0, {}, gop=GopLayout()))
        want = frame_offsets_map(region, (H, W), SETTINGS.cascade_offset(0), boost, base, SETTINGS.dilation,
                                 SETTINGS.block, roi=SETTINGS.roi)  # fmt: skip
        np.testing.assert_array_equal(got, want)
    other = np.zeros((H + 2, W, 3), np.uint8)  # another clip: the reference
    got = apply_offsets(policy, PolicyInput(other, 32, (2, 2), None, np.zeros((0, 4), np.float32), 0, {}))
    want = frame_offsets_map(None, (H + 2, W), SETTINGS.cascade_offset(0), 0, 32, SETTINGS.dilation, SETTINGS.block,
                             roi=SETTINGS.roi)  # fmt: skip
    np.testing.assert_array_equal(got, want)


def test_runs_pool_into_one_set_and_fit_one_policy(tmp_path: Path) -> None:
    import json
    from dataclasses import replace

    from benchmark_scripts import load_benchmark

    from semrl.agent.config import TrainConfig
    from semrl.agent.resolve import resolve_policy
    from semrl.agent.video import VideoPolicy, train_video

    config = TrainConfig(task="detection", data="fake", algorithm="deviation", mdp="video")
    runs = (("one", [("a", _clip(8, 0)), ("b", _clip(4, 1))], SETTINGS),
            ("two", [("c", _clip(4, 2)), ("d", _clip(4, 3))], SETTINGS),
            ("other", [("e", _clip(4, 4)), ("f", _clip(4, 5))], replace(SETTINGS, idr=-2)))  # fmt: skip
    for name, clips, settings in runs:
        train_video(config, tmp_path / name, sources=[], progress=False, codec=FakeClipCodec(),
                    detector=FakeVideoDetector(), clips=clips, settings=settings,
                    cache_dir=tmp_path / "cache")  # fmt: skip
    script = load_benchmark("video_deviations")
    deviations, sources, _ = script.pool([tmp_path / "one", tmp_path / "two"])
    assert [s.name for s in sources] == ["a", "b", "c", "d"] and sorted(set(deviations.clip.tolist())) == [0, 1, 2, 3]
    assert len(set(deviations.segment.tolist())) == 5 and len(deviations) == 5 * 12
    folders = [str(tmp_path / "one"), str(tmp_path / "two")]
    assert script.main([*folders, "--fit", str(tmp_path / "pooled"), "--output", str(tmp_path / "report")]) == 0
    policy = resolve_policy(str(tmp_path / "pooled" / "ckpt.zip"), task="detection")
    assert isinstance(policy, VideoPolicy) and policy.config.data["source"] == ["a", "b", "c", "d"]
    assert json.loads((tmp_path / "pooled" / "timing.json").read_text())["rollouts"] == 60
    assert script.main([*folders, "--fit", str(tmp_path / "pooled")]) == 2  # never over a checkpoint
    assert script.main([folders[0], str(tmp_path / "other")]) == 2  # another MDP

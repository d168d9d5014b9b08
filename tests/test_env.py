"""The SemanticQP environment with the fake codec and fake semantics (fast), and live mode with fakes."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

import envs
from envs.codecs import CodedPicture, FakeCodec
from envs.observation import OBS_DIM, OBS_NAMES
from envs.reward import RewardConfig, interpolated, task_to_mse_ratio
from envs.semantic_qp import EnvSettings, SemanticQPEnv, synthetic_pictures, synthetic_set
from envs.tables import DEFAULT_TABLE_QPS, CtuTable, build_tables, compute_table
from semrl.errors import InvalidInputError
from semrl.semantics.fakes import FakeExtractor


@pytest.fixture(scope="module")
def fake_set():  # type: ignore[no-untyped-def]
    return synthetic_set(3)


def _env(fake_set, mode: str = "fast", **kw) -> SemanticQPEnv:  # type: ignore[no-untyped-def]
    pictures, tables, codec, extractor = fake_set
    return SemanticQPEnv(tables, mode=mode, pictures=pictures, codec=codec, extractor=extractor, **kw)


@pytest.mark.parametrize("task", ["detection", "segmentation", "classification"])
def test_check_env_is_clean(task: str) -> None:
    pictures, tables, codec, extractor = synthetic_set(2, task)
    env = SemanticQPEnv(tables, pictures=pictures, codec=codec, extractor=extractor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, warn=True)


def test_registered_id_builds_the_env() -> None:
    env = gym.make(envs.ENV_ID)
    obs, info = env.reset(seed=3)
    assert obs.shape == (OBS_DIM,) == (len(OBS_NAMES),)
    assert env.observation_space.contains(obs)
    assert info["ctus"] == 12  # 192x256 synthetic pictures: 3 x 4 CTUs


def _rollout(env: SemanticQPEnv, seed: int, steps: int = 200) -> tuple[list[np.ndarray], list[float]]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset()
            observations.append(obs)
    return observations, rewards


def test_seeded_runs_are_identical(fake_set) -> None:  # type: ignore[no-untyped-def]
    a = _rollout(_env(fake_set), 7)
    b = _rollout(_env(fake_set), 7)
    c = _rollout(_env(fake_set), 8)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert a[1] == b[1]
    assert a[1] != c[1]


def test_uniform_coding_scores_zero_and_episode_ends_after_last_ctu(fake_set) -> None:  # type: ignore[no-untyped-def]
    env = _env(fake_set)
    zero = int(np.flatnonzero(env.offsets == 0)[0])
    _, info = env.reset(seed=0, options={"picture": 1, "base_qp": 32})
    total, steps, term = 0.0, 0, False
    while not term:
        _, r, term, trunc, final = env.step(zero)
        assert not trunc
        total += r
        steps += 1
    assert steps == info["ctus"]
    assert total == 0.0
    assert final["fast_return"] == 0.0
    assert np.array_equal(final["offsets"], np.zeros((3, 4), np.int32))
    assert final["bits_fast"] == pytest.approx(final["uniform_bits"])


def test_rewards_trade_bits_against_fidelity(fake_set) -> None:  # type: ignore[no-untyped-def]
    env = _env(fake_set)
    table = env.reward_table(0, 32)
    assert table.shape == (12, len(env.offsets))
    zero = int(np.flatnonzero(env.offsets == 0)[0])
    assert np.all(table[:, zero] == 0)
    heavier = _env(fake_set, settings=EnvSettings(reward=RewardConfig(rate_weight=4.0))).reward_table(0, 32)
    # a larger rate weight makes every bit-saving action (positive offset) relatively better
    pos = env.offsets > 0
    assert np.all(heavier[:, pos] >= table[:, pos] - 1e-6)
    assert np.any(heavier[:, pos] > table[:, pos])


def test_mse_share_prices_the_background(fake_set) -> None:  # type: ignore[no-untyped-def]
    from semrl.agent.config import TrainConfig
    from semrl.agent.train import env_settings

    tables = fake_set[1]
    for t in tables:  # the plain squared error grows with QP and covers the semantic-weighted one
        assert np.all(np.diff(t.mse.sum(axis=(1, 2))) > 0)
        assert np.all(t.mse >= t.dpix - 1e-9)
    ratio = task_to_mse_ratio(tables, 22, RewardConfig())
    assert ratio > 0
    assert env_settings(TrainConfig(mse_share=0.0), tables).reward.mse_weight == 0.0
    assert env_settings(TrainConfig(mse_share=0.5), tables).reward.mse_weight == pytest.approx(0.5 * ratio)
    free = _env(fake_set).reward_table(0, 32)
    priced = _env(fake_set, settings=EnvSettings(reward=RewardConfig(mse_weight=ratio))).reward_table(0, 32)
    # on background (no task output, so no task-term loss at any QP) coarser actions are free
    # until the squared error is priced
    background = (tables[0].dsem.sum(axis=0) + tables[0].dpix.sum(axis=0)).reshape(-1) == 0
    assert background.any()
    pos = _env(fake_set).offsets > 0
    assert np.all(priced[background][:, pos] < free[background][:, pos])


def test_interpolation_hits_the_table_at_table_qps(fake_set) -> None:  # type: ignore[no-untyped-def]
    table: CtuTable = fake_set[1][0]
    bits, fid = interpolated(table, DEFAULT_TABLE_QPS[0], RewardConfig(rise_weight=0.5))
    for k, q in enumerate(DEFAULT_TABLE_QPS):
        np.testing.assert_allclose(bits[q], table.bits[k].reshape(-1), rtol=1e-5)
        monotone = np.maximum.accumulate(table.dsem + 0.5 * table.rise + table.dpix, axis=0)[k].reshape(-1)
        np.testing.assert_allclose(fid[q], monotone, rtol=1e-5, atol=1e-9)
    assert np.all(np.diff(bits[DEFAULT_TABLE_QPS[0] :], axis=0) <= 1e-6)  # fewer bits at higher QP


def test_live_mode_reports_live_and_fast_returns(fake_set) -> None:  # type: ignore[no-untyped-def]
    env = _env(fake_set, mode="live")
    zero = int(np.flatnonzero(env.offsets == 0)[0])
    env.reset(seed=0, options={"picture": 0, "base_qp": 37})
    term, rewards = False, []
    while not term:
        _, r, term, _, info = env.step(zero)
        rewards.append(r)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert info["live_return"] == 0.0 == rewards[-1]  # uniform against the live uniform reference
    env.reset(seed=0, options={"picture": 0, "base_qp": 37})
    term = False
    while not term:
        _, r, term, _, info = env.step(5)  # +6 everywhere
    assert info["bits_live"] < info["uniform_bits_live"]
    assert r == pytest.approx(info["live_return"])
    # the fake codec's bits are per CTU, so the fast tables predict live bits up to interpolation
    assert info["bits_fast"] == pytest.approx(info["bits_live"], rel=0.05)
    assert len(info["live_ctu_rewards"]) == len(info["fast_ctu_rewards"]) == 12
    # other maps of the episode's picture, measured as the episode's own map is
    again, bits = env.live_rewards(info["offsets"])
    np.testing.assert_allclose(again, info["live_ctu_rewards"])
    assert bits.sum() == pytest.approx(info["bits_live"])
    one_back = info["offsets"].copy()
    one_back[0, 0] = 0
    changed, changed_bits = env.live_rewards(one_back)
    assert changed_bits.sum() > bits.sum()  # that CTU back at the base QP costs its bits again
    assert changed[0] != pytest.approx(again[0])
    uniform, _ = env.live_rewards(np.zeros_like(one_back))
    assert np.all(uniform == 0.0)
    with pytest.raises(InvalidInputError, match="live mode"):
        _env(fake_set).live_rewards(one_back)


def test_tables_are_cached(tmp_path: Path) -> None:
    calls = []

    class Counting(FakeCodec):
        def code(self, frame, base_qp, offsets=None):  # type: ignore[no-untyped-def]
            calls.append(base_qp)
            return super().code(frame, base_qp, offsets)

    pictures = synthetic_pictures(2)
    kw = {"codec_factory": Counting, "extractor_factory": FakeExtractor, "cache_dir": tmp_path, "progress": False}
    first = build_tables(pictures, **kw)  # type: ignore[arg-type]
    assert len(calls) == 2 * len(DEFAULT_TABLE_QPS)
    second = build_tables(pictures, **kw)  # type: ignore[arg-type]
    assert len(calls) == 2 * len(DEFAULT_TABLE_QPS)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.bits, b.bits)
        np.testing.assert_array_equal(a.dsem, b.dsem)
    other = build_tables(pictures, **{**kw, "qps": (22, 32, 42)})  # type: ignore[arg-type]
    assert other[0].bits.shape[0] == 3
    assert len(calls) == 2 * len(DEFAULT_TABLE_QPS) + 6


def test_fidelity_table_sees_the_task_output_change() -> None:
    """The fake detector's map ignores the picture, so only the pixel term changes, growing with QP."""
    picture = synthetic_pictures(1)[0]
    table = compute_table(picture, FakeCodec(), FakeExtractor("detection"), DEFAULT_TABLE_QPS)
    per_qp = table.dpix.sum(axis=(1, 2))
    assert np.all(np.diff(per_qp) > 0)
    assert np.all(table.dsem == 0) and np.all(table.rise == 0)  # the fake boxes ignore the picture


def test_a_table_can_grade_the_objects_against_labels() -> None:
    """Against the net's own output the fake (picture-blind) detector loses nothing; against labels it misses."""
    from semrl.semantics.maps import TaskOutput

    picture = synthetic_pictures(1)[0]
    extractor = FakeExtractor("detection")
    own = compute_table(picture, FakeCodec(), extractor, DEFAULT_TABLE_QPS)
    assert np.all(own.dobj == 0) and np.all(own.fobj == 0)
    far = np.array([[1.0, 1.0, 9.0, 9.0]], np.float32)  # a labelled object where the fake finds nothing
    labels = TaskOutput(far, np.ones(1, np.float32), np.zeros(1, np.int64))
    graded = compute_table(picture, FakeCodec(), extractor, DEFAULT_TABLE_QPS, labels=labels)
    np.testing.assert_allclose(graded.dobj.sum(axis=(1, 2)), 1.0, rtol=1e-6)  # missed at every QP
    assert graded.dobj[:, 0, 0].min() > 0 and np.all(graded.dobj[:, 1:, :] == 0)  # in the CTU of its box
    assert np.all(graded.fobj.sum(axis=(1, 2)) > 0)  # the fake's detections match no label
    np.testing.assert_array_equal(graded.bits, own.bits)
    assert graded.reference is not None and own.reference is not None
    np.testing.assert_array_equal(graded.reference.boxes, own.reference.boxes)  # live mode keeps the net's


def test_invalid_arguments_are_refused(fake_set) -> None:  # type: ignore[no-untyped-def]
    pictures, tables, _codec, _extractor = fake_set
    with pytest.raises(InvalidInputError, match="mode"):
        SemanticQPEnv(tables, mode="turbo")
    with pytest.raises(InvalidInputError, match="live mode needs"):
        SemanticQPEnv(tables, mode="live")
    with pytest.raises(InvalidInputError, match="do not match"):
        SemanticQPEnv(tables, pictures=list(reversed(pictures)))
    with pytest.raises(InvalidInputError):
        EnvSettings(base_qps=(40, 30))
    env = SemanticQPEnv(tables)
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match="action"):
        env.step(99)
    with pytest.raises(InvalidInputError, match="out of range"):
        env.reset(options={"base_qp": 60})


def test_fake_codec_is_deterministic_and_follows_qp() -> None:
    frame = synthetic_pictures(1)[0].frame
    codec = FakeCodec()
    a, b = codec.code(frame, 30), codec.code(frame, 30)
    assert isinstance(a, CodedPicture)
    np.testing.assert_array_equal(a.recon, b.recon)
    c = codec.code(frame, 36)
    np.testing.assert_allclose(c.ctu_bits / a.ctu_bits, 0.5, atol=0.02)
    with pytest.raises(InvalidInputError):
        codec.code(frame[:-1], 30)


def test_training_pictures_from_several_videos(tmp_path: Path) -> None:
    import subprocess

    from envs.tables import load_pictures, video_sources
    from semrl.errors import InputNotFoundError
    from semrl.media import ffmpeg_tool

    a, b = tmp_path / "clips" / "a.mp4", tmp_path / "clips" / "b.mp4"
    a.parent.mkdir()
    for path in (a, b):
        subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x96:rate=10",
                        "-frames:v", "12", "-c:v", "mpeg4", str(path)], check=True)  # fmt: skip
    assert video_sources(tmp_path / "clips") == [a, b]
    assert video_sources(f"{b},{a}") == [b, a]
    assert video_sources(tmp_path) == []  # a folder without videos names none
    with pytest.raises(InputNotFoundError, match="not a video"):
        video_sources(f"{a},{tmp_path / 'nope.mp4'}")
    pictures = load_pictures(tmp_path / "clips", video_stride=5)
    assert [p.name for p in pictures] == ["a.mp4#0", "a.mp4#5", "a.mp4#10", "b.mp4#0", "b.mp4#5", "b.mp4#10"]
    assert len(load_pictures(f"{a},{b}", video_stride=5, limit=4)) == 4


def test_marginal_credit_charges_each_ctu_its_own_effect(fake_set) -> None:  # type: ignore[no-untyped-def]
    from benchmark_scripts import load_benchmark

    live_finetune = load_benchmark("live_finetune")
    env = _env(fake_set, mode="live")
    zero = int(np.flatnonzero(env.offsets == 0)[0])
    obs, _ = env.reset(seed=0, options={"picture": 0, "base_qp": 37})
    observations, actions, term, info = [], [], False, {}
    while not term:
        action = 5 if len(actions) % 2 else zero  # every other CTU +6
        observations.append(obs)
        actions.append(action)
        obs, _, term, _, info = env.step(action)
    total = float(info["live_return"])
    credited = live_finetune._marginal_credit(env, info["offsets"], total, observations, actions, zero, 3,
                                              np.random.default_rng(0))  # fmt: skip
    moved = [c for c in credited if c[1] == 5]
    assert len(moved) == 3 and len(credited) == 6
    assert all(c[2] == 0.0 for c in credited if c[1] == zero)
    for obs_i, _, reward in moved:
        i = next(k for k, o in enumerate(observations) if o is obs_i)
        back = info["offsets"].copy()
        back.reshape(-1)[i] = 0
        assert reward == pytest.approx(total - float(env.live_rewards(back)[0].sum()))


def test_a_live_fine_tuned_policy_records_its_fine_tuning_in_its_config() -> None:
    import argparse

    from benchmark_scripts import load_benchmark

    from semrl.agent.config import PolicyConfig

    live_finetune = load_benchmark("live_finetune")
    base = PolicyConfig.read(Path(__file__).parents[1] / "semrl/policies/classification.json")
    args = argparse.Namespace(
        base="base/ckpt.zip", data=None, task="classification", episodes=3, credit="spread", credited=8,
        epsilon=0.1, learning_rate=1e-4, gradient_steps=8, batch_size=128, seed=0,
    )  # fmt: skip
    tuned = PolicyConfig.from_json(live_finetune.finetuned_config(base, args, 20, 36).to_json())  # it still loads
    assert tuned.timesteps == base.timesteps + 36
    record = tuned.data.pop("live_finetune")
    assert (record["base"], record["pictures"], record["episodes"], record["steps"]) == ("base/ckpt.zip", 20, 3, 36)
    assert tuned.data == base.data and tuned.train == base.train and tuned.env == base.env

"""Training, saving, loading and checking policies with the fake codec and fake semantics (seconds)."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from envs.codecs import FakeCodec
from envs.semantic_qp import SemanticQPEnv, synthetic_pictures, synthetic_set
from envs.tables import X265CodecFactory
from semrl.agent.checkpoint import TrainedPolicy, load_checkpoint_policy, shipped_policy
from semrl.agent.config import (
    DEFAULT_ANSWER_SEARCH,
    DEFAULT_REFINEMENT,
    DEFAULT_SCALING_LISTS,
    BlockRefinement,
    PolicyConfig,
    TrainConfig,
)
from semrl.agent.train import train
from semrl.codec import ScalingLists
from semrl.errors import InputNotFoundError, InvalidInputError, PolicyMismatchError
from semrl.policy import PolicyInput, apply_offsets, offsets_identity, scaling_lists
from semrl.semantics.fakes import FakeExtractor, FakeObject


def _train(out: Path, config: TrainConfig, resume: bool = False, task: str = "detection"):  # type: ignore[no-untyped-def]
    return train(
        config,
        out,
        resume=resume,
        progress=False,
        pictures=synthetic_pictures(3),
        codec_factory=FakeCodec,
        extractor_factory=functools.partial(FakeExtractor, task),
        cache_dir=out.parent / "cache",
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("agent") / "ppo"
    config = TrainConfig(task="detection", algorithm="ppo", timesteps=300, workers=1, net_arch=(16,))
    return out, config, _train(out, config)


def test_tiny_ppo_run_writes_checkpoint_config_and_logs(trained) -> None:  # type: ignore[no-untyped-def]
    out, config, result = trained
    assert result.checkpoint == out / "ckpt.zip" and result.checkpoint.is_file()
    assert result.timesteps >= 300
    saved = PolicyConfig.read(out / "ckpt.json")
    assert saved.task == "detection" and saved.algorithm == "ppo"
    assert saved.x265_version.startswith("none") and saved.weights_sha256.startswith("fake:")
    assert set(saved.lambdas) == {str(q) for q in range(22, 52)}
    assert TrainConfig.from_json((out / "train_config.json").read_text()) == config
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert json.loads((out / "timing.json").read_text())["total"] > 0


def test_tiny_dqn_run(tmp_path: Path) -> None:
    config = TrainConfig(task="segmentation", algorithm="dqn", timesteps=300, workers=1, net_arch=(16,))
    result = _train(tmp_path / "dqn", config, task="segmentation")
    policy = load_checkpoint_policy(result.checkpoint, task="segmentation", extractor=FakeExtractor("segmentation"))
    assert policy.offsets_for(synthetic_pictures(1)[0].frame, 40).shape == (3, 4)


def test_a_classifier_ships_with_the_answer_search_and_a_segmentation_policy_may_only_trade(tmp_path: Path) -> None:
    config = TrainConfig(task="classification", algorithm="dqn", timesteps=300, workers=1, net_arch=(16,))
    result = _train(tmp_path / "cls", config, task="classification")
    policy = load_checkpoint_policy(result.checkpoint, task="classification", extractor=FakeExtractor("classification"))
    assert policy.config.answer == DEFAULT_ANSWER_SEARCH["classification"].to_dict()  # train writes it
    assert policy.fingerprint.endswith(":answer=3x4")
    frame = synthetic_pictures(1)[0].frame
    # without the caller's coding (the environment, semrl maps) the map is returned as decided
    np.testing.assert_array_equal(policy(PolicyInput(frame, 37, (3, 4), None)), policy.offsets_for(frame, 37))
    background = dataclasses.replace(policy.config, answer={"step": 3, "max_trials": 4, "background": True})
    with pytest.raises(InvalidInputError, match="cannot shift the background alone"):
        TrainedPolicy(policy.model, background, FakeExtractor("classification"), "0" * 64)
    trade = dataclasses.replace(policy.config, answer={"trade": 0.2, "finer": 2})
    with pytest.raises(InvalidInputError, match="trade scores the net's objects"):
        TrainedPolicy(policy.model, trade, FakeExtractor("classification"), "0" * 64)
    segmentation = dataclasses.replace(policy.config, task="segmentation")
    with pytest.raises(InvalidInputError, match="keeping the net's answer is for classification and detection"):
        TrainedPolicy(policy.model, segmentation, FakeExtractor("segmentation"), "0" * 64)
    segmentation_trade = dataclasses.replace(segmentation, answer={"trade": 0.2, "finer": 2})
    traded = TrainedPolicy(policy.model, segmentation_trade, FakeExtractor("segmentation"), "0" * 64)
    assert traded.fingerprint.endswith(":answer=3x4:trade0.2-2")
    # the benchmark caches its maps by this: any change of the config, file or maps gives another
    identity = offsets_identity(traded)
    assert identity is not None and identity.startswith(traded.fingerprint)
    longer = dataclasses.replace(segmentation_trade, timesteps=301)
    others = {
        offsets_identity(TrainedPolicy(policy.model, segmentation_trade, FakeExtractor("segmentation"), "1" * 64)),
        offsets_identity(TrainedPolicy(policy.model, longer, FakeExtractor("segmentation"), "0" * 64)),
    }
    assert identity not in others and len(others) == 2


def test_round_trip_gives_a_benchmark_policy(trained) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = trained
    policy = load_checkpoint_policy(out / "ckpt.zip", task="detection", extractor=FakeExtractor("detection"))
    frame = synthetic_pictures(1)[0].frame
    inputs = PolicyInput(frame, 37, (3, 4), None, np.zeros((0, 4), np.float32))
    offsets = apply_offsets(policy, inputs)
    assert policy.config.refinement == DEFAULT_REFINEMENT["detection"].to_dict()  # train writes it
    assert policy.offset_block == 16 and offsets.shape == inputs.block_shape
    np.testing.assert_array_equal(offsets, apply_offsets(policy, inputs))  # deterministic
    delta = policy.config.refinement["delta"]
    allowed = {int(np.clip(37 + o + d, 12, 51)) for o in policy.offsets for d in (0, delta)}
    assert set(np.unique(37 + offsets)) <= allowed
    assert policy.fingerprint.startswith("semrl-agent:detection:ppo:")
    assert policy.fingerprint.endswith(":refine=4:8:from27:answer=3x3:trade0.1-2:roi4+8+12")  # train writes both stages
    assert dataclasses.asdict(PolicyConfig.from_json(policy.config.to_json())) == dataclasses.asdict(policy.config)
    assert scaling_lists(policy) == DEFAULT_SCALING_LISTS.get("detection")  # train writes it


def test_a_policys_scaling_lists_are_read_from_its_config_and_named_in_its_fingerprint(trained) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = trained
    plain = load_checkpoint_policy(out / "ckpt.zip", task="detection", extractor=FakeExtractor("detection"))
    config = dataclasses.replace(plain.config, scaling_lists={"slope": 3.0})
    policy = TrainedPolicy(plain.model, PolicyConfig.from_json(config.to_json()), FakeExtractor("detection"), "0" * 64)
    assert scaling_lists(policy) == ScalingLists(3.0)
    assert policy.fingerprint.endswith(":roi4+8+12:sl=3^1")
    flat = dataclasses.replace(plain.config, scaling_lists={"slope": 0.0})  # read as a run's config reads it
    assert PolicyConfig.from_json(flat.to_json()).quantisation is None
    with pytest.raises(InvalidInputError, match="slope"):
        PolicyConfig.from_json(dataclasses.replace(plain.config, scaling_lists={"slope": 99.0}).to_json())


def test_a_run_with_scaling_lists_codes_its_tables_with_them_and_ships_them(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import semrl.agent.train as train_module

    asked: list[tuple[str, ScalingLists | None]] = []

    def factory(preset: str, lists: ScalingLists | None) -> type[FakeCodec]:
        asked.append((preset, lists))  # the real factory codes the tables with them
        return FakeCodec

    monkeypatch.setattr(train_module, "X265CodecFactory", factory)
    config = TrainConfig(task="segmentation", timesteps=300, workers=1, net_arch=(16,), scaling_lists={"slope": 5.0})
    result = train(
        config, tmp_path / "run", progress=False, pictures=synthetic_pictures(2),
        extractor_factory=functools.partial(FakeExtractor, "segmentation"), cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert asked == [("medium", ScalingLists(5.0))]
    policy = load_checkpoint_policy(result.checkpoint, task="segmentation", extractor=FakeExtractor("segmentation"))
    assert scaling_lists(policy) == ScalingLists(5.0) and policy.fingerprint.endswith(":sl=5^1")
    assert TrainConfig.from_json(json.dumps(policy.config.train)) == config


def test_train_configs_resolve_their_scaling_lists() -> None:
    assert TrainConfig(task="segmentation").quantisation == DEFAULT_SCALING_LISTS["segmentation"]  # the task's
    assert TrainConfig(task="classification").scaling_lists == {}  # no default: flat
    assert TrainConfig(task="segmentation", scaling_lists={"slope": 0.0}).quantisation is None
    assert X265CodecFactory("medium", ScalingLists(5.0)) == X265CodecFactory(scaling_lists=ScalingLists(5.0))
    with pytest.raises(InvalidInputError, match="slope must be in"):
        TrainConfig(task="segmentation", scaling_lists={"slope": 99.0})
    with pytest.raises(InvalidInputError, match="pass --scaling-lists 0 for the video MDP"):
        TrainConfig(task="detection", mdp="video", scaling_lists={"slope": 3.0})
    # the task's default is for its picture policies: a video run meets the error that concerns it
    assert TrainConfig(task="segmentation", mdp="video").quantisation == DEFAULT_SCALING_LISTS["segmentation"]
    with pytest.raises(InvalidInputError, match="pass --scaling-lists 0 for the video MDP"):
        TrainConfig(task="segmentation", mdp="video", scaling_lists={"slope": 3.0})
    older = json.loads(TrainConfig(task="detection").to_json())
    del older["scaling_lists"]  # a run saved before configs held them
    assert TrainConfig.from_json(json.dumps(older)) == TrainConfig(task="detection")


def test_a_policy_config_names_the_assets_folder_portably(trained, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = trained
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path))
    clip = str(tmp_path / "videos" / "cam.mp4")
    config = dataclasses.replace(PolicyConfig.read(out / "ckpt.json"), data={"source": [clip, "/elsewhere/b.mp4"]})
    written = PolicyConfig.from_json(config.to_json())
    assert written.data["source"] == ["$SEMRL_ASSETS/videos/cam.mp4", "/elsewhere/b.mp4"]
    assert str(tmp_path) not in config.to_json()


def test_refinement_codes_the_background_blocks_of_each_ctu_coarser(trained) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = trained
    objects = (FakeObject((0.05, 0.1, 0.2, 0.3)), FakeObject((0.6, 0.55, 0.9, 0.95), cls=2))
    extractor = FakeExtractor("detection", objects=objects)
    frame = synthetic_pictures(1)[0].frame
    h, w = frame.shape[:2]
    config = dataclasses.replace(PolicyConfig.read(out / "ckpt.json"), answer=None)  # the map's stages alone
    model = load_checkpoint_policy(out / "ckpt.zip", extractor=FakeExtractor("detection")).model
    per_ctu = TrainedPolicy(model, dataclasses.replace(config, refinement=None), extractor, "0" * 64)
    assert per_ctu.offset_block == 64
    inputs = PolicyInput(frame, 32, (3, 4), None)
    ctu = per_ctu(inputs)
    assert ctu.shape == (3, 4)
    for dilation, object_delta in ((0, 0), (8, 2)):
        refinement = {"delta": 5, "dilation": dilation, "object_delta": object_delta}
        refined = TrainedPolicy(model, dataclasses.replace(config, refinement=refinement), extractor, "0" * 64)
        blocks = refined(inputs)
        assert blocks.shape == inputs.block_shape == (h // 16, w // 16)
        expected = np.kron(ctu, np.ones((4, 4), np.int32))
        boxes = np.array([o.box for o in objects]) * [w, h, w, h]  # box_region covers floor(x0)..ceil(x1)
        yy, xx = np.mgrid[0 : h // 16, 0 : w // 16] * 16
        touched = np.zeros(blocks.shape, bool)
        for x0, y0, x1, y1 in boxes:  # a block touches a box grown by the dilation
            across = (xx + 16 > np.floor(x0) - dilation) & (xx < np.ceil(x1) + dilation)
            touched |= across & (yy + 16 > np.floor(y0) - dilation) & (yy < np.ceil(y1) + dilation)
        assert 0 < touched.sum() < touched.size
        np.testing.assert_array_equal(blocks[touched], expected[touched] - object_delta)
        np.testing.assert_array_equal(blocks[~touched], expected[~touched] + 5)
        assert refined.fingerprint.endswith(f":refine=5:{dilation}" + (f":{object_delta}" if object_delta else ""))
    # Below min_base_qp every block keeps its CTU's offset; from it on the deltas apply.
    refinement = {"delta": 5, "dilation": 8, "object_delta": 2, "min_base_qp": 33}
    guarded = TrainedPolicy(model, dataclasses.replace(config, refinement=refinement), extractor, "0" * 64)
    assert guarded.offset_block == 16 and guarded.fingerprint.endswith(":refine=5:8:2:from33")
    np.testing.assert_array_equal(guarded(inputs), np.kron(ctu, np.ones((4, 4), np.int32)))
    finer = PolicyInput(frame, 33, (3, 4), None)
    assert set(np.unique(guarded(finer) - np.kron(per_ctu(finer), np.ones((4, 4), np.int32)))) == {-2, 5}
    with pytest.raises(InvalidInputError, match="delta"):
        BlockRefinement(delta=-1)
    with pytest.raises(InvalidInputError, match="min_base_qp"):
        BlockRefinement(min_base_qp=52)
    text = json.loads(config.to_json())
    for bad in ({"delta": 4, "radius": 8}, {"delta": 4, "dilation": -1}):
        with pytest.raises(InvalidInputError, match=r"malformed policy config|dilation >= 0"):
            PolicyConfig.from_json(json.dumps({**text, "refinement": bad}))
    classifier = dataclasses.replace(config, task="classification")
    with pytest.raises(InvalidInputError, match="no objects"):
        TrainedPolicy(model, classifier, FakeExtractor("classification"), "0" * 64)


def test_env_and_trained_policy_build_identical_observations(trained) -> None:  # type: ignore[no-untyped-def]
    """A fixed action sequence replayed through the env and through the encode/benchmark path sees the same inputs."""
    out, _, _ = trained
    policy = load_checkpoint_policy(out / "ckpt.zip", task="detection", extractor=FakeExtractor("detection"))
    pictures, tables, _, _ = synthetic_set(3)
    env = SemanticQPEnv(tables, settings=policy.settings)
    rng = np.random.default_rng(7)
    for p, picture in enumerate(pictures):
        for base_qp in (22, 37, 51):
            n = tables[p].ctu_shape[0] * tables[p].ctu_shape[1]
            actions = rng.integers(0, len(policy.offsets), n)
            obs, _ = env.reset(options={"picture": p, "base_qp": base_qp})
            from_env = []
            for a in actions:
                from_env.append(obs)
                obs, _, done, _, info = env.step(a)
            assert done

            seen: list[np.ndarray] = []

            def scripted(observation: np.ndarray, seen: list[np.ndarray] = seen, actions: np.ndarray = actions) -> int:
                seen.append(observation[0].copy())
                return int(actions[len(seen) - 1])

            policy._act = scripted  # type: ignore[method-assign]
            offsets = policy.offsets_for(picture.frame, base_qp)
            assert len(seen) == len(from_env) == n
            for i, (a, b) in enumerate(zip(from_env, seen, strict=True)):
                np.testing.assert_array_equal(a, b, err_msg=f"picture {p}, base QP {base_qp}, CTU {i}")
            np.testing.assert_array_equal(offsets, info["offsets"])


def test_loading_refuses_a_mismatch(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = trained
    with pytest.raises(PolicyMismatchError, match="detection policy, not a segmentation"):
        load_checkpoint_policy(out / "ckpt.zip", task="segmentation", extractor=FakeExtractor("segmentation"))
    other = FakeExtractor("detection", objects=(FakeObject((0.2, 0.2, 0.5, 0.5)),))
    with pytest.raises(PolicyMismatchError, match="trained on maps"):
        load_checkpoint_policy(out / "ckpt.zip", extractor=other)
    # a config promising other actions than the model has: incompatible spaces
    bad = tmp_path / "ckpt.zip"
    bad.write_bytes((out / "ckpt.zip").read_bytes())
    cfg = json.loads((out / "ckpt.json").read_text())
    cfg["env"]["offsets"] = [-5, 0, 5]
    (tmp_path / "ckpt.json").write_text(json.dumps(cfg))
    with pytest.raises(PolicyMismatchError, match="spaces"):
        load_checkpoint_policy(bad, extractor=FakeExtractor("detection"))
    (tmp_path / "ckpt.json").unlink()
    with pytest.raises(InputNotFoundError, match="policy config not found"):
        load_checkpoint_policy(bad, extractor=FakeExtractor("detection"))
    with pytest.raises(InputNotFoundError):
        load_checkpoint_policy(tmp_path / "nothing.zip")


def test_resume_continues_and_refuses_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = TrainConfig(task="detection", algorithm="ppo", timesteps=300, workers=1, net_arch=(16,))
    first = _train(out, config)
    with pytest.raises(InvalidInputError, match="already holds"):
        _train(out, config)
    more = _train(out, dataclasses.replace(config, timesteps=first.timesteps + 1024), resume=True)
    assert more.timesteps >= first.timesteps + 1024
    fewer = (rf"--timesteps 300: the run was started for {first.timesteps + 1024} steps and has trained "
             rf"{more.timesteps}, .* pass --timesteps {first.timesteps + 1024} to finish it")  # fmt: skip
    with pytest.raises(InvalidInputError, match=fewer):
        _train(out, config, resume=True)
    finished = _train(out, dataclasses.replace(config, timesteps=first.timesteps + 1024), resume=True)
    assert finished.timesteps == more.timesteps
    differ = r"other settings \(--algo 'ppo' then, 'dqn' now; --rate-weight 1.0 then, 2.0 now\); pass them"
    with pytest.raises(InvalidInputError, match=differ):
        _train(out, dataclasses.replace(config, rate_weight=2.0, algorithm="dqn", timesteps=5000), resume=True)
    (tmp_path / "a-file").write_text("kept")
    with pytest.raises(InvalidInputError, match="a-file is a file, not a folder"):
        _train(tmp_path / "a-file", config)
    assert (tmp_path / "a-file").read_text() == "kept"


def test_an_ensemble_is_its_members_q_values_averaged_in_one_net(tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import DQN

    out = tmp_path / "ens"
    config = TrainConfig(task="detection", timesteps=1200, workers=1, net_arch=(16, 8), ensemble=2, seed=5)
    result = _train(out, config)
    assert result.members == 2 and result.timesteps >= 2400
    members = [DQN.load(out / "members" / f"seed{s}" / "ckpt.zip", device="cpu") for s in (5, 6)]
    assert [TrainConfig.from_json((out / "members" / f"seed{s}" / "train_config.json").read_text()).seed
            for s in (5, 6)] == [5, 6]  # fmt: skip
    fused = DQN.load(out / "ckpt.zip", device="cpu")
    assert fused.policy_kwargs["net_arch"] == [32, 16]
    obs = torch.as_tensor(np.random.default_rng(0).normal(0, 2, (500, members[0].observation_space.shape[0])),
                          dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        mean = sum(m.policy.q_net(obs) for m in members) / 2
        assert not torch.allclose(members[0].policy.q_net(obs), members[1].policy.q_net(obs))
        torch.testing.assert_close(fused.policy.q_net(obs), mean, rtol=1e-5, atol=1e-5)
    saved = PolicyConfig.read(out / "ckpt.json")
    assert TrainConfig.from_json(json.dumps(saved.train)) == config
    policy = load_checkpoint_policy(out / "ckpt.zip", task="detection", extractor=FakeExtractor("detection"))
    assert policy.offsets_for(synthetic_pictures(1)[0].frame, 40).shape == (3, 4)
    with pytest.raises(InvalidInputError, match="already holds"):
        _train(out, config)
    again = _train(out, config, resume=True)  # every member complete: nothing more to train
    assert again.timesteps == result.timesteps


def test_ensemble_settings_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="at least 1"):
        TrainConfig(ensemble=0)
    with pytest.raises(InvalidInputError, match="averages DQN picture policies"):
        TrainConfig(ensemble=2, algorithm="ppo")
    with pytest.raises(InvalidInputError, match="averages picture policies; drop it for the video MDP"):
        TrainConfig(ensemble=2, mdp="video")
    with pytest.raises(InvalidInputError, match="weighs objects in pictures; drop it for the video MDP"):
        TrainConfig(object_weighting="class", mdp="video")


def test_configs_round_trip_and_validate() -> None:
    c = TrainConfig(task="classification", base_qps=(27, 47), rate_weight=1.5, net_arch=(32, 32))
    assert TrainConfig.from_json(c.to_json()) == c
    with pytest.raises(InvalidInputError, match="algorithm"):
        TrainConfig(algorithm="sac")
    with pytest.raises(InvalidInputError, match="--base-qp LOW-HIGH needs"):
        TrainConfig(base_qps=(10, 60))
    with pytest.raises(InvalidInputError, match="task"):
        TrainConfig(task="tracking")
    with pytest.raises(InvalidInputError, match="malformed"):
        PolicyConfig.from_json("{}")


def test_shipped_policy_lookup() -> None:
    with pytest.raises(InvalidInputError, match="no shipped policy"):
        shipped_policy("tracking")


@pytest.mark.parametrize("task", ["detection", "segmentation", "classification"])
def test_shipped_policies_are_small_and_fit_this_semrl(task: str) -> None:
    from stable_baselines3 import DQN, PPO

    from envs.observation import OBS_DIM, OBS_NAMES

    path = shipped_policy(task)
    assert path.stat().st_size < 2_000_000
    config = PolicyConfig.read(path.with_suffix(".json"))
    assert config.task == task and tuple(config.obs_names) == OBS_NAMES
    assert config.weights_sha256 and len(config.weights_sha256) == 64
    assert TrainConfig.from_json(json.dumps(config.train)) == TrainConfig(task=task)  # the committed defaults
    answer = DEFAULT_ANSWER_SEARCH.get(task)
    assert config.answer == (None if answer is None else answer.to_dict())  # as semrl train writes it
    lists = DEFAULT_SCALING_LISTS.get(task)
    assert config.quantisation == lists  # as semrl train writes it
    model = {"ppo": PPO, "dqn": DQN}[config.algorithm].load(path, device="cpu")
    assert model.observation_space.shape == (OBS_DIM,)
    assert model.action_space.n == len(config.env["offsets"])


def test_the_shipped_video_policy_fits_this_semrl() -> None:
    from stable_baselines3 import DQN, PPO

    from envs.video import VIDEO_OBS_DIM, VIDEO_OBS_NAMES, VideoSettings

    path = shipped_policy("video")
    assert path.stat().st_size < 2_000_000
    config = PolicyConfig.read(path.with_suffix(".json"))
    assert config.mdp == "video" and config.task == "detection" and tuple(config.obs_names) == VIDEO_OBS_NAMES
    assert VideoSettings.from_dict(config.env) == VideoSettings()  # the committed defaults
    train = TrainConfig.from_json(json.dumps(config.train))
    assert train.max_frames == 96 and train.data and "TUD-Campus" not in train.data  # frames 0-95; TUD held out
    sources = [*config.data["source"], *train.data.split(",")]
    assert all(s.startswith("$SEMRL_ASSETS/") for s in sources), sources  # no machine's own paths ship
    model = {"ppo": PPO, "dqn": DQN}[config.algorithm].load(path, device="cpu")
    assert model.observation_space.shape == (VIDEO_OBS_DIM,)
    assert model.action_space.n == VideoSettings().n_actions


@pytest.mark.parametrize("task", ["video", "detection"])
def test_a_model_loaded_to_act_acts_as_the_whole_model_but_cannot_learn_or_be_saved(task: str, tmp_path: Path) -> None:
    # semrl encode loads its policy without an optimizer: the first one of a process costs 1.3 s of start-up
    from semrl.agent.checkpoint import load_model

    path = shipped_policy(task)
    config = PolicyConfig.read(path.with_suffix(".json"))
    whole = load_model(path, config, "cpu")
    acting = load_model(path, config, "cpu", to_act=True)
    obs = np.random.default_rng(0).normal(size=(64, *whole.observation_space.shape)).astype(np.float32)
    assert np.array_equal(whole.predict(obs, deterministic=True)[0], acting.predict(obs, deterministic=True)[0])
    with pytest.raises(PolicyMismatchError, match="cannot be saved"):
        acting.save(tmp_path / "copy.zip")
    with pytest.raises(PolicyMismatchError, match="cannot learn"):
        acting.policy.optimizer.zero_grad()
    assert not (tmp_path / "copy.zip").exists()
    whole.save(tmp_path / "copy.zip")  # a whole model still saves


def test_auto_picks_video_reference_for_clips_x265_under_random_access_and_the_image_policy(tmp_path: Path) -> None:
    from semrl.pipeline import EncodeSettings, concrete_policy

    clip, image = tmp_path / "cam.mp4", tmp_path / "a.jpg"
    clip.write_bytes(b"")
    image.write_bytes(b"")
    assert concrete_policy(EncodeSettings(), clip).policy == "video-reference"
    assert concrete_policy(EncodeSettings(), None).policy == "video-reference"  # the built-in clip
    assert concrete_policy(EncodeSettings(policy="video"), clip).policy == "video"  # the learned one on request
    assert concrete_policy(EncodeSettings(bitrate=100.0), clip).policy == "video"  # its rate bursts are smaller
    assert concrete_policy(EncodeSettings(), image).policy == "detection"
    assert concrete_policy(EncodeSettings(), tmp_path).policy == "detection"  # a folder of images
    assert concrete_policy(EncodeSettings(task="segmentation"), clip).policy == "segmentation"
    assert concrete_policy(EncodeSettings(policy="roi"), clip).policy == "roi"
    # random access: x265's own allocation, but not under --bitrate, for pictures or on request
    assert concrete_policy(EncodeSettings(gop="ra"), clip).policy == "x265"
    assert concrete_policy(EncodeSettings(gop="ra"), None).policy == "x265"
    assert concrete_policy(EncodeSettings(gop="ra", bitrate=100.0), clip).policy == "video"
    assert concrete_policy(EncodeSettings(gop="ra"), image).policy == "detection"
    assert concrete_policy(EncodeSettings(gop="ra", policy="video-reference"), clip).policy == "video-reference"
    assert concrete_policy(EncodeSettings(gop="intra"), clip).policy == "video-reference"

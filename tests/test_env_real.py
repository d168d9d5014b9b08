"""A short live-mode episode with the real patched x265 and the real detector, and video pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shared_assets import require_assets

pytestmark = [pytest.mark.x265, pytest.mark.weights, pytest.mark.slow]


def _assets() -> Path:
    return require_assets("models/yolov8n.pt")


def test_live_episode_with_real_encoder_and_detector(tmp_path: Path) -> None:
    _assets()
    from envs.codecs import X265Codec
    from envs.semantic_qp import SemanticQPEnv
    from envs.tables import build_tables, load_pictures
    from semrl.semantics.extractors import make_extractor

    pictures = load_pictures("coco8", split="val", limit=1)
    codec = X265Codec("ultrafast")
    extractor = make_extractor("detection", device="cpu")
    tables = build_tables(
        pictures, codec_factory=lambda: codec, extractor_factory=lambda: extractor, qps=(12, 22, 32, 42, 51),
        cache_dir=tmp_path, progress=False,
    )  # fmt: skip
    table = tables[0]
    assert np.all(np.diff(table.bits.sum(axis=(1, 2))) < 0)  # exact bits fall with QP
    env = SemanticQPEnv(tables, mode="live", pictures=pictures, codec=codec, extractor=extractor)
    env.reset(seed=0, options={"picture": 0, "base_qp": 32})
    zero = int(np.flatnonzero(env.offsets == 0)[0])
    term = False
    while not term:
        _, reward, term, _, info = env.step(zero)
    # uniform coding at a table QP: live bits are the table's exactly, the live return is zero
    assert info["bits_live"] == pytest.approx(info["bits_fast"], rel=1e-6)
    assert reward == info["live_return"] == 0.0
    env.reset(seed=0, options={"picture": 0, "base_qp": 32})
    term, k = False, 0
    while not term:
        _, reward, term, _, info = env.step((k * 7) % env.action_space.n)
        k += 1
    assert np.isfinite(info["live_return"]) and np.isfinite(info["fast_return"])
    assert info["bits_live"] > 0 and info["bits_live"] != info["uniform_bits_live"]


def test_the_real_codec_codes_a_tables_picture_with_the_policys_scaling_lists() -> None:
    from envs.codecs import X265Codec
    from envs.tables import load_pictures
    from semrl.codec import ScalingLists

    frame = load_pictures("coco8", split="val", limit=1)[0].frame
    flat, steep = X265Codec("ultrafast"), X265Codec("ultrafast", ScalingLists(3.0))
    assert steep.fingerprint == flat.fingerprint + ":sl=3^1"  # tables coded with them have keys of their own
    plain, shaped = flat.code(frame, 32), steep.code(frame, 32)
    assert shaped.bits < 0.95 * plain.bits and shaped.ctu_bits.shape == plain.ctu_bits.shape
    assert np.abs(shaped.recon.astype(int) - frame).mean() < 12  # a picture, not noise


def test_pictures_from_video_frames() -> None:
    root = _assets()
    from envs.tables import load_pictures

    video = root / "videos" / "pets2009_s2l1_480x360.mp4"
    pictures = load_pictures(video, limit=3, video_stride=25)
    assert [p.name for p in pictures] == [f"{video.name}#{i}" for i in (0, 25, 50)]
    assert pictures[0].frame.shape == (360, 480, 3)
    assert len({p.digest for p in pictures}) == 3


def test_video_episode_with_real_encoder_and_detector(tmp_path: Path) -> None:
    """A short VideoQP episode: x265 low-delay P frame by frame, YOLO on every decoded frame."""
    root = require_assets("models/yolov8n.pt", "videos-extra/bgslibrary_video03_320x240.avi")
    from envs.codecs import X265ClipCodec
    from envs.video import VideoQPEnv, VideoSettings, YoloDetector, build_segments
    from semrl.agent.video import load_clips

    clips = load_clips([root / "videos-extra" / "bgslibrary_video03_320x240.avi"], max_frames=8)
    assert len(clips[0][1]) == 8 and clips[0][1][0].shape == (240, 320, 3)
    # the default reference, a decision every 2 frames
    settings = VideoSettings(episode_frames=4, base_qps=(37, 42), frame_offsets=(0, 9), decision_interval=2)
    codec, detector = X265ClipCodec("ultrafast"), YoloDetector(device="cpu")
    segments = build_segments(clips, codec, detector, settings, cache_dir=tmp_path)
    assert len(segments) == 2 and sum(len(o.boxes) for o in segments[0].objects) > 0  # people in the scene
    assert segments[0].reference_bits[37][0] > segments[0].reference_bits[37][1]  # the IDR picture costs most
    assert segments[0].reference_bits[37].sum() > segments[0].reference_bits[42].sum()
    env = VideoQPEnv(segments, codec, detector, settings)
    env.reset(options={"segment": 0, "base_qp": 37})
    done = False
    while not done:  # uniform coding reproduces the tables exactly: x265 is deterministic
        _, reward, done, _, info = env.step(settings.reference_action)
        assert reward == 0.0 and info["d_bits"] == 0
    env.reset(options={"segment": 0, "base_qp": 37})
    _, reward, _, _, info = env.step(settings.action_of(9, 0))
    assert info["d_bits"] < 0 and info["frames"] == 2  # two coarser frames cost fewer bits
    _, _, done, _, info = env.step(settings.reference_action)
    assert info["d_bits"] != 0 and done  # the next frames predict from other references
    env.close()


def test_deviation_rollouts_in_workers_equal_those_in_one_process(tmp_path: Path) -> None:
    """``--algo deviation`` on a real clip: rollouts shared among 2 worker processes measure what one process does."""
    root = require_assets("models/yolov8n.pt", "videos-extra/bgslibrary_video03_320x240.avi")
    from envs.codecs import X265ClipCodec
    from envs.video import VideoQPEnv, VideoSettings, YoloDetector, build_segments
    from semrl.agent.config import TrainConfig
    from semrl.agent.deviation import Deviations, collect_deviations
    from semrl.agent.resolve import resolve_policy
    from semrl.agent.video import DEVIATIONS_NAME, VideoPolicy, load_clips, train_video

    clip = root / "videos-extra" / "bgslibrary_video03_320x240.avi"
    settings = VideoSettings(object_boosts=(0, 8), episode_frames=4, base_qps=(42,), decision_interval=2)
    config = TrainConfig(task="detection", data=str(clip), algorithm="deviation", mdp="video", max_frames=8,
                         preset="ultrafast", workers=2)  # fmt: skip
    checkpoint, summary = train_video(config, tmp_path / "run", sources=[clip], progress=False, settings=settings,
                                      cache_dir=tmp_path / "cache")  # fmt: skip
    assert summary["rollouts"] == 4 and summary["deviation"]["left_out"] == "segment"
    shared = Deviations.load(tmp_path / "run" / DEVIATIONS_NAME)
    assert isinstance(resolve_policy(str(checkpoint), task="detection"), VideoPolicy)

    codec, detector = X265ClipCodec("ultrafast"), YoloDetector(device="cpu")
    segments = build_segments(load_clips([clip], 8), codec, detector, settings, cache_dir=tmp_path / "cache")
    alone = collect_deviations(VideoQPEnv(segments, codec, detector, settings), [0, 0])
    order = np.lexsort((shared.step, shared.segment))
    np.testing.assert_array_equal(shared.segment[order], alone.segment)
    np.testing.assert_array_equal(shared.advantage[order], alone.advantage)  # x265 is deterministic
    assert (alone.advantage != 0).all()

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


def test_pictures_from_video_frames() -> None:
    root = _assets()
    from envs.tables import load_pictures

    video = root / "videos" / "pets2009_s2l1_480x360.mp4"
    pictures = load_pictures(video, limit=3, video_stride=25)
    assert [p.name for p in pictures] == [f"{video.name}#{i}" for i in (0, 25, 50)]
    assert pictures[0].frame.shape == (360, 480, 3)
    assert len({p.digest for p in pictures}) == 3

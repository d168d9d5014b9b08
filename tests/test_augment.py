"""Transformed copies of training pictures (``envs.augment``) and the ``--augment`` option (fakes, seconds)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from envs.augment import SHIFT, augment_pictures
from envs.codecs import FakeCodec
from envs.semantic_qp import synthetic_pictures
from envs.tables import make_picture
from semrl.agent.config import TrainConfig
from semrl.agent.train import train
from semrl.cli import build_parser
from semrl.errors import InvalidInputError
from semrl.semantics.fakes import FakeExtractor


def test_each_kind_adds_one_transformed_copy_of_every_picture_after_the_originals() -> None:
    pictures = synthetic_pictures(2, size=(192, 256))
    out = augment_pictures(pictures, ["flip", "shift", "scale"])
    assert [p.name for p in out] == [
        "synthetic0", "synthetic1", "synthetic0~flip", "synthetic1~flip",
        "synthetic0~shift", "synthetic1~shift", "synthetic0~scale", "synthetic1~scale",
    ]  # fmt: skip
    assert out[:2] == pictures
    flipped, shifted, scaled = out[2], out[4], out[6]
    assert flipped.frame.shape == (192, 256, 3) and shifted.frame.shape == (192 - SHIFT, 256 - SHIFT, 3)
    assert scaled.frame.shape == (144, 192, 3)
    # The 4:2:0 round trip of an already round-tripped picture moves a pixel by at most a few levels.
    original = pictures[0].frame.astype(int)
    assert np.abs(flipped.frame.astype(int) - original[:, ::-1]).max() <= 3
    assert np.abs(shifted.frame.astype(int) - original[SHIFT:, SHIFT:]).max() <= 3
    assert len({p.digest for p in out}) == len(out)
    assert augment_pictures(pictures, []) == pictures


def test_a_copy_too_small_for_the_encoder_is_left_out() -> None:
    small = make_picture("small", np.full((80, 96, 3), 100, np.uint8))
    out = augment_pictures([small], ["flip", "shift", "scale"])
    assert [p.name for p in out] == ["small", "small~flip"]  # 48x64 and 60x72: under 64 on a side


def test_unknown_or_repeated_kinds_and_video_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown augmentation 'rotate'; expected some of flip, shift, scale"):
        TrainConfig(augment=("rotate",))
    with pytest.raises(InvalidInputError, match="named twice"):
        TrainConfig(augment=("flip", "flip"))
    with pytest.raises(InvalidInputError, match="drop it for the video MDP"):
        TrainConfig(augment=("flip",), mdp="video")
    config = TrainConfig(augment=("flip", "scale"))
    assert TrainConfig.from_json(config.to_json()) == config
    args = build_parser().parse_args(["train", "--task", "detection", "--augment", "flip, scale", "-o", "x"])
    assert args.augment == "flip, scale"


def test_training_codes_a_table_for_every_copy(tmp_path: Path) -> None:
    config = TrainConfig(task="detection", algorithm="dqn", timesteps=300, workers=1, net_arch=(16,),
                         augment=("flip", "shift"))  # fmt: skip
    result = train(
        config, tmp_path / "run", progress=False, pictures=synthetic_pictures(2), codec_factory=FakeCodec,
        extractor_factory=functools.partial(FakeExtractor, "detection"), cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert result.pictures == 6
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6

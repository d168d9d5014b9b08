"""The background pre-filter: which pixels it smooths, what it forwards, its keys, and a real encode."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from semrl.bench.cache import encode_key
from semrl.bench.encoding import encode_and_verify, encoder_config
from semrl.bench.items import Item, pad_even
from semrl.bench.runner import Coding, _encoder_offsets, _run_policy
from semrl.bench.tasknet import Analysis
from semrl.codec import EncoderConfig, Yuv420
from semrl.errors import InvalidInputError
from semrl.policy import (
    PolicyInput,
    Prefilter,
    RoiPolicy,
    SoftenedPolicy,
    describe,
    needs_regions,
    offset_block,
    policy_task,
    prefilter_of,
    soften_blocks,
)

H, W = 136, 200  # 3x4 CTUs, 9x13 blocks of 16x16


def _noise(seed: int = 0) -> Yuv420:
    return Yuv420.from_rgb(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8))


def right_half_coarse(inputs: PolicyInput) -> np.ndarray:
    """+6 on the two right CTU columns, -2 on the others."""
    out = np.full(inputs.ctu_shape, -2, np.int32)
    out[:, 2:] = 6
    return out


def test_only_the_coarse_blocks_are_smoothed_and_the_rest_is_untouched() -> None:
    frame = _noise()
    coarse = np.zeros((3, 4), bool)
    coarse[:, 2:] = True
    out = soften_blocks(frame, coarse, sigma=2.0, fade=8.0)
    kept = slice(0, 128 - 16)  # beyond the fade (8 px, a Gaussian of sigma 4) the kept blocks are exact
    assert np.array_equal(out.y[:, kept], frame.y[:, kept])
    assert np.array_equal(out.u[:, : 56 - 8], frame.u[:, : 56 - 8])
    # Inside the coarse blocks the noise is gone: far less variation between neighbours.
    rough = np.abs(np.diff(frame.y[:, 144:].astype(int), axis=1)).mean()
    assert np.abs(np.diff(out.y[:, 144:].astype(int), axis=1)).mean() < rough / 3
    chroma_rough = np.abs(np.diff(frame.v[:, 72:].astype(int), axis=1)).mean()
    assert np.abs(np.diff(out.v[:, 72:].astype(int), axis=1)).mean() < chroma_rough
    # The same on the 16x16 grid, and nothing to smooth leaves the very frame.
    blocks = np.zeros((9, 13), bool)
    blocks[4, 6] = True
    fine = soften_blocks(frame, blocks, sigma=2.0, fade=0.0)
    changed = np.argwhere(fine.y != frame.y)
    assert changed.min(axis=0).tolist() >= [64, 96] and changed.max(axis=0).tolist() <= [79, 111]
    assert soften_blocks(frame, np.zeros((3, 4), bool), 2.0) is frame


def test_bad_settings_and_grids_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="sigma"):
        Prefilter(sigma=0)
    with pytest.raises(InvalidInputError, match="sigma"):
        Prefilter(sigma=float("nan"))
    with pytest.raises(InvalidInputError, match="fade"):
        Prefilter(fade=-1)
    with pytest.raises(InvalidInputError, match="threshold"):
        Prefilter(threshold=0.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="CTU grid"):
        soften_blocks(_noise(), np.zeros((3, 5), bool), 2.0)


def test_the_wrapper_is_the_policy_it_wraps_but_for_its_fingerprint() -> None:
    roi16 = RoiPolicy(12, block=16)
    soft = SoftenedPolicy(roi16, Prefilter(2.0))
    inputs = PolicyInput(np.zeros((H, W, 3), np.uint8), 32, (3, 4), region=np.zeros((H, W), bool))
    assert np.array_equal(soft(inputs), roi16(inputs))
    assert needs_regions(soft) and offset_block(soft) == 16 and policy_task(soft) is None
    assert describe(soft).startswith(describe(roi16)) and describe(soft) != describe(
        SoftenedPolicy(roi16, Prefilter(4.0))
    )
    assert prefilter_of(soft) == Prefilter(2.0) and prefilter_of(roi16) is None
    assert soft.delta == 12  # every other attribute is the wrapped policy's


def test_the_benchmark_codes_the_softened_frames_under_their_own_key() -> None:
    frames = [_noise(0), _noise(1)]
    region = np.zeros((H, W), bool)
    analysis = Analysis([region, region], [np.zeros((0, 4), np.float32)] * 2, [np.zeros(0, np.int64)] * 2,
                        [np.zeros(0, np.float32)] * 2)  # fmt: skip
    config = EncoderConfig(width=W, height=H, qp=51)
    item = SimpleNamespace(yuv=frames)
    plain = SimpleNamespace(policy=right_half_coarse, crf=False)
    soft = SimpleNamespace(policy=SoftenedPolicy(right_half_coarse, Prefilter(2.0)), crf=False)
    offsets = _encoder_offsets(_run_policy(plain, item, analysis, 49, config, None), plain, 49, config)  # type: ignore[arg-type]
    assert Coding(config, offsets, "k", "e", None).sources(item) is None  # type: ignore[arg-type]
    given = _run_policy(soft, item, analysis, 49, config, soft.policy.prefilter)  # type: ignore[arg-type]
    soft_offsets = _encoder_offsets(given, soft, 49, config)  # type: ignore[arg-type]
    assert offsets is not None and soft_offsets is not None
    # The encoder's offsets are clipped at QP 51, the pre-filter reads the policy's own (+6 > 0).
    assert np.array_equal(soft_offsets[0], offsets[0]) and offsets[0].max() == 0 and given[0].max() == 6
    soft_sources = Coding(config, soft_offsets, "k", "e", None, Prefilter(2.0), given).sources(item)  # type: ignore[arg-type]
    assert soft_sources is not None
    for original, softened in zip(frames, soft_sources, strict=True):
        assert np.array_equal(softened.y[:, :100], original.y[:, :100]) and not np.array_equal(softened.y, original.y)
    bench_item = Item("a.png", "d" * 64, [np.zeros((H, W, 3), np.uint8)], frames[:1], (H, W))
    key = encode_key(bench_item, config, offsets, "x")
    assert key == encode_key(bench_item, config, offsets, "x", None)
    assert key != encode_key(bench_item, config, offsets, "x", Prefilter(2.0).fingerprint)


@pytest.mark.x265
def test_a_softened_background_costs_fewer_bits_and_decodes_as_coded(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    item = Item("noise.png", "e" * 64, [rgb], [Yuv420.from_rgb(pad_even(rgb))], (H, W))
    config = encoder_config(item, 32, crf=False, video=False, preset="ultrafast", keyint=1)
    offsets = [right_half_coarse(PolicyInput(rgb, 32, (3, 4)))]
    soft = Prefilter(2.0)
    plain_stats, _ = encode_and_verify(item, config, offsets, tmp_path / "plain.hevc")
    soft_stats, decoded = encode_and_verify(
        item, config, offsets, tmp_path / "soft.hevc", [soft.soften(item.yuv[0], offsets[0])]
    )
    assert sum(soft_stats["frame_bits"]) < 0.9 * sum(plain_stats["frame_bits"])
    assert len(decoded) == 1 and decoded[0].shape == (H, W, 3)
    # PSNR is still against the original: the smoothed half is further from it.
    assert soft_stats["psnr"][0] < plain_stats["psnr"][0]

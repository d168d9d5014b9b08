"""The policy layer: inputs, declared needs, offsets per CTU or per 16x16 block, clip state, the resolver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrl.agent import CHECKPOINT_LOADERS, resolve_policy
from semrl.errors import InputNotFoundError, InvalidInputError, PolicyMismatchError
from semrl.policy import (
    PolicyInput,
    RoiPolicy,
    apply_offsets,
    needs_regions,
    offset_block,
    policy_task,
    runs_own_net,
    uniform,
)


def _inputs(base_qp: int = 32, **kwargs: object) -> PolicyInput:
    frame = np.zeros((136, 200, 3), np.uint8)  # 3x4 CTUs, 9x13 blocks
    return PolicyInput(frame, base_qp, (3, 4), **kwargs)  # type: ignore[arg-type]


def per_block(inputs: PolicyInput) -> np.ndarray:
    """-4 on the first block row, +4 elsewhere."""
    out = np.full(inputs.block_shape, 4, np.int32)
    out[0] = -4
    return out


per_block.offset_block = 16  # type: ignore[attr-defined]


def frame_counter(inputs: PolicyInput) -> np.ndarray:
    """Counts the frames it has seen in the clip's state and offsets every CTU by that count."""
    inputs.state["seen"] = inputs.state.get("seen", 0) + 1
    return np.full(inputs.ctu_shape, inputs.state["seen"] - 1, np.int32)


def test_offsets_may_be_per_ctu_or_per_block_and_are_clipped() -> None:
    inputs = _inputs(base_qp=49)
    assert inputs.block_shape == (9, 13)
    blocks = apply_offsets(per_block, inputs)
    assert blocks.shape == (9, 13) and blocks[0, 0] == -4 and blocks[1, 0] == 2  # 49 + 4 clipped to 51
    np.testing.assert_array_equal(apply_offsets(uniform, inputs), np.zeros((3, 4), np.int32))
    with pytest.raises(InvalidInputError, match=r"shape \(2, 2\).*\(3, 4\).*\(9, 13\)"):
        apply_offsets(lambda _: np.zeros((2, 2)), inputs)
    with pytest.raises(InvalidInputError, match="NaN"):
        apply_offsets(lambda _: np.full((3, 4), np.nan), inputs)


def test_policies_declare_what_they_need() -> None:
    assert not needs_regions(uniform) and needs_regions(RoiPolicy()) and needs_regions(per_block)
    assert not runs_own_net(uniform) and not runs_own_net(per_block)
    assert policy_task(uniform) is None
    assert offset_block(uniform) == 64 and offset_block(per_block) == 16
    from semrl.agent.shipped import LazyPolicy

    lazy = LazyPolicy("segmentation")
    # declared on the class: asking must not load the model and its net
    assert not needs_regions(lazy) and runs_own_net(lazy) and policy_task(lazy) == "segmentation"
    assert lazy._policy is None


def test_resolver_names_every_kind_of_spec(tmp_path: Path) -> None:
    assert resolve_policy("uniform") is uniform
    assert resolve_policy("roi", roi_delta=5) == RoiPolicy(delta=5)
    assert resolve_policy("semrl.policy:uniform") is uniform
    assert resolve_policy(f"{__file__}:per_block").__name__ == "per_block"
    (tmp_path / "mine.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Fixed:\n    delta: int = 3\n"
        "    def __call__(self, inputs):\n        return [[self.delta] * inputs.ctu_shape[1]] * inputs.ctu_shape[0]\n"
        "fixed = Fixed()\n"
    )
    assert apply_offsets(resolve_policy(f"{tmp_path / 'mine.py'}:fixed"), _inputs())[0, 0] == 3  # a dataclass in a file
    from semrl.agent import shipped

    assert resolve_policy("semrl.agent.shipped:detection", task="detection") is shipped.detection
    with pytest.raises(PolicyMismatchError, match="serves detection, not segmentation"):
        resolve_policy("semrl.agent.shipped:detection", task="segmentation")
    with pytest.raises(InvalidInputError, match="has no attribute 'nope'"):
        resolve_policy("semrl.policy:nope")
    with pytest.raises(InvalidInputError, match="cannot import module"):
        resolve_policy("no_such_module_xyz:fn")
    with pytest.raises(InputNotFoundError, match="checkpoint not found"):
        resolve_policy(str(tmp_path / "missing.zip"))
    assert ".pt" not in CHECKPOINT_LOADERS
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"no loader for '\.pt'"):
        resolve_policy(str(tmp_path / "model.pt"))
    with pytest.raises(InvalidInputError, match=r"expected uniform, roi, x265, detection, .*, video-reference, a"):
        resolve_policy("justaname")


@pytest.mark.x265
def test_encode_takes_block_offsets_and_carries_state_across_a_clip(tmp_path: Path) -> None:
    from semrl.pipeline import EncodeSettings, encode_video

    settings = EncodeSettings(policy=f"{__name__}:frame_counter", max_frames=4, map_interval=1, preset="ultrafast",
                              qp=30, gop="intra")  # fmt: skip
    report = encode_video(None, tmp_path / "state.hevc", settings)
    assert [r.mean_qp for r in report.rows] == [30.0, 31.0, 32.0, 33.0]  # one state dict for the clip
    settings = EncodeSettings(policy=f"{__name__}:per_block", max_frames=1, preset="ultrafast", qp=30, gop="intra")
    report = encode_video(None, tmp_path / "blocks.hevc", settings)
    assert 30.0 < report.rows[0].mean_qp < 34.0  # the first block row at 26, the rest at 34


def test_a_policy_sees_the_class_and_confidence_of_each_box_and_ones_that_do_not_match_are_refused() -> None:
    from types import SimpleNamespace

    from semrl.bench.runner import _run_policy
    from semrl.bench.tasknet import Analysis
    from semrl.codec import EncoderConfig, Gop, Yuv420
    from semrl.policy import TrialCoding

    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    with pytest.raises(InvalidInputError, match="1 classes for 2 boxes"):
        _inputs(boxes=boxes, cls=np.array([3], np.int64))
    with pytest.raises(InvalidInputError, match="3 confidences for 2 boxes"):
        _inputs(boxes=boxes, conf=np.ones(3, np.float32))
    assert _inputs(boxes=boxes).cls.shape == _inputs(boxes=boxes).conf.shape == (0,)  # both are optional

    frames = [Yuv420.from_rgb(np.zeros((136, 200, 3), np.uint8)) for _ in range(2)]
    region = np.zeros((136, 200), bool)
    cls = [np.array([0, 67], np.int64), np.array([2], np.int64)]
    conf = [np.array([0.875, 0.25], np.float32), np.array([0.5], np.float32)]
    analysis = Analysis([region, region], [boxes, boxes[:1]], cls, conf)
    seen: list[tuple[list[int], list[float]]] = []

    codings: list[object] = []

    def policy(inputs: PolicyInput) -> np.ndarray:
        seen.append((inputs.cls.tolist(), inputs.conf.tolist()))
        codings.append(inputs.coding)
        return np.zeros(inputs.ctu_shape, np.int32)

    method = SimpleNamespace(policy=policy, crf=False)
    item = SimpleNamespace(yuv=frames, shape=(135, 199))  # odd: coded padded to 136x200
    _run_policy(method, item, analysis, 32, EncoderConfig(width=200, height=136), None)  # type: ignore[arg-type]
    assert seen == [([0, 67], [0.875, 0.25]), ([2], [0.5])]
    assert codings == [None, None]  # low delay: a frame leans on the ones before, no trial coding
    intra = EncoderConfig(width=200, height=136, gop=Gop.INTRA)
    _run_policy(method, item, analysis, 32, intra, None)  # type: ignore[arg-type]
    assert codings[2:] == [TrialCoding(intra, (135, 199))] * 2  # pictures: as the benchmark codes and shows them

"""The shipped detection policy on a real picture, with the real detector (as the benchmark calls it)."""

from __future__ import annotations

import numpy as np
import pytest
from shared_assets import require_assets

pytestmark = [pytest.mark.weights, pytest.mark.x265, pytest.mark.slow]


def test_shipped_detection_policy_gives_offsets_in_range() -> None:
    require_assets("models/yolov8n.pt")
    from envs.tables import load_pictures
    from semrl.agent import resolve_policy, shipped
    from semrl.policy import PolicyInput, apply_offsets

    policy = resolve_policy("semrl.agent.shipped:detection")
    assert policy is shipped.detection
    frame = load_pictures("coco8", split="val", limit=1)[0].frame
    shape = (-(-frame.shape[0] // 64), -(-frame.shape[1] // 64))
    for base in (22, 37, 51):
        inputs = PolicyInput(frame, base, shape, None, np.zeros((0, 4), np.float32))
        offsets = apply_offsets(policy, inputs)
        assert offsets.shape == inputs.block_shape  # refined per 16x16 block
        assert np.all((base + offsets >= 12) & (base + offsets <= 51))
        per_ctu = policy.load().offsets_for(frame, base)
        assert per_ctu.shape == shape
        fine = np.kron(per_ctu, np.ones((4, 4), np.int32))[: offsets.shape[0], : offsets.shape[1]]
        steps = set(np.unique(offsets - np.minimum(fine, 51 - base)))
        assert steps <= ({0} if base < 27 else {0, 1, 2, 3, 4})  # +4 on background from base QP 27, clipped
    assert shipped.detection.fingerprint.startswith("semrl-shipped:detection:")
    assert shipped.detection.fingerprint.endswith(":refine=4:8:from27:answer=3x3:trade0.1-2:roi4+8+12")
    assert policy.offset_block == 16


def test_a_checkpoint_path_loads_as_a_benchmark_policy() -> None:
    require_assets("models/yolov8n.pt")
    from semrl.agent import resolve_policy
    from semrl.agent.checkpoint import TrainedPolicy, shipped_policy
    from semrl.codec import ScalingLists
    from semrl.policy import scaling_lists

    policy = resolve_policy(str(shipped_policy("segmentation")))
    assert isinstance(policy, TrainedPolicy) and policy.task == "segmentation"
    assert scaling_lists(policy) == ScalingLists(5.0)  # its tables were coded with them: so is every coding of it
    assert policy.fingerprint.endswith(":answer=3x3:background:trade0.1-2:sl=5^1")


def test_trained_policy_maps_small_frames_at_their_own_size() -> None:
    require_assets("models/yolov8n.pt")
    from envs.observation import static_grids
    from envs.tables import load_pictures
    from semrl.agent.checkpoint import load_checkpoint_policy

    policy = load_checkpoint_policy("detection", strict=False)
    frame = load_pictures("coco8", split="val", limit=1)[0].frame
    small = np.ascontiguousarray(frame[: frame.shape[0] // 2 // 2 * 2, : frame.shape[1] // 2 // 2 * 2])
    native = -(-max(small.shape[:2]) // 32) * 32
    assert native < policy.extractor.config.imgsz
    expected = policy.extractor.with_input_size(native).extract([small], color="rgb")[0].values
    upscaled = policy.extractor.extract([small], color="rgb")[0].values
    assert not np.array_equal(expected, upscaled)  # the size matters, so the check below can fail
    np.testing.assert_array_equal(policy._analyse(small)[0], static_grids(small, expected))
    # a frame as large as the trained input is mapped at that input size
    full = policy.extractor.extract([frame], color="rgb")[0].values
    np.testing.assert_array_equal(policy._analyse(frame)[0], static_grids(frame, full))


def test_fast_mode_oracle_bounds_the_shipped_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    require_assets("models/yolov8n.pt")
    from pathlib import Path

    from envs.semantic_qp import SemanticQPEnv
    from envs.tables import build_tables, load_pictures
    from semrl.agent import resolve_policy
    from semrl.agent.checkpoint import load_checkpoint_policy, shipped_policy
    from semrl.policy import PolicyInput

    monkeypatch.setenv("SEMRL_ORACLE_CKPT", str(shipped_policy("detection")))
    oracle = resolve_policy(str(Path(__file__).resolve().parents[1] / "benchmarks" / "oracle_policy.py") + ":oracle")
    policy = load_checkpoint_policy("detection", strict=False)
    picture = load_pictures("coco8", split="val", limit=1)[0]
    table = build_tables(
        [picture], codec_factory=oracle.codec_factory, extractor_factory=oracle.extractor_factory, progress=False
    )[0]
    env = SemanticQPEnv([table], settings=oracle.settings, lambdas=oracle.lambdas)
    shape = table.ctu_shape
    for base in (27, 42):
        inputs = PolicyInput(picture.frame, base, shape, None, np.zeros((0, 4), np.float32))
        rewards = env.reward_table(0, base)
        returns = []
        for offsets in (oracle(inputs), policy.offsets_for(picture.frame, base)):  # per CTU, as the fast mode
            actions = [int(np.flatnonzero(env.qp_of(np.arange(len(env.offsets)), base) == base + o)[0])
                       for o in offsets.reshape(-1)]  # fmt: skip
            returns.append(float(rewards[np.arange(len(actions)), actions].sum()))
        assert returns[0] >= returns[1] - 1e-4
        assert returns[0] > 0  # the oracle beats uniform coding on the fast-mode reward

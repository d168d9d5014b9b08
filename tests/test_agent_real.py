"""The shipped detection policy on a real picture, with the real detector (as the benchmark calls it)."""

from __future__ import annotations

import numpy as np
import pytest

from semrl.assets import assets_root

pytestmark = [pytest.mark.weights, pytest.mark.x265, pytest.mark.slow]


def test_shipped_detection_policy_gives_offsets_in_range() -> None:
    root = assets_root()
    if root is None or not (root / "models" / "yolov8n.pt").is_file():
        pytest.skip("semrl assets folder (models/, datasets/) not found: set SEMRL_ASSETS")
    from envs.tables import load_pictures
    from semrl.agent import shipped
    from semrl.bench.policy import PolicyInput, apply_offsets, load_policy

    policy = load_policy("semrl.agent.shipped:detection")
    assert policy is shipped.detection
    frame = load_pictures("coco8", split="val", limit=1)[0].frame
    shape = (-(-frame.shape[0] // 64), -(-frame.shape[1] // 64))
    for base in (22, 37, 51):
        offsets = apply_offsets(policy, PolicyInput(frame, base, shape, None, np.zeros((0, 4), np.float32)))
        assert offsets.shape == shape
        assert np.all((base + offsets >= 12) & (base + offsets <= 51))
    assert shipped.detection.fingerprint.startswith("semrl-shipped:detection:")

"""Frame-level rate control: the model, on a simulated encoder, and with the real x265."""

from __future__ import annotations

import numpy as np
import pytest
from shared_assets import require_assets

from semrl.errors import InvalidInputError
from semrl.ratecontrol import MAX_STEP, RateController


def simulate(kbps: float, fps: float, frames: int, keyint: int = 1000, seed: int = 0) -> tuple[list[int], list[int]]:
    """A fake encoder: bits = c * 2^(-q/6) with content that changes, I-frames 6x a P-frame; x265's I offset -3."""
    rng = np.random.default_rng(seed)
    rate = RateController(kbps, fps, 32)
    rate.calibrate({27: 6e5 * 2 ** (-27 / 6), 37: 6e5 * 2 ** (-37 / 6)})
    bits, qps = [], []
    for i in range(frames):
        intra = i % keyint == 0
        asked = rate.next_qp(intra, i)
        actual = asked - 3 if intra else asked
        c = (6e5 if intra else 1e5) * (1.5 if 40 <= i < 80 else 1.0) * rng.uniform(0.8, 1.25)
        b = int(c * 2 ** (-actual / 6))
        rate.update(b, actual, intra, i)
        bits.append(b)
        qps.append(asked)
    return bits, qps


@pytest.mark.parametrize("kbps", [30.0, 100.0, 400.0])
def test_the_stream_lands_on_the_target_and_no_second_bursts(kbps: float) -> None:
    fps = 10.0
    bits, qps = simulate(kbps, fps, 150, keyint=50)
    achieved = sum(bits) * fps / len(bits) / 1000
    assert achieved == pytest.approx(kbps, rel=0.05)
    windows = [sum(bits[i : i + 10]) / (kbps * 1000) for i in range(len(bits) - 9)]
    assert max(windows) < 1.5
    p_steps = [abs(a - b) for i, (a, b) in enumerate(zip(qps[1:], qps[:-1], strict=True), 1) if i % 50 not in (0, 1)]
    assert max(p_steps) <= MAX_STEP  # no flicker between P-frames


def test_bad_targets_are_refused() -> None:
    for kbps in (0.0, -5.0, float("nan")):
        with pytest.raises(InvalidInputError, match="--bitrate"):
            RateController(kbps, 25.0, 32)


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_encode_holds_the_bitrate_with_the_real_encoder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from semrl.pipeline import EncodeSettings, encode_video

    pets = require_assets("videos/pets2009_s2l1_480x360.mp4") / "videos" / "pets2009_s2l1_480x360.mp4"
    report = encode_video(pets, tmp_path / "out.mp4", EncodeSettings(bitrate=60.0, max_frames=60, preset="ultrafast"))
    assert report.kbps == pytest.approx(60.0, rel=0.1)
    bits = [row.bits for row in report.rows]
    assert max(sum(bits[i : i + 10]) for i in range(len(bits) - 9)) < 1.5 * 60_000

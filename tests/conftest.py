"""Shared fixtures. Integration fixtures use the real patched x265 and fail (not skip) without it:
the README's test command builds it first."""

from __future__ import annotations

import numpy as np
import pytest

from semrl.codec import Yuv420
from semrl.samples import sample_clip


@pytest.fixture(scope="session")
def x265():  # type: ignore[no-untyped-def]
    """The loaded patched x265 (raises CodecLibraryError with set-up advice when missing)."""
    from semrl.codec import load_library

    return load_library()


@pytest.fixture(scope="session")
def clip() -> list[Yuv420]:
    """Eight 384x256 frames of real content with motion (6x4 CTUs)."""
    return [Yuv420.from_rgb(frame) for frame in sample_clip(8, width=384, height=256)]


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

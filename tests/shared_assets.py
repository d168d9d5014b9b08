"""The shared assets folder for integration tests, or a skip that says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from semrl.assets import assets_root


def require_assets(*required: str) -> Path:
    """The assets folder (``SEMRL_ASSETS``); skips the test, naming the reason, when it or a required path is missing.

    Args:
        required: Paths inside the folder the test needs (``models/yolov8n.pt``, ``datasets/coco8``).
    """
    root = assets_root()
    if root is None:
        pytest.skip("semrl assets folder (models/, datasets/, videos/) not found: set SEMRL_ASSETS")
    missing = [p for p in required if not (root / p).exists()]
    if missing:
        pytest.skip(f"semrl assets folder {root} lacks {', '.join(missing)}: set SEMRL_ASSETS")
    return root

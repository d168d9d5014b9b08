"""Where semrl keeps what it builds and caches."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SEMRL_CACHE"
"""Environment variable naming semrl's cache root."""


def cache_root() -> Path:
    """The cache folder: ``$SEMRL_CACHE``, else ``$XDG_CACHE_HOME/semrl``, else ``~/.cache/semrl``.

    The same rule as ``scripts/setup.sh`` and ``third_party/x265_patch/build.sh``. Not created here.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semrl"

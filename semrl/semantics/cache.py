"""On-disk cache of semantic maps, keyed by frame content and extractor fingerprint.

A map is stored once per (frame bytes, network weights hash, map settings), so training and
benchmarks that meet the same frame again read it instead of running the network. Files are
written to a temporary name and renamed, so concurrent readers never see a partial file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semrl.paths import cache_root
from semrl.semantics.extractors import SemanticExtractor
from semrl.semantics.frames import ColorOrder, Frame, to_bgr
from semrl.semantics.maps import SemanticMap

MAP_CACHE_ENV = "SEMRL_MAP_CACHE"
"""Environment variable naming the map cache folder (default ``<semrl cache>/maps``)."""


def frame_digest(frame: Frame) -> str:
    """sha256 of a BGR frame's shape and pixels."""
    h = hashlib.sha256(f"{frame.shape}:{frame.dtype}".encode())
    h.update(np.ascontiguousarray(frame).data)
    return h.hexdigest()


class MapCache:
    """A folder of cached maps: ``<root>/<fingerprint hash>/<frame hash>.npz``.

    Args:
        root: The folder; None uses ``$SEMRL_MAP_CACHE`` or ``~/.cache/semrl/maps``.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        env = os.environ.get(MAP_CACHE_ENV)
        self.root = Path(root) if root is not None else Path(env) if env else cache_root() / "maps"

    def path(self, fingerprint: str, frame: Frame) -> Path:
        """Where the map of ``frame`` (BGR) under ``fingerprint`` is stored."""
        fp = hashlib.sha256(fingerprint.encode()).hexdigest()[:24]
        return self.root / fp / f"{frame_digest(frame)}.npz"

    def get(self, fingerprint: str, frame: Frame) -> SemanticMap | None:
        """The cached map, or None when absent or unreadable."""
        p = self.path(fingerprint, frame)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                task: Any = str(z["task"])
                return SemanticMap(np.asarray(z["values"], np.float32), task, str(z["method"]))
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is recomputed and overwritten

    def put(self, fingerprint: str, frame: Frame, smap: SemanticMap) -> Path:
        """Store a map atomically; returns its path."""
        p = self.path(fingerprint, frame)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, values=smap.values, task=smap.task, method=smap.method)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p


class CachedExtractor:
    """Wraps an extractor so maps are read from a :class:`MapCache` when present.

    Args:
        extractor: The extractor computing missing maps (one batch for all misses).
        cache: The cache; None uses the default folder.
    """

    def __init__(self, extractor: SemanticExtractor, cache: MapCache | None = None) -> None:
        self.extractor = extractor
        self.cache = cache or MapCache()
        self.hits = 0
        self.misses = 0

    @property
    def task(self) -> str:
        """The wrapped extractor's task."""
        return self.extractor.task

    @property
    def fingerprint(self) -> str:
        """The wrapped extractor's fingerprint."""
        return self.extractor.fingerprint

    def extract(self, frames: Sequence[Frame], *, color: ColorOrder = "bgr") -> list[SemanticMap]:
        """Maps of ``frames``, computing and storing only those not cached yet."""
        bgr = to_bgr(frames, color)
        fp = self.extractor.fingerprint
        out: list[SemanticMap | None] = [self.cache.get(fp, f) for f in bgr]
        missing = [i for i, m in enumerate(out) if m is None]
        self.hits += len(bgr) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.extractor.extract([bgr[i] for i in missing])
            for i, m in zip(missing, fresh, strict=True):
                self.cache.put(fp, bgr[i], m)
                out[i] = m
        return [m for m in out if m is not None]

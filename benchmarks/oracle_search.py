r"""The real limit of per-CTU QP maps on detection: a greedy search with the real detector on the real decoded picture.

An upper-bound-style benchmark policy, not a method: it reads the picture's own labels. Per
picture, the CTUs are grouped by the labelled objects they touch (each CTU goes to the smallest
object touching its box grown by 8 px; more than ``max_groups - 2`` objects are grouped by COCO
size class) and the background (a ring of one CTU around the objects, and the rest). From every
group at QP 51, the search repeatedly lowers the QP of one group by one level (51, 47, 42, 37, 32,
27, 22) and keeps the move that raises the picture's mAP50-95 against its labels most per extra
bit, each candidate coded by the patched x265 (all-intra, the benchmark's preset) and scored by
the task net on the reconstruction (which FFmpeg decodes identically), until every group is at
22. The path traced runs from the coarsest to the finest map.

At a base QP ``b`` of the benchmark, the oracle returns the map of fewest bits on that path whose
score is at least uniform coding's at ``b`` (uniform at ``b`` itself when no map on the path does
better), so at every operating point it keeps each picture's accuracy with fewer bits where the
search found a way: its BD-rate against A1 is the saving a per-CTU map could reach on those
pictures. Greedy, so a bound from below on what exists; single-picture mAP is jumpy, so the path
is too.

Paths are cached under ``<semrl cache>/oracle_search`` (keyed by the picture, the labels, the
weights, the x265 build and the settings). Precompute them in parallel, then benchmark::

    python benchmarks/oracle_search.py --limit 20 --workers 2
    python benchmarks/bdrate.py --task detection --limit 20 \
        --policy oracle=benchmarks/oracle_search.py:oracle --policy semrl=detection \
        --output benchmarks/results/oracle_search
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.cache import x265_key
from semrl.bench.items import image_item
from semrl.codec import CTU_SIZE, Encoder, EncoderConfig, Gop, Yuv420, ctu_grid
from semrl.errors import InvalidInputError
from semrl.files import atomic_write
from semrl.paths import cache_root
from semrl.policy import PolicyInput

LEVELS = (51, 47, 42, 37, 32, 27, 22)
"""QPs a group steps through, coarse to fine."""
SEARCH_VERSION = 1
"""Bumped when a cached path changes meaning."""
MARGIN = 8  # pixels a labelled box is grown by before the CTUs it touches are found
SMALL, MEDIUM = 32**2, 96**2  # COCO's object size classes (pixel area)


@dataclass(frozen=True)
class PathPoint:
    """One QP map on the search path.

    Attributes:
        qp: (rows, cols) QP of every CTU.
        bits: Bits of the coded picture.
        score: mAP50-95 of the task net on the reconstruction against the picture's labels.
    """

    qp: NDArray[np.int32]
    bits: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    """A picture's search path and its uniform curve (QP -> (bits, score)) at the benchmark's points."""

    path: list[PathPoint]
    uniform: dict[int, tuple[int, float]]
    evaluations: int
    seconds: float

    def to_json(self) -> str:
        """JSON text of the result."""
        return json.dumps(
            {
                "path": [{"qp": p.qp.tolist(), "bits": p.bits, "score": p.score} for p in self.path],
                "uniform": {str(q): list(v) for q, v in self.uniform.items()},
                "evaluations": self.evaluations,
                "seconds": self.seconds,
            }
        )

    @staticmethod
    def from_json(text: str) -> SearchResult:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        path = [PathPoint(np.asarray(p["qp"], np.int32), int(p["bits"]), float(p["score"])) for p in d["path"]]
        uniform = {int(q): (int(v[0]), float(v[1])) for q, v in d["uniform"].items()}
        return SearchResult(path, uniform, int(d["evaluations"]), float(d["seconds"]))

    def offsets(self, base_qp: int) -> NDArray[np.int32]:
        """The map of fewest bits scoring at least uniform coding at ``base_qp``, as offsets from it."""
        if base_qp not in self.uniform:
            raise InvalidInputError(f"no uniform point at base QP {base_qp}; searched at {sorted(self.uniform)}")
        bits, score = self.uniform[base_qp]
        best = min((p for p in self.path if p.score >= score and p.bits < bits), key=lambda p: p.bits, default=None)
        shape = self.path[0].qp.shape
        return np.zeros(shape, np.int32) if best is None else (best.qp - base_qp).astype(np.int32)


def ctu_groups(boxes: NDArray[np.float32], shape: tuple[int, int], max_groups: int) -> NDArray[np.int32]:
    """Group id of every CTU: objects first (smallest object wins a CTU), then the ring, then the rest.

    Args:
        boxes: (N, 4) xyxy labelled boxes in pixels.
        shape: (H, W) of the coded picture.
        max_groups: Most groups; more objects than ``max_groups - 2`` are grouped by size class.

    Returns:
        int32 (rows, cols) ids 0..G-1, with no empty id.
    """
    h, w = shape
    rows, cols = ctu_grid(w, h)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    if len(boxes) > max_groups - 2:
        object_group = np.where(areas < SMALL, 0, np.where(areas < MEDIUM, 1, 2))
    else:
        object_group = np.arange(len(boxes))
    ids = np.full((rows, cols), -1, np.int32)
    best_area = np.full((rows, cols), np.inf)
    near = np.zeros((rows, cols), bool)
    for box, area, group in zip(boxes, areas, object_group, strict=True):
        x0, y0, x1, y1 = box
        r0, r1 = int(max(y0 - MARGIN, 0) // CTU_SIZE), int(min(y1 + MARGIN, h - 1) // CTU_SIZE)
        c0, c1 = int(max(x0 - MARGIN, 0) // CTU_SIZE), int(min(x1 + MARGIN, w - 1) // CTU_SIZE)
        touched = np.zeros((rows, cols), bool)
        touched[r0 : r1 + 1, c0 : c1 + 1] = True
        wins = touched & (area < best_area)
        ids[wins], best_area[wins] = group, area
        near[max(r0 - 1, 0) : r1 + 2, max(c0 - 1, 0) : c1 + 2] = True
    objects = int(object_group.max()) + 1 if len(boxes) else 0
    ids[(ids < 0) & near] = objects
    ids[ids < 0] = objects + 1
    _, dense = np.unique(ids, return_inverse=True)  # drop empty ids
    return dense.reshape(rows, cols).astype(np.int32)


class Searcher:
    """Codes a picture with QP maps and scores the reconstruction against labels (one per process).

    Args:
        weights: Detector weights.
        preset: x265 preset (the benchmark's).
    """

    def __init__(self, weights: str = "yolov8n.pt", preset: str = "medium") -> None:
        from semrl.semantics.yolo import YoloNet

        self.net = YoloNet(weights, device="cpu")
        self.preset = preset

    def evaluate(self, item: Any, target: Any, qp: NDArray[np.int32]) -> tuple[int, float]:
        """Bits and mAP50-95 of the picture coded with the absolute per-CTU QPs ``qp``."""
        from semrl.fidelity.detection import mean_average_precision
        from semrl.semantics.yolo import InferenceSettings

        yuv: Yuv420 = item.yuv[0]
        base = int(qp.max())
        config = EncoderConfig(yuv.width, yuv.height, qp=base, preset=self.preset, gop=Gop.INTRA, threads=1)
        with Encoder(config) as encoder:
            coded = encoder.encode(yuv, (qp - base).astype(np.int32)) + encoder.flush()
        h, w = item.shape
        decoded = coded[0].recon.to_rgb()[:h, :w]
        pred = self.net.detect([decoded], InferenceSettings(), color="rgb")[0]
        return int(coded[0].bits), float(mean_average_precision([pred], [target]).map50_95)

    def search(self, item: Any, max_groups: int, points: tuple[int, ...]) -> SearchResult:
        """The greedy path and the uniform curve of one labelled picture."""
        from semrl.fidelity.labels import read_yolo_labels

        start = time.perf_counter()
        target = read_yolo_labels(item.label, item.shape)
        yuv: Yuv420 = item.yuv[0]
        groups = ctu_groups(target.boxes, (yuv.height, yuv.width), max_groups)
        n_groups = int(groups.max()) + 1
        memo: dict[tuple[int, ...], tuple[int, float]] = {}

        def score_of(state: tuple[int, ...]) -> tuple[int, float]:
            if state not in memo:
                memo[state] = self.evaluate(item, target, np.asarray(LEVELS, np.int32)[np.asarray(state)][groups])
            return memo[state]

        state = (0,) * n_groups
        path = [self._point(state, groups, score_of(state))]
        while any(level < len(LEVELS) - 1 for level in state):
            bits, score = score_of(state)
            best: tuple[float, int, tuple[int, ...]] | None = None
            for g in range(n_groups):
                if state[g] == len(LEVELS) - 1:
                    continue
                moved = (*state[:g], state[g] + 1, *state[g + 1 :])
                new_bits, new_score = score_of(moved)
                extra = max(new_bits - bits, 1)
                key = ((new_score - score) / extra, -extra, moved)
                if best is None or key[:2] > best[:2]:
                    best = key
            assert best is not None
            state = best[2]
            path.append(self._point(state, groups, score_of(state)))
        uniform = {}
        for q in points:
            config_qp = np.full(groups.shape, q, np.int32)
            uniform[q] = self.evaluate(item, target, config_qp)
        return SearchResult(path, uniform, len(memo) + len(points), time.perf_counter() - start)

    @staticmethod
    def _point(state: tuple[int, ...], groups: NDArray[np.int32], result: tuple[int, float]) -> PathPoint:
        qp = np.asarray(LEVELS, np.int32)[np.asarray(state)][groups]
        return PathPoint(qp, result[0], result[1])


BENCH_POINTS = (22, 27, 32, 37, 42, 47, 51)
"""The benchmark's default base QPs (``benchmarks/bdrate.py --qps``)."""


class SearchOracle:
    """The search as a benchmark policy for the detection setting (see the module docstring).

    Args:
        data: Dataset whose labelled pictures the benchmark codes (the oracle finds each frame's
            labels by its content).
        weights: Detector weights (the benchmark's).
        preset: x265 preset (the benchmark's).
        max_groups: Most CTU groups a picture is searched over.
        cache_dir: Where paths are cached (default ``<semrl cache>/oracle_search``).
    """

    needs_regions = False
    runs_own_net = True
    task = "detection"

    def __init__(
        self,
        data: str = "coco-det",
        weights: str = "yolov8n.pt",
        preset: str = "medium",
        max_groups: int = 8,
        cache_dir: Path | None = None,
    ) -> None:
        self.data, self.weights, self.preset, self.max_groups = data, weights, preset, max_groups
        self.cache_dir = cache_dir or cache_root() / "oracle_search"
        self._items: dict[str, Any] | None = None
        self._searcher: Searcher | None = None
        self._results: dict[str, SearchResult] = {}

    @property
    def fingerprint(self) -> str:
        """The settings."""
        return f"oracle-search:v{SEARCH_VERSION}:{self.data}:{self.weights}:{self.preset}:g{self.max_groups}"

    def items(self) -> dict[str, Any]:
        """The dataset's val pictures as benchmark items, by the digest of the frame a policy sees."""
        if self._items is None:
            from semrl.fidelity.labels import dataset_images

            self._items = {}
            for im in dataset_images(self.data):
                item = image_item(im.image, im.label)
                self._items[_frame_digest(item.yuv[0].to_rgb())] = item
        return self._items

    def result(self, item: Any) -> SearchResult:
        """The cached or computed search of one item."""
        from semrl.assets import file_sha256, resolve_weights

        key_text = json.dumps(
            [
                self.fingerprint,
                item.digest,
                item.label_digest,
                file_sha256(resolve_weights(self.weights)),
                x265_key()[0],
            ]
        )
        key = hashlib.sha256(key_text.encode()).hexdigest()
        if key in self._results:
            return self._results[key]
        path = self.cache_dir / f"{key}.json"
        if path.is_file():
            result = SearchResult.from_json(path.read_text())
        else:
            if self._searcher is None:
                self._searcher = Searcher(self.weights, self.preset)
            result = self._searcher.search(item, self.max_groups, BENCH_POINTS)
            atomic_write(path, result.to_json())
        self._results[key] = result
        return result

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """Offsets of the fewest-bit map on the picture's path that keeps uniform coding's score."""
        item = self.items().get(_frame_digest(inputs.frame))
        if item is None:
            raise InvalidInputError(
                f"oracle-search: a frame of {inputs.frame.shape} that is not a picture of {self.data}"
            )
        result = self.result(item)
        offsets = result.offsets(int(inputs.base_qp))
        if offsets.shape != tuple(inputs.ctu_shape):
            raise InvalidInputError(f"oracle-search: path grid {offsets.shape}, frame grid {inputs.ctu_shape}")
        return offsets


def _frame_digest(frame: NDArray[np.uint8]) -> str:
    return hashlib.sha256(np.ascontiguousarray(frame).tobytes() + str(frame.shape).encode()).hexdigest()


oracle = SearchOracle()
"""The oracle of the detection benchmark (coco-det val, yolov8n, preset medium)."""


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _precompute(index: int) -> tuple[int, int, float]:
    items = list(oracle.items().values())
    result = oracle.result(items[index])
    return index, result.evaluations, result.seconds


def main(argv: list[str] | None = None) -> int:
    """Precompute the search of the first ``--limit`` val pictures in ``--workers`` processes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="first N pictures of the benchmark (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    count = min(args.limit, len(oracle.items()))
    with multiprocessing.get_context("spawn").Pool(args.workers, _init_worker) as pool:
        for index, evaluations, seconds in pool.imap_unordered(_precompute, range(count)):
            print(f"picture {index}: {evaluations} encodes in {seconds:.0f} s", flush=True)
    print(f"{count} pictures in {time.perf_counter() - start:.0f} s with {args.workers} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())

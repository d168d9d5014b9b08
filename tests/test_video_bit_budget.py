"""benchmarks/video_bit_budget.py: A1's bits split by what each CTU holds, on the real x265."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from benchmark_scripts import load_benchmark

from semrl.bench.cache import Cache
from semrl.bench.encoding import encoder_config
from semrl.bench.items import TASKS, Item
from semrl.bench.runner import Context, Method
from semrl.bench.tasknet import Analysis
from semrl.codec import Encoder, Yuv420
from semrl.policy import RoiPolicy


def test_a_ctu_changed_only_where_enough_of_its_pixels_moved_enough() -> None:
    bb = load_benchmark("video_bit_budget")
    before = np.zeros((128, 192), np.float32)
    after = before + 5  # a small change everywhere: noise, not motion
    after[10:40, 70:110] = 60  # a real change inside CTU (0, 1)
    changed = bb.changed_ctus(before, after, (2, 3))
    assert changed.tolist() == [[False, True, False], [False, False, False]]
    assert not bb.changed_ctus(before, before + 5, (2, 3)).any()


def _item(clip: list[Yuv420]) -> Item:
    h, w = clip[0].y.shape
    return Item("clip", "digest", [f.to_rgb() for f in clip], clip, (h, w), fps=25.0, clip="clip")


def _analysis(clip: list[Yuv420], region: slice) -> Analysis:
    h, w = clip[0].y.shape
    regions = []
    for _ in clip:
        r = np.zeros((h, w), bool)
        r[:, region] = True
        regions.append(r)
    n = len(clip)
    return Analysis(
        regions, [np.zeros((0, 4), np.float32)] * n, [np.zeros(0, np.int64)] * n, [np.zeros(0, np.float32)] * n
    )


def _context(item: Item, analysis: Analysis, tmp_path: Path) -> Context:
    net = SimpleNamespace(fingerprint="fake-net")  # coding() only names the net in its cache keys
    return Context(TASKS["video"], [item], net, Cache(tmp_path), [analysis], "medium", 250, "x265", False)  # type: ignore[arg-type]


def test_the_split_adds_up_to_every_bit_of_the_stream_and_follows_the_objects(  # type: ignore[no-untyped-def]
    x265, clip: list[Yuv420], tmp_path: Path
) -> None:
    bb = load_benchmark("video_bit_budget")
    item = _item(clip)
    w = clip[0].y.shape[1]
    config = encoder_config(item, 32, crf=False, video=True, preset="medium", keyint=250)
    with Encoder(config) as encoder:
        total = sum(c.bits for frame in clip for c in encoder.encode(frame)) + sum(c.bits for c in encoder.flush())
    a1 = Method("uniform", "A1", (32,))
    half = _analysis(clip, slice(0, w // 2))
    left = bb.budget(_context(item, half, tmp_path), a1, item, half, bb.ctu_masks(item, half), 32)
    assert sum(left.values()) == total  # the same coding, every bit accounted for once
    assert min(left.values()) >= 0 and left["intra_objects"] > 0 and left["intra_background"] > 0
    whole = _analysis(clip, slice(0, w))
    everything = bb.budget(_context(item, whole, tmp_path), a1, item, whole, bb.ctu_masks(item, whole), 32)
    assert everything["intra_background"] == everything["moving"] == everything["static"] == 0
    empty = _analysis(clip, slice(0, 0))
    nothing = bb.budget(_context(item, empty, tmp_path), a1, item, empty, bb.ctu_masks(item, empty), 32)
    assert nothing["intra_objects"] == nothing["objects_moving"] == nothing["objects_static"] == 0
    assert nothing["moving"] + nothing["static"] > 0
    # A policy's offsets are coded as the benchmark codes them: ROI makes the objects' half dearer.
    roi_method = Method("roi", "A3", (32,), policy=RoiPolicy(8))
    roi = bb.budget(_context(item, half, tmp_path), roi_method, item, half, bb.ctu_masks(item, half), 32)
    assert roi["intra_objects"] > left["intra_objects"] and roi["intra_background"] < left["intra_background"]

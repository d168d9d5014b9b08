"""benchmarks/video_bit_budget.py: A1's bits split by what each CTU holds, on the real x265."""

from __future__ import annotations

import numpy as np
from benchmark_scripts import load_benchmark

from semrl.bench.items import Item
from semrl.bench.tasknet import Analysis
from semrl.codec import EncoderConfig, Yuv420


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
    return Analysis(regions, [np.zeros((0, 4), np.float32)] * len(clip), [np.zeros(0, np.int64)] * len(clip))


def test_the_split_adds_up_to_every_bit_of_the_stream_and_follows_the_objects(x265, clip: list[Yuv420]) -> None:  # type: ignore[no-untyped-def]
    bb = load_benchmark("video_bit_budget")
    item = _item(clip)
    h, w = clip[0].y.shape
    config = EncoderConfig(w, h, qp=32, preset="medium", threads=1, fps=(25025, 1001), gop="ldp", keyint=250)
    from semrl.codec import Encoder

    with Encoder(config) as encoder:
        total = sum(c.bits for frame in clip for c in encoder.encode(frame)) + sum(c.bits for c in encoder.flush())
    left = bb.budget(item, _analysis(clip, slice(0, w // 2)), 32, "ldp", 250)
    assert sum(left.values()) == total  # the same coding, every bit accounted for once
    assert min(left.values()) >= 0 and left["intra_objects"] > 0 and left["intra_background"] > 0
    everything = bb.budget(item, _analysis(clip, slice(0, w)), 32, "ldp", 250)
    assert everything["intra_background"] == everything["moving"] == everything["static"] == 0
    nothing = bb.budget(item, _analysis(clip, slice(0, 0)), 32, "ldp", 250)
    assert nothing["intra_objects"] == nothing["objects_moving"] == nothing["objects_static"] == 0
    assert nothing["moving"] + nothing["static"] > 0

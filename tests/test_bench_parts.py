"""The benchmark's parts without x265 or weights: score records, the task metric, analyses, the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from semrl.bench.cache import BENCH_VERSION, Cache, analysis_key, encode_key, eval_key
from semrl.bench.encoding import encoder_config
from semrl.bench.items import Item, pad_even, sha256_hex
from semrl.bench.tasknet import (
    Analysis,
    PooledScores,
    classified,
    pack_analysis,
    pack_scores,
    task_metric,
    unpack_analysis,
    unpack_scores,
)
from semrl.codec import QP_MAX, ScalingLists, Yuv420
from semrl.fidelity.detection import FrameMatches, match_frame, mean_average_precision, pseudo_gt_map
from semrl.semantics.yolo import Detections


def _dets(boxes: list[list[float]], conf: list[float], cls: list[int]) -> Detections:
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(conf, np.float32),
        np.asarray(cls, np.int64),
        (100, 100),
    )


PREDS = [
    _dets([[11, 10, 50, 51], [60, 62, 90, 90], [0, 0, 9, 9]], [0.9, 0.8, 0.05], [0, 1, 0]),
    _dets([], [], []),
    _dets([[26, 24, 76, 74]], [0.7], [0]),
]
GTS = [
    _dets([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 1], [0, 1]),
    _dets([[5, 5, 40, 40]], [1], [1]),
    _dets([[20, 20, 70, 70]], [1], [0]),
]


def _scores(preds: list[Detections], gts: list[Detections]) -> list[FrameMatches]:
    return [match_frame(p, g) for p, g in zip(preds, gts, strict=True)]


def _item(h: int = 64, w: int = 96) -> Item:
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Item("a.png", "d" * 64, [rgb], [Yuv420.from_rgb(pad_even(rgb))], (h, w), label_digest="L")


def test_video_scores_against_the_sure_finds_only_when_asked_and_cache_apart() -> None:
    import dataclasses

    from semrl.bench.items import TASKS
    from semrl.bench.tasknet import TaskNet
    from semrl.fidelity.detection import average_precision

    video = TASKS["video"]
    sure = dataclasses.replace(video, sure_conf=0.5)
    assert (video.scoring, sure.scoring) == ("video", "video:sure=0.5")
    item = _item()
    assert eval_key(item, "k", video.scoring, "w") != eval_key(item, "k", sure.scoring, "w")
    # The original: a sure person and an unsure one; decoded, the unsure one is found first.
    sure_box, unsure_box = [5, 5, 30, 60], [50, 5, 90, 60]
    analysis = Analysis([np.zeros((64, 96), bool)], [np.array([sure_box, unsure_box], np.float32)],
                        [np.array([0, 0])], [np.array([0.9, 0.3], np.float32)])  # fmt: skip
    decoded = Detections(np.array([unsure_box, sure_box], np.float32), np.array([0.95, 0.9], np.float32),
                         np.array([0, 0]), (64, 96))  # fmt: skip
    scores = {}
    for spec in (video, sure):
        net = TaskNet.__new__(TaskNet)
        net.task, net._targets = spec, {}
        scores[spec.scoring] = average_precision([net._match(item, 0, decoded, analysis)], "coco").map50_95
    # Both persons are ground truth by default: both found, AP 1; with only the sure one, the
    # other's detection is don't care (not a false positive ranked first, which would give 0.5).
    assert scores == {"video": 1.0, "video:sure=0.5": 1.0}
    net = TaskNet.__new__(TaskNet)
    net.task, net._targets = sure, {}
    matches = net._match(item, 0, decoded, analysis)
    assert len(matches.target_cls) == 1 and len(matches.conf) == 1


def test_task_metric_is_the_fidelity_metric_of_the_pooled_scores() -> None:
    scores = _scores(PREDS, GTS)
    full = mean_average_precision(PREDS, GTS)
    assert task_metric("detection", scores) == (full.map50_95, full.map50)
    assert task_metric("segmentation", scores) == task_metric("detection", scores)
    coco = mean_average_precision(PREDS, GTS, ap_method="coco")
    assert task_metric("video", scores) == (coco.map50_95, coco.map50)
    sub = mean_average_precision([PREDS[2], PREDS[0]], [GTS[2], GTS[0]])
    assert task_metric("detection", [scores[2], scores[0]]) == (sub.map50_95, sub.map50)
    # video's pseudo ground truth from the reference's own objects: the reference scores exactly 1
    reference = _scores(PREDS, [Detections(p.above(0.25).boxes, np.ones(len(p.above(0.25)), np.float32),
                                           p.above(0.25).cls, p.shape) for p in PREDS])  # fmt: skip
    assert task_metric("video", reference) == (1.0, 1.0) == (pseudo_gt_map(PREDS, PREDS).map50_95, 1.0)
    labels = [classified(np.array([c]), np.array([0])) for c in (0, 1, 0, 0)]
    assert task_metric("classification", labels) == (0.75, 0.75)
    # the object-weighted quality: the fidelity layer's figure, and top-1 for classification
    assert PooledScores("video", scores).objects() == coco.map50_95_objects
    assert PooledScores("detection", scores).objects() == full.map50_95_objects != full.map50_95
    assert PooledScores("classification", labels).objects() == 0.75


def test_scores_round_trip_through_the_cache_arrays(tmp_path: Path) -> None:
    scores = [*_scores(PREDS, GTS), classified(np.array([3], np.int64), np.array([3], np.int64))]
    cache = Cache(tmp_path)
    cache.put_npz("eval", "k", pack_scores(scores))
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["k.npz"]  # no temporary left behind
    z = cache.get_npz("eval", "k")
    assert z is not None
    back = unpack_scores(z)
    assert len(back) == len(scores)
    for a, b in zip(scores, back, strict=True):
        for f in ("pred_cls", "target_cls", "tp", "conf"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert task_metric("detection", back[:3]) == task_metric("detection", scores[:3])
    assert cache.get_npz("eval", "missing") is None


def test_analysis_round_trips_through_the_cache_arrays() -> None:
    regions = [np.zeros((5, 7), bool), np.ones((5, 7), bool)]
    regions[0][1:3, 2:6] = True
    a = Analysis(regions, [np.zeros((0, 4), np.float32), np.array([[1, 2, 3, 4]], np.float32)],
                 [np.zeros(0, np.int64), np.array([7], np.int64)],
                 [np.zeros(0, np.float32), np.array([0.625], np.float32)])  # fmt: skip
    b = unpack_analysis(pack_analysis(a, (5, 7)))
    assert all(np.array_equal(x, y) for x, y in zip(a.regions, b.regions, strict=True))
    assert [len(x) for x in b.boxes] == [0, 1] and b.boxes[1].tolist() == [[1, 2, 3, 4]] and b.cls[1][0] == 7
    assert [len(x) for x in b.conf] == [0, 1] and b.conf[1][0] == np.float32(0.625)


def test_encode_stats_need_their_stream(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_json("k", {"frame_bits": [1]})
    assert cache.get_json("k") is None
    cache.stream("k").write_bytes(b"\0\0\1")
    assert cache.get_json("k") == {"frame_bits": [1]}


def test_cache_keys_follow_what_the_result_depends_on() -> None:
    item = _item(63, 95)
    cfg = encoder_config(item, 37, crf=False, video=False, preset="medium", keyint=250)
    assert (cfg.width, cfg.height, cfg.qp) == (96, 64, 37)
    assert encoder_config(item, 55, crf=False, video=False, preset="medium", keyint=250).qp == QP_MAX
    assert encoder_config(item, 30, crf=True, video=True, preset="fast", keyint=8).crf == 30.0
    offsets = [np.zeros((1, 2), np.int32)]
    key = encode_key(item, cfg, None, "x265:a")
    assert key == encode_key(item, cfg, None, "x265:a")
    assert len({key, encode_key(item, cfg, offsets, "x265:a"), encode_key(item, cfg, None, "x265:b")}) == 3
    steep = encoder_config(item, 37, crf=False, video=False, preset="medium", keyint=250, scaling_lists=ScalingLists(3))
    assert encode_key(item, steep, None, "x265:a") != key
    # flat codings keep the keys they had before configs held scaling lists
    fields = {k: v for k, v in cfg.__dict__.items() if k not in ("log_level", "scaling_lists")} | {"gop": "intra"}
    assert key == sha256_hex(
        json.dumps([BENCH_VERSION, item.digest, fields, "none", "x265:a"], sort_keys=True, default=str)
    )
    ev = eval_key(item, key, "detection", "w:1")
    assert len({ev, eval_key(item, key, "detection", "w:2"), eval_key(item, "reference", "detection", "w:1")}) == 3
    assert analysis_key(item, "detection", "w:1") != analysis_key(item, "segmentation", "w:1")


@pytest.mark.parametrize(("h", "w"), [(63, 95), (64, 96)])
def test_odd_pictures_are_padded_to_even(h: int, w: int) -> None:
    item = _item(h, w)
    assert item.coded_size == (w + w % 2, h + h % 2)
    assert item.reference(0).shape == (h, w, 3)


def _worker_dies(k: int) -> None:
    os._exit(3)


def test_a_worker_that_dies_fails_the_run_instead_of_hanging() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from semrl.bench.runner import map_forked

    with pytest.raises(BrokenProcessPool):
        list(map_forked(_worker_dies, [(1,), (2,)], workers=2))


def _write_slowly_or_die(k: int, folder: Path) -> None:
    import time

    from semrl.files import atomic_output

    if k == 0:  # dies abruptly once the other worker is in the middle of its atomic write
        deadline = time.monotonic() + 60
        while not list(folder.glob(".entry.json.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(3)
    with atomic_output(folder / "entry.json") as temporary:
        temporary.write_text("{")
        time.sleep(60)


def test_the_workers_a_broken_pool_terminates_leave_no_temporary_file(tmp_path: Path) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from semrl.bench.runner import map_forked

    with pytest.raises(BrokenProcessPool):
        list(map_forked(_write_slowly_or_die, [(0, tmp_path), (1, tmp_path)], workers=2))
    assert list(tmp_path.iterdir()) == []


def test_a_picture_below_one_ctu_is_refused_before_any_coding(tmp_path: Path) -> None:
    import cv2

    from semrl.bench.items import image_item
    from semrl.errors import InvalidInputError

    for size, refused in (((56, 76), True), ((64, 64), False)):
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        cv2.imwrite(str(path), np.full((*size, 3), 90, np.uint8))
        if refused:
            with pytest.raises(InvalidInputError, match=r"76x56 are smaller than x265's 64x64 coding tree unit"):
                image_item(path)
        else:
            assert image_item(path).coded_size == (64, 64)


def test_the_task_net_scores_at_fixed_threads_whatever_the_caller_runs_at() -> None:
    # A net's sums depend on its thread count; a benchmark's figures must not depend on --workers.
    import dataclasses

    import torch

    from semrl.bench.items import TASKS
    from semrl.bench.tasknet import NET_THREADS, TaskNet
    from semrl.semantics.yolo import MEMORY_FORMAT

    seen: list[int] = []

    class FakeClassifier:
        fingerprint = "fake.pt:0"

        def classify(self, frames: list[np.ndarray], color: str) -> np.ndarray:
            seen.append(torch.get_num_threads())
            return np.eye(3, dtype=np.float32)[[1] * len(frames)]

    net = TaskNet.__new__(TaskNet)
    net.task, net.net, net._targets = TASKS["classification"], FakeClassifier(), {}  # type: ignore[assignment]
    item = dataclasses.replace(_item(), class_id=1)
    before = torch.get_num_threads()
    torch.set_num_threads(NET_THREADS + 1)
    try:
        scores = net.score(item, item.source, Analysis([], [], [], []))
        assert torch.get_num_threads() == NET_THREADS + 1  # the caller's count is given back
    finally:
        torch.set_num_threads(before)
    assert seen == [NET_THREADS]
    assert len(scores) == 1
    assert net.fingerprint.endswith(f":{MEMORY_FORMAT}:threads={NET_THREADS}")  # caches made otherwise are not reused


class _FakeTaskNet:
    """A detector whose output on an item follows the item, and which can be told not to run."""

    fingerprint = "fake-net"

    def __init__(self) -> None:
        self.refuse = False

    def analyse_all(self, item: Item) -> tuple[Analysis, list[FrameMatches]]:
        assert not self.refuse, "the analysis was cached"
        k = int(item.name)
        region = np.zeros(item.shape, bool)
        region[:k, :k] = True
        analysis = Analysis(
            [region], [np.full((1, 4), k, np.float32)], [np.array([k], np.int64)], [np.ones(1, np.float32)]
        )
        return analysis, _scores([PREDS[(k + 1) % 3]], [GTS[(k + 1) % 3]])

    def score_all(
        self, item: Item, frames: list[np.ndarray], analysis: Analysis
    ) -> tuple[list[FrameMatches], list[FrameMatches] | None]:
        assert not self.refuse, "the scores were cached"
        scores = _scores([PREDS[int(item.name) % 3]], [GTS[int(item.name) % 3]]) * len(frames)
        return scores, (scores[:1] if item.frame_labels is not None else None)

    def score(self, item: Item, frames: list[np.ndarray], analysis: Analysis) -> list[FrameMatches]:
        return self.score_all(item, frames, analysis)[0]


def test_analyses_and_reference_scores_in_workers_equal_those_in_process_and_are_cached(tmp_path: Path) -> None:
    import dataclasses

    from semrl.bench.items import TASKS
    from semrl.bench.runner import Context, analyse_items, reference_label_scores, reference_scores

    items = [dataclasses.replace(_item(), name=str(k), digest=str(k) * 64) for k in range(1, 5)]
    items[1] = dataclasses.replace(items[1], frame_labels=[GTS[0]])  # a clip with real labels
    results = []
    for workers in (1, 2):
        net = _FakeTaskNet()
        ctx = Context(TASKS["detection"], items, net, Cache(tmp_path / str(workers)), [], "medium", 250, "x265", False)  # type: ignore[arg-type]
        ctx.analyses = analyse_items(ctx, workers)
        scores = reference_scores(ctx, "reference", workers)
        net.refuse = True  # read back from the cache, in item order
        # the reference pass scored the labelled item against its labels too: no second net pass
        assert [s.conf.tolist() for s in reference_label_scores(ctx, workers)] == [scores[1].conf.tolist()]
        assert pack_analysis(analyse_items(ctx, workers)[2], items[2].shape)["boxes"].tolist() == [[3, 3, 3, 3]]
        # the analysis pass scored the original frames too
        original = [s.conf.tolist() for s in reference_scores(ctx, "original", workers)]
        assert original == [
            s.conf.tolist() for k in range(1, 5) for s in _scores([PREDS[(k + 1) % 3]], [GTS[(k + 1) % 3]])
        ]
        assert [s.conf.tolist() for s in reference_scores(ctx, "reference", workers)] == [
            s.conf.tolist() for s in scores
        ]
        results.append(([a.boxes[0].tolist() for a in ctx.analyses], [s.conf.tolist() for s in scores]))
    assert results[0] == results[1]
    assert results[0][0] == [[[k] * 4] for k in range(1, 5)]


@pytest.mark.weights
@pytest.mark.slow
def test_a_detectors_analysis_pass_scores_the_originals_as_scoring_them_does() -> None:
    # One pass instead of two must not change the "original files" figure: real yolov8n, real pictures and frames.
    import dataclasses

    from shared_assets import require_assets

    from semrl.bench.items import TASKS, load_items
    from semrl.bench.tasknet import TaskNet

    clip = str(
        require_assets("models/yolov8n.pt", "videos/pets2009_s2l1_480x360.mp4") / "videos/pets2009_s2l1_480x360.mp4"
    )
    for task in (dataclasses.replace(TASKS["detection"], data="coco8"), dataclasses.replace(TASKS["video"], data=clip)):
        net = TaskNet(task)
        for item in load_items(task, None, 2, 10):
            analysis, original = net.analyse_all(item)
            assert original is not None and len(original) == len(item.source)
            assert any(len(b) for b in analysis.boxes)
            separate = pack_scores(net.score(item, item.source, analysis))
            assert separate.keys() == pack_scores(original).keys()
            for key, value in pack_scores(original).items():
                assert np.array_equal(value, separate[key]), (item.name, key)


def test_a_policy_is_given_each_frame_as_x265_codes_it(clip: list[Yuv420], tmp_path: Path) -> None:
    from types import SimpleNamespace

    from semrl.bench.items import TASKS
    from semrl.bench.runner import Context, Method, coding
    from semrl.policy import PolicyInput

    seen: list[Yuv420 | None] = []

    def record(inputs: PolicyInput) -> np.ndarray:
        seen.append(inputs.picture)
        return np.zeros(inputs.ctu_shape, np.int32)

    h, w = clip[0].y.shape
    item = Item("clip", "digest", [f.to_rgb() for f in clip], clip, (h, w), fps=25.0, clip="clip")
    n = len(clip)
    analysis = Analysis([None] * n, [np.zeros((0, 4), np.float32)] * n, [np.zeros(0, np.int64)] * n,
                        [np.zeros(0, np.float32)] * n)  # fmt: skip
    net = SimpleNamespace(fingerprint="fake-net")  # coding() only names the net in its cache keys
    ctx = Context(TASKS["video"], [item], net, Cache(tmp_path), [analysis], "medium", 250, "x265", False)  # type: ignore[arg-type]
    coding(ctx, Method("record", "policy", (32,), policy=record), 32, item, analysis)
    assert seen == clip


def test_a_named_policys_maps_are_cached_and_an_unnamed_ones_are_not(clip: list[Yuv420], tmp_path: Path) -> None:
    from types import SimpleNamespace

    from semrl.bench.items import TASKS
    from semrl.bench.runner import Context, Method, _known_cached, coding
    from semrl.policy import PolicyInput

    calls: list[int] = []

    class Counting:
        """Offsets from the base QP alone; it counts the frames it is run on."""

        offsets_identity: str | None = "counting:v1"

        def __call__(self, inputs: PolicyInput) -> np.ndarray:
            calls.append(inputs.frame_index)
            return np.full(inputs.ctu_shape, inputs.base_qp % 7 - 3, np.int32)

    h, w = clip[0].y.shape
    item = Item("clip", "digest", [f.to_rgb() for f in clip], clip, (h, w), fps=25.0, clip="clip")
    n = len(clip)
    analysis = Analysis([None] * n, [np.zeros((0, 4), np.float32)] * n, [np.zeros(0, np.int64)] * n,
                        [np.zeros(0, np.float32)] * n)  # fmt: skip
    net = SimpleNamespace(fingerprint="fake-net")
    ctx = Context(TASKS["video"], [item], net, Cache(tmp_path), [analysis], "medium", 250, "x265", False)  # type: ignore[arg-type]
    named = Counting()
    first = coding(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)
    assert calls == list(range(n))
    again = coding(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)
    assert calls == list(range(n)), "the cached maps were read, the policy not run"
    assert again.key == first.key and first.offsets is not None
    assert all(np.array_equal(a, b) for a, b in zip(again.offsets or [], first.offsets, strict=True))
    assert first.maps_cached is False and again.maps_cached is True  # what run_point counts
    # a Ray run sends a coding whose maps are not cached to a worker without running the policy here
    assert not _known_cached(ctx, Method("named", "policy", (33,), policy=named), 33, item, analysis)
    assert len(calls) == n
    assert not _known_cached(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)  # not encoded
    assert len(calls) == n and "policy_cached" not in ctx.counts, "a look at the cache counts nothing"
    coding(ctx, Method("named", "policy", (33,), policy=named), 33, item, analysis)  # another point
    named.offsets_identity = "counting:v2"  # another policy
    coding(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)
    named.offsets_identity = None  # a policy that does not name what its maps depend on: run each time
    coding(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)
    unnamed = coding(ctx, Method("named", "policy", (32,), policy=named), 32, item, analysis)
    assert len(calls) == 5 * n and unnamed.maps_cached is None


def test_a_policys_maps_are_keyed_by_what_they_depend_on() -> None:
    import dataclasses

    from semrl.bench.cache import code_identity, offsets_key

    item = _item()
    cfg = encoder_config(item, 37, crf=False, video=False, preset="medium", keyint=250)
    fast = encoder_config(item, 37, crf=False, video=False, preset="fast", keyint=250)
    key = offsets_key(item, cfg, 37, "x265:a", "policy:a", "analysis:a")
    assert key == offsets_key(item, cfg, 37, "x265:a", "policy:a", "analysis:a")
    others = {
        offsets_key(item, cfg, 32, "x265:a", "policy:a", "analysis:a"),
        offsets_key(item, cfg, 37, "x265:b", "policy:a", "analysis:a"),
        offsets_key(item, cfg, 37, "x265:a", "policy:b", "analysis:a"),
        offsets_key(item, cfg, 37, "x265:a", "policy:a", "analysis:b"),
        offsets_key(dataclasses.replace(item, digest="e" * 64), cfg, 37, "x265:a", "policy:a", "analysis:a"),
        offsets_key(item, fast, 37, "x265:a", "policy:a", "analysis:a"),
    }
    assert key not in others and len(others) == 6
    assert len(code_identity()) == 64


def test_the_code_a_policys_maps_are_keyed_by_ignores_docstrings_and_comments_only() -> None:
    from semrl.bench.cache import _code_hash

    code = 'X = 1\n"""About X."""\n\n\ndef f(x):\n    """Doc."""\n    # why\n    return x + 1\n'
    assert _code_hash(code) == _code_hash("X = 1\ndef f(x):\n    return x+1  # another comment\n")
    assert _code_hash(code) != _code_hash("X = 1\ndef f(x):\n    return x + 2\n")
    assert _code_hash(code) != _code_hash("X = 1\ndef f(x):\n    pass\n")


@pytest.mark.parametrize(
    "script",
    ["codec_speed", "encode_memory", "encode_speed", "env_speed", "mask_score_speed", "rate_control",
     "ray_overhead", "semantic_speed", "signal_validation", "video_bit_budget", "video_steadiness"],
)  # fmt: skip
def test_a_benchmark_refuses_an_output_it_could_not_write_before_it_runs(script: str, tmp_path: Path) -> None:
    from benchmark_scripts import load_benchmark

    from semrl.errors import InvalidInputError

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInputError, match="a-file is a file, not a folder"):
        load_benchmark(script, f"output_check_{script}").main(["--output", str(tmp_path / "a-file" / "out" / "r.json")])


@pytest.mark.parametrize(
    ("script", "options", "message"),
    [
        ("encode_speed", ["--runs", "0"], "argument --runs: must be at least 1, got 0"),
        ("encode_speed", ["--warmup", "-1"], "argument --warmup: must be at least 0, got -1"),
        ("codec_speed", ["--runs", "x"], "argument --runs: expected a whole number, got 'x'"),
        ("semantic_speed", ["--frames", "0"], "argument --frames: must be at least 1, got 0"),
        ("mask_score_speed", ["--limit", "0"], "argument --limit: must be at least 1, got 0"),
        ("video_steadiness", ["--frames", "0"], "argument --frames: must be at least 1, got 0"),
    ],
)
def test_a_benchmark_refuses_counts_below_their_least_before_it_runs(
    script: str, options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """They were tracebacks (an empty median, an unbound report, a missing stream) or a run of nothing."""
    from benchmark_scripts import load_benchmark

    with pytest.raises(SystemExit) as stopped:
        load_benchmark(script, f"count_check_{script}").main(options)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_benchmark_names_a_malformed_source_rate_list_or_run_folder(tmp_path: Path) -> None:
    from benchmark_scripts import load_benchmark

    from semrl.errors import InputNotFoundError, InvalidInputError

    out = ["--output", str(tmp_path / "r.json")]
    codec = load_benchmark("codec_speed", "source_check_codec_speed")
    with pytest.raises(InvalidInputError, match="--source takes VIDEO:WxH:FRAMES"):
        codec.main(["--source", "clip.mp4", *out])
    with pytest.raises(InputNotFoundError, match=r"nosuch\.mp4 not found"):
        codec.main(["--source", str(tmp_path / "nosuch.mp4") + ":64x64:2", *out])
    with pytest.raises(InvalidInputError, match="--rates takes comma-separated numbers"):
        load_benchmark("rate_control", "rates_check_rate_control").main(["--rates", "50,fast", *out])
    with pytest.raises(InputNotFoundError, match=r"no timing\.json there"):
        load_benchmark("env_speed", "runs_check_env_speed").main(["--runs", str(tmp_path), *out])
    assert not (tmp_path / "r.json").exists()


def test_a_benchmark_script_reports_semrl_errors_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from semrl.cli import run_script
    from semrl.errors import InvalidInputError

    def refused() -> int:
        raise InvalidInputError("--output folder /x is not writable (Permission denied)")

    assert run_script(refused) == 2
    assert capsys.readouterr().err == "error: --output folder /x is not writable (Permission denied)\n"
    assert run_script(lambda: 0) == 0

    def broken() -> int:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):  # a bug keeps its traceback
        run_script(broken)


def test_the_dataset_and_clip_scripts_refuse_an_output_they_could_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark_scripts import load_benchmark

    from semrl.errors import InvalidInputError

    (tmp_path / "a-file").write_text("x")
    refused = str(tmp_path / "a-file" / "out")
    with pytest.raises(InvalidInputError, match="a-file is a file, not a folder"):
        load_benchmark("fresh_clips", "output_check_fresh_clips").main(["-o", refused])
    assert load_benchmark("pseudo_labels", "output_check_pseudo_labels").main([str(tmp_path), "-o", refused]) == 1
    assert "a-file is a file, not a folder" in capsys.readouterr().err
    deviations = load_benchmark("video_deviations", "output_check_video_deviations")
    assert deviations.main([str(tmp_path), "--output", refused]) == 2
    assert "a-file is a file, not a folder" in capsys.readouterr().err

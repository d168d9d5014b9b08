"""benchmarks/bdrate.py and semrl.bench: BD-rate math, policies, the runner's parts, and the tool run in-process."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

from semrl.agent.resolve import CHECKPOINT_LOADERS, resolve_policy
from semrl.bench.bdrate import Curve, bd_rate, monotone_fit, rate_at_quality
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.policy import PolicyInput, RoiPolicy, apply_offsets, policy_offsets, roi_blocks, uniform

ROOT = Path(__file__).resolve().parents[1]
RATES = [0.04, 0.08, 0.15, 0.3, 0.55, 1.0, 1.6]
MAP = [10.0, 18.0, 29.0, 38.0, 43.0, 45.0, 45.8]


def _tool() -> Any:
    return load_benchmark("bdrate", "bdrate_tool")


# ---- BD-rate math ------------------------------------------------------------------------------


def test_bd_rate_of_a_curve_against_itself_is_zero() -> None:
    c = Curve.of(RATES, MAP)
    r = bd_rate(c, c)
    assert r.comparable
    assert r.pchip == pytest.approx(0.0, abs=1e-9)
    assert r.akima == pytest.approx(0.0, abs=1e-9)
    assert r.flags == ()


def test_half_the_rate_gives_minus_fifty_percent() -> None:
    r = bd_rate(Curve.of(RATES, MAP), Curve.of([x / 2 for x in RATES], MAP))
    assert r.pchip == pytest.approx(-50.0, abs=0.01)
    assert r.akima == pytest.approx(-50.0, abs=0.01)
    worse = bd_rate(Curve.of(RATES, MAP), Curve.of([x * 2 for x in RATES], MAP))
    assert worse.pchip == pytest.approx(100.0, abs=0.01)


def test_non_monotonic_curve_is_fitted_and_flagged() -> None:
    noisy = [10.0, 18.0, 29.0, 38.0, 45.2, 44.9, 45.8]  # the QP-27 point dips below QP 32's
    m = monotone_fit(Curve.of(RATES, noisy, [f"q{i}" for i in range(7)]))
    assert m.dropped == ("q5",)
    assert list(m.quality) == sorted(m.quality)
    r = bd_rate(Curve.of(RATES, MAP), Curve.of(RATES, noisy, [f"q{i}" for i in range(7)]))
    assert "non-monotonic" in r.flags
    assert r.dropped_test == ("q5",)
    assert r.comparable and r.pchip is not None


def test_a_curve_that_is_not_monotonic_at_all_gives_no_number() -> None:
    flat_noise = [45.0, 44.0, 45.5, 43.0, 44.8, 42.0, 45.1]  # mAP flat and noisy: no trend
    r = bd_rate(Curve.of(RATES, MAP), Curve.of(RATES, flat_noise))
    assert not r.comparable
    assert r.pchip is None and r.akima is None
    assert "non-monotonic" in r.flags
    assert "fewer than 3" in (r.reason or "")


def test_curves_that_do_not_overlap_are_not_comparable() -> None:
    r = bd_rate(Curve.of(RATES, MAP), Curve.of(RATES, [m + 100 for m in MAP]))
    assert not r.comparable and r.pchip is None
    assert "overlap" in (r.reason or "")


def test_bd_rate_uses_only_the_overlapping_range() -> None:
    # The test curve covers only the top of the anchor's range and is at half the rate there.
    test = Curve.of([x / 2 for x in RATES[3:]], MAP[3:])
    r = bd_rate(Curve.of(RATES, MAP), test)
    assert r.quality_range == (38.0, 45.8)
    # pchip through the 4 test points bends differently from the anchor's 7-point fit: about -50 %.
    assert r.pchip == pytest.approx(-50.0, abs=2.5)
    assert r.overlap is not None and r.overlap < 0.25
    assert "small-overlap" in r.flags


def test_rate_at_quality_interpolates_monotonically_and_refuses_outside() -> None:
    c = Curve.of(RATES, MAP)
    assert rate_at_quality(c, 38.0) == pytest.approx(0.3)
    mid = rate_at_quality(c, 40.0)
    assert mid is not None and 0.3 < mid < 0.55
    assert rate_at_quality(c, 50.0) is None
    assert rate_at_quality(c, 5.0) is None


def test_curve_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="positive"):
        Curve.of([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="2 rates but 3"):
        Curve.of([0.1, 1.0], [1.0, 2.0, 3.0])


# ---- policies ----------------------------------------------------------------------------------


def _inputs(region: np.ndarray | None, qp: int = 32) -> PolicyInput:
    return PolicyInput(np.zeros((256, 384, 3), np.uint8), qp, (4, 6), region, np.zeros((0, 4), np.float32))


def test_roi_marks_ctus_touching_the_dilated_region() -> None:
    region = np.zeros((256, 384), bool)
    region[70:80, 70:80] = True  # inside CTU (1, 1), 6 px from its top and left edges
    inside = roi_blocks(region, (4, 6), dilation=0)
    assert inside.sum() == 1 and inside[1, 1]
    grown = roi_blocks(region, (4, 6), dilation=8)  # reaches row 62 and column 62: CTU (0, 0) too
    assert grown[0, 0] and grown[0, 1] and grown[1, 0] and grown[1, 1] and grown.sum() == 4
    offsets = RoiPolicy(delta=8, dilation=8)(_inputs(region))
    assert offsets[1, 1] == -8 and offsets[3, 5] == 8


def test_roi_per_16x16_block_hugs_the_region() -> None:
    region = np.zeros((256, 384), bool)
    region[70:80, 70:80] = True  # inside block (4, 4)
    policy = RoiPolicy(delta=6, dilation=0, block=16)
    assert policy.offset_block == 16 and policy.fingerprint == "roi:d=6:dil=0:b=16"
    assert RoiPolicy(delta=6, dilation=0).fingerprint == "roi:d=6:dil=0"  # unchanged for CTUs (report names)
    offsets = policy(_inputs(region))
    assert offsets.shape == (16, 24) and offsets[4, 4] == -6 and (offsets == -6).sum() == 1
    with pytest.raises(InvalidInputError, match="ROI block must be 16 or 64"):
        RoiPolicy(block=32)


def test_offsets_are_clipped_to_the_qp_range() -> None:
    region = np.zeros((256, 384), bool)
    region[:64, :64] = True
    out = apply_offsets(RoiPolicy(delta=8, dilation=0), _inputs(region, qp=47))
    assert out[0, 0] == -8 and out[3, 5] == 4  # 47 + 8 clipped to 51
    assert not apply_offsets(uniform, _inputs(None)).any()


def test_the_rate_controller_gets_the_offsets_unclipped() -> None:
    region = np.zeros((256, 384), bool)
    region[:64, :64] = True
    # Near 51 the clipped +8 and the clipped +4 are the same: a cascade's levels would merge.
    out = policy_offsets(RoiPolicy(delta=8, dilation=0), _inputs(region, qp=47))
    assert out.dtype == np.int32 and out[0, 0] == -8 and out[3, 5] == 8
    np.testing.assert_array_equal(policy_offsets(lambda i: np.full((4, 6), 2.4), _inputs(None)), 2)


def test_virtual_base_above_51_codes_objects_below_51() -> None:
    region = np.zeros((256, 384), bool)
    region[:64, :64] = True
    # Base 55 with D = 8: objects at 47, the rest at 51; the encoder runs at base 51.
    out = apply_offsets(RoiPolicy(delta=8, dilation=0), _inputs(region, qp=55), coded_base=51)
    assert out[0, 0] == -4 and out[3, 5] == 0
    assert _tool().roi_points((22.0, 37.0, 51.0), 8) == (22.0, 37.0, 51.0, 55, 59)
    assert _tool().roi_points((22.0, 37.0), 8) == (22.0, 37.0)


def test_policy_with_the_wrong_shape_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(2, 2\)"):
        apply_offsets(lambda i: np.zeros((2, 2)), _inputs(None))


def coarse_background(inputs: PolicyInput) -> np.ndarray:
    """A test policy: +6 on the bottom row of CTUs."""
    out = np.zeros(inputs.ctu_shape, np.int32)
    out[-1] = 6
    return out


def test_resolve_policy_from_module_and_file() -> None:
    assert resolve_policy("semrl.policy:uniform") is uniform
    assert resolve_policy("uniform") is uniform
    assert resolve_policy("roi", roi_delta=4) == RoiPolicy(delta=4)
    fn = resolve_policy(f"{__file__}:coarse_background")
    assert fn(_inputs(None))[-1, 0] == 6


def test_resolve_policy_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no attribute 'nope'"):
        resolve_policy("semrl.policy:nope")
    with pytest.raises(InvalidInputError, match="cannot import module"):
        resolve_policy("no_such_module_xyz:fn")
    with pytest.raises(InvalidInputError, match="not callable"):
        resolve_policy("semrl.policy:__all__")
    with pytest.raises(InputNotFoundError, match=r"missing\.zip"):
        resolve_policy(str(tmp_path / "missing.zip"))
    with pytest.raises(InputNotFoundError, match=r"nofile\.py"):
        resolve_policy(str(tmp_path / "nofile.py") + ":fn")
    ckpt = tmp_path / "agent.pt"
    ckpt.write_bytes(b"PK")
    assert ".pt" not in CHECKPOINT_LOADERS
    with pytest.raises(InvalidInputError, match=r"agent\.pt: no loader for '\.pt'"):
        resolve_policy(str(ckpt))
    # a .zip without its ckpt.json beside it is not a semrl policy
    bare = tmp_path / "bare.zip"
    bare.write_bytes(b"PK")
    with pytest.raises(InputNotFoundError, match=r"bare\.json"):
        resolve_policy(str(bare))
    with pytest.raises(InvalidInputError, match=r"expected uniform, roi, x265, detection, .*, video-reference, a"):
        resolve_policy("justaname")


def test_tool_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _tool()
    assert tool.main(["--task", "nonsense", "--output", str(tmp_path)]) == 2
    assert tool.main(["--task", "detection", "--qps", "22,60", "--output", str(tmp_path)]) == 2
    assert tool.main(["--task", "detection", "--roi-blocks", "32", "--output", str(tmp_path)]) == 2
    assert tool.main(["--task", "detection", "--baseline", "shipped", "--output", str(tmp_path)]) == 2
    for option in ("no-such-option=1", "qp=30", "psy-rd", "psy-rd=fast"):
        assert tool.main(["--task", "detection", "--x265", option, "--output", str(tmp_path)]) == 2
    assert tool.main(["--task", "detection", "--sure-conf", "0.5", "--output", str(tmp_path)]) == 2  # labels
    for conf in ("0.25", "0.1", "1.5"):
        assert tool.main(["--task", "video", "--sure-conf", conf, "--output", str(tmp_path)]) == 2
    for option, value in (("--limit", "0"), ("--frames", "0"), ("--segment", "0"), ("--keyint", "0"),
                          ("--bootstrap", "-1"), ("--workers", "0"), ("--seed", "-1"),
                          ("--roi-dilation", "-5")):  # fmt: skip
        assert tool.main(["--task", "video", option, value, "--output", str(tmp_path)]) == 2
        assert f"error: {option} must be at least" in capsys.readouterr().err
    for option, value in (("--gop", "ra"), ("--frames", "30"), ("--segment", "10"), ("--keyint", "8")):
        assert tool.main(["--task", "detection,segmentation", option, value, "--output", str(tmp_path)]) == 2
        assert f"error: {option} {value} is for video; this run codes pictures alone" in capsys.readouterr().err
    assert tool.main(["--task", "detection", "--cache-dir", "/proc/no-cache", "--output", str(tmp_path)]) == 2
    assert "error: --cache-dir folder /proc/no-cache is not writable" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert tool.main(["--task", "video", "--output", str(tmp_path / "a-file" / "results")]) == 2
    assert "a-file is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "a-file").unlink()
    assert not any(tmp_path.iterdir())


def test_split_picks_the_dataset_split_and_is_refused_for_video(tmp_path: Path) -> None:
    from semrl.bench.items import TASKS, load_items

    task = dataclasses.replace(TASKS["detection"], data="coco8")
    val = [item.name for item in load_items(task, None, None, 1)]
    train = [item.name for item in load_items(dataclasses.replace(task, split="train"), None, 2, 1)]
    assert val == ["000000000036.jpg", "000000000042.jpg", "000000000049.jpg", "000000000061.jpg"]
    assert train == ["000000000009.jpg", "000000000025.jpg"]
    with pytest.raises(InvalidInputError, match="no split 'test'"):
        load_items(dataclasses.replace(task, split="test"), None, None, 1)
    with pytest.raises(InvalidInputError, match="several first frames"):
        load_items(task, None, None, 1, start=[0, 2])
    later = [item.name for item in load_items(dataclasses.replace(task, split="train"), None, 2, 1, start=1)]
    assert later == ["000000000025.jpg", "000000000030.jpg"]  # what `semrl train --limit 1` never saw
    with pytest.raises(InvalidInputError, match="holds 4 images; give 0 to 3"):
        load_items(task, None, None, 1, start=4)
    tool = _tool()
    assert tool.main(["--task", "video", "--split", "train", "--output", str(tmp_path)]) == 2
    assert tool.main(["--task", "video", "--codings", "--output", str(tmp_path)]) == 2  # frames go by clip
    assert tool.main(["--task", "detection", "--start", "-1", "--output", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


def test_a_split_may_be_a_list_of_folders_and_image_lists(tmp_path: Path) -> None:
    from semrl.fidelity.labels import dataset_images

    for folder in ("images/a", "images/b", "labels/a"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("images/a/2.png", "images/a/1.png", "images/b/3.png", "loose.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "images" / "picked.txt").write_text("./b/3.png\nimages/a/2.png\nloose.png\n")
    (tmp_path / "data.yaml").write_text("val: [images/a, images/picked.txt]\nbad: {a: 1}\nnone: images/none.txt\n")
    found = dataset_images(tmp_path / "data.yaml", "val")
    assert [im.image.relative_to(tmp_path).as_posix() for im in found] == [
        "images/a/1.png", "images/a/2.png", "images/b/3.png", "images/a/2.png", "loose.png",
    ]  # fmt: skip
    assert found[2].label == tmp_path / "labels" / "b" / "3.txt"
    assert found[4].label == tmp_path / "loose.txt"  # no images folder: the label beside the image
    with pytest.raises(InvalidInputError, match="must be a folder"):
        dataset_images(tmp_path / "data.yaml", "bad")
    with pytest.raises(InputNotFoundError, match="image list not found"):
        dataset_images(tmp_path / "data.yaml", "none")
    (tmp_path / "images" / "picked.txt").write_text("./b/4.png\n")
    with pytest.raises(InputNotFoundError, match="1 listed images not found"):
        dataset_images(tmp_path / "data.yaml", "val")


def test_x265_options_reach_every_coding_and_its_cache_key() -> None:
    from semrl.bench.cache import encode_key
    from semrl.bench.encoding import encoder_config
    from semrl.bench.items import TASKS, load_items

    tool = _tool()
    options = tool.x265_options(["psy-rd=0", "--psy-rdoq=0"])
    assert options == (("psy-rd", "0"), ("psy-rdoq", "0"))
    assert tool.x265_options(None) == ()
    item = load_items(dataclasses.replace(TASKS["detection"], data="coco8"), None, 1, 1)[0]
    plain = encoder_config(item, 32, crf=False, video=False, preset="medium", keyint=250)
    tuned = encoder_config(item, 32, crf=False, video=False, preset="medium", keyint=250, options=options)
    assert tuned.x265_options()[-2:] == list(options) and plain.options == ()
    assert encode_key(item, tuned, None, "x") != encode_key(item, plain, None, "x")


def test_no_cache_removes_its_temporary_cache_even_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _tool()
    used: list[Path] = []

    def fails(name: str, args: Any, argv: list[str], cache_dir: Path, request: Any) -> Path:
        used.append(cache_dir)
        (cache_dir / "enc").mkdir()
        raise InvalidInputError("no items")

    monkeypatch.setattr(tool, "_run_task", fails)
    monkeypatch.setattr(tool.tempfile, "tempdir", str(tmp_path))
    assert tool.main(["--task", "detection", "--no-cache", "--output", str(tmp_path / "out")]) == 2
    assert len(used) == 1 and used[0].parent == tmp_path and not used[0].exists()


def test_each_policy_is_resolved_once_for_every_task_of_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _tool()
    resolved: list[str] = []
    requests: list[Any] = []

    def resolve(spec: str, **kwargs: Any) -> tuple[str, Any]:
        resolved.append(spec)
        return spec.partition("=")[0], RoiPolicy(4)

    def runs(name: str, args: Any, argv: list[str], cache_dir: Path, request: Any) -> Path:
        requests.append(request)
        return tmp_path

    monkeypatch.setattr(tool, "resolve_named_policy", resolve)
    monkeypatch.setattr(tool, "_run_task", runs)
    monkeypatch.setattr(tool, "summary", lambda *a: "")
    argv = ["--task", "detection,segmentation", "--start", "3", "--policy", "p=roi", "--output", str(tmp_path)]
    assert tool.main(argv) == 0
    assert resolved == ["p=roi"] and len(requests) == 2 and requests[0] is requests[1]
    assert requests[0].starts == [3] and [n for n, _ in requests[0].policies] == ["p"]


def test_a_named_policy_option_needs_its_name_where_the_tool_asks_for_one() -> None:
    from semrl.agent import resolve_named_policy

    assert resolve_named_policy("r=roi")[0] == "r"
    assert resolve_named_policy("roi", unnamed="policy")[0] == "policy:roi"
    for spec in ("roi", "=roi", "r="):
        with pytest.raises(InvalidInputError, match="NAME=SPEC"):
            resolve_named_policy(spec)


def test_x265s_own_allocation_is_refused_as_a_policy_being_the_a2_anchor() -> None:
    tool = _tool()
    for option in ("--policy", "--aq-policy"):
        args = tool.parser().parse_args(["--methods", "policy", option, "a2=x265"])
        with pytest.raises(InvalidInputError, match=r"a2 is x265's own allocation.*x265-aq"):
            tool.Request.of(args)


def test_roi_anchor_at_both_block_sizes() -> None:
    tool = _tool()
    args = tool.parser().parse_args(["--methods", "roi", "--roi-deltas", "8", "--roi-blocks", "64,16"])
    methods = tool.build_methods(args, video=False)
    found = [(m.name, m.family, m.policy.offset_block) for m in methods]
    assert found == [("roi-d8", "A3", 64), ("roi16-d8", "A3", 16)]
    # default offsets: D = 4, 8, 12 on images, 4 and 8 on video (D = 12 by asking)
    default = tool.parser().parse_args(["--methods", "roi"])
    assert [m.name for m in tool.build_methods(default, video=False)] == ["roi-d4", "roi-d8", "roi-d12"]
    assert [m.name for m in tool.build_methods(default, video=True)] == ["roi-d4", "roi-d8"]
    full = tool.parser().parse_args(["--methods", "roi", "--roi-deltas", "4,8,12"])
    assert len(tool.build_methods(full, video=True)) == 3


def test_a_policy_on_top_of_x265_aq_runs_at_the_crf_points() -> None:
    tool = _tool()
    args = tool.parser().parse_args(
        ["--methods", "policy", "--crfs", "30,40", "--policy", "p=roi", "--aq-policy", "q=roi", "--aq-policy", "roi"]
    )
    methods = tool.build_methods(args, video=False)
    assert [(m.name, m.family, m.points, m.crf) for m in methods] == [
        ("p", "policy", tuple(float(q) for q in tool.DEFAULT_QPS.split(",")), False),
        ("q", "policy", (30.0, 40.0), True),
        ("policy-aq:roi", "policy", (30.0, 40.0), True),
    ]
    assert tool.method_id(methods[1]).endswith("on x265 crf + aq")


# ---- the tool, in-process, on real encodes and real nets ---------------------------------------


def _run(tool: Any, tmp_path: Path, *extra: str) -> int:
    return int(tool.main([
        "--qps", "32,44", "--crfs", "36,48", "--roi-deltas", "8", "--bootstrap", "4", "--no-progress",
        "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *extra,
    ]))  # fmt: skip


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_detection_on_coco8_end_to_end_and_cached(tmp_path: Path) -> None:
    tool = _tool()
    assert _run(tool, tmp_path, "--task", "detection", "--data", "coco8") == 0
    out = tmp_path / "out" / "detection"
    for name in ("bdrate.json", "points.csv", "bdrate.md", "curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "bdrate.json").read_text())
    assert set(data) == {"name", "description", "results"}
    desc, res = data["description"], data["results"]
    assert desc["x265"] and desc["x265_patch_hash"] and "yolov8n.pt" in desc["weights"]
    assert desc["items"] == 4
    assert [(p["method"], p["point"]) for p in res["points"]] == [
        ("uniform", "qp=32"),
        ("uniform", "qp=44"),
        ("x265-aq", "crf=36"),
        ("x265-aq", "crf=48"),
        ("roi-d8", "qp=32"),
        ("roi-d8", "qp=44"),
    ]
    by = {(p["method"], p["point"]): p for p in res["points"]}
    # Real encodes: more QP, fewer bits and lower PSNR; ROI spends more bits near objects at the same base QP.
    assert by["uniform", "qp=32"]["rate"] > by["uniform", "qp=44"]["rate"] > 0
    assert by["uniform", "qp=32"]["psnr"] > by["uniform", "qp=44"]["psnr"]
    assert 0 < by["uniform", "qp=44"]["task"] < res["reference_420"]["task"] <= 100
    assert 0 < res["reference_420"]["objects"] <= 100  # the equal-accuracy levels on `objects`
    assert {r["method"] for r in res["equal_accuracy_objects"]} == {"uniform", "x265-aq", "roi-d8"}
    assert by["uniform", "qp=32"]["mean_qp"] == pytest.approx(32.0)
    # Two points per curve: a BD-rate cannot be made, and is reported as such, never as a number.
    task_rows = [r for r in res["bd_rate"] if r["quality"] == "task"]
    assert task_rows and all(not r["comparable"] and r["pchip"] is None for r in task_rows)
    assert "not comparable" in (out / "bdrate.md").read_text()
    assert (tmp_path / "out" / "bdrate_summary.md").is_file()

    # A rerun with one new method encodes only that method's points.
    streams = set((tmp_path / "cache" / "enc").glob("*.hevc"))
    assert len(streams) == 6 * 4 - 0
    assert _run(tool, tmp_path, "--task", "detection", "--data", "coco8", "--methods",
                "uniform,policy", "--policy", f"bottom={__file__}:coarse_background") == 0  # fmt: skip
    new = set((tmp_path / "cache" / "enc").glob("*.hevc")) - streams
    assert len(new) == 2 * 4
    res2 = json.loads((out / "bdrate.json").read_text())["results"]
    assert {p["method"] for p in res2["points"]} == {"uniform", "bottom"}
    assert [p["rate"] for p in res2["points"] if p["method"] == "uniform"] == [
        by["uniform", "qp=32"]["rate"],
        by["uniform", "qp=44"]["rate"],
    ]


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_points_in_worker_processes_give_the_same_results(tmp_path: Path) -> None:
    tool = _tool()
    points = []
    for workers in ("1", "2"):
        out = tmp_path / workers
        assert tool.main([
            "--task", "detection", "--data", "coco8", "--limit", "2", "--methods", "uniform,roi", "--qps", "32,44",
            "--roi-deltas", "8", "--bootstrap", "0", "--no-progress", "--workers", workers,
            "--output", str(out), "--cache-dir", str(tmp_path / f"cache{workers}"),
        ]) == 0  # fmt: skip
        res = json.loads((out / "detection" / "bdrate.json").read_text())
        points.append([{k: v for k, v in p.items() if k not in ("encode_s", "encode_ms_per_frame")}
                       for p in res["results"]["points"]])  # fmt: skip
        assert res["description"]["work"]["encoded"] == 2 * 4  # counted in the workers too
    assert points[0] == points[1]


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_video_and_classification_paths(tmp_path: Path) -> None:
    tool = _tool()
    video = ROOT.parent / "shared" / "assets" / "videos" / "pets2009_s2l1_480x360.mp4"
    if not video.is_file():
        pytest.skip(f"test video not found: {video}")
    assert _run(tool, tmp_path, "--task", "video", "--data", str(video), "--frames", "3", "--preset",
                "ultrafast", "--crfs", "30,45") == 0  # fmt: skip
    res = json.loads((tmp_path / "out" / "video" / "bdrate.json").read_text())["results"]
    # Pseudo ground truth from the same net on the same (already 4:2:0) frames scores exactly 1.
    assert res["reference_420"]["task"] == pytest.approx(100.0)
    assert all(p["frames"] == 3 for p in res["points"])
    qp32 = next(p for p in res["points"] if p["point"] == "qp=32" and p["method"] == "uniform")
    assert qp32["rate"] == pytest.approx(qp32["bits"] / (3 / 10.0) / 1000, rel=1e-6)  # 10 fps clip, kbit/s
    # PETS has real person boxes: the reference is scored against them, and so is every method.
    assert 0 < res["reference_420"]["labels"] <= 100
    assert any(r["quality"] == "labels" for r in res["bd_rate"])
    assert set(res["bootstrap_by"]) == {"clip", "30-frame segment"}
    # beside the class mean, the object-weighted mAP: its curves, BD-rates and interval over clips
    assert all(0 <= p["objects"] <= 100 for p in res["points"])
    assert any(r["quality"] == "objects" and r["anchor"] == "uniform" for r in res["bd_rate"])
    assert res["bootstrap_objects"]["quality"] == "objects" and res["bootstrap_objects"]["unit"] == "clip"
    assert res["reference_420"]["objects"] == pytest.approx(100.0)  # pseudo ground truth
    assert {r["level"] for r in res["equal_accuracy_objects"]} == {0.95, 0.9}
    assert all(k.endswith(("at 95%", "at 90%")) for k in res["bootstrap_objects"]["equal_accuracy_vs_A1"])

    # Against the original's sure finds only: the same encodes scored again, apart in the cache.
    assert _run(tool, tmp_path, "--task", "video", "--data", str(video), "--frames", "3", "--preset",
                "ultrafast", "--crfs", "30,45", "--sure-conf", "0.5") == 0  # fmt: skip
    sure = json.loads((tmp_path / "out" / "video" / "bdrate.json").read_text())
    assert "finds >= 0.5" in sure["description"]["metric"]
    sure_res = sure["results"]
    assert sure_res["reference_420"]["task"] == pytest.approx(100.0)  # uncoded frames still score 100
    assert sure_res["reference_420"]["labels"] == res["reference_420"]["labels"]  # real labels untouched
    assert [p["bits"] for p in sure_res["points"]] == [p["bits"] for p in res["points"]]
    assert [p["task"] for p in sure_res["points"]] != [p["task"] for p in res["points"]]

    assert _run(tool, tmp_path, "--task", "video", "--data", str(video), "--frames", "3", "--preset",
                "ultrafast", "--gop", "ra", "--methods", "uniform,x265-aq,policy", "--crfs", "30,40,45",
                "--aq-policy", "roiaq=roi") == 0  # fmt: skip
    res = json.loads((tmp_path / "out" / "video" / "bdrate.json").read_text())
    assert res["description"]["gop"].startswith("ra") and all(p["frames"] == 3 for p in res["results"]["points"])
    # ROI's offsets reach x265 on top of its own AQ: same CRF, other bits. (Not necessarily fewer:
    # CRF's rate control sees the offset-weighted costs and lowers the frame QP when most are positive.)
    bits = {(p["method"], p["point"]): p["bits"] for p in res["results"]["points"]}
    assert bits["roiaq", "crf=40"] != bits["x265-aq", "crf=40"]
    assert res["description"]["methods"]["roiaq"].endswith("on x265 crf + aq")

    assert _run(tool, tmp_path, "--task", "classification", "--limit", "3", "--methods", "uniform,roi") == 0
    res = json.loads((tmp_path / "out" / "classification" / "bdrate.json").read_text())["results"]
    assert len(res["points"]) == 4
    assert all(0 <= p["task"] <= 100 for p in res["points"])


def _classification_points(method: str, family: str, bits_scale: float) -> list[Any]:
    """Four operating points of 40 one-image frames: accuracy falls with QP, bits scaled per method."""
    from semrl.bench.runner import PointResult
    from semrl.bench.tasknet import classified

    out = []
    for k, qp in enumerate((22, 30, 38, 46)):
        correct = 36 - 8 * k  # of 40 frames
        # the net always answers class 0; the first `correct` frames are of class 0
        scores = [classified(np.array([0]), np.array([0 if i < correct else 1])) for i in range(40)]
        bits = [int(bits_scale * 40_000 / 2**k)] * 40
        out.append(PointResult(method, family, qp, f"qp={qp}", bits, [10_000.0] * 40, scores,
                               [40.0 - k] * 40, [40.0 - k] * 40, [0.9] * 40, 0.0, float(qp)))  # fmt: skip
    return out


def test_policies_are_compared_with_each_roi_setting() -> None:
    from semrl.bench.report import analyse

    points = [
        *_classification_points("uniform", "A1", 1.0), *_classification_points("roi-d4", "A3", 0.9),
        *_classification_points("roi-d8", "A3", 0.95), *_classification_points("pol", "policy", 0.6),
        *_classification_points("roi-named-policy", "policy", 0.5),
    ]  # fmt: skip
    res = analyse("classification", points, (0.9, 0.9), (0.9, 0.9), bootstrap=3)
    # ROI settings are A3's methods, not whatever is named roi...: a policy so named is a policy
    assert res["best_roi"] == "roi-d4"
    assert "roi-named-policy vs roi-d4" in res["bootstrap"]["bd_rate_pchip"]
    rows = {(r["anchor"], r["method"]): r for r in res["bd_rate"] if r["quality"] == "task"}
    assert rows["uniform", "roi-d4"]["pchip"] == pytest.approx(-10.0, abs=0.1)
    assert rows["roi-d4", "pol"]["pchip"] == pytest.approx(100 * (0.6 / 0.9 - 1), abs=0.1)
    assert ("roi-d4", "uniform") not in rows and ("roi-d4", "roi-d8") not in rows
    assert "pol vs roi-d4" in res["bootstrap"]["bd_rate_pchip"]
    # Each other ROI setting is an anchor of the point estimates too (a rule fixed on D=8 reads it);
    # the bootstrap stays on the best.
    assert rows["roi-d8", "pol"]["pchip"] == pytest.approx(100 * (0.6 / 0.95 - 1), abs=0.1)
    assert ("roi-d8", "roi-d4") not in rows and ("roi-d8", "uniform") not in rows
    assert "pol vs roi-d8" not in res["bootstrap"]["bd_rate_pchip"]


_DESCRIPTION = {
    "command": "c", "data": "d", "items": 2, "frames": 20, "x265": "x", "x265_patch_hash": "h", "preset": "p",
    "weights": "w", "run_seconds": 1.0, "machine": "m",
}  # fmt: skip
"""The ``description`` a Markdown report needs, for reports of made-up points."""


def test_candidates_are_measured_against_a_baseline_policy_with_a_paired_interval() -> None:
    from semrl.bench.report import analyse, markdown

    points = [
        *_classification_points("uniform", "A1", 1.0), *_classification_points("roi-d4", "A3", 0.9),
        *_classification_points("shipped", "policy", 0.6), *_classification_points("candidate", "policy", 0.5),
    ]  # fmt: skip
    res = analyse("classification", points, (0.9, 0.9), (0.9, 0.9), bootstrap=20, baseline="shipped")
    rows = {(r["anchor"], r["method"]): r for r in res["bd_rate"] if r["quality"] == "task"}
    assert rows["shipped", "candidate"]["pchip"] == pytest.approx(100 * (0.5 / 0.6 - 1), abs=0.1)
    assert ("shipped", "shipped") not in rows and ("shipped", "roi-d4") not in rows
    assert ("shipped", "uniform") not in rows
    # Same bits ratio on every frame: every resample gives the same difference, so the interval is a point.
    paired = res["bootstrap"]["bd_rate_pchip"]["candidate vs shipped"]
    assert paired["low"] == pytest.approx(paired["high"], abs=1e-6)
    assert paired["median"] == pytest.approx(100 * (0.5 / 0.6 - 1), abs=0.1)
    assert res["baseline"] == "shipped"
    report = markdown("classification", "top-1", "bpp", res, _DESCRIPTION)
    assert "| task | shipped | candidate |" in report and "| candidate vs shipped |" in report
    for wrong in ("nobody", "uniform", "roi-d4"):
        with pytest.raises(InvalidInputError, match="not one of the policies measured: candidate, shipped"):
            analyse("classification", points, (0.9, 0.9), (0.9, 0.9), baseline=wrong)


def _detection_points(method: str, family: str, bits_scale: float) -> list[Any]:
    """Four points of 20 one-object frames of one class: fewer objects found as QP rises (alike in each half)."""
    from semrl.bench.runner import PointResult
    from semrl.fidelity.detection import FrameMatches

    out = []
    for k, qp in enumerate((22, 30, 38, 46)):
        found = 10 - 2 * k - (1 if family == "policy" and k else 0)  # of every 10 frames
        scores = [
            FrameMatches(np.full((1, 10), i % 10 < found), np.array([0.9 - 0.01 * i], np.float32), np.array([0]),
                         np.array([0]))
            for i in range(20)
        ]  # fmt: skip
        bits = [int(bits_scale * 40_000 / 2**k)] * 20
        out.append(PointResult(method, family, qp, f"qp={qp}", bits, [10_000.0] * 20, scores,
                               [40.0 - k] * 20, [40.0 - k] * 20, [0.9] * 20, 0.0, float(qp)))  # fmt: skip
    return out


def test_each_item_alone_on_the_task_metric_and_on_objects() -> None:
    from semrl.bench.report import analyse, markdown

    points = [*_detection_points("uniform", "A1", 1.0), *_detection_points("pol", "policy", 0.7)]
    items = {"first": np.arange(10), "second": np.arange(10, 20)}
    res = analyse("detection", points, (0.9, 0.9), (0.9, 0.9), items=items)
    assert set(res["per_item"]) == set(res["per_item_objects"]) == {"first", "second"}
    # one class: weighting classes by their objects changes nothing
    for name in items:
        value = res["per_item"][name]["pol"]["pchip"]
        assert value is not None and value < 0
        assert res["per_item_objects"][name]["pol"]["pchip"] == pytest.approx(value)
    text = markdown("detection", "mAP50-95", "bpp", res, _DESCRIPTION)
    assert "BD-rate vs A1 on `objects`" in text and "BD-rate vs A1 on the task metric" in text


def test_each_item_has_its_own_curve_points() -> None:
    from semrl.bench.report import analyse
    from semrl.bench.tasknet import task_metric

    points = [*_detection_points("uniform", "A1", 1.0), *_detection_points("pol", "policy", 0.7)]
    items = {"first": np.arange(10), "second": np.arange(10, 20)}
    rows = {(r["item"], r["method"], r["point"]): r for r in analyse(
        "detection", points, (0.9, 0.9), (0.9, 0.9), items=items)["item_points"]}  # fmt: skip
    assert len(rows) == 2 * 2 * 4
    for name, idx in items.items():
        for p in points:
            row = rows[(name, p.method, p.label)]
            # the item's bits over its own pixels: 10 frames of 10000 pixels each
            assert row["rate"] == pytest.approx(sum(p.frame_bits[i] for i in idx) / 100_000)
            assert row["task"] == pytest.approx(100 * task_metric("detection", [p.scores[i] for i in idx])[0])
            assert row["objects"] == pytest.approx(row["task"])  # one class
    # the policy loses one object of every ten at coarse QPs, on each item alike
    assert rows[("first", "pol", "qp=30")]["task"] < rows[("first", "uniform", "qp=30")]["task"]
    assert rows[("second", "uniform", "qp=22")]["rate"] == pytest.approx(4.0)


def test_bits_at_equal_accuracy_are_read_on_objects_too() -> None:
    from semrl.bench.report import analyse, markdown

    points = [*_detection_points("uniform", "A1", 1.0), *_detection_points("pol", "policy", 0.5)]
    # uniform finds 10/10, 8/10, 6/10, 4/10 of the objects at 40000, 20000, 10000, 5000 bits a frame
    res = analyse("detection", points, (1.0, 1.0), (1.0, 1.0), bootstrap=4, objects_reference=0.5)
    rows = {(r["method"], r["level"]): r for r in res["equal_accuracy_objects"]}
    assert res["reference_420"]["objects"] == 50.0 and rows[("uniform", 0.95)]["quality"] == pytest.approx(47.5)
    ours, theirs = rows[("pol", 0.9)]["rate"], rows[("uniform", 0.9)]["rate"]
    assert ours is not None and theirs is not None and ours < theirs
    assert rows[("pol", 0.9)]["vs_A1_percent"] == pytest.approx(100 * (ours / theirs - 1))
    assert any(k.startswith("pol at ") for k in res["bootstrap_objects"]["equal_accuracy_vs_A1"])
    without = analyse("detection", points, (1.0, 1.0), (1.0, 1.0))
    assert "equal_accuracy_objects" not in without
    text = markdown("detection", "mAP50-95", "bpp", res, {
        "command": "c", "data": "d", "items": 1, "frames": 20, "x265": "x", "x265_patch_hash": "h", "preset": "p",
        "weights": "w", "run_seconds": 1.0, "machine": "m",
    })  # fmt: skip
    assert "## Bits at equal accuracy on `objects`" in text


def test_the_report_says_how_much_of_the_class_mean_rests_on_sparse_classes() -> None:
    from semrl.bench.report import analyse, ground_truth_objects, markdown
    from semrl.fidelity.detection import FrameMatches, PooledMatches

    def frame(*classes: int) -> FrameMatches:
        return FrameMatches(np.zeros((0, 10), bool), np.zeros(0, np.float32), np.zeros(0, np.int64),
                            np.array(classes, np.int64))  # fmt: skip

    pooled = PooledMatches([frame(*[0] * 30), frame(0, 5, 5), frame(7)], "coco")
    objects = ground_truth_objects(pooled, {0: "person", 5: "tie"})
    assert objects == {"person": 31, "tie": 2, "7": 1}
    points = [*_detection_points("uniform", "A1", 1.0), *_detection_points("pol", "policy", 0.7)]
    res = analyse("detection", points, (0.9, 0.9), (0.9, 0.9), ground_truth=objects)
    assert res["ground_truth_objects"] == objects
    about = _DESCRIPTION
    text = markdown("detection", "mAP50-95", "bpp", res, about)
    assert "34 objects in 3 classes (person 31, tie 2, 7 1); classes with 10 objects or fewer: 2 of 3" in text
    assert "8.8 % of the objects and 67 % of the class mean's weight" in text
    bare = analyse("detection", points, (0.9, 0.9), (0.9, 0.9))
    assert "ground_truth_objects" not in bare and "Ground truth" not in markdown("detection", "m", "bpp", bare, about)

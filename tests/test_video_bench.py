"""The video benchmark's parts: real labels of clips, their scoring, and the bootstrap units."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from shared_assets import require_assets

from semrl.bench.items import video_files
from semrl.bench.report import TaskCurves, bootstrap_intervals
from semrl.bench.tasknet import classified, label_metric
from semrl.errors import InputNotFoundError, InvalidInputError
from semrl.fidelity.detection import box_overlaps, match_frame
from semrl.fidelity.labels import clip_labels, labelled_subset, read_mot_boxes
from semrl.semantics.yolo import Detections

SHAPE = (360, 480)


def dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    a = np.array(rows, np.float32).reshape(-1, 6)
    return Detections(a[:, :4].copy(), a[:, 4].copy(), a[:, 5].astype(np.int64), SHAPE)


def test_mot_boxes_are_read_per_frame_scaled_and_filtered(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text(
        "1,9,499,158,31,75,1,-4.1,-7.3,0\n"  # MOT15: world coordinates after the flag
        "1,10,10,10,20,20,0,-1,-1,-1\n"  # not to be considered
        "3,9,100,100,40,80,1,-1,-1,-1\n"
        "2,1,0,0,10,10,1,7,1.0\n"  # MOT16+: class 7 (static person) is not a pedestrian
        "9,1,0,0,10,10,1,1,1.0\n"  # beyond the clip
    )
    boxes = read_mot_boxes(gt, 3, SHAPE, scale=0.625)
    assert [len(b) for b in boxes] == [1, 0, 1]
    np.testing.assert_allclose(boxes[0].boxes[0], [499 * 0.625, 158 * 0.625, 530 * 0.625, 233 * 0.625], rtol=1e-5)
    assert boxes[0].cls.tolist() == [0] and boxes[0].conf.tolist() == [1.0]
    gt.write_text("1,2,3\n")
    with pytest.raises(InvalidInputError, match=r"gt\.txt:1"):
        read_mot_boxes(gt, 3, SHAPE)
    for line in ("1,1,10,10,-50,100,1,1,1", "1,1,10,10,50,0,1,1,1", "0,1,10,10,50,100,1,1,1"):
        gt.write_text(f"2,9,100,100,40,80,1,-1,-1,-1\n{line}\n")
        with pytest.raises(InvalidInputError, match=r"gt\.txt:2: a MOTChallenge box needs a frame from 1 and a pos"):
            read_mot_boxes(gt, 3, SHAPE)
    with pytest.raises(InputNotFoundError):
        read_mot_boxes(tmp_path / "none.txt", 3, SHAPE)


def test_unlabelled_people_are_dont_care_and_only_persons_count() -> None:
    truth = dets([(100, 100, 150, 200, 1, 0), (300, 100, 350, 200, 1, 0)])
    pred = dets([
        (100, 100, 150, 200, 0.9, 0),  # finds the first person
        (400, 250, 450, 350, 0.8, 0),  # a person the labels leave out: don't care
        (320, 150, 380, 260, 0.7, 0),  # overlaps the second without matching: a false positive
        (100, 100, 150, 200, 0.6, 2),  # a car: not scored
    ])  # fmt: skip
    assert box_overlaps(pred.boxes, truth.boxes).tolist() == [True, False, True, True]
    kept = labelled_subset(pred, truth)
    assert kept.conf.tolist() == pytest.approx([0.9, 0.7])
    m = match_frame(kept, truth)
    # By hand: one of two people found at every IoU threshold, above the false positive: precision 1
    # up to recall 0.5, then nothing. Ultralytics' AP (101-point, trapezoid, sentinel) gives 0.5.
    score = label_metric([m])
    assert score[0] == pytest.approx(0.5, abs=0.01) and score[1] == pytest.approx(0.5, abs=0.01)
    perfect = match_frame(truth, truth)
    assert label_metric([perfect])[0] == pytest.approx(0.995)


def test_clip_labels_are_found_beside_a_clip_in_its_sequence_or_in_the_assets(tmp_path: Path) -> None:
    clip = tmp_path / "cam.mp4"
    clip.write_bytes(b"")
    assert clip_labels(clip, 640, 480) is None
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,0,0,10,10,1,-1,-1,-1\n")
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nimWidth=1280\nimHeight=960\n")
    assert clip_labels(clip, 640, 480) == (tmp_path / "gt" / "gt.txt", 0.5)
    with pytest.raises(InvalidInputError, match="do not scale"):
        clip_labels(clip, 640, 360)
    (tmp_path / "cam.gt.txt").write_text("")
    assert clip_labels(clip, 640, 480) == (tmp_path / "cam.gt.txt", 1.0)


def test_the_shared_clips_with_labels() -> None:
    root = require_assets("videos/pets2009_s2l1_480x360.mp4", "videos-extra/labelled/TUD-Campus/TUD-Campus.mp4")
    pets = clip_labels(root / "videos" / "pets2009_s2l1_480x360.mp4", 480, 360)
    assert pets is not None and pets[1] == pytest.approx(0.625)
    tud = clip_labels(root / "videos-extra" / "labelled" / "TUD-Campus" / "TUD-Campus.mp4", 640, 480)
    assert tud is not None and tud[1] == 1.0
    names = [f.name for f in video_files(",".join(str(root / f) for f in ("videos", "videos-extra")))]
    assert "pets2009_s2l1_480x360.mp4" in names and "bgslibrary_video03_320x240.avi" in names
    with pytest.raises(InputNotFoundError):
        video_files(str(root / "no-such-folder"))


def test_a_clip_read_from_a_later_frame_holds_those_frames_and_their_labels() -> None:
    from semrl.bench.items import video_item

    root = require_assets("videos/pets2009_s2l1_480x360.mp4")
    clip = root / "videos" / "pets2009_s2l1_480x360.mp4"
    whole, later = video_item(clip, 7), video_item(clip, 4, start=3)
    assert len(later.yuv) == 4
    for k in range(4):
        assert np.array_equal(later.yuv[k].y, whole.yuv[3 + k].y)
        assert np.array_equal(later.source[k], whole.source[3 + k])
    assert whole.frame_labels is not None and later.frame_labels is not None
    assert all(len(labels.boxes) for labels in later.frame_labels)
    for k in range(4):
        assert np.array_equal(later.frame_labels[k].boxes, whole.frame_labels[3 + k].boxes)
    # other frames, other cache entries; read from frame 0, the digest the cache always had
    assert later.digest != video_item(clip, 4).digest and later.label_digest != whole.label_digest
    assert video_item(clip, 4, start=0).digest == video_item(clip, 4).digest
    with pytest.raises(InvalidInputError, match="0 or later"):
        video_item(clip, 4, start=-1)
    with pytest.raises(InvalidInputError, match="from frame 100000"):
        video_item(clip, 4, start=100_000)


def test_several_windows_of_each_clip_are_items_and_one_bootstrap_unit_per_clip() -> None:
    from benchmark_scripts import load_benchmark

    from semrl.bench.items import TASKS, load_items, video_item

    root = require_assets("videos/pets2009_s2l1_480x360.mp4")
    clip = root / "videos" / "pets2009_s2l1_480x360.mp4"
    task = dataclasses.replace(TASKS["video"], data=str(clip))
    items = load_items(task, None, None, 3, start=[0, 5])
    assert [i.name for i in items] == ["pets2009_s2l1_480x360.mp4@0", "pets2009_s2l1_480x360.mp4@5"]
    assert {i.clip for i in items} == {str(clip)}
    assert np.array_equal(items[1].yuv[0].y, video_item(clip, 3, start=5).yuv[0].y)
    assert items[1].digest == video_item(clip, 3, start=5).digest  # the cache is shared with --start 5
    assert [i.name for i in load_items(task, None, None, 3, start=5)] == ["pets2009_s2l1_480x360.mp4"]
    with pytest.raises(InvalidInputError, match="each first frame once"):
        load_items(task, None, None, 3, start=[5, 5])
    tool = load_benchmark("bdrate")
    units, frames = tool.video_units([*items, video_item(root / "videos" / "traffic_640x360.mp4", 2)], 2)
    assert [u.tolist() for u in units["clip"]] == [[0, 1, 2, 3, 4, 5], [6, 7]]
    assert [u.tolist() for u in units["2-frame segment"]] == [[0, 1], [2], [3, 4], [5], [6, 7]]
    assert list(frames) == ["pets2009_s2l1_480x360.mp4@0", "pets2009_s2l1_480x360.mp4@5", "traffic_640x360.mp4"]
    with pytest.raises(InvalidInputError, match="comma list"):
        tool._starts("0;200")


def test_bootstrap_draws_whole_units() -> None:
    from semrl.bench.runner import PointResult

    def points(method: str, family: str, scale: float) -> list[PointResult]:
        out = []
        for k, qp in enumerate((22, 30, 38, 46)):
            scores = [classified(np.array([0]), np.array([0 if i < 10 - 2 * k else 1])) for i in range(12)]
            out.append(PointResult(method, family, qp, f"qp={qp}", [int(scale * 1000 / 2**k)] * 12, [1.0] * 12,
                                   scores, [40.0] * 12, [40.0] * 12, [0.9] * 12, 0.0, float(qp)))  # fmt: skip
        return out

    pts = points("uniform", "A1", 1.0) + points("half", "policy", 0.5)
    clips = [np.arange(0, 6), np.arange(6, 12)]
    b = bootstrap_intervals("classification", pts, 0.8, 20, 0, None, clips, "clip")
    assert b["unit"] == "clip" and b["units"] == 2
    assert b["bd_rate_pchip"]["half vs uniform"]["median"] == pytest.approx(-50.0, abs=0.5)
    assert bootstrap_intervals("classification", pts, 0.8, 20, 0, None, clips, "clip", workers=2) == b
    # a draw's curves are those of the drawn frames' scores and bits, pooled
    drawn = TaskCurves("classification", pts)
    idx = np.array([9, 9, 0, 11])
    cs = drawn(drawn.draw(idx))
    for k, p in enumerate(pts[:4]):
        hits = [int(p.scores[i].pred_cls[0] == p.scores[i].target_cls[0]) for i in idx]
        assert cs["uniform"].quality[k] == pytest.approx(100 * np.mean(hits))
        assert cs["uniform"].rates[k] == pytest.approx(sum(p.frame_bits[i] for i in idx) / 4)  # bits per unit

"""``semrl eval``: the task's accuracy on an encode against its original, with the real nets."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from shared_assets import require_assets

from semrl.cli import main
from semrl.codec import Gop
from semrl.errors import InvalidInputError
from semrl.evaluate import evaluate, frame_bits
from semrl.pipeline import EncodeSettings, encode_video

pytestmark = [pytest.mark.x265, pytest.mark.weights]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 frames of PETS, copied where no labels lie beside it (pseudo ground truth)."""
    root = require_assets("videos/pets2009_s2l1_480x360.mp4", "models/yolov8n.pt")
    folder = tmp_path_factory.mktemp("eval")
    out = folder / "pets6.mp4"
    encode_video(root / "videos" / "pets2009_s2l1_480x360.mp4", out,
                 EncodeSettings(policy="uniform", qp=12, max_frames=6, preset="ultrafast"))  # fmt: skip
    return out


def test_a_video_against_itself_keeps_everything(clip: Path) -> None:
    report = evaluate(clip, clip, "detection")
    assert report.frames == 6 and report.against == "pseudo ground truth"
    assert report.accuracy == pytest.approx(1.0)  # COCO AP of the net's own objects: exactly 1
    assert report.objects == pytest.approx(1.0)  # and weighted by them
    assert report.psnr_y == 100.0 and report.ssim_y == pytest.approx(1.0)
    assert [r["bits"] for r in report.rows] == frame_bits(clip)
    assert evaluate(clip, clip, "classification").accuracy == 1.0


def test_an_encode_is_scored_per_frame_with_files(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoded = tmp_path / "coarse.mp4"
    encode_video(clip, encoded, EncodeSettings(policy="uniform", qp=44, preset="ultrafast"))
    assert main(["eval", str(clip), str(encoded), "--task", "detection", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "6 frames" in out and "mAP50-95" in out and "object-weighted" in out
    summary = json.loads((tmp_path / "out" / "coarse.mp4.eval.json").read_text())
    assert 0 < summary["accuracy"] < 1 and len(summary["rows"]) == 6
    assert 0 < summary["objects"] < 1 and summary["objects"] != summary["accuracy"]
    assert summary["kbps"] == pytest.approx(sum(r["bits"] for r in summary["rows"]) * 10 / 6 / 1000)
    rows = list(csv.DictReader((tmp_path / "out" / "coarse.mp4.eval.csv").read_text().splitlines()))
    assert [int(r["frame"]) for r in rows] == list(range(6)) and all(float(r["psnr_y"]) < 40 for r in rows)
    assert (tmp_path / "out" / "coarse.mp4.eval.png").read_bytes()[:4] == b"\x89PNG"


def test_encode_and_eval_report_one_luma_psnr(clip: Path, tmp_path: Path) -> None:
    encoded = tmp_path / "c.mp4"
    coded = encode_video(clip, encoded, EncodeSettings(policy="uniform", qp=37))
    scored = evaluate(clip, encoded, "detection")
    assert [row.psnr_y for row in coded.rows] == pytest.approx([row["psnr_y"] for row in scored.rows])
    assert coded.psnr_y == pytest.approx(scored.psnr_y)  # the clip's: the mean of its frames', in both


@pytest.mark.parametrize("suffix", [".mp4", ".hevc"])
@pytest.mark.parametrize("gop", [Gop.LOW_DELAY_P, Gop.RANDOM_ACCESS])
def test_encode_and_eval_report_one_rate_whatever_the_container(
    clip: Path, tmp_path: Path, suffix: str, gop: Gop
) -> None:
    encoded = tmp_path / f"c{suffix}"
    settings = EncodeSettings(policy="uniform", qp=37, preset="ultrafast", gop=gop, audio=False)
    coded = encode_video(clip, encoded, settings)
    scored = evaluate(clip, encoded, "detection")
    # an MP4 keeps the parameter sets in its header; they are the stream's bits all the same (a
    # start code of four bytes for x265's three after them: 8 bits more on the first picture);
    # a raw stream has no timestamps, and its B-frames are still put in display order
    shown = sorted(coded.rows, key=lambda row: row.index)
    first, *rest = [row["bits"] - coded_row.bits for coded_row, row in zip(shown, scored.rows, strict=True)]
    assert first in ((0, 8) if suffix == ".mp4" else (0,)) and rest == [0] * 5
    assert scored.kbps == pytest.approx(coded.kbps, abs=0.05)  # the report keeps one decimal


def test_the_shared_pets_clip_is_scored_against_its_labels(clip: Path, tmp_path: Path) -> None:
    root = require_assets("videos/pets2009_s2l1_480x360.mp4")
    report = evaluate(root / "videos" / "pets2009_s2l1_480x360.mp4", clip, "detection")
    assert report.against.startswith("labels ") and report.against.endswith("gt.txt")
    assert 0 < report.accuracy < 1
    # Asked to, it scores the labelled clip against the net's own objects, as any other clip.
    pseudo = evaluate(root / "videos" / "pets2009_s2l1_480x360.mp4", clip, "detection", pseudo_gt=True)
    assert pseudo.against == "pseudo ground truth" and pseudo.accuracy != report.accuracy
    pets = str(root / "videos" / "pets2009_s2l1_480x360.mp4")
    assert main(["eval", pets, str(clip), "--task", "detection", "--pseudo-gt", "-o", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "pets6.mp4.eval.json").read_text())["accuracy"] == pytest.approx(pseudo.accuracy)
    with pytest.raises(InvalidInputError, match="not both"):
        evaluate(clip, clip, "detection", labels=clip, pseudo_gt=True)


def test_mismatched_inputs_are_refused(clip: Path) -> None:
    root = require_assets("videos/traffic_640x360.mp4")
    with pytest.raises(InvalidInputError, match="not an encode of it"):
        evaluate(root / "videos" / "traffic_640x360.mp4", clip, "detection", max_frames=2)
    with pytest.raises(InvalidInputError, match="for detection, not segmentation"):
        evaluate(clip, clip, "segmentation", labels=clip)
    with pytest.raises(InvalidInputError, match="classification compares each frame's top-1 class"):
        evaluate(clip, clip, "classification", classes=("person",))  # it scored all classes, saying nothing


def test_only_the_classes_asked_for_are_scored(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    encoded = tmp_path / "coarse.mp4"
    encode_video(clip, encoded, EncodeSettings(policy="uniform", qp=44, preset="ultrafast"))
    people = evaluate(clip, encoded, "detection", classes=("person",))
    everything = evaluate(clip, encoded, "detection")
    assert people.against == "pseudo ground truth (person)" and people.accuracy != everything.accuracy
    assert evaluate(clip, clip, "detection", classes=("person",)).accuracy == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match=r"--classes walker: not classes of yolov8n\.pt"):
        evaluate(clip, encoded, "detection", classes=("walker",))
    # a class PETS never shows: no accuracy to give; evaluate says NaN, semrl eval refuses rather than print it
    assert math.isnan(evaluate(clip, encoded, "detection", classes=("giraffe",)).accuracy)
    args = ["eval", str(clip), str(encoded), "--task", "detection", "--classes", "giraffe", "-o", str(tmp_path / "g")]
    assert main(args) == 1
    assert "nothing to score: pseudo ground truth (giraffe) holds no objects on the 6 frames" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
    pets = require_assets("videos/pets2009_s2l1_480x360.mp4") / "videos" / "pets2009_s2l1_480x360.mp4"
    with pytest.raises(InvalidInputError, match=r"--classes car: the labels .*gt\.txt box persons only; drop"):
        evaluate(pets, clip, "detection", classes=("car",))  # the labels lying beside PETS
    unlabelled = tmp_path / "gt.txt"
    unlabelled.write_text("100,1,10,10,50,100,1,-1,-1,-1\n")  # frame 100 only: none of the 6 compared
    assert main(["eval", str(clip), str(encoded), "--task", "detection", "--labels", str(unlabelled)]) == 1
    assert "nothing to score: labels" in capsys.readouterr().err


def test_an_odd_picture_coded_without_its_last_row_is_scored_against_the_original(tmp_path: Path) -> None:
    root = require_assets("datasets/coco-det/images/val/000000000632.jpg")
    original = root / "datasets" / "coco-det" / "images" / "val" / "000000000632.jpg"  # 640x483
    encoded = tmp_path / "odd.mp4"
    encode_video(original, encoded, EncodeSettings(policy="uniform", qp=12, crop_even=True))
    report = evaluate(original, encoded, "detection")
    assert report.frames == 1 and 0.8 < report.accuracy <= 1.0 and report.psnr_y > 40


def test_frames_are_read_a_batch_at_a_time_however_long_the_clip(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import weakref

    from semrl import evaluate as module
    from semrl.codec import Yuv420
    from semrl.media import FrameSource

    longer = tmp_path / "longer.mp4"  # 40 frames: five of the net's batches
    root = require_assets("videos/pets2009_s2l1_480x360.mp4")
    encode_video(root / "videos" / "pets2009_s2l1_480x360.mp4", longer,
                 EncodeSettings(policy="uniform", qp=40, max_frames=40, preset="ultrafast"))  # fmt: skip
    read: list[weakref.ref[Yuv420]] = []
    most_alive: list[int] = []
    open_source, add = module.open_source, module._Scores.add

    def watched_open(*args: object, **kwargs: object) -> FrameSource:
        source = open_source(*args, **kwargs)  # type: ignore[arg-type]
        given = source._frames

        def frames() -> object:
            for frame in given:
                read.append(weakref.ref(frame))
                yield frame

        source._frames = frames()  # type: ignore[assignment]
        return source

    def watched_add(scores: object, *args: object) -> None:
        gc.collect()
        most_alive.append(sum(ref() is not None for ref in read))
        add(scores, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "open_source", watched_open)
    monkeypatch.setattr(module._Scores, "add", watched_add)
    report = evaluate(longer, longer, "detection", pseudo_gt=True)
    assert report.frames == 40 and len(read) == 80 and len(most_alive) == 5
    assert max(most_alive) <= 2 * module.EVAL_BATCH  # the batch's pairs, not the clips


def test_an_original_without_frames_is_named(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semrl import evaluate as module
    from semrl.media import FrameSource

    open_source = module.open_source

    def empty_original(path: Path, **kwargs: object) -> FrameSource:
        source = open_source(path, **kwargs)  # type: ignore[arg-type]
        if not kwargs.get("crop_even"):  # the encode
            return source
        source.close()
        return FrameSource(source.info, iter([]))

    monkeypatch.setattr(module, "open_source", empty_original)
    with pytest.raises(InvalidInputError, match=r"no frames to compare: .*pets6.mp4 gives none"):
        evaluate(clip, clip, "detection")

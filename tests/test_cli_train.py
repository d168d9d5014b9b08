"""``semrl train``: argument parsing, and one real run on two coco8 images (x265 and YOLO)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from shared_assets import require_assets

from semrl.cli import train as train_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semrl")
    train_cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_parses_options_into_a_train_run() -> None:
    args = _parser().parse_args(
        ["train", "--task", "segmentation", "--algo", "dqn", "--timesteps", "500", "--base-qp", "27-47",
         "--rate-weight", "2", "--seed", "3", "-o", "out", "--data", "clip.mp4", "--video-stride", "5"]
    )  # fmt: skip
    assert args.func is train_cli.run
    assert (args.task, args.algo, args.timesteps, args.base_qp) == ("segmentation", "dqn", 500, (27, 47))
    assert (args.rate_weight, args.seed, args.output, args.data, args.video_stride) == (2.0, 3, "out", "clip.mp4", 5)


def test_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--task", "tracking", "-o", "x"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--task", "detection", "--base-qp", "a-b", "-o", "x"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--task", "detection"])  # no output
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--task", "detection", "--scaling-lists", "steep", "-o", "x"])
    assert "expected SLOPE or SLOPE^POWER" in capsys.readouterr().err


def test_scaling_lists_parse_as_slope_and_power() -> None:
    def lists(text: str) -> object:
        return (
            _parser().parse_args(["train", "--task", "segmentation", "--scaling-lists", text, "-o", "x"]).scaling_lists
        )

    assert lists("5") == {"slope": 5.0, "power": 1.0} and lists("3^2") == {"slope": 3.0, "power": 2.0}
    assert _parser().parse_args(["train", "--task", "segmentation", "-o", "x"]).scaling_lists is None  # the task's


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_real_tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_assets("datasets/coco8", "models")
    monkeypatch.setenv("SEMRL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = _parser().parse_args(
        ["train", "--task", "detection", "--data", "coco8", "--limit", "2", "--timesteps", "300", "--workers", "1",
         "--preset", "ultrafast", "-o", str(out), "--no-progress"]
    )  # fmt: skip
    assert args.func(args) == 0
    config = json.loads((out / "ckpt.json").read_text())
    assert config["task"] == "detection" and config["weights"] == "yolov8n.pt"
    assert len(config["weights_sha256"]) == 64 and config["x265_patch_hash"]
    assert config["data"]["pictures"] == 2
    from semrl.agent.checkpoint import load_checkpoint_policy

    policy = load_checkpoint_policy(out / "ckpt.zip", task="detection")
    from envs.tables import load_pictures

    frame = load_pictures("coco8", limit=1)[0].frame
    offsets = policy.offsets_for(frame, 37)
    assert offsets.shape == (-(-frame.shape[0] // 64), -(-frame.shape[1] // 64))


def test_train_settings_name_the_option_that_is_wrong() -> None:
    from semrl.agent.config import TrainConfig
    from semrl.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--timesteps must be at least 1, got 0"):
        TrainConfig(timesteps=0)
    with pytest.raises(InvalidInputError, match="--workers must be at least 1"):
        TrainConfig(workers=0)
    with pytest.raises(InvalidInputError, match="needs a task part"):
        TrainConfig(semantic_weight=0, pixel_weight=0, object_weight=0)
    with pytest.raises(InvalidInputError, match=r"^--object-weight must be at least 0, got -1"):
        TrainConfig(object_weight=-1)
    with pytest.raises(InvalidInputError, match=r"^--rate-weight must be above 0, got 0"):
        TrainConfig(rate_weight=0)
    with pytest.raises(InvalidInputError, match=r"^--mse-share must be at least 0"):
        TrainConfig(mse_share=-0.5)
    with pytest.raises(InvalidInputError, match=r"^--base-qp LOW-HIGH needs 0 <= LOW <= HIGH <= 51, got 40-20"):
        TrainConfig(base_qps=(40, 20))
    with pytest.raises(InvalidInputError, match=r"^--video-stride must be positive, got 0"):
        TrainConfig(video_stride=0)
    with pytest.raises(InvalidInputError, match=r"^--seed must lie in 0\.\.4294967295"):  # not NumPy's traceback
        TrainConfig(seed=-1)
    with pytest.raises(InvalidInputError, match="the last would pass"):
        TrainConfig(seed=2**32 - 1, ensemble=2)


def test_fidelity_weights_default_by_task_and_yield_to_the_options() -> None:
    import json

    from semrl.agent.config import TrainConfig

    detection, classification = TrainConfig(task="detection"), TrainConfig(task="classification")
    assert detection.fidelity_weights == {"semantic_weight": 1.0, "pixel_weight": 1.0, "object_weight": 0.0}
    assert classification.fidelity_weights == {"semantic_weight": 0.0, "pixel_weight": 0.0, "object_weight": 1.0}
    assert TrainConfig(task="segmentation").fidelity_weights == classification.fidelity_weights
    given = TrainConfig(task="classification", semantic_weight=1.0, pixel_weight=1.0)
    assert given.fidelity_weights == {"semantic_weight": 1.0, "pixel_weight": 1.0, "object_weight": 1.0}
    # Saved resolved, so a config written before per-task defaults reads back as it was trained.
    assert TrainConfig.from_json(classification.to_json()) == classification
    assert json.loads(classification.to_json())["object_weight"] == 1.0
    old = json.loads(detection.to_json()) | {"task": "classification"}  # the shipped reward, spelled out
    assert TrainConfig.from_json(json.dumps(old)).fidelity_weights == detection.fidelity_weights
    args = _parser().parse_args(["train", "--task", "classification", "-o", "x"])
    assert args.semantic_weight is None and args.pixel_weight is None and args.object_weight is None


def test_picture_only_options_and_unreadable_clips_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    from semrl.agent.config import TrainConfig
    from semrl.agent.train import train
    from semrl.errors import InvalidInputError

    clip = require_assets("videos") / "videos" / "pets2009_s2l1_480x360.mp4"
    args = _parser().parse_args(["train", "--task", "detection", "--data", str(clip), "--ensemble", "2", "-o", "x"])
    assert args.ensemble == 2
    with pytest.raises(InvalidInputError, match="--ensemble 2 averages picture policies; drop it for videos"):
        train(TrainConfig(data=str(clip), ensemble=2), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InvalidInputError, match="--object-weighting class weighs objects in pictures"):
        train(TrainConfig(data=str(clip), object_weighting="class"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InvalidInputError, match="--augment adds transformed pictures; drop it for videos"):
        train(TrainConfig(data=str(clip), augment=("flip",)), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InvalidInputError, match="--hold-out leaves pictures of a split out; drop it for videos"):
        train(TrainConfig(data=str(clip), hold_out=(0, 4)), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "bad.mp4").write_text("not a video")
    with pytest.raises(InvalidInputError, match=r"bad\.mp4 is not a video or image FFmpeg can read"):
        train(TrainConfig(data=f"{clip},{tmp_path / 'clips'}", max_frames=2), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(range(256)) * 8)
    pictures = require_assets("datasets") / "datasets" / "coco8"
    for data in (str(clip), str(pictures)):  # the video policy's run and the pictures'
        with pytest.raises(InvalidInputError, match=r"damaged\.pt is not an Ultralytics model semrl can load"):
            train(TrainConfig(data=data, weights=str(damaged), max_frames=2, limit=2), tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_hold_out_leaves_a_range_of_pictures_out_and_is_checked(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from envs.tables import load_pictures
    from semrl.agent.config import TrainConfig
    from semrl.agent.train import train
    from semrl.errors import InvalidInputError

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((64, 80, 3), 40 * i, np.uint8))
    names = [p.name for p in load_pictures(tmp_path, hold_out=(1, 3))]
    assert names == ["00.png", "03.png", "04.png"]
    assert [p.name for p in load_pictures(tmp_path, limit=4, hold_out=(0, 2))] == ["02.png", "03.png"]
    for bad in ((0, 5), (3, 9)):
        with pytest.raises(InvalidInputError, match=f"--hold-out {bad[0]}:{bad[1]}: .* gives 5 images"):
            load_pictures(tmp_path, hold_out=bad)
    with pytest.raises(InvalidInputError, match="gives 5 images"):  # refused before the run folder exists
        train(TrainConfig(data=str(tmp_path), hold_out=(0, 5)), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(InvalidInputError, match="needs 0 <= START < STOP, got 3:1"):
        TrainConfig(hold_out=(3, 1))
    with pytest.raises(InvalidInputError, match="--hold-out leaves pictures of a split out; drop it for the video MDP"):
        TrainConfig(hold_out=(0, 1), mdp="video")
    config = TrainConfig(hold_out=(96, 128))
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_json(TrainConfig().to_json()).hold_out is None
    args = _parser().parse_args(["train", "--task", "detection", "--hold-out", "0:32", "-o", "x"])
    assert args.hold_out == "0:32"
    bad_args = _parser().parse_args(["train", "--task", "detection", "--hold-out", "0-32", "-o", str(tmp_path / "x")])
    with pytest.raises(
        InvalidInputError, match="--hold-out takes START:STOP, two whole numbers such as 0:32; got '0-32'"
    ):
        train_cli.run(bad_args)
    assert not (tmp_path / "x").exists()


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_own_net_end_to_end_train_encode_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint made here from the shipped weights (other bytes, a renamed class): train, encode, eval."""
    import torch

    from semrl.assets import resolve_weights
    from semrl.cli import main

    root = require_assets("datasets/coco8", "models", "videos/pets2009_s2l1_480x360.mp4")
    monkeypatch.setenv("SEMRL_CACHE", str(tmp_path / "cache"))
    checkpoint = torch.load(resolve_weights("yolov8n.pt"), map_location="cpu", weights_only=False)
    checkpoint["model"].names = {**checkpoint["model"].names, 0: "walker"}
    mine = tmp_path / "mine.pt"
    torch.save(checkpoint, mine)
    run = tmp_path / "run"
    assert main(["train", "--task", "detection", "--data", "coco8", "--limit", "2", "--timesteps", "200",
                 "--workers", "1", "--preset", "ultrafast", "--weights", str(mine), "-o", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    pets = root / "videos" / "pets2009_s2l1_480x360.mp4"
    out = tmp_path / "pets.mp4"
    common = ["--frames", "3", "--preset", "ultrafast", "--no-progress", "--policy", str(run / "ckpt.zip")]
    assert main(["encode", str(pets), "-o", str(out), "--weights", str(mine), *common]) == 0
    assert main(["encode", str(pets), "-o", str(tmp_path / "own.mp4"), *common]) == 0  # its own weights by default
    # The shipped weights are not those it learned on.
    assert main(["encode", str(pets), "-o", str(tmp_path / "x.mp4"), "--weights", "yolov8n.pt", *common]) == 1
    assert main(["eval", str(pets), str(out), "--task", "detection", "--weights", str(mine), "--frames", "3"]) == 0
    assert (tmp_path / "pets.mp4.eval.json").is_file() and not (tmp_path / "x.mp4").exists()


def test_training_clips_that_do_not_fit_in_memory_are_refused_with_the_frames_that_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from semrl.agent import video
    from semrl.agent.config import TrainConfig
    from semrl.agent.train import train
    from semrl.errors import InvalidInputError
    from semrl.media import ffmpeg_tool

    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x96:rate=10",
                    "-frames:v", "30", "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
    frame = 128 * 96 * 3
    monkeypatch.setattr(video, "available_memory", lambda: 2 * 12 * frame)  # half of it: 12 frames
    with pytest.raises(InvalidInputError, match=r"clip.mp4 reached it after 13 frames.*--max-frames \(about 6 of each"):
        video.load_clips([clip, clip], max_frames=None)
    assert [len(frames) for _, frames in video.load_clips([clip, clip], max_frames=6)] == [6, 6]
    with pytest.raises(InvalidInputError, match="--max-frames"):  # before the run folder exists
        train(TrainConfig(data=str(clip), mdp="video"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(video, "available_memory", lambda: None)  # unknown: no limit
    assert len(video.load_clips([clip], max_frames=None)[0][1]) == 30


def test_one_picture_is_training_data_and_a_bad_preset_or_file_is_refused_before_any_work(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from envs.tables import list_images
    from semrl.agent.config import TrainConfig
    from semrl.errors import InputWarning, InvalidInputError

    picture = tmp_path / "one.png"
    cv2.imwrite(str(picture), np.zeros((64, 64, 3), np.uint8))
    assert list_images(picture) == [picture]
    (tmp_path / "notes.txt").write_text("not pictures")
    with pytest.raises(InvalidInputError, match=r"notes\.txt is a file that is no image, video or data\.yaml"):
        list_images(tmp_path / "notes.txt")
    with pytest.raises(InvalidInputError, match="unknown x265 preset 'fastest'; choose one of ultrafast,"):
        TrainConfig(preset="fastest")
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.warns(InputWarning, match=r"holds 1 video\(s\) beside its images \(clip\.mp4\): they are left out"):
        assert list_images(tmp_path) == [picture]

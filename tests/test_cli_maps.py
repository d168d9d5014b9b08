"""``semrl maps`` parsed and run in-process (real detector on bus.jpg)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest
from shared_assets import require_assets

from semrl.cli import maps as maps_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semrl")
    maps_cli.register(p.add_subparsers(dest="command"))
    return p


def test_parses_and_rejects_bad_task() -> None:
    args = _parser().parse_args(["maps", "x.jpg", "--task", "detection", "-o", "out", "--frames", "3"])
    assert args.func is maps_cli.run and args.frames == 3 and args.method is None
    with pytest.raises(SystemExit):
        _parser().parse_args(["maps", "x.jpg", "--task", "tracking", "-o", "out"])


def test_missing_input_names_the_path(tmp_path) -> None:
    require_assets()
    args = _parser().parse_args(["maps", str(tmp_path / "nope.jpg"), "--task", "detection", "-o", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match=r"nope\.jpg"):
        args.func(args)


@pytest.mark.weights
def test_maps_on_bus(tmp_path) -> None:
    import ultralytics

    require_assets()
    bus = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    out = tmp_path / "maps"
    args = _parser().parse_args(["maps", str(bus), "--task", "detection", "-o", str(out), "--device", "cpu"])
    assert args.func(args) == 0
    assert (out / "bus_map.png").stat().st_size > 1000
    rows = list(csv.DictReader((out / "bus_ctu.csv").read_text().splitlines()))
    assert len(rows) == 17 * 13 and max(float(r["importance"]) for r in rows) > 0.5


@pytest.mark.weights
def test_maps_on_the_first_frames_of_a_video(tmp_path) -> None:
    video = require_assets("videos/pets2009_s2l1_480x360.mp4") / "videos" / "pets2009_s2l1_480x360.mp4"
    out = tmp_path / "maps"
    args = _parser().parse_args(
        ["maps", str(video), "--task", "detection", "-o", str(out), "--frames", "2", "--device", "cpu"]
    )
    assert args.func(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "pets2009_s2l1_480x360_00000_ctu.csv",
        "pets2009_s2l1_480x360_00000_map.png",
        "pets2009_s2l1_480x360_00001_ctu.csv",
        "pets2009_s2l1_480x360_00001_map.png",
    ]
    rows = list(csv.DictReader((out / "pets2009_s2l1_480x360_00000_ctu.csv").read_text().splitlines()))
    assert len(rows) == 6 * 8  # 480x360 -> 8 columns, 6 rows of 64x64 CTUs
    assert sum(float(r["importance"]) > 0.3 for r in rows) >= 3  # the walking people


@pytest.mark.weights
@pytest.mark.x265
def test_a_policys_qp_maps_on_images_of_odd_size(tmp_path, capsys) -> None:
    images = require_assets("datasets/coco8/images/val") / "datasets" / "coco8" / "images" / "val"
    out = tmp_path / "maps"
    args = _parser().parse_args(
        ["maps", str(images), "--task", "detection", "-o", str(out), "--policy", "roi", "--qp", "37", "--device", "cpu"]
    )
    stems = sorted(p.stem for p in images.iterdir() if p.suffix == ".jpg")
    for _ in range(2):  # the second run draws them over the first's: still counted
        assert args.func(args) == 0
        assert f"wrote {len(stems)} QP map(s) of policy roi at base QP 37" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*_qp_*.png")) == [f"{s}_qp_000000.png" for s in stems]
    assert not [p for p in tmp_path.rglob("*.hevc")]  # the encodes that drew them are gone


@pytest.mark.weights
def test_maps_of_some_classes_only(tmp_path) -> None:
    import ultralytics

    require_assets()
    bus = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    importance = {}
    for classes in ("person", "giraffe"):
        out = tmp_path / classes
        args = _parser().parse_args(["maps", str(bus), "--task", "detection", "-o", str(out), "--classes", classes])
        assert args.func(args) == 0
        rows = csv.DictReader((out / "bus_ctu.csv").read_text().splitlines())
        importance[classes] = max(float(r["importance"]) for r in rows)
    assert importance["person"] > 0.5 and importance["giraffe"] == 0.0  # bus.jpg has people, no giraffe


@pytest.mark.weights
def test_maps_into_a_folder_that_refuses_writes_is_a_message(tmp_path, monkeypatch, capsys) -> None:
    import ultralytics

    from semrl.cli import main
    from semrl.semantics import render

    require_assets()

    def refused(path, data):  # as a read-only folder answers a user who is not root
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(render, "atomic_write", refused)
    bus = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    assert main(["maps", str(bus), "--task", "detection", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


def test_maps_into_a_folder_nothing_can_be_made_in_is_refused_before_the_net_runs(tmp_path, capsys) -> None:
    from semrl.cli import main

    picture = tmp_path / "p.png"
    picture.write_bytes(b"not read: the output is refused first")
    (tmp_path / "a-file").write_text("x")
    assert main(["maps", str(picture), "--task", "detection", "-o", str(tmp_path / "a-file" / "out")]) == 1
    assert "a-file is a file, not a folder" in capsys.readouterr().err
    assert main(["eval", str(picture), str(picture), "--task", "detection", "-o", str(tmp_path / "a-file")]) == 1
    assert "a-file is a file, not a folder" in capsys.readouterr().err


@pytest.mark.weights
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--frames", "0"], "--frames must be at least 1, got 0"),
        (["--qp", "30"], "--qp 30 is the base QP of --policy's map; pass --policy too"),
        (["--qp", "99", "--policy", "detection"], "--qp must be in 0..51, got 99"),
        (["--policy", "segmentation"], "is a segmentation policy, not a detection policy"),
        (["--classes", "person", "--method", "gradient"], "--classes weighs objects by class.*a gradient map"),
        (["--classes", "nosuch"], "--classes nosuch: not classes of .*yolov8n.pt"),
        (["--class-weights", "{cw}"], "--class-weights nosuch: not classes of .*yolov8n.pt"),
    ],
)
def test_a_bad_option_is_refused_before_any_map_is_written(tmp_path: Path, options: list[str], message: str) -> None:
    import ultralytics

    from semrl.errors import InvalidInputError

    require_assets()
    (tmp_path / "cw.yaml").write_text("weights:\n  person: 0.5\n  nosuch: 1\n")
    bus = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    out = tmp_path / "maps"
    options = [o.format(cw=tmp_path / "cw.yaml") for o in options]
    args = _parser().parse_args(["maps", str(bus), "--task", "detection", "-o", str(out), "--device", "cpu", *options])
    with pytest.raises(InvalidInputError, match=message):
        args.func(args)
    assert not out.exists() or not any(out.iterdir())

"""Tests of asset resolution and of keeping Ultralytics offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from semrl import assets
from semrl.assets import AssetNotFoundError, resolve_dataset, resolve_weights


def test_missing_assets_folder_named_in_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path / "nowhere"))
    with pytest.raises(AssetNotFoundError, match="nowhere"):
        assets.assets_root()


def test_weights_resolution(monkeypatch, tmp_path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "yolov8n.pt").write_bytes(b"x")
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path))
    assert resolve_weights("yolov8n.pt") == str(tmp_path / "models" / "yolov8n.pt")
    assert resolve_weights("yolo11s.pt") == "yolo11s.pt"  # left to Ultralytics' download
    with pytest.raises(AssetNotFoundError, match=r"yolov8q\.pt is not a file, nor in .*models, nor a model"):
        resolve_weights("yolov8q.pt")  # a typo: refused before Ultralytics goes online for it
    with pytest.raises(AssetNotFoundError, match="missing"):
        resolve_weights(tmp_path / "missing" / "w.pt")
    with pytest.raises(FileNotFoundError, match="coco-x"):
        resolve_dataset("coco-x")
    with pytest.raises(AssetNotFoundError, match=r"is a folder; give a YOLO \.pt checkpoint"):
        resolve_weights(tmp_path / "models")


def test_files_that_are_no_yolo_checkpoint_are_named_not_tracebacks(tmp_path) -> None:
    from semrl.assets import load_yolo
    from semrl.errors import InvalidInputError

    noise, text, video = tmp_path / "noise.pt", tmp_path / "model.pt", tmp_path / "clip.mp4"
    noise.write_bytes(bytes(range(256)) * 20)
    text.write_text("not a model")
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    for path, kind in ((noise, "damaged"), (text, "damaged"), (video, "not a PyTorch YOLO checkpoint")):
        with pytest.raises(InvalidInputError, match=kind):
            load_yolo(path)


def test_reports_write_the_assets_folder_as_its_setting(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path))
    text = f"--data {tmp_path}/videos,{tmp_path}/videos-extra --output /elsewhere"
    assert assets.portable(text) == "--data $SEMRL_ASSETS/videos,$SEMRL_ASSETS/videos-extra --output /elsewhere"
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path / "nowhere"))
    assert assets.portable(text) == text  # no assets folder: as it was


def test_a_portable_path_reads_back_under_this_machines_assets(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEMRL_ASSETS", str(tmp_path))
    clip = tmp_path / "videos" / "cam.mp4"
    assert assets.local_path(assets.portable(str(clip))) == clip
    assert assets.local_path("/elsewhere/cam.mp4") == Path("/elsewhere/cam.mp4")
    monkeypatch.setattr(assets, "assets_root", lambda: None)
    with pytest.raises(AssetNotFoundError, match="set SEMRL_ASSETS"):
        assets.local_path("$SEMRL_ASSETS/videos/cam.mp4")


def test_hash_is_memoised_and_correct(tmp_path) -> None:
    import hashlib

    f = tmp_path / "w"
    f.write_bytes(b"abc")
    assert assets.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()


def test_importing_semrl_imports_no_torch_and_configures_offline(tmp_path) -> None:
    code = (
        "import sys, os\n"
        "import semrl, semrl.semantics, semrl.fidelity, semrl.semantics.extractors\n"
        "import semrl.semantics.render, semrl.fidelity.detection, semrl.assets as a\n"
        "assert 'torch' not in sys.modules and 'ultralytics' not in sys.modules, 'heavy import'\n"
        "a.configure_ultralytics()\n"
        "print(os.environ['YOLO_CONFIG_DIR'], os.environ['YOLO_AUTOINSTALL'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}
    env["SEMRL_CACHE"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(tmp_path / "ultralytics"), "0"]
    assert (tmp_path / "ultralytics" / "Ultralytics" / "Arial.ttf").is_file()
    assert not Path(tmp_path / "ultralytics" / "Ultralytics" / "Arial.ttf").is_symlink()

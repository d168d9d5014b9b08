"""The ``semrl`` command line, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from semrl import __version__
from semrl.cli import main


def test_version_names_semrl_x265_and_weights(capsys: pytest.CaptureFixture[str], x265) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert f"semrl {__version__}" in out
    assert f"x265 {x265.build.version}" in out and x265.build.patch_hash in out
    assert str(x265.build.library_path) in out
    assert "detection weights yolov8n.pt:" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "smoke" in capsys.readouterr().out


@pytest.mark.x265
@pytest.mark.slow
def test_smoke_encodes_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "smoke.hevc"
    assert main(["smoke", "-o", str(output), "--frames", "4", "--preset", "ultrafast"]) == 0
    out = capsys.readouterr().out
    assert output.stat().st_size > 0
    assert "HEVC Main" in out
    assert "frame bits on every frame: True" in out and "reconstruction: True" in out


def test_smoke_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "-o", str(tmp_path / "missing" / "out.hevc"), "--frames", "2"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["smoke", "--frames", "0"]) == 1
    assert main(["smoke", "-o", str(tmp_path / "s.mp4"), "--frames", "2"]) == 1  # raw Annex-B under an MP4 name
    assert "name it .hevc" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

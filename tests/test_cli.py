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
    assert main(["smoke", "--qp", "60"]) == 1
    assert "--qp must be in 0..51, got 60" in capsys.readouterr().err  # as semrl encode says it
    assert main(["smoke", "-o", str(tmp_path / "s.mp4"), "--frames", "2"]) == 1  # raw Annex-B under an MP4 name
    assert "name it .hevc" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("signum", "word", "status"), [("SIGINT", "interrupted", 130), ("SIGTERM", "terminated", 143)])
@pytest.mark.parametrize("error", ["InvalidInputError", "RuntimeError"])
def test_an_error_after_a_stopping_signal_is_reported_as_the_signal(
    signum: str, word: str, status: int, error: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The decoder dies with the same Ctrl-C, and a finalizer may swallow the KeyboardInterrupt: not damage."""
    import contextlib
    import signal

    from semrl.cli import Terminated
    from semrl.errors import InvalidInputError

    def interrupted_decode(_args: object) -> int:
        # swallowed, as Python does when the signal's exception is raised inside a finalizer
        with contextlib.suppress(KeyboardInterrupt, Terminated):
            signal.raise_signal(getattr(signal, signum))
        if error == "RuntimeError":  # a library's own wrapping of the interrupt
            raise RuntimeError("interrupted while loading the model")
        raise InvalidInputError("FFmpeg was stopped by a signal while decoding clip.mp4, after 7 frames")

    monkeypatch.setattr("semrl.cli.encode.run", interrupted_decode)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal
    try:
        assert main(["encode", "clip.mp4"]) == status
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert f"semrl encode: {word}; no partial output was kept" in err
    assert "damaged" not in err and "FFmpeg" not in err and "Traceback" not in err


def test_an_error_without_a_signal_is_still_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from semrl.errors import InvalidInputError

    def damaged(_args: object) -> int:
        raise InvalidInputError("clip.mp4 is damaged")

    monkeypatch.setattr("semrl.cli.encode.run", damaged)
    assert main(["encode", "clip.mp4"]) == 1
    assert "semrl encode: error: clip.mp4 is damaged" in capsys.readouterr().err


def test_a_bug_without_a_signal_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(_args: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("semrl.cli.encode.run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["encode", "clip.mp4"])


def test_shared_option_parsers_name_what_is_wrong() -> None:
    import argparse

    from semrl.cli.options import at_least, numbers
    from semrl.errors import InvalidInputError

    assert at_least(1)("3") == 3 and at_least(0)("0") == 0
    for text, message in (("0", "must be at least 1, got 0"), ("2.5", "expected a whole number, got '2.5'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            at_least(1)(text)
    assert numbers("50, 100,", "--rates") == [50.0, 100.0]
    for text in ("", "50,fast"):
        with pytest.raises(InvalidInputError, match="--rates takes comma-separated numbers"):
            numbers(text, "--rates")
    with pytest.raises(InvalidInputError, match=r"--qps takes comma-separated numbers, e\.g\. 22,27; got '22,x'"):
        numbers("22,x", "--qps", "22,27")


def test_a_base_qp_beside_a_target_rate_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:  # --bitrate picks every frame's QP: a --qp would be ignored
        main(["encode", "clip.mp4", "--qp", "22", "--bitrate", "100"])
    assert stop.value.code == 2
    assert "argument --bitrate: not allowed with argument --qp" in capsys.readouterr().err

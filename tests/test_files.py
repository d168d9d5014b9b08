"""Atomic writes: the whole file or nothing, with the permissions ``open`` would give under the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from semrl.codec import AnnexBWriter
from semrl.errors import InvalidInputError
from semrl.files import atomic_folder, atomic_output, atomic_write, check_can_create, remove_partial_writes


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_results_honour_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        written = atomic_write(tmp_path / "a.json", "{}")
        with AnnexBWriter(tmp_path / "b.hevc") as writer:
            writer.write(b"\x00\x00\x00\x01\x40\x01")
    finally:
        os.umask(old)
    for path in (written, tmp_path / "b.hevc"):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert os.umask(old) == old  # the umask was put back


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "set"
    with pytest.raises(RuntimeError), atomic_folder(target) as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    old = os.umask(0o027)
    try:
        with atomic_folder(target) as staging:
            (staging / "a.txt").write_text("whole")
            assert not target.exists()
    finally:
        os.umask(old)
    assert (target / "a.txt").read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["set"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    with pytest.raises(FileExistsError, match="give a new folder"), atomic_folder(target):
        pass
    assert (target / "a.txt").read_text() == "whole"


def test_the_temporary_of_a_killed_writer_is_removed_and_nothing_else(tmp_path: Path) -> None:
    import multiprocessing

    target = tmp_path / "t[1].npz"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_write_and_die, args=(str(target),))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 9
    (tmp_path / "other.npz").write_text("kept")
    (tmp_path / ".other.npz.x.part").write_text("another file's writer may still run")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".t[1].npz.")]
    assert len(leftovers) == 1  # the killed writer ran no clean-up
    assert [p.name for p in remove_partial_writes(target)] == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.npz.x.part", "other.npz"]


def _write_and_die(path: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text("half")
        os._exit(9)


def test_an_output_folder_is_judged_by_making_a_file_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    check_can_create(tmp_path, "-o")
    check_can_create(tmp_path / "new" / "deeper", "-o")  # judged where it will be made
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the probe leaves nothing, and makes no folder
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInputError, match=r"-o .*a-file/sub: .*a-file is a file, not a folder"):
        check_can_create(tmp_path / "a-file" / "sub", "-o")

    def refused(*args: object, **kwargs: object) -> tuple[int, str]:  # root in /proc, a read-only mount
        raise OSError(2, "No such file or directory")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(InvalidInputError, match=r"--report folder .* is not writable \(No such file or directory\)"):
        check_can_create(tmp_path, "--report")


def test_json_text_is_strict_json_with_undefined_scores_as_null() -> None:
    import json

    import numpy as np

    from semrl.files import json_text

    text = json_text({"accuracy": float("nan"), "rows": [{"a": np.float32(0.5)}, {"a": np.float64("inf")}], "n": 3})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}")) == {
        "accuracy": None, "rows": [{"a": 0.5}, {"a": None}], "n": 3,
    }  # fmt: skip

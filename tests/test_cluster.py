"""Work on Ray (``--ray``): a real local Ray instance with 2 CPUs, results identical to the local path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.codecs import FakeCodec
from envs.tables import CtuTable, build_tables, make_picture
from semrl.bench.cache import Cache
from semrl.cluster import (
    Failure,
    check_address,
    identity_mismatch,
    per_process,
    report_failures,
    run_jobs,
)
from semrl.errors import InvalidInputError
from semrl.semantics.fakes import FakeExtractor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A real local Ray instance with 2 CPUs; this test module's functions travel to it by value."""
    ray = pytest.importorskip("ray", reason="Ray is installed by the README's set-up (semrl[ray])")
    from ray import cloudpickle  # Ray's own copy pickles its tasks

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    yield ray
    ray.shutdown()


def _tables_equal(a: list[CtuTable], b: list[CtuTable]) -> None:
    assert [t.name for t in a] == [t.name for t in b]
    for x, y in zip(a, b, strict=True):
        for name in ("qps", "bits", "dsem", "rise", "dpix", "mse", "dobj", "fobj", "grids", "semantic"):
            assert getattr(x, name).tobytes() == getattr(y, name).tobytes(), (x.name, name)
        assert x.reference is not None and y.reference is not None
        assert x.reference.boxes.tobytes() == y.reference.boxes.tobytes()
        assert x.reference.conf.tobytes() == y.reference.conf.tobytes()


def _fake_pictures(n: int) -> list[Any]:
    rng = np.random.default_rng(3)
    return [make_picture(f"p{i}.png", rng.integers(0, 255, (128, 192, 3), dtype=np.uint8)) for i in range(n)]


# ---- without Ray ----


def test_addresses_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for good in ("local", "auto", "10.0.0.5:6379", "head-node:6379", "ray://head:10001"):
        assert check_address(good) == good
    for bad in ("clip.mp4", "videos/", "6379", "http://head:6379"):
        with pytest.raises(InvalidInputError, match="--ray takes"):
            check_address(bad)
    import argparse

    from semrl.cluster import add_ray_option

    parser = argparse.ArgumentParser()
    add_ray_option(parser, "encodes")
    with pytest.raises(SystemExit):  # argparse shows the message itself, not "invalid ... value"
        parser.parse_args(["--ray", "not an address"])
    assert "argument --ray: takes 'local', 'auto' or HOST:PORT, got 'not an address'" in capsys.readouterr().err


def test_identity_mismatch_names_what_differs() -> None:
    ours = {"x265": "3.5:199:abc", "task net": "yolov8n.pt:1234"}
    assert identity_mismatch(ours, dict(ours)) is None
    text = identity_mismatch(ours, {"x265": "3.5:199:zzz", "task net": "yolov8n.pt:1234"})
    assert text is not None and "zzz" in text and "abc" in text and "task net" not in text
    failures = [Failure(i, f"pic{i}", "boom") for i in range(12)]
    message = report_failures(failures, "picture(s)")
    assert message.startswith("12 picture(s) failed") and "pic9: boom" in message and "2 more" in message


def test_per_process_builds_once() -> None:
    built: list[int] = []

    class Factory:
        def __call__(self) -> int:
            built.append(1)
            return len(built)

    factory = Factory()
    assert per_process(factory) == per_process(factory) == 1
    assert len(built) == 1


def test_cache_files_round_trip_and_refuse_stray_paths(tmp_path: Path) -> None:
    worker = Cache(tmp_path / "worker")
    worker.stream("k").write_bytes(b"\x00\x00\x01stream")
    worker.put_json("k", {"frame_bits": [8]})
    worker.put_npz("eval", "e", {"a": np.arange(3)})
    worker.put_npz("policy", "m", {"frame0": np.ones((2, 3), np.int32)})  # a policy's maps, made where it ran
    files = worker.files()
    assert sorted(files) == ["enc/k.hevc", "enc/k.json", "eval/e.npz", "policy/m.npz"]
    driver = Cache(tmp_path / "driver")
    driver.put_files(files)
    assert driver.get_json("k") == {"frame_bits": [8]} and driver.has("eval", "e") and driver.has("policy", "m")
    for stray in ("../x.json", "enc/../../x", "other/k.json", "enc/.hidden"):
        with pytest.raises(ValueError, match="not a cache entry"):
            driver.put_files({stray: b""})


def test_cli_options_take_ray() -> None:
    from semrl.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--task", "detection", "-o", "x", "--ray"])
    assert args.ray == "local"
    args = parser.parse_args(["encode", "a.mp4", "b.mp4", "-o", "out/", "--ray", "auto"])
    assert args.ray == "auto" and len(args.input) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["encode", "--ray", "a.mp4", "b.mp4", "-o", "out/"])  # an input is no address


class DyingCodec(FakeCodec):
    """Kills its worker process on a flat picture, as the OOM killer would."""

    def code(self, frame: Any, base_qp: int, offsets: Any = None) -> Any:
        if float(frame.std()) < 1:
            os._exit(9)
        return super().code(frame, base_qp, offsets)


def test_a_local_table_worker_that_dies_is_an_error_not_a_hang(tmp_path: Path) -> None:
    pictures = [*_fake_pictures(3), make_picture("flat.png", np.full((128, 192, 3), 90, np.uint8))]
    from envs.tables import TableBuildError

    with pytest.raises(TableBuildError, match="worker process died"):
        build_tables(pictures, codec_factory=DyingCodec, extractor_factory=FakeExtractor, workers=2,
                     cache_dir=tmp_path, progress=False, codec=FakeCodec(), extractor=FakeExtractor())  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".npz")]  # nothing half-written


# ---- a real local Ray instance, fakes ----


def _echo(payload: int) -> tuple[dict[str, str], int]:
    if payload == 3:
        raise InvalidInputError("picture 3 is corrupt")
    return {"build": "other" if payload == 5 else "ours"}, payload * 10


def test_jobs_run_failures_are_named_and_foreign_workers_refused(ray_local: Any) -> None:
    got: dict[int, int] = {}
    jobs = [(f"job{i}", i) for i in range(8)]
    failures = run_jobs(_echo, jobs, identity={"build": "ours"}, on_result=got.__setitem__, progress=False)
    assert got == {i: i * 10 for i in range(8) if i not in (3, 5)}, failures
    by_name = {f.name: f.reason for f in failures}
    assert set(by_name) == {"job3", "job5"}
    assert "InvalidInputError: picture 3 is corrupt" in by_name["job3"]
    assert by_name["job5"].startswith("refused: worker") and "'other'" in by_name["job5"]


def test_fake_tables_through_ray_equal_the_local_ones(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pictures = _fake_pictures(5)
    kwargs: dict[str, Any] = {"codec_factory": FakeCodec, "extractor_factory": FakeExtractor, "progress": False}
    local = build_tables(pictures, cache_dir=tmp_path / "local", **kwargs)
    remote = build_tables(pictures, cache_dir=tmp_path / "ray", ray="local", **kwargs)
    _tables_equal(local, remote)
    names = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "local").iterdir())
    # a second run finds every table in the cache and submits nothing
    import semrl.cluster

    def no_jobs(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached table was submitted again")

    monkeypatch.setattr(semrl.cluster, "run_jobs", no_jobs)
    _tables_equal(local, build_tables(pictures, cache_dir=tmp_path / "ray", ray="local", **kwargs))


def test_a_picture_whose_worker_always_dies_is_named_and_left_out(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semrl.cluster

    monkeypatch.setattr(semrl.cluster, "MAX_RETRIES", 0)  # each retry restarts a worker: seconds apiece
    pictures = [*_fake_pictures(3), make_picture("flat.png", np.full((128, 192, 3), 90, np.uint8))]
    with pytest.warns(UserWarning, match=r"1 picture\(s\) failed on the cluster: flat.png: .*training goes on"):
        tables = build_tables(
            pictures, codec_factory=DyingCodec, extractor_factory=FakeExtractor, ray="local", cache_dir=tmp_path,
            progress=False, codec=FakeCodec(), extractor=FakeExtractor(),
        )  # fmt: skip
    assert [t.name for t in tables] == ["p0.png", "p1.png", "p2.png"]
    assert len(list(tmp_path.iterdir())) == 3


# ---- a real local Ray instance, the real x265 and weights ----


def _coco8_pictures() -> list[Any]:
    from envs.tables import load_pictures
    from tests.shared_assets import require_assets

    require_assets("models/yolov8n.pt", "datasets/coco8")
    return load_pictures("coco8", split="train")


def _real_factories() -> dict[str, Any]:
    from envs.tables import RealExtractorFactory, X265CodecFactory
    from semrl.semantics.config import MapConfig

    return {
        "codec_factory": X265CodecFactory("ultrafast"),
        "extractor_factory": RealExtractorFactory(MapConfig(task="detection").to_json()),
        "qps": (22, 32, 42, 51),
        "progress": False,
    }


def _kill_one_task(stop: threading.Event, killed: list[int]) -> None:
    """Kills (SIGKILL) the first worker process seen running a semrl task."""
    while not stop.is_set() and not killed:
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        for line in ps.splitlines():
            pid, _, args = line.strip().partition(" ")
            if args.startswith("ray::semrl:"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_coco8_tables_through_ray_equal_the_local_ones_even_when_a_worker_dies(ray_local: Any, tmp_path: Path) -> None:
    import torch

    pictures = _coco8_pictures()
    # semrl's Ray tasks (and its pool workers) run torch on one thread (semrl.cluster._execute,
    # envs.tables._init_worker); the in-process build keeps the caller's count, and torch's float
    # sums depend on it, so the local build here runs on one thread too (with two, 'dsem' differs
    # in the last bits).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = build_tables(pictures, cache_dir=tmp_path / "local", workers=1, **_real_factories())
    finally:
        torch.set_num_threads(threads)
    remote = build_tables(pictures, cache_dir=tmp_path / "ray", ray="local", **_real_factories())
    _tables_equal(local, remote)

    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_task, args=(stop, killed), daemon=True)
    killer.start()
    try:
        survived = build_tables(pictures, cache_dir=tmp_path / "killed", ray="local", **_real_factories())
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was running a task to kill"
    _tables_equal(local, survived)
    assert not [p for p in (tmp_path / "killed").iterdir() if not p.name.endswith(".npz") or p.name.startswith(".")]


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_a_two_point_benchmark_through_ray_equals_the_local_one(ray_local: Any, tmp_path: Path) -> None:
    from tests.benchmark_scripts import load_benchmark
    from tests.shared_assets import require_assets

    require_assets("models/yolov8n.pt", "datasets/coco8")
    tool = load_benchmark("bdrate")
    points = []
    for mode in ("local", "ray"):
        out = tmp_path / mode
        argv = [
            "--task", "detection", "--data", "coco8", "--limit", "2", "--methods", "uniform,roi", "--qps", "32,44",
            "--roi-deltas", "8", "--bootstrap", "0", "--no-progress", "--workers", "1",
            "--output", str(out), "--cache-dir", str(tmp_path / f"cache-{mode}"),
        ]  # fmt: skip
        assert tool.main([*argv, "--ray"] if mode == "ray" else argv) == 0
        res = json.loads((out / "detection" / "bdrate.json").read_text())
        points.append([{k: v for k, v in p.items() if k not in ("encode_s", "encode_ms_per_frame")}
                       for p in res["results"]["points"]])  # fmt: skip
        assert res["description"]["work"] == {"encoded": 8, "encode_cached": 0, "evaluated": 8, "eval_cached": 0}
    assert points[0] == points[1]
    assert sorted(p.name for p in (tmp_path / "cache-ray" / "enc").iterdir()) == sorted(
        p.name for p in (tmp_path / "cache-local" / "enc").iterdir()
    )


@pytest.mark.x265
@pytest.mark.weights
@pytest.mark.slow
def test_encode_several_inputs_through_ray(ray_local: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from semrl.cli import main
    from tests.shared_assets import require_assets

    root = require_assets("models/yolov8n.pt", "videos/pets2009_s2l1_480x360.mp4", "videos/traffic_640x360.mp4")
    clips = [root / "videos" / "pets2009_s2l1_480x360.mp4", root / "videos" / "traffic_640x360.mp4"]
    common = ["--frames", "6", "--no-progress", "--preset", "ultrafast"]
    assert main(["encode", *map(str, clips), "-o", f"{tmp_path / 'local'}/", *common]) == 0
    missing = tmp_path / "missing.mp4"
    rc = main(["encode", *map(str, clips), str(missing), "-o", f"{tmp_path / 'ray'}/", *common, "--ray"])
    assert rc == 1  # one input failed, the others were written
    err = capsys.readouterr().err
    assert f"{missing}: failed: InputNotFoundError" in err and "1 of 3 inputs failed" in err
    for clip in clips:
        name = f"{clip.stem}.mp4"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(f"{c.stem}.mp4" for c in clips)

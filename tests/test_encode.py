"""``semrl encode`` end to end: real x265, real detector, FFmpeg as the independent decoder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import warnings
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shared_assets import require_assets

from semrl.cli import main
from semrl.codec import GopLayout, ScalingLists, Yuv420
from semrl.errors import InputNotFoundError, InputWarning, InvalidInputError
from semrl.media import Colour, decode_ffmpeg, ffmpeg_tool, open_source, probe, video_info
from semrl.pipeline import STAGES, EncodeReport, EncodeSettings, encode_video, stream_description
from semrl.policy import PolicyInput, Prefilter, SoftenedPolicy

pytestmark = [
    pytest.mark.x265,
    # most tests here write raw streams from PETS, which has audio; the warning has its own test below
    pytest.mark.filterwarnings("ignore:.*has audio, which a raw HEVC stream:semrl.errors.InputWarning"),
]


@pytest.fixture(scope="module")
def pets() -> Path:
    return require_assets("videos/pets2009_s2l1_480x360.mp4") / "videos" / "pets2009_s2l1_480x360.mp4"


def _decoded_md5(path: Path, width: int, height: int) -> list[str]:
    return [hashlib.md5(picture.to_i420()).hexdigest() for picture in decode_ffmpeg(path, width, height)]


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "task", "suffix"),
    [
        ("uniform", None, ".hevc"),
        ("roi", "detection", ".mp4"),
        ("roi", "segmentation", ".mp4"),
        ("detection", None, ".mp4"),
    ],
)
def test_encodes_decodable_hevc_matching_the_reconstruction(
    pets: Path, tmp_path: Path, policy: str, task: str | None, suffix: str
) -> None:
    output = tmp_path / f"out{suffix}"
    settings = EncodeSettings(policy=policy, task=task, max_frames=12, map_interval=5, preset="ultrafast")
    report = encode_video(pets, output, settings)
    assert report.frames == 12 and report.fps == 10.0 and report.bits > 0
    info = probe(output, count_frames=True)
    assert info["codec_name"] == "hevc" and info["profile"] == "Main"
    assert int(str(info["nb_read_frames"])) == 12
    if suffix == ".mp4":
        assert info["codec_tag_string"] == "hvc1" and info["r_frame_rate"] == "10/1"
    assert _decoded_md5(output, 480, 360) == [row.recon_md5 for row in report.rows]
    assert [row.analysed for row in report.rows] == [i % 5 == 0 for i in range(12)]
    if policy != "uniform":
        assert {round(row.mean_qp, 2) for row in report.rows} != {32.0}  # offsets were applied
    else:
        assert all(row.mean_qp == 32.0 for row in report.rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]  # no temporary files left


def test_output_is_deterministic_and_map_interval_is_honoured(pets: Path, tmp_path: Path) -> None:
    one = encode_video(pets, tmp_path / "a.hevc", EncodeSettings(policy="uniform", max_frames=6, preset="ultrafast"))
    two = encode_video(pets, tmp_path / "b.hevc", EncodeSettings(policy="uniform", max_frames=6, preset="ultrafast"))
    assert (tmp_path / "a.hevc").read_bytes() == (tmp_path / "b.hevc").read_bytes()
    assert [r.recon_md5 for r in one.rows] == [r.recon_md5 for r in two.rows]


def by_frame_index(inputs: PolicyInput) -> np.ndarray:
    """Offset ``frame_index % 7`` on every CTU: a policy whose output shows which analysis is in use."""
    return np.full(inputs.ctu_shape, inputs.frame_index % 7, np.int32)


@pytest.mark.parametrize("interval", [3, 70])  # 70: more than the frames the encoder buffers
def test_analyses_run_every_interval_and_their_offsets_hold_until_the_next(
    pets: Path, tmp_path: Path, interval: int
) -> None:
    frames = 2 * interval + 2
    # all-intra: every CU is coded, so each frame's mean QP is exactly base + offset (a skipped CU
    # in a P frame inherits its predicted QP)
    settings = EncodeSettings(policy=f"{__name__}:by_frame_index", max_frames=frames, map_interval=interval,
                              preset="ultrafast", qp=30, gop="intra")  # fmt: skip
    report = encode_video(pets, tmp_path / "o.hevc", settings)
    assert [r.index for r in report.rows if r.analysed] == list(range(0, frames, interval))
    assert [r.mean_qp for r in report.rows] == [30.0 + (i // interval * interval) % 7 for i in range(frames)]


def left_coarse(inputs: PolicyInput) -> np.ndarray:
    """+6 on the left half of the CTU columns, 0 elsewhere; needs no task net."""
    out = np.zeros(inputs.ctu_shape, np.int32)
    out[:, : inputs.ctu_shape[1] // 2] = 6
    return out


left_coarse.needs_regions = False  # type: ignore[attr-defined]
softened_left = SoftenedPolicy(left_coarse, Prefilter(2.0))


def left_coarse_steep(inputs: PolicyInput) -> np.ndarray:
    """``left_coarse``, coded with quantisation matrices that quantise high frequencies coarser."""
    return left_coarse(inputs)


left_coarse_steep.needs_regions = False  # type: ignore[attr-defined]
left_coarse_steep.scaling_lists = ScalingLists(3.0)  # type: ignore[attr-defined]


def test_a_policys_scaling_lists_code_its_stream(pets: Path, tmp_path: Path) -> None:
    common = {"max_frames": 3, "preset": "ultrafast", "qp": 27, "gop": "intra", "audio": False}  # intra: CUs at its QP
    plain = encode_video(pets, tmp_path / "p.hevc", EncodeSettings(policy=f"{__name__}:left_coarse", **common))
    steep = encode_video(pets, tmp_path / "s.hevc", EncodeSettings(policy=f"{__name__}:left_coarse_steep", **common))
    assert [r.mean_qp for r in steep.rows] == [r.mean_qp for r in plain.rows]  # the same QPs...
    assert steep.bits < plain.bits  # ...with the fine texture quantised coarser
    assert _decoded_md5(tmp_path / "s.hevc", steep.width, steep.height) == [r.recon_md5 for r in steep.rows]


def test_a_softened_policy_codes_its_smoothed_frames_and_reports_psnr_against_the_originals(
    pets: Path, tmp_path: Path
) -> None:
    common = {"max_frames": 4, "preset": "ultrafast", "qp": 27, "gop": "intra"}  # intra: every CU at its QP
    plain = encode_video(pets, tmp_path / "p.hevc", EncodeSettings(policy=f"{__name__}:left_coarse", **common))
    soft = encode_video(pets, tmp_path / "s.hevc", EncodeSettings(policy=f"{__name__}:softened_left", **common))
    assert [r.mean_qp for r in soft.rows] == [r.mean_qp for r in plain.rows]  # the same QPs...
    assert soft.bits < plain.bits  # ...on smoother pictures
    assert soft.psnr_y < plain.psnr_y  # against the originals, not the smoothed frames x265 saw
    decoded = decode_ffmpeg(tmp_path / "s.hevc", soft.width, soft.height)
    assert [hashlib.md5(p.to_i420()).hexdigest() for p in decoded] == [r.recon_md5 for r in soft.rows]
    # The luma PSNR of a frame is recomputed against the original: check the first one by hand.
    with open_source(pets) as source:
        original = next(iter(source)).y
    sse = float(((original.astype(np.int64) - decoded[0].y.astype(np.int64)) ** 2).sum())
    assert soft.rows[0].psnr_y == pytest.approx(10 * np.log10(255.0**2 * original.size / sse))


class BrightnessClock:
    """A frame-level policy that reads luma only: offset 1 on frames brighter than the first, and logs its inputs."""

    frame_level = True
    needs_rgb = False
    needs_regions = False

    def __init__(self) -> None:
        self.seen: list[tuple[int, tuple[int, ...], float]] = []
        self.gops: set[GopLayout] = set()
        self.pictures: list[Yuv420 | None] = []
        self.threads: set[str] = set()

    def __call__(self, inputs: PolicyInput) -> np.ndarray:
        assert inputs.luma is not None
        self.threads.add(threading.current_thread().name)
        self.seen.append((inputs.frame_index, inputs.frame.shape, float(inputs.luma.mean())))
        self.pictures.append(inputs.picture)
        self.gops.add(inputs.gop)
        return np.full(inputs.ctu_shape, int(inputs.luma.mean() > self.seen[0][2]), np.int32)


frame_clock = BrightnessClock()


def test_a_frame_level_policy_decides_every_frame_from_the_coded_pictures_luma(pets: Path, tmp_path: Path) -> None:
    frame_clock.seen.clear()
    frame_clock.pictures.clear()
    frame_clock.threads.clear()
    settings = EncodeSettings(policy=f"{__name__}:frame_clock", max_frames=7, map_interval=3, preset="ultrafast",
                              gop="intra")  # fmt: skip
    encode_video(pets, tmp_path / "o.hevc", settings)
    assert [i for i, _, _ in frame_clock.seen] == list(range(7))
    # one thread of its own decides, in order, beside the thread that calls x265
    assert len(frame_clock.threads) == 1 and threading.current_thread().name not in frame_clock.threads
    assert frame_clock.pictures == list(open_source(pets, max_frames=7))  # the pictures x265 is given
    # no RGB conversion for it: a frame of the right size with no channels
    assert {shape for _, shape, _ in frame_clock.seen} == {(360, 480, 0)}
    expected = [float(picture.luma().mean()) for picture in open_source(pets, max_frames=7)]
    np.testing.assert_allclose([m for _, _, m in frame_clock.seen], expected, rtol=1e-5)
    assert frame_clock.gops == {GopLayout(keyint=1)}
    # Under random access it is told x265's B-frame layout (ultrafast: 3 B-frames, a referenced middle one).
    frame_clock.gops.clear()
    settings = replace(settings, gop="ra", keyint=5)
    encode_video(pets, tmp_path / "ra.hevc", settings)
    assert frame_clock.gops == {GopLayout(keyint=5, bframes=3, pyramid=True)}


def test_report_json_and_csv(pets: Path, tmp_path: Path) -> None:
    report = encode_video(pets, tmp_path / "o.hevc", EncodeSettings(policy="uniform", max_frames=3, preset="ultrafast"))
    report.write(tmp_path / "report.json")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["frames"] == 3 and len(data["rows"]) == 3 and set(data["stage_s"]) >= {"decode", "encode"}
    assert (tmp_path / "report.csv").read_text().splitlines()[0].startswith("index,poc,slice_type,bits")


def test_a_report_that_could_not_be_written_is_refused_before_the_encode(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["encode", str(pets), "--frames", "2", "-o", str(tmp_path / "o.mp4"), "--policy", "uniform"]
    assert main([*command, "--report", str(tmp_path / "missing" / "r.json")]) == 1
    assert f"--report folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    assert main([*command, "--report", str(tmp_path)]) == 1
    assert "is a folder; name a file" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_a_folder_where_no_file_can_be_made_is_refused_before_the_encode(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Permission bits let root write anywhere; a folder of /proc or a read-only mount still refuses.
    import tempfile

    made = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs["dir"]) == tmp_path / "closed":
            raise PermissionError(13, "Permission denied")
        return made(*args, **kwargs)

    (tmp_path / "closed").mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    command = ["encode", str(pets), "--frames", "2", "--policy", "uniform", "-o"]
    assert main([*command, str(tmp_path / "o.mp4"), "--report", str(tmp_path / "closed" / "r.json")]) == 1
    assert f"--report folder {tmp_path / 'closed'} is not writable (Permission denied)" in capsys.readouterr().err
    assert main([*command, str(tmp_path / "closed" / "o.mp4")]) == 1
    assert f"output folder {tmp_path / 'closed'} is not writable" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists() and not list((tmp_path / "closed").iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the probe leaves nothing behind


def test_bad_inputs_give_clear_errors_and_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(InputNotFoundError, match="input not found"):
        encode_video(tmp_path / "missing.mp4", out, EncodeSettings(policy="uniform"))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InvalidInputError, match="not a video or image"):
        encode_video(text, out, EncodeSettings(policy="uniform"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="holds no images"):
        encode_video(empty, out, EncodeSettings(policy="uniform"))
    import cv2

    odd = tmp_path / "odd.png"
    cv2.imwrite(str(odd), np.zeros((33, 32, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="32x33: HEVC 4:2:0 needs an even"):
        encode_video(odd, out, EncodeSettings(policy="uniform"))
    with pytest.raises(InvalidInputError, match="does not exist"):
        encode_video(odd, tmp_path / "no" / "out.mp4", EncodeSettings(policy="uniform"))
    with pytest.raises(InvalidInputError, match="must end in"):
        encode_video(odd, tmp_path / "out.avi", EncodeSettings(policy="uniform"))
    with pytest.raises(InvalidInputError, match="unknown task"):
        EncodeSettings(task="tracking")
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((48, 96, 3), np.uint8))
    with pytest.raises(InvalidInputError, match=r"96x48 are smaller than x265's 64x64 coding tree unit"):
        encode_video(small, out, EncodeSettings(policy="uniform"))
    for fps in (Fraction(0), Fraction(-5)):
        with pytest.raises(InvalidInputError, match="--fps must be above 0"):
            EncodeSettings(fps=fps)
    with pytest.raises(InvalidInputError, match="--map-size must be a multiple of 32"):
        EncodeSettings(map_size=0)
    for kwargs, message in (({"threads": 0}, "--threads must be at least 1, got 0"),
                            ({"keyint": 0}, "--keyint must be at least 1, got 0"),
                            ({"roi_delta": -2}, "--roi-delta must be at least 0, got -2"),
                            ({"roi_delta": 60}, "--roi-delta must be at most 51, got 60")):  # fmt: skip
        with pytest.raises(InvalidInputError, match=f"^{message}$"):
            EncodeSettings(**kwargs)
    assert not out.exists()


def test_crop_even_codes_odd_images_folders_and_videos_without_their_last_row_or_column(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (131, 97, 3), np.uint8)
    odd = tmp_path / "odd.png"
    cv2.imwrite(str(odd), image)
    with pytest.raises(InvalidInputError, match=r"97x131: .*\(semrl encode --crop-even\)"):
        encode_video(odd, tmp_path / "refused.mp4", EncodeSettings(policy="uniform"))
    report = encode_video(odd, tmp_path / "odd.mp4", EncodeSettings(policy="uniform", crop_even=True))
    assert (report.width, report.height) == (96, 130)
    assert probe(tmp_path / "odd.mp4")["width"] == 96
    with open_source(odd, crop_even=True) as source:
        (picture,) = list(source)
    expected = Yuv420.from_rgb(np.ascontiguousarray(image[:130, :96, ::-1]))
    assert np.array_equal(picture.y, expected.y)

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.roll(image, i, axis=1))
    assert main(["encode", str(folder), "-o", str(tmp_path / "folder.mp4"), "--policy", "uniform", "--crop-even",
                 "--no-progress"]) == 0  # fmt: skip
    assert "2 frames 96x130" in capsys.readouterr().out

    with open_source(pets, max_frames=3) as source:
        raw = b"".join(np.ascontiguousarray(f.to_rgb()[:-1, :-1]).tobytes() for f in source)
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "479x359",
                    "-i", "-", "-c:v", "ffv1", str(tmp_path / "odd.mkv")], input=raw, check=True)  # fmt: skip
    video = EncodeSettings(policy="uniform", crop_even=True)
    report = encode_video(tmp_path / "odd.mkv", tmp_path / "odd-video.mp4", video)
    assert (report.frames, report.width, report.height) == (3, 478, 358)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_a_video_turned_by_its_display_matrix_is_coded_upright(pets: Path, tmp_path: Path, rotate: int) -> None:
    turned = tmp_path / "phone.mp4"  # how a phone stores a clip filmed upright: the stream as sensed, and a turn
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-i", str(pets), "-frames:v", "3", "-c", "copy",
                    "-metadata:s:v:0", f"rotate={rotate}", str(turned)], check=True)  # fmt: skip
    size = (360, 480) if rotate % 180 else (480, 360)
    report = encode_video(turned, tmp_path / "out.mp4", EncodeSettings(policy="uniform", qp=12))
    assert (report.frames, report.width, report.height) == (3, *size)
    shown = decode_ffmpeg(turned, *size)[0]  # FFmpeg turns the frames upright when it decodes
    coded = decode_ffmpeg(tmp_path / "out.mp4", *size)[0]
    assert np.abs(coded.y.astype(int) - shown.y).mean() < 3


def test_the_stream_describes_the_source_as_it_is_shown(pets: Path, tmp_path: Path) -> None:
    hlg = tmp_path / "hlg.mkv"  # pixels 4:3 wide, as some cameras store them, and a phone's HDR colours
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-i", str(pets), "-frames:v", "2", "-vf", "setsar=4/3",
                    "-c:v", "ffv1", "-pix_fmt", "yuv420p", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
                    "-colorspace", "bt2020nc", str(hlg)], check=True)  # fmt: skip
    for name in ("out.mp4", "out.hevc"):
        encode_video(hlg, tmp_path / name, EncodeSettings(policy="uniform"))
        stream = probe(tmp_path / name)
        assert stream["sample_aspect_ratio"] == "4:3"
        assert (stream["color_primaries"], stream["color_transfer"], stream["color_space"]) == (
            "bt2020", "arib-std-b67", "bt2020nc"
        )  # fmt: skip
    encode_video(pets, tmp_path / "pets.mp4", EncodeSettings(policy="uniform", max_frames=2))
    stream = probe(tmp_path / "pets.mp4")  # square pixels, BT.709 as the clip says
    assert stream.get("sample_aspect_ratio", "1:1") in ("1:1", "N/A") and stream["color_space"] == "bt709"
    rgb = tmp_path / "rgb.mkv"  # RGB frames reach x265 through BT.601's matrix
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-i", str(pets), "-frames:v", "1", "-c:v", "ffv1",
                    "-pix_fmt", "bgr0", str(rgb)], check=True)  # fmt: skip
    assert video_info(rgb).colour == Colour(matrix="smpte170m")
    assert stream_description(replace(video_info(rgb), colour=Colour("jedec-p22", "gamma22", None))) == (
        ("transfer", "bt470m"),
    )  # a name x265 lacks is left out, FFmpeg's other names translated


def test_a_reader_that_stops_reading_ends_semrl_as_sigpipe_would_without_a_word(pets: Path, tmp_path: Path) -> None:
    import sys

    command = [sys.executable, "-m", "semrl", "encode", str(pets), "--frames", "2", "-o", str(tmp_path / "out.mp4"),
               "--policy", "uniform", "--no-progress"]  # fmt: skip
    read, write = os.pipe()
    os.close(read)  # as `semrl encode ... | true`
    try:
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (128 + signal.SIGPIPE, "")
    assert (tmp_path / "out.mp4").stat().st_size > 0  # the encode was done when its summary could not be printed


def test_x265_takes_every_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert EncodeSettings().x265_threads == 6 and EncodeSettings(threads=2).x265_threads == 2


def test_zero_frame_video_is_an_error(tmp_path: Path, pets: Path) -> None:
    empty = tmp_path / "empty.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=size=64x64:rate=10", "-frames:v", "0", "-c:v", "mpeg4",
         str(empty)],
        check=True,
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"no frames|no video stream"):
        encode_video(empty, tmp_path / "out.hevc", EncodeSettings(policy="uniform"))
    assert not (tmp_path / "out.hevc").exists()


class _InterruptingPolicy:
    task = "detection"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, inputs: object) -> np.ndarray:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return np.zeros((6, 8), np.int32)


INTERRUPTING = _InterruptingPolicy()


def test_interrupt_leaves_no_partial_output(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        settings = EncodeSettings(policy=f"{__name__}:INTERRUPTING", max_frames=8, map_interval=2)
        encode_video(pets, out, settings)
    assert list(tmp_path.iterdir()) == []


def test_a_policy_for_another_task_is_refused(pets: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="serves detection, not segmentation"):
        encode_video(pets, tmp_path / "o.hevc", EncodeSettings(policy=f"{__name__}:INTERRUPTING", task="segmentation"))


def test_cli_reports_errors_as_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4"), "--policy", "roi"]) == 1
    assert "input not found" in capsys.readouterr().err


@pytest.mark.weights
def test_a_shipped_policy_for_another_task_is_refused(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["encode", str(pets), "-o", str(tmp_path / "o.mp4"), "--policy", "segmentation", "--task", "detection"]
    assert main(args) == 1
    assert "is a segmentation policy, not a detection policy" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.weights
@pytest.mark.slow
def test_cli_without_input_encodes_the_builtin_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["encode", "--frames", "4", "--preset", "ultrafast", "--report", "r.json"]) == 0
    assert "policy video-reference (detection)" in capsys.readouterr().out  # a clip: the video coding by default
    assert probe(tmp_path / "semrl-sample.mp4")["profile"] == "Main"
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == 4


@pytest.mark.weights
@pytest.mark.slow
def test_ctrl_c_exits_130_and_keeps_no_partial_file(pets: Path, tmp_path: Path) -> None:
    import sys
    import time

    output = tmp_path / "out.mp4"
    # As from a terminal: a shell without job control starts background commands with SIGINT
    # ignored, and a CI run launched so would pass that on to semrl, which would rightly ignore it.
    as_from_a_terminal = "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    as_from_a_terminal += "runpy.run_module('semrl', run_name='__main__', alter_sys=True)"
    command = [sys.executable, "-c", as_from_a_terminal, "encode", str(pets), "-o", str(output), "--no-progress"]
    # a terminal's Ctrl-C reaches the whole process group, FFmpeg included
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    # Interrupt once the encode writes its temporary output: by then the handler above is in place
    # (a fixed sleep lost that race on a loaded machine, and the ignored SIGINT let the encode finish).
    deadline = time.monotonic() + 120
    while not any(tmp_path.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the encode finished before it could be interrupted"
    assert any(tmp_path.iterdir()), "the encode wrote nothing within 120 s"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted; no partial output was kept" in err
    assert list(tmp_path.iterdir()) == []


class _SignalledError(Exception):
    pass


def test_a_decode_stopped_by_the_groups_ctrl_c_is_an_interrupt_not_damage() -> None:
    """FFmpeg stopped by a signal exits 255 and says nothing; semrl's own handler must win over 'damaged input'."""
    import contextlib
    import threading
    import time

    from semrl.media import SourceInfo, _video_frames

    def handler(*_: object) -> None:
        raise _SignalledError

    process = subprocess.Popen(["sh", "-c", "exit 255"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info = SourceInfo(None, "video", 16, 16, Fraction(25), None)
    timer = threading.Timer(0.1, signal.raise_signal, (signal.SIGINT,))  # semrl's SIGINT arrives after FFmpeg's
    previous = signal.signal(signal.SIGINT, handler)
    try:
        timer.start()
        try:
            list(_video_frames(process, info, None))
            outcome: BaseException | None = None
        except BaseException as error:  # which one is the point
            outcome = error
        with contextlib.suppress(_SignalledError):
            time.sleep(0.5)  # a signal that came after a wrong answer lands here, not in pytest
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert isinstance(outcome, _SignalledError), outcome
    # FFmpeg alone stopped (semrl ignoring SIGINT, as a background job does): said as such.
    process = subprocess.Popen(["sh", "-c", "exit 255"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with pytest.raises(InvalidInputError, match=r"FFmpeg was stopped by a signal while decoding .* after 0 frames"):
        list(_video_frames(process, info, None))


@pytest.mark.parametrize("gop", ["ra", "ldp"])
def test_mp4_of_every_gop_decodes_to_every_frame(pets: Path, tmp_path: Path, gop: str) -> None:
    # FFmpeg's raw-HEVC reader gives B-frames presentation times equal to their decode times; an
    # MP4 muxed that way decoded to 8 of 10 random-access frames.
    settings = EncodeSettings(policy="uniform", max_frames=10, preset="ultrafast", gop=gop)
    mp4 = encode_video(pets, tmp_path / "out.mp4", settings)
    hevc = encode_video(pets, tmp_path / "out.hevc", settings)
    by_display = [row.recon_md5 for row in sorted(mp4.rows, key=lambda row: row.index)]
    assert _decoded_md5(tmp_path / "out.mp4", 480, 360) == by_display
    assert (
        _decoded_md5(tmp_path / "out.hevc", 480, 360)
        == by_display
        == [row.recon_md5 for row in sorted(hevc.rows, key=lambda row: row.index)]
    )
    assert int(str(probe(tmp_path / "out.mp4", count_frames=True)["nb_read_frames"])) == 10


def test_output_naming_the_input_is_refused_and_the_source_kept(pets: Path, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(pets.read_bytes())
    link = tmp_path / "link.mp4"
    link.symlink_to(source)
    before = source.read_bytes()
    for output in (source, link, tmp_path / "." / "clip.mp4"):
        with pytest.raises(InvalidInputError, match="would overwrite its source"):
            encode_video(source, output, EncodeSettings(policy="uniform", max_frames=2, preset="ultrafast"))
    with pytest.raises(InvalidInputError, match="would overwrite its source"):
        encode_video(link, source, EncodeSettings(policy="uniform", max_frames=2, preset="ultrafast"))
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "link.mp4"]


def test_sigterm_exits_143_and_keeps_no_partial_file(pets: Path, tmp_path: Path) -> None:
    import sys
    import time

    output = tmp_path / "out.hevc"
    command = [sys.executable, "-m", "semrl", "encode", str(pets), "-o", str(output), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    assert process.poll() is None, "the encode finished before it could be terminated"
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "terminated; no partial output was kept" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.weights
def test_bad_devices_policies_and_checkpoints_are_messages(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from semrl.agent.shipped import shipped_policy

    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(shipped_policy("detection").read_bytes()[:3000])
    shutil.copyfile(shipped_policy("detection").with_suffix(".json"), tmp_path / "cut.json")
    out = tmp_path / "out.mp4"
    cases = {
        ("--device", "bogus"): "unknown device 'bogus'",
        ("--policy", "os:getcwd"): "policy posix:getcwd failed: TypeError",
        ("--policy", "builtins:repr"): "returned str, not an array of QP offsets",
        ("--policy", str(truncated)): "not a readable dqn checkpoint (truncated or damaged?)",
    }
    import torch

    if not torch.cuda.is_available():
        cases["--device", "cuda"] = "no CUDA GPU is usable on this machine"
    for args, message in cases.items():
        assert main(["encode", str(pets), "-o", str(out), "--frames", "2", "--no-progress", *args]) == 1, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.json", "cut.zip"]


def test_a_truncated_video_warns_with_the_frames_lost(pets: Path, tmp_path: Path) -> None:
    from semrl.errors import InputWarning

    damaged = tmp_path / "cut.mp4"
    damaged.write_bytes(pets.read_bytes()[:1_000_000])  # the index survives, most frame data does not
    with pytest.warns(InputWarning, match=r"cut.mp4: damaged or truncated input: decoded (\d+) of the 795 frames"):
        report = encode_video(damaged, tmp_path / "out.hevc", EncodeSettings(policy="uniform", preset="ultrafast"))
    assert 0 < report.frames < 795
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # an intact file: no warning (nor of its audio, not asked for)
        settings = EncodeSettings(policy="uniform", preset="ultrafast", max_frames=3, audio=False)
        encode_video(pets, tmp_path / "ok.hevc", settings)


def test_a_full_disk_is_a_message_and_leaves_nothing(
    pets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    from semrl.codec import AnnexBWriter

    def full(self: object, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AnnexBWriter, "write", full)
    for name in ("out.hevc", "out.mp4"):
        code = main(["encode", str(pets), "-o", str(tmp_path / name), "--policy", "uniform", "--frames", "2",
                     "--preset", "ultrafast", "--no-progress"])  # fmt: skip
        assert code == 1
        assert "No space left on device; no partial output was kept" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_several_inputs_into_a_folder_one_line_each_and_failures_counted(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    out = tmp_path / "out"
    common = ["--policy", "uniform", "--frames", "2", "--preset", "ultrafast", "--no-progress"]
    assert main(["encode", str(pets), str(broken), "-o", str(out), *common]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "pets2009_s2l1_480x360.semrl" not in captured.out
    assert f"-> {out / 'pets2009_s2l1_480x360.mp4'}: 2 frames" in captured.out
    assert "broken.mp4: failed: " in captured.err and "1 of 2 inputs failed" in captured.err
    assert [p.name for p in out.iterdir()] == ["pets2009_s2l1_480x360.mp4"]
    assert main(["encode", str(pets), str(pets), "-o", str(out), *common]) == 1
    assert "share a name" in capsys.readouterr().err
    for one in ("one.mp4", "one.h265"):  # a stream's name, not a folder's: nothing is made
        assert main(["encode", str(pets), str(broken), "-o", str(tmp_path / one), *common]) == 1
        assert "need -o OUTDIR/" in capsys.readouterr().err and not (tmp_path / one).exists()
    (out / "pets2009_s2l1_480x360.mp4").unlink()
    assert main(["encode", str(pets), "-o", str(out), *common]) == 0  # one input into a folder
    assert f"wrote {out / 'pets2009_s2l1_480x360.mp4'}: 2 frames" in capsys.readouterr().out


def test_qp_maps_are_drawn_every_n_frames(pets: Path, tmp_path: Path) -> None:
    import cv2

    maps = tmp_path / "maps"
    settings = EncodeSettings(policy="roi", max_frames=7, preset="ultrafast", qp_maps=maps, qp_map_every=5)
    report = encode_video(pets, tmp_path / "out.hevc", settings)
    report.write(tmp_path / "report.json")  # the folder is in the report's settings, as text
    written = json.loads((tmp_path / "report.json").read_text())["settings"]
    assert written["qp_maps"] == str(maps) and written["gop"] == "ldp"
    names = sorted(p.name for p in maps.iterdir())
    assert names == ["pets2009_s2l1_480x360_qp_000000.png", "pets2009_s2l1_480x360_qp_000005.png"]
    picture = cv2.imread(str(maps / names[0]))
    assert picture.shape == (360, 480, 3)
    # ROI codes objects finer: the tint differs between CTUs.
    assert len({tuple(picture[y, x]) for y in range(40, 360, 64) for x in range(40, 480, 64)}) > 1
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        encode_video(pets, tmp_path / "o2.hevc", EncodeSettings(policy="uniform", qp_maps=tmp_path / "file"))
    with pytest.raises(InvalidInputError, match="--qp-map-every must be at least 1"):
        EncodeSettings(qp_map_every=0)


@pytest.mark.weights
def test_own_weights_and_classes(pets: Path, tmp_path: Path) -> None:
    """A user's own checkpoint (made here from the shipped weights, with a renamed class) drives roi."""
    import torch

    from semrl.assets import resolve_weights
    from semrl.errors import PolicyMismatchError

    checkpoint = torch.load(resolve_weights("yolov8n.pt"), map_location="cpu", weights_only=False)
    names = dict(checkpoint["model"].names)
    names[0] = "walker"
    checkpoint["model"].names = names
    mine = tmp_path / "mine.pt"
    torch.save(checkpoint, mine)
    common = {"max_frames": 3, "preset": "ultrafast", "map_interval": 1}
    walkers = encode_video(pets, tmp_path / "a.hevc", EncodeSettings(policy="roi", weights=str(mine),
                                                                     classes=("walker",), **common))  # fmt: skip
    cars = encode_video(pets, tmp_path / "b.hevc", EncodeSettings(policy="roi", weights=str(mine),
                                                                  classes=("car",), **common))  # fmt: skip
    # PETS is mostly people: caring about them makes many more CTUs fine than caring about cars.
    assert walkers.mean_qp < cars.mean_qp - 2
    with pytest.raises(InvalidInputError, match="person: not classes of this net"):
        encode_video(pets, tmp_path / "c.hevc", EncodeSettings(policy="roi", weights=str(mine),
                                                               classes=("person",), **common))  # fmt: skip
    with pytest.raises(PolicyMismatchError, match="trained with other weights"):
        encode_video(pets, tmp_path / "d.hevc", EncodeSettings(policy="detection", weights=str(mine), **common))
    with pytest.raises(PolicyMismatchError, match="--classes works with roi"):
        encode_video(pets, tmp_path / "e.hevc", EncodeSettings(policy="detection", classes=("person",), **common))
    # the learned video policy reads the objects of semrl encode's own net, and learned them of yolov8n.pt's classes
    with pytest.raises(PolicyMismatchError, match="policy video was trained with other weights"):
        encode_video(pets, tmp_path / "g.hevc", EncodeSettings(policy="video", weights=str(mine), **common))
    with pytest.raises(PolicyMismatchError, match="policy video reads the classes it was trained with"):
        encode_video(pets, tmp_path / "h.hevc", EncodeSettings(policy="video", classes=("person",), **common))
    reference = EncodeSettings(policy="video-reference", weights=str(mine), classes=("walker",), **common)
    assert encode_video(pets, tmp_path / "i.hevc", reference).frames == 3
    with pytest.raises(InvalidInputError, match="is a segmentation net; this encode needs a detection net"):
        encode_video(pets, tmp_path / "f.hevc", EncodeSettings(policy="roi", weights="yolo11n-seg.pt", **common))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hevc", "b.hevc", "i.hevc", "mine.pt"]


def test_a_mid_stream_size_change_is_said(tmp_path: Path) -> None:

    from semrl.errors import InputWarning
    from semrl.media import ffmpeg_tool

    parts = []
    for size in ("128x96", "160x96"):  # MPEG-TS carries each part's sequence header in-band
        part = tmp_path / f"{size}.ts"
        subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10",
                        "-frames:v", "10", "-c:v", "mpeg2video", "-g", "5", str(part)], check=True)  # fmt: skip
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    with pytest.warns(InputWarning, match=r"changes its picture size mid-stream \(128x96, 160x96\)"):
        report = encode_video(joined, tmp_path / "out.hevc", EncodeSettings(policy="uniform", preset="ultrafast"))
    assert report.frames >= 19 and (report.width, report.height) == (128, 96)  # a frame may go at the splice


def test_a_real_full_disk_during_the_mp4_mux_leaves_nothing(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    small = tmp_path / "small"
    small.mkdir()
    # 64 KiB: the 30-frame stream (about 47 KB) fits, the MP4 beside it does not.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill the disk: {mounted.stderr.decode().strip()}")
    try:
        code = main(["encode", str(pets), "-o", str(small / "o.mp4"), "--frames", "30", "--policy", "uniform",
                     "--preset", "ultrafast", "--no-progress"])  # fmt: skip
        assert code == 1
        assert "No space left on device" in capsys.readouterr().err
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_qp_outside_the_learned_policys_training_range_is_warned_about() -> None:
    from semrl.agent.resolve import resolve_policy
    from semrl.errors import InputWarning
    from semrl.pipeline import warn_outside_training

    require_assets("models")
    video, detection = resolve_policy("video"), resolve_policy("detection")
    assert video.trained_base_qps == (22, 51) and detection.trained_base_qps == (22, 51)  # type: ignore[attr-defined]
    for _ in range(2):  # every encode is told, not only the first
        with pytest.warns(InputWarning, match="trained at base QPs 22-51; at --qp 12 it codes with its reference"):
            warn_outside_training(video, EncodeSettings(qp=12))
    with pytest.warns(
        InputWarning, match="trained at base QPs 22-51; at --qp 17 it still decides, though it never trained there"
    ):
        warn_outside_training(detection, EncodeSettings(qp=17))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_outside_training(video, EncodeSettings(qp=22))  # inside
        warn_outside_training(video, EncodeSettings(qp=12, bitrate=500.0))  # the base QP moves per frame
        warn_outside_training(resolve_policy("video-reference"), EncodeSettings(qp=12))  # nothing learned


def test_a_ray_task_gives_x265_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch, pets: Path) -> None:
    import semrl.pipeline as pipeline

    seen: list[int | None] = []

    def fake_encode(path: Path, output: Path, settings: EncodeSettings) -> None:
        seen.append(settings.threads)
        output.write_bytes(b"")

    monkeypatch.setattr(pipeline, "encode_video", fake_encode)
    monkeypatch.setattr(pipeline, "encode_identity", lambda settings: {})
    for threads in (None, 3):
        pipeline.encode_task((str(pets), "o.mp4", EncodeSettings(policy="uniform", threads=threads)))
    assert seen == [1, 3]  # a task holds one CPU of the cluster


def test_the_task_net_runs_in_fp32_unless_told_and_bf16_warns_on_a_cpu_without_it(
    monkeypatch: pytest.MonkeyPatch, pets: Path, tmp_path: Path
) -> None:
    from semrl import pipeline
    from semrl.errors import InputWarning
    from semrl.semantics import yolo

    assert EncodeSettings().net_precision == "fp32"
    with pytest.raises(InvalidInputError, match="--net-precision 'half'; choose one of fp32, bf16"):
        EncodeSettings(net_precision="half")
    monkeypatch.setattr(yolo, "native_bf16", lambda device: False)
    pipeline._load_net.cache_clear()
    settings = EncodeSettings(policy="roi", max_frames=1, preset="ultrafast", device="cpu", net_precision="bf16")
    with pytest.warns(InputWarning, match="bf16: this CPU lacks AVX512-BF16 and AMX, so the task net computes"):
        report = encode_video(pets, tmp_path / "o.hevc", settings)
    pipeline._load_net.cache_clear()
    assert report.settings["net_precision"] == "bf16"
    assert pipeline.encode_identity(settings)["net precision"] == "bf16"


def test_encode_speed_times_the_cli_with_semrls_threads_and_with_its_own(pets: Path, tmp_path: Path) -> None:
    from benchmark_scripts import load_benchmark

    speed = load_benchmark("encode_speed")
    out = tmp_path / "speed.json"
    args = ["--video", str(pets), "--runs", "1", "--policies", "uniform", "--frames", "4", "--threads", "1"]
    assert speed.main([*args, "--map-interval", "2", "--net-precisions", "fp32,bf16", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["net_precision"] for row in result["results"]["rows"]] == ["fp32", "bf16"]
    row = result["results"]["rows"][0]
    assert row["frames"] == 4 and row["ratio"] == row["semrl_s"] / row["cli_s"]
    assert row["ratio_own_threads"] == row["semrl_s"] / row["cli_own_threads_s"]
    assert row["paired_ratio"] == row["ratio"] and row["paired_ratio_interval"] is None  # one run: no interval
    assert row["cpu_s"]["semrl"] > 0 and row["cpu_s"]["cli"] > 0
    assert row["cpu_ratio"] == row["cpu_s"]["semrl"] / row["cpu_s"]["cli"]
    assert result["description"]["video"] == pets.name and result["description"]["x265_threads"] == 1
    assert result["description"]["map_interval"] == 2 and result["description"]["warmup"] == 1


def test_encode_speed_gives_the_cli_crf_where_semrl_codes_with_x265s_own_allocation(pets: Path) -> None:
    from benchmark_scripts import load_benchmark

    from semrl.pipeline import concrete_policy, resolve_policy

    speed = load_benchmark("encode_speed")

    def cli_crf(settings: EncodeSettings) -> float | None:
        policy, _ = resolve_policy(concrete_policy(settings, pets))
        return speed.cli_config(pets, settings, policy).crf  # type: ignore[no-any-return]

    assert cli_crf(EncodeSettings(gop="ra")) == 32.0  # auto under random access: x265
    assert cli_crf(EncodeSettings(gop="ra", policy="video-reference")) is None
    assert cli_crf(EncodeSettings()) is None  # low delay: constant QP


def test_encode_speed_times_the_semrl_encode_command_as_a_user_runs_it(
    monkeypatch: pytest.MonkeyPatch, pets: Path, tmp_path: Path
) -> None:
    from benchmark_scripts import load_benchmark

    speed = load_benchmark("encode_speed")

    def in_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("--as-command must run the command, not encode_video in this process")

    monkeypatch.setattr(speed, "encode_video", in_process)
    out = tmp_path / "speed.json"
    args = ["--video", str(pets), "--runs", "1", "--warmup", "0", "--policies", "roi", "--frames", "3"]
    assert speed.main([*args, "--threads", "1", "--as-command", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["results"]["rows"][0]
    assert result["description"]["as_command"] is True and row["frames"] == 3 and row["policy"] == "roi"
    assert set(row["stage_s"]) == set(STAGES) and row["cpu_s"]["semrl"] > 0  # from the command's report


@pytest.mark.parametrize("picture", [False, True], ids=["clip, video policy", "picture, detection policy"])
def test_semrl_encode_starts_without_torchvision_and_torch_dynamo(picture: bool, tmp_path: Path) -> None:
    # importing them took 1.3-1.6 s of the command's start-up (benchmarks/results/speed-paired)
    import sys

    import cv2

    from semrl.samples import sample_clip

    inputs = []
    if picture:
        cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(sample_clip(1)[0], cv2.COLOR_RGB2BGR))
        inputs = [str(tmp_path / "in.png")]
    code = (
        "import sys; from semrl.cli import main; rc = main(['encode', *sys.argv[2:], '-o', sys.argv[1], "
        "'--no-progress']); print(rc, 'torchvision' in sys.modules, 'torch._dynamo' in sys.modules)"
    )
    command = [sys.executable, "-c", code, str(tmp_path / "out.mp4"), *inputs]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "0 False False" and (tmp_path / "out.mp4").stat().st_size > 1000


def test_encode_speed_pairs_each_run_with_the_cli_run_after_it() -> None:
    from benchmark_scripts import load_benchmark

    speed = load_benchmark("encode_speed")
    # the machine slows down run by run; each run's ratio stays near 1.5, the ratio of medians would not
    ours = [3.0, 4.5, 6.3, 7.4, 9.0]
    theirs = [2.0, 3.0, 4.0, 5.0, 6.0]
    median, interval = speed.paired_ratio(ours, theirs)
    assert median == pytest.approx(1.5)
    assert interval is not None and interval[0] <= 1.48 and 1.5 <= interval[1] <= 1.575
    assert speed.paired_ratio(ours[:2], theirs[:2]) == (pytest.approx(1.5), None)


def test_the_task_net_runs_frozen_on_long_enough_clips_and_codes_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch, pets: Path, tmp_path: Path
) -> None:
    from semrl import pipeline
    from semrl.pipeline import FREEZE_MIN_ANALYSES
    from semrl.semantics.yolo import YoloNet

    frozen: list[tuple[tuple[int, int], int]] = []
    freeze = YoloNet.freeze

    def recorded(net: YoloNet, shape: tuple[int, int], imgsz: int) -> bool:
        frozen.append((shape, imgsz))
        return freeze(net, shape, imgsz)

    monkeypatch.setattr(YoloNet, "freeze", recorded)
    pipeline._load_net.cache_clear()  # a net of another test may hold a graph already
    settings = EncodeSettings(policy="roi", preset="ultrafast", device="cpu", map_interval=1)
    encode_video(pets, tmp_path / "short.hevc", replace(settings, max_frames=FREEZE_MIN_ANALYSES - 1))
    assert frozen == []  # tracing would cost more than it saves
    encode_video(pets, tmp_path / "frozen.hevc", replace(settings, max_frames=FREEZE_MIN_ANALYSES))
    assert frozen == [((360, 480), 480)]
    monkeypatch.setattr(YoloNet, "freeze", lambda net, shape, imgsz: False)
    pipeline._load_net.cache_clear()
    encode_video(pets, tmp_path / "eager.hevc", replace(settings, max_frames=FREEZE_MIN_ANALYSES))
    pipeline._load_net.cache_clear()
    assert (tmp_path / "frozen.hevc").read_bytes() == (tmp_path / "eager.hevc").read_bytes()


def _clicked(tmp_path: Path, codec: str, *, video_delay: float) -> Path:
    """4 s of video, its audio clicking at 0, 1, 2, ... s of its own clock, which starts ``video_delay`` earlier."""
    path = tmp_path / f"clicks-{codec}.mkv"
    clicks = "aevalsrc='if(lt(mod(t\\,1)\\,0.01)\\,0.8*sin(2*PI*1000*t)\\,0)':s=48000:d=5"
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-itsoffset", str(video_delay), "-f", "lavfi",
                    "-i", "testsrc=size=128x96:rate=25:duration=4", "-f", "lavfi", "-i", clicks,
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", codec, str(path)], check=True)  # fmt: skip
    return path


def _click_times(path: Path) -> list[float]:
    """When the clicks start, in seconds after the first video frame."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        first = float(video.start_time * video.time_base)
        times: list[float] = []
        for frame in container.decode(container.streams.audio[0]):
            assert len(frame.layout.channels) == 1
            samples = frame.to_ndarray().ravel()
            scale = np.iinfo(samples.dtype).max if samples.dtype.kind == "i" else 1
            loud = np.nonzero(np.abs(samples) > 0.3 * scale)[0]
            for i in loud:
                at = frame.time + i / frame.sample_rate - first
                if not times or at - times[-1] > 0.5:
                    times.append(at)
    return times


@pytest.mark.parametrize(("codec", "carried"), [("aac", "aac, copied"), ("pcm_s16le", "pcm_s16le, re-encoded to AAC")])
def test_the_audio_goes_in_step_with_the_pictures_and_ends_with_them(tmp_path: Path, codec: str, carried: str) -> None:
    source = _clicked(tmp_path, codec, video_delay=0.3)
    output = tmp_path / "out.mp4"
    report = encode_video(source, output, EncodeSettings(policy="uniform", preset="ultrafast", max_frames=60))
    assert report.audio is not None and report.audio.startswith(f"{carried}, ")
    assert f"beside it audio: {report.audio}" in report.summary()
    expected = [t for t in _click_times(source) if 0 <= t < 2.4]  # the clicks during the 60 frames coded
    assert len(expected) == 2
    assert _click_times(output) == pytest.approx(expected, abs=0.002)
    streams = {s["codec_type"]: s for s in json.loads(subprocess.run(
        [ffmpeg_tool("ffprobe"), "-v", "error", "-show_streams", "-of", "json", str(output)],
        capture_output=True, check=True).stdout)["streams"]}  # fmt: skip
    assert streams["audio"]["codec_name"] == "aac"
    assert 2.4 <= float(streams["audio"]["duration"]) <= 2.4 + 1024 / 48000 + 1e-3  # within one audio frame


def test_a_videos_own_audio_is_copied_packet_for_packet(pets: Path, tmp_path: Path) -> None:
    def packets(path: Path, count: int | None = None) -> list[str]:
        result = subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy",
                                 "-f", "framemd5", "-"], capture_output=True, text=True, check=True)  # fmt: skip
        return [line.rsplit(",", 1)[1].strip() for line in result.stdout.splitlines() if not line.startswith("#")]

    settings = EncodeSettings(policy="uniform", preset="ultrafast", max_frames=20)
    report = encode_video(pets, tmp_path / "out.mp4", settings)
    assert report.audio is not None and report.audio.startswith("aac, copied, ")
    written = packets(tmp_path / "out.mp4")
    assert len(written) == 87  # 2 s of 44.1 kHz AAC, 1024 samples a frame, the last one overlapping the end
    assert written == packets(pets)[: len(written)]


def test_no_audio_or_a_retimed_video_leaves_the_audio_out(pets: Path, tmp_path: Path) -> None:
    from semrl.errors import InputWarning

    settings = EncodeSettings(policy="uniform", preset="ultrafast", max_frames=5)
    assert encode_video(pets, tmp_path / "none.mp4", replace(settings, audio=False)).audio is None
    with pytest.warns(InputWarning, match="re-times .* its audio would drift"):
        assert encode_video(pets, tmp_path / "fast.mp4", replace(settings, fps=Fraction(25))).audio is None
    with pytest.warns(InputWarning, match="has audio, which a raw HEVC stream .* cannot hold: write an .mp4"):
        assert encode_video(pets, tmp_path / "raw.hevc", settings).audio is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_video(pets, tmp_path / "raw.hevc", replace(settings, audio=False))
    for name in ("none.mp4", "fast.mp4"):
        assert probe_audio(tmp_path / name) == []
    assert main(["encode", str(pets), "-o", str(tmp_path / "cli.mp4"), "--frames", "5", "--policy", "uniform",
                 "--no-audio", "--no-progress"]) == 0  # fmt: skip
    assert probe_audio(tmp_path / "cli.mp4") == []


def probe_audio(path: Path) -> list[str]:
    command = [ffmpeg_tool("ffprobe"), "-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name"]
    result = subprocess.run([*command, "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return result.stdout.split()


def _shown_at(path: Path) -> list[float]:
    """Each decoded frame's display time (s), as a player reads the file."""
    command = [ffmpeg_tool("ffprobe"), "-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time"]
    result = subprocess.run([*command, "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return [float(frame["pts_time"]) for frame in json.loads(result.stdout)["frames"]]


@pytest.fixture(scope="module")
def variable_rate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip shown at 25 fps for 1.6 s, then at about 10 fps, with clicks every second of its audio."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    clicks = "aevalsrc='if(lt(mod(t\\,1)\\,0.01)\\,0.8*sin(2*PI*1000*t)\\,0)':s=48000:d=5"
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x96:rate=25:duration=4",
                    "-f", "lavfi", "-i", clicks, "-vf", "setpts='if(lt(N,40),N/25,1.6+(N-40)/10)/TB'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(path)], check=True)  # fmt: skip
    return path


def test_frame_times_are_read_and_say_whether_they_are_steady(variable_rate: Path, pets: Path) -> None:
    from semrl.media import frame_times

    steady = frame_times(pets)
    assert steady is not None and len(steady.ticks) == 795 and steady.every(Fraction(10))
    assert not steady.every(Fraction(12))
    times = frame_times(variable_rate)
    assert times is not None and len(times.ticks) == 100 and not times.every(video_info(variable_rate).fps)
    assert frame_times(variable_rate, 40) == replace(times, ticks=times.ticks[:40])
    assert frame_times(variable_rate, 40).every(Fraction(25))  # type: ignore[union-attr]
    shown = [float(t * times.time_base) for t in times.ticks]
    assert shown[:3] == pytest.approx([0, 0.04, 0.08]) and shown[40] == pytest.approx(1.6)


@pytest.mark.parametrize("gop", ["ldp", "ra"])
def test_a_variable_rate_video_keeps_its_frame_times_and_its_audio_in_step(
    variable_rate: Path, tmp_path: Path, gop: str
) -> None:
    output = tmp_path / "out.mp4"
    report = encode_video(variable_rate, output, EncodeSettings(policy="uniform", preset="ultrafast", gop=gop))
    assert report.variable_rate and "at 13.51 fps on average (variable rate)" in report.summary()
    assert _shown_at(output) == pytest.approx(_shown_at(variable_rate), abs=1e-4)
    assert _click_times(output) == pytest.approx(_click_times(variable_rate), abs=0.002)  # the first click too


def test_frame_times_that_do_not_match_the_frames_are_said_and_the_average_rate_used(
    variable_rate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semrl import pipeline
    from semrl.errors import InputWarning
    from semrl.media import FrameTimes

    monkeypatch.setattr(
        pipeline, "frame_times", lambda path, frames: FrameTimes(Fraction(1, 100), tuple(range(0, 990, 10)))
    )
    with pytest.warns(InputWarning, match="its 99 timestamps do not match the 100 frames decoded"):
        report = encode_video(variable_rate, tmp_path / "out.mp4", EncodeSettings(policy="uniform", preset="ultrafast"))
    assert not report.variable_rate
    shown = _shown_at(tmp_path / "out.mp4")
    assert shown[1] == pytest.approx(1 / float(video_info(variable_rate).fps), abs=1e-3)


def test_coded_pictures_are_let_go_as_the_encode_goes_on(
    pets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import weakref

    from semrl.codec import Encoder

    made: list[weakref.ref[Yuv420]] = []
    alive_at_flush: list[int] = []
    encode, flush = Encoder.encode, Encoder.flush

    def watched(encoder: Encoder, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        frames = encode(encoder, *args, **kwargs)
        made.extend(weakref.ref(frame.recon) for frame in frames)
        return frames

    def counted(encoder: Encoder) -> list:  # type: ignore[type-arg]
        gc.collect()
        alive_at_flush.append(sum(ref() is not None for ref in made))
        return flush(encoder)

    monkeypatch.setattr(Encoder, "encode", watched)
    monkeypatch.setattr(Encoder, "flush", counted)
    report = encode_video(
        pets, tmp_path / "out.mp4", EncodeSettings(policy="uniform", preset="ultrafast", max_frames=40)
    )
    assert report.frames == 40 and len(made) > 30
    # the last one or two may wait for their MD5; a long clip held every decoded picture until its end
    assert len(alive_at_flush) == 1 and alive_at_flush[0] <= 2


def _combing(y: np.ndarray) -> float:
    """How much more neighbouring rows differ than rows two apart: about 0.5 for a picture, far above 1 for fields."""
    rows = y.astype(np.int32)
    return float(np.abs(rows[:-1] - rows[1:]).mean() / np.abs(rows[:-2] - rows[2:]).mean())


def test_an_interlaced_video_is_read_and_coded_deinterlaced(tmp_path: Path) -> None:
    source = tmp_path / "interlaced.mp4"  # bars moving sideways, two fields to a frame (top first)
    bars = "testsrc=size=320x240:rate=50:duration=1"
    subprocess.run([ffmpeg_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", bars,
                    "-vf", "scroll=horizontal=0.03,tinterlace=interleave_top,fieldorder=tff", "-c:v", "libx264",
                    "-flags", "+ildct+ilme", "-x264opts", "tff=1", "-qp", "10", "-pix_fmt", "yuv420p", str(source)],
                   check=True)  # fmt: skip
    assert min(_combing(f.y) for f in decode_ffmpeg(source, 320, 240)) > 5  # as fields, unread
    with open_source(source) as frames:
        assert frames.info.interlaced
        assert max(_combing(f.y) for f in frames) < 1
    output = tmp_path / "out.mp4"
    report = encode_video(source, output, EncodeSettings(policy="uniform", preset="ultrafast", qp=20))
    assert report.deinterlaced and report.frames == 25 and "(deinterlaced)" in report.summary()
    assert max(_combing(f.y) for f in decode_ffmpeg(output, 320, 240)) < 1


def test_the_first_frames_of_a_variable_rate_video_keep_their_own_rate(variable_rate: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"  # its first 30 frames come at 25 fps, the clip's average is 13.5
    encode_video(variable_rate, output, EncodeSettings(policy="uniform", preset="ultrafast", max_frames=30))
    assert _shown_at(output) == pytest.approx([i / 25 for i in range(30)], abs=1e-4)


def test_audio_or_frame_times_that_cannot_be_read_cost_the_pictures_nothing(
    pets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semrl import media, pipeline
    from semrl.errors import AudioError, InputWarning, MediaToolError

    def unreadable(*args: object) -> None:
        raise AudioError("cannot read the audio of pets: a damaged track")

    def no_times(*args: object) -> None:
        raise MediaToolError("cannot read the frame times of pets: a damaged index")

    monkeypatch.setattr(media, "_open_audio", unreadable)
    monkeypatch.setattr(pipeline, "frame_times", no_times)
    output = tmp_path / "out.mp4"
    with pytest.warns(InputWarning) as said:
        report = encode_video(pets, output, EncodeSettings(policy="uniform", preset="ultrafast", max_frames=10))
    messages = [str(w.message) for w in said]
    assert any("a damaged index: it is coded at its average rate" in m for m in messages)
    assert any("a damaged track; out.mp4 is written without audio (--no-audio" in m for m in messages)
    assert report.audio is None and report.frames == 10
    assert probe_audio(output) == [] and len(_shown_at(output)) == 10


@pytest.mark.parametrize(
    ("fps", "shown"), [(30000 / 1001, "29.97"), (24000 / 1001, "23.98"), (25.0, "25"), (10.0, "10")]
)
def test_the_summary_says_an_ntsc_rate_as_it_is(fps: float, shown: str) -> None:
    report = EncodeReport("in.mp4", "out.mp4", "uniform", None, 176, 144, fps, 120, 8000, 2.0, 32.0, 35.0, 1.0,
                          dict.fromkeys(STAGES, 0.0), {})  # fmt: skip
    assert f"120 frames 176x144 at {shown} fps, policy uniform" in report.summary()


@pytest.mark.parametrize("gop", ["ra", "ldp"])
def test_the_x265_policy_codes_as_x265_runs_its_crf_and_loads_no_net(
    pets: Path, tmp_path: Path, gop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semrl.pipeline as pipeline
    from semrl.codec import Encoder, EncoderConfig

    def no_net(*args: object, **kwargs: object) -> None:
        raise AssertionError("the x265 policy needs no task net")

    monkeypatch.setattr(pipeline, "task_net", no_net)
    settings = EncodeSettings(policy="x265", gop=gop, qp=30, max_frames=10, preset="ultrafast", audio=False)
    report = encode_video(pets, tmp_path / "out.hevc", settings)
    source = open_source(pets, max_frames=10)
    info = source.info
    fps = (info.fps.numerator, info.fps.denominator)
    config = EncoderConfig(
        info.width, info.height, crf=30.0, preset="ultrafast", gop=gop, fps=fps, options=stream_description(info)
    )
    with Encoder(config) as encoder:
        coded = [f for picture in source for f in encoder.encode(picture)] + encoder.flush()
    x265_bits = [f.bits for f in sorted(coded, key=lambda f: f.pts)]
    assert [row.bits for row in report.rows] == x265_bits
    assert len({round(row.mean_qp, 3) for row in report.rows}) > 1  # x265's AQ and rate control, not one QP
    assert _decoded_md5(tmp_path / "out.hevc", 480, 360) == [row.recon_md5 for row in report.rows]


def test_net_options_for_a_policy_without_a_net_are_warned_about(pets: Path, tmp_path: Path) -> None:
    for policy in ("x265", "uniform"):
        settings = EncodeSettings(policy=policy, classes=("person",), max_frames=2, preset="ultrafast", audio=False)
        with pytest.warns(InputWarning, match=f"--classes changes nothing: policy {policy} runs no task net"):
            encode_video(pets, tmp_path / f"{policy}.hevc", settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        encode_video(pets, tmp_path / "roi.hevc", EncodeSettings(policy="roi", classes=("person",), max_frames=2,
                                                                 preset="ultrafast", audio=False))  # fmt: skip


def test_the_x265_policy_under_a_target_rate_runs_x265s_own_average_bitrate(pets: Path, tmp_path: Path) -> None:
    settings = EncodeSettings(policy="x265", bitrate=120.0, max_frames=30, preset="ultrafast", audio=False)
    report = encode_video(pets, tmp_path / "out.hevc", settings)
    assert 60.0 < report.kbps < 240.0, report.kbps
    assert len({round(row.mean_qp, 3) for row in report.rows}) > 1

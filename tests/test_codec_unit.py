"""Codec-layer units that need no x265: pictures, configs, offsets validation helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrl.codec import EncoderConfig, Gop, GopLayout, Yuv420, ctu_grid, rgb_luma
from semrl.codec.bitstream import AnnexBWriter
from semrl.codec.scaling import MAX_SLOPE, ScalingLists
from semrl.errors import InvalidInputError, SemrlError


def test_rgb_round_trip_is_close(rng: np.random.Generator) -> None:
    smooth = np.kron(rng.integers(30, 220, (8, 10, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    picture = Yuv420.from_rgb(smooth)
    assert (picture.width, picture.height) == (40, 32)
    assert picture.u.shape == (16, 20)
    back = picture.to_rgb()
    assert np.abs(back.astype(int) - smooth.astype(int)).max() <= 3


def test_rgb_conversion_matches_bt601_limited_range() -> None:
    white = np.full((2, 2, 3), 255, np.uint8)
    black = np.zeros((2, 2, 3), np.uint8)
    assert Yuv420.from_rgb(white).y[0, 0] == 235 and Yuv420.from_rgb(white).u[0, 0] == 128
    assert Yuv420.from_rgb(black).y[0, 0] == 16 and Yuv420.from_rgb(black).v[0, 0] == 128


@pytest.mark.parametrize(("matrix", "kr", "kb"), [("bt601", 0.299, 0.114), ("bt709", 0.2126, 0.0722)])
def test_rgb_from_each_matrix_is_its_standards_within_rounding(
    rng: np.random.Generator, matrix: str, kr: float, kb: float
) -> None:
    y, u, v = (rng.integers(lo, hi, (4, 6)) for lo, hi in ((60, 200), (90, 166), (90, 166)))
    picture = Yuv420(y.astype(np.uint8), u[:2, :3].astype(np.uint8), v[:2, :3].astype(np.uint8))
    luma = (y - 16) * 255 / 219
    cb, cr = ((np.repeat(np.repeat(c[:2, :3], 2, 0), 2, 1) - 128) * 255 / 224 for c in (u, v))
    r, b = luma + 2 * (1 - kr) * cr, luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    expected = np.clip(np.stack([r, g, b], axis=-1), 0, 255)
    assert np.abs(picture.to_rgb(matrix).astype(float) - expected).max() <= 1.5
    with pytest.raises(InvalidInputError, match="unknown YUV matrix 'bt2020'"):
        picture.to_rgb("bt2020")


def test_luma_is_the_rgb_frames_luma_without_the_chroma(rng: np.random.Generator) -> None:
    # Mid-range colours (no RGB clipping): equal to within the rounding of to_rgb's integer maths.
    smooth = np.kron(rng.integers(60, 200, (8, 10, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    picture = Yuv420.from_rgb(smooth)
    expected = rgb_luma(picture.to_rgb())
    luma = picture.luma()
    assert luma.dtype == np.float32 and luma.shape == (32, 40)
    assert np.abs(luma - expected).max() < 1.0
    black, white = (Yuv420.from_rgb(np.full((2, 2, 3), v, np.uint8)).luma() for v in (0, 255))
    assert black.max() == 0.0 and white.min() == pytest.approx(255.0, abs=0.6)


def test_rgb_luma_weighs_bt601_and_passes_luma_through() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [100, 100, 100]]], np.uint8)
    luma = rgb_luma(rgb)
    assert luma.dtype == np.float32
    np.testing.assert_allclose(luma, [[76.245, 149.685], [29.07, 100.0]], atol=1e-3)
    assert rgb_luma(luma) is luma  # already luma: returned as it is
    with pytest.raises(InvalidInputError, match=r"\(H, W, 3\)"):
        rgb_luma(np.zeros((2, 2, 4), np.uint8))


def test_i420_split_and_join(rng: np.random.Generator) -> None:
    raw = rng.integers(0, 256, 6 * 4 * 3 // 2, dtype=np.uint8)
    picture = Yuv420.from_i420(raw, 6, 4)
    assert picture.to_i420() == raw.tobytes()
    with pytest.raises(InvalidInputError, match="I420 6x4 picture has 36 bytes"):
        Yuv420.from_i420(raw[:-1], 6, 4)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((31, 32, 3), np.uint8), "even size"),
        (np.zeros((32, 32, 3), np.float32), "uint8"),
        (np.zeros((32, 32), np.uint8), r"\(H, W, 3\)"),
    ],
)
def test_bad_rgb_frames_are_named(frame: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Yuv420.from_rgb(frame)


def test_bad_planes_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="chroma planes"):
        Yuv420(np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((1, 2), np.uint8))
    with pytest.raises(InvalidInputError, match="2-D uint8"):
        Yuv420(np.zeros((4, 4), np.int16), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))


def test_errors_are_both_semrl_and_builtin() -> None:
    with pytest.raises(ValueError):
        EncoderConfig(33, 32)
    with pytest.raises(SemrlError):
        EncoderConfig(32, 32, qp=52)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 33}, "even"),
        ({"qp": -1}, "base QP"),
        ({"preset": "turbo"}, "unknown x265 preset"),
        ({"qg_size": 8}, "qg_size"),
        ({"threads": 0}, "threads"),
        ({"gop": "ibbp"}, "ibbp"),
        ({"crf": 60.0}, "crf"),
    ],
)
def test_bad_configs_are_named(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"width": 64, "height": 64, **kwargs}
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**arguments)  # type: ignore[arg-type]


def test_gop_layout_places_anchors_and_b_layers() -> None:
    low_delay = GopLayout(keyint=6)
    assert [low_delay.layer(i) for i in range(8)] == [0] * 8
    assert [low_delay.position(i) for i in range(8)] == [0, 1, 2, 3, 4, 5, 0, 1]
    # x265's fixed GOP of 4 B-frames with a pyramid: P every 5th frame, the 3rd frame of the group referenced.
    ra = GopLayout(keyint=250, bframes=4, pyramid=True)
    assert [ra.layer(i) for i in range(11)] == [0, 2, 2, 1, 2, 0, 2, 2, 1, 2, 0]
    assert [GopLayout(bframes=3, pyramid=False).layer(i) for i in range(5)] == [0, 2, 2, 2, 0]
    assert [GopLayout(keyint=7, bframes=3, pyramid=True).layer(i) for i in range(9)] == [0, 2, 1, 2, 0, 2, 1, 0, 2]
    with pytest.raises(InvalidInputError, match="keyint"):
        GopLayout(keyint=0)


def test_config_options_follow_the_gop() -> None:
    intra = dict(EncoderConfig(64, 64, gop=Gop.INTRA).x265_options())
    assert intra["keyint"] == "1" and intra["cqp-offsets"] == "1" and intra["ctu"] == "64"
    ldp = dict(EncoderConfig(64, 64, gop="ldp", keyint=30).x265_options())  # type: ignore[arg-type]
    assert ldp["bframes"] == "0" and ldp["keyint"] == "30" and ldp["rc-lookahead"] == "0"
    crf = dict(EncoderConfig(64, 64, gop="ra", crf=28).x265_options())  # type: ignore[arg-type]
    assert crf["crf"] == "28" and "qp" not in crf and "bframes" not in crf
    for gop in Gop:  # x265 would otherwise take frame threads by the core count
        assert dict(EncoderConfig(64, 64, gop=gop, threads=8).x265_options())["frame-threads"] == "1"
    args = EncoderConfig(64, 64, sao=False, options=(("psy-rd", "0"),)).cli_args()
    assert (
        args[:2] == ["--preset", "medium"]
        and "--no-sao" in args
        and "--cqp-offsets" in args
        and args[-2:] == ["--psy-rd", "0"]
    )


def test_ctu_grid_rounds_up() -> None:
    assert ctu_grid(416, 240) == (4, 7)
    assert ctu_grid(416, 240, 16) == (15, 26)


def test_annexb_writer_is_atomic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out.hevc"
    with pytest.raises(RuntimeError), AnnexBWriter(target) as stream:
        stream.write(b"\x00\x00\x01")
        raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with AnnexBWriter(target) as stream:
        stream.write(b"\x00\x00\x00\x01\x40")
    assert target.read_bytes() == b"\x00\x00\x00\x01\x40"


def test_annexb_writer_names_a_missing_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="does not exist"):
        AnnexBWriter(tmp_path / "missing" / "out.hevc")


def test_scaling_lists_rise_from_dc_to_the_highest_frequency() -> None:
    lists = ScalingLists(3.0)
    eight = lists.matrix(8)
    assert eight[0, 0] == 16 and eight[7, 7] == 64 and eight[0, 7] == eight[7, 0] == 40
    assert (np.diff(eight, axis=0) >= 0).all() and (np.diff(eight, axis=1) >= 0).all()
    assert (ScalingLists(0.0).matrix(4) == 16).all()
    assert ScalingLists(3.0, 2.0).matrix(8)[3, 4] < eight[3, 4]  # power 2 rises slowly at first
    assert ScalingLists(MAX_SLOPE).matrix(8).max() == 255
    assert ScalingLists.from_dict(lists.to_dict()) == lists and lists.tag == "sl=3^1"
    assert ScalingLists.from_config(lists.to_dict()) == lists
    assert (
        ScalingLists.from_config(None) is ScalingLists.from_config({}) is ScalingLists.from_config({"slope": 0}) is None
    )


def test_scaling_lists_are_written_as_hm_reads_them(tmp_path: Path) -> None:
    text = ScalingLists(3.0).hm_text()
    names = [line.split(" =")[0] for line in text.splitlines() if line.endswith(" =")]
    # 6 lists of each size but 32x32's 2 (luma), and a DC value for each 16x16 and 32x32 list
    assert len(names) == 6 + 6 + 2 * 6 + 2 * 2 and names[:2] == ["INTRA4X4_LUMA", "INTRA4X4_CHROMAU"]
    assert names[-4:] == ["INTRA32X32_LUMA", "INTRA32X32_LUMA_DC", "INTER32X32_LUMA", "INTER32X32_LUMA_DC"]
    first = ScalingLists(3.0).file(tmp_path)
    assert first.read_text() == text and ScalingLists(3.0).file(tmp_path) == first
    assert ScalingLists(2.0).file(tmp_path) != first


@pytest.mark.parametrize(
    ("data", "message"),
    [({"slope": 20}, "slope"), ({"slope": -1}, "slope"), ({"slope": 1, "power": 9}, "power"),
     ({"power": 1}, "slope"), ({"slope": 1, "gain": 2}, "gain")],
)  # fmt: skip
def test_bad_scaling_lists_are_named(data: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ScalingLists.from_dict(data)


def test_an_unwritable_scaling_list_folder_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InvalidInputError, match="SEMRL_CACHE"):
        ScalingLists(3.0).file(blocker / "lists")

"""The real patched x265, in-process: conformance, exact QPs, exact bits, robustness, CLI parity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from semrl.codec import AnnexBWriter, EncodedFrame, Encoder, EncoderConfig, Gop, GopLayout, ScalingLists, Yuv420
from semrl.errors import EncoderClosedError, InvalidInputError
from semrl.media import decode_ffmpeg, decode_libde265, probe
from semrl.samples import sample_clip

pytestmark = pytest.mark.x265
W, H = 384, 256
BASE = 32


def encode(clip: list[Yuv420], maps: list[np.ndarray | None] | None = None, **kwargs: object) -> list[EncodedFrame]:
    options: dict[str, object] = {"qp": BASE, "preset": "ultrafast", **kwargs}
    with Encoder(EncoderConfig(W, H, **options)) as encoder:  # type: ignore[arg-type]
        maps = maps if maps is not None else [None] * len(clip)
        return encoder.encode_all(clip, maps)


def random_maps(rng: np.random.Generator, count: int, low: int = -6, high: int = 6) -> list[np.ndarray]:
    return [rng.integers(low, high + 1, (4, 6)).astype(np.float32) for _ in range(count)]


def write(frames: list[EncodedFrame], path: Path) -> Path:
    with AnnexBWriter(path) as stream:
        for frame in frames:
            stream.write(frame.nal)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("gop", ["intra", "ldp", "ra"])
def test_streams_decode_to_the_reconstruction(gop: str, clip, rng, tmp_path) -> None:  # type: ignore[no-untyped-def]
    frames = encode(clip, random_maps(rng, len(clip)), gop=gop, preset="medium")
    stream = write(frames, tmp_path / f"{gop}.hevc")
    info = probe(stream, count_frames=True)
    # x265 signals all-intra streams (keyint 1) as Main Intra, a format-range-extensions profile
    assert info["codec_name"] == "hevc" and info["profile"] == ("Rext" if gop == "intra" else "Main")
    assert int(str(info["nb_read_frames"])) == len(clip)
    recon = [frame.recon for frame in sorted(frames, key=lambda f: f.poc)]
    assert decode_ffmpeg(stream, W, H) == recon
    assert decode_libde265(stream, W, H) == recon
    if gop == "ra":
        assert "B" in {frame.slice_type for frame in frames}


@pytest.mark.parametrize("gop", ["intra", "ldp", "ra"])
def test_coded_ctus_carry_base_plus_offset(gop: str, clip, rng) -> None:  # type: ignore[no-untyped-def]
    maps = random_maps(rng, len(clip), -10, 10)
    frames = encode(clip, maps, gop=gop)
    checked = 0
    for frame in frames:
        expected = BASE + maps[frame.pts]
        coded = ~np.isnan(frame.ctu_qp_coded)
        np.testing.assert_array_equal(frame.ctu_qp_coded[coded], expected[coded])
        checked += int(coded.sum())
    assert checked >= len(clip) * 4  # most CTUs of real content code residual somewhere


@pytest.mark.parametrize("gop", ["intra", "ldp"])
def test_a_frames_own_qp_codes_as_an_encoder_opened_at_it(gop: str, clip, rng) -> None:  # type: ignore[no-untyped-def]
    maps = random_maps(rng, len(clip), -4, 4)
    qps = [int(q) for q in rng.integers(24, 46, len(clip))]
    with Encoder(EncoderConfig(W, H, qp=BASE, preset="ultrafast", gop=gop)) as encoder:
        own = [f for m, q, p in zip(maps, qps, clip, strict=True) for f in encoder.encode(p, m, frame_qp=q)]
        own += encoder.flush()
    for frame in own:  # every coded CU at the frame's QP plus its offset
        coded = ~np.isnan(frame.ctu_qp_coded)
        np.testing.assert_array_equal(frame.ctu_qp_coded[coded], (qps[frame.pts] + maps[frame.pts])[coded])
    # One QP for the whole clip: the same stream as an encoder opened at it, not as offsets from the base.
    at_40 = encode(clip, maps, gop=gop, qp=40)
    with Encoder(EncoderConfig(W, H, qp=BASE, preset="ultrafast", gop=gop)) as encoder:
        forced = [f for m, p in zip(maps, clip, strict=True) for f in encoder.encode(p, m, frame_qp=40)]
        forced += encoder.flush()
    assert [f.nal for f in forced] == [f.nal for f in at_40]
    shifted = encode(clip, [m + 8 for m in maps], gop=gop)  # slice QP 32, every CU 8 above it
    assert [f.recon for f in shifted] != [f.recon for f in at_40]


def test_a_frames_own_qp_is_checked(clip) -> None:  # type: ignore[no-untyped-def]
    with Encoder(EncoderConfig(W, H, qp=BASE, preset="ultrafast")) as encoder:
        for bad in (52, -1, 30.5):
            with pytest.raises(InvalidInputError, match="frame_qp"):
                encoder.encode(clip[0], None, frame_qp=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="base QP 50"):
            encoder.encode(clip[0], np.full((4, 6), 4), frame_qp=50)
    with (
        Encoder(EncoderConfig(W, H, crf=30, preset="ultrafast")) as encoder,
        pytest.raises(InvalidInputError, match="rate control"),
    ):
        encoder.encode(clip[0], None, frame_qp=30)


def test_per_block_offsets_with_16x16_quantisation_groups(clip, rng) -> None:  # type: ignore[no-untyped-def]
    blocks = rng.integers(-5, 6, (16, 24)).astype(np.float32)
    with Encoder(EncoderConfig(W, H, qp=BASE, gop=Gop.INTRA, qg_size=16, preset="ultrafast")) as encoder:
        (frame,) = encoder.encode(clip[0], blocks)
    # a CTU's coded QP is an average over its coded 16x16 groups: it must lie within their range
    for row in range(4):
        for col in range(6):
            group = BASE + blocks[4 * row : 4 * row + 4, 4 * col : 4 * col + 4]
            qp = frame.ctu_qp_coded[row, col]
            if not np.isnan(qp):
                assert group.min() <= qp <= group.max()
    assert not np.allclose(frame.ctu_qp_coded[~np.isnan(frame.ctu_qp_coded)], BASE)


def test_raising_half_the_picture_lowers_its_bits_and_psnr(clip) -> None:  # type: ignore[no-untyped-def]
    flat = np.zeros((4, 6), np.float32)
    half = flat.copy()
    half[:, 3:] = 8
    (plain,) = encode(clip[:1], [flat], gop="intra")
    (raised,) = encode(clip[:1], [half], gop="intra")
    right = np.s_[:, 3:]
    left = np.s_[:, :3]
    assert raised.ctu_bits[right].sum() < 0.7 * plain.ctu_bits[right].sum()
    assert raised.ctu_distortion[right].sum() > 1.5 * plain.ctu_distortion[right].sum()
    assert np.all(raised.ctu_qp[left] == BASE) and np.all(plain.ctu_qp[left] == BASE)
    coded = ~np.isnan(raised.ctu_qp_coded[right])
    assert np.all(raised.ctu_qp_coded[right][coded] == BASE + 8)


@pytest.mark.parametrize(
    ("preset", "size"), [("medium", (384, 250)), ("ultrafast", (376, 248)), ("medium", (384, 256))]
)
def test_ctu_statistics_cover_the_picture_not_x265s_padding(preset: str, size: tuple[int, int]) -> None:
    # x265 pads a picture up to a multiple of its smallest CU (8 at medium, 16 at ultrafast) and the decoder crops
    # the padding away, so the per-CTU distortion must sum to the reconstruction's squared error, exactly.
    width, height = size
    frames = [Yuv420.from_rgb(frame) for frame in sample_clip(2, width=width, height=height)]
    with Encoder(EncoderConfig(width, height, qp=BASE, preset=preset)) as encoder:
        coded = encoder.encode_all(frames, [None, None])
    for frame in coded:
        error = frames[frame.pts].y.astype(np.int64) - frame.recon.y.astype(np.int64)
        assert int(frame.ctu_distortion.sum()) == int((error**2).sum())


@pytest.mark.parametrize("gop", ["ldp", "ra"])
def test_worker_threads_change_nothing_in_the_stream(gop: str, clip, rng) -> None:  # type: ignore[no-untyped-def]
    maps = random_maps(rng, len(clip))
    one, four = (encode(clip, maps, gop=gop, preset="medium", threads=n) for n in (1, 4))
    assert [f.nal for f in one] == [f.nal for f in four]


@pytest.mark.parametrize("sao", [False, True])
@pytest.mark.parametrize("wpp", [False, True])
@pytest.mark.parametrize("gop", ["intra", "ra"])
def test_ctu_bits_and_overhead_add_up_to_frame_bits(sao: bool, wpp: bool, gop: str, clip, rng) -> None:  # type: ignore[no-untyped-def]
    frames = encode(clip, random_maps(rng, len(clip)), gop=gop, sao=sao, wpp=wpp, preset="fast")
    assert len(frames) == len(clip)
    for frame in frames:
        assert int(frame.ctu_bits.sum()) + frame.overhead_bits == frame.bits == 8 * len(frame.nal)
        assert frame.ctu_bits.min() > 0 and frame.header_bits > 0 and frame.termination_bits > 0


def test_offsets_may_come_and_go_without_stale_values(clip, rng) -> None:  # type: ignore[no-untyped-def]
    a, b = random_maps(rng, 2, -8, 8)
    pattern = [a, a, None, None, b, None, b, a]
    mixed = encode(clip, pattern, gop="intra")
    for frame, offsets in zip(mixed, pattern, strict=True):
        (fresh,) = encode([clip[frame.pts]], [offsets], gop="intra")
        # Not the NAL bytes: x265 sets a slice-header flag from the POC (dpb.cpp, SLFASE_CONSTANT).
        assert frame.recon == fresh.recon, f"frame {frame.pts} differs from a fresh encode"
        np.testing.assert_array_equal(frame.ctu_bits, fresh.ctu_bits)
        np.testing.assert_array_equal(frame.ctu_qp, fresh.ctu_qp)
        coded = ~np.isnan(frame.ctu_qp_coded)
        expected = BASE + (offsets if offsets is not None else 0)
        np.testing.assert_array_equal(frame.ctu_qp_coded[coded], np.broadcast_to(expected, (4, 6))[coded])
    # and in a GOP (pooled frames are reused), the same sequence twice gives the same stream
    ldp_first = encode(clip, pattern, gop="ldp")
    ldp_again = encode(clip, pattern, gop="ldp")
    assert [f.nal for f in ldp_first] == [f.nal for f in ldp_again]
    for frame, offsets in zip(ldp_first, pattern, strict=True):
        coded = ~np.isnan(frame.ctu_qp_coded)
        expected = np.broadcast_to(BASE + (offsets if offsets is not None else 0), (4, 6))
        np.testing.assert_array_equal(frame.ctu_qp_coded[coded], expected[coded])


def _run_cli(x265, args: list[str]) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [str(x265.build.prefix / "bin" / "x265"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _cli_qpmap_encode(x265, config: EncoderConfig, source: Path, qpmap: Path, output: Path):  # type: ignore[no-untyped-def]
    args = [*config.cli_args(), "--input", str(source), "--qpmap", str(qpmap), "--output", str(output)]
    return _run_cli(x265, args)


@pytest.mark.slow
@pytest.mark.parametrize("gop", ["intra", "ldp"])
def test_cli_qpmap_gives_the_bindings_bitstream(gop: str, x265, clip, rng, tmp_path) -> None:  # type: ignore[no-untyped-def]
    maps = [rng.integers(-6, 7, (16, 24)).astype(np.float32) for _ in clip]
    maps = [np.repeat(np.repeat(m[::4, ::4], 4, 0), 4, 1) for m in maps]  # constant per CTU
    config = EncoderConfig(W, H, qp=BASE, gop=gop, preset="medium")  # type: ignore[arg-type]
    with Encoder(config) as encoder:
        frames = encoder.encode_all(clip, maps)
    source = tmp_path / "in.yuv"
    source.write_bytes(b"".join(picture.to_i420() for picture in clip))
    qpmap = tmp_path / "maps.bin"
    qpmap.write_bytes(b"".join(m.astype("<f4").tobytes() for m in maps))
    output = tmp_path / "cli.hevc"
    result = _cli_qpmap_encode(x265, config, source, qpmap, output)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == b"".join(frame.nal for frame in frames)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda m: m[:-1].tobytes(), "not a whole number of maps"),
        (lambda m: np.concatenate([m, m])[: m.size * 2 - m.size].tobytes(), "holds 1 maps; 2 frames are to be encoded"),
        (
            lambda m: np.concatenate([m, np.where(np.arange(m.size) == 7, np.nan, m)]).astype("<f4").tobytes(),
            "map 1, block 7 holds nan",
        ),
        (lambda m: np.concatenate([m, m + 60]).astype("<f4").tobytes(), "map 1, block 0 holds 60"),
    ],
)
def test_cli_rejects_short_or_malformed_qpmaps(content, message: str, x265, clip, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = EncoderConfig(W, H, qp=BASE, gop=Gop.INTRA, preset="ultrafast", log_level="error")
    source = tmp_path / "in.yuv"
    source.write_bytes(clip[0].to_i420() + clip[1].to_i420())
    one_map = np.zeros(16 * 24, "<f4")
    qpmap = tmp_path / "bad.bin"
    qpmap.write_bytes(content(one_map))
    result = _cli_qpmap_encode(x265, config, source, qpmap, tmp_path / "o.hevc")
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "o.hevc").exists(), "the CLI must fail before writing output"


def test_bad_input_raises_clear_errors(clip) -> None:  # type: ignore[no-untyped-def]
    encoder = Encoder(EncoderConfig(W, H, qp=BASE, gop=Gop.INTRA, preset="ultrafast"))
    with pytest.raises(InvalidInputError, match="frame is 192x128"):
        encoder.encode(Yuv420.from_rgb(np.zeros((128, 192, 3), np.uint8)))
    with pytest.raises(InvalidInputError, match="uint8"):
        encoder.encode(np.zeros((H, W, 3), np.float64))
    with pytest.raises(InvalidInputError, match="even size"):
        encoder.encode(np.zeros((H - 1, W, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="NaN"):
        encoder.encode(clip[0], np.full((4, 6), np.nan))
    with pytest.raises(InvalidInputError, match=r"outside 0\.\.51"):
        encoder.encode(clip[0], np.full((4, 6), 30))
    with pytest.raises(InvalidInputError, match=r"shape \(4, 6\)"):
        encoder.encode(clip[0], np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="vary inside 64x64"):
        encoder.encode(clip[0], np.arange(16 * 24, dtype=np.float32).reshape(16, 24) % 3)
    with pytest.raises(InvalidInputError, match="numbers"):
        encoder.encode(clip[0], np.full((4, 6), "a"))
    (frame,) = encoder.encode(clip[0], np.zeros((4, 6)))  # still usable after the errors
    assert frame.bits > 0
    encoder.close()
    encoder.close()
    with pytest.raises(EncoderClosedError):
        encoder.encode(clip[0])
    with pytest.raises(EncoderClosedError):
        encoder.flush()


def test_rejected_x265_options_name_the_option() -> None:
    with pytest.raises(InvalidInputError, match="no-such-option"):
        Encoder(EncoderConfig(W, H, options=(("no-such-option", "1"),)))


def test_crf_mode_lets_x265_choose_qps(clip) -> None:  # type: ignore[no-untyped-def]
    frames = encode(clip[:4], gop="ra", crf=28.0, qp=0)
    assert len(frames) == 4
    assert len({round(float(f.ctu_qp.mean()), 2) for f in frames}) > 1
    for frame in frames:
        assert int(frame.ctu_bits.sum()) + frame.overhead_bits == frame.bits


@pytest.mark.parametrize("preset", ["ultrafast", "medium"])
def test_layout_matches_the_frames_x265_codes(preset: str, clip) -> None:  # type: ignore[no-untyped-def]
    """The layout read from x265's parameters names exactly the frames it codes as I or P."""
    config = EncoderConfig(W, H, qp=BASE, preset=preset, gop=Gop.RANDOM_ACCESS, keyint=8)
    layout = config.layout()
    assert layout.keyint == 8 and layout.bframes in (3, 4) and layout.pyramid
    frames = clip[:8] + clip[:8]  # two IDR periods
    with Encoder(config) as encoder:
        coded = encoder.encode_all(frames)
    types = {f.pts: f.slice_type for f in coded}
    last = len(frames) - 1  # x265 codes a clip's last frame as P whatever the pattern
    anchors = {i for i in range(len(frames)) if layout.layer(i) == 0} | {last}
    assert {i for i, t in types.items() if t in ("I", "P")} == anchors
    assert EncoderConfig(W, H, gop=Gop.LOW_DELAY_P, keyint=30).layout() == GopLayout(keyint=30)
    assert EncoderConfig(W, H, gop=Gop.INTRA).layout() == GopLayout(keyint=1)


def test_scaling_lists_code_fine_texture_coarser_and_decode_as_recon(clip, tmp_path) -> None:  # type: ignore[no-untyped-def]
    flat = encode(clip[:2], gop="ldp")
    steep = encode(clip[:2], gop="ldp", scaling_lists=ScalingLists(3.0))
    assert sum(f.bits for f in steep) < sum(f.bits for f in flat)
    assert all((f.ctu_qp == BASE).all() for f in steep)  # the QPs are the same: only the matrices differ
    stream = write(steep, tmp_path / "lists.hevc")
    assert decode_ffmpeg(stream, W, H) == [frame.recon for frame in sorted(steep, key=lambda f: f.poc)]

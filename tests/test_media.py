"""What semrl reads from ffprobe's description of a video: size as shown, pixel aspect, colours (no FFmpeg run)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from semrl import media
from semrl.media import FROM_RGB, Colour, SourceInfo, video_info
from semrl.pipeline import stream_description

PLAIN = {"width": 640, "height": 360, "avg_frame_rate": "25/1", "nb_frames": "10", "pix_fmt": "yuv420p"}


def _info(monkeypatch: pytest.MonkeyPatch, **stream: object) -> SourceInfo:
    monkeypatch.setattr(media, "probe", lambda path: PLAIN | stream)
    return video_info(Path("clip.mp4"))


@pytest.mark.parametrize(
    ("turn", "size"),
    [
        ({}, (640, 360)),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, (360, 640)),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, (360, 640)),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -180}]}, (640, 360)),
        ({"side_data_list": [{"side_data_type": "Other"}, {"rotation": 270.0}]}, (360, 640)),
        ({"tags": {"rotate": "90"}}, (360, 640)),  # as older FFmpeg says it
        ({"tags": {"rotate": "0"}}, (640, 360)),
    ],
)
def test_a_turned_video_is_read_at_its_size_as_shown(
    monkeypatch: pytest.MonkeyPatch, turn: dict[str, object], size: tuple[int, int]
) -> None:
    info = _info(monkeypatch, **turn)
    assert (info.width, info.height) == size


def test_pixel_aspect_is_read_turned_and_kept_through_a_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _info(monkeypatch).pixel_aspect == 1
    assert _info(monkeypatch, sample_aspect_ratio="0:1").pixel_aspect == 1  # unknown
    assert _info(monkeypatch, sample_aspect_ratio="16:15").pixel_aspect == Fraction(16, 15)
    turned = _info(monkeypatch, sample_aspect_ratio="4:3", side_data_list=[{"rotation": 90}])
    assert turned.pixel_aspect == Fraction(3, 4)


def test_colours_are_the_streams_own_for_yuv_and_bt601_for_rgb(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged = {"color_primaries": "bt709", "color_transfer": "bt709", "color_space": "bt709"}
    assert _info(monkeypatch, **tagged).colour == Colour("bt709", "bt709", "bt709")
    assert _info(monkeypatch, pix_fmt="yuvj420p", color_space="bt470bg").colour == Colour(matrix="bt470bg")
    unknown = {"color_primaries": "unknown", "color_transfer": "reserved", "color_space": "unknown"}
    assert _info(monkeypatch, **unknown).colour == Colour()
    assert _info(monkeypatch, pix_fmt="gbrp", **tagged).colour == FROM_RGB == Colour(matrix="smpte170m")


def test_the_stream_description_holds_what_x265_can_say() -> None:
    plain = SourceInfo(None, "video", 64, 64, Fraction(25), 1, Fraction(1), Colour())
    assert stream_description(plain) == ()
    d1 = SourceInfo(None, "video", 720, 576, Fraction(25), 1, Fraction(16, 15), Colour("bt470bg", "bt709", "bt470bg"))
    assert stream_description(d1) == (
        ("sar", "16:15"), ("colorprim", "bt470bg"), ("transfer", "bt709"), ("colormatrix", "bt470bg")
    )  # fmt: skip
    odd = SourceInfo(None, "video", 64, 64, Fraction(25), 1, Fraction(1, 3), Colour("jedec-p22", "gamma28", "gbr"))
    assert stream_description(odd) == (("sar", "1:3"), ("transfer", "bt470bg"), ("colormatrix", "gbr"))
    assert stream_description(SourceInfo(None, "image", 64, 64, Fraction(25), 1)) == (("colormatrix", "smpte170m"),)


@pytest.mark.parametrize(("order", "interlaced"), [("tt", True), ("bt", True), ("progressive", False), (None, False)])
def test_the_field_order_says_whether_a_video_is_interlaced(
    monkeypatch: pytest.MonkeyPatch, order: str | None, interlaced: bool
) -> None:
    assert _info(monkeypatch, **({} if order is None else {"field_order": order})).interlaced is interlaced


def test_a_jpeg_cut_short_is_read_with_a_warning_and_a_whole_one_without(tmp_path: Path) -> None:
    import warnings

    import cv2
    import numpy as np

    from semrl.errors import InputWarning

    picture = np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8)
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    cv2.imwrite(str(whole), picture)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    damaged = r"cut\.jpg: damaged or truncated JPEG: read with its missing part"
    with pytest.warns(InputWarning, match=damaged), media.open_source(cut) as source:
        assert [frame.y.shape for frame in source] == [(64, 96)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        with media.open_source(whole) as source:
            assert len(list(source)) == 1


def test_videos_in_a_folder_of_pictures_are_named(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from semrl.errors import InputWarning, InvalidInputError

    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"holds no images .*; its videos are inputs of their own \(semrl"):
        media.open_source(tmp_path)
    cv2.imwrite(str(tmp_path / "frame.png"), np.zeros((64, 64, 3), np.uint8))
    beside = r"holds 1 video\(s\) beside its images \(clip\.mp4\): its images are"
    with pytest.warns(InputWarning, match=beside), media.open_source(tmp_path) as source:
        assert len(list(source)) == 1

"""Encoding an item at one operating point, and checking the stream against FFmpeg's decode.

Every encode runs the patched x265 in-process, writes the Annex-B stream, decodes it with FFmpeg
and checks each decoded picture equal to the encoder's reconstruction, so the task net sees what
a standard decoder shows. Images are coded all-intra (one IDR picture each), clips low-delay P
or random access.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.items import Item
from semrl.codec import CTU_SIZE, QP_MAX, AnnexBWriter, EncodedFrame, Encoder, EncoderConfig, ScalingLists, Yuv420
from semrl.errors import CodecError
from semrl.fidelity.distortion import frame_psnr, plane_ssim, psnr
from semrl.media import decode_ffmpeg


def encoder_config(
    item: Item,
    point: float,
    *,
    crf: bool,
    video: bool,
    preset: str,
    keyint: int,
    qg_size: int = CTU_SIZE,
    gop: str = "ldp",
    options: tuple[tuple[str, str], ...] = (),
    scaling_lists: ScalingLists | None = None,
) -> EncoderConfig:
    """The encoder configuration of one item at one operating point.

    Args:
        item: The picture or clip (its coded size and frame rate).
        point: Base QP, or a CRF value with ``crf``. A base above 51 (ROI's low-rate end) is
            coded at 51, with offsets from the virtual base.
        crf: Whether ``point`` is a CRF value (x265's rate control and adaptive quantisation).
        video: Clip GOP ``gop`` with IDR interval ``keyint``; otherwise all-intra.
        preset: x265 preset.
        keyint: IDR interval of a clip.
        qg_size: Quantisation-group size: 64 for policies with one offset per CTU, 16 for those
            that declare offsets per 16x16 block (:func:`semrl.policy.offset_block`).
        gop: A clip's GOP: ``ldp`` (low-delay P) or ``ra`` (random access: the preset's
            B-frames; with CRF x265's adaptive B-frame placement too, as people run it).
        options: Further x265 options (name, value) for every method alike (``bdrate.py --x265``).
        scaling_lists: The method's quantisation matrices (:func:`semrl.policy.scaling_lists`); None: flat.
    """
    w, h = item.coded_size
    fps = (round((item.fps or 25.0) * 1001), 1001)
    common: dict[str, Any] = {
        "preset": preset, "threads": 1, "fps": fps, "qg_size": qg_size, "options": options,
        "scaling_lists": scaling_lists,
    }  # fmt: skip
    if video:
        common.update(gop=gop, keyint=keyint)
    else:
        common.update(gop="intra")
    if crf:
        return EncoderConfig(w, h, crf=float(point), **common)
    return EncoderConfig(w, h, qp=min(int(point), QP_MAX), **common)


def encode_item(
    item: Item,
    config: EncoderConfig,
    offsets: list[NDArray[np.int32]] | None,
    sources: Sequence[Yuv420] | None = None,
) -> list[EncodedFrame]:
    """The coded pictures of an item, in decode order.

    Its frames (or ``sources``, pre-filtered versions of them) are given the per-frame ``offsets``
    (None: none).
    """
    frames = item.yuv if sources is None else sources
    if len(frames) != len(item.yuv):
        raise CodecError(f"{item.name}: {len(frames)} pre-filtered frames for {len(item.yuv)}")
    with Encoder(config) as encoder:
        coded = []
        for i, frame in enumerate(frames):
            coded += encoder.encode(frame, offsets[i] if offsets is not None else None)
        coded += encoder.flush()
    return coded


def encode_and_verify(
    item: Item,
    config: EncoderConfig,
    offsets: list[NDArray[np.int32]] | None,
    stream: Path,
    sources: Sequence[Yuv420] | None = None,
) -> tuple[dict[str, Any], list[NDArray[np.uint8]]]:
    """Encode an item, write its stream, decode it with FFmpeg and check it against x265's pictures.

    Args:
        item: The picture or clip.
        config: The encoder configuration (:func:`encoder_config`).
        offsets: Per frame, QP offsets for the encoder; None for none.
        stream: Where the Annex-B stream goes.
        sources: The frames to code when a policy pre-filters them (:class:`semrl.policy.Prefilter`);
            None codes the item's own. Quality is measured against the item's own frames either way.

    Returns:
        The encode's statistics (per frame bits, PSNR, luma PSNR and SSIM; mean CTU QP; seconds in
        x265) and the decoded frames (RGB, cropped to the item's size).

    Raises:
        CodecError: FFmpeg decodes another number of pictures, or a picture that differs from the
            encoder's reconstruction.
    """
    h, w = item.shape
    start = time.perf_counter()
    coded = encode_item(item, config, offsets, sources)
    seconds = time.perf_counter() - start
    with AnnexBWriter(stream) as writer:
        for c in coded:
            writer.write(c.nal)
    decoded = decode_ffmpeg(stream, config.width, config.height)
    by_poc = sorted(coded, key=lambda c: c.poc)
    if len(decoded) != len(by_poc):
        raise CodecError(f"FFmpeg decoded {len(decoded)} pictures of {stream}, the encoder made {len(by_poc)}")
    for i, (d, c) in enumerate(zip(decoded, by_poc, strict=True)):
        if d != c.recon:
            raise CodecError(f"{item.name} frame {i}: FFmpeg's picture differs from x265's reconstruction ({config})")
    frames = [d.to_rgb()[:h, :w] for d in decoded]
    psnrs = [frame_psnr(psnr(item.reference(i), f)) for i, f in enumerate(frames)]
    ssims = [plane_ssim(item.yuv[i].y[:h, :w], d.y[:h, :w]) for i, d in enumerate(decoded)]
    stats = {
        "frame_bits": [c.bits for c in by_poc],
        "encode_s": seconds,
        "psnr": psnrs,
        "psnr_y": [frame_psnr(c.psnr_y) for c in by_poc],
        "ssim_y": ssims,
        "mean_qp": float(np.mean([c.ctu_qp.mean() for c in by_poc])),
        "decoder_check": "ffmpeg == x265 reconstruction",
    }
    return stats, frames


def decode_stream(item: Item, config: EncoderConfig, stream: Path) -> list[NDArray[np.uint8]]:
    """Decode a cached stream with FFmpeg: RGB frames cropped to the item's size."""
    h, w = item.shape
    return [d.to_rgb()[:h, :w] for d in decode_ffmpeg(stream, config.width, config.height)]

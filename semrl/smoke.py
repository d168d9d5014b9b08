"""A smoke encode: the built-in clip through the patched x265, checked by an independent decoder."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semrl.codec import AnnexBWriter, Encoder, EncoderConfig, Gop, Yuv420
from semrl.errors import CodecError, InvalidInputError
from semrl.fidelity.distortion import clip_psnr
from semrl.media import decode_ffmpeg, probe
from semrl.samples import sample_clip


@dataclass(frozen=True)
class SmokeReport:
    """What a smoke encode produced and checked."""

    output: Path
    frames: int
    width: int
    height: int
    bits: int
    kbps: float
    mean_qp: float
    psnr_y: float
    encode_fps: float
    profile: str
    exact_accounting: bool
    decoder_matches: bool

    def summary(self) -> str:
        """A few human-readable lines."""
        return (
            f"wrote {self.output} ({self.bits // 8} bytes, HEVC {self.profile})\n"
            f"{self.frames} frames {self.width}x{self.height}: {self.kbps:.1f} kbit/s at 25 fps, "
            f"mean QP {self.mean_qp:.2f}, luma PSNR {self.psnr_y:.2f} dB, {self.encode_fps:.1f} frames/s\n"
            f"per-CTU bits + overhead == frame bits on every frame: {self.exact_accounting}\n"
            f"FFmpeg's decode equals the encoder's reconstruction: {self.decoder_matches}"
        )


def run_smoke(output: Path, frames: int = 16, qp: int = 32, preset: str = "medium") -> SmokeReport:
    """Encodes the built-in clip with a centre-weighted QP map and checks the result.

    Args:
        output: the ``.hevc`` file to write (atomically).
        frames: number of frames of the built-in clip.
        qp: base QP.
        preset: x265 preset.

    Raises:
        InvalidInputError: ``output`` does not end in ``.hevc``, ``.h265`` or ``.265``.
        CodecError: the stream does not decode, or decodes to other pictures than the encoder's.
    """
    if output.suffix.lower() not in (".hevc", ".h265", ".265"):
        raise InvalidInputError(
            f"smoke writes a raw Annex-B HEVC stream: name it .hevc, not {output.name} (semrl encode writes MP4)"
        )
    clip = [Yuv420.from_rgb(frame) for frame in sample_clip(frames)]
    height, width = clip[0].y.shape
    config = EncoderConfig(width, height, qp=qp, preset=preset, gop=Gop.LOW_DELAY_P)
    with Encoder(config) as encoder:
        rows, cols = encoder.ctu_shape
        yy, xx = np.mgrid[0:rows, 0:cols]
        distance = np.hypot((yy - (rows - 1) / 2) / rows, (xx - (cols - 1) / 2) / cols)
        offsets = np.round(-4 + 16 * distance).astype(np.int32)  # finer in the centre
        start = time.perf_counter()
        with AnnexBWriter(output) as stream:
            coded = encoder.encode_all(clip, [offsets] * len(clip))
            elapsed = time.perf_counter() - start
            for frame in coded:
                stream.write(frame.nal)
    decoded = decode_ffmpeg(output, width, height)
    by_poc = sorted(coded, key=lambda frame: frame.poc)
    matches = len(decoded) == len(by_poc) and all(d == c.recon for d, c in zip(decoded, by_poc, strict=True))
    if not matches:
        raise CodecError(f"FFmpeg's decode of {output} differs from the encoder's reconstruction")
    bits = sum(frame.bits for frame in coded)
    return SmokeReport(
        output=output,
        frames=len(coded),
        width=width,
        height=height,
        bits=bits,
        kbps=bits * 25 / len(coded) / 1000,
        mean_qp=float(np.mean([frame.ctu_qp.mean() for frame in coded])),
        psnr_y=clip_psnr([frame.psnr_y for frame in coded]),
        encode_fps=len(coded) / elapsed,
        profile=str(probe(output).get("profile", "?")),
        exact_accounting=all(int(f.ctu_bits.sum()) + f.overhead_bits == f.bits for f in coded),
        decoder_matches=matches,
    )

"""Codecs as the environment sees them: code one picture with a per-CTU QP map, return exact statistics.

:class:`X265Codec` is the patched x265 in-process (all-intra, constant QP, one QP per 64x64 CTU).
:class:`FakeCodec` is a fake whose bits follow a QP model and whose reconstruction is the picture
plus deterministic noise growing with the quantiser step, for fast tests without x265.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from semrl.codec import BLOCK_SIZE, CTU_SIZE, QP_MAX, QP_MIN, ScalingLists, ctu_grid, ctu_to_blocks
from semrl.errors import CodecError, InvalidInputError


@dataclass(frozen=True, eq=False)
class CodedPicture:
    """One coded picture.

    Attributes:
        ctu_bits: int64 (rows, cols) exact bits of each CTU_SIZE.
        bits: Bits of the whole access unit (CTUs plus headers).
        recon: The reconstructed picture, (H, W, 3) uint8 RGB.
    """

    ctu_bits: NDArray[np.int64]
    bits: int
    recon: NDArray[np.uint8]


class Codec(Protocol):
    """Codes one RGB picture of even size at ``base_qp`` plus per-CTU integer offsets."""

    @property
    def fingerprint(self) -> str:
        """Identifies the codec, its build and settings; part of table cache keys."""
        ...

    def code(self, frame: NDArray[np.uint8], base_qp: int, offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        """Code ``frame`` (H, W, 3 uint8 RGB, even H and W); offsets are (rows, cols) of the CTU grid."""
        ...


class X265Codec:
    """The patched x265, all-intra, constant QP (every CTU's QP is exactly base + offset).

    Args:
        preset: x265 preset (the benchmark's is ``medium``).
        scaling_lists: Quantisation matrices for every block (None: flat).
    """

    def __init__(self, preset: str = "medium", scaling_lists: ScalingLists | None = None) -> None:
        self.preset = preset
        self.scaling_lists = scaling_lists

    @property
    def fingerprint(self) -> str:
        """x265 version, patch hash and the settings (flat quantisation adds nothing: older keys stay)."""
        from semrl.codec import load_library

        build = load_library().build
        lists = "" if self.scaling_lists is None else f":{self.scaling_lists.tag}"
        return f"x265:{build.version}:{build.patch_hash}:intra:{self.preset}{lists}"

    def code(self, frame: NDArray[np.uint8], base_qp: int, offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        """Encode one picture in-process and return exact per-CTU bits and the reconstruction."""
        from semrl.codec import Encoder, EncoderConfig, Gop, Yuv420

        h, w = frame.shape[:2]
        config = EncoderConfig(
            w, h, qp=int(base_qp), preset=self.preset, gop=Gop("intra"), threads=1, scaling_lists=self.scaling_lists
        )
        with Encoder(config) as encoder:
            coded = encoder.encode(Yuv420.from_rgb(frame), offsets)
            coded += encoder.flush()
        if len(coded) != 1:
            raise InvalidInputError(f"expected one coded picture, x265 returned {len(coded)}")
        c = coded[0]
        return CodedPicture(np.asarray(c.ctu_bits, np.int64), int(c.bits), c.recon.to_rgb())


class FakeCodec:
    """A fake codec whose bits follow a QP model, for tests without x265.

    Bits of a CTU_SIZE: ``(64 + 4 * std) * 2 ** ((32 - qp) / 6)`` (activity times the usual halving
    per 6 QP); reconstruction: the picture plus noise of standard deviation ``Qstep / 4`` with
    ``Qstep = 2 ** ((qp - 4) / 6)``, seeded by the picture's content and the QP map, so it is
    deterministic.
    """

    fingerprint = "fake-codec:v1"

    def code(self, frame: NDArray[np.uint8], base_qp: int, offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        """Code ``frame`` with the QP model."""
        even = frame.ndim == 3 and frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0
        if not even or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InvalidInputError(f"frame must be (H, W, 3) uint8 with even H, W; got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        rows, cols = ctu_grid(w, h)
        off = np.zeros((rows, cols), np.int32) if offsets is None else np.asarray(offsets, np.int32)
        if off.shape != (rows, cols):
            raise InvalidInputError(f"offsets of shape {off.shape}, expected {(rows, cols)}")
        qp = np.clip(base_qp + off, QP_MIN, QP_MAX)
        padded = np.pad(
            frame.astype(np.float32).mean(axis=2), ((0, rows * CTU_SIZE - h), (0, cols * CTU_SIZE - w)), mode="edge"
        )
        std = padded.reshape(rows, CTU_SIZE, cols, CTU_SIZE).std(axis=(1, 3))
        bits = np.maximum(1, np.rint((64 + 4 * std) * 2.0 ** ((32 - qp) / 6))).astype(np.int64)
        seed = int.from_bytes(hashlib.sha256(frame.tobytes() + qp.tobytes()).digest()[:8], "little")
        noise = np.random.default_rng(seed).standard_normal((rows * CTU_SIZE, cols * CTU_SIZE, 3)).astype(np.float32)
        sigma = (2.0 ** ((qp - 4) / 6) / 4).astype(np.float32)
        sigma_px = np.repeat(np.repeat(sigma, CTU_SIZE, axis=0), CTU_SIZE, axis=1)[:h, :w, None]
        recon = np.clip(frame.astype(np.float32) + noise[:h, :w] * sigma_px, 0, 255).round().astype(np.uint8)
        return CodedPicture(bits, int(bits.sum()) + 200, recon)


class ClipSession(Protocol):
    """One clip being coded frame by frame; each call returns that frame's coded picture at once."""

    def code(self, frame: NDArray[np.uint8], offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        """Code the next frame (H, W, 3 uint8 RGB) with offsets on the CTU or 16x16 block grid (or none)."""
        ...

    def close(self) -> None:
        """Release the encoder."""
        ...


class ClipCodec(Protocol):
    """Codes clips low-delay P at constant base QP plus offsets per CTU or 16x16 block, one frame per call."""

    @property
    def fingerprint(self) -> str:
        """Identifies the codec, its build and settings; part of video table cache keys."""
        ...

    def open(self, width: int, height: int, base_qp: int) -> ClipSession:
        """Start a clip of frames of this size at this base QP (its first frame is an IDR picture)."""
        ...


class X265ClipCodec:
    """The patched x265 in-process, low-delay P, constant QP, 16x16 quantisation groups.

    With no B-frames, no lookahead and one frame thread, x265 returns each frame from the call
    that submits it (``docs``: output latency), so an episode steps frame by frame. These are the
    benchmark's low-delay P settings, so a policy meets the same references at training and in
    ``benchmarks/bdrate.py --task video``.

    Args:
        preset: x265 preset (the benchmark's is ``medium``).
        keyint: IDR interval.
        qg_size: Quantisation-group size: 64 for offsets per CTU, 16 for offsets per 16x16 block
            (as the benchmark opens the encoder for a policy's ``offset_block``).
    """

    def __init__(self, preset: str = "medium", keyint: int = 250, qg_size: int = CTU_SIZE) -> None:
        self.preset = preset
        self.keyint = keyint
        self.qg_size = qg_size

    @property
    def fingerprint(self) -> str:
        """x265 version, patch hash and the settings."""
        from semrl.codec import load_library

        return f"x265:{load_library().build.key}:ldp:{self.preset}:keyint={self.keyint}:qg={self.qg_size}"

    def open(self, width: int, height: int, base_qp: int) -> ClipSession:
        """Open an encoder for one clip."""
        from semrl.codec import Encoder, EncoderConfig, Gop

        config = EncoderConfig(width, height, qp=int(base_qp), preset=self.preset, gop=Gop.LOW_DELAY_P,
                               keyint=self.keyint, qg_size=self.qg_size, threads=1)  # fmt: skip
        return _X265Session(Encoder(config))


class _X265Session:
    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def code(self, frame: NDArray[np.uint8], offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        from semrl.codec import Yuv420

        coded = self.encoder.encode(Yuv420.from_rgb(frame), offsets)
        if len(coded) != 1:
            raise CodecError(f"low-delay P: expected the frame just submitted back, x265 returned {len(coded)}")
        c = coded[0]
        h, w = frame.shape[:2]
        return CodedPicture(np.asarray(c.ctu_bits, np.int64), int(c.bits), c.recon.to_rgb()[:h, :w])

    def close(self) -> None:
        self.encoder.close()


class FakeClipCodec:
    """A fake clip codec for tests without x265: a frame's bits depend on its reference.

    A block's bits are ``(16 + 4 * std(residual)) * 2 ** ((32 - qp) / 6)``, the residual being the
    frame minus the previous reconstruction (the frame itself for the first, intra, frame), so a
    better reference makes the next frame cheaper; the reconstruction is the frame plus
    deterministic noise of standard deviation ``Qstep / 4``, as :class:`FakeCodec`.
    """

    fingerprint = "fake-clip-codec:v1"

    def open(self, width: int, height: int, base_qp: int) -> ClipSession:
        """Start a clip."""
        if width % 2 or height % 2:
            raise InvalidInputError(f"frame size must be even, got {width}x{height}")
        return _FakeSession(width, height, int(base_qp))


class _FakeSession:
    def __init__(self, width: int, height: int, base_qp: int) -> None:
        self.shape = (height, width)
        self.base_qp = base_qp
        self.reference: NDArray[np.float32] | None = None

    def code(self, frame: NDArray[np.uint8], offsets: NDArray[np.int32] | None = None) -> CodedPicture:
        h, w = self.shape
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise InvalidInputError(f"frame must be ({h}, {w}, 3) uint8, got {frame.shape} {frame.dtype}")
        rows, cols = ctu_grid(w, h, BLOCK_SIZE)
        off = np.zeros((rows, cols), np.int32) if offsets is None else np.asarray(offsets, np.int32)
        g = CTU_SIZE // BLOCK_SIZE
        if off.shape == ctu_grid(w, h):  # one offset per CTU: the same on its 16x16 blocks
            off = ctu_to_blocks(off, (rows, cols))
        if off.shape != (rows, cols):
            raise InvalidInputError(f"offsets of shape {off.shape}, expected the CTU or block grid of {h}x{w}")
        qp = np.clip(self.base_qp + off, QP_MIN, QP_MAX)
        luma = frame.astype(np.float32).mean(axis=2)
        residual = luma if self.reference is None else luma - self.reference.mean(axis=2)
        pad = ((0, rows * BLOCK_SIZE - h), (0, cols * BLOCK_SIZE - w))
        std = np.pad(residual, pad, mode="edge").reshape(rows, BLOCK_SIZE, cols, BLOCK_SIZE).std(axis=(1, 3))
        bits = np.maximum(1, np.rint((16 + 4 * std) * 2.0 ** ((32 - qp) / 6))).astype(np.int64)
        seed = int.from_bytes(hashlib.sha256(frame.tobytes() + qp.tobytes()).digest()[:8], "little")
        noise = np.random.default_rng(seed).standard_normal((h, w, 3)).astype(np.float32)
        sigma = np.repeat(np.repeat((2.0 ** ((qp - 4) / 6) / 4).astype(np.float32), BLOCK_SIZE, 0), BLOCK_SIZE, 1)
        recon = np.clip(frame.astype(np.float32) + noise * sigma[:h, :w, None], 0, 255)
        self.reference = recon.round()
        padded = np.pad(bits, ((0, -rows % g), (0, -cols % g)))
        ctu_bits = padded.reshape(-(-rows // g), g, -(-cols // g), g).sum(axis=(1, 3))
        return CodedPicture(ctu_bits, int(bits.sum()) + 100, self.reference.astype(np.uint8))

    def close(self) -> None:
        self.reference = None

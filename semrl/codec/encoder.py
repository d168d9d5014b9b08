"""The in-process patched x265 encoder: frames and per-CTU QP offsets in, exact statistics out."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from semrl.codec.library import X265Library, load_library
from semrl.codec.picture import Yuv420, as_yuv420
from semrl.codec.scaling import ScalingLists
from semrl.errors import CodecError, EncoderClosedError, FrameTooSmallError, InvalidInputError
from semrl.paths import cache_root

CTU_SIZE = 64
BLOCK_SIZE = 16
QP_MIN, QP_MAX = 0, 51
# options the x265 CLI takes as --name / --no-name rather than --name VALUE
_CLI_FLAGS = frozenset({"repeat-headers", "info", "cqp-offsets", "sao", "wpp"})
PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip


def check_preset(preset: str) -> None:
    """Refuse a name that is not one of x265's presets (:data:`PRESETS`).

    Raises:
        InvalidInputError: ``preset`` is not a preset, with the ones there are.
    """
    if preset not in PRESETS:
        raise InvalidInputError(f"unknown x265 preset {preset!r}; choose one of {', '.join(PRESETS)}")


def require_one_ctu(name: str, width: int, height: int) -> None:
    """Refuse frames smaller than a CTU on either side (x265 cannot open an encoder for them).

    Raises:
        FrameTooSmallError: ``width`` or ``height`` below :data:`CTU_SIZE`, naming ``name`` and the fix.
    """
    if min(width, height) < CTU_SIZE:
        raise FrameTooSmallError(
            f"{name}: frames of {width}x{height} are smaller than x265's {CTU_SIZE}x{CTU_SIZE} coding tree unit; "
            f"scale the input to at least {CTU_SIZE} px on each side (e.g. ffmpeg -vf scale)"
        )


class Gop(str, enum.Enum):
    """GOP structure of an encode."""

    INTRA = "intra"
    """All-intra: every frame an IDR picture (images, and the published per-image setting)."""
    LOW_DELAY_P = "ldp"
    """I then P frames only, no reordering: each call returns the frame just submitted."""
    RANDOM_ACCESS = "ra"
    """B-frames with reordering (the preset's GOP): frames come out several calls later."""


@dataclass(frozen=True)
class GopLayout:
    """Where each frame of a clip sits in the coding structure, by display index.

    With constant QP, x265 codes random access as a fixed GOP (``b-adapt 0``): from each IDR
    frame on, every ``bframes + 1``-th frame is a P anchor and the frames between are B-frames,
    the middle one a reference for the others when ``pyramid``. Low delay and all-intra have no
    B-frames. Under rate control x265 places B-frames adaptively, and this is its nominal pattern;
    the last frames of a clip may also be coded as P.

    Attributes:
        keyint: IDR interval.
        bframes: B-frames between anchors (0: low delay or all-intra).
        pyramid: The middle B-frame of each group is referenced by the others.
    """

    keyint: int = 250
    bframes: int = 0
    pyramid: bool = False

    def __post_init__(self) -> None:
        if self.keyint < 1 or self.bframes < 0:
            raise InvalidInputError(f"keyint must be >= 1 and bframes >= 0, got {self.keyint} and {self.bframes}")

    def position(self, index: int) -> int:
        """Frames since the last IDR frame (0 for an IDR frame)."""
        return index % self.keyint

    def layer(self, index: int) -> int:
        """Temporal layer: 0 for IDR and P anchors, 1 for the referenced middle B-frame, 2 for other B-frames."""
        position = self.position(index) % (self.bframes + 1)
        if position == 0:
            return 0
        return 1 if self.pyramid and position == 1 + self.bframes // 2 else 2


def ctu_grid(width: int, height: int, size: int = CTU_SIZE) -> tuple[int, int]:
    """(rows, cols) of the grid of ``size`` x ``size`` blocks covering a picture."""
    return math.ceil(height / size), math.ceil(width / size)


def ctu_to_blocks(per_ctu: npt.NDArray[Any], block_grid: tuple[int, int]) -> npt.NDArray[Any]:
    """Per-CTU values spread over the 16x16 blocks of each CTU, cut to the picture's ``block_grid``."""
    factor = CTU_SIZE // BLOCK_SIZE
    rows, cols = block_grid
    blocks: npt.NDArray[Any] = np.repeat(np.repeat(per_ctu, factor, axis=0), factor, axis=1)[:rows, :cols]
    return blocks


Reduce = Literal["mean", "max"]
"""How :func:`pool_map` pools a block: ``"mean"`` (share of importance) or ``"max"`` (most important pixel)."""


def _partial_ctu_start(size: int) -> int:
    """Where the last, partial CTU of a picture side of ``size`` pixels starts; ``size`` when none is partial."""
    return size if size % CTU_SIZE == 0 else size - size % CTU_SIZE


def _ctu_sums(values: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Sums of a 1-D run of per-pixel values over each CTU it spans (the last one partial)."""
    padded = np.zeros(-(-values.size // CTU_SIZE) * CTU_SIZE, np.int64)
    padded[: values.size] = values
    sums: npt.NDArray[np.uint64] = padded.reshape(-1, CTU_SIZE).sum(axis=1).astype(np.uint64)
    return sums


def pool_map(
    values: npt.NDArray[np.floating], block: int = CTU_SIZE, reduce: Reduce = "mean"
) -> npt.NDArray[np.float32]:
    """Pool a per-pixel map to a grid of square blocks.

    Blocks at the right and bottom edges that stick out of the picture are pooled over the pixels
    they contain, as the encoder codes only those.

    Args:
        values: (H, W) map.
        block: Block side in pixels (64 for CTUs, 16 for the offset grid).
        reduce: ``"mean"`` (share of importance) or ``"max"`` (most important pixel).

    Returns:
        float32 array (ceil(H / block), ceil(W / block)).

    Raises:
        InvalidInputError: ``values`` is not 2-D or empty, or ``block`` is not positive.
    """
    if values.ndim != 2 or values.size == 0:
        raise InvalidInputError(f"pool_map needs a non-empty 2-D map, got shape {values.shape}")
    if block <= 0:
        raise InvalidInputError(f"block must be positive, got {block}")
    h, w = values.shape
    rows, cols = ctu_grid(w, h, block)
    padded = np.zeros((rows * block, cols * block), dtype=np.float64)
    padded[:h, :w] = values
    tiles = padded.reshape(rows, block, cols, block)
    if reduce == "max":
        peak: npt.NDArray[np.float32] = tiles.max(axis=(1, 3)).astype(np.float32)
        return peak
    if reduce != "mean":
        raise InvalidInputError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    counts = np.zeros_like(padded)
    counts[:h, :w] = 1.0
    n = counts.reshape(rows, block, cols, block).sum(axis=(1, 3))
    mean: npt.NDArray[np.float32] = (tiles.sum(axis=(1, 3)) / n).astype(np.float32)
    return mean


@dataclass(frozen=True)
class EncoderConfig:
    """How to encode: everything that changes the bitstream.

    Attributes:
        width: picture width (even).
        height: picture height (even).
        qp: base QP of constant-QP mode; every CU's QP is ``qp`` + its offset.
        preset: x265 preset.
        gop: GOP structure.
        keyint: IDR interval for the GOP structures (ignored for all-intra).
        crf: when set, x265's CRF rate control with its own adaptive quantisation (and cuTree
            in GOPs) instead of constant QP, as people run x265; offsets are then added to
            x265's AQ offsets and QPs are no longer base + offset.
        bitrate: when set (kbit/s), x265's own average-bitrate rate control (ABR) with its adaptive
            quantisation (and cuTree in GOPs), as people run ``x265 --bitrate``; like ``crf``,
            offsets are then added to x265's own.
        threads: worker threads (x265 thread pool size). The coded bytes are the same for any
            count: frame threads stay at 1, so only wavefront rows run in parallel.
        qg_size: quantisation-group size; 64 gives one QP per CTU, 16 one per 16x16 block.
        fps: frame rate as (numerator, denominator).
        sao: SAO on or off; None keeps the preset's choice.
        wpp: wavefront parallel processing on or off; None keeps the preset's choice.
        log_level: x265's log level (none, error, warning, info, debug, full).
        scaling_lists: quantisation matrices (HEVC scaling lists) for every block; None: flat.
        options: further x265 options as (name, value) pairs, applied last.
    """

    width: int
    height: int
    qp: int = 32
    preset: str = "medium"
    gop: Gop = Gop.LOW_DELAY_P
    keyint: int = 250
    crf: float | None = None
    bitrate: float | None = None
    threads: int = 1
    qg_size: int = CTU_SIZE
    fps: tuple[int, int] = (25, 1)
    sao: bool | None = None
    wpp: bool | None = None
    log_level: str = "error"
    scaling_lists: ScalingLists | None = None
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise InvalidInputError(f"picture size must be even and positive, got {self.width}x{self.height}")
        if not QP_MIN <= self.qp <= QP_MAX:
            raise InvalidInputError(f"base QP must be in {QP_MIN}..{QP_MAX}, got {self.qp}")
        check_preset(self.preset)
        object.__setattr__(self, "gop", Gop(self.gop))
        if self.qg_size not in (16, 32, 64):
            raise InvalidInputError(f"qg_size must be 16, 32 or 64, got {self.qg_size}")
        if self.threads < 1:
            raise InvalidInputError(f"threads must be at least 1, got {self.threads}")
        if self.keyint < 1:
            raise InvalidInputError(f"keyint must be at least 1, got {self.keyint}")
        if self.crf is not None and not QP_MIN <= self.crf <= QP_MAX:
            raise InvalidInputError(f"crf must be in {QP_MIN}..{QP_MAX}, got {self.crf}")
        if self.bitrate is not None and (not self.bitrate > 0 or self.crf is not None):
            raise InvalidInputError(f"bitrate must be positive kbit/s and without crf, got {self.bitrate}")

    @property
    def constant_qp(self) -> bool:
        """True in constant-QP mode, where every CU's QP is exactly base + offset."""
        return self.crf is None and self.bitrate is None

    def x265_options(self) -> list[tuple[str, str]]:
        """The x265 options (name, value) this config sets on top of its preset, in order.

        The same list drives the in-process encoder and, as ``--name value``, the x265 CLI.
        """
        opts: list[tuple[str, str]] = [
            ("input-res", f"{self.width}x{self.height}"),
            ("fps", f"{self.fps[0]}/{self.fps[1]}"),
            ("input-csp", "i420"),
            ("ctu", str(CTU_SIZE)),
            ("qg-size", str(self.qg_size)),
            ("repeat-headers", "1"),
            ("info", "0"),
            ("hash", "0"),
            ("log-level", self.log_level),
            ("pools", str(self.threads)),
            # Frame threads would make x265 return frames later (a per-frame caller, the rate
            # controller, needs each frame back as it is coded), their count follows the cores, and
            # they change the bytes (the sample clip, random access: frame 2 takes 28136 bits with 3, 8208 with 1).
            ("frame-threads", "1"),
        ]
        if self.bitrate is not None:
            opts += [("bitrate", f"{self.bitrate:g}")]
        elif self.crf is None:
            opts += [("qp", str(self.qp)), ("cqp-offsets", "1")]
        else:
            opts += [("crf", f"{self.crf:g}")]
        if self.gop is Gop.INTRA:
            opts += [("keyint", "1"), ("bframes", "0")]
        elif self.gop is Gop.LOW_DELAY_P:
            opts += [("keyint", str(self.keyint)), ("bframes", "0")]
            if self.constant_qp:
                opts += [("rc-lookahead", "0"), ("scenecut", "0")]
        else:
            opts += [("keyint", str(self.keyint))]
            if self.constant_qp:
                opts += [("b-adapt", "0")]  # a fixed GOP of the preset's B-frames, as in HM's RA
        if self.sao is not None:
            opts.append(("sao", "1" if self.sao else "0"))
        if self.wpp is not None:
            opts.append(("wpp", "1" if self.wpp else "0"))
        if self.scaling_lists is not None:
            opts.append(("scaling-list", str(self.scaling_lists.file(cache_root() / "scaling-lists"))))
        opts.extend(self.options)
        return opts

    def layout(self, library: X265Library | None = None) -> GopLayout:
        """The GOP this configuration codes (:class:`GopLayout`), read from x265's own parameters.

        Raises:
            InvalidInputError: x265 rejected the preset or an option.
        """
        x265 = library or load_library()
        ffi, lib = x265.ffi, x265.lib
        param = lib.x265_param_alloc()
        if param == ffi.NULL:
            raise CodecError("x265 could not allocate its parameter structure")
        try:
            _apply(self, param, x265)
            bframes = int(lib.semrl_param_bframes(param))
            pyramid = bframes >= 2 and bool(lib.semrl_param_bpyramid(param))
            return GopLayout(int(lib.semrl_param_keyint(param)), bframes, pyramid)
        finally:
            lib.x265_param_free(param)

    def cli_args(self) -> list[str]:
        """Command-line arguments giving the x265 CLI exactly this configuration."""
        args = ["--preset", self.preset]
        for name, value in self.x265_options():
            if name in _CLI_FLAGS:
                args.append(f"--{name}" if value == "1" else f"--no-{name}")
            else:
                args += [f"--{name}", value]
        return args


def _apply(config: EncoderConfig, param: Any, x265: X265Library) -> None:
    """Set an x265 parameter structure to a configuration: its preset, then its options in order."""
    ffi, lib = x265.ffi, x265.lib
    if lib.x265_param_default_preset(param, config.preset.encode(), ffi.NULL) < 0:
        raise InvalidInputError(f"x265 rejected preset {config.preset!r}")
    for name, value in config.x265_options():
        code = lib.x265_param_parse(param, name.encode(), value.encode())
        if code != 0:
            reason = "unknown option" if code == -1 else "bad value"
            raise InvalidInputError(f"x265 option {name}={value!r}: {reason}")


def psnr_from_sse(sse: float, pixels: int) -> float:
    """8-bit PSNR in dB of a squared error summed over ``pixels`` samples (inf when it is 0)."""
    return math.inf if sse == 0 else 10 * math.log10(255.0**2 * pixels / sse)


@dataclass(frozen=True, eq=False)
class EncodedFrame:
    """One coded picture and its exact statistics.

    The bits add up exactly: ``ctu_bits.sum() + overhead_bits == bits``.

    Attributes:
        poc: picture order count (display order).
        pts: the presentation timestamp given with the input frame.
        slice_type: "I", "P" or "B".
        nal: the access unit's NAL units, Annex-B with start codes.
        ctu_bits: exact CABAC bits of each CTU (SAO syntax included), shape (rows, cols).
        ctu_qp: area-average luma QP of each CTU.
        ctu_qp_coded: average QP of the CUs of each CTU with coded residual; NaN if none.
        ctu_distortion: luma sum of squared errors of the final reconstruction per CTU, over the
            picture (not the rows and columns x265 pads it with up to a multiple of its smallest CU).
        header_bits: parameter sets, SEI, start codes, NAL and slice headers.
        termination_bits: end-of-slice/substream bins, CABAC flush, byte alignment.
        emulation_bits: emulation-prevention bytes inside slice NAL units.
        recon: the decoder's picture (after deblocking and SAO).
    """

    poc: int
    pts: int
    slice_type: str
    nal: bytes
    ctu_bits: npt.NDArray[np.uint32]
    ctu_qp: npt.NDArray[np.float64]
    ctu_qp_coded: npt.NDArray[np.float64]
    ctu_distortion: npt.NDArray[np.uint64]
    header_bits: int
    termination_bits: int
    emulation_bits: int
    recon: Yuv420 = field(repr=False)

    @property
    def bits(self) -> int:
        """Size of the access unit in bits, exactly as written to a file."""
        return 8 * len(self.nal)

    @property
    def overhead_bits(self) -> int:
        """Bits outside any CTU: headers, termination and emulation prevention."""
        return self.header_bits + self.termination_bits + self.emulation_bits

    @property
    def psnr_y(self) -> float:
        """Luma PSNR of the reconstruction in dB (inf when lossless)."""
        return psnr_from_sse(float(self.ctu_distortion.sum()), self.recon.width * self.recon.height)


_SLICE_TYPES = {1: "I", 2: "I", 3: "P", 4: "B", 5: "B"}


class Encoder:
    """The patched x265 encoder, in-process. Owns its x265 handle; use as a context manager.

    Example:
        >>> with Encoder(EncoderConfig(416, 240, qp=32, gop="ldp")) as encoder:
        ...     for frame, offsets in zip(frames, qp_maps):
        ...         for coded in encoder.encode(frame, offsets):
        ...             stream.write(coded.nal)
        ...     for coded in encoder.flush():
        ...         stream.write(coded.nal)
    """

    def __init__(self, config: EncoderConfig, library: X265Library | None = None) -> None:
        """Opens an encoder.

        Args:
            config: the encoding configuration.
            library: the loaded x265 (default: loaded on first use).

        Raises:
            CodecLibraryError: the patched library is missing or not the expected build.
            InvalidInputError: x265 rejected an option (the message names it).
            CodecError: x265 failed to open an encoder.
        """
        self.config = config
        self._x265 = library or load_library()
        ffi, lib = self._x265.ffi, self._x265.lib
        self._ffi, self._lib = ffi, lib
        self._encoder: Any = ffi.NULL
        self._param = lib.x265_param_alloc()
        self._pic_in = lib.x265_picture_alloc()
        self._pic_out = lib.x265_picture_alloc()
        if self._param == ffi.NULL or self._pic_in == ffi.NULL or self._pic_out == ffi.NULL:
            self._free()
            raise CodecError("x265 could not allocate its parameter or picture structures")
        try:
            self._configure()
        except BaseException:
            self._free()
            raise
        self.ctu_shape = ctu_grid(config.width, config.height)
        self.block_shape = ctu_grid(config.width, config.height, BLOCK_SIZE)
        count = self.ctu_shape[0] * self.ctu_shape[1]
        self._ctu_bits = np.zeros(count, np.uint32)
        self._ctu_qp = np.zeros(count, np.float64)
        self._ctu_qp_coded = np.zeros(count, np.float64)
        self._ctu_distortion = np.zeros(count, np.uint64)
        lib.x265_picture_init(self._param, self._pic_out)
        out = self._pic_out
        out.ctuBits = ffi.from_buffer("uint32_t[]", self._ctu_bits)
        out.ctuQp = ffi.from_buffer("double[]", self._ctu_qp)
        out.ctuQpCoded = ffi.from_buffer("double[]", self._ctu_qp_coded)
        out.ctuDistortion = ffi.from_buffer("uint64_t[]", self._ctu_distortion)
        out.ctuCapacity = count
        self._pp_nal = ffi.new("x265_nal **")
        self._pi_nal = ffi.new("uint32_t *")
        self._frames_in = 0
        # x265 pads a picture to a multiple of its smallest CU and its per-CTU distortion counts the padding's error:
        # then the source luma of the partial CTU row and column is kept until the frame comes out, to count them.
        smallest = int(self._param.minCUSize)
        self._padded = config.width % smallest != 0 or config.height % smallest != 0
        self._edges: dict[int, tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]] = {}

    def _configure(self) -> None:
        ffi, lib, config = self._ffi, self._lib, self.config
        _apply(config, self._param, self._x265)
        self._encoder = lib.x265_encoder_open(self._param)
        if self._encoder == ffi.NULL:
            raise CodecError(f"x265_encoder_open failed for {config}; rerun with log_level='info' to see x265's reason")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return bool(self._encoder == self._ffi.NULL)

    def encode(
        self, frame: Any, qp_offsets: npt.ArrayLike | None = None, frame_qp: int | None = None
    ) -> list[EncodedFrame]:
        """Encodes one frame.

        Args:
            frame: a :class:`Yuv420`, an (H, W, 3) uint8 RGB array, or a (Y, U, V) tuple.
            qp_offsets: QP offsets per CTU, shape ``ctu_shape``, or per 16x16 block, shape
                ``block_shape``; None for none. In constant-QP mode each CU's QP is the base QP
                (or ``frame_qp``) plus the offset of its quantisation group, which must stay in 0..51.
            frame_qp: Constant-QP mode only: this frame's QP (its slice QP) instead of the
                configured base, the offsets then relative to it. x265 codes CUs far from the
                slice QP dearly (measured: low-delay P frames with every CU 19 above it took 2.2x
                the bits of the same QPs as the slice QP), so a frame whose QPs all lie far from
                the base is better given its own.

        Returns:
            The frames the encoder completed: exactly this frame for all-intra and low-delay P,
            zero or more (in coding order) for random access.

        Raises:
            EncoderClosedError: after :meth:`close`.
            InvalidInputError: wrong frame type, dtype, size or offsets (named in the message).
            CodecError: x265 reported an encoding failure.
        """
        self._check_open()
        picture = as_yuv420(frame)
        if (picture.width, picture.height) != (self.config.width, self.config.height):
            raise InvalidInputError(
                f"frame is {picture.width}x{picture.height}, the encoder was opened for "
                f"{self.config.width}x{self.config.height}; open a new encoder for another size"
            )
        whole = isinstance(frame_qp, (int, np.integer)) and QP_MIN <= frame_qp <= QP_MAX
        if frame_qp is not None and not (self.config.constant_qp and whole):
            raise InvalidInputError(
                f"frame_qp must be a whole QP in {QP_MIN}..{QP_MAX} for an encoder in constant-QP mode; "
                f"got {frame_qp!r}" + ("" if self.config.constant_qp else " (this encoder runs x265's rate control)")
            )
        base = self.config.qp if frame_qp is None else int(frame_qp)
        blocks = None if qp_offsets is None else self._block_offsets(qp_offsets, base)
        ffi, pic = self._ffi, self._pic_in
        self._lib.x265_picture_init(self._param, pic)
        planes = [np.ascontiguousarray(p) for p in picture.planes]
        keep = [ffi.from_buffer(p) for p in planes]
        for i, plane in enumerate(planes):
            pic.planes[i] = keep[i]
            pic.stride[i] = plane.strides[0]
        pic.pts = self._frames_in
        if frame_qp is not None:
            pic.forceqp = base + 1  # x265's convention: 0 means not forced
        if blocks is not None:
            keep.append(ffi.from_buffer("float[]", blocks))
            pic.quantOffsets = keep[-1]
        if self._padded:
            top, left = _partial_ctu_start(picture.height), _partial_ctu_start(picture.width)
            self._edges[self._frames_in] = (picture.y[top:].copy(), picture.y[:, left:].copy())
        # x265 copies the picture and its offsets during this call, so ``keep`` may go after it.
        out = self._call(pic)
        self._frames_in += 1
        return out

    def flush(self) -> list[EncodedFrame]:
        """Drains the frames still inside the encoder (random access, lookahead)."""
        self._check_open()
        frames: list[EncodedFrame] = []
        while True:
            out = self._call(self._ffi.NULL)
            if not out:
                return frames
            frames.extend(out)

    def encode_all(self, frames: Iterator[Any] | list[Any], qp_maps: Any = None) -> list[EncodedFrame]:
        """Encodes a sequence of frames (with an optional sequence of offset maps) and flushes."""
        maps = iter(qp_maps) if qp_maps is not None else None
        coded: list[EncodedFrame] = []
        for frame in frames:
            coded += self.encode(frame, next(maps) if maps is not None else None)
        return coded + self.flush()

    def _call(self, pic_in: Any) -> list[EncodedFrame]:
        code = self._lib.x265_encoder_encode(self._encoder, self._pp_nal, self._pi_nal, pic_in, self._pic_out)
        if code < 0:
            raise CodecError(f"x265_encoder_encode failed with code {code} on input frame {self._frames_in}")
        if code == 0:
            return []
        return [self._collect()]

    def _collect(self) -> EncodedFrame:
        ffi, out = self._ffi, self._pic_out
        nals = self._pp_nal[0]
        # NAL payloads are valid only until the next encode call: copy them now.
        nal = b"".join(ffi.buffer(nals[i].payload, nals[i].sizeBytes)[:] for i in range(self._pi_nal[0]))
        width, height = self.config.width, self.config.height
        recon = Yuv420(
            self._plane(out.planes[0], out.stride[0], width, height),
            self._plane(out.planes[1], out.stride[1], width // 2, height // 2),
            self._plane(out.planes[2], out.stride[2], width // 2, height // 2),
        )
        if out.ctuCount != self._ctu_bits.size:
            raise CodecError(f"x265 reported {out.ctuCount} CTUs, expected {self._ctu_bits.size}")
        qp_coded = self._ctu_qp_coded.copy()
        qp_coded[qp_coded < 0] = np.nan
        distortion = self._ctu_distortion.reshape(self.ctu_shape).copy()
        return EncodedFrame(
            poc=int(out.poc),
            pts=int(out.pts),
            slice_type=_SLICE_TYPES.get(int(out.sliceType), "?"),
            nal=nal,
            ctu_bits=self._ctu_bits.reshape(self.ctu_shape).copy(),
            ctu_qp=self._ctu_qp.reshape(self.ctu_shape).copy(),
            ctu_qp_coded=qp_coded.reshape(self.ctu_shape),
            ctu_distortion=self._exact_edges(distortion, int(out.pts), recon.y),
            header_bits=int(out.headerBits),
            termination_bits=int(out.terminationBits),
            emulation_bits=int(out.emulationBits),
            recon=recon,
        )

    def _exact_edges(
        self, distortion: npt.NDArray[np.uint64], pts: int, recon: npt.NDArray[np.uint8]
    ) -> npt.NDArray[np.uint64]:
        """``distortion`` with the partial CTUs' squared error counted over the picture only (not x265's padding)."""
        if not self._padded:
            return distortion
        bottom, right = self._edges.pop(pts)
        if bottom.size:
            error = (bottom.astype(np.int64) - recon[-bottom.shape[0] :].astype(np.int64)) ** 2
            distortion[-1, :] = _ctu_sums(error.sum(axis=0))
        if right.size:
            error = (right.astype(np.int64) - recon[:, -right.shape[1] :].astype(np.int64)) ** 2
            distortion[:, -1] = _ctu_sums(error.sum(axis=1))
        return distortion

    def _plane(self, pointer: Any, stride: int, width: int, height: int) -> npt.NDArray[np.uint8]:
        raw = np.frombuffer(self._ffi.buffer(pointer, stride * height), dtype=np.uint8)
        return raw.reshape(height, stride)[:, :width].copy()

    def _block_offsets(self, qp_offsets: npt.ArrayLike, base: int | None = None) -> npt.NDArray[np.float32]:
        offsets = np.asarray(qp_offsets)
        if offsets.dtype.kind not in "iuf":
            raise InvalidInputError(f"QP offsets must be numbers, got dtype {offsets.dtype}")
        per_ctu = offsets.shape == self.ctu_shape  # then constant over every quantisation group (at most a CTU)
        if per_ctu:
            blocks = ctu_to_blocks(offsets, self.block_shape)
        elif offsets.shape == self.block_shape:
            blocks = offsets
        else:
            raise InvalidInputError(
                f"QP offsets must have the CTU grid shape {self.ctu_shape} or the 16x16 block grid shape "
                f"{self.block_shape} for {self.config.width}x{self.config.height}; got {offsets.shape}"
            )
        blocks = np.ascontiguousarray(blocks, dtype=np.float32)
        if offsets.dtype.kind == "f" and not np.isfinite(blocks).all():
            raise InvalidInputError("QP offsets contain NaN or infinity")
        if self.config.constant_qp:
            qp = self.config.qp if base is None else base
            low, high = float(blocks.min()) + qp, float(blocks.max()) + qp
            if low < QP_MIN or high > QP_MAX:
                raise InvalidInputError(f"base QP {qp} + offsets spans {low:g}..{high:g}, outside {QP_MIN}..{QP_MAX}")
            if not per_ctu:
                self._check_constant_per_group(blocks)
        elif np.abs(blocks).max() > QP_MAX:
            raise InvalidInputError(f"QP offsets must lie in -{QP_MAX}..{QP_MAX}")
        return blocks

    def _check_constant_per_group(self, blocks: npt.NDArray[np.float32]) -> None:
        group = self.config.qg_size // BLOCK_SIZE
        if group == 1:
            return
        rows, cols = blocks.shape
        padded = np.pad(blocks, ((0, -rows % group), (0, -cols % group)), mode="edge")
        groups = padded.reshape(padded.shape[0] // group, group, padded.shape[1] // group, group)
        if not (groups == groups[:, :1, :, :1]).all():
            raise InvalidInputError(
                f"QP offsets vary inside {self.config.qg_size}x{self.config.qg_size} quantisation groups, where "
                f"x265 would average them; give per-CTU offsets or open the encoder with qg_size=16"
            )

    def _check_open(self) -> None:
        if self.closed:
            raise EncoderClosedError("this encoder has been closed; open a new Encoder")

    def close(self) -> None:
        """Frees the x265 encoder. Idempotent; frames not flushed are discarded."""
        self._free()

    def _free(self) -> None:
        ffi, lib = self._ffi, self._lib
        if self._encoder != ffi.NULL:
            lib.x265_encoder_close(self._encoder)
            self._encoder = ffi.NULL
        for name in ("_pic_in", "_pic_out"):
            pic = getattr(self, name, ffi.NULL)
            if pic != ffi.NULL:
                pic.ctuBits = pic.ctuQp = pic.ctuQpCoded = pic.ctuDistortion = ffi.NULL
                lib.x265_picture_free(pic)
                setattr(self, name, ffi.NULL)
        if getattr(self, "_param", ffi.NULL) != ffi.NULL:
            lib.x265_param_free(self._param)
            self._param = ffi.NULL

    def __enter__(self) -> Encoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_ffi"):
            self._free()

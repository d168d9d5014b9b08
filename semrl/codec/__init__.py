"""The codec layer: the patched x265, in-process.

Imports neither torch, gymnasium nor ultralytics. The x265 library is loaded at first use.
"""

from semrl.codec.bitstream import AnnexBWriter
from semrl.codec.encoder import (
    BLOCK_SIZE,
    CTU_SIZE,
    QP_MAX,
    QP_MIN,
    EncodedFrame,
    Encoder,
    EncoderConfig,
    Gop,
    GopLayout,
    Reduce,
    check_preset,
    ctu_grid,
    ctu_to_blocks,
    pool_map,
    psnr_from_sse,
    require_one_ctu,
)
from semrl.codec.library import X265Build, load_library
from semrl.codec.picture import Yuv420, rgb_luma
from semrl.codec.scaling import ScalingLists

__all__ = [
    "BLOCK_SIZE",
    "CTU_SIZE",
    "QP_MAX",
    "QP_MIN",
    "AnnexBWriter",
    "EncodedFrame",
    "Encoder",
    "EncoderConfig",
    "Gop",
    "GopLayout",
    "Reduce",
    "ScalingLists",
    "X265Build",
    "Yuv420",
    "check_preset",
    "ctu_grid",
    "ctu_to_blocks",
    "load_library",
    "pool_map",
    "psnr_from_sse",
    "require_one_ctu",
    "rgb_luma",
]

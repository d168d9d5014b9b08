"""semrl: task-driven semantic video coding with a learned per-CTU QP policy on patched x265."""

from semrl.errors import (
    CodecError,
    CodecLibraryError,
    EncoderClosedError,
    InvalidInputError,
    SemrlError,
)

__version__ = "0.1.0"

__all__ = [
    "CodecError",
    "CodecLibraryError",
    "EncoderClosedError",
    "InvalidInputError",
    "SemrlError",
    "__version__",
]

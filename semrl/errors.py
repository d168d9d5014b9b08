"""The error hierarchy shared by every layer of semrl.

Each error subclasses both :class:`SemrlError` and the builtin a caller would naturally catch,
so ``except ValueError`` and ``except SemrlError`` both work.
"""

from __future__ import annotations


class SemrlError(Exception):
    """Base class of every error semrl raises on purpose."""


class InvalidInputError(SemrlError, ValueError):
    """An argument, frame, QP map or file content is malformed (the message names it)."""


class InputNotFoundError(SemrlError, FileNotFoundError):
    """An input file or folder does not exist."""


class CodecLibraryError(SemrlError, ImportError):
    """The patched x265 library is missing, cannot be loaded, or is not the build semrl expects."""


class CodecError(SemrlError, RuntimeError):
    """The x265 encoder reported a failure."""


class EncoderClosedError(CodecError):
    """An encoder was used after :meth:`close`."""


class AssetNotFoundError(SemrlError, FileNotFoundError):
    """Weights, a dataset or the assets folder do not exist (the message names the path)."""


class MediaToolError(SemrlError, RuntimeError):
    """FFmpeg or ffprobe is missing or failed."""


class AudioError(MediaToolError):
    """A video's audio track could not be read, or not carried into the output."""


class PolicyMismatchError(InvalidInputError):
    """A policy does not fit what it is used for (task, spaces, encoder or weights)."""


class FrameTooSmallError(InvalidInputError):
    """Frames smaller than one 64x64 CTU on a side: x265 cannot code them (the message says how to scale)."""


class InputWarning(UserWarning):
    """Something was wrong with an input, but the work went on (frames lost to a damaged file)."""

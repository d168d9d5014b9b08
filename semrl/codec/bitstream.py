"""Writing Annex-B HEVC files atomically."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from semrl.errors import InvalidInputError
from semrl.files import atomic_output


class _AbortError(Exception):
    """Thrown into :func:`atomic_output` to discard the temporary file."""


class AnnexBWriter:
    """Writes an Annex-B ``.hevc`` stream to a temporary file, renamed into place on success.

    If the block raises (or :meth:`abort` is called), the temporary file is removed and no
    partial output is left behind.

    Example:
        >>> with AnnexBWriter("out.hevc") as stream:
        ...     for coded in encoder.encode_all(frames):
        ...         stream.write(coded.nal)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Opens the temporary file next to ``path``.

        Raises:
            InvalidInputError: the output folder does not exist or is not writable.
        """
        self.path = Path(path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise InvalidInputError(f"output folder {folder} does not exist")
        self._output: AbstractContextManager[Path] | None = atomic_output(self.path)
        try:
            self._temp = self._output.__enter__()
            self._file = self._temp.open("wb")
        except OSError as error:
            self._finish(error)
            raise InvalidInputError(f"cannot write to {folder}: {error.strerror}") from error
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        """Appends NAL bytes."""
        self._file.write(data)
        self.bytes_written += len(data)

    def commit(self) -> Path:
        """Flushes, syncs and renames the stream into place; returns the final path."""
        if self._output is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._finish(None)
        return self.path

    def abort(self) -> None:
        """Discards everything written."""
        if self._output is not None:
            self._file.close()
            self._finish(_AbortError())

    def _finish(self, error: BaseException | None) -> None:
        """Ends :func:`atomic_output`: renames the file into place, or (given an error) removes it."""
        output, self._output = self._output, None
        if output is not None:
            output.__exit__(type(error) if error else None, error, None)

    def __enter__(self) -> AnnexBWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

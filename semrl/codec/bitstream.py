"""Writing Annex-B HEVC files atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

from semrl.errors import InvalidInputError


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
        try:
            handle, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=folder)
        except OSError as error:
            raise InvalidInputError(f"cannot write to {folder}: {error.strerror}") from error
        self._file = os.fdopen(handle, "wb")
        self._temp = Path(temp)
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        """Appends NAL bytes."""
        self._file.write(data)
        self.bytes_written += len(data)

    def commit(self) -> Path:
        """Flushes, syncs and renames the stream into place; returns the final path."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        """Discards everything written."""
        if not self._file.closed:
            self._file.close()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> AnnexBWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

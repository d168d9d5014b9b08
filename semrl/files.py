"""Writing files atomically: a temporary file in the target's folder, then ``os.replace``.

A reader never sees a half-written file, and a failure (or Ctrl-C) leaves the old file, or none.
Every file semrl writes goes through :func:`atomic_output` (for writers that want a path, such as
``np.savez`` or a model's ``save``) or :func:`atomic_write` (bytes or text); an output of many
files (a dataset) through :func:`atomic_folder`.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from semrl.errors import InvalidInputError


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, suffix: str = ".part", mode: int = 0o666) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on normal exit it becomes ``path``, otherwise it is removed.

    Args:
        path: The file to write (its folder is created).
        suffix: The temporary file's suffix (some writers, e.g. ``np.savez``, add one unless it is theirs).
        mode: Permissions of the result before the process's umask, as ``open`` would create it
            (``mkstemp`` makes 0600 whatever the umask).
    """
    mode &= ~current_umask()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Writes ``data`` (text as UTF-8) to ``path`` atomically, creating its folder; returns the path."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def json_text(value: Any, indent: int | None = 1) -> str:
    """``value`` as strict JSON text, ending in a newline: NaN and infinities (an undefined score) as null.

    Python's ``json`` writes them as ``NaN``, which other readers (JavaScript's, most strict parsers)
    refuse. NumPy scalars are written as the numbers they hold.
    """
    return json.dumps(_finite(value), indent=indent, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # a NumPy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a new empty folder beside ``path``; on normal exit it is renamed to ``path``, otherwise removed.

    A reader sees the whole folder or none. Its permissions are a new folder's under the umask
    (``mkdtemp`` makes 0700 whatever the umask).

    Raises:
        FileExistsError: ``path`` exists: a folder is written whole, never into or over another.
    """
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"{target} exists; give a new folder (it is written whole or not at all)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_partial_writes(path: str | os.PathLike[str], *, suffix: str = ".part") -> list[Path]:
    """Removes the temporary files :func:`atomic_output` left beside ``path`` when its process was killed.

    A writer killed by a signal (a broken worker pool terminates its other workers) runs no clean-up;
    call this once no process can still be writing ``path``.

    Returns:
        The files removed.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return []
    leftovers = [p for p in target.parent.glob(f".{glob.escape(target.name)}.*{suffix}") if p.is_file()]
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_can_create(folder: str | os.PathLike[str], what: str) -> None:
    """Fails unless a file can be made in ``folder``, or in the folder it would be made in, before any work.

    A file is made and removed there, as an atomic write makes its temporary file: permission bits
    alone let root through where nothing can be created (``/proc``, a read-only mount).

    Args:
        folder: Where the output goes; a folder that does not exist yet is judged by the nearest
            one above it that does (it will be made there).
        what: How messages name the output (``output``, ``--report``, ``-o``).

    Raises:
        InvalidInputError: ``folder`` or a folder above it is a file, or nothing can be made there.
    """
    target = Path(folder)
    existing = target.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(f"{what} {target}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".semrl-", suffix=".probe")
    except OSError as e:
        raise InvalidInputError(f"{what} folder {target} is not writable ({e.strerror})") from e
    os.close(fd)
    os.unlink(probe)

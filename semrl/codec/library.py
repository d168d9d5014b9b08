"""Finding, checking and loading the patched x265 library (at first use, never at import)."""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from semrl.errors import CodecLibraryError
from semrl.paths import cache_root

PREFIX_ENV = "SEMRL_X265_PREFIX"
REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = "run scripts/setup.sh (or third_party/x265_patch/build.sh) and/or set SEMRL_X265_PREFIX"


def find_prefix() -> Path:
    """Locates the install prefix of the patched x265.

    Order: ``$SEMRL_X265_PREFIX``; the ``.x265`` link that ``scripts/setup.sh`` leaves in the
    repository.

    Raises:
        CodecLibraryError: if neither names an install with ``lib/libx265.so`` and ``x265.h``.
    """
    configured = os.environ.get(PREFIX_ENV)
    candidates = [Path(configured).expanduser()] if configured else [REPO_ROOT / ".x265"]
    for prefix in candidates:
        if (prefix / "lib" / "libx265.so").is_file() and (prefix / "include" / "x265.h").is_file():
            return prefix.resolve()
    where = f"{PREFIX_ENV}={configured}" if configured else f"{REPO_ROOT / '.x265'}"
    raise CodecLibraryError(f"patched x265 not found at {where}: {SETUP_HINT}")


@dataclass(frozen=True)
class X265Build:
    """What is known about the loaded x265 build.

    Attributes:
        version: x265's own version string.
        build_number: the API build number (``X265_BUILD``).
        prefix: install prefix.
        library_path: the shared library actually mapped into this process.
        patch_hash: sha256 (first 16 hex digits) of the patch series the build was made with.
    """

    version: str
    build_number: int
    prefix: Path
    library_path: Path
    patch_hash: str

    @property
    def key(self) -> str:
        """``version:build_number:patch_hash``: what cache keys and worker identities name the build by."""
        return f"{self.version}:{self.build_number}:{self.patch_hash}"


@dataclass(frozen=True)
class X265Library:
    """The loaded extension: ``ffi``, ``lib`` and the checked build description."""

    ffi: Any
    lib: Any
    build: X265Build


def patch_hash(folder: Path) -> str:
    """Hash of the ``*.patch`` files in ``folder`` (sorted by name), 16 hex digits."""
    digest = hashlib.sha256()
    patches = sorted(folder.glob("*.patch"))
    for patch in patches:
        digest.update(patch.name.encode())
        digest.update(patch.read_bytes())
    return digest.hexdigest()[:16] if patches else "none"


def _mapped_library() -> Path | None:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        path = line.split()[-1]
        if "libx265" in Path(path).name:
            return Path(path)
    return None


@functools.lru_cache(maxsize=1)
def load_library() -> X265Library:
    """Loads the patched x265 once per process and checks it is the build semrl was made for.

    Raises:
        CodecLibraryError: missing build, a compile failure, or a library whose API build number
            or struct sizes differ from the patched header's (e.g. the system's libx265).
    """
    from semrl.codec import _ffi

    prefix = find_prefix()
    try:
        module: ModuleType = _ffi.load_extension(prefix, cache_root())
    except Exception as error:  # cffi raises several unrelated types on a failed build/load
        raise CodecLibraryError(f"cannot build or load the x265 binding for {prefix}: {error}") from error
    ffi, lib = module.ffi, module.lib
    err = ffi.new("int *")
    api = lib.x265_api_query(8, lib.X265_BUILD, err)
    if api == ffi.NULL:
        raise CodecLibraryError(
            f"{prefix}: x265_api_query(build {lib.X265_BUILD}, 8 bit) failed with code {err[0]}: {SETUP_HINT}"
        )
    if api.sizeof_picture != lib.semrl_sizeof_picture() or api.sizeof_param != lib.semrl_sizeof_param():
        raise CodecLibraryError(
            f"the loaded libx265 has struct sizes picture={api.sizeof_picture} param={api.sizeof_param}, "
            f"the patched header {lib.semrl_sizeof_picture()} and {lib.semrl_sizeof_param()}: "
            f"an unpatched libx265 was loaded instead of {prefix / 'lib'}; {SETUP_HINT}"
        )
    library_path = _mapped_library() or prefix / "lib" / "libx265.so"
    build = X265Build(
        version=ffi.string(api.version_str).decode(),
        build_number=int(api.api_build_number),
        prefix=prefix,
        library_path=library_path,
        patch_hash=patch_hash(prefix),
    )
    return X265Library(ffi=ffi, lib=lib, build=build)

"""The C side of the codec layer: cffi declarations and the build of the API-mode extension.

The extension is compiled against the *patched* ``x265.h`` of the install prefix, so the C
compiler lays out ``x265_picture`` with the patch's fields, and it links the patched
``libx265`` with an rpath: the system's own libx265 can never be picked up instead.
It is built on first use into the semrl cache, keyed by a hash of these declarations, the header
and the library, and loaded from there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from semrl.files import atomic_output

CDEF = """
#define X265_BUILD ...
#define X265_MAJOR_VERSION ...
#define X265_TYPE_AUTO ...
#define X265_TYPE_IDR ...
#define X265_TYPE_I ...
#define X265_TYPE_P ...
#define X265_TYPE_BREF ...
#define X265_TYPE_B ...
#define X265_CSP_I420 ...

typedef struct {
    int minCUSize;
    ...;
} x265_param;
typedef ... x265_encoder;

typedef struct {
    uint32_t type;
    uint32_t sizeBytes;
    uint8_t* payload;
} x265_nal;

typedef struct {
    double qp;
    uint64_t bits;
    int poc;
    char sliceType;
    ...;
} x265_frame_stats;

typedef struct {
    int64_t pts;
    int64_t dts;
    void* planes[3];
    int stride[3];
    int bitDepth;
    int sliceType;
    int poc;
    int colorSpace;
    int forceqp;
    float* quantOffsets;
    x265_frame_stats frameData;
    uint32_t* ctuBits;
    double* ctuQp;
    double* ctuQpCoded;
    uint64_t* ctuDistortion;
    uint32_t ctuCapacity;
    uint32_t ctuCount;
    uint64_t headerBits;
    uint64_t terminationBits;
    uint64_t emulationBits;
    uint64_t totalBits;
    ...;
} x265_picture;

typedef struct {
    int api_major_version;
    int api_build_number;
    int sizeof_param;
    int sizeof_picture;
    int bit_depth;
    const char* version_str;
    const char* build_info_str;
    ...;
} x265_api;

const x265_api* x265_api_query(int bit_depth, int api_version, int* err);
x265_param* x265_param_alloc(void);
void x265_param_free(x265_param*);
int x265_param_default_preset(x265_param*, const char* preset, const char* tune);
int x265_param_parse(x265_param*, const char* name, const char* value);
x265_picture* x265_picture_alloc(void);
void x265_picture_free(x265_picture*);
void x265_picture_init(x265_param*, x265_picture*);
x265_encoder* x265_encoder_open(x265_param*);
int x265_encoder_encode(x265_encoder*, x265_nal** pp_nal, uint32_t* pi_nal,
                        x265_picture* pic_in, x265_picture* pic_out);
void x265_encoder_close(x265_encoder*);
extern const char* x265_version_str;

size_t semrl_sizeof_picture(void);
size_t semrl_sizeof_param(void);
int semrl_param_bframes(x265_param*);
int semrl_param_bpyramid(x265_param*);
int semrl_param_keyint(x265_param*);
"""

SOURCE = """
#include <stdint.h>
#include "x265.h"
static size_t semrl_sizeof_picture(void) { return sizeof(x265_picture); }
static size_t semrl_sizeof_param(void) { return sizeof(x265_param); }
static int semrl_param_bframes(x265_param* p) { return p->bframes; }
static int semrl_param_bpyramid(x265_param* p) { return p->bBPyramid; }
static int semrl_param_keyint(x265_param* p) { return p->keyframeMax; }
"""

MODULE_PREFIX = "_semrl_x265"


def _build_key(prefix: Path) -> str:
    digest = hashlib.sha256()
    digest.update(CDEF.encode())
    digest.update(SOURCE.encode())
    digest.update(str(prefix.resolve()).encode())
    digest.update((prefix / "include" / "x265.h").read_bytes())
    library = prefix / "lib" / "libx265.so"
    stat = library.stat()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def load_extension(prefix: Path, cache_dir: Path) -> ModuleType:
    """Builds (once) and imports the cffi extension for the x265 install at ``prefix``.

    Args:
        prefix: install prefix of the patched x265 (with ``include/x265.h`` and ``lib/``).
        cache_dir: folder where compiled extensions are kept.

    Returns:
        The extension module, with ``ffi`` and ``lib`` attributes.
    """
    key = _build_key(prefix)
    name = f"{MODULE_PREFIX}_{key}"
    target_dir = cache_dir / "cffi" / key
    built = next(target_dir.glob(f"{name}*.so"), None) if target_dir.is_dir() else None
    if built is None:
        built = _compile(prefix, name, target_dir)
    spec = importlib.util.spec_from_file_location(name, built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(prefix: Path, name: str, target_dir: Path) -> Path:
    from cffi import FFI  # build-time dependency only

    ffi = FFI()
    ffi.cdef(CDEF)
    lib_dir = str((prefix / "lib").resolve())
    ffi.set_source(
        name,
        SOURCE,
        include_dirs=[str((prefix / "include").resolve())],
        library_dirs=[lib_dir],
        libraries=["x265"],
        extra_link_args=[f"-Wl,-rpath,{lib_dir}", "-Wl,--disable-new-dtags"],
    )
    target_dir.mkdir(parents=True, exist_ok=True)
    # Compile in a private folder and move the result in: concurrent first uses never see a
    # half-written extension.
    with tempfile.TemporaryDirectory(dir=target_dir) as work:
        built = Path(ffi.compile(tmpdir=work, verbose=False))
        final = target_dir / built.name
        with atomic_output(final, mode=0o777) as temporary:
            shutil.copyfile(built, temporary)
    return final

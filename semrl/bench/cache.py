"""The benchmark's cache: encodes (stream and statistics), task evaluations, analyses and policies' maps.

Files live under ``<semrl cache>/bench`` (or ``--cache-dir``), named by keys that hash everything
the content depends on: the picture's content hash, the encoder configuration, the offsets' hash,
the x265 version and patch hash, the task and the weights' sha256. A rerun therefore computes only
what changed, and :data:`BENCH_VERSION` is bumped when what an entry holds changes meaning.

A policy's maps are cached too when the policy names everything they depend on
(:func:`semrl.policy.offsets_identity`): a trading policy codes every picture several times on
trial before its map is known, and only the map says which encode to look up. Their keys also
hash semrl's own code (:func:`code_identity`), so a change to how any policy decides is never
read from an older run's maps.
"""

from __future__ import annotations

import ast
import functools
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.bench.items import Item, sha256_hex
from semrl.codec import EncoderConfig, load_library
from semrl.files import atomic_output, atomic_write

BENCH_VERSION = 1
"""Bumped when what a cache entry holds changes meaning."""

ANALYSIS_FORMAT = 2
"""Bumped when an analysis entry holds more (2: the objects' confidences); only analysis keys name it."""


KINDS = ("enc", "eval", "analysis", "policy")
"""The cache's folders: encodes, task evaluations, analyses of the originals, policies' maps."""


class Cache:
    """Files under ``root``: ``enc/<key>.hevc|.json``, and ``<kind>/<key>.npz`` for the other :data:`KINDS`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in KINDS:
            (root / sub).mkdir(parents=True, exist_ok=True)

    def stream(self, key: str) -> Path:
        """Path of an encode's Annex-B stream."""
        return self.root / "enc" / f"{key}.hevc"

    def get_json(self, key: str) -> dict[str, Any] | None:
        """An encode's statistics, or None."""
        p = self.root / "enc" / f"{key}.json"
        if not p.is_file() or not self.stream(key).is_file():
            return None
        data: dict[str, Any] = json.loads(p.read_text())
        return data

    def put_json(self, key: str, data: dict[str, Any]) -> None:
        """Store an encode's statistics atomically."""
        atomic_write(self.root / "enc" / f"{key}.json", json.dumps(data).encode())

    def has(self, kind: str, key: str) -> bool:
        """Whether arrays are stored under ``kind`` and ``key``."""
        return (self.root / kind / f"{key}.npz").is_file()

    def files(self) -> dict[str, bytes]:
        """Every entry's files, by path relative to the root (what a remote worker sends back)."""
        found = sorted(p for p in self.root.rglob("*") if p.is_file())
        return {p.relative_to(self.root).as_posix(): p.read_bytes() for p in found}

    def put_files(self, files: dict[str, bytes]) -> None:
        """Store entries another cache's :meth:`files` gave, each file atomically.

        Streams are written before the statistics that make an encode count as cached, so an
        interruption leaves no entry that looks whole and is not.

        Raises:
            ValueError: A path that is not an entry of a cache.
        """
        for name in sorted(files, key=lambda n: not n.endswith(".hevc")):
            kind, _, file = name.partition("/")
            if kind not in KINDS or not file or "/" in file or file.startswith("."):
                raise ValueError(f"not a cache entry: {name!r}")
            atomic_write(self.root / kind / file, files[name])

    def get_npz(self, kind: str, key: str) -> dict[str, NDArray[Any]] | None:
        """Arrays stored under ``kind`` (``eval``, ``analysis`` or ``policy``), or None."""
        p = self.root / kind / f"{key}.npz"
        if not p.is_file():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    def put_npz(self, kind: str, key: str, arrays: dict[str, NDArray[Any]]) -> None:
        """Store arrays atomically."""
        # np.savez appends ".npz" to a name without it, so the temporary name must end in it.
        with atomic_output(self.root / kind / f"{key}.npz", suffix=".tmp.npz") as temporary:
            np.savez_compressed(temporary, **arrays)  # type: ignore[arg-type]


def x265_key() -> tuple[str, dict[str, str]]:
    """Cache key part and description of the loaded x265 build."""
    build = load_library().build
    info = {"x265": build.version, "x265_build": str(build.build_number), "x265_patch_hash": build.patch_hash}
    return build.key, info


def encode_key(
    item: Item, config: EncoderConfig, offsets: list[NDArray[np.int32]] | None, x265: str, prefilter: str | None = None
) -> str:
    """Cache key of one encode: picture, encoder configuration, offsets, x265 build, pre-filter.

    Args:
        item: The picture or clip.
        config: The encoder configuration (its log level is left out).
        offsets: Per frame, the offsets given to the encoder; None for none.
        x265: The build's key part (:func:`x265_key`).
        prefilter: The fingerprint of what was done to the frames before x265 (None: nothing; the
            keys of such encodes are those they always had).
    """
    cfg = _config_part(config)
    off = sha256_hex(b"".join(o.astype(np.int8).tobytes() for o in offsets)) if offsets is not None else "none"
    parts: list[Any] = [BENCH_VERSION, item.digest, cfg, off, x265]
    if prefilter is not None:
        parts.append(prefilter)
    return sha256_hex(json.dumps(parts, sort_keys=True, default=str))


def _config_part(config: EncoderConfig) -> dict[str, Any]:
    """An encoder configuration as keys hash it (its log level left out)."""
    cfg = {k: v for k, v in config.__dict__.items() if k not in ("log_level",)}
    cfg["gop"] = str(config.gop.value)
    if config.scaling_lists is None:
        del cfg["scaling_lists"]  # flat: the keys encodes have always had
    else:
        cfg["scaling_lists"] = config.scaling_lists.tag
    return cfg


def eval_key(item: Item, enc_key: str, task: str, net_fingerprint: str) -> str:
    """Cache key of one task evaluation of an encode (or of ``reference``/``original``).

    Args:
        item: The picture or clip.
        enc_key: The encode's key, or ``reference`` / ``original`` for the uncoded frames.
        task: What the scores depend on besides the net (:attr:`semrl.bench.items.TaskSpec.scoring`).
        net_fingerprint: The task net's weights and sha256.
    """
    return sha256_hex(json.dumps([BENCH_VERSION, enc_key, task, net_fingerprint, item.label_digest,
                                  item.class_id, item.digest]))  # fmt: skip


def offsets_key(item: Item, config: EncoderConfig, point: float, x265: str, policy: str, analysis: str) -> str:
    """Cache key of a policy's maps for every frame of an item at one operating point.

    Args:
        item: The picture or clip.
        config: The encoder configuration the policy's trial codings (if any) use.
        point: The operating point the policy is given (a base QP, or a CRF value).
        x265: The build's key part (:func:`x265_key`): trial codings run on it.
        policy: The policy's :func:`semrl.policy.offsets_identity`.
        analysis: The key of the task net's analysis the policy is given (:func:`analysis_key`).
    """
    parts = [BENCH_VERSION, "offsets", item.digest, _config_part(config), float(point), x265, policy, analysis]
    return sha256_hex(json.dumps([*parts, code_identity()], sort_keys=True, default=str))


@functools.cache
def code_identity() -> str:
    """A hash of the code of semrl and its environments, and of the libraries its nets run on.

    What a policy decides depends on the code that runs it, which no fingerprint names: a cached
    map is read only by the very code (and torch and Ultralytics) that made it. The code is hashed
    as its syntax tree without docstrings, so editing a comment or a docstring keeps the maps.
    """
    import envs
    import semrl

    digest = []
    for source in (semrl, envs):
        root = Path(str(source.__file__)).parent
        digest += [f"{source.__name__}/{p.relative_to(root).as_posix()}:{_code_hash(p.read_text())}"
                   for p in sorted(root.rglob("*.py"))]  # fmt: skip
    for package in ("torch", "ultralytics", "numpy", "opencv-python"):  # the nets' and pictures' libraries
        try:
            digest.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            digest.append(f"{package}: absent")
    return sha256_hex("\n".join(digest))


def _code_hash(text: str) -> str:
    """A hash of Python source that comments, docstrings and layout do not change."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list) and statements and isinstance(statements[0], ast.stmt):
                kept = [s for s in statements if not _is_docstring(s)]
                setattr(node, field, kept or [ast.Pass()])
    return sha256_hex(ast.dump(tree))


def _is_docstring(statement: ast.stmt) -> bool:
    """Whether a statement is a bare string (a docstring, or an attribute's), which does nothing."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def analysis_key(item: Item, task: str, net_fingerprint: str) -> str:
    """Cache key of the task net's analysis of an item's original frames."""
    return sha256_hex(json.dumps([BENCH_VERSION, "analysis", ANALYSIS_FORMAT, task, net_fingerprint, item.digest]))

"""Where semrl finds detector weights and evaluation data, and how Ultralytics is kept offline.

The assets folder is named by the environment variable ``SEMRL_ASSETS``; without it, semrl uses
``../shared/assets`` relative to the repository root when that folder exists. The folder has the
layout ``models/<weights>.pt`` and ``datasets/<name>/``.

Weights are resolved to a local file when one exists; otherwise the bare name is handed to
Ultralytics, whose normal loading code downloads it (``YOLO("yolov8n.pt")``).

Every module that needs Ultralytics calls :func:`configure_ultralytics` and only then imports
``ultralytics`` inside a function, because Ultralytics reads its environment variables once, at
its first import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from semrl.errors import AssetNotFoundError, InvalidInputError
from semrl.files import atomic_output
from semrl.paths import cache_root

if TYPE_CHECKING:
    from ultralytics import YOLO  # type: ignore[attr-defined]

ASSETS_ENV = "SEMRL_ASSETS"
"""Environment variable naming the folder with ``models/`` and ``datasets/``."""


REPO_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT_ASSETS = REPO_ROOT.parent / "shared" / "assets"


def assets_root() -> Path | None:
    """Return the assets folder, or None when no such folder exists.

    Returns:
        ``$SEMRL_ASSETS`` if set (relative values are taken from the working directory), else
        ``../shared/assets`` next to the repository root when it exists, else None.

    Raises:
        AssetNotFoundError: ``SEMRL_ASSETS`` is set but names no folder.
    """
    env = os.environ.get(ASSETS_ENV)
    if env:
        root = Path(env).expanduser().resolve()
        if not root.is_dir():
            raise AssetNotFoundError(f"{ASSETS_ENV}={env}: assets folder not found: {root}")
        return root
    return _DEFAULT_ASSETS if _DEFAULT_ASSETS.is_dir() else None


def portable(text: str) -> str:
    """``text`` with the assets folder's path written as ``$SEMRL_ASSETS``, so a report reads alike on any machine."""
    try:
        root = assets_root()
    except AssetNotFoundError:
        return text
    return text if root is None else text.replace(str(root), f"${ASSETS_ENV}")


def local_path(text: str) -> Path:
    """Inverse of :func:`portable` for one path: ``$SEMRL_ASSETS/...`` under this machine's assets folder.

    Raises:
        AssetNotFoundError: ``text`` names the assets folder and this machine has none.
    """
    prefix = f"${ASSETS_ENV}"
    if not text.startswith(prefix):
        return Path(text)
    root = assets_root()
    if root is None:
        raise AssetNotFoundError(f"{text}: set {ASSETS_ENV} to the folder it names (no assets folder found)")
    return root / text[len(prefix) :].lstrip("/")


def _has_local_assets() -> bool:
    try:
        return assets_root() is not None
    except AssetNotFoundError:
        return False


def configure_ultralytics() -> None:
    """Set Ultralytics' environment so it neither writes outside semrl's cache nor goes online.

    Call before the first ``import ultralytics``. Values the user already set are kept.
    ``YOLO_OFFLINE=1`` is set only when a local assets folder exists, so that on a machine without
    one Ultralytics can still download weights by name. Idempotent.
    """
    config_dir = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_root() / "ultralytics")))
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    if _has_local_assets():
        os.environ.setdefault("YOLO_OFFLINE", "1")
    _install_fonts(config_dir / "Ultralytics")


def _install_fonts(font_dir: Path) -> None:
    # Ultralytics' annotator downloads Arial.ttf even offline unless a file of that name exists.
    wanted = [font_dir / "Arial.ttf", font_dir / "Arial.Unicode.ttf"]
    if all(p.is_file() for p in wanted):
        return
    source = _bundled_font()
    if source is None:
        return
    font_dir.mkdir(parents=True, exist_ok=True)
    for target in wanted:
        if not target.is_file():
            atomic_copy(source, target)


def _bundled_font() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    font = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None


def atomic_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in the target's folder."""
    with atomic_output(target) as temporary:
        shutil.copyfile(source, temporary)


def resolve_weights(weights: str | os.PathLike[str]) -> str:
    """Resolve a weights name or path to what ``YOLO(...)`` should be given.

    Args:
        weights: An existing file, or a bare name such as ``"yolov8n.pt"``.

    Returns:
        The file's path when it exists, else ``<assets>/models/<name>`` when that exists, else the
        bare name, which Ultralytics downloads.

    Raises:
        AssetNotFoundError: ``weights`` is a folder, has a folder part and no such file exists, or it is a bare
            name found nowhere that Ultralytics cannot download either (a typo: refused before
            Ultralytics goes online for it).
    """
    path = Path(weights).expanduser()
    if path.is_file():
        return str(path.resolve())
    if path.is_dir():
        raise AssetNotFoundError(f"weights not found: {path} is a folder; give a YOLO .pt checkpoint")
    if path.parent != Path("."):
        raise AssetNotFoundError(f"weights not found: {path}")
    root = assets_root()
    if root is not None and (root / "models" / path.name).is_file():
        return str(root / "models" / path.name)
    configure_ultralytics()
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if path.name not in GITHUB_ASSETS_NAMES:
        local = f", nor in {root / 'models'}" if root is not None else ""
        raise AssetNotFoundError(
            f"weights not found: {path.name} is not a file{local}, nor a model Ultralytics can download "
            f"(such as yolov8n.pt or yolo11n-seg.pt)"
        )
    return path.name


def resolve_dataset(name: str | os.PathLike[str]) -> Path:
    """Resolve a dataset name (``"coco-det"``) or folder to an existing folder.

    Raises:
        AssetNotFoundError: Neither the path nor ``<assets>/datasets/<name>`` exists.
    """
    path = Path(name).expanduser()
    if path.exists():
        return path.resolve()
    root = assets_root()
    if root is not None and (root / "datasets" / str(name)).exists():
        return root / "datasets" / str(name)
    where = root / "datasets" / str(name) if root is not None else path
    raise AssetNotFoundError(f"dataset not found: {where} (set {ASSETS_ENV})")


def load_yolo(weights: str | os.PathLike[str] = "yolov8n.pt") -> YOLO:
    """Load an Ultralytics model from local assets, or by name through Ultralytics' download.

    Args:
        weights: File path or bare weights name.

    Returns:
        The ``ultralytics.YOLO`` model.

    Raises:
        AssetNotFoundError: A path was given and it does not exist, or the name is neither local
            nor downloadable.
        InvalidInputError: The file is not a model Ultralytics loads (truncated, damaged, another
            kind of file).
    """
    configure_ultralytics()
    from ultralytics import YOLO  # type: ignore[attr-defined]

    resolved = resolve_weights(weights)
    try:
        model = YOLO(resolved)
    except FileNotFoundError as e:
        raise AssetNotFoundError(f"weights not found: {resolved} (set {ASSETS_ENV})") from e
    except Exception as e:  # a damaged or foreign file fails anywhere inside Ultralytics' loaders
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InvalidInputError(
            f"{resolved} is not an Ultralytics model semrl can load: truncated, damaged or another kind of "
            f"file ({type(e).__name__}{': ' + reason[:200] if reason else ''}); give a YOLO .pt checkpoint"
        ) from e
    import torch

    if not isinstance(model.model, torch.nn.Module):  # an export (ONNX, OpenVINO, ...) or a file of another kind
        raise InvalidInputError(f"{resolved} is not a PyTorch YOLO checkpoint; semrl runs YOLO .pt checkpoints")
    return model


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the sha256 hex digest of a file (memoised by path, size and modification time)."""
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_cached(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

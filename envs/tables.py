"""Fast-mode tables: per-CTU exact bits and task-fidelity change of every picture at every table QP.

For each picture and each QP of the table set, the picture is coded uniformly at that QP by the
real codec, and the task net's semantic map of the reconstruction is compared with its map of the
uncoded picture. Per CTU the table stores the encoder's exact CABAC bits and the fidelity terms
``dsem``, ``rise``, ``dpix``, ``mse``, ``dobj`` and ``fobj`` of :func:`envs.reward.fidelity_terms`
(the same function live mode scores the agent's actual QP map with; their meaning is documented
there), and the task net's output on the uncoded picture (live mode grades against it).

Tables are cached under ``<semrl cache>/env_tables`` keyed by the picture's content, the QP set,
the codec's fingerprint (x265 version, patch hash, preset) and the extractor's fingerprint
(weights sha256, map settings), and built in parallel worker processes with a progress bar, or
as Ray tasks (one per picture) on a local Ray instance or a cluster (:mod:`semrl.cluster`): the
tables come back to this process, which writes the cache, so a run spread over machines or
interrupted resumes without recomputing.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.codecs import Codec
from envs.observation import static_grids
from envs.reward import TERM_NAMES, FidelityTerms, fidelity_terms, graded_object_loss, object_grades
from semrl.codec import CTU_SIZE, QP_MAX, QP_MIN, ScalingLists
from semrl.errors import InputNotFoundError, InvalidInputError, SemrlError
from semrl.files import atomic_write, remove_partial_writes
from semrl.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_source, warn_of_videos_beside_images
from semrl.semantics.extractors import SemanticExtractor
from semrl.semantics.maps import TaskOutput

TABLE_VERSION = 5
"""Bumped when what a table holds changes meaning (old cache entries are then ignored)."""

DEFAULT_TABLE_QPS = (12, 17, 22, 27, 32, 37, 42, 47, 51)
"""QPs every picture is coded at; values between are interpolated (log-linear bits, linear fidelity)."""

MIN_SIZE = CTU_SIZE
"""Smallest picture side x265 opens an encoder for with 64x64 CTUs; smaller pictures are skipped."""


class TableBuildError(SemrlError):
    """A worker process building tables died."""


@dataclass(frozen=True, eq=False)
class Picture:
    """One training picture as the encoder receives it.

    Attributes:
        name: Source file name (with ``#frame`` for video frames).
        frame: (H, W, 3) uint8 RGB of even size after the 4:2:0 round trip (what x265 codes and
            what a policy sees in the benchmark).
        digest: sha256 of the pixels and size.
    """

    name: str
    frame: NDArray[np.uint8]
    digest: str


def prepare_frame(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pad to even size by edge replication and pass through 4:2:0, as the benchmark does."""
    from semrl.codec import Yuv420

    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return Yuv420.from_rgb(np.ascontiguousarray(rgb)).to_rgb()


def make_picture(name: str, rgb: NDArray[np.uint8]) -> Picture:
    """A :class:`Picture` from an RGB frame."""
    frame = prepare_frame(rgb)
    digest = hashlib.sha256(frame.tobytes() + f"{frame.shape}".encode()).hexdigest()
    return Picture(name, frame, digest)


def list_images(data: str | os.PathLike[str], split: str = "train") -> list[Path]:
    """Image files of a dataset (YOLO yaml or folder, class-per-folder), a plain folder of images, or one image.

    Raises:
        InputNotFoundError: Nothing usable at ``data``.
        InvalidInputError: ``data`` is a file of another kind.
    """
    from semrl.assets import resolve_dataset

    p = Path(data)
    if p.suffix in (".yaml", ".yml") or (not p.exists() and "/" not in str(data)):
        from semrl.fidelity.labels import dataset_images

        if p.suffix not in (".yaml", ".yml"):
            root = resolve_dataset(data)
            if not (root / "data.yaml").is_file():
                return _class_folder_images(root, split)
        return [im.image for im in dataset_images(data, split)]
    if not p.exists():
        raise InputNotFoundError(f"training data not found: {p}")
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return [p]
        raise InvalidInputError(
            f"training data {p} is a file that is no image, video or data.yaml; give a dataset, a folder of "
            "images, or videos"
        )
    if (p / "data.yaml").is_file():
        from semrl.fidelity.labels import dataset_images

        return [im.image for im in dataset_images(p / "data.yaml", split)]
    if (p / split).is_dir():
        return _class_folder_images(p, split)
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputNotFoundError(f"no images in {p}")
    warn_of_videos_beside_images(
        p, "they are left out; train on videos from a folder of videos alone, or name them in --data"
    )
    return files


def video_sources(data: str | os.PathLike[str]) -> list[Path]:
    """The videos ``data`` names: a video file, a folder holding videos (and no images), or a comma list of them.

    Returns:
        The videos in order (folders sorted), or an empty list when ``data`` names no video.

    Raises:
        InputNotFoundError: A part of a comma list that does not exist.
    """
    parts = [Path(part.strip()) for part in str(data).split(",") if part.strip()]
    videos: list[Path] = []
    for part in parts:
        if part.is_file() and part.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(part)
        elif part.is_dir() and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in part.iterdir()):
            videos += sorted(f for f in part.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
        elif len(parts) > 1:
            raise InputNotFoundError(f"{part}: not a video or a folder of videos")
    return videos


def _class_folder_images(root: Path, split: str) -> list[Path]:
    folder = root / split
    if not folder.is_dir():
        raise InputNotFoundError(f"split folder not found: {folder}")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputNotFoundError(f"no images under {folder}")
    return files


def load_pictures(
    data: str | os.PathLike[str],
    *,
    split: str = "train",
    limit: int | None = None,
    video_stride: int = 10,
    max_frames: int | None = None,
    hold_out: tuple[int, int] | None = None,
) -> list[Picture]:
    """Load training pictures from a dataset, a folder of images, or videos.

    Args:
        data: Dataset name in the assets folder, its folder or ``data.yaml``, a class-per-folder
            dataset, a folder of images, a video file, a folder of videos, or a comma-separated
            list of videos and folders of videos.
        split: Dataset split.
        limit: Keep the first ``limit`` pictures.
        video_stride: For videos, every ``video_stride``-th frame becomes a picture.
        max_frames: For videos, read at most this many frames of each.
        hold_out: Images: ``(start, stop)``, leave out images ``start`` to ``stop - 1`` (of those
            ``limit`` keeps), to measure a policy on them with ``benchmarks/bdrate.py --split
            train --start start --limit stop-start``.

    Raises:
        InputNotFoundError: ``data`` does not exist or holds no pictures.
        InvalidInputError: ``video_stride`` or ``limit`` is not positive, or ``hold_out`` is not
            a range of the images or is given for videos.
    """
    from semrl.semantics.frames import read_image

    if video_stride < 1 or (limit is not None and limit < 1):
        raise InvalidInputError(f"--video-stride and --limit must be positive, got {video_stride} and {limit}")
    pictures: list[Picture] = []
    videos = video_sources(data)
    if videos and hold_out is not None:
        raise InvalidInputError("--hold-out leaves out images of a split; a video's frames are split by clip or time")
    if videos:
        for video in videos:
            # The reader encode and the benchmark use, so all three decode a video to the same frames.
            with open_source(video, crop_even=True, max_frames=max_frames) as source:
                for i, frame in enumerate(source):
                    if i % video_stride == 0:
                        pictures.append(make_picture(f"{video.name}#{i}", frame.to_rgb()))
                        if limit is not None and len(pictures) >= limit:
                            break
            if limit is not None and len(pictures) >= limit:
                break
    else:
        files = list_images(data, split)[:limit]
        if hold_out is not None:
            start, stop = hold_out
            if not 0 <= start < stop <= len(files) or stop - start == len(files):
                raise InvalidInputError(
                    f"--hold-out {start}:{stop}: {data} ({split}) gives {len(files)} images; leave out a part of "
                    f"0:{len(files)}, not all of it"
                )
            files = files[:start] + files[stop:]
        for f in files:
            pictures.append(make_picture(f.name, np.ascontiguousarray(read_image(f)[:, :, ::-1])))
    usable = [p for p in pictures if min(p.frame.shape[:2]) >= MIN_SIZE]
    if len(usable) < len(pictures):
        skipped = len(pictures) - len(usable)
        warnings.warn(f"{skipped} picture(s) of {data} smaller than {MIN_SIZE} px skipped", stacklevel=2)
    if not usable:
        raise InputNotFoundError(f"no pictures of at least {MIN_SIZE}x{MIN_SIZE} in {data}")
    return usable


@dataclass(frozen=True, eq=False)
class CtuTable:
    """Per-CTU statistics of one picture at every table QP.

    Attributes:
        name: The picture's name.
        digest: The picture's content digest.
        qps: int32 (Q,) table QPs, ascending.
        bits: float32 (Q, rows, cols) exact bits per CTU.
        dsem: float32 (Q, rows, cols) mean max(S_ref - S_q, 0) per CTU.
        rise: float32 (Q, rows, cols) mean max(S_q - S_ref, 0) per CTU.
        dpix: float32 (Q, rows, cols) semantic-weighted squared error per CTU / 255^2.
        mse: float32 (Q, rows, cols) squared error per CTU / 255^2.
        grids: float32 (6, rows, cols) static features (:data:`envs.observation.STATIC_NAMES`).
        semantic: float16 (H, W) the reference semantic map (for live mode).
        dobj: float32 (Q, rows, cols) the task output's loss, object by object, per CTU.
        fobj: float32 (Q, rows, cols) task output created by coding, per CTU.
        reference: The task net's output on the uncoded picture (for live mode), or None.
        grades: float32 (Q, objects) :func:`envs.reward.object_grades` of the reference objects
            at each table QP (what ``dobj`` is made of), or None (a classifier; no reference).
        object_weights: (objects,) the weights ``dobj`` was made with (None: ``1 / objects``, as
            saved); :meth:`with_object_weights` sets them, and live mode grades with them too.
    """

    name: str
    digest: str
    qps: NDArray[np.int32]
    bits: NDArray[np.float32]
    dsem: NDArray[np.float32]
    rise: NDArray[np.float32]
    dpix: NDArray[np.float32]
    mse: NDArray[np.float32]
    grids: NDArray[np.float32]
    semantic: NDArray[np.float16]
    dobj: NDArray[np.float32]
    fobj: NDArray[np.float32]
    reference: TaskOutput | None = None
    grades: NDArray[np.float32] | None = None
    object_weights: NDArray[np.float64] | None = None

    @property
    def ctu_shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return int(self.bits.shape[1]), int(self.bits.shape[2])

    @property
    def terms(self) -> FidelityTerms:
        """The fidelity terms, (Q, rows, cols) float32 each."""
        return FidelityTerms(self.dsem, self.rise, self.dpix, self.mse, self.dobj, self.fobj)

    def with_object_weights(self, weights: NDArray[np.floating]) -> CtuTable:
        """This table with ``dobj`` remade from the objects' grades with other weights per object.

        Raises:
            InvalidInputError: The table holds no per-object grades (a classifier's) or the
                weights do not match its objects.
        """
        if self.grades is None or self.reference is None:
            raise InvalidInputError(f"table of {self.name} holds no per-object grades to weigh (a classifier's?)")
        w = np.asarray(weights, np.float64)
        dobj = graded_object_loss(self.grades, self.reference.boxes, self.semantic.shape, w)
        return replace(self, dobj=dobj.astype(np.float32), object_weights=w)

    def save(self, path: Path) -> None:
        """Write atomically as ``.npz``."""
        atomic_write(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's bytes (compressed)."""
        arrays: dict[str, Any] = {
            "name": np.array(self.name), "digest": np.array(self.digest), "qps": self.qps, "bits": self.bits,
            **{name: getattr(self, name) for name in TERM_NAMES}, "grids": self.grids, "semantic": self.semantic,
        }  # fmt: skip
        ref = self.reference
        if ref is not None:
            arrays.update(ref_boxes=ref.boxes, ref_conf=ref.conf, ref_cls=ref.cls)
            if ref.probs is not None:
                arrays["ref_probs"] = ref.probs
        if self.grades is not None:
            arrays["grades"] = self.grades
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @staticmethod
    def load(path: Path) -> CtuTable:
        """Read a table written by :meth:`save`."""
        with np.load(path) as z:
            reference = None
            if "ref_boxes" in z:
                probs = z.get("ref_probs", None)
                reference = TaskOutput(z["ref_boxes"], z["ref_conf"], z["ref_cls"], probs)
            return CtuTable(
                str(z["name"]), str(z["digest"]), z["qps"], z["bits"], z["dsem"], z["rise"], z["dpix"], z["mse"],
                z["grids"], z["semantic"], z["dobj"], z["fobj"], reference, z.get("grades", None),
            )  # fmt: skip


def compute_table(
    picture: Picture, codec: Codec, extractor: SemanticExtractor, qps: Sequence[int], labels: TaskOutput | None = None
) -> CtuTable:
    """Code ``picture`` uniformly at every QP of ``qps`` and measure per-CTU bits and fidelity terms.

    ``labels`` (the picture's labelled objects, confidence 1) grade ``dobj`` and ``fobj`` against
    the labels instead of the task net's own output on the uncoded picture.
    """
    frame = picture.frame
    reference = extractor.extract([frame], color="rgb")[0]
    ref = reference.values
    graded_against = labels if labels is not None else reference.output
    bits, recons = [], []
    for q in qps:
        coded = codec.code(frame, int(q))
        bits.append(coded.ctu_bits.astype(np.float32))
        recons.append(coded.recon)
    maps = extractor.extract(recons, color="rgb")
    terms = [
        fidelity_terms(frame, r, ref, m.values, graded_against, m.output) for r, m in zip(recons, maps, strict=True)
    ]
    stacked = {name: np.stack([getattr(t, name) for t in terms]).astype(np.float32) for name in TERM_NAMES}
    dsem, rise, dpix, mse, dobj, fobj = (stacked[name] for name in TERM_NAMES)
    grades = None
    if labels is None and reference.output is not None and reference.output.probs is None:
        decoded = [m.output for m in maps]
        if all(d is not None for d in decoded):
            grades = np.stack([object_grades(reference.output, d) for d in decoded if d is not None]).astype(np.float32)
    return CtuTable(
        picture.name, picture.digest, np.asarray(qps, np.int32), np.stack(bits), dsem, rise, dpix, mse,
        static_grids(frame, ref), ref.astype(np.float16), dobj, fobj, reference.output, grades,
    )  # fmt: skip


def table_key(picture: Picture, qps: Sequence[int], codec_fp: str, extractor_fp: str) -> str:
    """Cache key of one picture's table."""
    text = json.dumps([TABLE_VERSION, picture.digest, [int(q) for q in qps], codec_fp, extractor_fp])
    return hashlib.sha256(text.encode()).hexdigest()


_WORKER: dict[str, Any] = {}


def _init_worker(codec_factory: Callable[[], Codec], extractor_factory: Callable[[], SemanticExtractor]) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency; fakes do not need it
        pass
    _WORKER["codec"] = codec_factory()
    _WORKER["extractor"] = extractor_factory()


def _work(job: tuple[Picture, tuple[int, ...], str]) -> str:
    picture, qps, target = job
    compute_table(picture, _WORKER["codec"], _WORKER["extractor"], qps).save(Path(target))
    return target


def _ray_table(job: tuple[Picture, tuple[int, ...], Callable[[], Codec], Callable[[], SemanticExtractor]]) -> Any:
    """A Ray task: one picture's table file (compressed here, not on the driver) and the worker's identity."""
    from semrl.cluster import per_process

    picture, qps, codec_factory, extractor_factory = job
    codec, extractor = per_process(codec_factory), per_process(extractor_factory)
    return table_identity(codec, extractor), compute_table(picture, codec, extractor, qps).to_bytes()


def table_identity(codec: Codec, extractor: SemanticExtractor) -> dict[str, str]:
    """What a table depends on besides the picture and the QPs.

    The codec's fingerprint (x265 version, patch hash, preset), the extractor's (map settings and
    weights) and, for a real net, its weights' whole sha256.
    """
    identity = {"x265": codec.fingerprint, "task net": extractor.fingerprint}
    sha = getattr(getattr(extractor, "net", None), "weights_sha256", None)
    if isinstance(sha, str):
        identity["weights sha256"] = sha
    return identity


def build_tables(
    pictures: Sequence[Picture],
    *,
    codec_factory: Callable[[], Codec],
    extractor_factory: Callable[[], SemanticExtractor],
    qps: Sequence[int] = DEFAULT_TABLE_QPS,
    workers: int = 1,
    cache_dir: Path | None = None,
    progress: bool = True,
    codec: Codec | None = None,
    extractor: SemanticExtractor | None = None,
    ray: str | None = None,
) -> list[CtuTable]:
    """Tables of every picture, from the cache or computed (in ``workers`` processes, or on Ray).

    Args:
        pictures: The pictures.
        codec_factory: Builds the codec (picklable for ``workers > 1``).
        extractor_factory: Builds the task's semantic extractor (picklable for ``workers > 1``).
        qps: Table QPs (ascending, in 0..51).
        workers: Worker processes (1: in this process).
        cache_dir: Where tables are cached; default ``<semrl cache>/env_tables``.
        progress: Show a progress bar.
        codec: An already built codec for this process (else ``codec_factory()``).
        extractor: An already built extractor for this process (else ``extractor_factory()``).
        ray: Ray address (:func:`semrl.cluster.session`): one Ray task per picture instead of
            ``workers``. A picture that fails there is left out with a warning naming it.

    Returns:
        The tables, in picture order (without pictures that failed on Ray).

    Raises:
        InvalidInputError: QPs out of range or not ascending.
        TableBuildError: A worker process died (the tables built before are kept).
        ClusterError: Ray is missing or unreachable, or every picture failed on it.
    """
    from tqdm import tqdm

    from semrl.paths import cache_root

    q = [int(v) for v in qps]
    if len(q) < 2 or q != sorted(set(q)) or q[0] < QP_MIN or q[-1] > QP_MAX:
        raise InvalidInputError(f"table QPs must be at least two ascending values in 0..51, got {qps}")
    root = cache_dir if cache_dir is not None else cache_root() / "env_tables"
    codec = codec if codec is not None else codec_factory()
    extractor = extractor if extractor is not None else extractor_factory()
    paths = [root / f"{table_key(p, q, codec.fingerprint, extractor.fingerprint)}.npz" for p in pictures]
    missing = [(p, tuple(q), str(path)) for p, path in zip(pictures, paths, strict=True) if not path.is_file()]
    if missing:
        desc = f"fast-mode tables ({len(q)} QPs)"
        if ray is not None:
            return _build_on_ray(ray, pictures, paths, missing, codec_factory, extractor_factory,
                                 table_identity(codec, extractor), desc, progress)  # fmt: skip
        bar = tqdm(total=len(missing), desc=desc, disable=not progress, unit="pic")
        if workers <= 1 or len(missing) == 1:
            _WORKER.update(codec=codec, extractor=extractor)
            for job in missing:
                _work(job)
                bar.update()
        else:
            # Not multiprocessing.Pool: it replaces a worker that dies (the OOM killer) and then waits
            # forever for the lost picture; the executor reports it.
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            context = multiprocessing.get_context("spawn")
            broken: BrokenProcessPool | None = None
            with ProcessPoolExecutor(workers, context, _init_worker, (codec_factory, extractor_factory)) as pool:
                try:
                    for done in as_completed([pool.submit(_work, job) for job in missing]):
                        done.result()
                        bar.update()
                except BrokenProcessPool as e:
                    broken = e
            if broken is not None:
                # The pool terminated the other workers, maybe in the middle of writing a table.
                bar.close()
                for _, _, path in missing:
                    remove_partial_writes(path)
                raise TableBuildError(
                    "a table worker process died (out of memory?); the tables built so far are cached, so run "
                    "again to go on, with fewer --workers"
                ) from broken
        bar.close()
    return [CtuTable.load(p) for p in paths]


def _build_on_ray(
    address: str,
    pictures: Sequence[Picture],
    paths: Sequence[Path],
    missing: Sequence[tuple[Picture, tuple[int, ...], str]],
    codec_factory: Callable[[], Codec],
    extractor_factory: Callable[[], SemanticExtractor],
    identity: dict[str, str],
    desc: str,
    progress: bool,
) -> list[CtuTable]:
    from semrl.cluster import ClusterError, report_failures, run_jobs, session

    jobs = [(p.name, (p, qps, codec_factory, extractor_factory)) for p, qps, _ in missing]

    def save(index: int, data: bytes) -> None:
        atomic_write(Path(missing[index][2]), data)

    with session(address):
        failures = run_jobs(_ray_table, jobs, identity=identity, on_result=save, desc=desc, progress=progress)
    if failures:
        message = report_failures(failures, "picture(s)")
        if len(failures) == len(pictures):
            raise ClusterError(message)
        warnings.warn(f"{message}; training goes on without them", stacklevel=3)
    failed = {missing[f.index][2] for f in failures}
    return [CtuTable.load(path) for path in paths if str(path) not in failed]


@dataclass(frozen=True)
class RealExtractorFactory:
    """Builds the real semantic extractor of a task in any process (picklable).

    Attributes:
        map_config: ``MapConfig.to_json()`` of the extractor.
        device: Torch device.
    """

    map_config: str
    device: str = "cpu"

    def __call__(self) -> SemanticExtractor:
        """The extractor."""
        from semrl.semantics.config import MapConfig
        from semrl.semantics.extractors import make_extractor

        config = MapConfig.from_json(self.map_config)
        return make_extractor(config.task, config=config, device=self.device, batch=9)


@dataclass(frozen=True)
class X265CodecFactory:
    """Builds :class:`envs.codecs.X265Codec` in any process (picklable)."""

    preset: str = "medium"
    scaling_lists: ScalingLists | None = None

    def __call__(self) -> Codec:
        """The codec."""
        from envs.codecs import X265Codec

        return X265Codec(self.preset, self.scaling_lists)

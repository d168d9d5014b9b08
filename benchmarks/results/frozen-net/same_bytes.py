"""``semrl encode``'s default with its task net frozen and eager, on whole clips: the same bytes?

    python benchmarks/results/frozen-net/same_bytes.py CLIP...

Each clip is encoded twice with the default settings, the net reloaded each time: once as
``semrl encode`` runs it (frozen from :data:`semrl.pipeline.FREEZE_MIN_ANALYSES` analyses on), once
with :meth:`semrl.semantics.yolo.YoloNet.freeze` switched off. Prints one line per clip (``same_bytes.txt``:
the six clips of at least 150 frames; TUD-Campus, 71 frames, has too few analyses to be frozen).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from semrl import pipeline
from semrl.pipeline import EncodeSettings, encode_video
from semrl.semantics.yolo import YoloNet


def main(argv: list[str] | None = None) -> int:
    """Encode each clip frozen and eager; exit 1 if any pair differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    args = parser.parse_args(argv)
    freeze = YoloNet.freeze
    frozen: list[bool] = []  # what freeze returned in the frozen encode: whether a graph served the clip

    def recorded(net: YoloNet, shape: tuple[int, int], imgsz: int) -> bool:
        frozen.append(freeze(net, shape, imgsz))
        return frozen[-1]

    differ = 0
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for clip in args.clips:
                digests = {}
                frozen.clear()
                for mode in ("frozen", "eager"):
                    YoloNet.freeze = recorded if mode == "frozen" else (lambda net, shape, imgsz: False)  # type: ignore[method-assign,assignment]
                    pipeline._load_net.cache_clear()
                    output = Path(scratch) / f"{mode}.mp4"
                    report = encode_video(clip, output, EncodeSettings())
                    digests[mode] = hashlib.md5(output.read_bytes()).hexdigest()
                same = digests["frozen"] == digests["eager"]
                differ += not same
                print(
                    f"{clip.name}: {report.frames} frames, frozen {'used' if any(frozen) else 'not used'}, "
                    f"{'same bytes' if same else 'DIFFERENT BYTES'} (md5 {digests['frozen']})",
                    flush=True,
                )
    finally:
        YoloNet.freeze = freeze  # type: ignore[method-assign]
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

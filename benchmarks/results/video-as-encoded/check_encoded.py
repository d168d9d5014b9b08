"""Check that the benchmark's ``as_encoded10`` codings are what ``semrl encode`` codes: the same bits, frame by frame.

For each clip and base QP, ``semrl encode CLIP --frames N --qp Q`` runs in process (its defaults otherwise) and
its report's per-frame bits must equal one benchmark coding's on every frame but the first, whose sequence
header may carry another frame rate. The benchmark's cache holds each coding's per-frame bits.

    python benchmarks/results/video-as-encoded/check_encoded.py --cache-dir DIR --frames 150 --qps 22,27 CLIP...

``--policy roi`` checks ``semrl encode --policy roi`` (D=8) against ``as_encoded10_roi8``'s codings,
``--net-precision bf16`` checks ``semrl encode --net-precision bf16`` against ``as_encoded10_bf16``'s codings,
and ``--policy x265 --gop ra`` checks ``semrl encode --policy x265 --gop ra`` against the benchmark's A2
(``x265-aq``) under random access.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from semrl.pipeline import EncodeSettings, encode_video


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "semrl" / "bench")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--qps", default="22,27,32,37,42,47,51")
    parser.add_argument("--map-interval", type=int, default=10)
    parser.add_argument("--net-precision", default="fp32", help="semrl encode's --net-precision (default: fp32)")
    parser.add_argument("--policy", default="auto", help="semrl encode's --policy (default: auto)")
    parser.add_argument("--gop", default="ldp", help="semrl encode's --gop (default: ldp)")
    args = parser.parse_args(argv)
    coded = {}
    for path in (args.cache_dir / "enc").glob("*.json"):
        bits = json.loads(path.read_text()).get("frame_bits")
        if bits:
            coded[tuple(bits[1:])] = bits[0]
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        for clip in args.clips:
            for qp in (int(q) for q in args.qps.split(",")):
                settings = EncodeSettings(
                    qp=qp,
                    max_frames=args.frames,
                    map_interval=args.map_interval,
                    net_precision=args.net_precision,
                    policy=args.policy,
                    gop=args.gop,
                )
                report = encode_video(clip, Path(scratch) / "out.hevc", settings)
                bits = [row.bits for row in sorted(report.rows, key=lambda row: row.index)]
                first = coded.get(tuple(bits[1:]))
                status = "no benchmark coding with these bits" if first is None else f"first frame {bits[0] - first:+d}"
                failures += first is None
                print(f"{clip.name} qp {qp}: {len(bits)} frames, {sum(bits)} bits: {status}")
    print("all match" if not failures else f"{failures} clip-points match no benchmark coding")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

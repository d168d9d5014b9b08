"""Check that the loop's trial codings made the benchmark's pictures: the same bits, frame by frame.

``simulated.jsonl`` holds each trial frame's bits (``loop_candidates.py``); the benchmark's cache holds
each coding's per-frame bits. Every trial clip-point must have a benchmark coding with the same bits
on every frame but the first. The first differs by the header alone: the trial encoder leaves the
frame rate at x265's default, which the sequence header carries.

    python benchmarks/results/video-closed-loop/check_trial.py [TRIALS [CACHE_DIR]]
    # defaults: simulated.jsonl here, ~/.cache/semrl/bench
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "simulated.jsonl"
    cache = Path(sys.argv[2]) if len(sys.argv) > 2 else Path.home() / ".cache" / "semrl" / "bench"
    trials: dict[tuple[str, str, int], dict[int, int]] = defaultdict(dict)
    for line in log.read_text().splitlines():
        row = json.loads(line)
        trials[(row["policy"], row["clip"], row["base_qp"])][row["frame"]] = row["bits"]
    coded = {}
    for path in (cache / "enc").glob("*.json"):
        bits = json.loads(path.read_text()).get("frame_bits")
        if bits:
            coded[tuple(bits[1:])] = bits[0]
    matched, first = 0, []
    for key, frames in sorted(trials.items()):
        bits = [frames[i] for i in range(len(frames))]
        if tuple(bits[1:]) in coded:
            matched += 1
            first.append(bits[0] - coded[tuple(bits[1:])])
        else:
            print(f"no benchmark coding with the trial's bits: {key}")
    print(f"{matched} of {len(trials)} trial clip-points match the benchmark's codings on frames 1 on; "
          f"first frame's difference in bits: {sorted(set(first))}")  # fmt: skip
    return 0 if matched == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())

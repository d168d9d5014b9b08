"""The detector on a clip's frames converted to RGB with BT.601's matrix (semrl's) and with BT.709's.

    python benchmarks/results/colour-matrix/matrix.py <clip>

Prints the person AP against the clip's real labels, where they lie beside it, and each reading's
mAP50-95 against the other's objects (pseudo ground truth).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from semrl.fidelity.detection import average_precision, match_frame, pseudo_target
from semrl.fidelity.labels import clip_labels, labelled_subset, read_mot_boxes
from semrl.media import open_source
from semrl.semantics.yolo import InferenceSettings, YoloNet


def main(clip: Path) -> dict[str, dict[str, float]]:
    net = YoloNet("yolov8n.pt", device="cpu")
    with open_source(clip) as source:
        info = source.info
        frames = list(source)
    print(f"{clip.name}: {len(frames)} frames, {info.colour}")
    found = clip_labels(clip, info.width, info.height)
    truth = read_mot_boxes(found[0], len(frames), (info.height, info.width), found[1]) if found else None
    out: dict[str, dict[str, float]] = {}
    found_by: dict[str, list] = {}  # type: ignore[type-arg]
    for name in ("bt601", "bt709"):
        finds = []
        for start in range(0, len(frames), 8):
            batch = [f.to_rgb(name) for f in frames[start : start + 8]]
            finds += net.detect(batch, InferenceSettings(), color="rgb")
        found_by[name] = finds
        if truth is not None:
            matches = [match_frame(labelled_subset(p, t), t) for p, t in zip(finds, truth, strict=True)]
            score = average_precision(matches, "ultralytics")
            out[name] = {"person_map50_95": score.map50_95, "person_map50": score.map50}
    for a, b in (("bt709", "bt601"), ("bt601", "bt709")):
        matches = [match_frame(p, pseudo_target(o)) for p, o in zip(found_by[a], found_by[b], strict=True)]
        score = average_precision(matches, "coco")
        out[f"{a}_against_{b}"] = {"map50_95": score.map50_95, "objects": score.map50_95_objects}
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=1))

"""ROI maps, shifted -6..+9 QP, for every picture of ``../detection-trade``'s ``collect.py`` codings.

The ROI map is the one ``semrl encode`` trades (``AnswerSearch.roi``): the ROI recipe on the
policy's own objects, grown by ``ROI_DILATION`` px, ``D`` finer on the blocks they touch and ``D``
coarser elsewhere, D = 4, 8, 12, on the policy's own blocks (16x16 for the shipped detection
policy, 64x64 CTUs for the segmentation one); each shift is coded all-intra as
``benchmarks/bdrate.py`` codes it and matched against the labels and against the net's own
objects on the source (boxes, or masks for segmentation), as ``collect.py`` does::

    python benchmarks/results/detection-trade-roi/collect_roi.py [--task segmentation] CODINGS.pkl OUT.pkl
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
import collect

DELTAS = (4, 8, 12)


def _picture(paths: tuple[Path, Path]) -> dict[str, Any]:
    from semrl.agent.answer import ROI_DILATION, trial_coder
    from semrl.bench.encoding import encoder_config
    from semrl.bench.items import image_item
    from semrl.codec import ctu_grid
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.segmentation import MASK_EVAL
    from semrl.policy import PolicyInput, RoiPolicy, TrialCoding, offset_block
    from semrl.semantics.regions import box_region
    from semrl.semantics.yolo import InferenceSettings

    net, policy, masks = collect._state["net"], collect._state["policy"], collect._state["task"] == "segmentation"
    block = offset_block(policy)
    settings = MASK_EVAL if masks else InferenceSettings()
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    frame = item.yuv[0]
    rgb = frame.to_rgb()
    target = pseudo_target(net.net.detect([item.source[0]], settings, color="rgb")[0])
    out: dict[str, Any] = {"name": str(paths[0]), "codings": {}}
    _, boxes = policy._analyse(rgb)
    region = box_region(boxes, rgb.shape[:2])
    for q in collect.QPS:
        config = encoder_config(item, q, crf=False, video=False, preset="medium", keyint=250, qg_size=block)
        inputs = PolicyInput(
            rgb, q, ctu_grid(config.width, config.height), analysis.regions[0], analysis.boxes[0], 0, {},
            gop=config.layout(), cls=analysis.cls[0], conf=analysis.conf[0], picture=frame,
            coding=TrialCoding(config, item.shape),
        )  # fmt: skip
        code = trial_coder(inputs)
        assert code is not None
        for delta in DELTAS:
            offsets = RoiPolicy(delta, ROI_DILATION, block)(dataclasses.replace(inputs, region=region))
            for shift in collect.SHIFTS:
                bits, shown = code((offsets + shift).astype(np.int32))
                pred = net.net.detect([shown], settings, color="rgb")[0]
                out["codings"][(f"roi{delta}", q, shift)] = (
                    bits, net._match(item, 0, pred, analysis), match_frame(pred, target, "mask" if masks else "box"),
                )  # fmt: skip
    return out


def main(src: Path, dst: Path, task: str = "detection") -> None:
    """Codes the ROI maps for every picture of ``src`` (``collect.py``'s output) into ``dst``."""
    pictures = pickle.loads(src.read_bytes())
    jobs = []
    for p in pictures:
        image = Path(p["name"])
        jobs.append((image, image.parents[2] / "labels" / image.parent.name / f"{image.stem}.txt"))
    collect.run(_picture, jobs, task, collect.SHIFTS, dst)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[0] == "--task":
        main(Path(args[2]), Path(args[3]), args[1])
    else:
        main(Path(args[0]), Path(args[1]))

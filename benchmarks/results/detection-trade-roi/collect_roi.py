"""ROI maps on 16x16 blocks, shifted -6..+9 QP, for every picture of ``../detection-trade``'s ``collect.py`` codings.

The ROI map is built from the policy's own objects (its detector, as ``semrl encode`` has them),
grown by 16 px, ``D`` finer on the blocks they touch and ``D`` coarser elsewhere, D = 4, 8, 12; each
shift is coded all-intra as ``benchmarks/bdrate.py`` codes it (16x16 quantisation groups, as the
shipped detection policy's) and matched against the labels and against the net's own objects on
the source, as ``collect.py`` does::

    python benchmarks/results/detection-trade-roi/collect_roi.py CODINGS.pkl OUT.pkl
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
import collect

DELTAS = (4, 8, 12)
DILATION = 16


def _picture(paths: tuple[Path, Path]) -> dict[str, Any]:
    from semrl.agent.answer import trial_coder
    from semrl.bench.encoding import encoder_config
    from semrl.bench.items import image_item
    from semrl.codec import BLOCK_SIZE, ctu_grid
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.policy import PolicyInput, TrialCoding, offset_block, roi_blocks
    from semrl.semantics.regions import box_region
    from semrl.semantics.yolo import InferenceSettings

    net, policy = collect._state["net"], collect._state["policy"]
    assert offset_block(policy) == BLOCK_SIZE
    settings = InferenceSettings()
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    frame = item.yuv[0]
    rgb = frame.to_rgb()
    target = pseudo_target(net.net.detect([item.source[0]], settings, color="rgb")[0])
    out: dict[str, Any] = {"name": str(paths[0]), "codings": {}, "roi_share": 0.0}
    _, boxes = policy._analyse(rgb)
    for q in collect.QPS:
        config = encoder_config(item, q, crf=False, video=False, preset="medium", keyint=250, qg_size=BLOCK_SIZE)
        inputs = PolicyInput(
            rgb, q, ctu_grid(config.width, config.height), analysis.regions[0], analysis.boxes[0], 0, {},
            gop=config.layout(), cls=analysis.cls[0], conf=analysis.conf[0], picture=frame,
            coding=TrialCoding(config, item.shape),
        )  # fmt: skip
        code = trial_coder(inputs)
        assert code is not None
        inside = roi_blocks(box_region(boxes, rgb.shape[:2]), inputs.block_shape, DILATION, BLOCK_SIZE)
        out["roi_share"] = float(inside.mean())
        for delta in DELTAS:
            offsets = np.where(inside, -delta, delta)
            for shift in collect.SHIFTS:
                bits, shown = code((offsets + shift).astype(np.int32))
                pred = net.net.detect([shown], settings, color="rgb")[0]
                out["codings"][(f"roi{delta}", q, shift)] = (
                    bits, net._match(item, 0, pred, analysis), match_frame(pred, target, "box"),
                )  # fmt: skip
    return out


def main(src: Path, dst: Path) -> None:
    """Codes the ROI maps for every picture of ``src`` (``collect.py``'s output) into ``dst``."""
    pictures = pickle.loads(src.read_bytes())
    jobs = []
    for p in pictures:
        image = Path(p["name"])
        jobs.append((image, image.parents[2] / "labels" / image.parent.name / f"{image.stem}.txt"))
    results = []
    with mp.get_context("spawn").Pool(2, initializer=collect._init, initargs=("detection", collect.SHIFTS)) as pool:
        for i, r in enumerate(pool.imap(_picture, jobs)):
            results.append(r)
            print(i, r["name"], flush=True)
    tmp = dst.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(results))
    tmp.replace(dst)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

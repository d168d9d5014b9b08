"""The trade's second stage on a train window: the background of each picture's kept trial, shifted coarser.

For every picture of ``../detection-trade``'s ``collect.py`` codings (the map alone at the six
shifts) and every base QP, the trade's choice (``trade`` 0.2, doubling every 6 QP) is replayed,
and the blocks no object of the policy's map touches (its boxes grown by ``OBJECT_MARGIN``, as
:class:`semrl.agent.checkpoint.TrainedPolicy` finds them) are coded on top of it +3, +6, +9, +12
and +18 QP coarser, all-intra as ``benchmarks/bdrate.py`` codes them, each matched against the
labels and against the net's own objects on the source::

    python benchmarks/results/detection-trade-background/collect_background.py CODINGS.pkl OUT.pkl

With ``--task segmentation`` (``../segmentation-trade-background``): the segmentation trade's
choice (``trade`` 0.1), its background +3, +6 and +9 QP coarser, the map under the policy's own
quantisation matrices, masks matched at the benchmark's mask settings.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
import collect
from replay_background import trade

BACKGROUND_SHIFTS = {"detection": (3, 6, 9, 12, 18), "segmentation": (3, 6, 9)}
TRADES = {"detection": 0.2, "segmentation": 0.1}


def _picture(job: tuple[tuple[Path, Path], dict[int, int]]) -> dict[str, Any]:
    from semrl.agent.answer import OBJECT_MARGIN, trial_coder
    from semrl.bench.encoding import encoder_config
    from semrl.bench.items import image_item
    from semrl.codec import ctu_grid
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.segmentation import MASK_EVAL
    from semrl.policy import PolicyInput, TrialCoding, offset_block, policy_offsets, roi_blocks, scaling_lists
    from semrl.semantics.regions import box_region
    from semrl.semantics.yolo import InferenceSettings

    paths, chosen = job
    net, policy, task = collect._state["net"], collect._state["policy"], collect._state["task"]
    masks = task == "segmentation"
    settings = MASK_EVAL if masks else InferenceSettings()
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    frame = item.yuv[0]
    rgb = frame.to_rgb()
    target = pseudo_target(net.net.detect([item.source[0]], settings, color="rgb")[0])
    out: dict[str, Any] = {"name": str(paths[0]), "codings": {}, "background_share": {}}
    _, boxes = policy._analyse(rgb)
    for q in collect.QPS:
        config = encoder_config(
            item, q, crf=False, video=False, preset="medium", keyint=250, qg_size=offset_block(policy),
            scaling_lists=scaling_lists(policy),
        )  # fmt: skip
        ctu_shape = ctu_grid(config.width, config.height)
        inputs = PolicyInput(
            rgb, q, ctu_shape, analysis.regions[0], analysis.boxes[0], 0, {}, gop=config.layout(),
            cls=analysis.cls[0], conf=analysis.conf[0], picture=frame, coding=TrialCoding(config, item.shape),
        )  # fmt: skip
        code = trial_coder(inputs)
        assert code is not None
        offsets = policy_offsets(policy, inputs)
        where = ~roi_blocks(box_region(boxes, rgb.shape[:2]), offsets.shape, OBJECT_MARGIN, policy.offset_block)
        out["background_share"][q] = float(where.mean())
        for shift in BACKGROUND_SHIFTS[task]:
            bits, shown = code((offsets + chosen[q] + shift * where).astype(np.int32))
            pred = net.net.detect([shown], settings, color="rgb")[0]
            out["codings"][("background", q, shift)] = (
                bits, net._match(item, 0, pred, analysis), match_frame(pred, target, "mask" if masks else "box"),
            )  # fmt: skip
    return out


def main(src: Path, dst: Path, task: str = "detection") -> None:
    """Codes the second stage for every picture of ``src`` (``collect.py``'s output for ``task``) into ``dst``."""
    pictures = pickle.loads(src.read_bytes())
    jobs = []
    for p in pictures:
        image = Path(p["name"])
        label = image.parents[2] / "labels" / image.parent.name / f"{image.stem}.txt"
        jobs.append(((image, label), {q: trade(p, q, weight=TRADES[task])[2] for q in collect.QPS}))
    collect.run(_picture, jobs, task, collect.SHIFTS, dst)


if __name__ == "__main__":
    args = sys.argv[1:]
    task = "detection"
    if args[0] == "--task":
        task, args = args[1], args[2:]
    main(Path(args[0]), Path(args[1]), task)

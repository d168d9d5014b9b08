"""Each coco-seg train picture at every base QP: A1 and the map's six shifts, scored against finds at several confs.

As ``../detection-trade/collect.py`` (its worker set-up and pool), for segmentation: each coding
all-intra as ``benchmarks/bdrate.py`` codes it, read by the segmenter on val's mask grid
(``MASK_SCORE``) and matched against the labels and against the segmenter's own finds on the
policy's 4:2:0 picture (what ``object_score`` reads) at each confidence of ``CONFS``::

    python benchmarks/results/segmentation-target/collect_targets.py START LIMIT OUT.pkl

A coding is ``(bits, labelled matches, {confidence: matches against the finds at it})``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detection-trade"))
import collect

CONFS = (0.25, 0.15, 0.1, 0.05)


def _picture(paths: tuple[Path, Path | None]) -> dict[str, Any]:
    from semrl.bench.items import image_item
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.segmentation import MASK_SCORE

    net, policy = collect._state["net"], collect._state["policy"]
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    (h, w) = item.shape
    found = net.net.detect([item.yuv[0].to_rgb()[:h, :w]], MASK_SCORE, color="rgb")[0]
    targets = {c: pseudo_target(found, c) for c in CONFS}

    def score(rgb: np.ndarray) -> tuple[Any, dict[float, Any]]:
        pred = net.net.detect([rgb], MASK_SCORE, color="rgb")[0]
        return net._match(item, 0, pred, analysis), {c: match_frame(pred, t, "mask") for c, t in targets.items()}

    codings = collect.code_all(item, analysis, policy, collect.SHIFTS, score)
    return {"name": str(paths[0]), "pixels": h * w, "codings": codings}


def main(argv: list[str]) -> None:
    from semrl.bench.items import TASKS
    from semrl.fidelity.labels import dataset_images

    start, limit, dst = int(argv[0]), int(argv[1]), Path(argv[2])
    images = dataset_images(TASKS["segmentation"].data, "train")[start : start + limit]
    collect.run(_picture, [(im.image, im.label) for im in images], "segmentation", collect.SHIFTS, dst, start)


if __name__ == "__main__":
    main(sys.argv[1:])

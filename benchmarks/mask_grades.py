"""How segmentation instances degrade under uniform coding: graded by their box, and by their mask.

The segmentation object terms (:func:`envs.reward.object_grades`) grade each instance the net finds
on the uncoded picture by the box of its best same-class instance after coding (the share of the
IoU thresholds 0.50..0.95 it passes); mask mAP50-95 scores masks. This measures, per QP of uniform
coding, the mean of both grades over the same matched instances, to tell whether grading by box
misses mask loss (at fine QPs in particular).

Run: ``python benchmarks/mask_grades.py [--start 72] [--count 28] [--qps 22,27,32,37,42]``
(coco-seg train pictures ``start`` .. ``start + count - 1``; by default those the held-aside rules
measure on). Writes ``benchmarks/results/mask_grades.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from envs.reward import IOU_THRESHOLDS
from semrl.files import atomic_write, json_text

RESULTS = Path(__file__).resolve().parent / "results" / "mask_grades.json"
CONF = 0.25


def _instances(net: Any, rgb: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    """Boxes (xyxy), classes and full-resolution masks of the instances the net finds."""
    result = net.predict(np.ascontiguousarray(rgb[..., ::-1]), conf=CONF, retina_masks=True, verbose=False)[0]
    if result.masks is None or len(result.boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros((0, *rgb.shape[:2]), bool)
    boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
    classes = result.boxes.cls.cpu().numpy().astype(np.int64)
    return boxes, classes, result.masks.data.cpu().numpy() > 0.5


def grades(
    reference: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]],
    decoded: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]],
) -> list[tuple[float, float]]:
    """(box grade, mask grade) of each reference instance, matched by box IoU within its class."""
    from semrl.fidelity.detection import box_iou

    ref_boxes, ref_cls, ref_masks = reference
    dec_boxes, dec_cls, dec_masks = decoded
    out: list[tuple[float, float]] = []
    for i in range(len(ref_boxes)):
        if not len(dec_boxes):
            out.append((0.0, 0.0))
            continue
        iou = box_iou(ref_boxes[i : i + 1], dec_boxes)[0] * (dec_cls == ref_cls[i])
        j = int(np.argmax(iou))
        if iou[j] <= 0:
            out.append((0.0, 0.0))
            continue
        union = np.logical_or(ref_masks[i], dec_masks[j]).sum()
        mask_iou = np.logical_and(ref_masks[i], dec_masks[j]).sum() / max(int(union), 1)
        out.append((float((iou[j] >= IOU_THRESHOLDS).mean()), float((mask_iou >= IOU_THRESHOLDS).mean())))
    return out


def main() -> None:
    """Measure and save the per-QP mean box and mask grades."""
    from envs.tables import X265CodecFactory, load_pictures
    from semrl.assets import load_yolo, resolve_dataset
    from semrl.semantics.config import DEFAULT_WEIGHTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=int, default=72, help="first coco-seg train picture")
    parser.add_argument("--count", type=int, default=28, help="pictures")
    parser.add_argument("--qps", default="22,27,32,37,42", help="QPs of uniform coding")
    args = parser.parse_args()
    start = time.perf_counter()
    pictures = load_pictures(resolve_dataset("coco-seg"), split="train")[args.start : args.start + args.count]
    if not pictures:
        raise SystemExit(f"no coco-seg train pictures from {args.start} on; lower --start")
    codec = X265CodecFactory("medium")()
    weights = DEFAULT_WEIGHTS["segmentation"]
    net = load_yolo(weights)
    references = [_instances(net, p.frame) for p in pictures]
    results = {}
    for q in (int(v) for v in args.qps.split(",")):
        pairs = [
            g
            for p, ref in zip(pictures, references, strict=True)
            for g in grades(ref, _instances(net, codec.code(p.frame, q).recon))
        ]
        box, mask = np.asarray(pairs).reshape(-1, 2).T
        results[str(q)] = {"instances": len(pairs), "box_grade": float(box.mean()), "mask_grade": float(mask.mean())}
        print(f"QP {q}: {len(pairs)} instances, box grade {box.mean():.3f}, mask grade {mask.mean():.3f}", flush=True)
    report = {
        "name": "mask_grades",
        "description": __doc__.split("\n")[0],
        "command": f"python benchmarks/mask_grades.py --start {args.start} --count {args.count} --qps {args.qps}",
        "pictures": [p.name for p in pictures],
        "weights": weights,
        "conf": CONF,
        "seconds": round(time.perf_counter() - start, 1),
        "results": results,
    }
    atomic_write(RESULTS, json_text(report, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""`semrl encode` of ImageNet val pictures with the classification policy, with and without its answer search.

Each picture (the first 20 of even size: `semrl encode` refuses odd ones) at --qp 27 and 37, once with the shipped
policy and once with the same checkpoint whose config has no `answer` (argv[1]); FFmpeg decodes each output and
yolov8n-cls classifies it. Prints one line per coding and the summary.
Run: python benchmarks/results/classification-answer/encode_check.py <checkpoint without the search>
"""

import glob
import sys
from pathlib import Path

import cv2
import numpy as np

from semrl.assets import assets_root, resolve_weights
from semrl.media import decode_ffmpeg
from semrl.pipeline import EncodeSettings, encode_video
from semrl.semantics.yolo import YoloNet

net = YoloNet(resolve_weights("yolov8n-cls.pt"))
root = assets_root()
if root is None:
    sys.exit("no assets folder: set SEMRL_ASSETS")
pics = sorted(glob.glob(str(root / "datasets/imagenet-cls/val/*/*.JPEG")))


def _even(path: str) -> bool:
    picture = cv2.imread(path)
    return picture is not None and all(v % 2 == 0 for v in picture.shape[:2])


even = [p for p in pics if _even(p)][:20]
out = Path(sys.argv[2] if len(sys.argv) > 2 else "encode-check-codings")
out.mkdir(exist_ok=True)
same = 0
ratios = []
for qp in (27, 37):
    for p in even:
        res = {}
        for name, pol in (("alone", sys.argv[1]), ("shipped", "classification")):
            o = out / f"{name}.hevc"
            r = encode_video(Path(p), o, EncodeSettings(policy=pol, task="classification", qp=qp))
            (shown,) = decode_ffmpeg(o, r.width, r.height)
            res[name] = (r.bits, int(net.classify([shown.to_rgb()], color="rgb").argmax()))
        same += res["alone"][1] == res["shipped"][1]
        ratios.append(res["shipped"][0] / res["alone"][0])
        print(qp, Path(p).name, res, flush=True)
summary = f"{len(even)} pictures x 2 QPs: same answer {same}/{len(ratios)}; "
summary += f"bits shipped/alone median {np.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}"
print(summary)

"""Pseudo-GT objects per class (yolov8n, conf 0.25) in the first 150 frames of each clip given.

Usage: ``python class_counts.py CLIP ...`` (weights from ``$SEMRL_ASSETS/models``).
"""

import collections
import os
import sys
from typing import Any

import cv2
from ultralytics.models import YOLO

model: Any = YOLO(os.path.join(os.environ.get("SEMRL_ASSETS", "../shared/assets"), "models/yolov8n.pt"))
for path in sys.argv[1:]:
    capture = cv2.VideoCapture(path)
    counts: collections.Counter[str] = collections.Counter()
    frames = 0
    while frames < 150:
        ok, frame = capture.read()
        if not ok:
            break
        result = model.predict(frame, conf=0.25, verbose=False)[0]
        counts.update(model.names[int(k)] for k in result.boxes.cls.tolist())
        frames += 1
    print(os.path.basename(path), frames, dict(counts.most_common()))

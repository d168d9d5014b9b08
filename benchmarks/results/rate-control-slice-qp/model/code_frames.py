"""Code clips low-delay P with a random walk of frame QPs; save each frame's per-CTU bits, QPs and source change.

    python code_frames.py OUT_DIR START CLIP...   # frames START..START+149 of each clip (0 and 200 were run)

Writes ``OUT_DIR/<clip>.npy`` for ``predict.py``.
"""

import sys
from pathlib import Path

import numpy as np

from semrl.codec import Encoder, EncoderConfig, Gop
from semrl.media import open_source
from semrl.ratecontrol import temporal_activity

rng = np.random.default_rng(0)
out_dir, start = Path(sys.argv[1]), int(sys.argv[2])
for name in sys.argv[3:]:
    clip = Path(name)
    with open_source(clip, max_frames=start + 150, crop_even=True) as source:
        pictures = list(source)[start:]
    config = EncoderConfig(pictures[0].width, pictures[0].height, qp=32, gop=Gop.LOW_DELAY_P)
    records = []
    qp = 32
    with Encoder(config) as encoder:
        previous = None
        for picture in pictures:
            shape = encoder.ctu_shape
            change = np.zeros(shape) if previous is None else temporal_activity(picture.y, previous, shape)
            previous = picture.y
            qp = int(np.clip(qp + rng.integers(-3, 4), 22, 45))
            for frame in encoder.encode(picture, None, qp):  # low-delay P: the frame just given
                records.append((frame.slice_type, frame.ctu_bits.astype(float), frame.ctu_qp.copy(), change))
    np.save(out_dir / f"{clip.stem}.npy", np.array(records, dtype=object), allow_pickle=True)
    print(clip.name, len(records), flush=True)

"""Per-CTU P-frame bit model: with and without temporal activity (MAD of originals)."""
import sys, json, numpy as np
from pathlib import Path
from semrl.codec import Encoder, EncoderConfig, Gop
from semrl.media import open_source
rng = np.random.default_rng(0)
out = {}
for clip in sys.argv[1:]:
    clip = Path(clip)
    with open_source(clip, max_frames=150, crop_even=True) as src:
        pics = list(src)
    w, h = pics[0].width, pics[0].height
    cfg = EncoderConfig(w, h, qp=32, gop=Gop.LOW_DELAY_P)
    recs = []
    q = 32
    with Encoder(cfg) as enc:
        rows, cols = enc.ctu_shape
        prev = None
        for i, p in enumerate(pics):
            y = p.y.astype(np.int16)
            if prev is None:
                act = np.zeros((rows, cols))
            else:
                d = np.abs(y - prev).astype(np.float64)
                pad = np.zeros((rows * 64, cols * 64)); pad[:h, :w] = d
                cnt = np.zeros_like(pad); cnt[:h, :w] = 1
                act = pad.reshape(rows, 64, cols, 64).sum((1, 3)) / cnt.reshape(rows, 64, cols, 64).sum((1, 3))
            prev = y
            q = int(np.clip(q + rng.integers(-3, 4), 22, 45))
            frames = enc.encode(p, None, q)
            for f in frames:
                recs.append((f.slice_type, f.ctu_bits.astype(float), f.ctu_qp.copy(), act))
        for f in enc.flush():
            recs.append((f.slice_type, f.ctu_bits.astype(float), f.ctu_qp.copy(), None))
    out[clip.name] = recs
    np.save(f"/tmp/rc/{clip.stem}.npy", np.array(recs, dtype=object), allow_pickle=True)
    print(clip.name, len(recs), flush=True)

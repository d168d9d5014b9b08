"""Background-only shifts on top of the trade's chosen whole-map shift (kappa 0.2, doubling 6)."""
import multiprocessing as mp, pickle, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main/benchmarks/results/detection-trade")
import collect as C
BG = (3, 6, 9, 12, 18)

def _picture(args):
    paths, chosen = args
    from semrl.agent.answer import trial_coder, OBJECT_MARGIN
    from semrl.bench.encoding import encoder_config
    from semrl.bench.items import image_item
    from semrl.codec import ctu_grid
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.policy import PolicyInput, TrialCoding, offset_block, policy_offsets, roi_blocks
    from semrl.semantics.regions import box_region
    from semrl.semantics.yolo import InferenceSettings
    net, policy = C._state["net"], C._state["policy"]
    assert policy.answer is None
    settings = InferenceSettings()
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    frame = item.yuv[0]
    target = pseudo_target(net.net.detect([item.source[0]], settings, color="rgb")[0])
    out = {"name": str(paths[0]), "codings": {}}
    def score(rgb):
        pred = net.net.detect([rgb], settings, color="rgb")[0]
        return net._match(item, 0, pred, analysis), match_frame(pred, target, "box")
    inner = getattr(policy, "policy", policy)
    for q in C.QPS:
        block = offset_block(policy)
        config = encoder_config(item, q, crf=False, video=False, preset="medium", keyint=250, qg_size=block)
        ctu_shape = ctu_grid(config.width, config.height)
        rgb = frame.to_rgb()
        inputs = PolicyInput(rgb, q, ctu_shape, analysis.regions[0], analysis.boxes[0], 0, {}, gop=config.layout(),
                             cls=analysis.cls[0], conf=analysis.conf[0], picture=frame, coding=TrialCoding(config, item.shape))
        code = trial_coder(inputs)
        offsets = policy_offsets(policy, inputs)
        _, boxes = inner._analyse(rgb)
        h, w = rgb.shape[:2]
        bg = ~roi_blocks(box_region(boxes, (h, w)), offsets.shape, OBJECT_MARGIN, inner.offset_block)
        s = chosen[q]
        out["bg_share", q] = float(bg.mean())
        for b in BG:
            bits, rec = code((offsets + s + b * bg).astype(np.int32))
            out["codings"][("bg", q, b)] = (bits, *score(rec))
    return out

if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    pics = pickle.load(open(src, "rb"))
    from replay import picture_score
    SH = (-6, -3, 0, 3, 6, 9)
    jobs = []
    for p in pics:
        ch = {}
        for q in C.QPS:
            w = 0.2 * 2 ** ((q - 22) / 6)
            ch[q] = max(SH, key=lambda s: (picture_score(p["codings"][("policy", q, s)][2], 0.0) - w * p["codings"][("policy", q, s)][0] / p["pixels"], -p["codings"][("policy", q, s)][0]))
        p["chosen"] = ch
        jobs.append(((Path(p["name"]), Path(p["name"].replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt")), ch))
    res = []
    with mp.get_context("spawn").Pool(2, initializer=C._init, initargs=("detection", C.SHIFTS)) as pool:
        for i, r in enumerate(pool.imap(_picture, jobs)):
            res.append(r); print(i, r["name"], flush=True)
    open(dst, "wb").write(pickle.dumps(res))

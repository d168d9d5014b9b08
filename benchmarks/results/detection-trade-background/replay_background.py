import pickle, sys, itertools
sys.path.insert(0, "/work/main/benchmarks/results/detection-trade")
from replay import curves, picture_score, QPS
from semrl.bench.bdrate import bd_rate
pics = pickle.load(open(sys.argv[1], "rb")); bgs = pickle.load(open(sys.argv[2], "rb"))
lo, hi = map(int, sys.argv[3].split(":"))
SH = (-6,-3,0,3,6,9)
for p, b in zip(pics, bgs):
    assert p["name"] == b["name"]
    for k, v in b["codings"].items():
        p["codings"][k] = v
pics = pics[lo:hi]
a1 = curves(pics, lambda p, q: ("A1", q, 0))
cache = {}
def sc(p, key):
    k = (p["name"], key)
    if k not in cache:
        cache[k] = picture_score(p["codings"][key][2], 0.0)
    return cache[k]
def value(p, key, w):
    return sc(p, key) - w * p["codings"][key][0] / p["pixels"]
def stage1(p, q, t=0.2):
    w = t * 2 ** ((q - 22) / 6)
    return max((("policy", q, s) for s in SH), key=lambda k: (value(p, k, w), -p["codings"][k][0]))
def rule(t2, bgset):
    def choose(p, q):
        k1 = stage1(p, q)
        w = t2 * 2 ** ((q - 22) / 6)
        cands = [k1] + [("bg", q, b) for b in bgset]
        return max(cands, key=lambda k: (value(p, k, w), -p["codings"][k][0]))
    return choose
def show(name, ch):
    mean, obj = curves(pics, ch)
    a, b = bd_rate(a1[0], mean).pchip, bd_rate(a1[1], obj).pchip
    print(f"{name:24s} {a:+6.1f} {b:+6.1f} sum {a+b:+6.1f} q22 {mean.quality[0]-a1[0].quality[0]:+5.1f} bpp {' '.join(f'{x:.3f}' for x in mean.rates)} mAP {' '.join(f'{x:.1f}' for x in mean.quality)}", flush=True)
print("A1", ' '.join(f'{x:.3f}' for x in a1[0].rates), ' '.join(f'{x:.1f}' for x in a1[0].quality))
show("map", lambda p, q: ("policy", q, 0))
show("trade", stage1)
for b in (3, 6, 9, 12, 18):
    show(f"trade+bg{b} always", lambda p, q, b=b: ("bg", q, b))
for t2, bgset in itertools.product((0.1, 0.2, 0.4), ((3, 6, 9, 12), (3, 6, 9, 12, 18), (6, 12), (6, 12, 18))):
    show(f"t2 {t2} bg {bgset}", rule(t2, bgset))
print("-- stage 2 from base QP 27 on")
def rule27(t2, bgset):
    r = rule(t2, bgset)
    return lambda p, q: stage1(p, q) if q < 27 else r(p, q)
for t2, bgset in itertools.product((0.1, 0.2, 0.4), ((3, 6, 9, 12), (6, 12, 18))):
    show(f"from27 t2 {t2} bg {bgset}", rule27(t2, bgset))
print("-- (3,6,9)")
show("from27 t2 0.2 bg (3,6,9)", rule27(0.2, (3, 6, 9)))
show("all t2 0.2 bg (3,6,9)", rule(0.2, (3, 6, 9)))

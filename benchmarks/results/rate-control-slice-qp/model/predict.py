import numpy as np, glob
def sim(recs, mode, a0=1.0, sm=0.5, floor=0.05):
    c=None; errs=[]; ema=None
    for k,(t,b,q,act) in enumerate(recs):
        if t!="P": c=None; ema=None; continue
        s=2.0**(-q/6)
        if c is not None:
            cc=np.maximum(c, floor*c.mean())
            if mode=="base": f=1.0
            elif mode=="frame_up": f=max(1.0,(act.mean()+a0)/(ema.mean()+a0))
            elif mode=="ctu_up": f=np.maximum(1.0,(act+a0)/(ema+a0))
            elif mode=="ctu": f=(act+a0)/(ema+a0)
            pred=(cc*f*s).sum(); errs.append(b.sum()/max(pred,1))
        new=b/s
        c=new if c is None else (1-sm)*c+sm*new
        ema=act if ema is None else (1-sm)*ema+sm*act
    return np.array(errs)
for f in sorted(glob.glob('/tmp/rc/later/*.npy')):
    recs=np.load(f,allow_pickle=True)
    line=f.split('/')[-1][:14]
    for mode,a0 in [("base",1),("frame_up",1),("frame_up",0.5),("ctu_up",1),("ctu_up",2),("ctu",1)]:
        e=sim(recs,mode,a0)
        line+=f" | {mode}{a0}: {np.median(np.abs(np.log(e))):.2f} p95 {np.percentile(e,95):.2f} max {e.max():.2f} under {np.percentile(e,5):.2f}"
    print(line)

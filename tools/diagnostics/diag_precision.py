#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4): how exact must a map be? Per recorded (condition, seed) the forecast ranking of the
model, the oracle (true positions x reach), and the oracle degraded: each bucket moved -1/0/+1 at random (o_shift1),
smoothed by a Gaussian of N buckets (o_smN); m_smN the model's forecast levels smoothed the same way.

    PYTHONPATH=$PWD python tools/diagnostics/diag_precision.py empty 1,2,...,10 ['{"param": value}']   # from the repo root

Reads LIQMAP_BENCH_FORECAST_CACHE (required: the directory of recorded demo markets). docs/benchmarks.md, "The market that opens empty".
"""
import json, sys, pickle, numpy as np, importlib.util, os, math
if not os.environ.get("LIQMAP_BENCH_FORECAST_CACHE"):
    sys.exit(f"{os.path.basename(__file__)}: set LIQMAP_BENCH_FORECAST_CACHE to the directory of recorded demo markets")
spec = importlib.util.spec_from_file_location("bench_forecast", "benchmarks/bench_forecast.py"); bf = importlib.util.module_from_spec(spec); spec.loader.exec_module(bf)
from liqmap.config import DEFAULTS
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay  # noqa: E402 - tools/diagnostics/replay.py: the benchmark's feed loop
from liqmap.core.synthetic import SyntheticModel
cond=sys.argv[1]; seeds=[int(x) for x in sys.argv[2].split(",")]
params=json.loads(sys.argv[3]) if len(sys.argv)>3 else {}
tot={}
names=None
for seed in seeds:
    path=bf._cache_path(seed, bf.HOURS, cond)
    if not os.path.exists(path): continue
    rec = pickle.load(open(path,"rb"))
    steps=rec["steps"]; p=dict(DEFAULTS["model"]); p.update(params)
    models=replay.models_for(rec, bf.ASSETS, p)
    acc={}
    def add(k,v): acc[k]=acc.get(k,0.0)+v; tot[k]=tot.get(k,0.0)+v
    rng=np.random.default_rng(seed)
    for a,t,px,per_range in replay.checkpoints(rec, models):
        m=models[a]; step=steps[a]
        idx, top_b, o = per_range[bf.RANGE_PCT]
        reach = replay.reach_of(m, idx, step, px)
        score, _ = replay.truth_scorer(bf, rec, a, t, px, idx, step, add)
        score("base", np.zeros(len(idx)))
        score("oracle_fc", o*reach)
        b,lu,su,_=m.forecast(price=px); score("model", replay.on_range((b, lu+su), idx))
        bl,ll,sl=m.forecast_levels(); ml=replay.on_range((bl, ll+sl), idx)
        # each bucket's mass moved by -1/0/+1 bucket at random
        sh=rng.integers(-1,2,len(idx)); j=np.clip(np.arange(len(idx))+sh,0,len(idx)-1)
        score("o_shift1", np.bincount(j, weights=o, minlength=len(idx))*reach)
        for w in (1,2,5,10,20):
            k=np.exp(-0.5*(np.arange(-4*w,4*w+1)/w)**2); k/=k.sum()
            sm=np.convolve(o,k,mode="full")[4*w:4*w+len(o)]
            score(f"o_sm{w}", sm*reach)
        for w in (2,5):
            k=np.exp(-0.5*(np.arange(-4*w,4*w+1)/w)**2); k/=k.sum()
            score(f"m_sm{w}", np.convolve(ml,k,mode="full")[4*w:4*w+len(ml)]*reach)
    names=["model","oracle_fc","o_shift1","o_sm1","o_sm2","o_sm5","o_sm10","o_sm20","m_sm2","m_sm5"]
    b=sum(acc[(a,"base")] for a in bf.ASSETS)
    print(cond, seed, " ".join(f"{n}={sum(acc.get((a,n),0) for a in bf.ASSETS)/b:.3f}" for n in names), flush=True)
b=sum(tot[(a,"base")] for a in bf.ASSETS)
print("POOLED", cond, " ".join(f"{n}={sum(tot.get((a,n),0) for a in bf.ASSETS)/b:.3f}" for n in names))
for a in bf.ASSETS:
    print("  ", a, " ".join(f"{n}={tot.get((a,n),0)/tot[(a,'base')]:.3f}" for n in names))

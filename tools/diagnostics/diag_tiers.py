#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4): the TRUE open positions at each checkpoint (exact entry, side, size) placed with the
model's tier bands as the forecast's state places an open (levels past price removed), x the model's reach: what the
model would score if it saw every position and only missed its leverage. Needs tools/diagnostics/diag_empty.py record output in
/tmp/diag. Run from the repo root: PYTHONPATH=$PWD python tools/diagnostics/diag_tiers.py 1,2,...,10
"""
import sys, pickle, numpy as np, importlib.util, os, math
spec = importlib.util.spec_from_file_location("diag", "tools/diagnostics/diag_empty.py"); d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
bf=d.bf
from liqmap.config import DEFAULTS
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay  # noqa: E402 - tools/diagnostics/replay.py: the benchmark's feed loop
from liqmap.core.synthetic import SyntheticModel
from liqmap.core.events import VENUES
cond="empty"
acc={}
for seed in [int(x) for x in sys.argv[1].split(",")]:
  rec = pickle.load(open(f"/tmp/diag/seed{seed}_{cond}.pkl","rb"))
  steps=rec["steps"]; p=dict(DEFAULTS["model"])
  models=replay.models_for(rec, bf.ASSETS, p)
  def add(k,v): acc[k]=acc.get(k,0.0)+v
  pfc=dict(p); pfc["leverage_spread"]=1.0; pfc["forecast_leverage_spread"]=1.0
  for a,t,px,per_range in replay.checkpoints(rec, models):
      m=models[a]; step=steps[a]
      idx, top_b, o_scores = per_range[bf.RANGE_PCT]
      reach = replay.reach_of(m, idx, step, px)
      score, in_range = replay.truth_scorer(bf, rec, a, t, px, idx, step, add)
      add((a,"real"), in_range)
      score("base", np.zeros(len(idx)))
      score("oracle_fc", o_scores*reach)
      b,lu,su,_=m.forecast(price=px); score("model", replay.on_range((b, lu+su), idx))
      rows,pusd=rec["full"][(a,t)]
      for variant in ("tiers","tiers_halfside","tiers_longonly_side"):
          mm=SyntheticModel(a, step, params=pfc, markets=rec["markets"][a], cfg=DEFAULTS)
          mm._allocate(px); mm.last_price=px; mm._start_clock(t)
          for v in np.unique(rows["venue"]):
              sel=rows["venue"]==v
              for s,si in ((1,0),(-1,1)):
                  ss=sel&(rows["side"]==s)
                  if variant=="tiers_halfside": ss=sel
                  if not ss.any(): continue
                  e=rows["entry"][ss].astype(float); w=pusd[ss]; amt=float(w.sum())*(0.5 if variant=="tiers_halfside" else 1.0)
                  ent=(e,e); ww=(w/w.sum(), w/w.sum()); am=(amt,0.0) if si==0 else (0.0,amt)
                  mm._open(int(v), t, ent, ww, am)
          bl,ll,sl=mm.levels()
          ll=np.where((bl+1)*step>px, 0.0, ll)  # longs at/above price: consumed by the path
          sl=np.where(bl*step<px, 0.0, sl)
          prof=replay.on_range((bl, ll+sl), idx)
          score(variant, prof*reach)
          score(variant+"_raw", prof)
names=["model","oracle_fc","tiers","tiers_halfside","tiers_raw"]
for a in bf.ASSETS:
    b=acc[(a,"base")] or 1
    print(seed, a, " ".join(f"{n}={acc[(a,n)]/b:.3f}" for n in names))
b=sum(acc[(a,"base")] for a in bf.ASSETS)
print(seed, "ALL", " ".join(f"{n}={sum(acc[(a,n)] for a in bf.ASSETS)/b:.3f}" for n in names))

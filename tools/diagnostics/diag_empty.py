#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4, the market that opens empty): where the model's levels sit against the true
positions', per checkpoint and bucket, and which true positions the next hour's liquidations came from.

Step 1 (``record``): re-runs the benchmark's recording of one (seed, condition) with the simulator's full open
positions (entry, leverage, USD, opening time, side) kept at each checkpoint (the benchmark keeps only their USD
per bucket). Step 2 (``score``): feeds the recorded market to the model as ``bench_forecast._score_seed`` does and
prints, per checkpoint, the model's and the truth's top buckets, and pooled breakdowns.

    PYTHONPATH=$PWD python tools/diagnostics/diag_empty.py record 1 empty /tmp/diag
    PYTHONPATH=$PWD python tools/diagnostics/diag_empty.py score 1 empty /tmp/diag ['{"param": value}']

Reading the simulator's positions here is for diagnosis only: the model never sees them.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import replay  # noqa: E402

bf = replay.bench()
from liqmap.core import buckets  # noqa: E402
from liqmap.core.synthetic import SyntheticModel  # noqa: E402
from liqmap.feeds.demo import source as demo_source  # noqa: E402


def record(seed: int, condition: str, out: str) -> None:
    full: dict = {}
    orig = demo_source.DemoSource.truth

    def truth(self, asset):
        full[(asset, round(self.now(), 3))] = replay.open_positions(self, asset)
        return orig(self, asset)

    demo_source.DemoSource.truth = truth
    rec = asyncio.run(bf._record_seed(seed, bf.HOURS, condition))
    demo_source.DemoSource.truth = orig
    # key the full positions by checkpoint time as the recording has it
    cps = {}
    for a, t, *_ in rec["checkpoints"]:
        cps[(a, t)] = full[(a, round(t, 3))]
    rec["full"] = cps
    replay.write(rec, out, seed, condition)

def _top(px, step, scores):
    return bf._top_buckets(px, step, scores)


def score(seed: int, condition: str, out: str, params: dict) -> dict:
    with open(os.path.join(out, f"seed{seed}_{condition}.pkl"), "rb") as fh:
        rec = pickle.load(fh)
    from liqmap.config import DEFAULTS

    p = dict(DEFAULTS["model"])
    p.update(params)
    steps = rec["steps"]
    models = {a: SyntheticModel(a, steps[a], params=p, markets=rec["markets"][a], cfg=DEFAULTS) for a in bf.ASSETS}
    feed = rec["feed"]
    done = 0
    agg: dict = {}

    def add(k, v):
        agg[k] = agg.get(k, 0.0) + v

    verbose = os.environ.get("DIAG_VERBOSE") == "1"
    for a, t, px, per_range, upto in rec["checkpoints"]:
        while done < upto:
            now, batch = feed[done]
            for name in bf.ASSETS:
                arrs = batch[name]
                if arrs:
                    models[name].update(oi=arrs.get("oi"), trades=arrs.get("trade"), liqs=arrs.get("liq"))
                models[name].advance(now)
            done += 1
        m = models[a]
        step = steps[a]
        b, lu, su, rch = m.forecast(price=px)
        fc = dict(zip(b.tolist(), (lu + su).tolist()))
        bl, ll, sl = m.forecast_levels()
        at_fc = dict(zip(bl.tolist(), (ll + sl).tolist()))
        idx, top_b, o_scores = per_range[bf.RANGE_PCT]
        _, top_m = _top(px, step, fc)
        _, top_a = _top(px, step, at_fc)
        _, top_o = _top(px, step, dict(zip(idx.tolist(), o_scores.tolist())))
        log = rec["truth"][(a, t)]
        bi = buckets.index(log["price"], step)
        usd = log["usd"]
        inside = (bi >= idx[0]) & (bi <= idx[-1])
        real = float(usd[inside].sum())
        got = {n: float(usd[inside & np.isin(bi, top)].sum()) for n, top in
               (("model", top_m), ("atrisk_fc", top_a), ("oracle", top_o), ("base", top_b))}
        for n, v in got.items():
            add((a, n), v)
        add((a, "real"), real)
        # the true positions: which of them the hour liquidated (by their liq bucket), their age and leverage
        rows, pusd = rec["full"][(a, t)]
        lb = buckets.index(rows["liq"], step)
        inr = (lb >= idx[0]) & (lb <= idx[-1])
        age_min = (t - rows["opened"]) / 60.0
        # model's mass in range per side, truth's per side
        mb = np.array([at_fc.get(int(x), 0.0) for x in idx])
        o_long = np.bincount(lb[inr & (rows["side"] > 0)] - idx[0], weights=pusd[inr & (rows["side"] > 0)],
                             minlength=len(idx))
        o_short = np.bincount(lb[inr & (rows["side"] < 0)] - idx[0], weights=pusd[inr & (rows["side"] < 0)],
                              minlength=len(idx))
        ml = np.array([dict(zip(bl.tolist(), ll.tolist())).get(int(x), 0.0) for x in idx])
        ms = np.array([dict(zip(bl.tolist(), sl.tolist())).get(int(x), 0.0) for x in idx])
        add((a, "m_long"), ml.sum())
        add((a, "m_short"), ms.sum())
        add((a, "o_long"), o_long.sum())
        add((a, "o_short"), o_short.sum())
        # correlation of model's and truth's profiles in range (log1p), and of each with the realized liqs
        rl = np.bincount(bi[inside] - idx[0], weights=usd[inside], minlength=len(idx))
        if real > 0:
            ostot = o_long + o_short
            for n, prof in (("model", mb), ("oracle", ostot)):
                s = prof.sum()
                if s > 0:
                    # share of realized USD that fell where the profile puts mass, mass-weighted (a "hit density")
                    add((a, "dens_" + n), float((prof / s * rl).sum() / real))
        # the liquidations of the hour, by their positions' age/leverage at the checkpoint (matched by id)
        # (approximate: liqs are by price; we take the positions alive at t whose liq bucket got hit)
        # leverage and age profile of the USD in the oracle's top buckets
        intop = np.isin(lb, top_o) & inr
        for lo_, hi_ in ((0, 10), (10, 30), (30, 60), (60, 1e9)):
            sel = intop & (age_min >= lo_) & (age_min < hi_)
            add((a, f"otop_age_{lo_}"), float(pusd[sel].sum()))
        for lo_, hi_ in ((1, 8), (8, 20), (20, 40), (40, 1000)):
            sel = intop & (rows["lev"] >= lo_) & (rows["lev"] < hi_)
            add((a, f"otop_lev_{lo_}"), float(pusd[sel].sum()))
        add((a, "otop_usd"), float(pusd[intop].sum()))
        big = pusd >= np.percentile(pusd, 98) if len(pusd) else pusd > 0
        add((a, "otop_whale"), float(pusd[intop & big].sum()))
        add((a, "inr_whale"), float(pusd[inr & big].sum()))
        add((a, "inr_usd"), float(pusd[inr].sum()))
        if verbose:
            def fmt(tops):
                return " ".join(f"{((x + 0.5) * step / px - 1) * 100:+.2f}" for x in sorted(tops)[:40])
            print(f"{a} t={t - rec['checkpoints'][0][1]:.0f} px={px:.1f} real={real:.0f} got m={got['model']:.0f} "
                  f"o={got['oracle']:.0f} b={got['base']:.0f}")
            print("   model top:", fmt(top_m))
            print("   orac  top:", fmt(top_o))
            # where the hour's liqs were
            if real > 0:
                rb = np.unique(bi[inside])
                print("   liqs at  :", " ".join(f"{((x + 0.5) * step / px - 1) * 100:+.2f}" for x in rb[:30]))
    res = {}
    for a in bf.ASSETS:
        r = agg.get((a, "real"), 0.0) or 1.0
        res[a] = {k: round(agg.get((a, k), 0.0) / r, 3) for k in ("model", "atrisk_fc", "oracle", "base",
                                                                     "dens_model", "dens_oracle")}
        o = agg.get((a, "otop_usd"), 0.0) or 1.0
        res[a]["otop_age"] = [round(agg.get((a, f"otop_age_{x}"), 0.0) / o, 2) for x in (0, 10, 30, 60)]
        res[a]["otop_lev"] = [round(agg.get((a, f"otop_lev_{x}"), 0.0) / o, 2) for x in (1, 8, 20, 40)]
        res[a]["otop_whale"] = round(agg.get((a, "otop_whale"), 0.0) / o, 2)
        res[a]["inr_whale"] = round(agg.get((a, "inr_whale"), 0.0) / (agg.get((a, "inr_usd"), 0.0) or 1), 2)
        res[a]["m_long_share"] = round(agg[(a, "m_long")] / max(agg[(a, "m_long")] + agg[(a, "m_short")], 1), 3)
        res[a]["o_long_share"] = round(agg[(a, "o_long")] / max(agg[(a, "o_long")] + agg[(a, "o_short")], 1), 3)
    res["stats"] = {a: {k: round(v) for k, v in models[a].stats.items()} for a in bf.ASSETS}
    return res


if __name__ == "__main__":
    cmd, seed, cond, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if cmd == "record":
        record(seed, cond, out)
    else:
        params = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
        print(json.dumps(score(seed, cond, out, params), indent=1))

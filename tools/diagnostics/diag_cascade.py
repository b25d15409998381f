#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4, cascade days, session 11): what the model gets wrong about the long side while
price falls through its levels.

Step 1 (``record``): re-runs the benchmark's recording of one (seed, condition) and keeps, beside it, what the
benchmark drops: the simulator's full open positions at each checkpoint (ids, opening time, entry, leverage), its
full liquidation log (ids, entry, leverage, side) and, every simulated minute, each venue's true long and short USD
(at entry) with the open interest it publishes.
Step 2 (``score``): feeds the recorded market to the model as ``bench_forecast._score_seed`` does and prints per
checkpoint the model's and the truth's USD by side and distance, and where the hour's liquidations came from
(positions open at the checkpoint — and where the model had them — or opened during the hour).

    PYTHONPATH=$PWD python tools/diagnostics/diag_cascade.py record 5 cascade /tmp/diag
    PYTHONPATH=$PWD python tools/diagnostics/diag_cascade.py score 5 cascade /tmp/diag ['{"param": value}']

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
from liqmap.config import DEFAULTS  # noqa: E402
from liqmap.core import buckets  # noqa: E402
from liqmap.core.events import VENUES  # noqa: E402
from liqmap.core.model.sources import LONG_I, NV, SHORT_I  # noqa: E402
from liqmap.core.synthetic import SyntheticModel  # noqa: E402
from liqmap.feeds.demo import source as demo_source  # noqa: E402


_sims = replay.sims


def record(seed: int, condition: str, out: str) -> None:
    full: dict = {}
    minutes: dict = {a: [] for a in bf.ASSETS}
    holder: dict = {}
    orig_truth, orig_step = demo_source.DemoSource.truth, demo_source.DemoSource.step

    def truth(self, asset):
        holder["src"] = self
        full[(asset, round(self.now(), 3))] = replay.open_positions(self, asset)
        return orig_truth(self, asset)

    def step(self):
        holder["src"] = self
        frames = orig_step(self)
        now = self.now()
        last = holder.get("last_min", -1)
        if int(now // 60) != last and self.sims:
            holder["last_min"] = int(now // 60)
            for a in bf.ASSETS:
                if a not in self.sims:
                    continue
                row = {"t": now, "price": self.sim(a).price, "long": np.zeros(NV), "short": np.zeros(NV),
                       "oi": np.zeros(NV)}
                for s in _sims(self, a):
                    p = s.pos
                    u = s.usd_of(p["venue"], p["qty"], s.price)
                    row["long"] += np.bincount(p["venue"][p["side"] > 0], weights=u[p["side"] > 0], minlength=NV)[:NV]
                    row["short"] += np.bincount(p["venue"][p["side"] < 0], weights=u[p["side"] < 0], minlength=NV)[:NV]
                    for vid in s.by_vid:
                        row["oi"][vid] += float(s.usd_of(np.array([vid]), np.array([s.open_interest(vid)]),
                                                         s.price)[0])
                minutes[a].append(row)
        return frames

    demo_source.DemoSource.truth = truth
    demo_source.DemoSource.step = step
    try:
        rec = asyncio.run(bf._record_seed(seed, bf.HOURS, condition))
    finally:
        demo_source.DemoSource.truth, demo_source.DemoSource.step = orig_truth, orig_step
    src = holder["src"]
    rec["full"] = {(a, t): full[(a, round(t, 3))] for a, t, *_ in rec["checkpoints"]}
    rec["liq_full"] = {a: np.concatenate([x for s in _sims(src, a) for x in s.liq_log]) for a in bf.ASSETS}
    rec["minutes"] = minutes
    replay.write(rec, out, seed, condition)


def _side_usd(m, venues_only=True):
    """The model state's USD per venue and side (observed and prior sources summed)."""
    m._place_queued()
    out = np.zeros((NV, 2))
    for v in range(NV):
        for s in (LONG_I, SHORT_I):
            out[v, s] = m._venue_side_usd(v, s)
    return out


BANDS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


def _by_band(rel_pct, usd):
    d = np.abs(rel_pct)
    return [float(usd[(d >= lo) & (d < hi)].sum()) for lo, hi in zip(BANDS[:-1], BANDS[1:])]


def score(seed: int, condition: str, out: str, params: dict, assets=None) -> dict:
    with open(os.path.join(out, f"seed{seed}_{condition}.pkl"), "rb") as fh:
        rec = pickle.load(fh)
    p = dict(DEFAULTS["model"])
    p.update(params)
    steps = rec["steps"]
    models = {a: SyntheticModel(a, steps[a], params=p, markets=rec["markets"][a], cfg=DEFAULTS) for a in bf.ASSETS}
    feed = rec["feed"]
    done = 0
    assets = assets or bf.ASSETS
    minutes = rec.get("minutes", {})
    mi = {a: 0 for a in bf.ASSETS}
    t0 = rec["checkpoints"][0][1] - bf.WARMUP_S
    for a, t, px, per_range, upto in rec["checkpoints"]:
        while done < upto:
            now, batch = feed[done]
            for name in bf.ASSETS:
                arrs = batch[name]
                if arrs:
                    models[name].update(oi=arrs.get("oi"), trades=arrs.get("trade"), liqs=arrs.get("liq"))
                models[name].advance(now)
                # per-minute trajectory: the model's sides against the truth's
                rows = minutes.get(name, [])
                while mi[name] < len(rows) and rows[mi[name]]["t"] <= now:
                    r = rows[mi[name]]
                    mi[name] += 1
                    if name in assets and os.environ.get("DIAG_TRAJ") == "1" and mi[name] % 5 == 0:
                        su = _side_usd(models[name])
                        fc = _side_usd(models[name]._fc) if models[name]._fc is not None else su
                        print(f"  {name} {(r['t'] - t0) / 60:5.0f}m px={r['price']:9.2f} "
                              f"truth L/S {r['long'].sum() / 1e6:6.2f}/{r['short'].sum() / 1e6:6.2f} "
                              f"oi {r['oi'].sum() / 1e6:6.2f}  model L/S {su[:, 0].sum() / 1e6:6.2f}/"
                              f"{su[:, 1].sum() / 1e6:6.2f} fc {fc[:, 0].sum() / 1e6:6.2f}/{fc[:, 1].sum() / 1e6:6.2f}"
                              f" forced {models[name]._forced.share() * 100:4.1f}%")
            done += 1
        if a not in assets:
            continue
        m = models[a]
        step = steps[a]
        idx, top_b, o_scores = per_range[bf.RANGE_PCT]
        b, lu, su, rch = m.forecast(price=px)
        fc = dict(zip(b.tolist(), (lu + su).tolist()))
        _, top_m = bf._top_buckets(px, step, fc)
        _, top_o = bf._top_buckets(px, step, dict(zip(idx.tolist(), o_scores.tolist())))
        bl, ll, sl = m.forecast_levels()
        rel_m = ((bl + 0.5) * step / px - 1) * 100
        rows, pusd = rec["full"][(a, t)]
        rel_o = (rows["liq"] / px - 1) * 100
        lg = rows["side"] > 0
        log = rec["truth"][(a, t)]
        bi = buckets.index(log["price"], step)
        inside = (bi >= idx[0]) & (bi <= idx[-1])
        real = float(log["usd"][inside].sum())
        got_m = float(log["usd"][inside & np.isin(bi, top_m)].sum())
        got_o = float(log["usd"][inside & np.isin(bi, top_o)].sum())
        got_b = float(log["usd"][inside & np.isin(bi, top_b)].sum())
        print(f"{a} cp {(t - t0) / 60:.0f}m px {px:.2f} real {real / 1e6:.2f}M caught model {got_m / max(real, 1):.2f} "
              f"oracle {got_o / max(real, 1):.2f} base {got_b / max(real, 1):.2f}  forced {m._forced.share() * 100:.1f}% "
              f"drift {m.drift_hour * 100:+.2f}%/h sigma {m.sigma_hour * 100:.2f}%")
        fmt = lambda xs: " ".join(f"{x / 1e6:6.2f}" for x in xs)  # noqa: E731
        print(f"   bands % {' '.join(f'{lo:g}-{hi:g}' for lo, hi in zip(BANDS[:-1], BANDS[1:]))}")
        print(f"   model long  below {fmt(_by_band(rel_m[rel_m < 0], ll[rel_m < 0]))}")
        print(f"   truth long  below {fmt(_by_band(rel_o[lg & (rel_o < 0)], pusd[lg & (rel_o < 0)]))}")
        print(f"   model short above {fmt(_by_band(rel_m[rel_m > 0], sl[rel_m > 0]))}")
        print(f"   truth short above {fmt(_by_band(rel_o[~lg & (rel_o > 0)], pusd[~lg & (rel_o > 0)]))}")
        print(f"   model beyond: long {ll[rel_m < -10].sum() / 1e6:.2f} short {sl[rel_m > 10].sum() / 1e6:.2f}; "
              f"truth: long {pusd[lg & (rel_o < -10)].sum() / 1e6:.2f} short {pusd[~lg & (rel_o > 10)].sum() / 1e6:.2f}")
        tops = ((np.sort(top_m) + 0.5) * step / px - 1) * 100
        print(f"   model tops {tops.min():+.2f}..{tops.max():+.2f} (below {int((tops < 0).sum())}/{len(tops)})")
        # the hour's liquidations: positions open at the checkpoint or opened later
        lf = rec["liq_full"][a]
        hour = lf[(lf["ts"] > t) & (lf["ts"] <= t + bf.HORIZON_S)]
        alive = np.isin(hour["id"], rows["id"])
        for nm, sel in (("open at cp", alive), ("opened after", ~alive)):
            h = hour[sel]
            if len(h) == 0:
                continue
            rel = (h["price"] / px - 1) * 100
            print(f"   hour liqs {nm:12s}: {h['usd'].sum() / 1e6:6.2f}M long {h['usd'][h['side'] > 0].sum() / 1e6:6.2f}M"
                  f" median rel {np.median(rel):+.2f}% in±5 {h['usd'][np.abs(rel) < 5].sum() / 1e6:6.2f}M"
                  f" entry rel med {np.median((h['entry'] / px - 1) * 100):+.2f}% lev med {np.median(h['lev']):.0f}")
        if alive.any():
            ids = hour["id"][alive]
            pr = rows[np.isin(rows["id"], ids)]
            age = (t - pr["opened"]) / 60
            print(f"   ... their age at cp: <10m {(age < 10).mean():.2f} 10-30 {((age >= 10) & (age < 30)).mean():.2f} "
                  f"30-60 {((age >= 30) & (age < 60)).mean():.2f} >60 {(age >= 60).mean():.2f} (opened before start "
                  f"{(pr['opened'] < t0).mean():.2f})")
    return {a: {k: round(v) for k, v in models[a].stats.items()} for a in assets}


if __name__ == "__main__":
    cmd, seed, cond, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if cmd == "record":
        record(seed, cond, out)
    else:
        params = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
        assets = sys.argv[6].split(",") if len(sys.argv) > 6 else None
        print(json.dumps(score(seed, cond, out, params, assets), indent=1))

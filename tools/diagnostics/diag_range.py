#!/usr/bin/env python3
"""Diagnostic (issue 17 item 4, range, session 11 helper range18): why the model's USD at risk per bucket ranks the
ranging market's next hour worse than the true positions do. Needs ``diag_range_record.py`` output.

    PYTHONPATH=$PWD python tools/diagnostics/diag_range.py 1,2,...,10 range /tmp/range18 ['{"param": value}']

Per checkpoint (±5 %): the top-10 % share of the hour's liquidation USD caught by the model's forecast, the oracle ×
reach and counterfactual true-position maps (only the positions the model could have seen open, only those opened
before it started, the true entries placed with the model's tier bands); where the hour's liquidated USD came from
(alive at the checkpoint or opened later; seen or unseen; leverage; age); the at-risk USD by side and distance band,
the model's and the truth's. Reading the simulator's positions is for diagnosis only: the model never sees them."""
import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
spec = importlib.util.spec_from_file_location("diag_empty", HERE / "diag_empty.py")
de = importlib.util.module_from_spec(spec)
spec.loader.exec_module(de)
bf = de.bf
import replay  # noqa: E402
from liqmap.config import DEFAULTS  # noqa: E402
from liqmap.core import buckets  # noqa: E402
from liqmap.core.forecast import reach_probability  # noqa: E402
from liqmap.core.synthetic import SyntheticModel  # noqa: E402

BANDS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.01)
LEV = (0, 15, 30, 60, 1000)
AGE = (0, 15, 30, 60, 120, 1e9)  # minutes
acc: dict = {}


def add(k, v):
    acc[k] = acc.get(k, 0.0) + float(v)


def band(d_pct):
    return np.clip(np.digitize(np.abs(d_pct), BANDS) - 1, 0, len(BANDS) - 2)


def tiers_profile(a, step, rows, pusd, t, px, rec, pfc):
    """The true positions (rows, USD) placed with the model's forecast tier bands at their true entries and sides."""
    mm = SyntheticModel(a, step, params=pfc, markets=rec["markets"][a], cfg=DEFAULTS)
    mm._allocate(px)
    mm.last_price = px
    mm._start_clock(t)
    for v in np.unique(rows["venue"]):
        sel = rows["venue"] == v
        for s, si in ((1, 0), (-1, 1)):
            ss = sel & (rows["side"] == s)
            if not ss.any():
                continue
            e = rows["entry"][ss].astype(float)
            w = pusd[ss]
            amt = float(w.sum())
            mm._open(int(v), t, (e, e), (w / amt, w / amt), (amt, 0.0) if si == 0 else (0.0, amt))
    bl, ll, sl = mm.levels()
    ll = np.where((bl + 1) * step > px, 0.0, ll)
    sl = np.where(bl * step < px, 0.0, sl)
    return dict(zip(bl.tolist(), (ll + sl).tolist()))


def main():
    seeds = [int(x) for x in sys.argv[1].split(",")]
    cond, d = sys.argv[2], sys.argv[3]
    over = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    p = dict(DEFAULTS["model"])
    p.update(over)
    pfc = dict(p)
    pfc["leverage_spread"] = p["forecast_leverage_spread"]
    for seed in seeds:
        with open(os.path.join(d, f"seed{seed}_{cond}.pkl"), "rb") as fh:
            rec = pickle.load(fh)
        models = replay.models_for(rec, bf.ASSETS, p)
        for a, t, px, per_range in replay.checkpoints(rec, models):
            m, step = models[a], rec["steps"][a]
            idx, top_b, o_scores = per_range[bf.RANGE_PCT]
            dl = np.log((idx + 0.5) * step / px)
            reach = reach_probability(dl, m.sigma_hour, m.horizon_hours, m.tails, m.drift_hour)
            dpct = ((idx + 0.5) * step / px - 1) * 100
            bnd = band(dpct)
            up = dpct > 0
            log = rec["truth"][(a, t)]
            bi = buckets.index(log["price"], step)
            usd = log["usd"]
            inside = (bi >= idx[0]) & (bi <= idx[-1])
            real = float(usd[inside].sum())
            add("real", real)

            def score(name, prof):
                _, top = bf._top_buckets(px, step, dict(zip(idx.tolist(), np.asarray(prof).tolist())))
                add(("got", name), usd[inside & np.isin(bi, top)].sum())
                # where its top buckets sit: side x band
                sel = np.isin(idx, top)
                for s_, name_s in ((~up, "below"), (up, "above")):
                    for k in range(len(BANDS) - 1):
                        add(("tops", name, name_s, k), (sel & s_ & (bnd == k)).sum())
                return top

            score("base", np.zeros(len(idx)))
            b, lu, su, _ = m.forecast(price=px)
            fc = dict(zip(b.tolist(), (lu + su).tolist()))
            score("model", [fc.get(int(x), 0.0) for x in idx])
            score("oracle_fc", o_scores * reach)
            score("oracle_raw", o_scores)
            bl, ll, sl = m.forecast_levels()
            mlong = dict(zip(bl.tolist(), ll.tolist()))
            mshort = dict(zip(bl.tolist(), sl.tolist()))
            ml = np.array([mlong.get(int(x), 0.0) for x in idx])
            ms = np.array([mshort.get(int(x), 0.0) for x in idx])
            score("model_atrisk_fc", ml + ms)
            # side-swapped / side-blind variants of the model's own levels
            rows, pusd = rec["full"][(a, t)]
            lb = buckets.index(rows["liq"], step)
            inr = (lb >= idx[0]) & (lb <= idx[-1])
            seen = rows["opened"] >= bf.START
            for name, sel in (("o_seen", seen), ("o_unseen", ~seen)):
                prof = np.bincount(lb[inr & sel] - idx[0], weights=pusd[inr & sel], minlength=len(idx))
                score(name, prof * reach)
            tp = tiers_profile(a, step, rows, pusd, t, px, rec, pfc)
            score("o_tiers", np.array([tp.get(int(x), 0.0) for x in idx]) * reach)
            tps = tiers_profile(a, step, rows[seen], pusd[seen], t, px, rec, pfc)
            score("o_tiers_seen", np.array([tps.get(int(x), 0.0) for x in idx]) * reach)
            # at-risk by side x band: model (forecast levels) vs truth; raw and x reach
            ol = np.bincount(lb[inr & (rows["side"] > 0)] - idx[0], weights=pusd[inr & (rows["side"] > 0)],
                             minlength=len(idx))
            os_ = np.bincount(lb[inr & (rows["side"] < 0)] - idx[0], weights=pusd[inr & (rows["side"] < 0)],
                              minlength=len(idx))
            tot_m, tot_o = (ml + ms).sum() or 1.0, (ol + os_).sum() or 1.0
            for k in range(len(BANDS) - 1):
                for nm, arr, tot in (("m_long", ml, tot_m), ("m_short", ms, tot_m), ("o_long", ol, tot_o),
                                     ("o_short", os_, tot_o)):
                    for s_, name_s in ((~up, "below"), (up, "above")):
                        add(("prof", nm, name_s, k), (arr[s_ & (bnd == k)]).sum() / tot)
            # per checkpoint, for the side question: the model's and the truth's long share within ±5 % and the
            # share of the hour's liquidation USD below price
            below_liq = float(usd[inside & (bi * step < px)].sum())
            if real > 0:
                acc.setdefault("rows", []).append((ml.sum() / max(ml.sum() + ms.sum(), 1e-9),
                                                    ol.sum() / max(ol.sum() + os_.sum(), 1e-9), below_liq / real))
            # where the hour's liquidations came from
            lf = rec["liqs_full"][(a, t)]
            lf = lf[lf["ts"] <= t + bf.HORIZON_S]
            lfb = buckets.index(lf["price"], step)
            lin = (lfb >= idx[0]) & (lfb <= idx[-1])
            lf = lf[lin]
            # the log keeps no position id: a liquidation of a position alive at t is at that position's exact
            # liquidation price (same venue, side); the rest were opened after t
            key = {(int(v), int(s), float(x)): i for i, (v, s, x) in
                   enumerate(zip(rows["venue"], rows["side"], rows["liq"]))}
            match = np.array([key.get((int(v), int(s), float(x)), -1) for v, s, x in
                              zip(lf["venue"], lf["side"], lf["price"])], dtype=np.int64)
            alive = match >= 0
            add(("src", "alive"), lf["usd"][alive].sum())
            add(("src", "later"), lf["usd"][~alive].sum())
            ages = (t - rows["opened"][match[alive]]) / 60
            levs = rows["lev"][match[alive]]
            if alive.any():
                add(("src", "alive_unseen"), lf["usd"][alive][rows["opened"][match[alive]] < bf.START].sum())
                for k in range(len(AGE) - 1):
                    add(("age", k), lf["usd"][alive][(ages >= AGE[k]) & (ages < AGE[k + 1])].sum())
                for k in range(len(LEV) - 1):
                    add(("lev", k), lf["usd"][alive][(levs >= LEV[k]) & (levs < LEV[k + 1])].sum())
            ld = (lf["price"] / px - 1) * 100
            for s_, name_s in ((ld < 0, "below"), (ld >= 0, "above")):
                for k in range(len(BANDS) - 1):
                    add(("liqband", name_s, k), lf["usd"][s_ & (band(ld) == k)].sum())
            # the truth's at-risk USD by leverage (in range) and by age
            for k in range(len(LEV) - 1):
                sel = inr & (rows["lev"] >= LEV[k]) & (rows["lev"] < LEV[k + 1])
                add(("o_lev", k), pusd[sel].sum() / tot_o)
        print("seed", seed, "done", {k[1]: round(v / acc["got", "base"], 3) for k, v in acc.items()
                                     if isinstance(k, tuple) and k[0] == "got"}, flush=True)
    r = np.array(acc.pop("rows"))
    c = np.corrcoef(r.T)
    print(f"side, {len(r)} checkpoints with liquidations: long share model {r[:, 0].mean():.3f} truth {r[:, 1].mean():.3f}; "
          f"corr(model, truth) {c[0, 1]:.3f}; corr with the share of the hour's liq USD below price: model "
          f"{c[0, 2]:.3f}, truth {c[1, 2]:.3f}")
    real = acc["real"]
    base = acc["got", "base"]
    print("ratio over base:", {k[1]: round(v / base, 3) for k, v in acc.items() if isinstance(k, tuple) and k[0] == "got"})
    tot = acc["src", "alive"] + acc["src", "later"]
    print(f"hour's liq USD in range: {real:.0f}; from positions alive at t {acc['src', 'alive'] / tot:.3f} "
          f"(of which opened before the model started {acc.get(('src', 'alive_unseen'), 0) / tot:.3f}), "
          f"opened after t {acc['src', 'later'] / tot:.3f}")
    print("by age at t (min)", [f"{AGE[k]}-{AGE[k + 1]}: {acc.get(('age', k), 0) / tot:.3f}" for k in range(len(AGE) - 1)])
    print("by leverage", [f"{LEV[k]}-{LEV[k + 1]}: {acc.get(('lev', k), 0) / tot:.3f}" for k in range(len(LEV) - 1)])
    print("truth at-risk by leverage", [f"{LEV[k]}-{LEV[k + 1]}: {acc.get(('o_lev', k), 0) / (acc.get(('o_lev', 0), 0) + acc.get(('o_lev', 1), 0) + acc.get(('o_lev', 2), 0) + acc.get(('o_lev', 3), 0)):.3f}" for k in range(len(LEV) - 1)])
    n = sum(1 for k in acc if isinstance(k, tuple) and k[0] == "src") and None
    hdr = "band%   " + " ".join(f"{BANDS[k]:g}-{BANDS[k + 1]:g}".rjust(9) for k in range(len(BANDS) - 1))
    print(hdr)
    for s in ("below", "above"):
        print(f"liqs {s:5s}", " ".join(f"{acc.get(('liqband', s, k), 0) / tot:9.3f}" for k in range(len(BANDS) - 1)))
    ncp = acc.get("ncp", 0)
    for nm in ("m_long", "m_short", "o_long", "o_short"):
        for s in ("below", "above"):
            v = [acc.get(("prof", nm, s, k), 0) for k in range(len(BANDS) - 1)]
            if sum(v) > 0:
                tt = sum(acc.get(("prof", nm[0] + "_long", s2, k), 0) + acc.get(("prof", nm[0] + "_short", s2, k), 0)
                         for s2 in ("below", "above") for k in range(len(BANDS) - 1))
                print(f"{nm:7s} {s:5s}", " ".join(f"{x / tt:9.3f}" for x in v))
    for name in ("base", "model", "oracle_fc", "o_tiers", "o_seen", "model_atrisk_fc", "oracle_raw"):
        for s in ("below", "above"):
            v = [acc.get(("tops", name, s, k), 0) for k in range(len(BANDS) - 1)]
            tt = sum(acc.get(("tops", name, s2, k), 0) for s2 in ("below", "above") for k in range(len(BANDS) - 1))
            print(f"tops {name:15s} {s:5s}", " ".join(f"{x / tt:9.3f}" for x in v))


if __name__ == "__main__":
    main()

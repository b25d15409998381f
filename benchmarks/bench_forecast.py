"""forecast_skill: does the synthetic model know where liquidations will happen? (docs/architecture.md §4, §11)

The demo market runs unpaced for several seeds; every frame goes through the real venue parsers into a
``Market`` and from there to one ``SyntheticModel`` per asset — the model sees only what venues publish
(open interest, trades, the liquidations each venue lets through), never the simulator's positions. At
checkpoints (every 10 simulated minutes after a 30-minute warm-up) the price buckets within ±5 % of the
last traded price are ranked:

- ``model`` (the headline): by the model's next-hour forecast, the USD at risk in the bucket times the chance
  that price reaches it within the hour (``SyntheticModel.forecast``, ``liqmap/core/forecast.py``: each tier
  spread over its leverage band (``forecast_levels``), realized volatility of the trades the model saw,
  fat-tailed reach probability);
- ``at_risk``: by what the Synthetic map draws in its live column (``liqmap/core/grids/reach.py``): the model's
  thin tier lines (``levels()``) × the chance of reach to the power ``synthetic_reach_alpha`` (reported beside it);
- ``lines``: by the model's USD at risk alone (the plain lines; what Synthetic drew before issue 20);
- ``baseline``: by distance from price alone ("liquidations happen near price");
- ``oracle`` / ``oracle_forecast``: the simulator's TRUE open positions, raw and weighted by the same chance of
  reach (never shown to the model): what a perfect at-risk map would score.

Each ranking's top 10 % of buckets is scored against the ground truth: the share of the liquidation
notional that actually happened in the next hour (the simulator's full log, not the throttled feeds)
inside the ±5 % range that fell into those buckets. value = model share ÷ baseline share, target ≥ 1.5.
Buckets a ranking leaves at zero are ordered by distance, so an empty model degrades to the baseline. The
baseline is the forecast of a model that knows nothing (the same chance of reach on a flat map), so the
ratio measures what the model's levels add.

Sharpness (``detail.sharpness``, issue 20): do the levels look like levels? At the same checkpoints, the share
of the profile's USD in range held by its top 10 % of buckets (``liqmap/core/sharpness.py``; a flat map scores
0.10) for what the map draws (``model``: the at_risk ranking's profile), the plain lines (``lines``), the last
finished 1-minute column's lines as the Synthetic map replays them (``column``), the oracle's true positions and
the baseline's profile (its chance of reach), mean over checkpoints, over ±5 %, ±2 % and ±1 % (about what the map
shows at 1m). ``model_vs_oracle`` is the model's share ÷ the oracle's.

Where the rankings win or lose (``detail.by_distance``, diagnostic): per band of distance from price (0-0.5,
0.5-1, 1-2, 2-3, 3-5 %), the share of the hour's liquidation USD that happened there, the share each ranking's
top buckets caught there, and the share of its top buckets placed there (``*_tops``).

Knobs (environment): ``LIQMAP_BENCH_FORECAST_SEEDS`` (headline seeds, default 1-10),
``LIQMAP_BENCH_FORECAST_HOLDOUT`` (default 11-20: seeds scored the same way and reported under
``detail.holdout``, to check a model choice on markets it was not chosen on), ``LIQMAP_BENCH_FORECAST_PREROLL`` (seconds of history
fed to the model before the run: the back-fill variant; default 0 = cold start), ``LIQMAP_BENCH_FORECAST_CACHE``
(a directory: each seed's recorded market is kept there, so re-scoring a model change skips the simulation),
``LIQMAP_BENCH_FORECAST_MODEL`` (JSON model parameters over the defaults, e.g. ``{"leverage_spread": 0}``).

The simulator's trader population is its own (config ``demo``: a lognormal leverage mixture clipped by
venue and tier, lognormal + Pareto sizes, stops and take-profits); nothing here tunes it to the model.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import time

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core import buckets, calibration
from liqmap.core.events import VENUES
from liqmap.core.market import Market
from liqmap.core.forecast import clusters as forecast_clusters, reach_probability
from liqmap.core.grids.reach import drawn_levels, of_model
from liqmap.core.sharpness import top_share
from liqmap.core.synthetic import SyntheticModel
from liqmap.feeds.demo import DemoSource, make_parsers

START = 1_700_000_000.0
SEEDS = tuple(int(s) for s in os.environ.get("LIQMAP_BENCH_FORECAST_SEEDS", "1,2,3,4,5,6,7,8,9,10").split(","))
# Hold-out seeds (not the headline value): scored the same way and reported beside it, so a model parameter
# chosen on SEEDS is checked on markets it was not chosen on. Set it empty to halve the run.
HOLDOUT = tuple(int(s) for s in os.environ.get("LIQMAP_BENCH_FORECAST_HOLDOUT", "11,12,13,14,15,16,17,18,19,20")
                .split(",") if s.strip())
WORKERS = int(os.environ.get("LIQMAP_BENCH_FORECAST_WORKERS", "2"))  # seeds run in parallel processes
ASSETS = ("BTC", "ETH", "SOL")
HOURS = float(os.environ.get("LIQMAP_BENCH_FORECAST_HOURS", "2.0"))
WARMUP_S = 1800.0
EVERY_S = 600.0
HORIZON_S = 3600.0
CAL_EVERY_S = float(os.environ.get("LIQMAP_BENCH_CALIBRATION_EVERY", "120"))  # forecast_calibration's checkpoints
CALIBRATE = False  # set by forecast_calibration only: forecast_skill's run does exactly what it did before
RANGE_PCT = 5.0
TOP_SHARE = 0.10
UPDATE_S = 10.0  # how often the model is fed (like the engine's ingest loop)
RANGES = (RANGE_PCT, 2.0)  # the headline range first; a narrower one for reference
# Sharpness of the at-risk profile (liqmap/core/sharpness.py: share of the range's USD in its top 10 % of
# buckets) over these ranges; ±1 % (about what the map shows at 1m) is taken from the ±2 % range's buckets.
SHARP_RANGES = (RANGE_PCT, 2.0, 1.0)
# The simulated market starts in steady state (positions opened before the start, which the model never
# saw, as on a real cold start); set LIQMAP_BENCH_FORECAST_PREHISTORY=0 for a market that opens empty.
PREHISTORY = os.environ.get("LIQMAP_BENCH_FORECAST_PREHISTORY", "1") != "0"
# Market conditions (issue 17 items 3-4): the demo market's own knobs (config ``demo``) set for one kind of
# market, the trader population unchanged. "steady" is the headline market (positions opened before the start,
# which the model never saw); "empty" opens with no positions; "trend" drifts 2.5 % an hour (up on odd seeds,
# down on even ones); "range" moves little and reverts to its mean within the hour, no news jumps; "cascade"
# has frequent large news jumps hitting a thin book (cascade days).
CONDITIONS: dict[str, dict] = {
    "steady": {},
    "empty": {"prehistory": False},
    "trend": {"drift_pct_hour": 2.5},
    "range": {"vol_hour_pct": 0.4, "mean_revert_hours": 0.5, "jump_rate_per_hour": 0.0},
    "cascade": {"jump_rate_per_hour": 3.0, "jump_pct": 2.0, "cascade_strength": 4.0},
}
CONDITION = os.environ.get("LIQMAP_BENCH_FORECAST_CONDITION", "steady")
# The demo's resting cohorts (feeds/demo/resting.py: real-sized open interest, on in the product since issue 16)
# are left out of the benchmark's market by default, so it stays the market the model's parameters were chosen on
# (and the recordings in a cache stay valid). LIQMAP_BENCH_FORECAST_RESTING=1 records it with them (use a fresh
# cache directory): the same tape, prices and truth, the OI at real size. Measured (session 9, seeds 1-10 / 11-20):
# forecast_skill 1.744 -> 1.621 / 1.691 -> 1.349, at-risk 0.864 -> 0.794 / 1.103 -> 0.886: on a tiny OI the
# model's step cap (model.cap_rel, 3 % of OI) clipped bursts; on real-sized OI, as on a real venue, it never binds.
RESTING = os.environ.get("LIQMAP_BENCH_FORECAST_RESTING", "0") == "1"
# forecast_dollars: the conditions and seed groups it scores (the first group chooses, the others confirm)
DOLLAR_CONDITIONS = tuple(c for c in os.environ.get("LIQMAP_BENCH_FORECAST_CONDITIONS",
                                                     ",".join(CONDITIONS)).split(",") if c)
# LIQMAP_BENCH_FORECAST_GROUP_SEEDS: seeds per group (default 10; fewer only for a cheaper look, the note says so)
GROUP_SEEDS = max(1, min(10, int(os.environ.get("LIQMAP_BENCH_FORECAST_GROUP_SEEDS", "10"))))
# LIQMAP_BENCH_FORECAST_GROUPS: the first seed of each group (default 1,11,21; session 11 added 31 as a set no
# earlier choice was scored on — 21-30 had been scored once, so it was no longer untouched)
GROUP_STARTS = tuple(int(s) for s in os.environ.get("LIQMAP_BENCH_FORECAST_GROUPS", "1,11,21").split(",") if s.strip())
SEED_GROUPS = tuple(tuple(range(a, a + GROUP_SEEDS)) for a in GROUP_STARTS)
# LIQMAP_BENCH_FORECAST_RECORDED_ONLY=1: forecast_dollars scores only the (seed, condition) markets already in
# LIQMAP_BENCH_FORECAST_CACHE and records none (a look while recordings are still being made; rows list their seeds)
RECORDED_ONLY = os.environ.get("LIQMAP_BENCH_FORECAST_RECORDED_ONLY", "") not in ("", "0")
DOLLARS_BAND = 1.5  # model ÷ truth of the USD at risk within ±5 % must lie within [1/1.5, 1.5]
# Back-fill variant (docs/model.md §3 step 10, what ``liqmap --demo`` does with its pre-roll): the model is first fed
# this many seconds of the market's history (trades, liquidations, OI every few seconds) before the scored run.
# 0 (the headline) = a cold start: the model sees nothing from before the run.
PREROLL_S = float(os.environ.get("LIQMAP_BENCH_FORECAST_PREROLL", "0"))
# With a pre-roll: "klines" gives the model that history only as live mode's back-fill has it (liqmap/feeds/backfill):
# Binance's, Bybit's and OKX's 1-minute bars and 5-minute open-interest samples, Bybit's and OKX's bars with the
# taker split of Binance's minute (their venues publish none), Deribit's and Hyperliquid's history unseen (they
# publish no OI history); "klines_binance" Binance's only (the live back-fill until session 15); "klines_all" every
# venue's, each with its own split (session 14's measure of what back-filling every venue would give); "none"
# scores the same market with its history unseen (a cold start there, the back-fill's baseline).
BACKFILL = os.environ.get("LIQMAP_BENCH_FORECAST_BACKFILL", "")
BACKFILL_VENUES = {"klines": "live", "klines_binance": "binance", "klines_all": "all", "none": None}
# The back-fill's open-interest sample period, s: 300, what the venues publish (5-minute history). A diagnostic knob:
# shorter shows how much of the history's turnover the 5-minute samples hide (no venue publishes finer history).
BACKFILL_OI_S = float(os.environ.get("LIQMAP_BENCH_FORECAST_BACKFILL_OI_S", "300"))
# Model parameters over the config defaults, as JSON (e.g. '{"leverage_spread": 0}'): to score a variant
# (the sharpness/skill trade-off of issue 20) without editing the defaults. Unset = the defaults.
MODEL_PARAMS = json.loads(os.environ.get("LIQMAP_BENCH_FORECAST_MODEL") or "{}")


def _top_buckets(price: float, step: float, scores: dict[int, float] | None,
                 range_pct: float = RANGE_PCT) -> tuple[np.ndarray, np.ndarray]:
    """(all buckets in range, the top 10 % of them) ranked by score, ties and zeros by distance: the engine's
    own hit-rate ranking (``core.hitrate.top_buckets``), so the benchmark scores what the product shows."""
    from liqmap.core.hitrate import top_buckets

    return top_buckets(price, step, scores, range_pct)


def _scores(b: np.ndarray, usd: np.ndarray) -> dict[int, float]:
    u, inv = np.unique(b, return_inverse=True)
    return dict(zip(u.tolist(), np.bincount(inv, weights=usd).tolist()))


REAL_SIZE = "@real"  # a condition's name with this suffix: the same market with the resting cohorts (real-sized OI)


def _demo_overrides(seed: int, condition: str) -> tuple[dict, bool]:
    """The demo config overrides and the prehistory flag of one market condition for one seed."""
    condition = condition.removesuffix(REAL_SIZE)
    if condition not in CONDITIONS:
        raise ValueError(f"bench_forecast: unknown market condition {condition!r} (one of {', '.join(CONDITIONS)})")
    over = dict(CONDITIONS[condition])
    prehistory = bool(over.pop("prehistory", PREHISTORY))
    if "drift_pct_hour" in over and seed % 2 == 0:
        over["drift_pct_hour"] = -over["drift_pct_hour"]
    return over, prehistory


def _cache_path(seed: int, hours: float, condition: str = "steady") -> str | None:
    """Recorded market of one seed (``LIQMAP_BENCH_FORECAST_CACHE`` = a directory; unset = no cache).

    Only for iterating on the model: the recording holds what the model is fed and the ground truth the
    checkpoints are scored on, so a model change can be re-scored without re-simulating the market. A
    change to the demo market needs a fresh directory (the key is seed, hours and prehistory only)."""
    d = os.environ.get("LIQMAP_BENCH_FORECAST_CACHE")
    if not d:
        return None
    os.makedirs(d, exist_ok=True)
    tag = "" if condition == "steady" else f"_{condition}"
    seen = "_seen2" if DEGRADE else ""  # the degraded-oracle diagnostic records its oracles' positions too
    return os.path.join(d, f"seed{seed}_h{hours:g}_p{int(PREHISTORY)}_r{PREROLL_S:g}{tag}{seen}_v2.pkl")


async def _record_seed(seed: int, hours: float, condition: str = "steady") -> dict:
    """Run the demo market for one seed: what the model would be fed, when, and the checkpoints' truth."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    over, prehistory = _demo_overrides(seed, condition)
    cfg["demo"].update(over)
    if not (RESTING or condition.endswith(REAL_SIZE)):
        cfg["demo"]["resting_oi_btc_usd"] = 0.0
    # No L2 books: the model never reads them, and they are most of the frames.
    src = DemoSource(cfg, assets=list(ASSETS), seed=seed, start=START, focus=[], books=False,
                     prehistory=prehistory, preroll=PREROLL_S)
    market = Market(list(ASSETS), clock=src.now)
    fresh: dict[str, dict[str, list]] = {a: {"oi": [], "trade": [], "liq": []} for a in ASSETS}

    def sink(kind: str, asset: str, rows) -> None:
        if market.add(kind, asset, rows) == len(rows) and kind in fresh[asset]:
            fresh[asset][kind].append(rows)

    parsers = make_parsers(src, sink, None, cfg)
    steps = {a: buckets.bucket_step(src.assets[a].ref_price, src.assets[a].tick, cfg["buckets"]["target_bp"])
             for a in ASSETS}
    last_px = {a: src.assets[a].ref_price for a in ASSETS}
    feed: list[tuple] = []  # (now, {asset: {kind: rows}}) one per model update

    def take(a: str) -> dict:
        parts = fresh[a]
        arrs = {}
        for kind in ("oi", "trade", "liq"):
            if parts[kind]:
                x = np.concatenate(parts[kind])
                arrs[kind] = x[np.argsort(x["ts"], kind="stable")]
                parts[kind] = []
        if "trade" in arrs and len(arrs["trade"]):
            last_px[a] = float(arrs["trade"]["price"][-1])
        return arrs

    if PREROLL_S > 0:  # the history first, one model update per minute of it
        for a in ASSETS:
            for chunk in src.catch_up(a):
                for ts, venue, conn, raw in chunk:
                    await parsers[venue].feed(raw, ts, conn)
                if chunk:
                    feed.append((chunk[-1][0], {x: (take(x) if x == a else {}) for x in ASSETS}))
    cps: list[tuple] = []  # (asset, now, last price, {range: (idx, baseline top, oracle top)})
    # DEGRADE: the oracle of the positions opened once the model was fed (the back-fill's first minute or the
    # run's start), per checkpoint: what a map could know from watching, had it placed each one exactly
    seen_oracle: dict[tuple, np.ndarray] = {}
    # ... and the true positions' entries, sides and sizes with their leverage unknown: each spread over the
    # simulator's own leverage distribution (all of them, and those opened once the model was fed)
    entry_oracle: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    maxlev = {a: np.zeros(len(VENUES)) for a in ASSETS}  # each venue's leverage cap per asset, by venue id
    for a in ASSETS if DEGRADE else ():
        for c in src.contracts_of(a).values():
            maxlev[a][c.vid] = c.max_lev
    watched_from = src.history_start if PREROLL_S > 0 else src.now()
    end = src.now() + hours * 3600.0
    next_update = src.now() + UPDATE_S
    next_cp = src.now() + WARMUP_S
    frames = 0
    while src.now() < end:
        for ts, venue, conn, raw in src.step():
            await parsers[venue].feed(raw, ts, conn)
            frames += 1
        now = src.now()
        if now >= next_update:
            next_update += UPDATE_S
            feed.append((now, {a: take(a) for a in ASSETS}))
        if now >= next_cp and now + HORIZON_S <= end + 1e-9:
            next_cp += EVERY_S
            for a in ASSETS:
                # reference only (never shown to the model): the same ranking on the TRUE open positions
                tr = src.truth(a)
                oracle = _scores(buckets.index(tr["liq_price"], steps[a]), tr["usd"])
                per_range = {}
                for rp in RANGES:
                    idx, top_b = _top_buckets(last_px[a], steps[a], None, rp)
                    per_range[rp] = (idx, top_b, np.array([oracle.get(int(b), 0.0) for b in idx]))
                if DEGRADE:
                    w = tr["opened"] >= watched_from
                    idx5 = per_range[RANGE_PCT][0]
                    seen = _scores(buckets.index(tr["liq_price"][w], steps[a]), tr["usd"][w])
                    seen_oracle[(a, now)] = np.array([seen.get(int(b), 0.0) for b in idx5])
                    entry_oracle[(a, now)] = (_entry_oracle(tr, maxlev[a], cfg["demo"], steps[a], idx5),
                                              _entry_oracle(tr[w], maxlev[a], cfg["demo"], steps[a], idx5))
                cps.append((a, now, last_px[a], per_range, len(feed)))
    truth = {}
    for a, t, _, _, _ in cps:
        log = src.liquidations(a, since=t)
        truth[(a, t)] = log[log["ts"] <= t + HORIZON_S][["ts", "price", "usd"]].copy()
    errors = sum(sum(p.errors.values()) for p in parsers.values())
    return {"seed": seed, "condition": condition, "frames": frames, "parse_errors": errors, "rejects": market.rejects.total(),
            "steps": steps, "markets": {a: dict(src.assets[a].markets) for a in ASSETS}, "feed": feed,
            "checkpoints": cps, "truth": truth, "seen_oracle": seen_oracle, "entry_oracle": entry_oracle}


def _recorded(seed: int, hours: float, condition: str = "steady") -> dict:
    path = _cache_path(seed, hours, condition)
    if path and os.path.exists(path):
        with open(path, "rb") as fh:
            return pickle.load(fh)
    rec = asyncio.run(_record_seed(seed, hours, condition))
    if path:
        with open(path + ".tmp", "wb") as fh:
            pickle.dump(rec, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(path + ".tmp", path)
    return rec


def _score_seed(rec: dict, model_params: dict | None = None) -> dict:
    """Feed one recorded seed to a fresh model per asset and score every checkpoint's top buckets."""
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}  # the model's, as of now
    params = dict(cfg["model"])
    params.update(model_params or {})
    steps = rec["steps"]
    models = {a: SyntheticModel(a, steps[a], params=params, markets=rec["markets"][a], cfg=cfg) for a in ASSETS}
    feed, cps = rec["feed"], rec["checkpoints"]
    acc: dict[tuple, float] = {}
    ovl: dict[tuple, float] = {}
    sharp: dict[tuple, list] = {}  # (range, asset, profile) → per-checkpoint top-10 % shares
    calib: dict[str, list] = {"clusters": [], "buckets": []}  # (predicted chance of reach, reached) pairs
    paths = _price_paths(feed)
    dollars: list[float] = []  # per checkpoint: the model's USD at risk within ±5 % ÷ the true positions'
    # per checkpoint (asset, time, forecast's USD at risk within ±5 %, the map's, the true positions'): what NEXT 1H
    # prints against what the map draws, and which of the two the truth sides with (forecast_real_dollars)
    fc_vs_map: list[tuple] = []
    scale_log: list[tuple] = []
    done = 0
    if BACKFILL in BACKFILL_VENUES and cps:
        run_start = cps[0][1] - WARMUP_S
        n_hist = sum(1 for now, _ in feed if now <= run_start)
        for name in (ASSETS if BACKFILL != "none" else ()):  # "none": the same market, history unseen
            oi, trades = _as_backfill([feed[i][1][name] for i in range(n_hist)], BACKFILL_VENUES[BACKFILL])
            if len(oi) or len(trades):
                models[name].update(oi=oi, trades=trades)
                models[name].advance(run_start)
        done = n_hist
    # the chance of reach is checked every CAL_EVERY_S over the scored checkpoints' span (more outcomes per
    # decile than the 10-minute checkpoints give; each still looks one hour ahead)
    cal_t = cps[0][1] if cps else math.inf
    cal_end = cps[-1][1] if cps else -math.inf
    for a, t, px, per_range, upto in cps:
        while done < upto:
            now, batch = feed[done]
            for name in ASSETS:
                arrs = batch[name]
                if arrs:
                    models[name].update(oi=arrs.get("oi"), trades=arrs.get("trade"), liqs=arrs.get("liq"))
                models[name].advance(now)
            done += 1
            while CALIBRATE and cal_t <= now and cal_t <= cal_end + 1e-9:
                for name in ASSETS:
                    _calibration(calib, paths[name], now, steps[name], models[name])
                cal_t += CAL_EVERY_S
        m = models[a]
        b, lu, su, rch = m.forecast(price=px)  # expected next-hour liquidations: at risk × chance of reach
        forecast = dict(zip(b.tolist(), (lu + su).tolist()))
        # at risk alone (the plain lines), as the map's current column draws them: the flow's levels and, within
        # ±15 % of price, the resting layer (session 17; until then the map's columns were the flow alone)
        b, lu, su = m.report_levels() if hasattr(m, "report_levels") else m.levels()
        at_risk = dict(zip(b.tolist(), (lu + su).tolist()))
        # what the Synthetic map draws there: the lines × reach^α from this price (core/grids/reach.py)
        drawn = dict(zip(b.tolist(), drawn_levels(b, lu + su, steps[a], px,
                                                  of_model(m, params["synthetic_reach_alpha"])).tolist()))
        sigma = m.sigma_hour
        log = rec["truth"][(a, t)]
        bi = buckets.index(log["price"], steps[a])
        usd = log["usd"]
        for rp, (idx, top_b, o_scores) in per_range.items():
            _, top_m = _top_buckets(px, steps[a], forecast, rp)
            _, top_r = _top_buckets(px, steps[a], drawn, rp)
            _, top_l = _top_buckets(px, steps[a], at_risk, rp)
            _, top_o = _top_buckets(px, steps[a], dict(zip(idx.tolist(), o_scores.tolist())), rp)
            # the oracle weighted by the same chance of reach (the model's own volatility and trend estimate)
            reach = reach_probability(np.log((idx + 0.5) * steps[a] / px), sigma, m.horizon_hours, m.tails,
                                      getattr(m, "drift_hour", 0.0))
            _, top_of = _top_buckets(px, steps[a], dict(zip(idx.tolist(), (o_scores * reach).tolist())), rp)
            degraded: dict[str, list] = {}  # name → the top buckets of each draw (the shifts: SHIFT_DRAWS of them)
            if DEGRADE and rp == RANGE_PCT:  # how exact must a map be (diagnostic, LIQMAP_BENCH_FORECAST_DEGRADE=1)
                rng = np.random.default_rng(int(t) % 100_000 + len(a))
                variants = {n: [o] for n, o in _smoothed_oracles(o_scores).items()}
                variants["oracle_shift1"] = [_shifted(o_scores, rng) for _ in range(SHIFT_DRAWS)]
                if (seen := rec.get("seen_oracle", {}).get((a, t))) is not None:
                    variants["oracle_seen"] = [seen]
                    variants["oracle_seen_shift1"] = [_shifted(seen, rng) for _ in range(SHIFT_DRAWS)]
                if (ent := rec.get("entry_oracle", {}).get((a, t))) is not None:
                    variants["oracle_entry"], variants["oracle_seen_entry"] = [ent[0]], [ent[1]]
                for name, draws in variants.items():
                    degraded[name] = [_top_buckets(px, steps[a], dict(zip(idx.tolist(), (o * reach).tolist())), rp)[1]
                                      for o in draws]
            inside = (bi >= idx[0]) & (bi <= idx[-1])
            acc[(rp, a, "realized")] = acc.get((rp, a, "realized"), 0.0) + float(usd[inside].sum())
            got = {}
            for name, top in (("model", top_m), ("at_risk", top_r), ("lines", top_l), ("baseline", top_b),
                              ("oracle", top_o), ("oracle_forecast", top_of)):
                got[name] = float(usd[inside & np.isin(bi, top)].sum())
                acc[(rp, a, name)] = acc.get((rp, a, name), 0.0) + got[name]
            for name, tops in degraded.items():  # the mean over the draws: one random shift is not the oracle
                caught = float(np.mean([usd[inside & np.isin(bi, top)].sum() for top in tops]))
                acc[(rp, a, name)] = acc.get((rp, a, name), 0.0) + caught
            if rp == RANGE_PCT:  # where each ranking catches (or misses) the hour's liquidations: by distance
                _by_distance(acc, bi[inside], usd[inside], px, steps[a],
                             {"model": top_m, "at_risk": top_r, "baseline": top_b, "oracle": top_o})
            if rp == RANGE_PCT and usd[inside].sum() > 0:  # one checkpoint's verdict (robustness, not the metric)
                verdict = "won" if got["model"] > got["baseline"] else "lost" if got["model"] < got["baseline"] else "tied"
                acc[("checkpoints", verdict)] = acc.get(("checkpoints", verdict), 0.0) + 1
            # diagnostic (not the metric): how many of the oracle's top buckets the model's top shares
            ovl[(rp, a)] = ovl.get((rp, a), 0.0) + len(np.intersect1d(top_m, top_o)) / max(len(top_o), 1)
            _sharpness(sharp, m, a, t, rp, px, steps[a], idx, drawn, at_risk, o_scores, reach)
            if rp == RANGE_PCT:  # issue 17 item 3: the USD at risk in range, the model's and the true positions'
                m_usd = float(sum(at_risk.get(int(x), 0.0) for x in idx))
                o_usd = float(o_scores.sum())
                k = m.usd_scale() if hasattr(m, "usd_scale") else 1.0
                # (raw USD before the dollar scale, the scale, truth): to choose the scale's cap in one pass
                scale_log.append((m_usd / k, k, o_usd))
                acc[("usd", "model")] = acc.get(("usd", "model"), 0.0) + m_usd
                acc[("usd", "truth")] = acc.get(("usd", "truth"), 0.0) + o_usd
                if o_usd > 0:
                    dollars.append(m_usd / o_usd)
                fb, fl, fs = m.forecast_levels()
                lo_b, hi_b = int(idx[0]), int(idx[-1])
                inr = (fb >= lo_b) & (fb <= hi_b)
                fc_vs_map.append((a, t, float((fl[inr] + fs[inr]).sum()), m_usd, o_usd))
    return {"seed": rec["seed"], "condition": rec.get("condition", "steady"), "dollars": dollars,
            "scale_log": scale_log, "fc_vs_map": fc_vs_map,
            "checkpoints": len(cps), "frames": rec["frames"], "calib": calib,
            "parse_errors": rec["parse_errors"], "rejects": rec["rejects"], "acc": acc,
            "oracle_overlap": {k: v / (len(cps) // len(ASSETS)) for k, v in ovl.items()},
            "model_stats": {a: {k: round(v) for k, v in models[a].stats.items()} for a in ASSETS},
            "sharp": sharp}


# Distance bands (% from price) for the diagnostic ``by_distance``: the baseline's top 10 % of buckets is
# about ±0.5 %, so the first band is its ground; the model has to win beyond it.
# How exact must a map be (issue 17 item 4, session 17): with LIQMAP_BENCH_FORECAST_DEGRADE=1 each condition row also
# scores the true positions degraded, × the same reach: each bucket's USD moved -1, 0 or +1 bucket at random
# (``oracle_shift1``: every true position known, to one bucket; the mean over SHIFT_DRAWS draws) and smoothed by a Gaussian of N buckets
# (``oracle_sigmaN``: known to about N buckets, centred right). Seeded per checkpoint, so reruns agree.
DEGRADE = os.environ.get("LIQMAP_BENCH_FORECAST_DEGRADE", "0") == "1"
DEGRADE_SIGMAS = (1, 2, 5, 10)
# One random ±1 shift scored 1.52 in one draw and 1.84 in another on the same positions (back-filled range 1-10,
# session 19): the shifted oracles are the mean over this many draws.
SHIFT_DRAWS = 16
# ``oracle_seen``: only the true positions opened after the model's first data (the back-fill's first minute, or
# the run's start), exact; ``oracle_seen_shift1`` the same one bucket off. What watching alone could know: the
# positions opened before it are visible only as the open interest's total.
# ``oracle_entry``: every true position's entry, side and size known, its leverage not: spread over the simulator's
# own leverage distribution (the lognormal mixture, rounded and clipped as it draws them, LEVERAGE_POINTS quantiles)
# at the position's own maintenance rate; ``oracle_seen_entry`` the same for the positions opened once it watched.
# The best a map can do that knows who opened what, where, but not at what leverage — no venue publishes it.
DEGRADED = ("oracle_shift1",) + tuple(f"oracle_sigma{sg}" for sg in DEGRADE_SIGMAS) + (
    "oracle_seen", "oracle_seen_shift1", "oracle_entry", "oracle_seen_entry")
LEVERAGE_POINTS = 60


def _leverage_quantiles(demo: dict) -> np.ndarray:
    """LEVERAGE_POINTS leverages standing for the demo's mixture (each component its weight's share of points, at
    its normal quantiles), rounded as the simulator rounds them (clipped per venue by the caller)."""
    from statistics import NormalDist

    w = np.asarray(demo["leverage_weights"], float)
    w = w / w.sum()
    out = []
    for med, wk in zip(demo["leverage_medians"], w):
        n = max(1, int(round(LEVERAGE_POINTS * wk)))
        z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
        out.append(np.exp(np.log(med) + demo["leverage_sigma"] * z))
    return np.maximum(np.round(np.concatenate(out)), 2.0)


def _entry_oracle(tr: np.ndarray, maxlev: np.ndarray, demo: dict, step: float, idx: np.ndarray) -> np.ndarray:
    """USD per bucket of ``idx`` of these positions, each spread over the leverage distribution (see DEGRADED)."""
    if not len(tr):
        return np.zeros(len(idx))
    s = tr["side"].astype(float)
    mm = s * (tr["liq_price"] / tr["entry"] - 1.0) + 1.0 / tr["leverage"]  # the position's maintenance rate
    lev = np.minimum(_leverage_quantiles(demo)[None, :], np.maximum(maxlev[tr["venue"]], 2.0)[:, None])
    liq = tr["entry"][:, None] * (1.0 - s[:, None] / lev + (s * mm)[:, None])
    b = buckets.index(np.maximum(liq, step), step).ravel() - int(idx[0])
    usd = np.repeat(tr["usd"] / lev.shape[1], lev.shape[1])
    keep = (b >= 0) & (b < len(idx))
    return np.bincount(b[keep], usd[keep], len(idx))


def _shifted(o: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each bucket's USD moved −1, 0 or +1 bucket at random (one draw)."""
    n = len(o)
    return np.bincount(np.clip(np.arange(n) + rng.integers(-1, 2, n), 0, n - 1), o, n)


def _smoothed_oracles(o: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for sg in DEGRADE_SIGMAS:
        x = np.arange(-4 * sg, 4 * sg + 1)
        k = np.exp(-0.5 * (x / sg) ** 2)
        out[f"oracle_sigma{sg}"] = np.convolve(o, k / k.sum(), mode="same")
    return out


DIST_BANDS = (0.0, 0.5, 1.0, 2.0, 3.0, RANGE_PCT + 0.01)


def _band_of(b: np.ndarray, px: float, step: float) -> np.ndarray:
    d = np.abs((np.asarray(b) + 0.5) * step / px - 1.0) * 100.0
    return np.clip(np.digitize(d, DIST_BANDS) - 1, 0, len(DIST_BANDS) - 2)


def _by_distance(acc: dict, bi: np.ndarray, usd: np.ndarray, px: float, step: float, tops: dict) -> None:
    """Per distance band: the liquidation USD of the hour, the USD each ranking's top buckets caught there,
    and how many of its top buckets sit there (diagnostic, not the metric)."""
    nb = len(DIST_BANDS) - 1
    band = _band_of(bi, px, step)
    real = np.bincount(band, weights=usd, minlength=nb)
    for i in range(nb):
        acc[("dist", "realized", i)] = acc.get(("dist", "realized", i), 0.0) + float(real[i])
    for name, top in tops.items():
        sel = np.isin(bi, top)
        got = np.bincount(band[sel], weights=usd[sel], minlength=nb)
        n = np.bincount(_band_of(top, px, step), minlength=nb)
        for i in range(nb):
            acc[("dist", name, i)] = acc.get(("dist", name, i), 0.0) + float(got[i])
            acc[("dist_n", name, i)] = acc.get(("dist_n", name, i), 0.0) + float(n[i])


def _distance_summary(acc: dict) -> dict:
    """``by_distance``: per band, the share of the hour's liquidation USD (±5 %) that happened there
    (``realized``) and that each ranking's top buckets caught there, and the share of each ranking's top
    buckets placed there (``tops``)."""
    nb = len(DIST_BANDS) - 1
    real = sum(acc.get(("dist", "realized", i), 0.0) for i in range(nb))
    names = ("model", "at_risk", "baseline", "oracle")
    out = {}
    for i in range(nb):
        hi = DIST_BANDS[i + 1] if i + 1 < nb else RANGE_PCT
        row = {"realized": round(acc.get(("dist", "realized", i), 0.0) / real, 3) if real else None}
        for n in names:
            tot_n = sum(acc.get(("dist_n", n, j), 0.0) for j in range(nb))
            row[n] = round(acc.get(("dist", n, i), 0.0) / real, 3) if real else None
            row[f"{n}_tops"] = round(acc.get(("dist_n", n, i), 0.0) / tot_n, 3) if tot_n else None
        out[f"{DIST_BANDS[i]:g}-{hi:g}%"] = row
    return out


def _price_paths(feed: list) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per asset, every traded (time, price) the model is fed, in time order: where price went after a checkpoint."""
    out = {}
    for a in ASSETS:
        parts = [batch[a]["trade"] for _, batch in feed if batch.get(a) and "trade" in batch[a] and len(batch[a]["trade"])]
        x = np.concatenate(parts) if parts else np.zeros(0, [("ts", "f8"), ("price", "f8")])
        x = x[np.argsort(x["ts"], kind="stable")]
        out[a] = (np.asarray(x["ts"], np.float64), np.asarray(x["price"], np.float64))
    return out


def _calibration(calib: dict, path: tuple, t: float, step: float, m) -> None:
    """Issue 17 item 2: the chance of reach the reports panel prints against what price did in the next hour.

    ``clusters``: the NEXT 1H clusters (``forecast.clusters``, top 3, as the engine prints them) — the walk's
    raw chance beside each and whether any trade of the next hour reached the cluster's nearest bucket centre
    (the bucket its chance is for; ``calibration.reached``). ``buckets``: every bucket within ±5 % holding
    expected USD, the same test per bucket."""
    ts, pr = path
    before = np.searchsorted(ts, t, side="right")
    sel = (ts > t) & (ts <= t + HORIZON_S)
    if before == 0 or not sel.any():
        return
    px = float(pr[before - 1])  # the last trade at the checkpoint
    b, lu, su, reach = m.forecast(price=px)
    if len(b) == 0:
        return
    lo_px, hi_px = float(pr[sel].min()), float(pr[sel].max())
    # the chance printed: the driftless walk's (forecast.summary; the drift only ranks the clusters)
    chance = reach_probability(np.log((b + 0.5) * step / px), m.sigma_hour, m.horizon_hours, m.tails)
    # what the market was doing (features a live engine has, for a map conditioned on them: tools/fit_reach_calibration.py)
    reg = calibration.regime_of(m)
    for c in forecast_clusters(b, lu, su, reach, step, px, top=3, chance=chance):
        edge = calibration.nearest_edge(c, step)
        hit = calibration.reached(c["side"], edge, lo_px, hi_px)
        calib["clusters"].append((float(c["reach"]), hit))
        ahead = 1.0 if c["side"] == "short" else -1.0  # the cluster lies up (+) or down (−) from price
        calib.setdefault("info", []).append({"raw": float(c["reach"]), "reached": bool(hit), "t": float(t),
                                             "dist_pct": round(abs(edge / px - 1.0) * 100, 4),
                                             "sigma_hour": round(float(m.sigma_hour), 6),
                                             "drift_t_toward": round(ahead * reg["drift_t"], 3),
                                             "vol_ratio": reg["vol_ratio"]})
    centre = (b + 0.5) * step
    keep = (np.abs(centre / px - 1.0) <= RANGE_PCT / 100.0) & ((lu + su) > 0)
    below = centre < px
    hit = np.where(below, lo_px <= centre, hi_px >= centre)[keep]
    calib["buckets"].extend(zip(chance[keep].round(4).tolist(), hit.tolist()))


# forecast_calibration's third seed set (a second hold-out, issue 17 item 2: choose on 1-10, confirm on 11-20 and 21-30)
CAL_THIRD = tuple(int(s) for s in os.environ.get("LIQMAP_BENCH_CALIBRATION_THIRD", "21,22,23,24,25,26,27,28,29,30")
                  .split(",") if s.strip())


def forecast_calibration() -> dict:
    """Reliability of the chance of reach (issue 17 item 2) per market condition (``LIQMAP_BENCH_FORECAST_CONDITIONS``,
    default all five) and pooled over them, on the headline seeds (1–10: the map was fitted there,
    ``tools/fit_reach_calibration.py``) and the hold-out groups 11–20 (``holdout``) and 21–30 (``third``): per decile
    of the chance printed (through ``liqmap.core.calibration.DEMO``), the share of NEXT 1H clusters price reached
    within the hour, with a 90 % interval from resampling seeds (``calibration.judged``). Judged by the rule declared
    in docs/benchmarks.md ("The judging rule"): each condition and the pool over hold-out seeds 11–30 together; a
    decile is off when its whole interval lies beyond ±10 points. value = the largest amount a judged interval
    misses ±10 by (target 0). With ``LIQMAP_BENCH_FORECAST_RECORDED_ONLY=1`` only recorded markets are scored."""
    global CALIBRATE
    t0 = time.perf_counter()
    CALIBRATE = True  # the seed workers are forked after this: they inherit it
    groups = {n: g for n, g in (("seeds", SEEDS), ("holdout", HOLDOUT), ("third", CAL_THIRD)) if g}
    jobs = [(s, c) for c in DOLLAR_CONDITIONS for s in sorted({s for g in groups.values() for s in g})]
    if RECORDED_ONLY:
        jobs = [(s, c) for s, c in jobs if (p := _cache_path(s, HOURS, c)) and os.path.exists(p)]
    runs = _run_seeds(tuple(jobs))
    held = tuple(s for n in ("holdout", "third") if n in groups for s in groups[n])
    if held:
        groups["holdout_all"] = held  # the judged set: both hold-out groups together
    # the chance printed: the demo map read in the market's regime at the checkpoint (calibration.demo_chance)
    maps = {"clusters": lambda i: calibration.demo_chance(i["raw"], i["vol_ratio"]), "clusters_raw": lambda i: i["raw"]}
    out: dict = {}
    for name, seeds in groups.items():
        out[name] = {"seeds": list(seeds)}
        for c in (*DOLLAR_CONDITIONS, "pooled"):
            part = [r for r in runs if r["seed"] in seeds and (c == "pooled" or r["condition"] == c)]
            if part:
                out[name][c] = {k: calibration.judged([(r["condition"], r["seed"], float(fn(i)), i["reached"])
                                                       for r in part for i in r["calib"]["info"]]) for k, fn in maps.items()}
                out[name][c]["seeds_scored"] = sorted({r["seed"] for r in part})
    judge = "holdout_all" if held else "seeds"
    judged_sets = {c: t["clusters"] for c, t in out.get(judge, {}).items() if isinstance(t, dict) and "clusters" in t}
    excess = [t["excess_points"] for t in judged_sets.values() if t["excess_points"] is not None]
    value = max(excess) if excess else None
    # the earlier point value (session 9): the largest decile gap of the printed chance, worst hold-out group
    point = {c: max((out[n][c]["clusters"]["max_gap_points"] or 0.0 for n in ("holdout", "third")
                     if n in out and c in out[n]), default=None) for c in (*DOLLAR_CONDITIONS, "pooled")}
    return {"value": value, "unit": "points a judged decile's 90 % seed-bootstrap interval misses ±10 by "
                                    "(NEXT 1H clusters, worst condition, hold-out seeds)",
            "target": 0.0, "ok": bool(value is not None and value <= 0.0),
            "detail": {**out, "judged_on": judge,
                       "verdicts": {c: t["verdicts"] for c, t in judged_sets.items()},
                       "point_gap_worst_holdout_group": point,
                       "calibration_map": [list(k) for k in calibration.DEMO.knots],
                       "vol_shift": calibration.DEMO_VOL_SHIFT,
                       "conditions": list(DOLLAR_CONDITIONS), "markets_scored": len(runs),
                       "checkpoint_every_s": CAL_EVERY_S, "model_params": MODEL_PARAMS or None,
                       "run_s": round(time.perf_counter() - t0, 1)}}


def _sharpness(sharp: dict, m: SyntheticModel, a: str, t: float, rp: float, px: float, step: float,
               idx: np.ndarray, drawn: dict, at_risk: dict, o_scores: np.ndarray, reach: np.ndarray) -> None:
    """One checkpoint's profile sharpness (top-10 % share of the range's USD) per profile:

    - ``model``: what the Synthetic map's live column draws (the lines × reach^α, ``core/grids/reach.py``);
    - ``lines``: the model's USD at risk now (``levels()``, the plain lines);
    - ``column``: the last finished 1-minute column's at-risk lines as ``column_profiles`` replays them (the
      history must keep the levels as sharp as the live state);
    - ``oracle``: the simulator's true open positions at their liquidation prices;
    - ``baseline``: the distance baseline's profile (the chance of reach on a flat map; a flat at-risk map
      itself scores 0.10 by definition)."""
    cur = int(math.floor(t / 60.0))
    col_l, col_s = m.column_profiles("1m", cur - 1, cur, int(idx[0]), len(idx))
    profiles = {"model": np.array([drawn.get(int(b), 0.0) for b in idx]),
                "lines": np.array([at_risk.get(int(b), 0.0) for b in idx]), "column": (col_l + col_s)[:, 0],
                "oracle": o_scores, "baseline": reach}
    # each sharpness range is cut from the narrowest scored range that holds it
    for r in (r for r in SHARP_RANGES if min(x for x in RANGES if x >= r) == rp):
        keep = np.abs((idx + 0.5) * step / px - 1.0) <= r / 100.0 if r < rp else np.ones(len(idx), bool)
        for name, prof in profiles.items():
            v = top_share(prof[keep])
            if v is not None:
                sharp.setdefault((r, a, name), []).append(v)


def _as_backfill(batches: list[dict], venues: str = "binance") -> tuple[np.ndarray, np.ndarray]:
    """The history's rows as a back-fill fetches them: each venue's 1-minute bars (Binance's kline array shape,
    through the product's ``minutes_from_klines`` and ``trades``) and the last open-interest sample of each
    5 minutes. ``venues``: "binance" (Binance's only), "live" (the venues the live back-fill asks, Bybit's and
    OKX's bars without a taker split of their own: Binance's minute lends its φ, as live) or "all" (every venue,
    each with its own split)."""
    from liqmap.core.events import VENUE_ID
    from liqmap.feeds.backfill import BACKFILL_VENUES as LIVE
    from dataclasses import replace

    from liqmap.feeds.backfill.rows import borrow_split, trades

    def cat(kind: str) -> np.ndarray:
        parts = [b[kind] for b in batches if b and kind in b and len(b[kind])]
        return np.concatenate(parts) if parts else np.zeros(0)

    trs, ois = cat("trade"), cat("oi")
    binance = VENUE_ID["binance"]
    ids = ([binance] if venues == "binance" else [VENUE_ID[v] for v in LIVE] if venues == "live" else
           sorted({int(v) for x in (trs, ois) if len(x) for v in np.unique(x["venue"])}))
    got = {v: _one_venue(trs, ois, v) for v in ids}
    ref = got[binance][1] if binance in got else None
    oi_parts, tr_parts = [], []
    for v, (oi, m) in got.items():
        if venues == "live" and v != binance:  # the venue's bars carry no taker split: Binance's minute lends it
            m = borrow_split(replace(m, buy=np.full(len(m), np.nan)), ref)
        oi_parts.append(oi)
        tr_parts.append(trades(m, v))
    oi = np.concatenate(oi_parts)
    tr = np.concatenate(tr_parts)
    return oi[np.argsort(oi["ts"], kind="stable")], tr[np.argsort(tr["ts"], kind="stable")]


def _one_venue(tr: np.ndarray, oi: np.ndarray, venue: int):
    """(OI rows, :class:`Minutes`) of one venue's history: its trades as 1-minute klines, its OI every 5 minutes
    (``BACKFILL_OI_S``)."""
    from liqmap.feeds.backfill.binance import minutes_from_klines, oi_from_history

    tr = tr[tr["venue"] == venue] if len(tr) else tr
    oi = oi[(oi["venue"] == venue) & (oi["oi"] > 0) & (oi["oi_usd"] > 0)] if len(oi) else oi
    klines, hist = [], []
    if len(tr):
        tr = tr[np.argsort(tr["ts"], kind="stable")]
        minute = np.floor(tr["ts"] / 60.0).astype(np.int64)
        for mi in np.unique(minute):
            k = tr[minute == mi]
            quote = float(k["usd"].sum())
            buy = float(k["usd"][k["side"] > 0].sum())
            p = k["price"]
            klines.append([int(mi * 60_000), p[0], p.max(), p.min(), p[-1], quote / p[-1], int(mi * 60_000 + 59_999),
                           quote, len(k), buy / p[-1], buy, "0"])
    if len(oi):
        oi = oi[np.argsort(oi["ts"], kind="stable")]
        five = np.floor(oi["ts"] / BACKFILL_OI_S).astype(np.int64)
        last = np.r_[five[1:] != five[:-1], True]
        hist = [{"sumOpenInterest": float(r["oi"]), "sumOpenInterestValue": float(r["oi_usd"]),
                 "timestamp": float(r["ts"]) * 1000.0} for r in oi[last]]
    return oi_from_history(hist, venue), minutes_from_klines(klines)


RANKINGS = ("model", "at_risk", "lines", "baseline", "oracle", "oracle_forecast")


def _share(acc: dict, rp: float, name: str, assets=ASSETS) -> float | None:
    tot = sum(acc.get((rp, a, "realized"), 0.0) for a in assets)
    return round(sum(acc.get((rp, a, name), 0.0) for a in assets) / tot, 4) if tot else None


def _seed_job(job: "int | tuple[int, str]") -> dict:
    seed, condition = job if isinstance(job, tuple) else (job, CONDITION)
    return _score_seed(_recorded(seed, HOURS, condition), MODEL_PARAMS)


def _ratio(x: float | None, base: float | None) -> float | None:
    return round(x / base, 3) if x is not None and base else None


def _summary(acc: dict, rp: float = RANGE_PCT) -> dict:
    """Shares of every ranking and their ratios to the baseline, overall and per asset."""
    sh = {n: _share(acc, rp, n) for n in RANKINGS}
    out = {f"{n}_share": sh[n] for n in RANKINGS}
    out.update({f"{n}_ratio": _ratio(sh[n], sh["baseline"]) for n in RANKINGS if n != "baseline"})
    out["ratio"] = out.pop("model_ratio")
    out["per_asset"] = {a: {n: _share(acc, rp, n, (a,)) for n in RANKINGS} for a in ASSETS}
    if rp == RANGE_PCT:  # checkpoints (with liquidations in range) where the model's top beat the baseline's
        out["checkpoints_vs_baseline"] = {v: int(acc.get(("checkpoints", v), 0)) for v in ("won", "tied", "lost")}
        out["by_distance"] = _distance_summary(acc)
    return out


def _sum_acc(runs: list[dict]) -> dict:
    acc: dict[tuple, float] = {}
    for r in runs:
        for k, v in r["acc"].items():
            acc[k] = acc.get(k, 0.0) + v
    return acc


SHARP_PROFILES = ("model", "lines", "column", "oracle", "baseline")


def _sharp_summary(runs: list[dict]) -> dict:
    """Mean top-10 % share per profile over every checkpoint of these runs, per range (and per asset at the
    headline range), with the model's share relative to the oracle's (target: within 20 %)."""
    def mean(keys: list[tuple]) -> float | None:
        xs = [x for r in runs for k in keys for x in r["sharp"].get(k, ())]
        return round(float(np.mean(xs)), 4) if xs else None

    out = {}
    for rp in SHARP_RANGES:
        row = {n: mean([(rp, a, n) for a in ASSETS]) for n in SHARP_PROFILES}
        row["model_vs_oracle"] = _ratio(row["model"], row["oracle"])
        row["within_20pct"] = row["model_vs_oracle"] is not None and abs(row["model_vs_oracle"] - 1.0) <= 0.2
        if rp == RANGE_PCT:
            row["per_asset"] = {a: {n: mean([(rp, a, n)]) for n in SHARP_PROFILES} for a in ASSETS}
        out[f"±{rp:g}%"] = row
    return out


def _per_seed(r: dict) -> dict:
    sm = _summary(r["acc"])
    ratios = ("ratio", "at_risk_ratio", "oracle_ratio", "oracle_forecast_ratio")
    sh = _sharp_summary([r])[f"±{RANGE_PCT:g}%"]
    return {"seed": r["seed"], **{k: sm[k] for k in ratios},
            "sharpness": {n: sh[n] for n in ("model", "oracle")},
            "checkpoints": r["checkpoints"], "frames": r["frames"],
            "parse_errors": r["parse_errors"], "rejects": r["rejects"],
            # diagnostic: share of the oracle's top buckets also in the model's top (mean over checkpoints)
            "oracle_overlap": {a: round(r["oracle_overlap"].get((RANGE_PCT, a), 0.0), 3) for a in ASSETS}}


def _run_seeds(all_seeds: tuple) -> list[dict]:
    """Score these seeds (in parallel processes with ``WORKERS`` > 1)."""
    if WORKERS > 1 and len(all_seeds) > 1:
        import multiprocessing
        import sys
        import types
        from concurrent.futures import ProcessPoolExecutor

        # benchmarks/run.py loads this file without registering it; forked workers find the job here
        if getattr(sys.modules.get(__name__), "_seed_job", None) is not _seed_job:
            mod = types.ModuleType(__name__)
            mod._seed_job = _seed_job
            sys.modules[__name__] = mod

        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(WORKERS, len(all_seeds)), mp_context=ctx) as pool:
            every = list(pool.map(_seed_job, all_seeds))
    else:
        every = [_seed_job(s) for s in all_seeds]
    return every


def forecast_skill() -> dict:
    t0 = time.perf_counter()
    all_seeds = SEEDS + tuple(s for s in HOLDOUT if s not in SEEDS)
    every = _run_seeds(all_seeds)
    runs = [r for r in every if r["seed"] in SEEDS]
    held = [r for r in every if r["seed"] in HOLDOUT]
    acc = _sum_acc(runs)
    head = _summary(acc)
    ratio = head["ratio"]
    holdout = None
    if held:
        holdout = {"seeds": [r["seed"] for r in held], **_summary(_sum_acc(held)),
                   "sharpness": _sharp_summary(held),
                   "per_seed": [_per_seed(r) for r in held]}
    # issue 20 item 2 at a glance, per seed set: the levels' sharpness against the oracle's (within 20 %),
    # the forecast's and the at-risk ranking's ratio to the distance baseline (the at-risk one must beat it)
    levels_check = {}
    for name, part in (("seeds", runs), ("holdout", held)):
        if not part:
            continue
        sm, sh = _summary(_sum_acc(part)), _sharp_summary(part)[f"±{RANGE_PCT:g}%"]
        levels_check[name] = {"sharpness_model": sh["model"], "sharpness_oracle": sh["oracle"],
                              "sharpness_model_vs_oracle": sh["model_vs_oracle"], "forecast_ratio": sm["ratio"],
                              "at_risk_ratio": sm["at_risk_ratio"], "lines_ratio": sm["lines_ratio"],
                              "sharpness_lines": sh["lines"], "oracle_ratio": sm["oracle_ratio"],
                              "baseline_share": sm["baseline_share"], "at_risk_share": sm["at_risk_share"],
                              "ok": bool(sh["within_20pct"] and (sm["at_risk_ratio"] or 0) > 1.0)}
    return {
        "value": ratio,
        "unit": "× baseline",
        "target": 1.5,
        "ok": ratio is not None and ratio >= 1.5,
        "detail": {
            # model = the model's next-hour forecast (liqmap.core.forecast: USD at risk × chance that price
            # reaches the bucket within the hour, from the realized volatility of the trades it saw);
            # at_risk = what the Synthetic map draws (the levels × reach^synthetic_reach_alpha, core/grids/reach.py);
            # lines = the levels alone, ranked by USD at risk (what Synthetic drew before)
            **{k: v for k, v in head.items() if k != "per_asset"},
            "range": f"±{RANGE_PCT:g}%",
            "per_asset": head["per_asset"],
            # top-10 % share of the at-risk USD in range (liqmap/core/sharpness.py), mean over checkpoints: the
            # model's levels, its last finished 1m column as the map replays it, the simulator's true positions
            # (oracle) and the distance baseline's profile; the model's within 20 % of the oracle's is the target
            "sharpness": _sharp_summary(runs),
            "levels_check": levels_check,
            # oracle = the same top-10 % rankings on the simulator's TRUE open positions (liquidation price,
            # USD), raw and weighted by the same chance of reach: what a perfect at-risk map would score
            "variants": {f"±{rp:g}%": {**{k: v for k, v in (head if rp == RANGE_PCT else _summary(acc, rp)).items()
                                         if k != "by_distance"}, "realized_usd": round(sum(
                acc.get((rp, a, "realized"), 0.0) for a in ASSETS))} for rp in RANGES},
            "per_seed": [_per_seed(r) for r in runs],
            "assets": list(ASSETS),
            "seeds": list(SEEDS),
            "simulated_hours_per_seed": HOURS,
            "prehistory": PREHISTORY,
            "preroll_s": PREROLL_S,
            "backfill": BACKFILL or None, "backfill_oi_s": BACKFILL_OI_S if BACKFILL else None,
            "model_params": MODEL_PARAMS or None,
            "checkpoint": f"every {EVERY_S / 60:.0f} min after {WARMUP_S / 60:.0f} min warm-up; next "
                          f"{HORIZON_S / 3600:.0f} h; top {TOP_SHARE:.0%} of buckets in range",
            "holdout": holdout,
            "model_stats_seed0": runs[0]["model_stats"],
            "run_s": round(time.perf_counter() - t0, 1),
        },
    }


def _condition_row(part: list[dict]) -> dict:
    """One (condition, seed group): the dollars check (issue 17 item 3) and the rankings' ratios (item 4)."""
    acc = _sum_acc(part)
    sm = _summary(acc)
    truth = acc.get(("usd", "truth"), 0.0)
    ratio = round(acc.get(("usd", "model"), 0.0) / truth, 3) if truth else None
    per_cp = [x for r in part for x in r["dollars"]]
    # the same before the dollar scale (core/model/scale.py): what the model placed, and the scale's spread
    logs = [x for r in part for x in r.get("scale_log", ())]
    raw = round(sum(x[0] for x in logs) / truth, 3) if truth and logs else None
    scales = [x[1] for x in logs]
    oracle = max(sm["oracle_ratio"] or 0.0, sm["oracle_forecast_ratio"] or 0.0) or None
    fc = sm["ratio"]
    # item 4's aim: ≥ 1.5× where the oracle reaches ≥ 2×, else ≥ 80 % of the oracle's edge over the baseline
    need = (1.5 if oracle and oracle >= 2.0 else 1.0 + 0.8 * max((oracle or 1.0) - 1.0, 0.0))
    # Read literally the aim jumps at 2: an oracle at 1.97× asks 1.777× of the forecast, one at 2.0× asks 1.5× —
    # more is asked where less is possible (steady 31-40, range 11-20). The capped reading (never above 1.5) is
    # reported beside the literal one, which stays the judged number.
    need_capped = min(need, 1.5)
    return {"seeds": f"{part[0]['seed']}-{part[-1]['seed']}" if part else None,
            "seeds_scored": [r["seed"] for r in part],
            "dollars_model_over_truth": ratio,
            "dollars_in_band": ratio is not None and 1 / DOLLARS_BAND <= ratio <= DOLLARS_BAND,
            "dollars_unscaled_model_over_truth": raw,
            "usd_scale_p10_p50_p90": [round(float(q), 2) for q in np.percentile(scales, (10, 50, 90))] if scales else None,
            "dollars_per_checkpoint_p10_p50_p90": ([round(float(q), 3) for q in np.percentile(per_cp, (10, 50, 90))]
                                                   if per_cp else None),
            "truth_usd_mean": round(truth / max(len(per_cp), 1)),
            "forecast_ratio": fc, "at_risk_ratio": sm["at_risk_ratio"], "oracle_ratio": sm["oracle_ratio"],
            "oracle_forecast_ratio": sm["oracle_forecast_ratio"], "forecast_needs": round(need, 3),
            "forecast_ok": fc is not None and fc >= need and fc >= 1.0,
            "forecast_needs_capped": round(need_capped, 3),
            "forecast_ok_capped": fc is not None and fc >= need_capped and fc >= 1.0,
            "oracle_degraded": ({n: _ratio(_share(acc, RANGE_PCT, n), _share(acc, RANGE_PCT, "baseline"))
                                 for n in DEGRADED} if DEGRADE else None),
            "baseline_share": sm["baseline_share"]}


def forecast_dollars() -> dict:
    """Issue 17 items 3 and 4: per market condition (``CONDITIONS``) and seed group (1-10 chooses, 11-20, 21-30 and —
    with ``LIQMAP_BENCH_FORECAST_GROUPS=1,11,21,31`` — 31-40 confirm), the model's USD at risk within ±5 % of price ÷ the simulator's true positions' (target within
    a factor 1.5 in every condition), and the forecast's and at-risk ranking's ratio over the distance baseline
    beside the oracle's. value = the worst condition's dollars ratio as a factor away from 1 (pooled over the
    groups); ok = every (condition, group) in the band."""
    t0 = time.perf_counter()
    jobs = [(s, c) for c in DOLLAR_CONDITIONS for g in SEED_GROUPS for s in g]
    if RECORDED_ONLY:  # score what the cache holds, record nothing (the rows name the seeds scored)
        jobs = [(s, c) for s, c in jobs if (p := _cache_path(s, HOURS, c)) and os.path.exists(p)]
    every = _run_seeds(tuple(jobs))
    table: dict[str, dict] = {}
    for c in DOLLAR_CONDITIONS:
        rows = {}
        for g in SEED_GROUPS:
            part = [r for r in every if r["condition"] == c and r["seed"] in g]
            if part or not RECORDED_ONLY:
                rows[f"{g[0]}-{g[-1]}"] = _condition_row(part)
        rows["all"] = _condition_row([r for r in every if r["condition"] == c])
        table[c] = rows
    pooled = {c: table[c]["all"]["dollars_model_over_truth"] for c in table}
    # issue 17 item 4 at a glance: per condition and seed group, forecast ÷ baseline, the oracle's best and what
    # the aim asks of the forecast there (≥ 1.5 where the oracle reaches 2, else 80 % of its edge, never < 1)
    forecast_table = {c: {g: {k: row[k] for k in ("forecast_ratio", "oracle_ratio", "oracle_forecast_ratio",
                                                   "forecast_needs", "forecast_ok",
                                                   "forecast_needs_capped", "forecast_ok_capped")}
                          for g, row in rows.items()} for c, rows in table.items()}
    worst = max((max(x, 1 / x) for x in pooled.values() if x), default=None)
    ok = all(row["dollars_in_band"] for rows in table.values() for row in rows.values())
    return {"value": round(worst, 3) if worst else None, "unit": "× off (model ÷ truth USD at risk ±5 %, worst condition)",
            "target": DOLLARS_BAND, "ok": ok,
            "detail": {"conditions": table, "pooled_model_over_truth": pooled, "forecast_by_condition": forecast_table,
                       "forecast_ok_everywhere": all(r["forecast_ok"] for rows in table.values()
                                                     for g, r in rows.items() if g != "all"),
                       "seeds_per_group": GROUP_SEEDS,
                       "condition_knobs": CONDITIONS, "model_params": MODEL_PARAMS or None,
                       "assets": list(ASSETS), "simulated_hours_per_seed": HOURS,
                       "run_s": round(time.perf_counter() - t0, 1)}}


# forecast_real_dollars: the conditions and seeds it runs at real-sized OI (recorded with the resting cohorts, cached
# apart from the others under the condition's name + REAL_SIZE). Every condition (item 3: "in every market
# condition"; until session 16 steady and cascade, and the trend's real-size dollars, 0.15-0.19 of the truth, went
# unmeasured)
REAL_CONDITIONS = tuple(c for c in os.environ.get("LIQMAP_BENCH_REAL_CONDITIONS", ",".join(CONDITIONS)).split(",")
                        if c)
REAL_SEEDS = tuple(int(s) for s in os.environ.get("LIQMAP_BENCH_REAL_SEEDS", "1,2,3,4").split(",") if s.strip())
FC_MAP_BAND = 2.0  # NEXT 1H's USD at risk within ±5 % ÷ the map's: within this factor at every checkpoint


def _fc_vs_map_row(part: list[dict]) -> dict:
    """What NEXT 1H prints against what the map draws, over one condition's checkpoints: the forecast's USD at
    risk within ±5 % ÷ the map's (the same dollar scale should make them agree: the forecast's levels are the map's
    spread over each tier's leverage band, except where price swept part of a band: the map's thin line then goes
    whole, the forecast keeps the band's unswept rest), each against the true positions', and the largest change of
    each between one checkpoint and the next of the same asset (10 minutes apart): the map's own is the yardstick for
    how far a figure may move."""
    rows = [(r["seed"], a, t, f, m, o) for r in part for a, t, f, m, o in r.get("fc_vs_map", ())]
    ratios = np.array([f / m for *_, f, m, _ in rows if f > 0 and m > 0])

    def jumps(col: int) -> np.ndarray:
        out, last = [], {}
        for row in sorted(rows, key=lambda x: (x[0], x[1], x[2])):
            key, v = (row[0], row[1]), row[col]
            if v > 0 and last.get(key, 0) > 0:
                out.append(abs(math.log(v / last[key])))
            last[key] = v
        return np.exp(np.array(out)) if out else np.array([1.0])

    worst = float(max(ratios.max(), 1.0 / ratios.min())) if len(ratios) else None
    jf, jm = jumps(3), jumps(4)
    # each figure against the true positions' USD within ±5 %, and at every checkpoint where the two differ by more
    # than the band: which one the truth is nearer (a forecast band that price swept only part of keeps its
    # lower-leverage rest, the map's thin line at the tier's price goes whole: docs/benchmarks.md, "The 22x
    # checkpoint")
    scored = [row for row in rows if row[3] > 0 and row[4] > 0 and row[5] > 0]  # both figures and the truth
    truth = [(f / o, m / o) for *_, f, m, o in scored]
    off = [row for row in scored if abs(math.log(row[3] / row[4])) > math.log(FC_MAP_BAND)]
    nearer = {"forecast": sum(abs(math.log(f / o)) < abs(math.log(m / o)) for *_, f, m, o in off)}
    nearer["map"] = len(off) - nearer["forecast"]
    # item 3's pooled figures over every checkpoint with true positions near price: one where NEXT 1H or the map shows
    # nothing there is a miss and counts (until session 17 a checkpoint whose map was empty dropped out of both, and
    # the map drawing the resting layer moved the forecast's pooled figure, trend 5-8 0.861 -> 0.824, by coverage)
    truth_rows = [row for row in rows if row[5] > 0]
    tot = [sum(row[k] for row in truth_rows) for k in (3, 4, 5)]
    # how much one market (seed × asset) decides the pooled figure, and the pooled figure without it: a crash that
    # brings days-old positions within 5 % can hold most of a condition's truth (seed 8's BTC at real size, session 15)
    by_market: dict[tuple, list[float]] = {}
    for sd, a, _t, f, _m, o in truth_rows:
        x = by_market.setdefault((sd, a), [0.0, 0.0])
        x[0], x[1] = x[0] + f, x[1] + o
    big = max(by_market, key=lambda k: by_market[k][1]) if by_market else None
    rest = [tot[0] - by_market[big][0], tot[2] - by_market[big][1]] if big else [0.0, 0.0]
    return {"checkpoints": len(rows),
            "largest_market": ({"seed": big[0], "asset": big[1], "truth_share": round(by_market[big][1] / tot[2], 3),
                                "forecast_over_truth_without_it": round(rest[0] / rest[1], 3) if rest[1] > 0 else None}
                               if big and tot[2] > 0 else None),
            # item 3's reading: the dollars NEXT 1H prints (and the map draws) over every checkpoint ÷ the truth's
            "forecast_over_truth_pooled": round(tot[0] / tot[2], 3) if tot[2] > 0 else None,
            "map_over_truth_pooled": round(tot[1] / tot[2], 3) if tot[2] > 0 else None,
            "forecast_over_map_p10_p50_p90": ([round(float(q), 3) for q in np.percentile(ratios, (10, 50, 90))]
                                              if len(ratios) else None),
            "forecast_over_map_min_max": [round(float(ratios.min()), 3), round(float(ratios.max()), 3)] if len(ratios) else None,
            "worst_factor": round(worst, 3) if worst else None,
            "in_band": worst is not None and worst <= FC_MAP_BAND,
            "forecast_usd_mean": round(float(np.mean([row[3] for row in rows]))) if rows else None,
            "map_usd_mean": round(float(np.mean([row[4] for row in rows]))) if rows else None,
            "forecast_over_truth_p10_p50_p90": ([round(float(q), 3) for q in np.percentile([x[0] for x in truth],
                                                                                            (10, 50, 90))]
                                                if truth else None),
            "map_over_truth_p10_p50_p90": ([round(float(q), 3) for q in np.percentile([x[1] for x in truth],
                                                                                       (10, 50, 90))]
                                           if truth else None),
            "off_band_nearer_truth": nearer,
            "off_band": [{"seed": sd, "asset": a, "t": round(t), "forecast_over_map": round(f / m, 3),
                          "forecast_over_truth": round(f / o, 3), "map_over_truth": round(m / o, 3)}
                         for sd, a, t, f, m, o in sorted(off, key=lambda x: -abs(math.log(x[3] / x[4])))[:8]],
            "jump_10min_forecast_p90_max": [round(float(np.percentile(jf, 90)), 2), round(float(jf.max()), 2)],
            "jump_10min_map_p90_max": [round(float(np.percentile(jm, 90)), 2), round(float(jm.max()), 2)]}


def forecast_real_dollars() -> dict:
    """The forecast's dollars at real-sized open interest (session 12): the demo's markets with its resting cohorts
    (feeds/demo/resting.py; BTC ~$20bn of OI, as in the product and on a live venue) where ``forecast_dollars``
    runs without them (a tiny OI the model mostly sees open). Per condition (``LIQMAP_BENCH_REAL_CONDITIONS``,
    default all five: a trend or a cascade that runs 30 % or more brings the resting cohorts within reach) and seeds
    ``LIQMAP_BENCH_REAL_SEEDS`` (1-4): NEXT 1H's USD at risk within ±5 % against the true positions', pooled over
    the checkpoints (issue 17 item 3: within a factor 1.5, ``DOLLARS_BAND``) and per checkpoint; the same ÷ the map's
    at every checkpoint (``worst_factor``, diagnostic: where price stops inside a tier's band the map's thin line
    goes whole and the two part by design, docs/benchmarks.md "The 22× checkpoint"); their 10-minute jumps beside
    the map's; the rankings' ratios over the baseline at real size. value = the worst condition's pooled NEXT 1H ÷
    truth as a factor away from 1 (in sessions 12-13 it was the worst checkpoint's NEXT 1H ÷ map, a target between
    two estimates that the truth sided against)."""
    t0 = time.perf_counter()
    every = _run_seeds(tuple((s, c + REAL_SIZE) for c in REAL_CONDITIONS for s in REAL_SEEDS))
    table = {}
    for c in REAL_CONDITIONS:
        part = [r for r in every if r["condition"] == c + REAL_SIZE]
        row = _fc_vs_map_row(part)
        ranks = _condition_row(part)
        row.update({k: ranks[k] for k in ("forecast_ratio", "at_risk_ratio", "oracle_ratio", "dollars_model_over_truth")})
        table[c] = row
    pooled = [r["forecast_over_truth_pooled"] for r in table.values() if r["forecast_over_truth_pooled"]]
    worst = round(max(max(x, 1 / x) for x in pooled), 3) if pooled else None
    worsts = [r["worst_factor"] for r in table.values() if r["worst_factor"]]
    return {"value": worst, "unit": "× off (NEXT 1H ÷ true USD at risk ±5 %, pooled, worst condition, real-sized OI)",
            "target": DOLLARS_BAND, "ok": worst is not None and worst <= DOLLARS_BAND and len(pooled) == len(table),
            "detail": {"conditions": table, "worst_checkpoint_forecast_over_map": max(worsts) if worsts else None,
                       "seeds": list(REAL_SEEDS), "model_params": MODEL_PARAMS or None,
                       "assets": list(ASSETS), "simulated_hours_per_seed": HOURS,
                       "run_s": round(time.perf_counter() - t0, 1)}}


def demo_cpu() -> dict:
    """CPU share of one core that the demo market costs at speed 1: all 65 assets × 5 venues for 60
    simulated seconds, frames generated and parsed by the real adapters into a Market (the generator
    alone measured in the same run)."""
    src = DemoSource(None, seed=0, start=START)
    market = Market(list(src.assets), clock=src.now)
    parsers = make_parsers(src, market.add)

    async def go() -> int:
        n = 0
        for ts, venue, conn, raw in src.run_for(60.0):
            await parsers[venue].feed(raw, ts, conn)
            n += 1
        return n

    t0 = time.process_time()
    n = asyncio.run(go())
    full = time.process_time() - t0
    gen_src = DemoSource(None, seed=0, start=START)
    t1 = time.process_time()
    for _ in gen_src.run_for(60.0):
        pass
    gen = time.process_time() - t1
    share = full / 60.0
    return {"value": round(share, 4), "unit": "core share at speed 1", "target": 0.10, "ok": share <= 0.10,
            "detail": {"assets": len(src.assets), "frames_per_s": round(n / 60.0), "generate_only_share":
                       round(gen / 60.0, 4), "parse_errors": sum(sum(p.errors.values()) for p in parsers.values()),
                       "rejects": market.rejects.total()}}


BENCHMARKS = {"forecast_skill": forecast_skill, "forecast_calibration": forecast_calibration,
              "forecast_dollars": forecast_dollars, "forecast_real_dollars": forecast_real_dollars,
              "demo_cpu": demo_cpu}

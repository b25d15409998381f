"""Synthetic model speed and size: one hour of five-venue BTC flow through ``SyntheticModel``.

``model_update``: seconds to process one hour of events for one asset, fed the way the engine feeds it (one
``update`` + ``advance`` per second of event time). Baseline in the same run: a bare per-event Python loop over
the same events that only accumulates each OI interval's VWAP and taker flow (what any per-event model pays
before it does any work).

``model_columns``: a full 240-column ``column_profiles`` rebuild at 1m over 400 rows, and the incremental
next-column call, after the hour.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqmap.core import events as ev  # noqa: E402
from liqmap.core.synthetic import SyntheticModel  # noqa: E402

T0 = 1_700_000_000.0
# OI sample period per venue (s): Binance REST poll, Bybit tickers, OKX channel (~3 s), BitMEX, Deribit
OI_PERIOD = {0: 10.0, 1: 1.0, 2: 3.0, 3: 5.0, 4: 2.0}


def hour_of_flow(seed: int = 7, trades_per_s: float = 25.0, liqs_per_s: float = 0.2):
    rng = np.random.default_rng(seed)
    n = int(3600 * trades_per_s)
    ts = T0 + np.sort(rng.uniform(0, 3600, n))
    price = 66_000.0 * np.exp(np.cumsum(rng.normal(0, 0.012 / np.sqrt(n), n)))
    usd = np.exp(rng.normal(8.5, 1.5, n))
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    venue = rng.choice(5, n, p=[0.45, 0.25, 0.2, 0.05, 0.05]).astype(np.uint8)
    trades = np.zeros(n, ev.TRADE_DTYPE)
    trades["ts"], trades["price"], trades["usd"], trades["side"], trades["venue"] = ts, price, usd, side, venue
    trades["qty"] = usd / price
    oi_rows = []
    for v, per in OI_PERIOD.items():
        t = T0 + np.arange(0, 3600, per)
        oi = 50_000.0 / (v + 1) * np.exp(np.cumsum(rng.normal(0, 0.0015, len(t))))
        mark = np.interp(t, ts, price)
        for a, b, c in zip(t, oi, mark, strict=True):
            oi_rows.append((a, b, b * c, c, v))
    oi = np.array(sorted(oi_rows), dtype=ev.OI_DTYPE)
    nl = int(3600 * liqs_per_s)
    lt = T0 + np.sort(rng.uniform(0, 3600, nl))
    lp = np.interp(lt, ts, price)
    lu = np.exp(rng.normal(9.0, 1.2, nl))
    liqs = np.zeros(nl, ev.LIQ_DTYPE)
    liqs["ts"], liqs["price"], liqs["usd"], liqs["qty"] = lt, lp, lu, lu / lp
    liqs["side"] = np.where(rng.random(nl) < 0.5, 1, -1)
    liqs["venue"] = rng.choice(3, nl)
    return oi, trades, liqs


def _per_second(a: np.ndarray) -> list[np.ndarray]:
    sec = np.floor(a["ts"] - T0).astype(np.int64)
    cuts = np.searchsorted(sec, np.arange(1, 3600))
    return np.split(a, cuts)


def _naive_loop(oi, trades) -> float:
    """Per-event Python: VWAP and taker split of every OI interval per venue (no placement at all)."""
    t0 = time.perf_counter()
    acc = {v: [0.0, 0.0, 0.0, 0.0] for v in range(5)}  # pv, vol, buy, sell
    last_oi: dict[int, float] = {}
    out = 0.0
    i = 0
    tr = trades.tolist()
    for row in oi.tolist():
        t_end = row[0]
        while i < len(tr) and tr[i][0] <= t_end:
            _, p, _, u, s, v = tr[i]
            a = acc[v]
            a[0] += p * u
            a[1] += u
            if s > 0:
                a[2] += u
            else:
                a[3] += u
            i += 1
        v = row[4]
        a = acc[v]
        if v in last_oi and a[1] > 0:
            out += (row[1] - last_oi[v]) * a[0] / a[1] * a[2] / (a[2] + a[3] or 1.0)
        last_oi[v] = row[1]
        acc[v] = [0.0, 0.0, 0.0, 0.0]
    return time.perf_counter() - t0


def model_update() -> dict:
    oi, trades, liqs = hour_of_flow()
    o_s, t_s, l_s = _per_second(oi), _per_second(trades), _per_second(liqs)
    def run(params: dict) -> tuple[SyntheticModel, float]:
        m = SyntheticModel("BTC", 25.0, params)
        t0 = time.perf_counter()
        for k in range(3600):
            m.update(o_s[k], t_s[k], l_s[k])
            m.advance(T0 + k + 1)
        return m, time.perf_counter() - t0

    m, dt = run({})
    # same run: one state only (each tier spread over its band, drawn and forecast alike: the default until
    # issue 20), against the default's thin lines for the map plus the forecast's band state
    m1, dt_one = run({"leverage_spread": 1.0})
    base = _naive_loop(oi, trades)
    b, lo, sh = m.levels()
    return {
        "value": round(dt, 3), "unit": "s per asset-hour", "target": 1.0, "ok": dt <= 1.0,
        "detail": {
            "events": int(len(oi) + len(trades) + len(liqs)), "oi_rows": int(len(oi)), "trades": int(len(trades)),
            "liqs": int(len(liqs)), "update_calls": 3600,
            "naive_python_loop_s": round(base, 3), "ratio_vs_naive": round(dt / base, 2) if base else None,
            "share_of_one_core_for_65_assets": round(65 * dt / 3600, 4),
            "levels": int(len(b)), "long_usd": round(float(lo.sum())), "short_usd": round(float(sh.sum())),
            "intervals": int(m.stats["intervals"]), "skipped": int(m.stats["skipped"]),
            "consumed_usd": round(m.stats["consumed_usd"]),
            "model_bytes": m.memory_bytes(),
            "one_state_bands_s": round(dt_one, 3), "one_state_bands_bytes": m1.memory_bytes(),
        },
    }


def model_columns() -> dict:
    oi, trades, liqs = hour_of_flow(seed=11)
    m = SyntheticModel("BTC", 25.0, {})
    m.update(oi, trades, liqs)
    now = float(trades["ts"][-1]) + 1
    m.advance(now)
    b, _, _ = m.levels()
    row0 = int(np.median(b)) - 200
    cur = int(now // 60)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        m._cache.clear()
        m.column_profiles("1m", cur - 239, cur + 1, row0, 400)
    full = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        m.column_profiles("1m", cur - 1, cur + 1, row0, 400)
    inc = (time.perf_counter() - t0) / reps
    return {
        "value": round(full * 1e3, 3), "unit": "ms (240 columns × 400 rows, cold)", "target": 10.0,
        "ok": full <= 0.010,
        "detail": {"incremental_last_two_columns_ms": round(inc * 1e3, 3), "history_bytes": m.memory_bytes()},
    }


def forecast_read() -> dict:
    """The resting layer's cost on a read (docs/model.md §3 step 13): ``forecast_levels`` after an hour of flow with
    a new bar (its per-venue shapes built again: at most once per asset-minute) and after an OI sample only (the
    cached shapes re-weighed), against the same run's flow-only read (``resting_share`` 0). Target: a new shape per
    asset-minute for 65 assets within 5 % of one core (≤ 46 ms a shape)."""
    oi, trades, liqs = hour_of_flow(seed=13)
    now = float(trades["ts"][-1]) + 1

    def fed(params: dict) -> SyntheticModel:
        m = SyntheticModel("BTC", 25.0, params)
        m.update(oi, trades, liqs)
        m.advance(now)
        return m

    m, m0 = fed({}), fed({"resting_share": 0.0})
    reps = 30

    def per_read(model: SyntheticModel, fresh_shape: bool, nudge_oi: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            if fresh_shape:
                model._resting._key = None
            if nudge_oi:
                model._oi_now[0] *= 1.0001
            model.forecast_levels()
        return (time.perf_counter() - t0) / reps

    flow_only = per_read(m0, False, True)
    new_bar = per_read(m, True, False)
    new_oi = per_read(m, False, True)
    rb, rl, rs = m.resting_levels()
    return {
        "value": round(new_bar * 1e3, 3), "unit": "ms per forecast read with a new bar (resting shapes rebuilt)",
        "target": 46.0, "ok": new_bar <= 0.046,
        "detail": {"oi_sample_only_ms": round(new_oi * 1e3, 3), "flow_only_read_ms": round(flow_only * 1e3, 3),
                   "ratio_new_bar_vs_flow_only": round(new_bar / flow_only, 2) if flow_only else None,
                   "share_of_one_core_65_assets_one_shape_per_minute": round(65 * new_bar / 60.0, 4),
                   "bars": len(m._px_hist.minute), "resting_buckets": int(len(rb)),
                   "resting_usd_per_side": round(float(rl.sum()))},
    }


BENCHMARKS = {"model_update": model_update, "model_columns": model_columns, "forecast_read": forecast_read}

if __name__ == "__main__":
    import json

    for name, fn in BENCHMARKS.items():
        print(json.dumps({"name": name, **fn()}))

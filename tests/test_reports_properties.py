"""Property tests: random trade streams and books against independent re-implementations of the rules."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqmap.core.book import Book
from liqmap.core.buckets import index
from liqmap.core.events import ASK, BID, VENUE_ID, trades
from liqmap.core.reports import Reports, SweepDetector

STEP = 10.0
TICK = 0.1
FLOOR = 50000.0
SWEEPS = {"gap_ms": 100.0, "close_grace_ms": 0.0, "min_ticks": 3, "min_bp": 1.0, "min_levels": 3,
          "k_sigma": 0.0, "min_usd": FLOOR, "min_usd_by_asset": {}, "warmup_s": 1e12, "warmup_factor": 1.0,
          "keep_s": 1e9, "max_kept": 10**6}

trade_step = st.tuples(
    st.one_of(st.integers(0, 100), st.integers(0, 250)),  # ms since the previous trade (mostly within the gap)
    st.integers(0, 4),  # 0 flips the taker side, so runs of several same-side trades are common
    st.integers(-3, 3),  # price move in ticks
    st.floats(0.01, 2.0),  # qty
)


def _segment(rows):
    runs, cur = [], []
    for r in rows:
        if cur and (r[4] != cur[-1][4] or r[0] - cur[-1][0] > 0.1):
            runs.append(cur)
            cur = []
        cur.append(r)
    if cur:
        runs.append(cur)
    return runs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(trade_step, min_size=1, max_size=120), cuts=st.lists(st.integers(0, 119), max_size=6))
def test_sweeps_are_exactly_the_qualifying_runs(steps, cuts):
    rows, ts_ms, price_ticks, side = [], 1_000_000_000, 600000, 1
    for dt, flip, move, qty in steps:
        ts_ms += dt
        side = -side if flip == 0 else side
        price_ticks += move
        p = round(price_ticks * TICK, 1)
        rows.append((ts_ms / 1000.0, p, qty, p * qty, side, VENUE_ID["binance"]))
    det = SweepDetector("BTC", {"reports": {"sweeps": SWEEPS}}, tick=TICK)
    # Feed in random chunks so runs are carried across ticks.
    bounds = sorted({c for c in cuts if c < len(rows)} | {len(rows)})
    start = 0
    for b in bounds:
        if b <= start:
            continue
        chunk = rows[start:b]
        det.update(chunk[-1][0], trades(chunk), None, STEP)
        start = b
    det.update(rows[-1][0] + 1.0, None, None, STEP)  # everything closed
    got = sorted((s.ts, s.side, s.trades) for s in det.sweeps)
    want = []
    by_start = {}
    for run in _segment(rows):
        usd = sum(r[3] for r in run)
        prices = [r[1] for r in run]
        lo, hi = min(prices), max(prices)
        moved = hi - lo >= max(3 * TICK, 1.0 * lo / 1e4) - 1e-12
        if usd >= FLOOR and (moved or len(set(prices)) >= 3):
            side = "buy" if run[0][4] > 0 else "sell"
            want.append((run[0][0], side, len(run)))
            by_start[(run[0][0], side)] = run
    assert got == sorted(want)
    for s in det.sweeps:
        run = by_start[(s.ts, s.side)]
        assert s.usd == pytest.approx(sum(r[3] for r in run))
        assert (s.price_lo, s.price_hi) == (min(r[1] for r in run), max(r[1] for r in run))
        assert s.levels == len({r[1] for r in run}) and s.end_ts == run[-1][0]


levels = st.lists(st.tuples(st.integers(1, 400), st.floats(0.01, 80.0)), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(bids=levels, asks=levels)
def test_walls_are_exactly_the_buckets_over_k_median_and_floor(bids, asks):
    mid = 60000.0
    bk = Book()
    bk.replace([(round(mid - 0.5 * i, 1), q) for i, q in bids], [(round(mid + 0.5 * i, 1), q) for i, q in asks])
    k, floor = 4.0, 5e5
    cfg = {"reports": {"walls": {"k_median": k, "range_pct": 1.0, "min_usd": floor, "min_usd_by_asset": {},
                                 "min_age_s": 0.0, "per_venue": False, "max_per_side": 10**6}}}
    rep = Reports("BTC", cfg, tick=TICK)
    rep.update(1.0, {"bybit": bk}, None, None, STEP)
    got = sorted((w["side"], w["bucket"], round(w["usd"], 6)) for w in rep.result()["walls"])
    m = bk.mid()
    want = []
    for side, name, book in ((BID, "bid", bk.bids), (ASK, "ask", bk.asks)):
        per: dict[int, float] = {}
        for p, q in book.items():
            per[int(index(p, STEP))] = per.get(int(index(p, STEP)), 0.0) + p * q
        near = {b: u for b, u in per.items() if b * STEP + STEP > m * 0.99 and b * STEP <= m * 1.01}
        if not near:
            continue
        med = statistics.median(near.values())
        want += [(name, b, round(u, 6)) for b, u in near.items() if u >= k * med and u >= floor]
    assert got == sorted(want)
    for w in rep.result()["walls"]:
        side = BID if w["side"] == "bid" else ASK
        inside = {p: p * q for p, q in (bk.bids if side == BID else bk.asks).items()
                  if int(index(p, STEP)) == w["bucket"]}
        assert w["price"] == max(inside, key=inside.get)
        assert np.isclose(w["density"] * statistics.median(
            [u for b, u in _bucketed(bk, side).items() if b * STEP + STEP > m * 0.99 and b * STEP <= m * 1.01]),
            w["usd"])


def _bucketed(bk, side):
    per: dict[int, float] = {}
    for p, q in (bk.bids if side == BID else bk.asks).items():
        b = int(index(p, STEP))
        per[b] = per.get(b, 0.0) + p * q
    return per

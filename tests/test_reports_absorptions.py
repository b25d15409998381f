"""Absorptions on constructed books and trade streams with exactly known answers."""

from __future__ import annotations

import pytest

from liqmap.core.book import Book
from liqmap.core.events import BUY, SELL, VENUE_ID, trades
from liqmap.core.reports import Reports

STEP = 10.0
MID = 60000.0
ABS = {"window_s": 15.0, "k_sigma": 3.0, "stats_window_s": 1800.0, "min_usd": 1e6, "min_usd_by_asset": {},
       "warmup_samples": 10**6, "warmup_factor": 1.0, "max_ticks": 2, "max_bp": 2.0, "refill_ratio": 1.5,
       "horizon_s": 30.0, "keep_s": 900.0, "max_kept": 200}
CFG = {"reports": {"absorptions": ABS}}


def book(bid_level=5.0, ask_level=1.0):
    bids = {MID - 10.0 * i: 1.0 for i in range(1, 61)}
    asks = {MID + 10.0 * i: 1.0 for i in range(1, 61)}
    bids[59990.0] = bid_level
    asks[60010.0] = ask_level
    b = Book()
    b.replace(list(bids.items()), list(asks.items()))
    return {"binance": b}


def t(ts, price, qty, side, venue="binance"):
    return (ts, price, qty, price * qty, side, VENUE_ID[venue])


def sells_into_bid(n=20, t0=0.0, venue_of=lambda i: "binance"):
    """``n`` taker sells of 1 BTC at 59,990 every 0.5 s."""
    return [t(t0 + 0.5 * i, 59990.0, 1.0, SELL, venue_of(i)) for i in range(n)]


def replay(rep, rows, t_end, books=None, bookf=None):
    """Tick every second; each tick gets the trades with ts in (now − 1, now]."""
    rows = sorted(rows)
    for now in range(0, int(t_end) + 1):
        batch = [r for r in rows if now - 1 < r[0] <= now]
        rep.update(float(now), bookf(now) if bookf else books, trades(batch) if batch else None, None, STEP)


def test_absorption_that_holds():
    rep = Reports("BTC", CFG, tick=0.1)
    rows = sells_into_bid(venue_of=lambda i: "bybit" if i % 4 == 0 else "binance")
    rows += [t(12.0 + i, 60010.0, 0.1, BUY) for i in range(25)]  # price lifts away afterwards
    b = book()
    replay(rep, rows, 8, b)
    (a,) = rep.result()["absorptions"]  # 17 sells = $1.02M ≥ $1M in the window at t = 8
    assert a["outcome"] == "pending" and a["usd"] == pytest.approx(17 * 59990.0)
    for now in range(9, 40):
        batch = [r for r in rows if now - 1 < r[0] <= now]
        rep.update(float(now), b, trades(batch) if batch else None, None, STEP)
    (a,) = rep.result()["absorptions"]
    assert a["outcome"] == "pending"  # 39 − 9.5 < 30 s horizon
    rep.update(40.0, b, None, None, STEP)
    (a,) = rep.result()["absorptions"]
    assert a["side"] == "bid" and a["price"] == 59990.0 and a["bucket"] == 5999
    assert a["usd"] == pytest.approx(20 * 59990.0)
    assert (a["start"], a["last"], a["duration_s"]) == (0.0, 9.5, 9.5)
    assert a["peak_visible_usd"] == pytest.approx(5 * 59990.0)
    assert a["refill"] == pytest.approx(4.0)
    assert a["excursion_bp"] == 0.0
    assert a["venues"] == ["binance", "bybit"]  # 15 vs 5 trades
    assert a["threshold_usd"] == 1e6
    assert (a["outcome"], a["outcome_ts"]) == ("held", 39.5)
    hist = rep.drain_history()["absorptions"]
    assert [(h.outcome, h.price) for h in hist] == [("held", 59990.0)]
    assert rep.drain_history()["absorptions"] == []


def test_absorption_that_breaks():
    rep = Reports("BTC", CFG, tick=0.1)
    rows = sells_into_bid()
    # Allowed excursion: max(2 ticks = 0.2, 2 bp of 59,990 = 12.0). 59,980 is 10 below: still holding;
    # 59,975 is 15 below: broken.
    rows += [t(15.0, 59980.0, 0.5, SELL), t(20.0, 59975.0, 0.5, SELL)]
    replay(rep, rows, 25, book())
    (a,) = rep.result()["absorptions"]
    assert (a["outcome"], a["outcome_ts"]) == ("broke", 20.0)
    assert a["excursion_bp"] == pytest.approx(10.0 / 59990.0 * 1e4)


def test_ask_absorption():
    rep = Reports("BTC", CFG, tick=0.1)
    rows = [t(0.5 * i, 60010.0, 1.0, BUY) for i in range(20)]
    replay(rep, rows, 12, book(ask_level=2.0))
    (a,) = rep.result()["absorptions"]
    assert a["side"] == "ask" and a["price"] == 60010.0
    assert a["refill"] == pytest.approx(10.0)


def test_near_misses_do_not_fire():
    # Visible size too large for the volume: 1.2M / 0.9M = 1.33 < 1.5.
    rep = Reports("BTC", CFG, tick=0.1)
    replay(rep, sells_into_bid(), 30, book(bid_level=15.0))
    assert rep.result()["absorptions"] == []
    # Price went through the level mid-way (13 below, allowed 12).
    rep = Reports("BTC", CFG, tick=0.1)
    replay(rep, sells_into_bid() + [t(5.2, 59977.0, 0.01, SELL)], 30, book())
    assert rep.result()["absorptions"] == []
    # Not enough volume: 16 × 59,990 = $960k < $1M.
    rep = Reports("BTC", CFG, tick=0.1)
    replay(rep, sells_into_bid(16), 30, book())
    assert rep.result()["absorptions"] == []
    # The same volume spread over 30 s never has $1M inside one 15-s window.
    rep = Reports("BTC", CFG, tick=0.1)
    replay(rep, [t(1.5 * i, 59990.0, 1.0, SELL) for i in range(20)], 40, book())
    assert rep.result()["absorptions"] == []


def test_adaptive_threshold_from_samples():
    cfg = {"reports": {"absorptions": {**ABS, "min_usd": 1000.0, "warmup_samples": 20}}}
    rep = Reports("BTC", cfg, tick=0.1)
    # Background: 300 s with a $60k trade at 59,990 every 3 s gives per-level window samples of ~$300k.
    rows = [t(3.0 * i + 0.25, 59990.0 - 10.0 * (i % 3), 1.0, SELL) for i in range(100)]
    replay(rep, rows, 300, book())
    thr = rep.absorptions.threshold()
    assert 1000.0 < thr < 1e6
    vals = [v for _, v in rep.absorptions._samples]
    import numpy as np
    allv = np.concatenate(vals)
    assert thr == pytest.approx(allv.mean() + 3 * allv.std())

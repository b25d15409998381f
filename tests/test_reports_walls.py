"""Liquidity walls and the asymmetry read on constructed books with exactly known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqmap.core.book import Book
from liqmap.core.events import ASK, BID, BUY, SELL, VENUE_ID, trades
from liqmap.core.reports import Reports, asymmetry
from liqmap.core.reports._common import bucket_books

STEP = 10.0
MID = 60000.0

CFG = {"reports": {
    "walls": {"k_median": 5.0, "range_pct": 1.0, "min_usd": 1e6, "min_usd_by_asset": {"BTC": 1e6},
              "min_age_s": 10.0, "min_seen_share": 0.8, "pull_drop": 0.7, "traded_share": 0.3,
              "keep_ended_s": 300.0, "per_venue": True, "venue_share": 0.1},
}}


def ladder(extra_bids=None, extra_asks=None, base=1.0):
    """One level per 10-USD bucket, ``base`` BTC each, ±1% around 60,000 (+ overrides)."""
    bids = {MID - 10.0 * i: base for i in range(1, 61)}
    asks = {MID + 10.0 * i: base for i in range(1, 61)}
    bids.update(extra_bids or {})
    asks.update(extra_asks or {})
    b = Book()
    b.replace(list(bids.items()), list(asks.items()))
    return b


def trade(ts, price, qty, side, venue="binance"):
    return (ts, price, qty, price * qty, side, VENUE_ID[venue])


def run(rep, t0, t1, book_fn, trades_at=None):
    for t in range(t0, t1 + 1):
        tr = trades((trades_at or {}).get(t, [])) if (trades_at or {}).get(t) else None
        rep.update(float(t), book_fn(t), tr, None, STEP)


def test_wall_confirmed_after_min_age_then_pulled():
    rep = Reports("BTC", CFG, tick=0.1)
    # 50 BTC at 59,900 (≈ $3.0M, 50× the median bucket of 1 BTC ≈ $60k) and a second level in its bucket.
    book = {"binance": ladder({59900.0: 50.0, 59905.0: 2.0})}
    run(rep, 0, 9, lambda t: book)
    assert rep.result()["walls"] == []  # 9 s old: not yet a wall
    run(rep, 10, 10, lambda t: book)
    walls = rep.result()["walls"]
    assert len(walls) == 1
    w = walls[0]
    usd = 50.0 * 59900.0 + 2.0 * 59905.0
    assert w["side"] == "bid" and w["status"] == "active"
    assert w["price"] == 59900.0 and w["bucket"] == 5990
    assert w["usd"] == pytest.approx(usd)
    # The median of the non-empty bid buckets within ±1% of mid (one 1-BTC level each).
    bb = bucket_books(book, STEP, 1.0)
    nz = bb.usd[BID][bb.usd[BID] > 0]
    near = np.arange(bb.lo, bb.lo + bb.n) * STEP
    median = float(np.median(bb.usd[BID][(bb.usd[BID] > 0) & (near + STEP > MID * 0.99) & (near <= MID * 1.01)]))
    assert len(nz) > 50
    assert w["density"] == pytest.approx(usd / median)
    assert w["distance_bp"] == pytest.approx((59900.0 / MID - 1) * 1e4)
    assert w["age_s"] == pytest.approx(10.0)
    assert w["venues"] == ["binance"]
    # Pulled: the wall drops to 5 BTC without a single trade there.
    pulled = {"binance": ladder({59900.0: 5.0, 59905.0: 2.0})}
    run(rep, 11, 11, lambda t: pulled)
    w = rep.result()["walls"][0]
    assert w["status"] == "pulled" and w["ended"] == 11.0
    assert w["usd"] == pytest.approx(5.0 * 59900.0 + 2.0 * 59905.0)
    assert w["peak_usd"] == pytest.approx(usd)
    assert w["traded_usd"] == 0.0


def test_wall_consumed_by_trades():
    rep = Reports("BTC", CFG, tick=0.1)
    full = {"binance": ladder(extra_asks={60100.0: 40.0})}
    run(rep, 0, 12, lambda t: full)
    (w,) = rep.result()["walls"]
    assert (w["side"], w["price"], w["status"]) == ("ask", 60100.0, "active")
    # 36 BTC of taker buys lift the wall; the book then shows 4 BTC left.
    fills = [trade(12.2 + 0.01 * i, 60100.0, 3.0, BUY) for i in range(12)]
    # Noise that must not count: sells at the same price, buys in another bucket.
    fills += [trade(12.5, 60100.0, 5.0, SELL), trade(12.6, 60150.0, 9.0, BUY)]
    eaten = {"binance": ladder(extra_asks={60100.0: 4.0})}
    rep.update(13.0, eaten, trades(fills), None, STEP)
    (w,) = rep.result()["walls"]
    assert w["status"] == "consumed"
    assert w["traded_usd"] == pytest.approx(36.0 * 60100.0)
    assert w["usd"] == pytest.approx(4.0 * 60100.0)


def test_pull_with_some_trading_below_share_is_still_pulled():
    rep = Reports("BTC", CFG, tick=0.1)
    full = {"binance": ladder(extra_asks={60100.0: 40.0})}
    run(rep, 0, 12, lambda t: full)
    # 40 → 4 BTC: a 36 BTC fall, 10 BTC traded (27.8% < 30%) → pulled.
    fills = [trade(12.5, 60100.0, 10.0, BUY)]
    rep.update(13.0, {"binance": ladder(extra_asks={60100.0: 4.0})}, trades(fills), None, STEP)
    (w,) = rep.result()["walls"]
    assert w["status"] == "pulled"
    # ... and 11 BTC traded (30.6%) would have been consumed.
    rep2 = Reports("BTC", CFG, tick=0.1)
    run(rep2, 0, 12, lambda t: full)
    rep2.update(13.0, {"binance": ladder(extra_asks={60100.0: 4.0})}, trades([trade(12.5, 60100.0, 11.0, BUY)]),
                None, STEP)
    assert rep2.result()["walls"][0]["status"] == "consumed"


def test_near_misses_are_not_walls():
    rep = Reports("BTC", CFG, tick=0.1)
    # 4.5× the median (below k = 5) but above the floor: no wall.
    big_but_not_enough = {"binance": ladder({59900.0: 0.0}, base=4.0)}
    big_but_not_enough["binance"].apply(BID, [(59900.0, 18.0)])
    # A 50× level worth less than the $1M floor: no wall (base 0.1 BTC → $6k buckets; 5 BTC = $300k).
    small = ladder({59800.0: 5.0}, base=0.1)
    # A flickering 50× level present in only every other snapshot (50% < 80%): no wall.
    def books(t):
        return {"binance": big_but_not_enough["binance"], "bybit": small,
                "okx": ladder({60200.0 - 10.0 * 0: 0.0}, extra_asks={60200.0: 60.0} if t % 2 == 0 else {})}
    run(rep, 0, 30, books)
    assert rep.result()["walls"] == []


def test_per_venue_wall_and_venue_mix():
    rep = Reports("BTC", CFG, tick=0.1)
    # Binance is deep everywhere (10 BTC/bucket); Bybit thin (0.5) but with 20 BTC at 59,800.
    # All-venue: 30.5 BTC vs a median of 10.5 → 2.9×, not a wall; on Bybit alone it is 40× its median.
    books = {"binance": ladder(base=10.0), "bybit": ladder({59800.0: 20.0}, base=0.5)}
    run(rep, 0, 10, lambda t: books)
    (w,) = rep.result()["walls"]
    assert w["price"] == 59800.0
    assert w["usd"] == pytest.approx(30.0 * 59800.0)
    assert w["venues"] == ["bybit", "binance"]  # both hold ≥ 10% of it, largest first
    cfg2 = {"reports": {"walls": {**CFG["reports"]["walls"], "per_venue": False}}}
    rep2 = Reports("BTC", cfg2, tick=0.1)
    run(rep2, 0, 10, lambda t: books)
    assert rep2.result()["walls"] == []


def test_asymmetry_exact():
    book = Book()
    book.replace([(59970.0, 2.0), (59400.0, 10.0)], [(60030.0, 1.0), (60900.0, 50.0)])
    bb = bucket_books({"binance": book}, STEP, 2.0)
    a = asymmetry(bb, (), {"reports": {"asymmetry": {"lambda_bp": 30.0, "ranges_pct": [0.5, 1.0, 2.0],
                                                      "dominance": 0.1}}})
    mid = 60000.0
    def w(p, q):
        return p * q * math.exp(-abs(p / mid - 1) * 1e4 / 30.0)
    b = w(59970.0, 2.0) + w(59400.0, 10.0)
    s = w(60030.0, 1.0) + w(60900.0, 50.0)
    assert a.mid == mid
    assert a.weighted == pytest.approx((b - s) / (b + s))
    assert a.bid_share == pytest.approx(b / (b + s))
    assert a.dominant == "bids"
    plain = dict(a.plain)
    b05, s05 = 59970.0 * 2, 60030.0 * 1
    assert plain[0.5] == pytest.approx((b05 - s05) / (b05 + s05))
    b1, s1 = b05 + 59400.0 * 10, s05  # 59,400 is exactly 1% away; 60,900 is 1.5%
    assert plain[1.0] == pytest.approx((b1 - s1) / (b1 + s1))
    s2 = s05 + 60900.0 * 50
    assert plain[2.0] == pytest.approx((b1 - s2) / (b1 + s2))
    assert a.walls == 0.0


def test_reports_result_is_json_and_round_trips():
    import orjson

    from liqmap.core.reports import ReportRecords
    rep = Reports("BTC", CFG, tick=0.1)
    book = {"binance": ladder({59900.0: 50.0})}
    run(rep, 0, 10, lambda t: book)
    d = rep.result()
    assert set(d) == {"walls", "asymmetry", "sweeps", "absorptions", "convergence", "verdict"}
    back = ReportRecords.from_dict(orjson.loads(orjson.dumps(d)))
    assert back.to_dict() == d
    assert d["asymmetry"]["dominant"] in ("bids", "asks", "even")
    assert d["walls"][0]["side"] == "bid" and ASK != BID


def test_bad_levels_in_a_book_are_ignored():
    good = ladder({59900.0: 50.0})
    bad = ladder({59900.0: 50.0})
    bad.bids[59890.0] = float("nan")
    bad.bids[float("nan")] = 5.0
    bad.asks[60100.0] = float("inf")
    bad.asks[60110.0] = -3.0
    bad.version += 1
    a = bucket_books({"binance": good}, STEP, 1.0)
    b = bucket_books({"binance": bad}, STEP, 1.0)
    for side in (BID, ASK):
        assert np.all(np.isfinite(b.usd[side]))
    assert np.allclose(a.usd[BID][a.usd[BID] > 0].sum() - 59890.0, b.usd[BID].sum())  # 59,890 level dropped
    rep = Reports("BTC", CFG, tick=0.1)
    run(rep, 0, 10, lambda t: {"binance": bad})
    assert [w["price"] for w in rep.result()["walls"]] == [59900.0]

"""Sweeps on constructed trade streams with exactly known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqmap.core.book import Book
from liqmap.core.events import BUY, LONG, SELL, SHORT, VENUE_ID, liquidations, trades
from liqmap.core.reports import Reports, SweepDetector
from liqmap.core.reports.sweeps import SecondNotional, cluster

STEP = 10.0
SWEEPS = {"gap_ms": 100.0, "close_grace_ms": 250.0, "min_ticks": 3, "min_bp": 3.0, "min_levels": 3,
          "k_sigma": 3.0, "stats_window_s": 1800.0, "min_usd": 200000.0, "min_usd_by_asset": {"BTC": 200000.0},
          "warmup_s": 0.0, "warmup_factor": 1.0, "cluster_window_s": 60.0, "cluster_buckets": 2,
          "cross_venue_ms": 200.0, "liq_pad_s": 1.0, "keep_s": 900.0, "max_kept": 500}
CFG = {"reports": {"sweeps": SWEEPS}}


def t(ts, price, qty, side, venue="binance"):
    return (ts, price, qty, price * qty, side, VENUE_ID[venue])


def five_level_buy(t0, venue="binance", p0=60000.0, qty=2.0):
    """A taker buy walking five 0.5-USD levels, 10 ms apart: ≈ $600k."""
    return [t(t0 + 0.01 * i, p0 + 0.5 * i, qty, BUY, venue) for i in range(5)]


def detector(**over):
    return SweepDetector("BTC", {"reports": {"sweeps": {**SWEEPS, **over}}}, tick=0.1)


def test_sweep_across_five_levels_exact_fields():
    d = detector()
    run = five_level_buy(100.0)
    noise = [t(99.0, 59999.5, 0.1, SELL)]  # an earlier, small opposite-side trade
    found = d.update(100.02, trades(noise + run), None, STEP)
    assert found == []  # still open: another trade could join within the gap
    found = d.update(101.0, None, None, STEP)
    assert len(found) == 1
    s = found[0]
    usd = sum(r[3] for r in run)
    assert (s.side, s.venue, s.trades, s.levels) == ("buy", "binance", 5, 5)
    assert s.ts == 100.0 and s.end_ts == pytest.approx(100.04)
    assert s.usd == pytest.approx(usd) and s.qty == pytest.approx(10.0)
    assert (s.price_lo, s.price_hi, s.price_first, s.price_last) == (60000.0, 60002.0, 60000.0, 60002.0)
    assert s.bp == pytest.approx(2.0 / 60000.0 * 1e4)
    assert (s.bucket_lo, s.bucket_hi) == (6000, 6000)
    assert s.threshold_usd == 200000.0  # the floor: one second of $6k history gives μ+3σ far below it
    assert s.cleared_wall is None and s.liq_count == 0 and s.cross_venues == ()


def test_near_misses_do_not_fire():
    d = detector()
    # Same five levels but only $120k: below the floor.
    small = five_level_buy(10.0, qty=0.4)
    # $1.2M at ONE price: big, but it crossed no levels and moved nothing.
    flat = [t(20.0 + 0.01 * i, 60000.0, 4.0, BUY) for i in range(5)]
    # Five levels and $300k, but with a 150 ms pause after the second trade (> the 100 ms gap): two runs,
    # one of 2 levels (too few, and a 0.5-USD move is under 3 bp) and one of 3 levels but only $180k.
    split = [t(30.0 + 0.01 * i + (0.15 if i >= 2 else 0.0), 60000.0 + 0.5 * i, 1.0, BUY) for i in range(5)]
    # Alternating sides break runs too.
    alt = [t(40.0 + 0.01 * i, 60000.0 + 0.5 * i, 2.0, BUY if i % 2 else SELL) for i in range(5)]
    for batch, now in ((small, 11.0), (flat, 21.0), (split, 31.0), (alt, 41.0)):
        assert d.update(now, trades(batch), None, STEP) == []
    assert d.sweeps == []


def test_adaptive_threshold_mu_k_sigma():
    d = detector(min_usd=1000.0, min_usd_by_asset={})
    # 600 s of history: $50k in every even second, nothing in odd ones → μ = 25k, σ = 25k → μ+3σ = 100k.
    hist = [t(float(s) + 0.5, 60000.0, 50000.0 / 60000.0, SELL) for s in range(0, 600, 2)]
    d.update(599.0, trades(hist), None, STEP)
    mu, sd, span = d._stats[VENUE_ID["binance"]].stats(599.0)
    assert mu == pytest.approx(25000.0) and sd == pytest.approx(25000.0) and span == 599.0
    assert d.threshold(VENUE_ID["binance"], 599.0) == pytest.approx(100000.0)
    # A five-level $90k buy run is below μ+3σ; a $120k one is above.
    d.update(610.0, trades(five_level_buy(605.0, qty=0.3)), None, STEP)
    assert d.sweeps == []
    found = d.update(620.0, trades(five_level_buy(615.0, qty=0.4)), None, STEP)
    assert len(found) == 1 and 95000.0 < found[0].threshold_usd < 105000.0 < found[0].usd


def test_warmup_floor():
    d = detector(warmup_s=120.0, warmup_factor=4.0)
    d.update(1.0, trades(five_level_buy(0.5)), None, STEP)  # $600k < 4 × $200k during warm-up
    assert d.update(2.0, None, None, STEP) == []
    assert d.threshold(0, 2.0) == 800000.0


def test_run_carried_across_ticks():
    d = detector()
    run = five_level_buy(50.0)
    assert d.update(50.025, trades(run[:3]), None, STEP) == []  # tick boundary inside the run
    found = d.update(51.0, trades(run[3:]), None, STEP)
    assert len(found) == 1 and found[0].trades == 5 and found[0].levels == 5


def test_clusters_cross_venue_and_liquidation_driven():
    d = detector()
    a = five_level_buy(100.0)  # binance, bucket 6000
    b = five_level_buy(100.1, venue="bybit", p0=60003.0)  # within 200 ms on another venue
    c = five_level_buy(130.0, p0=60021.0)  # 30 s later, bucket 6002: within ±2 buckets → same cluster
    e = [t(140.0 + 0.01 * i, 60100.0 - 0.5 * i, 2.0, SELL) for i in range(5)]  # a sell: its own cluster
    f = five_level_buy(300.0)  # 170 s after the last buy: a new cluster
    liq = liquidations([(100.02, 60001.0, 1.0, 60001.0, SHORT, VENUE_ID["binance"], 0),  # forced buy: counts
                        (100.02, 60001.0, 1.0, 60001.0, LONG, VENUE_ID["binance"], 0),  # forced sell: not
                        (100.02, 60001.0, 1.0, 60001.0, SHORT, VENUE_ID["okx"], 0)])  # other venue: not
    d.update(101.0, trades(a + b), liq, STEP)
    d.update(131.0, trades(c), None, STEP)
    d.update(141.0, trades(e), None, STEP)
    d.update(301.0, trades(f), None, STEP)
    by = {(s.venue, s.ts): s for s in d.sweeps}
    sa, sb = by[("binance", 100.0)], by[("bybit", 100.1)]
    assert sa.cross_venues == ("bybit",) and sb.cross_venues == ("binance",)
    assert sa.liq_count == 1 and sa.liq_usd == 60001.0 and sa.to_dict()["liq_driven"] is True
    assert sb.liq_count == 0
    assert by[("binance", 130.0)].cross_venues == ()
    cl = d.clusters(STEP)
    assert [(c.side, c.count) for c in cl] == [("buy", 1), ("sell", 1), ("buy", 3)]
    big = cl[-1]
    assert big.total_usd == pytest.approx(sum(r[3] for r in a + b + c))
    assert big.ts == 100.0 and big.cross_venue and big.venues == ("binance", "bybit")
    assert big.price_lo == 60000.0 and big.price_hi == 60023.0
    assert big.liq_usd == 60001.0


def test_late_liquidation_attaches():
    d = detector()
    d.update(101.0, trades(five_level_buy(100.0)), None, STEP)
    assert d.sweeps[0].liq_count == 0
    liq = liquidations([(100.9, 60002.0, 2.0, 120004.0, SHORT, VENUE_ID["binance"], 0)])
    d.update(102.0, None, liq, STEP)
    assert d.sweeps[0].liq_count == 1 and d.sweeps[0].liq_usd == 120004.0


def test_cleared_wall_through_reports():
    cfg = {"reports": {"sweeps": SWEEPS, "walls": {"k_median": 5.0, "range_pct": 1.0, "min_usd": 1e6,
                                                    "min_usd_by_asset": {}, "min_age_s": 5.0}}}
    rep = Reports("BTC", cfg, tick=0.1)
    asks = {60000.0 + 0.5 * i: 1.0 for i in range(5)}
    asks[60002.0] = 30.0  # an ask wall at the top of the range the sweep will take
    asks.update({60000.0 + 10.0 * i: 1.0 for i in range(1, 60)})
    bids = {59999.5 - 10.0 * i: 1.0 for i in range(60)}
    book = Book()
    book.replace(list(bids.items()), list(asks.items()))
    for s in range(10):
        rep.update(float(s), {"binance": book}, None, None, STEP)
    assert [w["price"] for w in rep.result()["walls"]] == [60002.0]
    run = [t(10.0 + 0.01 * i, 60000.0 + 0.5 * i, 2.0 if i < 4 else 30.0, BUY) for i in range(5)]
    book.apply(-1, [(60000.0 + 0.5 * i, 0.0) for i in range(5)])
    rep.update(10.5, {"binance": book}, trades(run), None, STEP)
    rep.update(11.0, {"binance": book}, None, None, STEP)
    res = rep.result()
    (cl,) = res["sweeps"]
    assert cl["cleared_wall"] == 60002.0
    assert cl["members"][0]["cleared_wall"] == 60002.0
    assert res["walls"][0]["status"] == "consumed"


def test_second_notional_window():
    sn = SecondNotional(10)
    sn.add(np.array([0.2, 0.7, 3.1]), np.array([1.0, 2.0, 5.0]))
    mu, sd, span = sn.stats(4.0)  # seconds 0..4: [3, 0, 0, 5, 0]
    assert mu == pytest.approx(8.0 / 5) and sd == pytest.approx(math.sqrt((9 + 25) / 5 - (8 / 5) ** 2))
    sn.add(np.array([15.5]), np.array([7.0]))  # seconds 0 and 3 fell out of the 10-s window
    mu, sd, span = sn.stats(15.0)
    assert mu == pytest.approx(7.0 / 10)


def test_cluster_function_respects_side_window_and_distance():
    from liqmap.core.reports import Sweep

    def mk(ts, side, blo, bhi):
        return Sweep(ts=ts, end_ts=ts + 0.1, side=side, venue="binance", usd=1.0, qty=1.0, trades=3,
                     price_first=blo * 10.0, price_last=bhi * 10.0, price_lo=blo * 10.0, price_hi=bhi * 10.0,
                     bp=1.0, levels=3, bucket_lo=blo, bucket_hi=bhi, threshold_usd=1.0)
    ss = [mk(0, "buy", 100, 101), mk(30, "buy", 104, 104), mk(50, "buy", 110, 110), mk(55, "sell", 100, 100),
          mk(200, "buy", 100, 100)]
    cl = cluster(ss, 60.0, 2)
    counts = sorted((c.side, c.ts, c.count) for c in cl)
    # 104 is 3 buckets from 101 → separate; 110 is far → separate; sell separate; t=200 too late.
    assert counts == [("buy", 0, 1), ("buy", 30, 1), ("buy", 50, 1), ("buy", 200, 1), ("sell", 55, 1)]
    ss[1] = mk(30, "buy", 103, 103)  # within ±2 of 101 → clustered
    cl = cluster(ss, 60.0, 2)
    assert sorted((c.side, c.ts, c.count) for c in cl)[0] == ("buy", 0, 2)


def test_a_wall_pulled_before_the_sweep_was_not_cleared_by_it():
    d = detector()
    walls = {(-1): [(6000, 60002.0, 5.0)], 1: []}  # an ask wall at 60,002 that ended (pulled) at t = 5
    d.update(11.0, trades(five_level_buy(10.0)), None, STEP, walls=lambda side: walls.get(side, []))
    assert d.sweeps[0].cleared_wall is None
    walls[-1] = [(6000, 60002.0, None)]  # still standing: cleared
    d.update(21.0, trades(five_level_buy(20.0)), None, STEP, walls=lambda side: walls.get(side, []))
    assert d.sweeps[1].cleared_wall == 60002.0
    walls[-1] = [(6001, 60012.0, None)]  # standing, but above the sweep's range: not cleared
    d.update(31.0, trades(five_level_buy(30.0)), None, STEP, walls=lambda side: walls.get(side, []))
    assert d.sweeps[2].cleared_wall is None

"""The exact-positions book (liqmap/core/positions.py): the at-risk map, coverage, detected liquidations, the
bands the Positions mode draws and the live-accuracy comparison, on constructed positions."""

import math

import numpy as np
import pytest

from liqmap.core.events import LONG, SHORT
from liqmap.core.positions import (Accuracy, AccuracyLog, Coverage, ExactPosition, PositionBook, accuracy,
                                   low_leverage_share, oi_share)

W1, W2, W3 = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40


def pos(wallet, size, liq, asset="BTC", entry=100_000.0, ts=0.0, lev=20.0):
    return ExactPosition(wallet, asset, size, entry, lev, True, liq, abs(size) * entry / lev, ts)


def test_levels_sum_usd_per_bucket_longs_and_shorts_apart():
    book = PositionBook()
    book.apply(W1, [pos(W1, 2.0, 95_010.0), pos(W1, -1.0, 0.5, asset="DOGE", entry=0.4)], 0.0)
    book.apply(W2, [pos(W2, 1.0, 95_040.0)], 0.0)  # same 50-wide bucket as W1's long
    book.apply(W3, [pos(W3, -0.5, 104_980.0), pos(W3, 3.0, math.nan, asset="ETH")], 0.0)  # ETH: no liq price
    b, lo, sh = book.levels("BTC", 50.0)
    assert b.tolist() == [1900, 2099]
    assert lo.tolist() == pytest.approx([2.0 * 95_010.0 + 95_040.0, 0.0])
    assert sh.tolist() == pytest.approx([0.0, 0.5 * 104_980.0])
    b, lo, sh = book.levels("ETH", 1.0)
    assert len(b) == 0  # a null liquidationPx is no level
    cov = book.coverage("BTC", oi_base=10.0)
    assert (cov.wallets, cov.positions) == (3, 3)
    # 2 + 1 + 0.5 of |size| against a one-sided OI of 10: both sides of the market are 20
    assert cov.oi_share == pytest.approx(3.5 / 20.0)
    # every BTC position here is liquidated within 5 % of its entry: none is held at 3x or less
    assert cov.label() == "exact: 3 wallets, 18 % of HL OI, 0 % at ≤3×"
    assert book.coverage("BTC").label() == "exact: 3 wallets, OI share unknown, 0 % at ≤3×"


def test_vanished_at_liquidation_price_is_detected_closed_elsewhere_is_not():
    book = PositionBook(tolerance_pct=0.5)
    book.apply(W1, [pos(W1, 2.0, 95_000.0)], 0.0)
    book.apply(W2, [pos(W2, -1.0, 105_000.0)], 0.0)
    lows = {"BTC": (99_000.0, 101_000.0)}
    # price never came near: both positions gone = closed, not liquidated
    assert book.apply(W1, [], 10.0, lambda a, t0, t1: lows[a]) == []
    assert book.apply(W2, [], 10.0, lambda a, t0, t1: lows[a]) == []
    assert book.stats["vanished"] == 2 and book.stats["detected"] == 0
    # reopened, then price trades through the long's liquidation price within the poll gap
    book.apply(W1, [pos(W1, 2.0, 95_000.0, ts=20.0)], 20.0)
    seen = []
    found = book.apply(W1, [], 30.0, lambda a, t0, t1: seen.append((a, t0, t1)) or (94_990.0, 99_000.0))
    assert seen == [("BTC", 20.0, 30.0)]
    assert len(found) == 1
    d = found[0]
    assert (d.side, d.price, d.size, d.partial, d.ts, d.prev_ts) == (LONG, 95_000.0, 2.0, False, 30.0, 20.0)
    assert d.usd == pytest.approx(190_000.0)
    assert book.drain_detected() == found and book.drain_detected() == []


def test_within_tolerance_counts_and_partial_liquidation_is_the_lost_part():
    book = PositionBook(tolerance_pct=0.5)
    book.apply(W2, [pos(W2, -10.0, 105_000.0)], 0.0)
    # price reached 104,600: within 0.5 % of 105,000; the short shrank by 20 % (a partial liquidation)
    found = book.apply(W2, [pos(W2, -8.0, 105_200.0, ts=5.0)], 5.0, lambda a, t0, t1: (100_000.0, 104_600.0))
    assert len(found) == 1 and found[0].side == SHORT and found[0].partial
    assert found[0].size == pytest.approx(2.0)
    # 0.6 % away is outside the tolerance
    book.apply(W3, [pos(W3, -1.0, 105_000.0)], 0.0)
    assert book.apply(W3, [], 5.0, lambda a, t0, t1: (100_000.0, 104_300.0)) == []
    # no price information: nothing claimed
    book.apply(W1, [pos(W1, 1.0, 95_000.0)], 0.0)
    assert book.apply(W1, [], 5.0, lambda a, t0, t1: None) == []


def test_liquidation_rows_for_the_market():
    book = PositionBook()
    book.apply(W1, [pos(W1, 2.0, 95_000.0)], 0.0)
    found = book.apply(W1, [], 3.0, lambda a, t0, t1: (94_000.0, 96_000.0))
    rows = book.liquidation_rows(found, venue_id=3)
    assert rows["ts"].tolist() == [3.0] and rows["price"].tolist() == [95_000.0]
    assert rows["usd"].tolist() == [190_000.0] and rows["side"].tolist() == [LONG]
    assert rows["venue"].tolist() == [3]


def test_segments_are_bands_that_end_when_the_level_moves_or_goes():
    book = PositionBook()
    book.apply(W1, [pos(W1, 1.0, 95_000.0)], 0.0)
    book.apply(W1, [pos(W1, 1.0, 95_000.0)], 60.0)  # unchanged: the same band goes on
    book.apply(W1, [pos(W1, 1.0, 94_000.0)], 120.0)  # margin added: the level moved
    book.apply(W2, [pos(W2, -1.0, 99_000.0, asset="ETH")], 0.0)
    seg = book.segments("BTC")
    assert sorted(seg["price"].tolist()) == [94_000.0, 95_000.0]
    old = seg[seg["price"] == 95_000.0][0]
    new = seg[seg["price"] == 94_000.0][0]
    assert (old["start"], old["end"]) == (0.0, 120.0)
    assert new["start"] == 120.0 and math.isinf(new["end"])
    book.forget(W1, 200.0)
    seg = book.segments("BTC")
    assert seg[seg["price"] == 94_000.0][0]["end"] == 200.0
    assert book.wallets == 1 and book.levels("BTC", 50.0)[0].size == 0


def test_accuracy_model_top_buckets_against_distance_baseline():
    price, step = 100_000.0, 50.0
    # exact: $1M at 97,000 (a long cluster 3 % away) and $0.1M right next to price
    exact = (np.array([1940, 1999]), np.array([1_000_000.0, 100_000.0]), np.array([0.0, 0.0]))
    # a model that put its mass at 97,000 catches the cluster; the baseline (nearest 10 %) only the small part
    model = (np.array([1940]), np.array([5e6]), np.array([0.0]))
    a = accuracy(model, exact, price, step, ts=1.0)
    assert a.exact_usd == pytest.approx(1.1e6)
    assert a.base_share == pytest.approx(0.1 / 1.1)
    assert a.model_share == pytest.approx(1.0)  # top 10 % = 20 buckets: the cluster, then nearest-first ties
    assert a.ratio == pytest.approx(11.0)
    # a model that knows nothing ranks like the baseline
    empty = (np.empty(0, np.int64), np.empty(0), np.empty(0))
    a0 = accuracy(empty, exact, price, step)
    assert a0.model_share == pytest.approx(a0.base_share)
    # nothing exact in range: no comparison
    far = (np.array([1000]), np.array([1e6]), np.array([0.0]))
    assert accuracy(model, far, price, step) is None


def test_accuracy_log_pools_by_exact_usd_and_keeps_its_cadence():
    lg = AccuracyLog(every_s=300.0)
    assert lg.due(0.0) and lg.score().text() == "accuracy: waiting for exact positions in range"
    lg.add(0.0, Accuracy(0.0, 1e6, 0.5, 0.1))
    assert not lg.due(299.0) and lg.due(300.0)
    lg.add(300.0, Accuracy(300.0, 3e6, 0.1, 0.1))
    s = lg.score()
    assert s.n == 2
    assert s.model_share == pytest.approx((0.5 * 1 + 0.1 * 3) / 4)
    assert s.base_share == pytest.approx(0.1)
    # two comparisons: the shares, but no ratio to read a verdict from (the demo's panel read 0.0× at n=1)
    assert s.text() == "model 20 % vs base 10 % of exact $ n=2, judged from 5"


def test_oi_share_needs_an_oi():
    assert oi_share([1.0, -1.0], None) is None
    assert oi_share([1.0, -1.0], 0.0) is None
    assert oi_share([1.0, -1.0], 1.0) == 1.0


def test_accuracy_carries_the_hit_rates_interval_once_there_are_five_comparisons():
    # One comparison's ratio says little (the demo's panel read 0.0× at n=1 thirty seconds after launch): like the
    # hit rate's line, the exact line gives the 90 % bootstrap interval of the pooled ratio from five comparisons.
    lg = AccuracyLog(every_s=1.0)
    rows = [(1e6, 0.30, 0.10), (2e6, 0.05, 0.10), (1e6, 0.40, 0.10), (3e6, 0.20, 0.10), (1e6, 0.10, 0.10)]
    for i, (w, m, b) in enumerate(rows[:4]):
        lg.add(float(i), Accuracy(float(i), w, m, b))
    four = lg.score()
    assert four.lo is None and four.hi is None and "–" not in four.text() and "×" not in four.text()
    lg.add(4.0, Accuracy(4.0, *rows[4]))
    s = lg.score()
    w, m, b = (np.array(x) for x in zip(*rows))
    assert s.ratio == pytest.approx(float((w * m).sum() / (w * b).sum()))
    assert s.lo < s.ratio < s.hi  # the comparisons disagree (0.5× to 4×): the interval is wide and holds the ratio
    assert 0.5 <= s.lo and s.hi <= 4.0
    assert s.text() == f"model {s.model_share * 100:.0f} % vs base 10 % of exact $ ({s.ratio:.1f}×, {s.lo:.1f}–{s.hi:.1f}) n=5"
    assert lg.score().to_dict()["lo"] == s.lo  # the same history prints the same interval


def test_the_share_held_at_3x_or_less_is_read_from_each_positions_distance_to_liquidation():
    """The resting layer believes most open interest is held at a few x (docs/model.md §3 step 13); the tracked
    wallets say how much of theirs is: by notional at entry, a liquidation price a third or more from the entry (less
    a maintenance margin's worth), or none at all (the account covers any move), counts; the leverage *setting*
    does not (a cross position set to 20x in a well-funded account is held at far less)."""
    book = PositionBook()
    w4 = "0x" + "4" * 40
    book.apply(W1, [pos(W1, 1.0, 95_000.0)], 0.0)  # 5 % away: ~20x, $100k
    book.apply(w4, [pos(w4, -1.0, 150_000.0, lev=20.0)], 0.0)  # 50 % above a short: ~2x although set to 20x, $100k
    book.apply(W2, [pos(W2, 2.0, math.nan)], 0.0)  # no liquidation price: $200k
    book.apply(W3, [pos(W3, 1.0, 71_000.0, lev=3.0)], 0.0)  # 29 % away: just over 3x, $100k
    cov = book.coverage("BTC", oi_base=100.0)
    assert cov.low_leverage == pytest.approx(300_000.0 / 500_000.0)
    assert cov.label().endswith(", 60 % at ≤3×") and cov.to_dict()["low_leverage_share"] == pytest.approx(0.6)
    assert low_leverage_share([]) is None and book.coverage("ETH").label() == "exact: 0 wallets, OI share unknown"
    # a coverage built without it (older snapshots) says nothing of it
    assert Coverage(1, 1, 1.0, 0.5).label() == "exact: 1 wallet, 50 % of HL OI"

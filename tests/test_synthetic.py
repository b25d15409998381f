"""The synthetic liquidation model, with hand-computed expectations and property tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqmap.core import events as ev
from liqmap.core.buckets import index
from liqmap.core.events import VENUE_ID
from liqmap.core.synthetic import CONSUMED_DTYPE, SyntheticModel
from liqmap.core.tiers import TierTable, binance_tiers, liq_price_inverse, liq_price_linear

STEP = 25.0
# exact tier prices (leverage_spread 0) so the hand-computed formulas apply bucket by bucket
OPEN = {"min_delta_usd": 0.0, "min_delta_rel": 0.0, "cap_rel": 1.0, "half_life_hours": 0.0, "leverage_spread": 0.0,
        "dollar_scale_cap": 1.0,  # the placed USD itself (the dollar scale has its own tests: test_dollars.py)
        "cap_gap_ref_s": 0.0}  # samples 30 s apart here: the flat cap (its gap scaling has its own test)
BIN, BYB, MEX = VENUE_ID["binance"], VENUE_ID["bybit"], VENUE_ID["bitmex"]
LEVS = (5.0, 10.0, 25.0, 50.0, 100.0)
WEIGHTS = (0.15, 0.30, 0.25, 0.20, 0.10)


def oi_rows(*rows):
    """(ts, oi, mark, venue)"""
    return ev.open_interest([(t, o, o * m, m, v) for t, o, m, v in rows])


def trade_rows(*rows):
    """(ts, price, usd, side, venue)"""
    return ev.trades([(t, p, u / p, u, s, v) for t, p, u, s, v in rows])


def liq_rows(*rows):
    """(ts, price, usd, side, venue)"""
    return ev.liquidations([(t, p, u / p, u, s, v, 0) for t, p, u, s, v in rows])


EMPTY_T, EMPTY_L, EMPTY_O = trade_rows(), liq_rows(), oi_rows()


def model(params=None, **kw):
    return SyntheticModel("BTC", STEP, {**OPEN, **(params or {})}, **kw)


def opened(m, venue=BIN, price=60_000.0, buy=300_000.0, sell=100_000.0, d_oi=10.0, t0=0.0):
    """One OI increase of ``d_oi`` BTC on ``venue`` with all trades at ``price``."""
    m.update(oi_rows((t0, 1000.0, price, venue)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((t0 + 10, price, buy, 1, venue), (t0 + 20, price, sell, -1, venue)), EMPTY_L)
    m.update(oi_rows((t0 + 30, 1000.0 + d_oi, price, venue)), EMPTY_T, EMPTY_L)


def as_dict(m, venues=None):
    b, lo, sh = m.levels(venues)
    return {int(i): (float(x), float(y)) for i, x, y in zip(b, lo, sh, strict=True)}


def test_one_oi_increase_lands_exactly_per_tier():
    m = model()
    opened(m)
    # ΔN = 10 BTC × VWAP 60,000 = 600,000; φ = 300k/(300k+100k) = 0.75 (α = 1): long 450k, short 150k.
    # BTC tier 1 (typical 20k position): MMR 0.4 %, cum 0. Long LP = E(1−1/L)/0.996, short E(1+1/L)/1.004.
    want: dict[int, list[float]] = {}
    for lev, w in zip(LEVS, WEIGHTS, strict=True):
        bl = int(math.floor(60_000 * (1 - 1 / lev) / 0.996 / STEP))
        bs = int(math.floor(60_000 * (1 + 1 / lev) / 1.004 / STEP))
        want.setdefault(bl, [0.0, 0.0])[0] += 450_000 * w
        want.setdefault(bs, [0.0, 0.0])[1] += 150_000 * w
    got = as_dict(m)
    assert sorted(got) == sorted(want)
    for b, (lo, sh) in want.items():
        assert got[b][0] == pytest.approx(lo, rel=1e-12) and got[b][1] == pytest.approx(sh, rel=1e-12)
    # e.g. the 10x long: 60,000·0.9/0.996 = 54,216.87 → bucket 2168 with 30 % of 450k
    assert got[2168][0] == pytest.approx(135_000.0)
    assert m.total_long() == pytest.approx(450_000.0) and m.total_short() == pytest.approx(150_000.0)
    p = m.provenance(2168)
    assert p["venues"] == {"binance": pytest.approx(135_000.0)}
    assert p["leverage"] == {"10x": pytest.approx(135_000.0)}
    assert p["oldest"] == p["newest"] == 30.0


def test_a_small_venues_steps_are_applied_not_skipped_under_a_usd_floor_above_its_cap():
    """On a venue holding $200k of open interest the cap (3 %) is $6k: a $25k floor would skip every step the
    cap allows. The floor yields to half the cap, so a 2 % step ($4k) is applied; a 1 % step still waits."""
    from liqmap.core.params import ModelParams
    from dataclasses import asdict

    d = {**asdict(ModelParams()), "half_life_hours": 0.0, "dollar_scale_cap": 1.0,  # the placed USD
         "cap_gap_ref_s": 0.0}  # samples 30 s apart: the flat cap
    assert d["min_delta_usd"] == 25_000.0 and d["cap_rel"] == 0.03  # the defaults this test is about

    def run(d_oi: float):
        m = SyntheticModel("PENDLE", 0.002, dict(d))
        m.update(oi_rows((0.0, 50_000.0, 4.0, BIN)), EMPTY_T, EMPTY_L)
        m.update(oi_rows((30.0, 50_000.0 + d_oi, 4.0, BIN)), EMPTY_T, EMPTY_L)
        return m

    m = run(1_000.0)  # +$4k on $204k: at least half the $6.1k cap
    assert m.stats["skipped"] == 0 and m.stats["intervals"] == 1
    assert m.total_long() + m.total_short() == pytest.approx(4_000.0, rel=0.05)
    assert run(500.0).stats["skipped"] == 1  # +$2k: under half the cap, waits for more


def test_alpha_zero_splits_evenly_and_small_deltas_wait():
    m = model({"taker_alpha": 0.0})
    opened(m)
    assert m.total_long() == pytest.approx(300_000.0) and m.total_short() == pytest.approx(300_000.0)
    # a step under max(rel·OI·P, usd) is not applied; the anchor stays, so the next sample sees the sum
    m2 = model({"min_delta_usd": 100_000.0})
    m2.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m2.update(oi_rows((30.0, 1001.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # 60k < 100k: waits
    assert m2.total_long() + m2.total_short() == 0.0 and m2.stats["skipped"] == 1
    m2.update(oi_rows((60.0, 1002.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # 120k since the anchor
    assert m2.total_long() + m2.total_short() == pytest.approx(120_000.0)
    # the cap: at most cap_rel·OI·P per interval
    m3 = model({"cap_rel": 0.001})
    opened(m3, d_oi=100.0)
    assert m3.total_long() + m3.total_short() == pytest.approx(0.001 * 1100 * 60_000.0)


def test_the_cap_grows_with_the_square_root_of_a_long_gap_between_samples():
    """A back-fill's open interest comes every 5 minutes, the live feed's every 1-10 s: a 5-minute step carries 30
    live samples' moves, and at 3 % of OI the cap cut a ranging market's (a tenth to a quarter of the back-fill's
    steps on the tiny-OI demo). Past ``cap_gap_ref_s`` (10 s) the cap grows with √(gap ÷ 10 s); live, never."""
    def run(gap_s: float, ref: float = 10.0) -> float:
        m = model({"cap_rel": 0.001, "cap_gap_ref_s": ref})
        m.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
        m.update(EMPTY_O, trade_rows((1.0, 60_000.0, 300_000.0, 1, BIN)), EMPTY_L)
        m.update(oi_rows((gap_s, 1100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # +10 %, far past the 0.1 % cap
        return m.total_long() + m.total_short()

    cap = 0.001 * 1100 * 60_000.0
    assert run(10.0) == pytest.approx(cap) and run(3.0) == pytest.approx(cap)  # live cadence: the cap as it is
    assert run(300.0) == pytest.approx(cap * math.sqrt(30.0))  # a 5-minute sample: √30 of it
    assert run(300.0, ref=0.0) == pytest.approx(cap)  # off


def test_tiers_above_max_leverage_dropped_and_renormalized():
    cap20 = TierTable.continuous([(0, 100_000, 0.01, 20), (100_000, 1e9, 0.05, 10)], name="cap20")
    m = model(tiers={"binance": cap20})
    opened(m)
    got = as_dict(m)
    # only 5x and 10x remain: weights .15/.30 → 1/3, 2/3, MMR 1 %
    b5 = int(math.floor(60_000 * 0.8 / 0.99 / STEP))
    b10 = int(math.floor(60_000 * 0.9 / 0.99 / STEP))
    assert got[b5][0] == pytest.approx(450_000 / 3) and got[b10][0] == pytest.approx(450_000 * 2 / 3)
    assert sum(lo for lo, _ in got.values()) == pytest.approx(450_000.0)
    assert m.provenance(b10)["leverage"] == {"10x": pytest.approx(300_000.0)}
    # a real asset: XRP on Binance caps at 75x, so the 100x tier goes and the rest are scaled by 1/0.9
    x = SyntheticModel("XRP", 0.0005, OPEN)
    x.update(oi_rows((0.0, 1e6, 0.6, BIN)), EMPTY_T, EMPTY_L)
    x.update(EMPTY_O, trade_rows((5.0, 0.6, 90_000.0, 1, BIN), (6.0, 0.6, 90_000.0, -1, BIN)), EMPTY_L)
    x.update(oi_rows((10.0, 1e6 + 150_000.0, 0.6, BIN)), EMPTY_T, EMPTY_L)  # ΔN = 90,000 → 45k long
    assert binance_tiers()["XRP"].max_leverage == 75.0
    levs = {}
    for b in x.levels()[0]:
        for k, usd in x.provenance(int(b))["leverage"].items():
            levs[k] = levs.get(k, 0.0) + usd
    assert "100x" not in levs
    assert levs["10x"] == pytest.approx(90_000 * 0.30 / 0.90)
    assert sum(levs.values()) == pytest.approx(90_000.0)


def test_inverse_venue_uses_inverse_formula():
    m = model()
    opened(m, venue=MEX)  # XBTUSD is inverse
    got = as_dict(m, ("bitmex",))
    lp = liq_price_inverse(60_000.0, 10.0, 0.004, +1)
    assert lp != pytest.approx(liq_price_linear(60_000.0, 10.0, 0.004, +1))
    assert got[int(index(lp, STEP))][0] == pytest.approx(135_000.0)
    assert as_dict(m, ("binance",)) == {}


def test_close_removes_proportionally_with_aggressor_logic():
    m = model()
    opened(m)  # long 450k, short 150k
    before = as_dict(m)
    # OI falls by 2 BTC (120k) with closing flow φ = 0.25: shorts lose 120k·.25 = 30k, longs 120k·.75 = 90k
    m.update(oi_rows((40.0, 1010.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # new anchor
    m.update(EMPTY_O, trade_rows((50.0, 60_000.0, 10_000.0, 1, BIN), (51.0, 60_000.0, 30_000.0, -1, BIN)),
             EMPTY_L)
    m.update(oi_rows((60.0, 1008.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_long() == pytest.approx(450_000 - 90_000)
    assert m.total_short() == pytest.approx(150_000 - 30_000)
    after = as_dict(m)
    for b, (lo, sh) in before.items():
        assert after[b][0] == pytest.approx(lo * 360 / 450) and after[b][1] == pytest.approx(sh * 120 / 150)
    # removing far more than was opened leaves zeros, never negatives
    m.update(oi_rows((70.0, 500.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_long() == 0.0 and m.total_short() == 0.0
    assert len(m.levels()[0]) == 0


def test_consumption_when_price_crosses():
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0]})
    opened(m)
    lp_long = 60_000 * 0.9 / 0.996  # 54,216.87 → bucket 2168 (54,200–54,225)
    lp_short = 60_000 * 1.1 / 1.004  # 65,737.05 → bucket 2629
    assert set(as_dict(m)) == {2168, 2629}
    # price falls to 54,230 (bucket 2169): not yet
    m.update(EMPTY_O, trade_rows((100.0, 57_000.0, 1e4, -1, BYB), (101.0, 54_230.0, 1e4, -1, BYB)), EMPTY_L)
    assert 2168 in as_dict(m) and len(m.consumed) == 0
    # a trade inside the level's bucket consumes it (any venue's trade), at that trade's time
    m.update(EMPTY_O, trade_rows((110.0, 54_210.0, 1e4, -1, BYB), (111.0, 54_000.0, 1e4, -1, BYB)), EMPTY_L)
    assert as_dict(m) == {2629: (0.0, pytest.approx(150_000.0))}
    led = m.consumed
    assert led.dtype == CONSUMED_DTYPE and len(led) == 1
    assert led[0]["ts"] == 110.0 and led[0]["bucket"] == 2168 and led[0]["side"] == 1
    assert led[0]["usd"] == pytest.approx(450_000.0) and led[0]["venues"] == 1 << BIN
    assert led[0]["price"] == pytest.approx(2168.5 * STEP)
    assert lp_long // STEP == 2168 and lp_short // STEP == 2629
    # shorts at/below the high: a spike to 65,740 takes the short level
    m.update(EMPTY_O, trade_rows((200.0, 65_740.0, 1e4, 1, BIN)), EMPTY_L)
    assert as_dict(m) == {}
    assert len(m.consumed) == 2 and m.consumed[1]["side"] == -1 and m.consumed[1]["ts"] == 200.0
    assert m.stats["consumed_usd"] == pytest.approx(600_000.0)


def test_decay_halves_after_one_half_life():
    m = model({"half_life_hours": 1.0})
    opened(m)
    lo0, sh0 = m.total_long(), m.total_short()
    m.advance(30.0 + 3600.0)
    assert m.total_long() == pytest.approx(lo0 / 2, rel=1e-12)
    assert m.total_short() == pytest.approx(sh0 / 2, rel=1e-12)
    m.advance(30.0 + 3 * 3600.0)
    assert m.total_long() == pytest.approx(lo0 / 8, rel=1e-12)
    # new positions after decay are added at full value
    m.update(oi_rows((30.0 + 3 * 3600 + 10, 1010.0, 60_000.0, BIN), (30.0 + 3 * 3600 + 40, 1020.0, 60_000.0, BIN)),
             EMPTY_T, EMPTY_L)
    assert m.total_long() + m.total_short() == pytest.approx((lo0 + sh0) / 8 * 2 ** (-40 / 3600) + 600_000.0)


def test_reconciliation_nearest_first_within_k():
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0], "reconcile_buckets": 3})
    m.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    # three entry prices with equal volume, all taker buys → all long; 10x longs land in three buckets
    entries = (60_000.0, 60_060.0, 60_120.0)
    m.update(EMPTY_O, trade_rows(*[(5.0 + i, p, 100_000.0, 1, BIN) for i, p in enumerate(entries)]), EMPTY_L)
    m.update(oi_rows((10.0, 1015.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    vwap = sum(entries) / 3
    each = 15 * vwap / 3
    bks = [int(index(p * 0.9 / 0.996, STEP)) for p in entries]
    assert bks == [2168, 2170, 2173]
    assert as_dict(m) == {b: (pytest.approx(each), 0.0) for b in bks}
    # a real long liquidation of 1.5 levels at bucket 2171: 2170 (1 away) goes first, then 2173 (2 away)
    # loses half; 2168 (3 away, within reach) is untouched because the liquidation is used up
    m.update(EMPTY_O, EMPTY_T, liq_rows((20.0, 2171 * STEP + 1, 1.5 * each, 1, BIN)))
    got = as_dict(m)
    assert 2170 not in got
    assert got[2173][0] == pytest.approx(0.5 * each) and got[2168][0] == pytest.approx(each)
    assert m.stats["reconciled_usd"] == pytest.approx(1.5 * each)
    # equal distance: the lower bucket first (2168 and 2170... 2169 sits between 2168 and an empty 2170)
    m.update(EMPTY_O, EMPTY_T, liq_rows((20.5, 2169 * STEP, 0.25 * each, 1, BIN)))
    got = as_dict(m)
    assert got[2168][0] == pytest.approx(0.75 * each) and got[2173][0] == pytest.approx(0.5 * each)
    # a short liquidation, another venue, or a bucket out of reach changes nothing
    m.update(EMPTY_O, EMPTY_T, liq_rows((21.0, 2171 * STEP, 1e9, -1, BIN), (22.0, 2171 * STEP, 1e9, 1, BYB),
                                        (23.0, 2177 * STEP, 1e9, 1, BIN)))
    assert as_dict(m) == got
    # more than is there: empties everything in reach, never negative
    m.update(EMPTY_O, EMPTY_T, liq_rows((24.0, 2170 * STEP, 1e12, 1, BIN)))
    assert as_dict(m) == {}


def test_venue_filter_and_provenance_sums():
    m = model()
    opened(m, venue=BIN)
    opened(m, venue=BYB, buy=100_000.0, sell=300_000.0, d_oi=5.0, t0=100.0)
    b, lo, sh = m.levels()
    bb, blo, bsh = m.levels(("binance",))
    yb, ylo, ysh = m.levels(("bybit",))
    assert blo.sum() == pytest.approx(450_000.0) and ylo.sum() == pytest.approx(75_000.0)
    assert lo.sum() == pytest.approx(blo.sum() + ylo.sum())
    for i, x, y in zip(b, lo, sh, strict=True):
        p = m.provenance(int(i))
        assert p["long_usd"] == pytest.approx(x) and p["short_usd"] == pytest.approx(y)
        assert sum(p["venues"].values()) == pytest.approx(x + y)
        assert sum(p["leverage"].values()) == pytest.approx(x + y)
    both = [int(i) for i in b if len(m.provenance(int(i))["venues"]) == 2]
    assert both  # the same tier at nearby entries shares buckets across venues
    p = m.provenance(both[0])
    assert p["oldest"] == 30.0 and p["newest"] == 130.0
    assert m.provenance(10**9) == {"long_usd": 0.0, "short_usd": 0.0, "venues": {}, "leverage": {},
                                   "prior_usd": 0.0, "oldest": None, "newest": None}


def test_column_profiles_appear_and_disappear():
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0]})
    m.update(oi_rows((5.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # column 0 (1m)
    m.update(EMPTY_O, trade_rows((70.0, 60_000.0, 3e5, 1, BIN), (80.0, 60_000.0, 1e5, -1, BIN)), EMPTY_L)
    m.update(oi_rows((90.0, 1010.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # the increase: column 1
    # price sweeps the long level (bucket 2168) in column 4
    m.update(EMPTY_O, trade_rows((150.0, 58_000.0, 1e4, -1, BIN), (250.0, 54_100.0, 1e4, -1, BIN)), EMPTY_L)
    m.advance(7 * 60 + 5.0)  # now in column 7
    lo, sh = m.column_profiles("1m", -2, 10, 2160, 20)  # rows 2160..2179
    assert lo.shape == (20, 12) and lo.dtype == np.float32
    row = 2168 - 2160
    col = {c: lo[row, c + 2] for c in range(-2, 10)}
    assert col[-2] == col[-1] == col[0] == 0.0  # before the model had data / before the increase
    assert col[1] == col[2] == col[3] == pytest.approx(450_000.0, rel=1e-3)
    assert col[4] == col[5] == col[6] == col[7] == 0.0  # consumed in column 4; column 7 is live
    assert col[8] == col[9] == 0.0  # the future
    assert lo[:, 2:].sum(axis=0)[1:4] == pytest.approx([450_000.0] * 3, rel=1e-3)  # nothing else in those rows
    # the short level (bucket 2629) persists from column 1 through the live column
    lo2, sh2 = m.column_profiles("1m", 0, 8, 2629, 1)
    assert list(sh2[0]) == [0.0] + [pytest.approx(150_000.0, rel=1e-3)] * 7  # history: float16 precision
    # 5m: column 0 (0–300 s) ends after the sweep, so only the short survives; column 1 is live
    lo5, sh5 = m.column_profiles("5m", 0, 2, 2160, 500)
    assert lo5.sum() == 0.0 and sh5[2629 - 2160, 0] == pytest.approx(150_000.0, rel=1e-3)
    # incremental calls give the same answer as a full one
    full_l, _ = m.column_profiles("1m", -2, 10, 2160, 20)
    part_l, _ = m.column_profiles("1m", 5, 10, 2160, 20)
    np.testing.assert_array_equal(full_l[:, 7:], part_l)
    # venue filter
    none_l, none_s = m.column_profiles("1m", -2, 10, 2160, 500, venues=("okx",))
    assert none_l.sum() == 0.0 and none_s.sum() == 0.0


def test_column_history_with_decay_closes_and_long_gaps():
    m = model({"half_life_hours": 1.0, "leverage_tiers": [10.0], "leverage_weights": [1.0]}, columns=10)
    opened(m)
    m.advance(30.0 * 60)  # 30 columns later, beyond the 10 kept
    lo, _ = m.column_profiles("1m", 0, 31, 2168, 1)
    live = m.total_long()
    assert lo[0, 30] == pytest.approx(live, rel=1e-6)
    # the columns still held decay smoothly: each column end is 2^(-60/3600) of the previous one
    kept = lo[0, 20:30]
    assert np.all(kept > 0)
    np.testing.assert_allclose(kept[1:] / kept[:-1], 2 ** (-60 / 3600), rtol=1e-5)
    # (history values are kept to float16 precision, ~5e-4 relative)
    assert lo[0, 29] == pytest.approx(450_000 * 2 ** (-(30 * 60 - 30) / 3600), rel=1e-3)
    # a close (ratio only) shows in the next column
    m.update(oi_rows((30.0 * 60 + 10, 1005.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # −5 BTC, φ = .5 (no flow)
    m.advance(32.0 * 60)
    lo, _ = m.column_profiles("1m", 29, 32, 2168, 1)
    assert lo[0, 1] == pytest.approx(lo[0, 0] * 2 ** (-60 / 3600) - 150_000 * 2 ** (-50 / 3600), rel=1e-3)
    assert m.memory_bytes() < 2_000_000


def test_rebucket_keeps_notional_and_history():
    m = model({"leverage_tiers": [10.0, 25.0], "leverage_weights": [0.5, 0.5]})
    opened(m)
    m.advance(300.0)
    total = m.total_long() + m.total_short()
    before_cols, _ = m.column_profiles("1m", 0, 5, 0, 4000)
    m.rebucket(50.0)
    assert m.step == 50.0
    assert m.total_long() + m.total_short() == pytest.approx(total)
    b, lo, sh = m.levels()
    assert int(index(60_000 * 0.9 / 0.996, 50.0)) in set(b.tolist())
    after_cols, _ = m.column_profiles("1m", 0, 5, 0, 2000)
    np.testing.assert_allclose(after_cols.sum(axis=0), before_cols.sum(axis=0), rtol=1e-6)


def test_empty_and_bad_input():
    m = model()
    m.update(EMPTY_O, EMPTY_T, EMPTY_L)
    m.update(None, None, None)
    assert m.levels()[0].size == 0 and m.total_long() == 0.0
    lo, sh = m.column_profiles("1m", 0, 5, 0, 10)
    assert lo.sum() == 0 and lo.shape == (10, 5)
    bad = ev.open_interest([(0.0, float("nan"), 0.0, 60_000.0, 0), (1.0, -5.0, 0.0, 60_000.0, 0),
                            (2.0, 10.0, 0.0, float("inf"), 0), (3.0, 10.0, 0.0, 60_000.0, 9)])
    m.update(bad, trade_rows((1.0, 60_000.0, 1e5, 1, BIN))[:0], EMPTY_L)
    assert m.stats["rejected_rows"] == 4
    opened(m)
    state = as_dict(m)
    m.update(EMPTY_O, EMPTY_T, EMPTY_L)
    assert as_dict(m) == state
    with pytest.raises(ValueError):
        SyntheticModel("BTC", 0.0, {})
    with pytest.raises(ValueError):
        SyntheticModel("BTC", 25.0, {"leverage_tiers": [5.0], "leverage_weights": [0.5, 0.5]})


# --- properties -------------------------------------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from([BIN, BYB, VENUE_ID["okx"], MEX, VENUE_ID["deribit"]]),
        st.floats(0.001, 50.0),  # ΔOI (BTC)
        st.lists(st.tuples(st.floats(59_900.0, 60_100.0), st.floats(1.0, 1e6), st.sampled_from([1, -1])),
                 min_size=0, max_size=6),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_notional_is_conserved_through_bucketing(steps):
    m = model()
    oi = dict.fromkeys(range(5), 1000.0)
    for v in range(5):
        m.update(oi_rows((0.0, 1000.0, 60_000.0, v)), EMPTY_T, EMPTY_L)
    t, expected = 1.0, 0.0
    for v, d, trs in steps:
        rows = []
        for p, u, s in trs:
            rows.append((t, p, u, s, v))
            t += 1.0
        m.update(EMPTY_O, trade_rows(*rows), EMPTY_L)
        vol = sum(u for _, u, _ in trs)
        vwap = sum(p * u for p, u, _ in trs) / vol if vol else 60_000.0
        oi[v] += d
        m.update(oi_rows((t, oi[v], 60_000.0, v)), EMPTY_T, EMPTY_L)
        t += 1.0
        # an inverse venue's step is its OI's change in USD (contracts), priced at the sample's mark
        expected += d * (60_000.0 if m._inverse[v] else vwap)
    total = m.total_long() + m.total_short()
    assert total == pytest.approx(expected, rel=1e-9)
    b, lo, sh = m.levels()
    assert lo.sum() + sh.sum() == pytest.approx(expected, rel=1e-9)
    assert m.stats["consumed_usd"] == 0.0 and m.stats["dropped_usd"] == 0.0
    # the column history agrees with the live state: the live column, and (after the clock moves on) that
    # same column replayed from the history
    col = int((t - 1.0) // 60)  # the column of the last event (t was stepped past it)
    rows = (int(b.min()), int(b.max() - b.min() + 1))
    cl, cs = m.column_profiles("1m", col, col + 1, *rows)
    assert float(cl.sum() + cs.sum()) == pytest.approx(expected, rel=1e-5)
    m.advance((col + 3) * 60.0)
    hl, hs = m.column_profiles("1m", col, col + 1, *rows)
    # history keeps float16 precision relative to the largest value changed in that column
    top = max(float(cl.max()), float(cs.max()))
    np.testing.assert_allclose(hl, cl, rtol=1e-3, atol=1e-3 * top)
    np.testing.assert_allclose(hs, cs, rtol=1e-3, atol=1e-3 * top)


@settings(max_examples=60, deadline=None)
@given(
    opens=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=5),
    closes=st.lists(st.floats(0.01, 500.0), min_size=1, max_size=5),
    alpha=st.floats(0.0, 1.0),
    buy=st.floats(0.0, 1e6),
    sell=st.floats(0.0, 1e6),
)
def test_removing_more_than_opened_never_goes_negative(opens, closes, alpha, buy, sell):
    m = model({"taker_alpha": alpha})
    o, t = 1000.0, 0.0
    m.update(oi_rows((t, o, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    for d in opens:
        t += 10
        o += d
        m.update(oi_rows((t, o, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    total_open = m.total_long() + m.total_short()
    for d in closes:
        flow = [(t + 1, 60_000.0, x, s, BIN) for x, s in ((buy, 1), (sell, -1)) if x > 0]
        m.update(EMPTY_O, trade_rows(*flow), EMPTY_L)
        lo0, sh0 = m.total_long(), m.total_short()
        t += 10
        o -= d
        if o <= 0:
            break
        m.update(oi_rows((t, o, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
        tot = buy + sell
        phi = buy / tot if tot > 0 else 0.5
        phi_a = alpha * phi + (1 - alpha) / 2
        r = min(d, o) * 60_000.0  # |ΔN| is capped at cap_rel (1.0 here) × the new OI's notional
        assert m.total_long() == pytest.approx(max(0.0, lo0 - r * (1 - phi_a)), rel=1e-9, abs=1e-6)
        assert m.total_short() == pytest.approx(max(0.0, sh0 - r * phi_a), rel=1e-9, abs=1e-6)
        b, lo, sh = m.levels()
        assert np.all(lo >= 0) and np.all(sh >= 0)
    # closing everything (and more) leaves nothing
    m.update(oi_rows((t + 5, o + 1e6, 60_000.0, VENUE_ID["okx"])), EMPTY_T, EMPTY_L)  # another venue's anchor
    t += 20
    big = 10 * total_open / 60_000.0 + 1.0
    m.update(oi_rows((t, o + big, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # re-anchor via an open ...
    m.update(oi_rows((t + 10, max(o + big - 3 * (big + total_open / 60_000.0), 1e-3), 60_000.0, BIN)),
             EMPTY_T, EMPTY_L)
    assert m.total_long(("binance",)) >= 0.0 and m.total_short(("binance",)) >= 0.0


finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    step=st.sampled_from([1e-8, 0.0001, 0.5, 25.0, 1000.0]),
    rows=st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1e6), finite, finite, st.sampled_from([1, -1]),
                            st.integers(0, 4)), min_size=1, max_size=40),
    half_life=st.sampled_from([0.0, 0.01, 48.0]),
    prior=st.sampled_from([0.0, 0.5]),
    spread=st.sampled_from([0.0, 1.0]),
)
def test_no_nan_or_inf_for_any_finite_input(step, rows, half_life, prior, spread):
    m = SyntheticModel("BTC", step, {"min_delta_usd": 0.0, "min_delta_rel": 0.0, "cap_rel": 0.5,
                                     "half_life_hours": half_life, "max_buckets": 4096,
                                     "prior_weight": prior, "prior_entry_sigma_pct": prior,
                                     "leverage_spread": spread})
    rows = sorted(rows, key=lambda r: r[1])
    for kind, ts, a, b, side, venue in rows:
        a, b = abs(a) + 1e-9, abs(b) + 1e-9
        if kind == 0:
            m.update(ev.open_interest([(ts, a, a * b, b, venue)]), None, None)
        elif kind == 1:
            m.update(None, ev.trades([(ts, b, a, a * b, side, venue)]), None)
        else:
            m.update(None, None, ev.liquidations([(ts, b, a, a * b, side, venue, 0)]))
    m.advance(rows[-1][1] + 7200.0)
    b, lo, sh = m.levels()
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(sh)) and np.all(lo >= 0) and np.all(sh >= 0)
    assert math.isfinite(m.total_long()) and math.isfinite(m.total_short())
    if len(b):
        r0 = int(b.min())
        nrows = min(int(b.max()) - r0 + 1, 4096)
        cl, cs = m.column_profiles("1m", int(rows[0][1] // 60) - 2, int(m._t // 60) + 2, r0, nrows)
        assert np.all(np.isfinite(cl)) and np.all(np.isfinite(cs)) and np.all(cl >= 0)
        p = m.provenance(int(b[0]))
        assert all(math.isfinite(x) for x in p["venues"].values())


def test_highlow_entries_and_mark_fallback():
    m = model({"entry_mode": "highlow", "leverage_tiers": [10.0], "leverage_weights": [1.0]})
    m.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((5.0, 59_000.0, 1e5, 1, BIN), (6.0, 61_000.0, 1e5, -1, BIN),
                                 (7.0, 60_000.0, 2e5, 1, BIN)), EMPTY_L)
    m.update(oi_rows((10.0, 1010.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    # VWAP 60,000 → ΔN 600k; φ = 300k/400k: longs 450k at the low (59,000), shorts 150k at the high (61,000)
    got = as_dict(m)
    assert got == {int(index(59_000 * 0.9 / 0.996, STEP)): (pytest.approx(450_000.0), 0.0),
                   int(index(61_000 * 1.1 / 1.004, STEP)): (0.0, pytest.approx(150_000.0))}
    # a venue with no trades: entries at its mark price, split evenly
    m2 = model({"leverage_tiers": [10.0], "leverage_weights": [1.0]})
    m2.update(oi_rows((0.0, 1000.0, 62_000.0, BYB)), EMPTY_T, EMPTY_L)
    m2.update(oi_rows((10.0, 1010.0, 62_000.0, BYB)), EMPTY_T, EMPTY_L)
    assert as_dict(m2) == {int(index(62_000 * 0.9 / 0.996, STEP)): (pytest.approx(310_000.0), 0.0),
                           int(index(62_000 * 1.1 / 1.004, STEP)): (0.0, pytest.approx(310_000.0))}


def test_trades_before_first_oi_sample_do_not_count():
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0]})
    # flow before the venue's first OI sample belongs to positions the model never saw open
    m.update(EMPTY_O, trade_rows((1.0, 60_000.0, 1e6, 1, BIN)), EMPTY_L)
    m.update(oi_rows((2.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((3.0, 60_000.0, 1e5, -1, BIN)), EMPTY_L)
    m.update(oi_rows((4.0, 1010.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_short() == pytest.approx(600_000.0) and m.total_long() == 0.0


def test_window_follows_price_and_counts_what_falls_off():
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0], "track_pct": 20.0})
    opened(m)  # long at ~54,217, short at ~65,737, around 60,000
    # price doubles over time (trades above the shorts consume them); new positions open near 120,000
    m.update(EMPTY_O, trade_rows((100.0, 120_000.0, 1e4, 1, BIN)), EMPTY_L)
    assert m.total_short() == 0.0 and m.total_long() == pytest.approx(450_000.0)
    m.update(oi_rows((200.0, 1000.0, 120_000.0, BYB)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((210.0, 120_000.0, 1e5, 1, BYB)), EMPTY_L)
    m.update(oi_rows((220.0, 1010.0, 120_000.0, BYB)), EMPTY_T, EMPTY_L)
    # the new levels sit far outside the first window: it re-centred on 120,000 and the old long
    # (55 % below price, beyond track_pct) fell off, counted
    assert m.total_long() == pytest.approx(1_200_000.0)
    assert m.stats["dropped_usd"] == pytest.approx(450_000.0)
    assert set(as_dict(m)) == {int(index(120_000 * 0.9 / 0.996, STEP))}
    lo, _ = m.column_profiles("1m", 0, 4, int(index(120_000 * 0.9 / 0.996, STEP)), 1)
    assert lo[0, 3] == pytest.approx(1_200_000.0)
    lo_old, _ = m.column_profiles("1m", 0, 4, 2168, 1)
    assert lo_old[0, 0] == pytest.approx(450_000.0, rel=1e-3) and lo_old[0, 3] == 0.0


def test_leverage_spread_covers_the_band_between_tiers():
    m = model({"leverage_spread": 1.0})
    opened(m)
    b, lo, sh = m.levels()
    assert lo.sum() == pytest.approx(450_000.0) and sh.sum() == pytest.approx(150_000.0)
    # the 10x tier stands for leverages √(5·10) ≈ 7.07x … √(10·25) ≈ 15.8x: its long mass is spread evenly
    # in price between those leverages' liquidation prices
    lo_p = liq_price_linear(60_000.0, math.sqrt(50.0), 0.004, +1)
    hi_p = liq_price_linear(60_000.0, math.sqrt(250.0), 0.004, +1)
    inside = [int(i) for i in range(int(index(lo_p, STEP)) + 1, int(index(hi_p, STEP)))]
    per_bucket = 450_000 * 0.30 * STEP / (hi_p - lo_p)
    for i in inside:
        assert m.provenance(i)["leverage"] == {"10x": pytest.approx(per_bucket)}
    # longs fill one contiguous run of buckets below price, shorts one above
    long_b = b[lo > 0]
    assert np.all(np.diff(long_b) == 1) and long_b.max() < 2400
    assert np.all(np.diff(b[sh > 0]) == 1) and b[sh > 0].min() >= 2400


def test_leverage_spread_band_wider_than_the_window_is_clipped_and_counted():
    # a 1 % window of 1-USD buckets: the 5x band (liquidations 13-28 % away) lies wholly outside it, the
    # 100x band partly inside; nothing is placed outside the window and what was not placed is counted
    m = SyntheticModel("BTC", 1.0, {**OPEN, "leverage_spread": 1.0, "track_pct": 1.0, "max_buckets": 2000})
    opened(m)
    b, lo, sh = m.levels()
    assert b.min() >= m._b0 and b.max() < m._b0 + m._W
    assert lo.sum() + sh.sum() + m.stats["dropped_usd"] == pytest.approx(600_000.0)
    assert m.stats["dropped_usd"] > 0.5 * 600_000.0 and lo.sum() > 0


# --- cold-start prior (docs/model.md §3 step 10) ---------------------------------------------------------------

PRIOR = {"prior_weight": 0.5, "prior_entry_sigma_pct": 0.0, "prior_half_life_hours": 1.0}


def test_cold_start_prior_places_weighted_oi_at_tier_prices_and_is_labelled():
    # a continuous 0.4 % MMR table, so every tier's liquidation price is the plain formula
    flat = TierTable.continuous([(0, 1e12, 0.004, 125)], name="flat")
    m = model({**PRIOR, "prior_half_life_hours": 0.0}, tiers={"binance": flat})
    m.update(oi_rows((0.0, 100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # first sample: 100 BTC at 60,000
    # 0.5 × 100 × 60,000 = 3,000,000 USD: half long, half short, over the tiers by weight
    assert m.total_long() == pytest.approx(1_500_000.0) and m.total_short() == pytest.approx(1_500_000.0)
    assert m.stats["prior_usd"] == pytest.approx(3_000_000.0)
    got = as_dict(m)
    for lev, w in zip(LEVS, WEIGHTS, strict=True):
        bl = int(math.floor(liq_price_linear(60_000.0, lev, 0.004, 1) / STEP))
        bs = int(math.floor(liq_price_linear(60_000.0, lev, 0.004, -1) / STEP))
        assert got[bl][0] == pytest.approx(1_500_000.0 * w) and got[bs][1] == pytest.approx(1_500_000.0 * w)
        p = m.provenance(bl)
        assert p["prior_usd"] == pytest.approx(1_500_000.0 * w)  # labelled: all of it is prior
        assert p["venues"] == {"binance": pytest.approx(1_500_000.0 * w)}
        assert p["leverage"] == {f"{lev:g}x": pytest.approx(1_500_000.0 * w)}
    assert len(got) == 2 * len(LEVS)
    # an observed OI step is not prior
    m.update(EMPTY_O, trade_rows((10.0, 60_000.0, 300_000.0, 1, BIN)), EMPTY_L)
    m.update(oi_rows((20.0, 110.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    b10 = int(math.floor(liq_price_linear(60_000.0, 10.0, 0.004, 1) / STEP))
    p = m.provenance(b10)
    assert p["prior_usd"] == pytest.approx(1_500_000.0 * 0.30)
    assert p["long_usd"] == pytest.approx(1_500_000.0 * 0.30 + 600_000.0 * 0.30)


def test_cold_start_prior_fades_with_its_own_half_life():
    flat = TierTable.continuous([(0, 1e12, 0.004, 125)], name="flat")
    m = model({**PRIOR, "half_life_hours": 0.0}, tiers={"binance": flat})  # observed levels never decay
    m.update(oi_rows((0.0, 100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((10.0, 60_000.0, 300_000.0, 1, BIN)), EMPTY_L)
    m.update(oi_rows((20.0, 110.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # +600,000 USD observed, all long
    m.advance(3600.0)  # one prior half-life after the prior was placed
    assert m.total_long() == pytest.approx(1_500_000.0 / 2 + 600_000.0)
    assert m.total_short() == pytest.approx(1_500_000.0 / 2)
    m.advance(3 * 3600.0)
    assert m.total_short() == pytest.approx(1_500_000.0 / 8)
    # the column history carries the prior's own decay too: the 1h column [0, 3600) ended at half a life
    b = m.levels()[0]
    _, short = m.column_profiles("1h", 0, 3, int(b.min()), int(b.max() - b.min()) + 1)
    assert short.sum(axis=0)[0] == pytest.approx(1_500_000.0 / 2 ** (3600.0 / 3600.0), rel=1e-3)
    assert short.sum(axis=0)[2] == pytest.approx(1_500_000.0 / 8, rel=1e-3)


def test_cold_start_prior_off_by_weight_zero_and_closes_reduce_it():
    m = model({**PRIOR, "prior_weight": 0.0})
    m.update(oi_rows((0.0, 100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_long() + m.total_short() == 0.0
    # closes take from the prior and the observed levels of the venue in proportion
    m = model({**PRIOR, "prior_half_life_hours": 0.0})
    m.update(oi_rows((0.0, 100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # prior 1.5M per side
    m.update(EMPTY_O, trade_rows((10.0, 60_000.0, 100_000.0, 1, BIN), (11.0, 60_000.0, 100_000.0, -1, BIN)),
             EMPTY_L)
    m.update(oi_rows((20.0, 90.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # −600,000 USD, φ = ½: 300k per side
    assert m.total_long() == pytest.approx(1_200_000.0) and m.total_short() == pytest.approx(1_200_000.0)
    # another venue's first sample places that venue's own prior
    m.update(oi_rows((30.0, 10.0, 60_000.0, BYB)), EMPTY_T, EMPTY_L)
    assert m.total_long(("bybit",)) == pytest.approx(0.5 * 10 * 60_000.0 / 2)
    assert m.total_long(("binance",)) == pytest.approx(1_200_000.0)


@pytest.mark.parametrize("runs", [True, False])
def test_history_delta_encoding_round_trips(runs):
    """Column-history deltas keep every (bucket, venue·side) key and its value (to float16 precision), whether
    the keys are stored as runs of adjacent buckets (spread bands) or one offset per key (scattered levels)."""
    from liqmap.core.synthetic import _History

    rng = np.random.default_rng(3)
    if runs:  # two codes over long runs of adjacent buckets, one gap
        b = np.concatenate([np.arange(1000, 1300), np.arange(1310, 1700)])
        keys = np.unique(np.concatenate([(b << 5) | 0, (b[:200] << 5) | 7]))
    else:
        keys = np.unique((rng.choice(10**6, 500, replace=False).astype(np.int64) << 5) | rng.integers(0, 20, 500))
    vals = rng.uniform(1.0, 1e6, len(keys))
    h = _History(60, 4)
    h.kb = 0
    h.push(np.ones(20), keys, vals)
    assert (h.deltas[0][5] is not None) is runs
    if runs:  # runs take a few bytes per run instead of 4 per key
        assert h.nbytes() < len(keys) * 2 + 400
    _, k2, v2 = h.delta(0)
    order = np.argsort(k2)
    np.testing.assert_array_equal(k2[order], keys)
    np.testing.assert_allclose(v2[order], vals, rtol=1e-3)


def test_spread_history_costs_little_more_than_its_values():
    """With leverage bands every open touches hundreds of adjacent buckets per venue·side; an hour of such
    opens must keep the column history small (runs, not one key per bucket)."""
    m = model({"leverage_spread": 1.0}, columns=60)
    t = 0.0
    for i in range(60):
        t = 60.0 * i + 30
        px = 60_000.0 * (1 + 0.001 * math.sin(i))
        m.update(oi_rows((t, 1000.0 + 10 * i, px, BIN)),
                 trade_rows((t - 1, px, 300_000.0, 1, BIN), (t - 0.5, px * 1.0005, 200_000.0, -1, BIN)), EMPTY_L)
    m.advance(t + 60)
    hist = sum(h.nbytes() for h in m._hist.values())
    keys = sum(len(h.delta(i)[1]) for h in m._hist.values() for i in range(len(h.deltas)))
    assert m.total_long() > 0 and keys > 10_000
    assert hist < 3 * keys  # float16 value + a share of a run; one int32 offset per key would be > 6


def test_an_inverse_venues_oi_is_stepped_in_usd_not_coins():
    """An inverse contract is a fixed number of dollars: its OI in coins moves with price while nobody opens or
    closes. Stepped in coins, a 3 % rise on a $500M Deribit book read as $15M of positions closing (capped, but a
    close every sample); stepped in USD it is nothing, and a real $10M of opens is $10M."""
    der = VENUE_ID["deribit"]
    m = model({"cap_rel": 1.0, "min_delta_usd": 1000.0})  # a floor above float noise (usd / p * p)
    assert m._inverse[der] and not m._inverse[BIN]
    usd = 500e6
    px = [60_000.0, 60_600.0, 61_200.0, 61_800.0]
    for i, p in enumerate(px):
        t = 60.0 * i
        m.update(EMPTY_O, trade_rows((t + 10, p, 50_000.0, 1, der), (t + 20, p, 50_000.0, -1, der)), EMPTY_L)
        m.update(oi_rows((t + 30, usd / p, p, der)), EMPTY_T, EMPTY_L)
    assert m.stats["intervals"] == 0  # the price moved, the dollars did not: no step
    before = m.total_long() + m.total_short()
    p = px[-1]
    m.update(EMPTY_O, trade_rows((300, p, 6e6, 1, der), (310, p, 4e6, -1, der)), EMPTY_L)
    m.update(oi_rows((330, (usd + 10e6) / p, p, der)), EMPTY_T, EMPTY_L)
    assert m.stats["intervals"] == 1
    assert m.total_long() + m.total_short() - before == pytest.approx(10e6, rel=1e-9)


@pytest.mark.parametrize("gap_max, long_after, short_after", [
    (1.0, 390_000.0, 90_000.0),  # off: the fall split by taker flow (even here), both sides alike
    (0.0, 330_000.0, 150_000.0),  # the heavier side (longs, 450k vs 150k) closes first
    (0.5, 390_000.0, 90_000.0),  # a gap of half the two sides' sum (300k of 600k) is within the tolerance
    (0.4, 360_000.0, 120_000.0),  # 60k over the tolerance closes from the longs first, the other 60k evenly
])
def test_side_gap_max_closes_the_heavier_side_first(gap_max, long_after, short_after):
    m = model({"side_gap_max": gap_max, "side_gap_forced_share": 0.0})  # always, whatever the market
    opened(m)  # φ = 0.75: 450k long, 150k short
    assert (m.total_long(), m.total_short()) == (pytest.approx(450_000.0), pytest.approx(150_000.0))
    m.update(EMPTY_O, trade_rows((40.0, 60_000.0, 50_000.0, 1, BIN), (41.0, 60_000.0, 50_000.0, -1, BIN)), EMPTY_L)
    m.update(oi_rows((60.0, 1008.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # −2 BTC = $120k closes, φ = 0.5
    assert (m.total_long(), m.total_short()) == (pytest.approx(long_after), pytest.approx(short_after))


@pytest.mark.parametrize("open_volume, buy, sell, d_oi, placed", [
    # a venue holding 100 BTC ($6M): the cap is 3 % of the new OI (110 BTC × $60k = $198k)
    (False, 700_000.0, 100_000.0, 10.0, 198_000.0),  # the default: a $600k rise is cut to the cap
    (True, 700_000.0, 100_000.0, 10.0, 600_000.0),  # opt-in: $800k traded carries the whole rise
    (True, 300_000.0, 100_000.0, 10.0, 400_000.0),  # ... up to what traded ($400k)
    (True, 0.0, 0.0, 10.0, 198_000.0),  # a jump with no trades behind it stays capped
    (True, 700_000.0, 100_000.0, 2.0, 120_000.0),  # under the cap: unchanged
])
def test_cap_open_volume_keeps_a_rise_the_traded_notional_carries(open_volume, buy, sell, d_oi, placed):
    """``cap_open_volume`` (issue 17 item 4, the market that opens empty): an OI rise past ``cap_rel`` × OI is kept up
    to the notional the venue traded in the interval. Without it a new market's growth from a tiny OI and one whale's
    open on a thin venue are cut to 3 % of that OI."""
    m = model({"cap_rel": 0.03, "cap_open_volume": open_volume})
    m.update(oi_rows((0.0, 100.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    trades = [(10.0, 60_000.0, buy, 1, BIN), (20.0, 60_000.0, sell, -1, BIN)]
    m.update(EMPTY_O, trade_rows(*[t for t in trades if t[2] > 0]) if buy + sell else EMPTY_T, EMPTY_L)
    m.update(oi_rows((30.0, 100.0 + d_oi, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_long() + m.total_short() == pytest.approx(placed, rel=1e-9)
    assert m.stats["capped"] == (1 if placed < d_oi * 60_000.0 else 0)


def test_cap_open_volume_leaves_falls_capped():
    """A fall past the cap stays cut to it with the option on (a cascade's OI fall is mostly levels already swept)."""
    got = []
    for on in (False, True):
        m = model({"cap_rel": 0.03, "cap_open_volume": on})
        opened(m, d_oi=30.0)  # $1.8M placed (under the cap: 3 % of 1030 BTC × $60k)
        m.update(EMPTY_O, trade_rows((40.0, 60_000.0, 5e6, 1, BIN), (41.0, 60_000.0, 5e6, -1, BIN)), EMPTY_L)
        m.update(oi_rows((60.0, 900.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)  # −130 BTC = $7.8M, $10M traded
        got.append(m.total_long() + m.total_short())
    # the capped $1.62M closes half from each side (φ = 0.5): $810k of the $1.35M longs, all $450k of the shorts
    assert got[0] == pytest.approx(got[1]) == pytest.approx(1.35e6 - 0.81e6)


@pytest.mark.parametrize("liq_usd, long_after, short_after", [
    (0.0, 390_000.0, 90_000.0),  # no forced orders published: a quiet market, the fall split by taker flow
    (10_000.0, 390_000.0, 90_000.0),  # liquidations 10k of 510k traded (2.0 %): under the 5 % gate, still quiet
    (40_000.0, 330_000.0, 150_000.0),  # 40k of 540k (7.4 %): a forced phase, the heavier side (longs) first
])
def test_side_gap_balances_only_in_a_forced_phase(liq_usd, long_after, short_after):
    m = model({"side_gap_max": 0.0, "side_gap_forced_share": 0.05})
    opened(m)  # φ = 0.75: 450k long, 150k short; 400k traded
    trades = [(40.0, 60_000.0, 50_000.0, 1, BIN), (41.0, 60_000.0, 50_000.0, -1, BIN)]
    liqs = EMPTY_L
    if liq_usd:  # a short liquidated at 60,000 (its forced buy on the tape too): no model level within reach
        trades.append((42.0, 60_000.0, liq_usd, 1, BIN))
        liqs = liq_rows((42.0, 60_000.0, liq_usd, -1, BIN))
    m.update(EMPTY_O, trade_rows(*trades), liqs)
    assert m.stats["reconciled_usd"] == 0.0 and m.stats["consumed_usd"] == 0.0
    assert (m.total_long(), m.total_short()) == (pytest.approx(450_000.0), pytest.approx(150_000.0))
    # −2 BTC = $120k closes; φ = 0.5 without the liquidation's buy, a little above with it
    m.update(oi_rows((60.0, 1008.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    if liq_usd == 10_000.0:  # φ = 60k / 110k: the taker split closes a little more shorts
        long_after, short_after = 450_000.0 - 120_000.0 * 50 / 110, 150_000.0 - 120_000.0 * 60 / 110
    assert (m.total_long(), m.total_short()) == (pytest.approx(long_after), pytest.approx(short_after))


def test_forced_share_window():
    from liqmap.core.model.regime import ForcedShare

    f = ForcedShare(window_minutes=2)
    assert f.share() == 0.0
    f.add(100, 1000.0, 50.0)
    f.add(100, 1000.0, 0.0)  # the same minute again: summed
    assert f.share() == pytest.approx(0.025)
    f.add(102, 2000.0, 0.0)  # minute 100 is still within two minutes of 102
    assert f.share() == pytest.approx(50.0 / 4000.0)
    f.add(103, 0.0, 10.0)  # minute 100 left the window
    assert f.share() == pytest.approx(10.0 / 2000.0)

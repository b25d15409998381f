"""Margin tiers and liquidation prices, checked against the exchanges' own worked examples and equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqmap.core.assets import DEFAULT_ASSETS, default_universe
from liqmap.core.tiers import (
    GENERIC_TIERS,
    TierTable,
    binance_tiers,
    binance_tiers_header,
    liq_price_binance,
    liq_price_entry_mm,
    liq_price_inverse,
    liq_price_linear,
    liq_price_tiered,
    load_tier_file,
    table_for,
)

BTC = binance_tiers()["BTCUSDT"]


def solve_binance_equation(entry: float, notional: float, leverage: float, side: int, table: TierTable) -> float:
    """Root of Binance's isolated margin equation, found by bisection with no tier shortcut:
    equity(P) = WB + side·Q·(P − E) equals MM(Q·P) = Q·P·MMR(Q·P) − cum(Q·P), with WB = E·Q/L."""
    q = notional / entry
    wb = entry * q / leverage

    def excess(p: float) -> float:
        n = q * p
        i = min(int(np.searchsorted(table.cap, n, side="right")), len(table.cap) - 1)
        mm = n * table.mmr[i] - table.cum[i]
        return wb + side * q * (p - entry) - mm

    lo, hi = (1e-9, entry) if side > 0 else (entry, entry * 10)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # long: excess increases with price; short: decreases
        if (excess(mid) > 0) == (side > 0):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def test_bybit_worked_example_entry_value_form():
    # Bybit help centre: 1 BTC at 20,000, 50x, MMR 0.5 % → liquidation price 19,700.
    assert liq_price_entry_mm(20_000.0, 50.0, 0.005, +1) == pytest.approx(19_700.0, abs=1e-9)
    # Bybit's own terms: LP = Entry − (IM − MM)/Size, IM = PV/L, MM = PV·MMR.
    pv = 20_000.0 * 1.0
    assert 20_000.0 - (pv / 50 - pv * 0.005) / 1.0 == pytest.approx(19_700.0)
    # the mirrored short and a deduction: short LP = E(1 + 1/L − m) + ded/Q
    assert liq_price_entry_mm(20_000.0, 50.0, 0.005, -1) == pytest.approx(20_300.0)
    assert liq_price_entry_mm(20_000.0, 50.0, 0.005, +1, deduction=100.0, qty=2.0) == pytest.approx(19_650.0)


def test_ten_x_long_at_60000_under_04_percent():
    expected = 60_000.0 * 0.9 / 0.996
    assert liq_price_linear(60_000.0, 10.0, 0.004, +1) == pytest.approx(expected, rel=1e-15)
    # the tiered form picks tier 1 (0.4 %, cum 0) for a small position and gives the same price
    assert liq_price_tiered(60_000.0, 10.0, +1, 10_000.0, BTC) == pytest.approx(expected, rel=1e-15)
    # and it is the root of Binance's documented formula with WB = E·Q/L, cum = 0
    q = 10_000.0 / 60_000.0
    assert liq_price_binance(60_000.0, q, +1, 60_000.0 * q / 10, 0.004, 0.0) == pytest.approx(expected, rel=1e-12)


def test_ten_x_short_mirror():
    assert liq_price_linear(60_000.0, 10.0, 0.004, -1) == pytest.approx(60_000.0 * 1.1 / 1.004, rel=1e-15)


@pytest.mark.parametrize(
    "entry,notional,lev,side",
    [
        (60_000.0, 1_000_000.0, 10.0, +1),  # tier 3 at entry and at the liquidation price
        (60_000.0, 620_000.0, 10.0, +1),  # tier 3 at entry, tier 2 at the liquidation price
        (60_000.0, 580_000.0, 10.0, -1),  # tier 2 at entry, tier 3 at the liquidation price
        (60_000.0, 40_000_000.0, 20.0, +1),  # deep tier, large cum
        (3_000.0, 49_000.0, 100.0, -1),
        (66_000.0, 5_000.0, 5.0, +1),
    ],
)
def test_tiered_matches_binance_margin_equation(entry, notional, lev, side):
    got = liq_price_tiered(entry, lev, side, notional, BTC)
    want = solve_binance_equation(entry, notional, lev, side, BTC)
    assert got == pytest.approx(want, rel=1e-9)
    # and the documented closed form with the tier at the liquidation price
    q = notional / entry
    i = BTC.tier_index(q * got)
    direct = liq_price_binance(entry, q, side, entry * q / lev, BTC.mmr[i], BTC.cum[i])
    assert got == pytest.approx(direct, rel=1e-12)


def test_tier_at_liquidation_price_differs_and_is_used():
    entry, notional, lev = 60_000.0, 620_000.0, 10.0
    q = notional / entry
    assert BTC.tier_index(notional) == 2  # 600k–3M at entry
    naive = (entry * (1 - 1 / lev) - BTC.cum[2] / q) / (1 - BTC.mmr[2])
    assert BTC.tier_index(q * naive) == 1  # ... but the liquidation price falls in 50k–600k
    got = liq_price_tiered(entry, lev, +1, notional, BTC)
    recomputed = (entry * (1 - 1 / lev) - BTC.cum[1] / q) / (1 - BTC.mmr[1])
    assert got == pytest.approx(recomputed, rel=1e-15)
    assert BTC.tier_index(q * got) == 1
    # continuity of MM makes the two tiers agree to within a few dollars here, but they are not the same
    assert got != naive


def test_inverse_formulas():
    e, lev, m = 20_000.0, 50.0, 0.005
    assert liq_price_inverse(e, lev, m, +1) == pytest.approx(e / (1 + 1 / lev - m), rel=1e-15)
    assert liq_price_inverse(e, lev, m, -1) == pytest.approx(e / (1 - 1 / lev + m), rel=1e-15)
    # Bybit inverse isolated: LP_long = Qty / (PV + IM − MM), PV = Qty/Entry, IM = PV/L, MM = PV·MMR
    qty = 20_000.0
    pv = qty / e
    assert liq_price_inverse(e, lev, m, +1) == pytest.approx(qty / (pv + pv / lev - pv * m), rel=1e-12)
    assert liq_price_inverse(e, lev, m, -1) == pytest.approx(qty / (pv - pv / lev + pv * m), rel=1e-12)
    # tiered inverse, tier 1 (cum 0) is the plain formula
    assert liq_price_tiered(e, lev, +1, 1_000.0, BTC, inverse=True) == pytest.approx(e / (1 + 1 / lev - 0.004))
    # an inverse short below 1x (over-collateralized) never liquidates
    assert math.isnan(liq_price_inverse(e, 0.9, 0.004, -1))
    assert liq_price_inverse(e, 1.0, 0.004, -1) == pytest.approx(e / 0.004)


def test_no_liquidation_price_is_nan():
    assert math.isnan(liq_price_linear(100.0, 1.0, 0.004, +1))
    assert math.isnan(liq_price_tiered(100.0, 1.0, +1, 1000.0, BTC))
    assert liq_price_linear(100.0, 1.0, 0.004, -1) == pytest.approx(200.0 / 1.004)


def test_vectorized_shapes():
    e = np.array([60_000.0, 61_000.0, 62_000.0])
    lev = np.array([5.0, 10.0, 25.0, 50.0, 100.0])
    lp = liq_price_tiered(e[:, None], lev[None, :], +1, 20_000.0, BTC)
    assert lp.shape == (3, 5)
    assert np.allclose(lp, liq_price_linear(e[:, None], lev[None, :], 0.004, +1), rtol=1e-12)
    assert np.all(np.diff(lp, axis=1) > 0)  # higher leverage → closer to entry


def test_bundled_table_covers_universe_and_matches_reference():
    tables = binance_tiers()
    uni = default_universe()
    for a in DEFAULT_ASSETS:
        sym = uni[a].markets["binance"].symbol
        assert sym in tables and a in tables and tables[a] is tables[sym]
    assert "1000PEPEUSDT" in tables
    # docs/venues.md §5.2 (freqtrade capture, Oct 2024): BTCUSDT ladder
    rows = BTC.rows()
    assert len(rows) == 12
    assert rows[0] == (0.0, 50_000.0, 0.004, 125.0, 0.0)
    assert rows[1] == (50_000.0, 600_000.0, 0.005, 100.0, 50.0)
    assert rows[6] == (100_000_000.0, 230_000_000.0, 0.05, 10.0, 2_981_450.0)
    assert rows[11] == (1_200_000_000.0, 1_800_000_000.0, 0.5, 1.0, 421_481_450.0)
    eth = tables["ETHUSDT"]
    assert eth.rows()[4][:3] == (12_000_000.0, 50_000_000.0, 0.02)
    # cum keeps MM continuous at every band edge, for every bundled table
    for sym, t in tables.items():
        for i in range(1, len(t)):
            edge = t.floor[i]
            assert edge * t.mmr[i - 1] - t.cum[i - 1] == pytest.approx(edge * t.mmr[i] - t.cum[i], abs=1.0), sym
    head = binance_tiers_header()
    assert "leverageBracket" in head["source"] and head["as_of"] == "2024-10-24"


def test_lookups_and_band_edges():
    assert BTC.mmr_for(49_999.0) == 0.004
    assert BTC.mmr_for(50_000.0) == 0.005
    assert BTC.cum_for(1_000_000.0) == 950.0
    assert BTC.max_leverage == 125.0
    assert BTC.max_leverage_for(700_000.0) == 75.0
    assert BTC.max_notional_at(100.0) == 600_000.0
    assert BTC.max_notional_at(126.0) == 0.0
    assert BTC.mmr_for(1e12) == 0.5  # beyond the last cap: last band
    assert BTC.maintenance_margin(100_000.0) == pytest.approx(100_000 * 0.005 - 50)
    np.testing.assert_array_equal(BTC.mmr_for(np.array([0.0, 60_000.0])), [0.004, 0.005])


def test_generic_and_proxy_tables():
    assert GENERIC_TIERS.max_leverage == 50.0
    assert GENERIC_TIERS.cum[1] == pytest.approx(10_000 * 0.005)
    assert table_for("BTC", "bybit") is binance_tiers()["BTC"]
    assert table_for("NOTACOIN", "okx") is GENERIC_TIERS


def test_bad_tables_refused(tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        TierTable.from_rows([(0, 100, 0.01, 50, 0), (50, 200, 0.02, 25, 1)])
    with pytest.raises(ValueError, match="mmr"):
        TierTable.from_rows([(0, 100, 1.5, 50, 0)])
    with pytest.raises(ValueError, match="non-finite"):
        TierTable.from_rows([(0, float("inf"), 0.01, 50, 0)])
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="tier file"):
        load_tier_file(str(bad))
    with pytest.raises(ValueError, match="columns"):
        load_tier_file('{"symbols": {}, "columns": ["a"]}', is_text=True)


@settings(max_examples=200, deadline=None)
@given(
    entry=st.floats(1e-6, 1e7, allow_nan=False, allow_infinity=False),
    lev=st.floats(1.05, 125.0),
    notional=st.floats(1.0, 2e9),
    side=st.sampled_from([1, -1]),
    inverse=st.booleans(),
)
def test_tiered_price_is_finite_and_on_the_losing_side(entry, lev, notional, side, inverse):
    lp = liq_price_tiered(entry, lev, side, notional, BTC, inverse=inverse)
    if math.isnan(lp):
        # only when the deduction makes the position unliquidatable (huge cum vs a tiny leveraged loss)
        return
    assert math.isfinite(lp) and lp > 0
    if not inverse:
        # margin-equation residual at the returned price is zero (relative to the position value)
        q = notional / entry
        i = BTC.tier_index(q * lp)
        resid = entry * q / lev + side * q * (lp - entry) - (q * lp * BTC.mmr[i] - BTC.cum[i])
        assert abs(resid) <= 1e-7 * notional
        # a long liquidates below entry, a short above (MMR < 1/L for every leverage the tier allows)
        if lev <= BTC.max_leverage_for(q * lp):
            assert (lp < entry) if side > 0 else (lp > entry)

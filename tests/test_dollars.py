"""Issue 17 items 3 and 6: the model's dollar scale (core/model/scale.py) and a sampled venue's reconciliation."""

from __future__ import annotations

import numpy as np
import pytest

from liqmap.core.model.scale import dollar_scale
from liqmap.core.venues import LIQ_SAMPLED
from test_synthetic import BIN, BYB, EMPTY_L, EMPTY_O, EMPTY_T, STEP, as_dict, liq_rows, model, oi_rows, trade_rows

NV = 6


def test_dollar_scale_is_public_oi_over_held_clipped():
    oi = np.array([300.0, 100.0, np.nan, 0.0, 0.0, 0.0])
    held = np.array([100.0, 100.0, 50.0, 0.0, 0.0, 0.0])
    every = np.ones(NV, bool)
    # venues without an OI sample (okx: NaN) are out of both sums: (300 + 100) / (100 + 100)
    assert dollar_scale(oi, held, every, 10.0) == pytest.approx(2.0)
    assert dollar_scale(oi, held, every, 1.5) == 1.5  # the cap
    assert dollar_scale(oi, held, every, 1.0) == 1.0  # off
    only_bybit = np.array([False, True, False, False, False, False])
    assert dollar_scale(oi, held, only_bybit, 10.0) == 1.0  # never below 1 (100 / 100)
    assert dollar_scale(oi, held * 10, every, 10.0) == 1.0  # the model holds more than the OI: not shrunk
    assert dollar_scale(oi, np.zeros(NV), every, 10.0) == 1.0  # nothing held: nothing to scale


def _grown(params):
    """Binance OI 1000 → 1010 BTC at 60k, taker buys 3:1: the model sees a $600k step of a $60.6M OI."""
    m = model({"leverage_tiers": [10.0, 25.0], "leverage_weights": [0.5, 0.5], **params})
    m.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((10.0, 60_000.0, 300_000.0, 1, BIN), (20.0, 60_000.0, 100_000.0, -1, BIN)), EMPTY_L)
    m.update(oi_rows((30.0, 1010.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    return m


def test_every_usd_the_model_reports_is_scaled_and_the_ranking_is_not():
    # the flow's dollars: the resting layer (docs/model.md step 13) is the OI's own USD, off the scale (test_resting.py)
    raw, scaled = _grown({"dollar_scale_cap": 1.0, "resting_share": 0.0}), _grown({"dollar_scale_cap": 1e6,
                                                                                  "resting_share": 0.0})
    held = raw.total_long() + raw.total_short()
    assert held == pytest.approx(600_000.0)
    k = 1010.0 * 60_000.0 / held  # public OI ÷ the OI the model holds
    assert scaled.usd_scale() == pytest.approx(k) and raw.usd_scale() == 1.0
    assert scaled.total_long() + scaled.total_short() == pytest.approx(1010.0 * 60_000.0)
    b0, l0, s0 = raw.levels()
    b1, l1, s1 = scaled.levels()
    assert np.array_equal(b0, b1) and np.allclose(l1, l0 * k) and np.allclose(s1, s0 * k)
    # the same order of buckets by USD: the map's and the forecast's rankings are unchanged
    assert np.array_equal(np.argsort(-(l0 + s0), kind="stable"), np.argsort(-(l1 + s1), kind="stable"))
    fb0, fl0, fs0, r0 = raw.forecast(price=60_000.0)
    fb1, fl1, fs1, r1 = scaled.forecast(price=60_000.0)
    assert np.array_equal(r0, r1) and np.allclose(fl1 + fs1, (fl0 + fs0) * k)
    lo0, sh0 = raw.column_profiles("1m", 0, 1, int(b0.min()), int(b0.max() - b0.min()) + 1)
    lo1, sh1 = scaled.column_profiles("1m", 0, 1, int(b0.min()), int(b0.max() - b0.min()) + 1)
    assert np.allclose(lo1, lo0 * k, rtol=1e-5) and lo0.sum() > 0
    p0, p1 = raw.provenance(int(b0[0])), scaled.provenance(int(b0[0]))
    assert p1["long_usd"] == pytest.approx(p0["long_usd"] * k)
    # a venue set without OI samples is not scaled; the cap holds
    assert scaled.usd_scale(("bybit",)) == 1.0
    assert _grown({"dollar_scale_cap": 3.0}).usd_scale() == 3.0


def test_binance_is_the_sampled_venue():
    assert LIQ_SAMPLED == frozenset({"binance"})


@pytest.mark.parametrize("venue, whole", [(BIN, True), (BYB, False)])
def test_a_sampled_venues_print_explains_its_bucket_whole(venue, whole):
    """A Binance print stands for the latest order of a burst of unknown size (one per symbol per second): the
    level in its bucket is reconciled whole. Bybit sends every liquidation: only the printed USD is."""
    m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0], "reconcile_buckets": 3})
    m.update(oi_rows((0.0, 1000.0, 60_000.0, venue)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((5.0, 60_000.0, 100_000.0, 1, venue)), EMPTY_L)
    m.update(oi_rows((10.0, 1010.0, 60_000.0, venue)), EMPTY_T, EMPTY_L)
    (b, (held, _)), = as_dict(m).items()  # 10x longs of $600k in one bucket
    m.update(EMPTY_O, EMPTY_T, liq_rows((20.0, (b + 0.5) * STEP, 5_000.0, 1, venue)))
    left = as_dict(m).get(b, (0.0, 0.0))[0]
    assert left == (0.0 if whole else pytest.approx(held - 5_000.0))
    assert m.stats["reconciled_usd"] == pytest.approx(held if whole else 5_000.0)


def test_a_real_binance_force_order_explains_the_level_it_hit():
    """The real forceOrder frame (BTCUSDT 2020-03-13, a forced BUY of 0.014 BTC at 4706.04 = a short of $66
    liquidated; tardis-node fixtures) through the Binance parser: the 10x shorts the model holds in that bucket
    ($100k) are explained whole; the same print from Bybit (every liquidation sent) explains only its $66."""
    from liqmap.core.events import SHORT
    from venue_helpers import fixture_lines, market, parse_lines

    assets = market("binance", BTC=("BTCUSDT", False, 1.0))
    _, col = parse_lines("binance", assets, fixture_lines("binance_futures_messages.jsonl"), clock_check=False)
    liq = col.get("liq", "BTC")
    assert len(liq) == 1 and liq["side"][0] == SHORT and liq["usd"][0] == pytest.approx(0.014 * 4706.04)
    out = {}
    for venue in (BIN, BYB):
        m = model({"leverage_tiers": [10.0], "leverage_weights": [1.0]})
        ratio = float(m.placement.ratio[venue][1][0])  # a 10x short's liquidation price ÷ its entry
        entry = float(liq["price"][0]) / ratio
        t0 = float(liq["ts"][0]) - 60.0
        m.update(oi_rows((t0, 1000.0, entry, venue)), EMPTY_T, EMPTY_L)
        m.update(EMPTY_O, trade_rows((t0 + 5, entry, 100_000.0, -1, venue)), EMPTY_L)  # taker sells: shorts
        m.update(oi_rows((t0 + 10, 1000.0 + 100_000.0 / entry, entry, venue)), EMPTY_T, EMPTY_L)
        (b, (_, held)), = as_dict(m).items()
        assert b == int(liq["price"][0] // STEP) and held == pytest.approx(100_000.0)
        row = liq.copy()
        row["venue"] = venue
        m.update(EMPTY_O, EMPTY_T, row)
        out[venue] = (as_dict(m).get(b, (0.0, 0.0))[1], m.stats["reconciled_usd"])
    assert out[BIN] == (0.0, pytest.approx(100_000.0))
    assert out[BYB] == (pytest.approx(100_000.0 - 0.014 * 4706.04), pytest.approx(0.014 * 4706.04))

"""The resting layer (liqmap/core/model/resting.py, docs/model.md §3 step 13): the low-leverage open interest held
for days, sized by the public OI, placed along the price path, and gone where price crossed its liquidation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqmap.core import buckets
from liqmap.core import events as ev
from liqmap.core.events import VENUE_ID
from liqmap.core.model.resting import RestingLayer, add_levels
from liqmap.core.prior import PriceHistory
from liqmap.core.synthetic import SyntheticModel
from liqmap.core.tiers import TierTable, liq_price_linear

BIN, BYB = VENUE_ID["binance"], VENUE_ID["bybit"]
STEP = 25.0
MMR = 0.004
FLAT = TierTable.continuous([(0, 1e12, MMR, 125)], name="flat")
TIERS = (1.5, 2.0, 2.5, 3.0)
NV = len(VENUE_ID)


def _params(share=0.5, **kw):
    return {"resting_share": share, "resting_hold_hours": 24.0, "resting_leverage_tiers": TIERS,
            "resting_leverage_weights": (1.0, 1.0, 1.0, 1.0), **kw}


def _layer(share=0.5):
    return RestingLayer(_params(share), {v: FLAT for v in VENUE_ID}, np.zeros(NV, bool), 20_000.0)


def _path(*legs, start=0.0):
    """Minute bars along straight legs of (minutes, to price) from the first leg's price; (history, t, price)."""
    h = PriceHistory()
    t, p = start, legs[0][1]
    for minutes, to in legs:
        for px in np.linspace(p, to, int(minutes)):
            h.add(np.array([t]), np.array([px]))
            t += 60.0
        p = to
    return h, t, p


def _oi(**usd):
    out = np.full(NV, np.nan)
    for venue, x in usd.items():
        out[VENUE_ID[venue]] = x
    return out


def _near(levels, price, pct=5.0):
    b, lo, sh = levels
    inside = (b * STEP >= price * (1 - pct / 100)) & ((b + 1) * STEP <= price * (1 + pct / 100))
    return float(lo[inside].sum()), float(sh[inside].sum())


def test_the_layer_holds_the_share_of_the_open_interest_on_each_side():
    h, t, p = _path((360, 60_000.0))
    b, lo, sh = _layer(0.5).levels(h, t, p, _oi(binance=6e9, bybit=2e9), STEP)
    assert lo.sum() == pytest.approx(0.5 * 8e9) and sh.sum() == pytest.approx(0.5 * 8e9)
    # a flat day leaves every resting position 30 % or more from price: nothing within ±5 %
    assert _near((b, lo, sh), p) == (0.0, 0.0)
    # the 3x longs entered at 60,000 sit at their exact liquidation price
    assert lo[b == buckets.index(liq_price_linear(60_000.0, 3.0, MMR, 1), STEP)].sum() > 0


def test_a_fall_brings_the_old_longs_within_reach_and_drops_those_it_liquidated():
    h, t, p = _path((360, 60_000.0), (120, 39_000.0))  # six flat hours, then -35 % in two
    levels = _layer(0.5).levels(h, t, p, _oi(binance=6e9), STEP)
    b, lo, sh = levels
    near_long, near_short = _near(levels, p)
    # the 3x longs entered on the way down (55,400-58,300: liquidated at 37,050-39,000) are now within 5 %
    assert near_long > 0.001 * 0.5 * 6e9  # 18 of the minutes, at one tier of four
    assert near_short == 0.0
    # nothing long is left above the low: the 3x longs from the flat hours (liquidated near 40,160) are gone
    assert lo[b == buckets.index(liq_price_linear(60_000.0, 3.0, MMR, 1), STEP)].sum() == 0.0
    assert (b[lo > 0] * STEP < 39_000.0).all()
    # and what survived still holds the share (the OI is there, so its holders are among the survivors)
    assert lo.sum() == pytest.approx(0.5 * 6e9)


def test_the_layer_follows_the_open_interest():
    h, t, p = _path((360, 60_000.0), (120, 42_000.0))
    layer = _layer(0.5)
    before = _near(layer.levels(h, t, p, _oi(binance=6e9), STEP), p)[0]
    after = _near(layer.levels(h, t, p, _oi(binance=3e9), STEP), p)[0]  # half the OI liquidated or closed
    assert after == pytest.approx(before / 2)
    assert layer.levels(h, t, p, _oi(), STEP)[0].size == 0  # no OI sample: nothing to size it by
    assert _layer(0.0).levels(h, t, p, _oi(binance=6e9), STEP)[0].size == 0  # off


def test_the_unseen_past_spreads_with_the_usual_volatility_not_this_hours():
    # a quiet day (0.1 % a minute) and a burst: the median minute is the quiet one
    rng = np.random.default_rng(3)
    h = PriceHistory()
    px = 60_000.0 * np.exp(np.cumsum(np.r_[rng.normal(0, 0.001, 600), rng.normal(0, 0.02, 30)]))
    for i, x in enumerate(px):
        h.add(np.array([i * 60.0]), np.array([x]))
    assert h.sigma_hour() == pytest.approx(0.001 * math.sqrt(60.0), rel=0.2)
    assert PriceHistory().sigma_hour() is None
    # under half an hour of bars there is no usual volatility: the layer waits rather than guess the unseen past
    h20, t, p = _path((20, 60_000.0))
    assert h20.sigma_hour() is None
    assert _layer(0.65).levels(h20, t, p, _oi(binance=6e9), STEP)[0].size == 0


def test_the_models_forecast_adds_the_layer_in_real_dollars_for_the_venues_asked():
    def model(share, **kw):
        p = {"min_delta_usd": 0.0, "min_delta_rel": 0.0, "cap_rel": 1.0, **_params(share), **kw}
        return SyntheticModel("BTC", STEP, p, tiers={"binance": FLAT, "bybit": FLAT})

    runs = {}
    for share, cap in ((0.0, 3.0), (0.5, 3.0), (0.5, 1.0)):
        m = model(share, dollar_scale_cap=cap)
        t, price = 0.0, 60_000.0
        for minute in range(480):  # six flat hours, then -30 % in two; 1,010 BTC open on Binance after a step
            price = 60_000.0 if minute < 360 else 60_000.0 - (minute - 359) * 150.0
            oi = 1000.0 if minute < 5 else 1010.0  # the one step the flow sees: the dollar scale is then 3
            m.update(oi=ev.open_interest([(t, oi, oi * price, price, BIN)]) if minute % 5 == 0 else None,
                     trades=ev.trades([(t + 1.0, price, 0.01, 0.01 * price, 1 if minute % 2 else -1, BIN)]))
            t += 60.0
        runs[share, cap] = m
    m0, m1 = runs[0.0, 3.0], runs[0.5, 3.0]
    px = m1.last_price
    flow, with_layer = _near(m0.forecast_levels(), px), _near(m1.forecast_levels(), px)
    # near price the layer adds the old longs, in USD of the OI (1,000 BTC at the last price), not on the scale
    assert with_layer[0] - flow[0] > 0.05 * 0.5 * 1010.0 * px
    assert with_layer[0] - flow[0] < 0.5 * 1010.0 * px
    assert with_layer[1] == pytest.approx(flow[1])
    # the layer is the OI's USD: the flow's dollar scale (3 here, 1 with the cap at 1) does not multiply it
    assert m1.usd_scale() == 3.0 and runs[0.5, 1.0].usd_scale() == 1.0
    unscaled_flow = _near(runs[0.5, 1.0]._flow_forecast_levels(None), px)[0]
    assert _near(runs[0.5, 1.0].forecast_levels(), px)[0] - unscaled_flow == pytest.approx(with_layer[0] - flow[0])
    # the map's levels are the flow's; and a venue with no OI sample adds nothing
    for a, b in zip(m0.levels(), m1.levels()):
        assert np.array_equal(a, b)
    for a, b in zip(m0.forecast_levels(("bybit",)), m1.forecast_levels(("bybit",))):
        assert np.array_equal(a, b)
    # the expected next hour's liquidations rank the old longs: reached within the hour, they count
    def expected_near(m):
        b, el, _es, _reach = m.forecast()
        return float(el[np.abs((b + 0.5) * STEP / px - 1) < 0.05].sum())

    assert expected_near(m1) > expected_near(m0) + 0.01 * 0.5 * 1010.0 * px


def test_add_levels_sums_bucket_by_bucket():
    a = (np.array([1, 3]), np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    b = (np.array([2, 3]), np.array([5.0, 1.0]), np.array([1.0, 1.0]))
    keys, lo, sh = add_levels(a, b)
    assert keys.tolist() == [1, 2, 3] and lo.tolist() == [1.0, 5.0, 3.0] and sh.tolist() == [0.0, 1.0, 2.0]
    empty = (np.empty(0, np.int64), np.empty(0), np.empty(0))
    assert add_levels(a, empty) is a and add_levels(empty, b) is b


def _fall(share, columns=240, minutes=480, bybit=505.0):
    """Six flat hours at 60,000, then -150 a minute (-30 % in two hours); 1,010 BTC open on Binance, ``bybit`` on
    Bybit. (model, {minute: column profiles read right then}) with the 1m columns read every 30 minutes."""
    p = {"min_delta_usd": 0.0, "min_delta_rel": 0.0, "cap_rel": 1.0, **_params(share)}
    m = SyntheticModel("BTC", STEP, p, tiers={"binance": FLAT, "bybit": FLAT}, columns=columns)
    t, price, reads = 0.0, 60_000.0, {}
    for minute in range(minutes):
        price = 60_000.0 if minute < 360 else 60_000.0 - (minute - 359) * 150.0
        oi = 1000.0 if minute < 5 else 1010.0
        rows = [(t, oi, oi * price, price, BIN)] + ([(t, bybit, bybit * price, price, BYB)] if bybit else [])
        m.update(oi=ev.open_interest(rows) if minute % 5 == 0 else None,
                 trades=ev.trades([(t + 1.0, price, 0.01, 0.01 * price, 1 if minute % 2 else -1, BIN)]))
        m.advance(t + 2.0)
        if minute % 30 == 29:
            reads[minute] = _columns(m)
        t += 60.0
    return m, reads


ROW0 = buckets.index(30_000.0, STEP)
NROWS = buckets.index(70_000.0, STEP) - ROW0


def _columns(m, venues=None, ncols=480):
    cur = int(m._t // 60)
    lo, sh = m.column_profiles("1m", cur - ncols + 1, cur + 1, ROW0, NROWS, venues)
    return lo.astype(np.float64), sh.astype(np.float64)


def test_the_maps_columns_draw_the_layer_near_price_as_it_stood_at_each_columns_end():
    """After a 30 % fall the old longs are within reach: NEXT 1H and the reports weighed them (session 16), but the
    map's columns drew the flow alone (0.17-0.45 of the truth's USD near price at real size). Each column now adds
    the layer within ±15 % of price at its end, so the map shows the cluster the verdict names."""
    (m0, reads0), (m1, reads1) = _fall(0.0), _fall(0.5)
    lo0, sh0 = _columns(m0)
    lo1, sh1 = _columns(m1)
    extra = lo1 - lo0  # (row, column): the layer's longs the map now draws; the last column is the current one
    px = m1.last_price
    # the flat hours: the layer sits a third of the price away, out of the map's ±15 %: the columns are the flow's
    assert np.allclose(extra[:, :360 - 2], 0.0) and np.allclose(sh1, sh0)
    # the current column adds exactly what the reports read near price
    b, lo, _ = m1.near_resting_levels()
    assert extra[:, -1].sum() == pytest.approx(lo.sum(), rel=1e-5) and lo.sum() > 0.05 * 0.5 * 1515.0 * px
    # past columns of the fall hold it too, more as price comes nearer the old longs
    fall = extra[:, -121:-1].sum(axis=0)
    assert fall[-10:].min() > 0.05 * 0.5 * 1515.0 * px
    assert fall[-10:].mean() > 3 * fall[40:50].mean()
    # a past column is what the layer was then: read again half an hour later, unchanged
    earlier = reads1[449][0] - reads0[449][0]
    assert earlier[:, 30:-1].sum() > 0 and np.allclose(earlier[:, 30:-1], extra[:, :-31], rtol=1e-6, atol=1e-3)


def test_a_venue_subset_takes_its_share_and_a_rebucket_keeps_the_layers_dollars():
    m, _ = _fall(0.5)
    m_flow, _ = _fall(0.0)
    whole = _columns(m)[0] - _columns(m_flow)[0]
    byb = _columns(m, ("bybit",))[0] - _columns(m_flow, ("bybit",))[0]
    # Bybit holds a third of the OI: a third of the layer, past columns (by the record's amounts) and the current one
    past = whole[:, -60:-1].sum()
    assert past > 0 and byb[:, -60:-1].sum() == pytest.approx(past / 3.0, rel=1e-4)
    assert byb[:, -1].sum() == pytest.approx(whole[:, -1].sum() / 3.0, rel=1e-3)
    # a venue with no OI sample draws none of it
    m_bin_only, _ = _fall(0.5, bybit=0.0)
    m_flow_bin, _ = _fall(0.0, bybit=0.0)
    assert np.allclose(_columns(m_bin_only, ("bybit",))[0], _columns(m_flow_bin, ("bybit",))[0])
    # a rebucket re-bins the records: the dollars of each past column stay
    before = whole[:, -60:-1].sum(axis=0)
    for x in (m, m_flow):
        x.rebucket(2 * STEP)
    cur = int(m._t // 60)
    r0, n = buckets.index(30_000.0, 2 * STEP), buckets.index(70_000.0, 2 * STEP) - buckets.index(30_000.0, 2 * STEP)
    after = (m.column_profiles("1m", cur - 59, cur, r0, n)[0].astype(np.float64)
             - m_flow.column_profiles("1m", cur - 59, cur, r0, n)[0].astype(np.float64)).sum(axis=0)
    assert after == pytest.approx(before, rel=1e-3)


def test_the_layers_column_records_are_bounded_by_the_columns_kept_and_counted_in_memory():
    m, _ = _fall(0.5, columns=60)
    m_flow, _ = _fall(0.0, columns=60)
    recs = m._rest_cols.by_tf
    assert 0 < len(recs["1m"][1]) <= 61 and min(recs["1m"][1]) > int(m._t // 60) - 62
    assert m.memory_bytes() - m_flow.memory_bytes() == m._rest_cols.nbytes() > 0
    # nothing near price in the flat hours: no record is kept for them
    flat, _ = _fall(0.5, minutes=300)
    assert flat._rest_cols.nbytes() == 0
    # ... nor any shape built for them: the bound from the path's extremes and the tiers says none can be near
    assert not flat._resting.reaches(flat._px_hist, flat.last_price, 0.15) and flat._resting._rec is None
    assert m._resting.reaches(m._px_hist, m.last_price, 0.15)


def test_the_columns_hand_the_layers_part_apart_and_the_map_draws_it_as_its_own_plane():
    """After a crash the layer is tens of millions a row near price: on the flow's ramp it was one block of the top
    colour over the flow's clusters. The columns hand its part apart (``rest_out``) and the model modes' grids
    carry it as ``MapGrid.resting``, drawn in a hue of its own; the totals stay the same to the bit."""
    from liqmap.core import codec
    from liqmap.core.grids.modes import drawn_layers, model_layers, resting_plane
    from liqmap.core.grids.window import Window
    from liqmap.core.params import GridParams

    m, _ = _fall(0.5)
    m0, _ = _fall(0.0)
    cur = int(m._t // 60)
    rest = np.zeros((NROWS, 480), np.float32)
    lo, sh = m.column_profiles("1m", cur - 479, cur + 1, ROW0, NROWS, None, rest_out=rest)
    lo_plain, sh_plain = m.column_profiles("1m", cur - 479, cur + 1, ROW0, NROWS)
    assert np.array_equal(lo, lo_plain) and np.array_equal(sh, sh_plain)
    layer = (_columns(m)[0] + _columns(m)[1]) - (_columns(m0)[0] + _columns(m0)[1])  # the flow is the same
    assert rest.sum() > 0.05 * 0.5 * 1515.0 * m.last_price
    assert np.allclose(rest, layer, rtol=1e-4, atol=1e-4 * float(layer.max()))
    # the drawn plane: the layer's share of each drawn cell, never more than the cell; the heatmap mode's smoothed
    win = Window(row0=ROW0, nrows=NROWS, col0=cur - 479, ncols=480, step=STEP, period=60)
    trades = ev.trades([(c * 60.0 + 30.0, p, 0.01, 0.01 * p, 1, BIN) for c, p in
                        ((c, 60_000.0 if c < 360 else 60_000.0 - (c - 359) * 150.0) for c in range(480))])
    r2 = np.zeros((NROWS, 480), np.float32)
    alo, ash = model_layers(m, "1m", win, rest_out=r2)
    dlo, dsh = drawn_layers(m, win, alo, ash, trades, GridParams())
    held = resting_plane("synthetic", r2, alo, ash, dlo, dsh)
    heat = dlo + dsh
    assert held is not None and held.dtype == np.float32
    assert (held <= heat * (1 + 1e-5) + 1e-3).all() and held[:, -60:].sum() > 0.2 * heat[:, -60:].sum()
    assert held[:, :300].sum() == 0  # flat hours: the layer is a third of the price away
    hm = resting_plane("heatmap", r2, alo, ash, dlo, dsh, GridParams(heatmap_sigma_buckets=3.0))
    assert hm.sum() == pytest.approx(held.sum(), rel=1e-3) and not np.allclose(hm, held)
    # none in view: no plane at all (the grid, its snapshot file and the screen stay as they were)
    assert resting_plane("synthetic", np.zeros_like(r2), alo, ash, dlo, dsh) is None
    # the snapshot file keeps it
    from liqmap.core.grids.modes import build_synthetic

    grid = build_synthetic("BTC", "1m", win, dlo, dsh, trades)
    from dataclasses import replace

    back = codec.decode(codec.encode(replace(grid, resting=held)))
    assert back.resting is not None and np.allclose(back.resting, held, rtol=0.011, atol=1e-6 * float(held.max()))
    assert codec.decode(codec.encode(grid)).resting is None


def test_the_layers_far_tail_alone_draws_no_plane_of_its_own():
    """A calm market's view can reach the layer's far tail (the records keep buckets above 1e-5 of its USD): a
    plane of a few dollars a row would put '+ $10/row held≥days' in the legend for nothing."""
    from liqmap.core.grids.modes import RESTING_MIN_SHARE, resting_plane

    lo = np.full((4, 3), 1e6)
    sh = np.zeros((4, 3))
    rest = np.zeros((4, 3))
    rest[0, 0] = 0.5 * RESTING_MIN_SHARE * lo.sum()  # under the share: the view draws none apart
    assert resting_plane("synthetic", rest, lo, sh, lo * 0.5, sh) is None
    rest[0, 0] = 2.0 * RESTING_MIN_SHARE * lo.sum()  # twice the share: drawn as the same part of the drawn cell
    held = resting_plane("synthetic", rest, lo, sh, lo * 0.5, sh)
    assert held is not None and held[0, 0] == pytest.approx(0.5 * rest[0, 0]) and held.sum() == held[0, 0]

"""Grid builders: hand-computed cells, conservation, no NaN/inf, incremental == full rebuild, modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqmap.core import events as ev
from liqmap.core.events import LONG, SHORT, VENUE_ID
from benchmarks.grid_paths import AssetRows, GridState, build_all  # the benchmarks' paths, held to build_view
from liqmap.core.grids import (
    GridParams,
    Window,
    build_heatmap,
    build_hybrid,
    build_raw,
    build_synthetic,
    build_view,
    column_prices,
    gaussian_kernel,
    liquidation_layers,
    make_window,
    normalize,
    price_range,
    price_trace,
    profile_rows,
    rows_around,
    smooth_rows,
    window_around,
)
from liqmap.core.market import Market
from liqmap.core.view import View

STEP = 25.0
COL_NOW = 28_333_333  # the 1m column holding NOW
NOW = COL_NOW * 60 + 30.0
ROW0, NROWS = 2636, 8  # buckets 2636..2643 = prices [65900, 66100)
WIN = Window(STEP, ROW0, NROWS, COL_NOW - 3, 4, 60)  # columns COL_NOW-3 .. COL_NOW


def t_of(col: int, sec: float = 1.0) -> float:
    return col * 60 + sec


def liq(ts, price, usd, side, venue=0):
    return (ts, price, usd / price, usd, side, venue, 0)


def trade(ts, price, venue=0, usd=1000.0, side=1):
    return (ts, price, usd / price, usd, side, venue)


# ---------------------------------------------------------------------------------------------- windows

def test_rows_around_centres_the_price_bucket():
    assert rows_around(66010.0, 25.0, 8) == (2636, 8)  # bucket 2640 sits in row 4 = 8 // 2
    assert rows_around(66010.0, 25.0, 7) == (2637, 7)
    with pytest.raises(ValueError):
        rows_around(66010.0, 25.0, 0)
    with pytest.raises(ValueError):
        rows_around(float("nan"), 25.0, 8)


def test_window_columns_end_with_the_column_of_now():
    w = make_window(NOW, "1m", 4, STEP, ROW0, NROWS)
    assert (w.col0, w.col1, w.period) == (COL_NOW - 3, COL_NOW + 1, 60)
    w5 = window_around(NOW, "5m", 10, STEP, 66010.0, 8)
    assert w5.col1 - 1 == int(NOW // 300) and w5.ncols == 10 and w5.row0 == ROW0
    with pytest.raises(ValueError):
        Window(STEP, 0, 0, 0, 4, 60)


# ---------------------------------------------------------------------------------------------- raw

def test_three_known_liquidations_land_in_exactly_their_cells():
    liqs = ev.liquidations([
        liq(NOW - 5, 66010.0, 10_000.0, LONG),  # bucket 2640 → row 4, column COL_NOW → c 3
        liq(t_of(COL_NOW - 2), 65925.0, 2_500.0, SHORT, venue=1),  # bucket 2637 → row 1, c 1
        liq(t_of(COL_NOW - 3, 0.0), 65900.0, 7.5, SHORT, venue=2),  # lowest edge: row 0, c 0
        # dropped, not clipped onto the edge:
        liq(NOW - 5, 66100.0, 1e6, LONG),  # bucket 2644: one above the top row
        liq(NOW - 5, 65899.99, 1e6, LONG),  # bucket 2635: one below the bottom row
        liq(t_of(COL_NOW - 3, 0.0) - 0.001, 66010.0, 1e6, LONG),  # just before the first column
        liq(t_of(COL_NOW + 1, 0.0), 66010.0, 1e6, SHORT),  # the column after now
    ])
    g = build_raw("BTC", "1m", WIN, liqs)
    assert g.values.dtype == np.float32 and g.values.shape == (8, 4)
    exp_long = np.zeros((8, 4), np.float32)
    exp_short = np.zeros((8, 4), np.float32)
    exp_long[4, 3] = 10_000.0
    exp_short[1, 1] = 2_500.0
    exp_short[0, 0] = 7.5
    np.testing.assert_array_equal(g.long, exp_long)
    np.testing.assert_array_equal(g.short, exp_short)
    np.testing.assert_array_equal(g.values, exp_long + exp_short)
    assert g.row_price(4) == 66000.0 and g.col_time(3) == COL_NOW * 60
    assert (g.row0, g.col0, g.period, g.mode) == (ROW0, COL_NOW - 3, 60, "raw")


def test_same_cell_events_sum_and_sides_stay_apart():
    liqs = ev.liquidations([liq(NOW - 1, 66010.0, 100.0, LONG), liq(NOW - 2, 66020.0, 50.0, LONG),
                            liq(NOW - 3, 66024.99, 30.0, SHORT)])
    g = build_raw("BTC", "1m", WIN, liqs)
    assert g.long[4, 3] == 150.0 and g.short[4, 3] == 30.0 and g.values[4, 3] == 180.0
    assert np.count_nonzero(g.values) == 1


def test_raw_recency_decay_halves_at_one_half_life_and_is_off_by_default():
    liqs = ev.liquidations([liq(NOW - 120, 66010.0, 1000.0, LONG), liq(NOW, 66010.0, 1000.0, SHORT)])
    exact = build_raw("BTC", "1m", WIN, liqs)
    assert exact.long[4, 1] == 1000.0 and exact.short[4, 3] == 1000.0
    decayed = build_raw("BTC", "1m", WIN, liqs, now=NOW, half_life_s=120.0)
    assert decayed.long[4, 1] == pytest.approx(500.0) and decayed.short[4, 3] == pytest.approx(1000.0)
    with pytest.raises(ValueError):
        liquidation_layers(liqs, WIN, half_life_s=60.0)  # decay needs `now`


# ---------------------------------------------------------------------------------------------- trace

def test_trace_is_last_price_per_column_and_nan_where_nothing_traded():
    trades = ev.trades([
        trade(t_of(COL_NOW - 3, 5), 66000.0), trade(t_of(COL_NOW - 3, 50), 66040.0),
        trade(t_of(COL_NOW - 3, 20), 65990.0),  # out of time order: not the last
        trade(t_of(COL_NOW, 1), 66100.0),
        trade(t_of(COL_NOW - 4, 59), 1.0),  # before the window: dropped
        trade(t_of(COL_NOW + 1, 0), 2.0),  # after the window: dropped
    ])
    cp = column_prices(trades, WIN)
    np.testing.assert_array_equal(cp.last, [66040.0, np.nan, np.nan, 66100.0])
    np.testing.assert_array_equal(cp.high, [66040.0, np.nan, np.nan, 66100.0])
    np.testing.assert_array_equal(cp.low, [65990.0, np.nan, np.nan, 66100.0])
    np.testing.assert_array_equal(price_trace(trades, WIN), cp.last)
    hi, lo = price_range(trades, WIN)
    np.testing.assert_array_equal(lo, cp.low)
    assert np.isnan(price_trace(ev.make("trade", n=0), WIN)).all()


def test_trace_ties_go_to_the_later_row_as_market_gather_orders_them():
    t = t_of(COL_NOW, 10)
    trades = ev.trades([trade(t, 66000.0, venue=0), trade(t, 66010.0, venue=1), trade(t, 66005.0, venue=1)])
    assert price_trace(trades, WIN)[3] == 66005.0


# ---------------------------------------------------------------------------------------------- model modes

class FakeModel:
    """Deterministic stand-in for liqmap.core.synthetic: a closed column's profile depends only on
    (column, bucket); levels() is the current profile."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.calls: list[tuple] = []

    def column_profiles(self, tf, col_lo, col_hi, row0, nrows, venues=None):
        self.calls.append((tf, col_lo, col_hi, row0, nrows, venues))
        b = np.arange(row0, row0 + nrows)[:, None]
        c = np.arange(col_lo, col_hi)[None, :]
        long = np.where(b % 3 == 0, 1000.0 * (1 + (c % 4)), 0.0) * self.scale
        short = np.where(b % 5 == 1, 250.0 * (1 + (c % 3)), 0.0) * self.scale
        return long.astype(np.float32), short.astype(np.float32)

    def levels(self, venues=None):
        idx = np.array([ROW0 - 10, ROW0, ROW0 + 3, ROW0 + 3, ROW0 + NROWS], dtype=np.int64)
        return idx, np.array([9.0, 100.0, 40.0, 2.0, 9.0]) * self.scale, np.array([9.0, 0, 5.0, 1.0, 9.0])


def test_synthetic_grid_is_long_plus_short_of_the_model_profile():
    lo, sh = FakeModel().column_profiles("1m", WIN.col0, WIN.col1, ROW0, NROWS)
    g = build_synthetic("BTC", "1m", WIN, lo, sh)
    np.testing.assert_array_equal(g.long, lo)
    np.testing.assert_array_equal(g.values, lo + sh)
    with pytest.raises(ValueError):
        build_synthetic("BTC", "1m", WIN, lo[:, :2], sh)


def test_profile_rows_bins_levels_and_drops_those_outside():
    pl, ps = profile_rows(FakeModel().levels(), WIN)
    exp_l = np.zeros(NROWS)
    exp_l[0], exp_l[3] = 100.0, 42.0
    exp_s = np.zeros(NROWS)
    exp_s[3] = 6.0
    np.testing.assert_array_equal(pl, exp_l)
    np.testing.assert_array_equal(ps, exp_s)


def test_gaussian_smoothing_conserves_interior_mass_and_keeps_the_peak():
    a = np.zeros((41, 3))
    a[20, 1] = 1000.0
    k = gaussian_kernel(1.5)
    assert len(k) == 2 * 6 + 1 and k.sum() == pytest.approx(1.0)
    s = smooth_rows(a, 1.5)
    assert s.sum() == pytest.approx(1000.0)
    assert s[:, 1].argmax() == 20 and s[19, 1] == pytest.approx(s[21, 1])
    assert s[20, 1] == pytest.approx(1000.0 * k[6]) and (s[:, [0, 2]] == 0).all()
    np.testing.assert_array_equal(smooth_rows(a, 0.0), a)


def test_heatmap_is_normalized_to_unit_range_and_all_zero_stays_zero():
    lo, sh = FakeModel().column_profiles("1m", WIN.col0, WIN.col1, ROW0, NROWS)
    g = build_heatmap("BTC", "1m", WIN, lo, sh, params=GridParams(heatmap_sigma_buckets=1.0))
    assert g.values.dtype == np.float32 and g.values.min() >= 0.0 and g.values.max() == 1.0
    assert g.long.sum() > 0 and np.isfinite(g.values).all()
    z = build_heatmap("BTC", "1m", WIN, np.zeros((8, 4)), np.zeros((8, 4)))
    assert np.isfinite(z.values).all() and (z.values == 0).all()
    n = normalize(np.array([[0.0, 1.0, 10.0, 1e6]]), clip_pct=50.0, decades=3.0)
    assert n[0, 0] == 0.0 and n[0, 3] == 1.0 and 0 < n[0, 1] < n[0, 2] <= 1.0


def test_hybrid_layers_add_up_and_real_is_recent_and_decayed():
    p = GridParams(hybrid_real_s=150.0, hybrid_half_life_s=60.0)
    liqs = ev.liquidations([
        liq(NOW, 66010.0, 800.0, LONG),  # age 0: full weight
        liq(NOW - 60, 65925.0, 800.0, SHORT),  # one half-life: 400
        liq(NOW - 151, 65925.0, 800.0, SHORT),  # older than the horizon: not shown
    ])
    model = FakeModel()
    lo, sh = model.column_profiles("1m", WIN.col0, WIN.col1, ROW0, NROWS)
    g = build_hybrid("BTC", "1m", WIN, liqs, lo, sh, levels=model.levels(), now=NOW, params=p)
    assert g.real[4, 3] == pytest.approx(800.0) and g.real[1, 2] == pytest.approx(400.0)
    assert g.real.sum() == pytest.approx(1200.0)
    np.testing.assert_allclose(g.values, g.long + g.short, rtol=1e-6)
    np.testing.assert_allclose(g.long + g.short - g.real, lo + sh, rtol=1e-6, atol=1e-3)
    assert g.long[4, 3] == pytest.approx(lo[4, 3] + 800.0)
    np.testing.assert_array_equal(g.profile_long, profile_rows(model.levels(), WIN)[0].astype(np.float32))
    assert g.profile_short.shape == (NROWS,)


# ---------------------------------------------------------------------------------------------- market paths

def _market(now: float, venues=("binance", "bybit", "okx")) -> Market:
    clock = {"now": now}
    m = Market(["BTC", "ETH"], venues=venues, clock=lambda: clock["now"])
    m._test_clock = clock  # type: ignore[attr-defined]
    return m


def test_build_all_matches_build_view_for_every_asset_and_timeframe():
    m = _market(NOW)
    rng = np.random.default_rng(7)
    for asset, centre in (("BTC", 66000.0), ("ETH", 3000.0)):
        n = 400
        ts = NOW - rng.uniform(0, 86400, n)
        price = centre * (1 + rng.normal(0, 0.01, n))
        m.add("liq", asset, np.array([liq(t, p, 1000.0, LONG if i % 2 else SHORT, i % 3)
                                       for i, (t, p) in enumerate(zip(ts, price))], dtype=ev.LIQ_DTYPE))
        m.add("trade", asset, np.array([trade(t, p, i % 3) for i, (t, p) in enumerate(zip(ts, price))],
                                       dtype=ev.TRADE_DTYPE))
    rows = {"BTC": AssetRows(25.0, *rows_around(66000.0, 25.0, 64)),
            "ETH": AssetRows(1.0, *rows_around(3000.0, 1.0, 64))}
    models = {"BTC": FakeModel(), "ETH": FakeModel(0.5)}
    params = GridParams(raw_half_life_s=3600.0)
    for mode in ("raw", "synthetic", "heatmap", "hybrid"):
        grids = build_all(m, rows, NOW, ncols=30, mode=mode, models=models, params=params)
        assert len(grids) == 10
        for (asset, tf), g in grids.items():
            spec = (View(asset, mode, tf, rows=rows[asset].nrows, columns=30), rows[asset].step, rows[asset].row0)
            ref = build_view(m, *spec, NOW, models[asset], params)
            for name in ("values", "long", "short", "real", "profile_long", "profile_short", "trace"):
                np.testing.assert_array_equal(getattr(g, name), getattr(ref, name), err_msg=f"{mode} {name}")
            assert (g.mode, g.timeframe, g.col0, g.row0) == (mode, tf, ref.col0, ref.row0)
    raw = build_all(m, rows, NOW, ncols=30)
    assert raw[("BTC", "4h")].values.sum() > raw[("BTC", "1m")].values.sum() > 0
    assert (~np.isnan(raw[("BTC", "1h")].trace)).sum() == 25  # 24 h of trades touch 25 hour columns


def test_gridstate_shifts_instead_of_rebuilding_and_rebuilds_on_view_change():
    m = _market(NOW)
    spec = (View("BTC", "raw", "1m", rows=NROWS, columns=4), STEP, ROW0)
    state = GridState(m, *spec)
    m.add("liq", "BTC", ev.liquidations([liq(t_of(COL_NOW - 3), 66010.0, 100.0, LONG)]))
    g = state.update(NOW)
    assert g.values[4, 0] == 100.0 and state.rebuilds == 1
    m._test_clock["now"] = NOW + 60
    m.add("liq", "BTC", ev.liquidations([liq(NOW + 59, 66010.0, 7.0, SHORT)]))
    g = state.update(NOW + 60)  # window moved one column: the oldest column is gone
    assert state.rebuilds == 1 and g.col0 == COL_NOW - 2
    assert g.values.sum() == 7.0 and g.short[4, 3] == 7.0
    np.testing.assert_array_equal(g.values, build_view(m, *spec, NOW + 60).values)
    g = state.update(NOW + 60 * 10)  # jump past the whole window
    assert g.values.sum() == 0 and state.rebuilds == 1
    state.set_view(*(View("BTC", "raw", "1m", rows=NROWS, columns=4), STEP, ROW0 - 1))
    state.update(NOW + 60 * 10)
    assert state.rebuilds == 2


def test_gridstate_refreshes_only_the_newest_model_columns():
    m = _market(NOW)
    model = FakeModel()
    state = GridState(m, *(View("BTC", "synthetic", "1m", rows=NROWS, columns=4), STEP, ROW0), model)
    state.update(NOW)
    state.update(NOW + 1)
    state.update(NOW + 61)
    assert [(c[1], c[2]) for c in model.calls] == [
        (COL_NOW - 3, COL_NOW + 1), (COL_NOW - 1, COL_NOW + 1), (COL_NOW - 1, COL_NOW + 2)]


def test_high_low_follow_the_window():
    m = _market(NOW)
    m.add("trade", "BTC", ev.trades([trade(NOW - 1, 66000.0), trade(NOW - 2, 66500.0, 1), trade(NOW - 3, 65500.0)]))
    state = GridState(m, *(View("BTC", "raw", "1m", rows=NROWS, columns=4), STEP, ROW0))
    g = state.update(NOW)
    assert state.high[3] == 66500.0 and state.low[3] == 65500.0 and g.trace[3] == 66000.0
    assert np.isnan(state.high[:3]).all()


# ---------------------------------------------------------------------------------------------- properties

anything = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def liq_rows(draw, n_max=40, price=st.floats(65_800, 66_200), usd=st.floats(0.01, 1e7)):
    n = draw(st.integers(0, n_max))
    rows = []
    for _ in range(n):
        rows.append(liq(NOW - draw(st.floats(0, 330)), draw(price), draw(usd), draw(st.sampled_from([LONG, SHORT])),
                        draw(st.integers(0, 4))))
    return ev.liquidations(rows) if rows else ev.make("liq", n=0)


@given(liq_rows())
@settings(max_examples=100, deadline=None)
def test_notional_is_conserved_through_bucketing(liqs):
    g = build_raw("BTC", "1m", WIN, liqs)
    inwin = ((liqs["price"] >= 65_900.0) & (liqs["price"] < 66_100.0) & (liqs["ts"] >= WIN.t0)
             & (liqs["ts"] < WIN.t1))
    expected = liqs["usd"][inwin].sum()
    assert float(g.values.astype(np.float64).sum()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(g.long.astype(np.float64).sum()) == pytest.approx(
        liqs["usd"][inwin & (liqs["side"] == LONG)].sum(), rel=1e-5, abs=1e-6)


@given(st.lists(st.tuples(anything, anything, anything, st.sampled_from([-1, 0, 1])), max_size=30),
       st.lists(st.tuples(anything, anything), max_size=30), st.floats(0.0, 5.0), st.floats(0.0, 100.0))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_nan_or_inf_ever_reaches_a_grid(lrows, trows, sigma, pct):
    liqs = ev.liquidations([(t, p, 1.0, u, s, 0, 0) for t, p, u, s in lrows]) if lrows else ev.make("liq", n=0)
    trades = ev.trades([(t, p, 1.0, 1.0, 1, 0) for t, p in trows]) if trows else ev.make("trade", n=0)
    p = GridParams(heatmap_sigma_buckets=sigma, heatmap_clip_pct=pct, hybrid_half_life_s=60.0)
    lo = np.array([[u for _, _, u, _ in lrows][:1] * 4] * 8 if lrows else np.zeros((8, 4)), dtype=np.float64)
    lo = np.resize(lo, (8, 4))
    levels = (np.array([ROW0 + 1, ROW0 + 2]), np.array([np.inf, 1.0]), np.array([np.nan, -5.0]))
    grids = [
        build_raw("BTC", "1m", WIN, liqs, trades),
        build_raw("BTC", "1m", WIN, liqs, trades, now=NOW, half_life_s=1.0),
        build_synthetic("BTC", "1m", WIN, lo, lo[::-1], trades),
        build_heatmap("BTC", "1m", WIN, lo, lo, trades, params=p),
        build_hybrid("BTC", "1m", WIN, liqs, lo, lo, trades, levels, now=NOW, params=p),
    ]
    for g in grids:
        for layer in (g.values, g.long, g.short, g.real, g.profile_long, g.profile_short):
            if layer is not None:
                assert layer.dtype == np.float32
                assert np.isfinite(layer).all() and (layer >= 0).all()
        tr = g.trace[~np.isnan(g.trace)]
        assert np.isfinite(tr).all() and (tr > 0).all()
    assert 0.0 <= grids[3].values.min() and grids[3].values.max() <= 1.0


# One random event stream applied step by step to a market: the incremental state must equal a full
# rebuild after every step, in every mode, including window shifts, late and slightly-future events,
# Hybrid expiry and decay.
@st.composite
def streams(draw):
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        dt = draw(st.sampled_from([0.0, 0.5, 7.0, 30.0, 59.0, 61.0, 130.0, 400.0]))
        evs = []
        for _ in range(draw(st.integers(0, 12))):
            kind = draw(st.sampled_from(["liq", "trade", "trade"]))
            age = draw(st.one_of(st.floats(-50.0, 60.0), st.floats(0.0, 700.0), st.sampled_from([0.0, 30.0])))
            price = draw(st.one_of(st.floats(65_850.0, 66_150.0), st.sampled_from([65_900.0, 66_000.0, 66_100.0])))
            evs.append((kind, age, price, draw(st.floats(1.0, 1e6)), draw(st.sampled_from([LONG, SHORT])),
                        draw(st.integers(0, 2))))
        steps.append((dt, evs))
    return steps


@pytest.mark.parametrize("mode", ["raw", "synthetic", "heatmap", "hybrid"])
@given(stream=streams(), decay=st.booleans())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_incremental_update_equals_full_rebuild(mode, stream, decay):
    now = NOW
    m = _market(now)
    params = GridParams(raw_half_life_s=90.0 if decay else 0.0, hybrid_real_s=200.0,
                        hybrid_half_life_s=90.0 if decay else 0.0, heatmap_sigma_buckets=1.0)
    spec = (View("BTC", mode, "1m", ("binance", "bybit", "okx"), rows=NROWS, columns=5), STEP, ROW0)
    model = FakeModel()
    state = GridState(m, *spec, model, params)
    venues = ("binance", "bybit", "okx")
    for dt, evs in stream:
        now += dt
        m._test_clock["now"] = now
        for kind, age, price, usd, side, v in evs:
            vid = VENUE_ID[venues[v]]
            row = liq(now - age, price, usd, side, vid) if kind == "liq" else trade(now - age, price, vid, usd)
            m.add(kind, "BTC", ev.make(kind, [row]))
        got = state.update(now)
        ref = build_view(m, *spec, now, model, params)
        assert got.col0 == ref.col0 and got.row0 == ref.row0
        scale = max(1.0, float(np.abs(ref.values).max()))
        for a, b in ((got.values, ref.values), (got.long, ref.long), (got.short, ref.short),
                     (got.real, ref.real), (got.profile_long, ref.profile_long)):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * scale)
        np.testing.assert_array_equal(got.trace, ref.trace)
    assert state.rebuilds == 1


@given(st.integers(1, 12))
@settings(max_examples=20, deadline=None)
def test_window_shift_drops_old_columns(k):
    m = _market(NOW)
    spec = (View("BTC", "raw", "1m", rows=NROWS, columns=4), STEP, ROW0)
    state = GridState(m, *spec)
    m.add("liq", "BTC", ev.liquidations([liq(t_of(COL_NOW - c), 66010.0, 10.0 ** c, LONG) for c in range(4)]))
    m.add("trade", "BTC", ev.trades([trade(t_of(COL_NOW - c), 66000.0 + c) for c in range(4)]))
    before = state.update(NOW)
    assert before.values[4].tolist() == [1000.0, 100.0, 10.0, 1.0]
    g = state.update(NOW + 60 * k)
    kept = max(4 - k, 0)
    assert g.values[4, :kept].tolist() == before.values[4, k:].tolist()
    assert (g.values[:, kept:] == 0).all() and np.isnan(g.trace[kept:]).all()
    np.testing.assert_array_equal(g.trace[:kept], before.trace[k:])
    assert state.rebuilds == 1


def test_incremental_hybrid_equals_rebuild_with_the_real_synthetic_model():
    """The same equality with liqmap.core.synthetic's model fed OI, trades and liquidations as they come."""
    from liqmap.core.synthetic import SyntheticModel

    now = NOW
    m = _market(now)
    model = SyntheticModel("BTC", STEP)
    row0, nrows = rows_around(66000.0, STEP, 120)
    spec = (View("BTC", "hybrid", "1m", rows=nrows, columns=12), STEP, row0)
    state = GridState(m, *spec, model)
    rng = np.random.default_rng(3)
    oi, price = 50_000.0, 66_000.0
    for i in range(60):
        now += float(rng.choice([1.0, 5.0, 20.0, 61.0]))
        m._test_clock["now"] = now
        price *= 1 + rng.normal(0, 0.0005)
        ts = np.sort(now - rng.uniform(0, 1, 15))
        px = price * (1 + rng.normal(0, 0.0003, 15))
        tr = ev.trades([trade(t, p, int(rng.integers(0, 3)), 0.5 * p, int(rng.choice([1, -1])))
                        for t, p in zip(ts, px)])
        oi *= 1 + rng.normal(0.001, 0.002)
        o = ev.open_interest([(now, oi, oi * price, price, 0)])
        lq = ev.liquidations([liq(now - 0.5, price * 0.999, price, LONG)]) if i % 7 == 0 else ev.make("liq", n=0)
        for kind, rows in (("trade", tr), ("oi", o), ("liq", lq)):
            m.add(kind, "BTC", rows)
        model.update(oi=o, trades=tr, liqs=lq)
        model.advance(now)
        got, ref = state.update(now), build_view(m, *spec, now, model)
        scale = max(1.0, float(ref.values.max()))
        np.testing.assert_allclose(got.values, ref.values, rtol=1e-5, atol=1e-6 * scale)
        np.testing.assert_allclose(got.real, ref.real, rtol=1e-5, atol=1e-6 * scale)
        np.testing.assert_array_equal(got.profile_long, ref.profile_long)
    assert (ref.values - ref.real).sum() > 0 and ref.real.sum() > 0 and state.rebuilds == 1


def test_dense_and_sparse_binning_give_identical_grids():
    rng = np.random.default_rng(5)
    n = 200  # > ncells/8 for the 8×4 window: dense path; a 3-event subset takes the sparse path
    liqs = ev.liquidations([liq(NOW - rng.uniform(0, 230), rng.uniform(65_900, 66_100), rng.uniform(1, 1e5),
                                LONG if rng.random() < 0.5 else SHORT) for _ in range(n)])
    big = Window(STEP, ROW0, NROWS, COL_NOW - 3, 40, 60)  # 320 cells: the 200 events are sparse here
    for w in (WIN, big):
        g = build_raw("BTC", "1m", w, liqs)
        ls = liquidation_layers(liqs, w)
        np.testing.assert_array_equal(g.long, ls[0].astype(np.float32))
        np.testing.assert_array_equal(g.short, ls[1].astype(np.float32))
        np.testing.assert_array_equal(g.values, g.long + g.short)


@given(st.integers(0, 4), st.integers(-3, 3), st.sampled_from(["1m", "5m", "15m", "1h", "4h"]))
@settings(max_examples=200, deadline=None)
def test_column_edges_agree_with_the_floor_rule(k, ulps, tf):
    from liqmap.core import timeframes
    from liqmap.core.grids.window import col_float, column_thresholds

    w = make_window(NOW, tf, 5, STEP, ROW0, NROWS)
    t = float(w.col0 + k) * w.period
    for _ in range(abs(ulps)):
        t = float(np.nextafter(t, np.inf if ulps > 0 else -np.inf))
    thr = column_thresholds(w)
    by_search = int(np.searchsorted(thr, t, side="right")) - 1
    assert by_search == int(col_float(np.array([t]), w)[0]) == int(timeframes.column(t, tf)) - w.col0


def test_build_all_trace_ties_across_venues_match_a_gather():
    """Equal timestamps on several venues: the later venue in view order wins, as in Market.gather."""
    m = _market(NOW)
    t = t_of(COL_NOW, 10)
    m.add("trade", "BTC", ev.trades([trade(t, 66000.0, VENUE_ID["okx"]), trade(t - 5, 66300.0, VENUE_ID["okx"])]))
    m.add("trade", "BTC", ev.trades([trade(t, 66010.0, VENUE_ID["binance"]), trade(t, 66020.0, VENUE_ID["binance"])]))
    m.add("trade", "BTC", ev.trades([trade(t - 1, 66500.0, VENUE_ID["bybit"])]))
    rows = {"BTC": AssetRows(STEP, ROW0, NROWS)}
    for venues, want in ((None, 66000.0), (("okx", "binance"), 66020.0), (("bybit",), 66500.0)):
        g = build_all(m, rows, NOW, timeframes=("1m",), ncols=4, venues=venues)[("BTC", "1m")]
        spec = (View("BTC", "raw", "1m", venues, rows=NROWS, columns=4), STEP, ROW0)
        assert g.trace[3] == want == build_view(m, *spec, NOW).trace[3]
        assert GridState(m, *spec).update(NOW).trace[3] == want

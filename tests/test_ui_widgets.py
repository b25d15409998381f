"""Widget-level checks: the viewport maps rows to the right prices, the heatmap merges equal cells into one
segment and repaints only changed rows, reports render the engine's real record shapes, the status line
tells DEMO apart and reads venue health."""

from __future__ import annotations


import numpy as np


from ui_fixtures import FixtureSource

from liqmap.core.buckets import index
from liqmap.ui.reports_table import build_rows, format_record, record_price, record_ts
from liqmap.ui.source import View
from liqmap.ui.status import status_line, venue_state
from liqmap.ui.viewport import Viewport, make_frame

NOW = 1_763_900_000.0


def snapshot(mode="raw", rows=60):
    return FixtureSource(("BTC",), now=NOW).latest(View("BTC", mode, "1m", None, rows, None, 240))


def test_frame_rows_cover_the_right_prices_and_sum_zoomed_buckets():
    snap = snapshot()
    g = snap.grid
    for zoom in (1, 2, 4):
        f = make_frame(snap, Viewport(zoom=zoom), 20, 100)
        # Every grid cell shown lands in the row whose price range holds it, with its value summed.
        y = 7
        lo, hi = f.row_range(y)
        r0, r1 = int(index(lo, g.step)) - g.row0, int(index(hi - g.step / 2, g.step)) - g.row0 + 1
        expect = g.values[max(r0, 0):max(r1, 0), f.body_c0:f.body_c0 + 100].sum(axis=0) if r1 > 0 else 0
        assert np.allclose(f.body[y], expect, rtol=1e-5)
        assert f.row_of_price((lo + hi) / 2) == y
        assert abs((hi - lo) - zoom * g.step) < 1e-9


def test_live_column_holds_the_newest_grid_column():
    snap = snapshot()
    f = make_frame(snap, Viewport(), 30, 80)
    assert f.live_c == snap.grid.values.shape[1] - 1
    assert f.body_c0 + 80 == f.live_c  # the body ends right before it
    naive = make_frame(snap, Viewport(), 30, 80, live=False)
    assert naive.body_c0 + 80 == snap.grid.values.shape[1]


def test_hires_doubles_price_resolution():
    snap = snapshot()
    f1 = make_frame(snap, Viewport(), 20, 50)
    f2 = make_frame(snap, Viewport(hires=True), 20, 50)
    lo1, hi1 = f1.row_range(5)
    lo2, hi2 = f2.row_range(5)
    assert abs((hi2 - lo2) - 2 * (hi1 - lo1)) < 1e-9
    assert f2.body.shape[0] == 40


async def test_heatmap_merges_runs_and_repaints_only_changed_rows():
    from textual.app import App

    from liqmap.ui.heatmap import HeatmapView
    from liqmap.ui.palettes import Scale, build_palette
    from liqmap.ui.themes import discover

    pal = build_palette(discover(environ={})["dark"], "truecolor")

    class One(App):
        def compose(self):
            yield HeatmapView()

    snap = snapshot("hybrid", 80)
    app = One()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        hm = app.query_one(HeatmapView)
        f = make_frame(snap, Viewport(), hm.size.height, hm.size.width)
        sc = Scale()
        sc.update(float(f.body.max()))
        n = hm.draw(f, pal, sc.value, None, None, True)
        assert n == hm.size.height  # first draw: everything
        segs = sum(len(list(s)) for s in hm._strips)
        cells = hm.size.width * hm.size.height
        assert segs < cells / 4  # equal neighbours merged into one segment
        assert all(s.cell_length == hm.size.width for s in hm._strips)
        # Same frame again: nothing to repaint.
        assert hm.draw(f, pal, sc.value, None, None, True) == 0
        # A cursor column: every row changes; a highlighted level: one row.
        assert hm.draw(f, pal, sc.value, None, 5, True) == 1
        assert hm.draw(f, pal, sc.value, 10, 5, True) >= hm.size.height - 3  # the cursor column (trace cells keep their glyph)
        # Hires re-encodes every row (two price buckets per cell): all rows repaint, even empty ones.
        f2 = make_frame(snap, Viewport(hires=True), hm.size.height, hm.size.width)
        assert hm.draw(f2, pal, sc.value, None, None, True) == hm.size.height
        assert all("▀" in s.text for s in hm._strips)


def test_reports_render_engine_record_shapes():
    # Shapes as liqmap.core.reports emits them (walls: distance_bp/age_s; sweeps: total_usd + price_lo/hi).
    wall = {"side": "bid", "price": 65800.0, "bucket": 2632, "usd": 4.2e6, "peak_usd": 5e6, "density": 6.1,
            "distance_bp": -31.0, "age_s": 95.0, "first_seen": NOW - 95, "venues": ["binance", "okx"],
            "status": "active"}
    sweep = {"side": "sell", "count": 2, "total_usd": 28134535.0, "ts": NOW - 30, "price_lo": 65865.5,
             "price_hi": 65942.4, "levels": 5, "venues": ["binance", "okx"]}
    absn = {"side": "bid", "price": 65865.5, "usd": 44.7e6, "start": NOW - 20, "duration_s": 5.25,
            "outcome": "held", "venues": ["binance"]}
    text = format_record("walls", wall, 25.0)
    assert "bid" in text and "65,800" in text and "$4.2M" in text and "−0.31%" in text and "active" in text
    assert "bin,okx" in text
    s = format_record("sweeps", sweep, 25.0)
    assert "sell" in s and "$28.1M" in s and "5lv" in s and "×2" in s
    assert record_price(sweep) == (65865.5 + 65942.4) / 2 and record_ts(sweep) == NOW - 30
    assert record_ts(absn) == NOW - 20
    a = format_record("absorptions", absn, 25.0)
    assert "65,866" in a or "65,865" in a
    assert "$44.7M" in a and "5s" in a and "held" in a
    rows = build_rows({"walls": [wall], "sweeps": [sweep], "absorptions": [absn], "convergence": [],
                       "asymmetry": {"bid_share": 0.61, "dominant": "bids"}}, 25.0)
    kinds = [(r.kind, r.section) for r in rows]
    assert ("header", "convergence") in kinds and ("empty", "convergence") in kinds
    assert any("bid share 61%" in r.text and "bids" in r.text for r in rows)


def test_status_line_demo_label_and_health():
    health = {"binance": {"state": "connected", "last_message_age": 0.3, "lag_ewma": 0.12},
              "okx": {"state": "stale", "last_message_age": 45.0},
              "bybit": {"state": "down"}}
    t = status_line("BTC", "heatmap", "5m", health, "DEMO", None).plain
    assert "DEMO (simulated market)" in t and "Synthetic Heatmap" in t and " 5m " in t
    assert "●binance <1s" in t and "◐okx 45s" in t and "○bybit" in t and "lag 120ms" in t
    assert venue_state({"state": "connected", "lag_ms": 250})[2] == 0.25
    assert "LIVE" in status_line("ETH", "raw", "1m", {}, "LIVE", None).plain


def test_engine_source_over_the_real_engine():
    """The adapter the app uses in production, over liqmap.core.engine with real trades in a Market."""
    import copy

    from liqmap.config import DEFAULTS
    from liqmap.core.engine import Engine
    from liqmap.core.market import Market
    from liqmap.ui.source import EngineSource

    from ui_fixtures import scaled

    trades, _, _, _ = scaled("BTC")
    now = float(trades["ts"][-1]) + 1.0
    market = Market(["BTC", "ETH"], clock=lambda: now)
    market.add("trade", "BTC", trades)
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = ["BTC", "ETH"]
    engine = Engine(cfg, market, clock=lambda: now)
    src = EngineSource(engine, label="REPLAY")
    seen = []
    src.on_view = seen.append
    view = View("BTC", "raw", "1m", None, 60, None, 240)
    src.set_view(view)
    assert seen == [view]
    assert src.latest(view) is None  # nothing built yet
    engine.step(now, background=False)
    snap = src.latest(view)
    assert snap is not None and snap.grid.asset == "BTC" and snap.grid.mode == "raw"
    assert np.isfinite(snap.grid.trace).any()
    assert src.has_data("BTC") is True and src.has_data("ETH") is False
    assert src.status().label == "REPLAY"


def test_time_labels_on_hourly_columns_show_the_day_at_midnight_and_hours_otherwise():
    import calendar

    from liqmap.ui.axes import time_label

    midnight = calendar.timegm((2026, 12, 17, 0, 0, 0))
    assert time_label(midnight, 14400) == "17 Dec"  # was 17/00:00
    assert time_label(midnight + 4 * 3600, 14400) == "04:00"
    assert time_label(midnight + 4 * 3600, 60) == "04:00"
    assert time_label(midnight, 60) == "00:00"  # minute columns: the day is not in question


def test_live_badge_says_what_is_true():
    from liqmap.ui.status import live_state

    assert live_state({"binance": {"state": "connected"}, "okx": {"state": "down", "last_error": "x"}}) == ("LIVE", "")
    assert live_state({"binance": {"state": "connecting"}, "okx": {"state": "connecting"}}) == ("CONNECTING", "")
    assert live_state({"binance": {"state": "stale"}, "okx": {"state": "down", "last_error": "HTTP 451"}}) == \
        ("NO DATA", "okx: HTTP 451")
    line = status_line("BTC", "raw", "1m", {"binance": {"state": "down", "last_error": "e"}}, "LIVE", None).plain
    assert "NO DATA" in line and "LIVE" not in line


def test_summary_line_puts_the_next_hour_first_and_counts_each_section():
    from liqmap.ui.reports_table import summary_line

    reports = {"walls": [{"price": 1}] * 3, "sweeps": [], "absorptions": [{"price": 2}],
               "convergence": [{"price": 64_200.0}],
               "forecast": {"clusters": [{"price": 63_900.0, "expected_usd": 72_000.0},
                                         {"price": 65_100.0, "expected_usd": 40_000.0}]}}
    line = summary_line(reports, 25.0, last_price=64_500.0).plain
    assert line.startswith(" NEXT 1H ▼63,900 $72k ▲65,100 $40k")
    assert "WALLS 3" in line and "SWP 0" in line and "ABS 1" in line and "CONV 1 64,200" in line


def test_compact_status_shows_only_a_late_venues_age():
    health = {"binance": {"state": "connected", "age": 0.4}, "bybit": {"state": "stale", "age": 42.0}}
    line = status_line("BTC", "raw", "1m", health, "LIVE", None, compact=True).plain
    assert "●BIN ◐BYB 42s" in line


def test_verdict_fits_80_columns_by_dropping_whole_parts_from_the_end():
    from liqmap.ui.status import fit_verdict, view_line

    v = "▼ 64,225 −1.4% liqs $72k · ▲ 66,125 +1.5% wall $9.7M · book: asks 71% · CONVERGENCE 65,100"
    assert fit_verdict(v, 200) == v
    assert fit_verdict(v, 60) == "▼ 64,225 −1.4% liqs $72k · ▲ 66,125 +1.5% wall $9.7M"
    assert fit_verdict(v, 30) == "▼ 64,225 −1.4% liqs $72k"  # never a price cut in half
    line = view_line(v, 1, 25.0, None, "", width=80, compact=True).plain
    assert "▼ 64,225 −1.4% liqs $72k · ▲ 66,125 +1.5% wall $9.7M" in line and len(line) <= 80
    assert "CONVERGENCE" not in line and "zoom" not in line
    assert "zoom 2×" in view_line(v, 2, 25.0, None, "", width=80, compact=True).plain


def test_walls_panel_shows_both_sides_dominant_first():
    from liqmap.ui.reports_table import build_rows, panel_walls

    bids = [{"side": "bid", "price": 64_000.0 - 100 * i, "usd": 5e6 + i, "status": "active"} for i in range(10)]
    asks = [{"side": "ask", "price": 65_000.0 + 100 * i, "usd": u, "status": "active"}
            for i, u in enumerate((3.3e7, 5.94e7, 3.7e7, 3.4e7))]
    ended = [{"side": "bid", "price": 63_000.0, "usd": 1e6, "status": "pulled"}]
    order = panel_walls(bids + asks + ended)  # the engine's order: bids, then asks, then ended
    assert [w["side"] for w in order[:8]] == ["ask", "bid"] * 4  # asks hold more wall USD: first
    assert order[0]["usd"] == 5.94e7 and order[-1] is ended[0]
    rows = [r for r in build_rows({"walls": bids + asks + ended}, 25.0) if r.section == "walls" and r.kind == "rec"]
    assert {r.record["usd"] for r in rows} >= {5.94e7, 3.7e7, 3.4e7, 3.3e7}  # every ask wall in the 8 rows


def test_a_lagging_venue_says_how_late_it_is():
    health = {"binance": {"state": "connected", "lag_ewma": 0.1}, "bybit": {"state": "lagging", "lag_ewma": 14.2}}
    line = status_line("BTC", "raw", "1m", health, "LIVE", None).plain
    assert "◑bybit" in line and "14.2s late" in line and "LIVE" in line  # late data is still data


def test_fit_zoom_shows_the_whole_price_path_and_does_not_flap():
    """The zoom fits the visible window's price path, the screen centred on the path's middle (kept near the
    last price): out at once when the path runs off the screen, back in only with room to spare."""
    from dataclasses import replace

    from liqmap.ui.viewport import FIT_OUT, fit_centre, fit_zoom

    snap = snapshot()
    g = snap.grid
    last = snap.last_price
    h, w = 40, 100  # 20 rows above and below the middle

    def with_path(reach_buckets: float):
        tr = np.full_like(g.trace, np.nan)
        tr[-w:] = last
        tr[-w] = last - reach_buckets * g.step  # one old dip that far below
        return replace(snap, grid=replace(g, trace=tr))

    assert fit_zoom(with_path(5), h, w, 1) == 1  # 5 buckets: fits at zoom 1
    assert fit_zoom(with_path(60), h, w, 1) == 4  # at 2× the path takes 95 % of the half-screen: 4×
    c = fit_centre(with_path(60), h, w, 4)
    top, bottom = c + 4 * 20 * g.step, c - 4 * 20 * g.step
    assert bottom < last - 60 * g.step and last < top  # the whole path on screen ...
    assert abs(c - last) <= 0.55 * 4 * 20 * g.step + 1e-9  # ... centred near the last price
    assert fit_zoom(with_path(2000), h, w, 1) == 16  # past every zoom: the widest
    # the dip out of the window (older than the body's columns) no longer counts
    old = with_path(200)
    tr = old.grid.trace.copy()
    tr[-w] = last
    tr[-w - 5] = last - 200 * g.step
    assert fit_zoom(replace(old, grid=replace(g, trace=tr)), h, w, 1) == 1
    # hysteresis: at zoom 4, a path that would take 70 % at 2× stays at 4; one that takes 50 % comes in
    assert fit_zoom(with_path(50), h, w, 4) == 4
    assert fit_zoom(with_path(40), h, w, 4) == 2
    # hires: twice the rows per line, so half the zoom
    assert fit_zoom(with_path(60), h, w, 1, sub=2) == 2
    assert FIT_OUT < 1.0


def test_the_price_axis_marks_the_next_hour_magnets():
    """Every row a NEXT 1H cluster spans carries its side's bar at the axis edge, and its middle row the
    expected USD where no round-price label needs the room; clusters off screen are left out."""
    from liqmap.ui.axes import magnet_marks

    snap = snapshot()
    f = make_frame(snap, Viewport(zoom=1), 20, 100)
    lo5, hi5 = f.row_range(5)
    lo7, _ = f.row_range(7)
    below = {"side": "long", "price_lo": lo7, "price_hi": hi5, "price": (lo7 + hi5) / 2, "expected_usd": 654_000.0}
    far = {"side": "short", "price_lo": hi5 + 1e6, "price_hi": hi5 + 2e6, "price": hi5 + 1.5e6, "expected_usd": 1.0}
    marks = magnet_marks(f, [below, far])
    assert set(marks) == {5, 6, 7}  # three rows, the far cluster off screen
    assert all(side == "long" for side, _ in marks.values())
    assert [t for _, t in marks.values() if t] == ["≈$654k"]  # one USD text, on the middle row
    assert marks[6][1] == "≈$654k"


def test_price_trace_is_one_unbroken_line_that_steps_where_price_changes_row():
    """A move of one row used to leave two dashes touching only at a corner (``━`` on row 5, ``━`` on row 4 of
    the next column): at fine zoom a choppy trace read as broken dashes. Each column that changes row now
    draws the step: leave the old row, ``┃`` between, arrive on the new one."""
    import types

    from liqmap.ui.heatmap import HeatmapView

    stub = types.SimpleNamespace(_over=lambda *a, **k: None)
    tr = np.array([5, 5, 4, 4, 6, -1, 6, 2])
    h, w = 8, len(tr)
    overlays = [dict() for _ in range(h)]
    HeatmapView._trace(stub, tr, h, np.zeros((h, w), dtype=np.uint16), overlays, types.SimpleNamespace(trace=None), 1)
    cells = {(y, x): g for y in range(h) for x, (g, _) in overlays[y].items()}
    assert cells == {(5, 0): "━", (5, 1): "━",
                     (5, 2): "┛", (4, 2): "┏",  # up one row: a step, not a gap
                     (4, 3): "━",
                     (4, 4): "┓", (5, 4): "┃", (6, 4): "┗",  # down two rows
                     (6, 6): "━",  # a column with no trade draws nothing; the line resumes on its row
                     (6, 7): "┛", (5, 7): "┃", (4, 7): "┃", (3, 7): "┃", (2, 7): "┏"}
    # every column's line starts on the row the previous traded column's line ended on
    ends = {}
    for x in range(w):
        ys = sorted(y for (y, xx) in cells if xx == x)
        if not ys:
            continue
        assert ys == list(range(ys[0], ys[-1] + 1))  # one vertical run per column
        if ends:
            assert ends[max(ends)] in (ys[0], ys[-1])
        ends[x] = tr[x]


async def test_the_resting_layer_draws_in_its_own_hue_on_its_own_scale_and_the_flow_keeps_its_gradation():
    """After a crash the resting layer (positions held for days) is ten times the flow near price. Summed on one
    ramp it was one block of the top colour; drawn apart, each cell takes the hue of the part holding more of its
    USD, at that part's level on its own scale, and the legend names both scales."""
    from dataclasses import replace

    from textual.app import App

    from liqmap.ui.heatmap import HeatmapView
    from liqmap.ui.palettes import Scale, build_palette, compose_levels, typical_cell, view_top
    from liqmap.ui.status import held_legend
    from liqmap.ui.themes import discover

    pal = build_palette(discover(environ={})["dark"], "truecolor")
    n, hn = pal.n, pal.held_n
    assert n == 10 and hn == 6 and pal.colors[n + 1:] == pal.held_colors
    snap = snapshot("synthetic", 80)
    g = snap.grid
    flow = g.values.astype(np.float64)
    # a curtain 10x the flow's peak over the lower half of the rows, rising towards the middle
    rows = np.arange(g.values.shape[0])[:, None]
    curtain = np.where(rows < 40, 10.0 * flow.max() * (1 + rows) / 40.0, 0.0) * np.ones_like(flow)
    grid = replace(g, values=(flow + curtain).astype(np.float32), long=(g.long + curtain).astype(np.float32),
                   resting=curtain.astype(np.float32))
    snap = replace(snap, grid=grid)

    class One(App):
        def compose(self):
            yield HeatmapView()

    app = One()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        hm = app.query_one(HeatmapView)
        f = make_frame(snap, Viewport(), hm.size.height, hm.size.width)
        assert f.held_body is not None and np.allclose(f.flow_body() + f.held_body, f.body, rtol=1e-5)
        flow_scale, held_scale = Scale(), Scale()
        flow_scale.update(view_top(f.flow_body(), f.flow_live()), typical_cell(f.flow_body(), f.flow_live()))
        held_scale.update(view_top(f.held_body, f.held_live), typical_cell(f.held_body, f.held_live))
        hm.draw(f, pal, flow_scale.value, None, None, False, floor=flow_scale.floor,
                held=(held_scale.value, held_scale.floor))
        codes = hm.levels.astype(int)
        held_cells = codes > n
        # the curtain's cells are in the held hue and keep a gradation (several of its levels), the flow's
        # cells above it stay on the flow's ramp with theirs
        assert held_cells.sum() > 0 and len(np.unique(codes[held_cells])) >= 4
        flow_only = (f.held_body == 0) & (f.body > 0)
        assert flow_only.any() and (codes[flow_only] <= n).all() and len(np.unique(codes[flow_only])) >= 4
        # drawn on one scale instead (the map before), the flow's cells sank to the ramp's bottom level or two
        one = Scale()
        one.update(view_top(f.body, f.live), typical_cell(f.body, f.live))
        summed = compose_levels(f.body, None, one.value, one.floor, 0, 0, n, hn)
        assert summed[flow_only].max() <= 2
    # a cell takes the hue of the larger part: the flow on a tie
    lv = compose_levels(np.array([4.0, 1.0, 2.0, 0.0]), np.array([1.0, 4.0, 2.0, 0.0]), 4.0, 0.0, 4.0, 0.0, n, hn)
    assert lv.tolist() == [n, n + hn, 6, 0]
    key = held_legend(pal.held_colors, 3.2e7, "row").plain
    assert "$32" in key and "held≥days" in key

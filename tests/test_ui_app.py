"""Pilot tests for every binding of the liqmap app, asserting on what is on screen.

The app runs on ``FixtureSource`` (real Binance trades and depth through the project's own grid builders,
see ui_fixtures.py) with the colour system pinned to truecolor. "On screen" is read from Textual's
compositor (the exact cells it would send to the terminal), not from app attributes alone.
"""

from __future__ import annotations

from dataclasses import replace
import copy
import re

import numpy as np
import pytest


from conftest import build_app, screen_text
from ui_fixtures import FixtureSource

from liqmap.config import DEFAULTS
from liqmap.ui.app import LiqmapApp, keymap_ids
from liqmap.ui.axes import PriceAxis, TimeAxis
from liqmap.ui.heatmap import HeatmapView
from liqmap.ui.live_column import LiveColumn, ProfileColumn
from liqmap.ui.reports_table import ReportsTable

NOW = 1_763_900_000.0  # fixed clock: deterministic columns


def make_cfg(**app) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"].update(app)
    return cfg


@pytest.fixture(scope="module")
def source_factory():
    cache = {}

    def make(**kw):
        key = tuple(sorted(kw.items()))
        if key not in cache:
            cache[key] = FixtureSource(("BTC", "ETH", "SOL"), now=NOW, **kw)
        return cache[key]

    return make


def make_app(source, **app) -> LiqmapApp:
    cfg = make_cfg(**{k: v for k, v in app.items() if k != "keys"})
    if "keys" in app:
        cfg["keys"] = app["keys"]
    return build_app(source, cfg)


async def settle(pilot, min_draws: int = 1) -> None:
    app = pilot.app
    for _ in range(40):
        await pilot.pause()
        if app.draws >= min_draws and not app.query_one("#maprow").has_class("empty"):
            break
    await pilot.pause()
    await pilot.pause()


def status(app) -> str:
    return screen_text(app).splitlines()[0]


def status2(app) -> str:
    return screen_text(app).splitlines()[1]


def axis_labels(app) -> list[float]:
    ax = app.query_one(PriceAxis)
    out = []
    for y in range(ax.size.height):
        t = ax.line_text(y).strip()
        if t.endswith("─"):
            out.append(float(t[:-1].replace(",", "")))
    return out


async def test_first_frame_draws_map_axes_status_reports(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        first = text.splitlines()[0]
        assert "BTC" in first and "Hybrid" in first and "1m" in first and "REPLAY" in first
        assert "binance" in first and "deribit" in first
        hm = app.query_one(HeatmapView)
        assert "━" in hm.text()  # the price trace is drawn over the map
        labels = axis_labels(app)
        assert len(labels) >= 5 and all(v % 100 == 0 for v in labels)  # round labels (BTC: every 100)
        assert "▶" in app.query_one(PriceAxis).text()  # last price marked
        assert re.search(r"╵\d\d:\d\d", app.query_one(TimeAxis).text())
        for title in ("WALLS", "SWEEPS", "ABSORPTIONS", "CONVERGENCE"):
            assert title in text
        assert "bids dominate" in text  # asymmetry read
        assert "▐" in app.query_one(LiveColumn).text()  # walls marked at the edge
        assert "█" in app.query_one(ProfileColumn).text()  # Hybrid forward profile
        # The heatmap has coloured cells (levels > 0) where the grid has value.
        assert int(hm.levels.max()) > 0


async def test_mode_keys(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        for i, (key, label) in enumerate([("1", "Raw"), ("2", "Synthetic"), ("3", "Synthetic Heatmap"),
                                          ("4", "Hybrid")]):
            before = app.draws
            await pilot.press(key)
            await settle(pilot, before + 1)
            first = status(app)
            assert f" {label} " in first
            assert app.frame.snap.grid.mode == app.mode  # the map shows that mode's grid
            # The forward profile strip is a Hybrid-only element.
            assert app.query_one(ProfileColumn).display == (label == "Hybrid")
            if label == "Hybrid":
                assert "█" in app.query_one(ProfileColumn).text()


async def test_mode_cycle_m(source_factory):
    app = make_app(source_factory(), mode="raw")
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        seen = []
        for _ in range(5):
            await pilot.press("m")
            await settle(pilot)
            seen.append(re.search(r"(Raw|Synthetic Heatmap|Synthetic|Hybrid|Positions) ", status(app)).group(1))
        assert seen == ["Synthetic", "Synthetic Heatmap", "Hybrid", "Positions", "Raw"]


async def test_asset_next_prev_and_empty_state(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot, 2)
        assert " ETH " in status(app)
        assert all(2800 < v < 3200 for v in axis_labels(app))
        await pilot.press("left_square_bracket", "left_square_bracket")
        await pilot.pause()
        await pilot.pause()
        # BTC's predecessor is the last asset of the 65; the fixture has no data for it: say so.
        last = app.assets[-1]
        text = screen_text(app)
        assert f" {last} " in text.splitlines()[0]
        assert f"no data yet for {last}" in text


async def test_asset_palette_fuzzy_search(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press("s", "o", "l")
        for _ in range(60):
            await pilot.pause(0.05)
            if "SOL" in screen_text(app):
                break
        assert "SOL" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot, 2)
        assert " SOL " in status(app)
        assert len(app.assets) == 65


async def test_timeframe_keys(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        before = app.query_one(TimeAxis).text()
        await pilot.press("t")
        await settle(pilot, 2)
        assert " 5m " in status(app)
        after = app.query_one(TimeAxis).text()
        assert after != before
        # 5m columns: labels an hour apart.
        times = re.findall(r"╵(\d\d):(\d\d)", after)
        assert times and all(m == "00" for _, m in times)
        await pilot.press("T")
        await settle(pilot, 3)
        assert " 1m " in status(app)
        await pilot.press("T")
        await settle(pilot, 4)
        assert " 4h " in status(app)


async def test_zoom_keys(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        assert "zoom fit 1× 25/row" in status2(app)  # the fixture's path fits at zoom 1
        l1 = axis_labels(app)
        await pilot.press("minus")
        await settle(pilot, 2)
        assert "zoom 2× 50/row" in status2(app)  # a manual zoom ends fitting
        l2 = axis_labels(app)
        assert (max(l2) - min(l2)) > 1.6 * (max(l1) - min(l1))  # zoomed out: more price on screen
        await pilot.press("plus")
        await settle(pilot, 3)
        assert "zoom 1× 25/row" in status2(app)
        assert axis_labels(app) == l1
        # Half-block hires (an option): two price buckets per terminal row.
        assert "▀" not in app.query_one(HeatmapView).text()
        await pilot.press("h")
        await settle(pilot, 4)
        assert "▀" in app.query_one(HeatmapView).text()
        assert app.frame.sub == 2


async def test_pan_and_recentre(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        l0 = axis_labels(app)
        await pilot.press("up")
        await settle(pilot, 2)
        l1 = axis_labels(app)
        assert max(l1) > max(l0) and min(l1) > min(l0)
        await pilot.press("down", "down")
        await settle(pilot, 3)
        assert max(axis_labels(app)) < max(l0)
        t0 = app.query_one(TimeAxis).text()
        await pilot.press("left")
        await settle(pilot, 4)
        t1 = app.query_one(TimeAxis).text()
        assert "◀" in t1 and t1 != t0  # scrolled back in time, and says so
        await pilot.press("right")
        await settle(pilot, 5)
        assert "UTC" in app.query_one(TimeAxis).text()
        await pilot.press("up", "left", "c")
        await settle(pilot, 6)
        assert axis_labels(app) == l0
        assert "UTC" in app.query_one(TimeAxis).text()


async def test_venue_filter_cycles(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        assert "venues: all" in status2(app)
        all_sum = float(app.frame.snap.grid.values.sum())
        await pilot.press("v")
        await settle(pilot, 2)
        assert "venues: binance" in status2(app)
        assert app.frame.snap.grid.venues == ("binance",)
        assert float(app.frame.snap.grid.values.sum()) != all_sum
        for v in ("bybit", "okx", "deribit", "hyperliquid"):
            await pilot.press("v")
            await pilot.pause()
            assert f"venues: {v}" in status2(app)
        await pilot.press("v")
        await pilot.pause()
        assert "venues: all" in status2(app)


async def test_reports_panel_toggle(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        w_with = app.query_one(HeatmapView).size.width
        assert "SWEEPS" in screen_text(app)
        await pilot.press("r")
        await settle(pilot)
        await pilot.pause()
        assert "SWEEPS" not in screen_text(app)
        assert app.query_one(HeatmapView).size.width > w_with  # the map takes the room
        await pilot.press("r")
        await pilot.pause()
        await pilot.pause()
        assert "SWEEPS" in screen_text(app)


async def test_enter_on_sweep_moves_time_cursor_and_highlights_level(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        table = app.query_one(ReportsTable)
        await pilot.press("enter")  # into the panel
        await pilot.pause()
        assert table.has_focus
        # Walk down to the first sweep.
        for _ in range(12):
            if table.current().section == "sweeps":
                break
            await pilot.press("down")
        row = table.current()
        assert row.section == "sweeps"
        rec = row.record
        await pilot.press("enter")
        await settle(pilot, 2)
        await pilot.pause()
        frame = app.frame
        x = frame.x_of_ts(rec["ts"])
        assert x is not None
        ta = app.query_one(TimeAxis).line_text(0)
        assert ta[x] == "▲"  # the cursor sits under the sweep's column
        import time as _t

        hhmm = _t.strftime("%H:%M", _t.gmtime(rec["ts"]))
        assert f"cursor {hhmm}" in status2(app)
        hm = app.query_one(HeatmapView)
        y = frame.row_of_price(rec["price"])
        assert y is not None and "╌" in hm.line_text(y)  # its level highlighted on the map
        assert "◆" in app.query_one(PriceAxis).line_text(y)
        assert "┊" in "".join(hm.line_text(r)[x] for r in range(frame.height))
        # Escape leaves the panel; arrows pan the map again.
        await pilot.press("escape")
        await pilot.pause()
        assert not table.has_focus


async def test_reports_open_on_a_sweep_jump_by_section_and_hold_the_selection(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        table = app.query_one(ReportsTable)
        await pilot.press("enter")
        await pilot.pause()
        assert table.has_focus and table.current().section == "sweeps"  # no walk past the walls
        first = table.current().record
        reports = app._snap.reports
        if len(reports["sweeps"]) > 1:
            await pilot.press("n")
            await pilot.pause()
            assert table.current().section == "sweeps" and table.current().record is not first
        await pilot.press("right")
        await pilot.pause()
        assert table.current().section == "absorptions"
        await pilot.press("left", "left")
        await pilot.pause()
        assert table.current().section == "walls"
        await pilot.press("right")
        await pilot.pause()
        held = table.current().record
        # a new snapshot re-sorts and grows the list: the selection stays on the same record
        new = dict(reports)
        new["sweeps"] = [dict(held, ts=held["ts"] + 1.0, price=held["price"] * 1.01)] + list(reversed(reports["sweeps"]))
        table.update_reports(new, app._snap.grid.step, table._styles, view=table.view)
        assert table.current().record is held or table.current().record == held


async def test_enter_on_absorption_far_in_the_past_pans_there(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(ReportsTable)
        await pilot.press("enter")
        for _ in range(15):
            if table.current().section == "sweeps" and app.frame.x_of_ts(table.current().record["ts"]) is None:
                break
            await pilot.press("down")
        rec = table.current().record
        if app.frame.x_of_ts(rec["ts"]) is None:
            await pilot.press("enter")
            await settle(pilot, 2)
            assert app.vp.offset > 0
            assert app.frame.x_of_ts(rec["ts"]) is not None
        else:  # every sweep is already on screen at this width: the cursor still lands on it
            await pilot.press("enter")
            await settle(pilot, 2)
            assert app.frame.x_of_ts(rec["ts"]) is not None


async def test_help_screen_lists_keys_and_model(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "Keys" in text and "mode_raw" in text and "asset_next" in text
        for _ in range(4):  # the model's table is below the keys: page down to it
            await pilot.press("pagedown")
            await pilot.pause()
            text += screen_text(app)
        assert "half_life_hours" in text and "48" in text
        assert "leverage_tiers" in text
        assert "config [keys]" in text and "config [model]" in text
        await pilot.press("escape")
        await pilot.pause()
        assert "half_life_hours" not in screen_text(app)


async def test_help_scrolls_by_keyboard_on_a_small_screen(source_factory):
    from textual.containers import VerticalScroll

    app = make_app(source_factory())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        vp_before = app.vp
        await pilot.press("question_mark")
        await pilot.pause()
        sc = app.screen.query_one(VerticalScroll)
        assert sc.max_scroll_y > 0  # the help is longer than 24 rows
        await pilot.press("down", "down")
        await pilot.pause()
        assert sc.scroll_y == 2
        await pilot.press("pagedown")
        await pilot.pause()
        assert sc.scroll_y > 2
        await pilot.press("end")
        await pilot.pause()
        assert sc.scroll_y == sc.max_scroll_y and "time cursor" in screen_text(app)  # the legend, at the end
        await pilot.press("home")
        await pilot.pause()
        assert sc.scroll_y == 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.vp == vp_before  # the arrows scrolled the help, they did not pan the map under it


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_raw_legend_says_binance_liquidations_are_sampled(source_factory, size):
    app = make_app(source_factory())
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        app._refresh_status()
        assert "bin ≤1/s" in status2(app)
        await pilot.press("2")  # Synthetic draws no real liquidations: nothing to qualify
        await settle(pilot)
        app._refresh_status()
        assert "bin ≤1/s" not in status2(app)


async def test_legend_says_what_a_model_modes_colour_is_worth(source_factory):
    """Synthetic, Heatmap and Hybrid draw USD at risk × the chance of reach^α (core/grids/reach.py): the legend's
    number says so; Raw's is USD liquidated and says nothing more."""
    app = make_app(source_factory())
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        for key in ("2", "3", "4"):
            await pilot.press(key)
            await settle(pilot)
            app._refresh_status()
            assert "/row at risk×reach^0.7" in status2(app), key
        await pilot.press("1")
        await settle(pilot)
        app._refresh_status()
        assert "/row" in status2(app) and "reach" not in status2(app)


async def test_quit_at_once(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


async def test_keys_remapped_from_config(source_factory):
    app = make_app(source_factory(), keys={"mode_raw": "f1", "quit": "ctrl+q"})
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await pilot.pause()
        assert " Hybrid " in status(app)  # "1" no longer bound
        await pilot.press("f1")
        await settle(pilot, 2)
        assert " Raw " in status(app)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running  # q remapped away
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.pause()
        assert re.search(r"f1\s+Raw", screen_text(app))  # help shows the effective key


def test_every_binding_has_an_id():
    ids = keymap_ids()
    assert len(ids) == len(set(ids))
    for must in ("mode_raw", "mode_synthetic", "mode_heatmap", "mode_hybrid", "mode_cycle", "asset_prev",
                 "asset_next", "asset_search", "timeframe_next", "timeframe_prev", "zoom_in", "zoom_out",
                 "pan_up", "pan_down", "pan_left", "pan_right", "recentre", "venue_cycle", "reports_toggle",
                 "jump", "help", "quit"):
        assert must in ids


async def test_terminal_too_small_and_compact(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "terminal too small" in text and "50×12" in text
    app = make_app(source_factory())
    async with app.run_test(size=(90, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "SWEEPS" not in text  # compact: panel off by default
        assert app.query_one(PriceAxis).size.width == 9
        assert "━" in app.query_one(HeatmapView).text()
        assert "BIN" in text.splitlines()[0]  # short venue names
        # ... and the reports in one line above the footer, from the snapshot on screen
        reports = app._snap.reports
        summary = [ln for ln in text.splitlines() if "SWP " in ln]
        assert len(summary) == 1 and f"SWP {len(reports['sweeps'])}" in summary[0]
        assert f"WALLS {len(reports['walls'])}" in summary[0] and "r: panel" in summary[0]
        await pilot.press("r")
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "SWEEPS" in text and "SWP " not in text  # the panel replaces the line


async def test_resize_to_too_small_and_back(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.resize_terminal(50, 14)
        for _ in range(4):
            await pilot.pause()
        assert "terminal too small: 50×14" in screen_text(app)
        await pilot.resize_terminal(130, 30)
        await settle(pilot, 2)
        for _ in range(4):
            await pilot.pause()
        text = screen_text(app)
        assert "terminal too small" not in text
        assert " BTC " in text.splitlines()[0] and "━" in app.query_one(HeatmapView).text()


async def test_resize_redraws_without_losing_state(source_factory):
    app = make_app(source_factory())
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot, 2)
        await pilot.resize_terminal(120, 35)
        hm = app.query_one(HeatmapView)
        # The redraw comes on the next UI tick after layout: wait for it (bounded), not a fixed time.
        for _ in range(60):
            await pilot.pause(0.05)
            if hm.size.height == 31 and len(hm._strips) == hm.size.height:
                break
        assert len(hm._strips) == hm.size.height
        assert all(s.cell_length == hm.size.width for s in hm._strips)
        assert " Synthetic " in status(app)


async def test_tick_does_nothing_without_a_new_snapshot(source_factory):
    app = make_app(source_factory(), hz=50.0)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        draws, ticks = app.draws, app.ticks
        for _ in range(40):  # a loaded machine may starve the timer: wait for the ticks, not a fixed time
            await pilot.pause(0.05)
            if app.ticks > ticks + 3:
                break
        assert app.ticks > ticks + 3
        assert app.draws == draws


async def test_new_data_in_live_column_repaints_only_the_live_column():
    src = FixtureSource(("BTC",), now=NOW)
    app = make_app(src)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        hm = app.query_one(HeatmapView)
        live = app.query_one(LiveColumn)
        body_rows, live_updates = hm.rows_refreshed, live.updates
        # A real-looking trade in the current column, at a price away from the last one.
        from liqmap.core.events import TRADE_DTYPE

        t = np.zeros(1, TRADE_DTYPE)
        last = app.frame.snap.last_price
        t["ts"], t["price"], t["qty"], t["side"], t["venue"] = NOW - 1, last + 150, 0.01, 1, 0
        t["usd"] = t["price"] * t["qty"]
        src.market.add("trade", "BTC", t)
        src._version += 1
        for _ in range(200):  # the app's next tick draws it: wait for that tick, not a fixed time
            await pilot.pause(0.05)
            if live.updates > live_updates:
                break
        await pilot.pause()
        assert live.updates > live_updates
        assert hm.rows_refreshed == body_rows  # the body did not repaint a single row


async def test_empty_state_says_why():
    down = {v: {"state": "down", "last_error": "refused"} for v in ("binance", "bybit", "okx", "deribit", "hyperliquid")}
    src = FixtureSource(("BTC",), now=NOW, health=down, empty_assets=("XRP",))
    app = make_app(src, asset="XRP")
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(6):
            await pilot.pause()
        text = screen_text(app)
        assert "no data for XRP" in text and "down" in text
        assert "○binance" in text.splitlines()[0]  # venue health on the status bar
        await pilot.press("v")
        for _ in range(3):
            await pilot.pause()
        assert "binance down" in screen_text(app)


async def test_live_with_every_venue_down_says_no_data_with_the_error_in_full_and_a_hint():
    error = "Cannot connect to host fapi.binance.com:443 ssl:default [Name or service not known]"
    down = {v: {"state": "down", "last_error": error if v == "binance" else "refused"}
            for v in ("binance", "bybit", "okx", "deribit", "hyperliquid")}
    src = FixtureSource(("BTC", "ETH", "SOL"), now=NOW, health=down, label="LIVE")
    app = make_app(src)
    async with app.run_test(size=(200, 45)) as pilot:
        for _ in range(6):
            await pilot.pause()
        app._refresh_status()
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert "NO DATA" in lines[0] and "LIVE" not in lines[0]
        assert f"binance: {error}" in lines[1] and "liqmap --demo" in lines[1]


def test_no_mouse_reaches_textual(monkeypatch):
    import argparse

    from liqmap.commands import run
    from liqmap.ui import app as app_mod

    seen = {}
    monkeypatch.setattr(app_mod.LiqmapApp, "run", lambda self, **kw: seen.update(kw))
    monkeypatch.setenv("TEXTUAL_COLOR_SYSTEM", "auto")
    cfg = make_cfg(mouse=False)
    assert run.main(argparse.Namespace(demo=True, replay=None), cfg) == 0
    assert seen == {"mouse": False}


async def test_before_the_source_is_built_the_screen_says_what_it_will_be_and_venues_are_connecting():
    """A demo never reads LIVE, not even during the first second while its source is still being built, and
    venues nobody has tried to reach yet are 'connecting', not 'down'."""
    import threading

    release = threading.Event()

    def slow_factory():
        release.wait(10)
        raise RuntimeError("test over")

    cfg = make_cfg()
    app = build_app(None, cfg, source_factory=slow_factory, source_label="DEMO")
    try:
        async with app.run_test(size=(140, 30)) as pilot:
            for _ in range(5):
                await pilot.pause()
            app._refresh_status()
            await pilot.pause()
            text = screen_text(app)
            first = text.splitlines()[0]
            assert "DEMO (simulated market)" in first and "LIVE" not in first
            assert "◌binance" in first and "down" not in text
            assert "connecting" in text
    finally:
        release.set()


async def test_an_empty_snapshot_shows_why_not_a_blank_map_at_a_made_up_price():
    """Live with no network: the engine still builds an empty grid around the asset's reference price; the app
    says every venue is down and why (the first venue's error) instead of drawing it."""
    from liqmap.core.snapshot import MapGrid, Snapshot
    from liqmap.ui.source import SourceStatus

    down = {v: {"state": "down", "last_error": "DNS: ClientConnectorDNSError: Cannot connect to host "
                                                "fapi.binance.com:443"} for v in ("binance", "bybit")}

    class EmptySource:
        def set_view(self, view):
            self.view = view

        def latest(self, view):
            grid = MapGrid(asset=view.asset, mode=view.mode, timeframe=view.timeframe, step=25.0, row0=2600,
                           col0=0, period=60, values=np.zeros((view.rows, 240), np.float32),
                           trace=np.full(240, np.nan))
            return Snapshot(version=1, created=NOW, grid=grid, health=down, source="LIVE", last_price=None)

        def status(self):
            return SourceStatus("running", "LIVE", "", down)

    cfg = make_cfg()
    cfg["universe"]["venues"] = ["binance", "bybit"]
    app = build_app(EmptySource(), cfg)
    async with app.run_test(size=(140, 30)) as pilot:
        for _ in range(6):
            await pilot.pause()
        text = screen_text(app)
        assert app.query_one("#maprow").has_class("empty") and app.draws == 0
        assert "binance, bybit down — no data for BTC" in text
        assert "binance: DNS: ClientConnectorDNSError: Cannot connect to host" in text
        assert not re.search(r"\d─", text)  # no price axis around a price nobody traded


async def test_the_price_axis_marks_the_reports_next_hour_clusters(source_factory):
    """The NEXT 1H clusters the reports panel lists are marked on the map's price axis (issue 20: the cluster
    below that price drifts toward, found at a glance)."""
    src = source_factory()
    latest = src.latest

    def with_forecast(view):
        snap = latest(view)
        if snap is None:
            return None
        lp = snap.last_price
        cl = {"side": "long", "price_lo": lp * 0.996, "price_hi": lp * 0.998, "price": lp * 0.997,
              "distance_pct": -0.3, "at_risk_usd": 2.0e6, "expected_usd": 1.3e6, "reach": 0.8}
        reports = {**snap.reports, "forecast": {"price": lp, "sigma_hour": 0.01, "horizon_hours": 1.0,
                                                "tails": "t3", "clusters": [cl]}}
        return replace(snap, reports=reports)

    src.latest = with_forecast
    app = make_app(src)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, 2)
        ax = app.query_one(PriceAxis)
        lines = [ax.line_text(y) for y in range(ax.size.height)]
        assert any("≈$1.3M" in t for t in lines), lines
        assert sum(t.endswith("┃") for t in lines) >= 1


async def test_fit_zoom_decides_from_fresh_snapshots_only(source_factory):
    """The fitted zoom's new view may have a snapshot cached from before (a narrower path): deciding from it
    flipped the zoom back and forth (a RecursionError in the picture check). The zoom settles where the newest
    snapshot's path fits."""
    src = source_factory()
    latest = src.latest
    state = {"v": 10_000}

    def paths(view):
        snap = latest(view)
        if snap is None:
            return None
        g = snap.grid
        tr = np.full_like(g.trace, np.nan)
        tr[-60:] = snap.last_price
        if view.rows <= 45 * 8 // 5 * 1 + 16:  # the zoom-1 view: fresh, with a wide dip
            state["v"] += 1
            tr[-60] = snap.last_price - 30 * g.step
            return replace(snap, version=state["v"], grid=replace(g, trace=tr))
        return replace(snap, version=1, grid=replace(g, trace=tr))  # a zoom-2 view cached long ago, narrow path

    src.latest = paths
    app = make_app(src)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        for _ in range(10):
            await pilot.pause(0.1)
        assert app.vp.fit and app.vp.zoom == 2  # out for the dip, and not back in on the stale snapshot

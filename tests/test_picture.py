"""The picture a trader glances at: on the demo after its pre-roll, the colour scale shows peaks, not the bulk.

The issue on the map's levels (item 7): a test renders the demo and asserts the bounds of item 1 on the rendered
cells. The app runs on the real demo market (real venue parsers, real engine, real synthetic model) in Textual's
Pilot at 200×60; for each heat mode the drawn levels of the heat cells (the map body and the live column, as
``HeatmapView`` and ``LiveColumn`` painted them) are counted over the ramp exactly as
``shared/tools/screenshot.py`` counts the colours of a screenshot:

- ``ramp_top_share``: the share of heat cells within one level of the highest level that at least 0.5 % of them
  reach — at most 0.10 (only peaks glow);
- ``ramp_contrast``: that level minus the median heat cell's level — at least 4;
- the median heat cell in the lower half of the ramp;
- the rows of the NEXT 1H clusters drawn in the top quarter of the ramp in the newest columns.

Levels are the same for every shipped theme (each maps level k to its ramp's k-th colour; the test checks every
theme has the 10-colour ramp that makes that true). Waiting on the pre-roll uses a generous limit and asserts
nothing about time.
"""

from __future__ import annotations

import asyncio
import io
import copy
import time
import types

import numpy as np

from liqmap.commands.run import build_source
from liqmap.config import DEFAULTS
from liqmap.ui.app import LiqmapApp
from liqmap.ui.heatmap import HeatmapView
from liqmap.ui.live_column import LiveColumn
from liqmap.ui.palettes import level_of
from liqmap.ui.themes import discover, resolve

N_LEVELS = 10
MODES = {"synthetic": "2", "heatmap": "3", "hybrid": "4"}
ASSETS = ("BTC", "ETH", "PENDLE")  # the two largest and a small one (the demo's universe order)


def ramp_stats(levels: np.ndarray, n: int = N_LEVELS) -> dict:
    """``screenshot.py``'s ``ramp_stats`` over drawn levels (0 = empty, 1..n = ramp position)."""
    heat = levels[levels > 0].astype(int)
    hist = np.bincount(heat - 1, minlength=n)[:n] / max(len(heat), 1)
    top = max(i for i in range(n) if hist[i] >= 0.005)
    median = int(np.searchsorted(np.cumsum(hist), 0.5))
    return {"hist": hist, "top_share": float(hist[max(0, top - 1):].sum()), "contrast": top - median,
            "median_level": median + 1, "cells": len(heat)}


def _cfg() -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = list(ASSETS)
    cfg["universe"]["focus_extra"] = []
    cfg["demo"].update(preroll_minutes=150.0, preroll_fill_window=False)
    cfg["app"].update(asset="BTC", mode="hybrid", timeframe="1m")
    return cfg


async def _until(pilot, cond, limit: float = 600.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.2)
    return cond()


def _drawn_levels(app: LiqmapApp) -> tuple[np.ndarray, np.ndarray]:
    """(body levels (rows, cols), live column levels (rows,)) as drawn."""
    hm = app.query_one(HeatmapView)
    frame = app.frame
    live = level_of(frame.live, app._scale.value, app.palette.n, floor=app._scale.floor)
    return hm.levels.astype(int), live.astype(int)


def test_every_theme_maps_ten_levels_onto_its_ramp():
    for name, spec in discover(environ={}).items():
        assert len(spec.ramp) == N_LEVELS, name
        assert len(spec.ramp16) == N_LEVELS, name


def test_demo_heat_modes_show_peaks_not_the_bulk():
    cfg = _cfg()
    spec, themes = resolve("dark", environ={})
    src = build_source("demo", cfg, types.SimpleNamespace(seed=1, speed=None))
    runner = src.runner
    app = LiqmapApp(cfg, source=src, theme_spec=spec, themes=themes, color_system="truecolor", source_label="DEMO")
    results = {}

    async def run() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            for i, asset in enumerate(ASSETS):
                if i:
                    await pilot.press("right_square_bracket")  # the next asset
                assert await _until(pilot, lambda: runner.preroll is not None and asset in runner.preroll.done)
                for mode, key in MODES.items():
                    await pilot.press(key)
                    t_key = runner.clock()
                    # a snapshot of this asset and mode built after the key, drawn on the screen
                    ok = await _until(pilot, lambda: app._snap is not None and app._snap.grid.mode == mode
                                      and app._snap.grid.asset == asset and app._snap.created >= t_key
                                      and app.frame is not None and app.frame.snap is app._snap)
                    assert ok, (asset, mode)
                    await pilot.pause(0.5)
                    body, live = _drawn_levels(app)
                    snap = app._snap
                    clusters = (snap.reports or {}).get("forecast", {}).get("clusters", [])
                    results[(asset, mode)] = (body, live, clusters, app.frame)

    asyncio.run(run())
    problems = []  # every mode is checked before failing: the message shows the whole picture
    for mode, (body, live, clusters, frame) in results.items():
        cells = np.concatenate([body.reshape(-1), live])
        st = ramp_stats(cells)
        print(mode, {k: (np.round(v, 3).tolist() if k == "hist" else v) for k, v in st.items()})
        painted_cols = float((body > 0).any(axis=0).mean())
        if not painted_cols >= 0.9:  # the pre-roll covers the window: heat in (nearly) every column
            problems.append((mode, "map not full", painted_cols))
        if not st["top_share"] <= 0.10:
            problems.append((mode, "top_share", st["top_share"]))
        if not st["contrast"] >= 4:
            problems.append((mode, "contrast", st["contrast"]))
        if not st["median_level"] <= N_LEVELS // 2:
            problems.append((mode, "median level", st["median_level"]))
        if not clusters:
            problems.append((mode, "no NEXT 1H clusters"))
        for c in clusters:
            rows = [y for y in range(frame.height)
                    if (lambda r: r[1] > c["price_lo"] and r[0] < c["price_hi"])(frame.row_range(y))]
            if not rows:
                continue  # off screen
            newest = np.concatenate([body[rows, -3:].reshape(-1), live[rows]])
            if not newest.max() >= 0.75 * N_LEVELS:
                problems.append((mode, "cluster not bright", c["price_lo"], c["price_hi"], int(newest.max())))
    assert not problems, problems


def test_every_mark_the_map_draws_has_a_help_legend_entry():
    from liqmap.ui import heatmap, live_column
    from liqmap.ui.help import MAP_LEGEND

    marks = " ".join(m for m, _ in MAP_LEGEND)
    drawn = [heatmap.TRACE, heatmap.TRACE_JOIN, heatmap.WALL, heatmap.CURSOR, heatmap.HILITE, live_column.WALL,
             *heatmap.REAL_MARKS]
    assert all(g in marks for g in drawn), [g for g in drawn if g not in marks]


def test_help_screen_carries_the_map_legend():
    from liqmap.ui.heatmap import WALL
    from liqmap.ui.help import HelpScreen

    class One(LiqmapApp.__mro__[1]):  # a bare Textual App
        def on_mount(self) -> None:
            self.push_screen(HelpScreen([("1", "Raw", "mode_raw")], {"half_life_hours": 48.0}))

    async def run() -> bool:
        app = One()
        async with app.run_test(size=(140, 50)) as pilot:
            await pilot.pause()
            return bool(app.screen.query("#help-legend"))

    assert asyncio.run(run())
    from rich.console import Console

    from liqmap.ui.help import legend_table

    con = Console(width=140, record=True, file=io.StringIO())
    con.print(legend_table())
    text = con.export_text()
    assert "Map" in text and WALL in text and "real liquidations" in text

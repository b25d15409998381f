"""The picture after a crash (docs/map.md §2, "The resting layer's own ramp"): the demo driven down 40 % in a two-hour
pre-roll, rendered in Pilot at 120×40 in Synthetic, Synthetic Heatmap and Hybrid. The resting layer (positions held
for days, tens of millions a row near price after such a move) is drawn on its own ramp with its gradation, the
flow's clusters keep theirs, and the status bar names the layer's scale. Summed onto one ramp (session 17) the same
view was one block of the top two colours at 80×24."""

from __future__ import annotations

import asyncio
import copy
import types

import numpy as np

from benchmarks.picture_check import START, _drawn_levels, _until
from liqmap.commands.run import build_source
from liqmap.config import DEFAULTS
from liqmap.ui.app import LiqmapApp
from liqmap.ui.status import StatusBar
from liqmap.ui.themes import resolve

MODES = {"synthetic": "2", "heatmap": "3", "hybrid": "4"}


def test_after_a_crash_the_resting_layer_has_its_own_hue_and_both_keep_their_gradation():
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = ["BTC"]
    cfg["universe"]["focus_extra"] = []
    cfg["demo"].update(preroll_minutes=120.0, preroll_fill_window=False, drift_pct_hour=-15.0)
    cfg["app"].update(asset="BTC", mode="hybrid", timeframe="1m")
    spec, themes = resolve("dark", environ={})
    # the live stream all but stopped; a fixed start, so the same seed lands on the same column boundaries each run
    src = build_source("demo", cfg, types.SimpleNamespace(seed=1, speed=1e-6, start=START))
    app = LiqmapApp(cfg, source=src, theme_spec=spec, themes=themes, color_system="truecolor", source_label="DEMO")
    seen = {}

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            assert await _until(pilot, lambda: (pr := src.runner.source.preroll) is not None and "BTC" in pr.done)
            for mode, key in MODES.items():
                await pilot.press(key)
                t_key = src.runner.clock()
                assert await _until(pilot, lambda: app._snap is not None and app._snap.grid.mode == mode
                                    and app._snap.created >= t_key and app.frame is not None
                                    and app.frame.snap is app._snap), mode
                await pilot.pause(0.5)
                body, _ = _drawn_levels(app)
                bar = app.query_one(StatusBar)
                text = " ".join(str(x) for x in (getattr(bar, "_l1", ""), getattr(bar, "_l2", ""), bar.render()))
                seen[mode] = (body, app._snap.grid, app._held_shown, text)

    asyncio.run(run())
    n, hn = app.palette.n, app.palette.held_n
    for mode, (body, grid, held_scale, text) in seen.items():
        tr = grid.trace[np.isfinite(grid.trace)]
        assert tr[-1] < 0.75 * tr[0], (mode, "the pre-roll did not crash")
        assert grid.resting is not None and held_scale is not None, mode
        held = body > n
        flow = (body > 0) & ~held
        assert held.mean() > 0.05, (mode, "the layer is on screen")
        # the layer has its gradation, not one block of its top colour
        assert len(set((body[held] - n).tolist())) >= 4, mode
        assert (body[held] == n + hn).mean() < 0.5, mode
        # the flow keeps its own: its peaks are not sunk under the layer's dollars. Its strongest cell is in the
        # top two levels (``palettes.Scale`` holds the top up to two steps above the peak, so the top level itself
        # depends on the frames drawn before; on one ramp with the layer it was level 2 at most)
        assert len(set(body[flow].tolist())) >= 5 and body[flow].max() >= n - 2, mode
        assert "held≥days" in text, (mode, text)

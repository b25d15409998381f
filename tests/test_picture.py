"""The picture a trader glances at: what every shipped theme and the help screen must carry for the map.

The colour-scale bounds on the rendered demo (ramp_top_share, contrast, NEXT 1H clusters) are held by
``tests/test_picture_bounds.py`` (rendering in ``benchmarks/picture_check.py``).
"""

from __future__ import annotations

import asyncio
import io

from liqmap.ui.app import LiqmapApp
from liqmap.ui.themes import discover

N_LEVELS = 10


def test_every_theme_maps_ten_levels_onto_its_ramp():
    for name, spec in discover(environ={}).items():
        assert len(spec.ramp) == N_LEVELS, name
        assert len(spec.ramp16) == N_LEVELS, name


def test_every_mark_the_map_draws_has_a_help_legend_entry():
    from liqmap.ui import axes, heatmap, live_column
    from liqmap.ui.help import MAP_LEGEND

    marks = " ".join(m for m, _ in MAP_LEGEND)
    drawn = [heatmap.TRACE, heatmap.TRACE_JOIN, *heatmap.TRACE_UP, *heatmap.TRACE_DOWN, heatmap.WALL, heatmap.CURSOR, heatmap.HILITE, live_column.WALL,
             *heatmap.REAL_MARKS, axes.MAGNET_BAR]
    assert all(g in marks for g in drawn), [g for g in drawn if g not in marks]


def test_help_screen_carries_the_map_legend():
    from liqmap.ui.heatmap import WALL
    from liqmap.ui.help import HelpScreen

    from textual.app import App

    class One(App):  # a bare Textual App
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

"""The screener (issue 14 item 4): one row per asset from the engine, sortable, fuzzy-filtered, Enter opens the
asset — through Pilot on the real engine over the demo market; the rows' pieces on constructed reports."""

from __future__ import annotations

import time
from types import SimpleNamespace

from demo_app import demo_app, demo_cfg
from liqmap.core.screener import fuzzy, row, sort_rows


def test_rows_say_what_the_map_knows_and_an_empty_asset_still_has_a_row():
    wall = SimpleNamespace(status="active", bucket=2560, usd=9e6)  # 64,000 at step 25
    fc = SimpleNamespace(clusters=(SimpleNamespace(expected_usd=3e5), SimpleNamespace(expected_usd=2e5)))
    sweep = SimpleNamespace(last_ts=1000.0 - 240, side="sell", total_usd=3.2e6)
    rec = SimpleNamespace(walls=(wall,), forecast=fc, asymmetry=SimpleNamespace(bid_share=0.31), sweeps=(sweep,),
                          convergence=(SimpleNamespace(price=64_100.0),), ts=999.0)
    r = row("BTC", 1000.0, 65_000.0, 64_000.0, rec, None, 25.0)
    assert r.below.price == 64_000.0 and r.below.what == "wall" and round(r.below.distance_pct, 2) == -1.54
    assert r.above is None and r.next_hour_usd == 5e5 and r.bid_share == 0.31
    assert r.sweep == "sell $3.2M 4m ago" and r.convergence == 64_100.0
    assert round(r.change_1h_pct, 3) == 1.562
    empty = row("PEPE", 1000.0, None, None, None, None, None)
    assert empty.state == "no data yet" and empty.price is None
    assert [x.asset for x in sort_rows([empty, r], "next 1h")] == ["BTC", "PEPE"]  # no data sorts last
    assert fuzzy("bt", "BTC") and fuzzy("pp", "PEPE") and not fuzzy("eth", "BTC")


async def test_screener_through_pilot_on_the_real_engine():
    cfg = demo_cfg(assets=("BTC", "ETH", "SOL", "XRP"), preroll_minutes=3.0)
    app, src = demo_app(cfg)
    async with app.run_test(size=(160, 45)) as pilot:
        end = time.monotonic() + 120
        while time.monotonic() < end:  # every asset with a price (the pre-roll of the others runs behind)
            if sum(1 for r in src.engine.screener() if r.price is not None) == 4:
                break
            await pilot.pause(0.2)
        await pilot.press("s")
        await pilot.pause(0.5)
        scr = app.screen
        for _ in range(30):
            if len(scr.shown) == 4:
                break
            await pilot.pause(0.2)
        assert [r.asset for r in scr.shown] and sorted(r.asset for r in scr.shown) == ["BTC", "ETH", "SOL", "XRP"]
        await pilot.press("down")  # from the filter into the rows
        for _ in range(len(scr.shown and __import__("liqmap.core.screener", fromlist=["SORT_KEYS"]).SORT_KEYS)):
            if scr.sort == "asset":
                break
            await pilot.press("O")  # the previous sort column, back from "next 1h" to "asset"
        assert scr.sort == "asset", (scr.sort, app.focused)
        await pilot.pause(0.2)
        assert [r.asset for r in scr.shown] == ["XRP", "SOL", "ETH", "BTC"]  # descending
        await pilot.press("r")
        await pilot.pause(0.2)
        assert [r.asset for r in scr.shown] == ["BTC", "ETH", "SOL", "XRP"]
        scr.query_one("Input").focus()
        await pilot.press("s", "l")  # fuzzy: SoL
        await pilot.pause(0.2)
        assert [r.asset for r in scr.shown] == ["SOL"]
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.asset == "SOL" and app.screen is not scr

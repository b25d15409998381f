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
        # the map under the screener is not drawn while new snapshots keep coming (the screen covers it)
        drawn, version = app.draws, src.latest(app.current_view()).version
        for _ in range(40):
            await pilot.pause(0.1)
            if src.latest(app.current_view()).version > version + 1:
                break
        assert src.latest(app.current_view()).version > version + 1 and app.draws == drawn
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
        for _ in range(50):  # the map is drawn again once the screener is closed
            if app.draws > drawn:
                break
            await pilot.pause(0.1)
        assert app.draws > drawn


def test_hit_rate_column_and_rows_reused_until_an_asset_changes():
    """The forecast's hit rate (issue 17 item 1) is a column, sortable; a row's parts are reused while the
    asset's records are the same object and recomputed from new ones (the sweep's age still moves)."""
    from liqmap.ui.screener import COLUMNS, cells

    wall = SimpleNamespace(status="active", bucket=2560, usd=9e6)
    sweep = SimpleNamespace(last_ts=900.0, side="buy", total_usd=1e6)
    fc = SimpleNamespace(clusters=(), hit={"ratio": 1.63, "n": 42, "lo": 1.2, "hi": 2.0, "pending": 3})
    rec = SimpleNamespace(walls=(wall,), forecast=fc, asymmetry=None, sweeps=(sweep,), convergence=(), ts=999.0)
    cache: dict = {}
    a = row("BTC", 1000.0, 65_000.0, None, rec, None, 25.0, cache=cache)
    assert a.hit == 1.63 and a.hit_n == 42 and "hit" in COLUMNS
    assert cells(a)[COLUMNS.index("hit")].plain == "1.6× n=42"
    b = row("BTC", 1060.0, 65_000.0, None, rec, None, 25.0, cache=cache)
    assert cache["BTC"][1][0] is b.below is a.below  # reused: same records object
    assert a.sweep == "buy $1.0M 1m ago" and b.sweep == "buy $1.0M 2m ago"  # the age moves (100 s, 160 s)
    moved = SimpleNamespace(**{**vars(rec), "walls": (SimpleNamespace(status="active", bucket=2540, usd=9e6),)})
    c = row("BTC", 1060.0, 65_000.0, None, moved, None, 25.0, cache=cache)
    assert c.below.price == 63_500.0 and a.below.price == 64_000.0  # new records: recomputed
    none = SimpleNamespace(**{**vars(rec), "forecast": SimpleNamespace(clusters=(), hit={"ratio": None, "n": 0})})
    d = row("ETH", 1000.0, 3_000.0, None, none, None, 1.5)
    assert d.hit is None and cells(d)[COLUMNS.index("hit")] == "-"
    assert [r.asset for r in sort_rows([d, a], "hit")] == ["BTC", "ETH"]


def test_screen_headless_json_on_a_real_recording(tmp_path, capsys):
    """`liqmap screen --headless --json --replay FILE`: one JSON line, a row for every asset (the recorded one
    with its price and book, the other saying it has no data)."""
    import gzip
    import json

    from common import real
    from liqmap.cli import main as cli_main

    lines = gzip.decompress(real("hftbacktest_usdm_btcusdt_20240808.gz").read_bytes()).splitlines(keepends=True)
    p = tmp_path / "usdm_btcusdt_slice.gz"
    p.write_bytes(gzip.compress(b"".join(lines[:12000])))
    rc = cli_main(["screen", "--headless", "--json", "--replay", str(p), "--assets", "BTC,ETH",
                   "--data-dir", str(tmp_path / "d")])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 1
    body = json.loads(out[0])
    assert body["source"] == "REPLAY" and body["ts"] > 1.7e9
    rows = {r["asset"]: r for r in body["rows"]}
    assert set(rows) == {"BTC", "ETH"}
    btc = rows["BTC"]
    assert btc["state"] == "ok" and 50_000 < btc["price"] < 70_000 and btc["bid_share"] is not None
    assert set(btc) >= {"below", "above", "next_hour_usd", "sweep", "convergence", "hit", "hit_n", "change_1h_pct"}
    assert rows["ETH"]["state"] == "no data yet" and rows["ETH"]["price"] is None


async def test_screen_headless_streams_rows_from_the_demo():
    """`liqmap screen --headless --json --demo --interval S --count N`: a JSON line every S seconds."""
    import io
    import json
    from argparse import Namespace

    from liqmap.commands.screen import run

    cfg = demo_cfg()
    cfg["universe"].update(assets=["BTC", "ETH"], focus_extra=[])
    cfg["demo"].update(collect_preroll_minutes=0.5)
    out = io.StringIO()
    args = Namespace(json=True, interval=0.5, after=10.0, duration=None, count=2, demo=True, seed=1, speed=10.0)
    assert await run(cfg, args, out=out) == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 2 and all(x["source"] == "DEMO" for x in lines)
    assert lines[-1]["ts"] > lines[0]["ts"]
    assert [r["asset"] for r in lines[-1]["rows"]] == ["BTC", "ETH"]


async def test_a_refresh_recomputes_the_changed_rows_and_only_those(monkeypatch):
    """Issue 14's screener budget rests on this: an asset not ingested since the last refresh keeps its row (the
    same object, its parts not recomputed, its cells list reused); an ingested asset's row is built afresh from
    its new records and reads its new numbers. On the real engine over the demo market."""
    import asyncio
    import copy

    from liqmap.config import DEFAULTS
    from liqmap.core import screener as core_screener
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime
    from liqmap.ui.screener import cells

    cfg = copy.deepcopy(DEFAULTS)
    cfg["alerts"] = []
    cfg["universe"].update(assets=["BTC", "ETH", "SOL"], focus_extra=[])
    rt = Runtime(cfg, DemoFeed(cfg, assets=["BTC", "ETH", "SOL"], seed=1))
    eng = rt.engine
    await pump(rt.source.demo, rt.ingest, seconds=30.0)
    for a in ("BTC", "ETH", "SOL"):
        eng.ingest(a, rt.clock())
    computed: list[int] = []
    real_parts = core_screener._parts

    def counting(records, *a):
        computed.append(id(records))
        return real_parts(records, *a)

    monkeypatch.setattr(core_screener, "_parts", counting)
    now = rt.clock()
    first = {r.asset: r for r in eng.screener(now)}
    assert len(computed) == 3 and all(r.price is not None for r in first.values())
    first_cells = {a: cells(r) for a, r in first.items()}

    again = {r.asset: r for r in eng.screener(now)}  # nothing ingested: nothing recomputed
    assert len(computed) == 3 and all(again[a] is first[a] for a in first)
    assert all(cells(again[a]) is first_cells[a] for a in first)

    await pump(rt.source.demo, rt.ingest, seconds=5.0)
    later = rt.clock()
    eng.ingest("ETH", later)
    await asyncio.sleep(0)
    rows = {r.asset: r for r in eng.screener(later)}
    assert computed[3:] == [id(eng.state("ETH").records)]  # ETH's new records, and only those
    eth = rows["ETH"]
    assert eth is not first["ETH"] and eth.updated == later > first["ETH"].updated
    assert eth.price == eng.state("ETH").last_price and cells(eth) is not first_cells["ETH"]
    for a in ("BTC", "SOL"):  # not ingested: the very same rows (their sweep ages read the same 5 s on)
        if rows[a].sweep == first[a].sweep:
            assert rows[a] is first[a] and cells(rows[a]) is first_cells[a]
        else:  # an age crossed a 10 s step: a new row from the cached parts, the magnets the same objects
            assert rows[a].below is first[a].below and rows[a].updated == first[a].updated


async def test_the_table_repaints_only_the_lines_that_changed():
    """The screener's table through Pilot: a refresh where one row changed rebuilds that one line and the screen
    shows its new value; a refresh with the same rows rebuilds none; a row that moves in the sort order is
    drawn at its new place. (Counts of lines built, not timings.)"""
    from textual.app import App

    from conftest import screen_lines
    from liqmap.core.screener import ScreenRow
    from liqmap.ui.screener import ScreenerScreen
    from liqmap.ui.screener_table import ScreenerTable

    def mk(asset, price, next_usd):
        return ScreenRow(asset, price, 0.5, None, None, next_usd, 0.6, "", None, None, "ok", 1000.0)

    data = [mk("BTC", 65_000.0, 3e6), mk("ETH", 3_000.0, 2e6), mk("SOL", 150.0, 1e6), mk("XRP", 0.6, 5e5)]

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ScreenerScreen(lambda: list(data)))

    app = Host()
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause()
        scr = app.screen
        table = scr.query_one(ScreenerTable)
        scr._set_rows(list(data))
        await pilot.pause()
        assert [r.asset for r in scr.shown] == ["BTC", "ETH", "SOL", "XRP"]  # next 1h, descending
        built = table.lines_built
        scr._set_rows(list(data))  # the same row objects
        await pilot.pause()
        assert table.lines_built == built
        data[2] = mk("SOL", 151.5, 1e6)  # SOL's price moved, its place did not
        scr._set_rows(list(data))
        await pilot.pause()
        assert table.lines_built == built + 1
        assert "151.50" in table.row_text("SOL") and "151.50" in "\n".join(screen_lines(app))
        assert "65,000" in table.row_text("BTC")
        built = table.lines_built
        data[3] = mk("XRP", 0.6, 9e6)  # XRP's next hour jumps: it sorts first, the others move down a line
        scr._set_rows(list(data))
        await pilot.pause()
        assert [r.asset for r in scr.shown] == ["XRP", "BTC", "ETH", "SOL"]
        assert table.lines_built - built == 4  # every line now holds another row (or another stripe)
        lines = screen_lines(app)
        at = {a: next(i for i, ln in enumerate(lines) if f" {a} " in ln) for a in ("XRP", "BTC", "SOL")}
        assert at["XRP"] < at["BTC"] < at["SOL"] and "$9.0M" in lines[at["XRP"]]

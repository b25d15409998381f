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

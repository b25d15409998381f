"""Hyperliquid's live paths against a TLS server on 127.0.0.1 speaking its documented shapes
(docs/hyperliquid.md): the collector's feed subscribes one message per (channel, coin), keeps the
connection alive with ``{"method":"ping"}``, and turns the pushes into market rows and books; ``liqmap
doctor`` lists its channels and its ``POST /info`` (``meta``) row, at configurable endpoints. Only
127.0.0.1 is ever contacted."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import time
from pathlib import Path

import orjson

import liqmap.feeds.venues.hyperliquid as hl
from liqmap.commands.doctor import _info_probe, diagnose
from liqmap.config import DEFAULTS
from liqmap.core.events import VENUE_ID
from liqmap.core.market import Market
from liqmap.feeds.collector import Collector
from tls import loopback
from tls.loopback import server, until  # noqa: F401  (server: the shared loopback TLS fixture)

DATA = Path(__file__).parent / "data" / "hyperliquid"
HL = VENUE_ID["hyperliquid"]
META = (DATA / "info_meta.docs.json").read_text()


def pushes(now_ms: int) -> list[str]:
    """One of each data push for BTC and ETH, in the documented shapes, stamped ``now_ms``."""
    users = ["0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2", "0x5e9ee1089755c3435139848e47e6635505d5a13a"]
    trades = {"channel": "trades", "data": [
        {"coin": "BTC", "side": "B", "px": "69998.0", "sz": "0.5", "hash": "0x01", "time": now_ms, "tid": 1,
         "users": users},
        {"coin": "ETH", "side": "A", "px": "2500.5", "sz": "2.0", "hash": "0x02", "time": now_ms, "tid": 2,
         "users": users[::-1]}]}
    book = {"channel": "l2Book", "data": {"coin": "BTC", "time": now_ms, "levels": [
        [{"px": "69990.0", "sz": "1.5", "n": 3}, {"px": "69980.0", "sz": "2.0", "n": 1}],
        [{"px": "70000.0", "sz": "0.7", "n": 2}]]}}
    ctx = {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {
        "funding": "0.0000125", "openInterest": "30000.5", "prevDayPx": "69000.0", "dayNtlVlm": "1.0e9",
        "premium": "0.0001", "oraclePx": "69995.0", "markPx": "69996.0", "midPx": "69995.5",
        "impactPxs": ["69990.0", "70000.0"], "dayBaseVlm": "15000.0"}}}
    return [json.dumps(x) for x in (trades, book, ctx)]


def session(now_ms: int) -> list[tuple]:
    return [("send", "Websocket connection established."), ("sleep", 0.4),
            ("send", '{"channel":"subscriptionResponse","data":{"method":"subscribe",'
                     '"subscription":{"type":"trades","coin":"BTC"}}}'),
            *[("send", p) for p in pushes(now_ms)], ("hold",)]


def config(**feeds) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["asset"] = "BTC"
    cfg["universe"]["focus_extra"] = []
    cfg["feeds"].update({"close_timeout_seconds": 0.3, "retries": 1, "restart_seconds": 0.3, **feeds})
    return cfg


async def test_feed_subscribes_pings_and_delivers_rows_over_tls(server, monkeypatch):
    monkeypatch.setattr(hl, "PING_SECONDS", 0.2)
    wallets = []
    monkeypatch.setattr(hl, "on_users", lambda coin, users, usd, ts: wallets.append((coin, users)))
    server.script("/ws", session(int(time.time() * 1000)))
    market = Market(["BTC", "ETH"])
    books = []
    eps = loopback.endpoints(server.base, "hyperliquid")
    assert eps["hyperliquid"]["ws"] == f"wss://{server.base}/ws"
    col = Collector(config(), market, ["BTC", "ETH"], ["hyperliquid"], endpoints=eps,
                    on_book=lambda a, v, b: books.append((a, v, b.levels(1)[0].tolist())),
                    plan=[("hyperliquid", "flow", ("trade", "oi", "book"), None)])
    await col.start()
    try:
        await until(lambda: len(market.gather("oi", "BTC")) and books and len(market.gather("trade", "ETH")),
                    10, "rows from the loopback pushes")
        await until(lambda: '{"method":"ping"}' in server.received["/ws"], 10, "a ping")
    finally:
        await col.stop()
    assert server.connections["/ws"] == 1  # trades, contexts and books share one connection
    subs = [orjson.loads(m) for m in server.received["/ws"] if '"subscribe"' in m]
    got = {(m["subscription"]["type"], m["subscription"]["coin"]) for m in subs}
    assert got == {(ch, c) for ch in ("trades", "activeAssetCtx", "l2Book") for c in ("BTC", "ETH")}
    assert len(subs) == 6 and all(m["method"] == "subscribe" for m in subs)
    btc = market.gather("trade", "BTC")
    assert list(btc["venue"]) == [HL] and btc["price"][0] == 69998.0 and btc["usd"][0] == 69998.0 * 0.5
    oi = market.gather("oi", "BTC")
    assert oi["oi"][-1] == 30000.5 and oi["oi_usd"][-1] == 30000.5 * 69996.0
    assert ("BTC", "hyperliquid", [69990.0, 69980.0]) in books
    assert wallets == [("BTC", ("0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2",
                                "0x5e9ee1089755c3435139848e47e6635505d5a13a")),
                       ("ETH", ("0x5e9ee1089755c3435139848e47e6635505d5a13a",
                                "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"))]
    h = col.health()["hyperliquid"]
    assert h["parse_errors"] == 0, h


async def test_doctor_lists_channels_and_the_info_endpoint(server, capsys):
    now_ms = int(time.time() * 1000)
    for _ in range(4):  # one feed per channel: trades, open interest, book, light depth
        server.script("/ws", session(now_ms))
    server.posts["/info"] = lambda body: (200, META)
    cfg = config()
    cfg["doctor"]["connect_timeout_seconds"] = 2.0
    cfg["universe"]["venues"] = ["hyperliquid"]
    cfg["feeds"]["endpoints"].update(loopback.config_endpoints(server.base, "hyperliquid"))
    out, err = io.StringIO(), io.StringIO()
    rc = await asyncio.wait_for(diagnose(cfg, 2.0, out=out, err=err, asset="BTC"), 60)  # a hang guard
    text = out.getvalue()
    with capsys.disabled():
        print("\n" + text)
    rows = {tuple(line.split()[:2]): line for line in text.splitlines()[2:-1]}
    assert set(rows) == {("hyperliquid", k) for k in ("trades", "open", "book", "light", "info")}
    assert rc == 0 and text.splitlines()[-1].startswith("5/5 ")
    assert all(" yes " in line for line in rows.values())
    assert f"wss://{server.base}/ws" in rows[("hyperliquid", "trades")]
    assert "light depth l2Book" in rows[("hyperliquid", "light")]
    info = rows[("hyperliquid", "info")]
    assert f"https://{server.base}/info" in info and "ok: 4 coins, BTC max 50x, 2 margin tables" in info
    assert [json.loads(b) for b in server.posted["/info"]] == [{"type": "meta"}]


async def test_info_probe_says_why_it_failed(server):
    cfg = config()
    cfg["feeds"]["endpoints"].update(loopback.config_endpoints(server.base, "hyperliquid"))
    server.posts["/info"] = lambda body: (429, '{"error":"rate limited"}')
    url, ok, what = await _info_probe(cfg, "hyperliquid", "BTC", 2.0)
    assert not ok and what.startswith("HTTP: 429") and url == f"https://{server.base}/info"
    server.posts["/info"] = lambda body: (200, json.dumps({"universe": [{"name": "ETH", "maxLeverage": 25}]}))
    assert (await _info_probe(cfg, "hyperliquid", "BTC", 2.0))[2] == "error: BTC is not in the universe (1 coins)"
    server.posts["/info"] = lambda body: (200, "[]")
    assert (await _info_probe(cfg, "hyperliquid", "BTC", 2.0))[2] == "error: the answer has no universe"
    cfg["feeds"]["endpoints"]["hyperliquid_info"] = f"https://127.0.0.1:{loopback.free_port()}/info"
    assert (await _info_probe(cfg, "hyperliquid", "BTC", 2.0))[2].startswith("refused")

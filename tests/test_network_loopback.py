"""End to end over the real network path: cryptofeed's websocket and REST clients, liqmap's venue feeds
and the Collector, against an aiohttp TLS server on 127.0.0.1 serving recorded real frames.

A clean close, an abort and a stall (watchdog set low) each lead to a reconnect, and the frames served
after each arrive in the Market; a garbage frame is counted and the frames after it on the same socket
still arrive. The raw tap records every websocket and REST frame, and the recording replays through the
same parsers into the same events. No address but 127.0.0.1 is ever used.
"""

from __future__ import annotations

import asyncio
import io
import copy
import gzip

import numpy as np
import orjson

from liqmap.config import DEFAULTS
from liqmap.core.market import Market
from liqmap.feeds.collector import Collector
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.recording import RecordingWriter, open_recording
from tls import loopback
from tls.loopback import server, until  # noqa: F401  (server: the shared loopback TLS fixture)
from common import real





def binance_frames():
    """Real Binance USD-M frames: @trade, depth diffs and the REST depth snapshot from the hftbacktest
    recording (2024-08-08) and the forceOrder frame from tardis-node's fixtures."""
    trades, depth, snapshot = [], [], None
    with gzip.open(real("hftbacktest_usdm_btcusdt_20240808.gz"), "rt") as fh:
        for i, line in enumerate(fh):
            raw = line.split(" ", 1)[1].rstrip("\n")
            if raw.startswith('{"stream":"btcusdt@trade"'):
                trades.append(raw)
            elif raw.startswith('{"stream":"btcusdt@depth'):
                depth.append(raw)
            elif '"lastUpdateId"' in raw[:30]:
                snapshot = raw
            if len(trades) >= 60 and len(depth) >= 120 and snapshot:
                break
    liq = next(line for line in real("binance_futures_messages.jsonl").read_text().splitlines()
               if "forceOrder" in line)
    return trades, depth, snapshot, liq


def trade_ids(market: Market) -> set[float]:
    rows = market.gather("trade", "BTC")
    return {round(float(p), 2) for p in rows["price"]} if len(rows) else set()


def test_config(watchdog: float, book_watchdog: float | None = None) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["asset"] = "BTC"
    cfg["universe"]["focus_extra"] = []
    f = cfg["feeds"]
    f["watchdog_seconds"] = watchdog
    f["watchdog_by_kind"] = {"trade": watchdog, "book": book_watchdog or watchdog, "oi": watchdog, "liq": watchdog}
    f["close_timeout_seconds"] = 0.3
    f["retries"] = 3
    f["restart_seconds"] = 0.5
    f["oi_poll_seconds"] = 0.5
    f["stale_seconds"] = 5.0
    return cfg


test_config.__test__ = False  # a helper, not a test


async def test_close_abort_stall_each_reconnect_and_data_after_arrives(server, tmp_path):
    trades, depth, snapshot, liq = binance_frames()
    t = [trades[i * 10:(i + 1) * 10] for i in range(6)]
    send = lambda frames: [("send", f) for f in frames]  # noqa: E731
    garbage = '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":'  # cut-off JSON
    # /market: liquidation + trades, then four sessions ending in close, abort, stall, hold.
    server.script(
        "/market/stream",
        # the forceOrder frame is from 2020 (BTC ~4,706) and the trades from 2024: sent in one flush batch the
        # plausibility band of the batch's trades refuses it (counted liq:price_off_band), so it gets a batch of its
        # own (the collector flushes every feeds.batch_ms = 50 ms)
        [("send", liq), ("sleep", 0.3), *send(t[0]), ("sleep", 0.05), ("close",)],
        [*send(t[1]), ("sleep", 0.05), ("abort",)],
        [*send(t[2]), ("send", garbage), ("send", "not json at all"), *send(t[3]), ("stall",)],
        [*send(t[4]), ("hold",)],
    )
    # /public: depth diffs that need the REST snapshot, then held open.
    server.script("/public/stream", [*send(depth), ("hold",)])
    server.rest["/fapi/v1/depth"] = snapshot
    server.rest["/fapi/v1/openInterest"] = '{"openInterest":"71234.567","symbol":"BTCUSDT","time":1723161300000}'

    cfg = test_config(watchdog=0.8, book_watchdog=60.0)  # the depth socket goes quiet on purpose
    market = Market(["BTC"])
    books = []
    rec_path = tmp_path / "rec.jsonl.gz"
    recorder = RecordingWriter(rec_path, ["binance"], ["BTC"])
    col = Collector(cfg, market, ["BTC"], ["binance"], on_book=lambda a, v, b: books.append((a, v, len(b))),
                    recorder=recorder, endpoints=loopback.endpoints(server.base, "binance"))
    await col.start()
    try:
        expected = {round(float(orjson.loads(f)["data"]["p"]), 2) for s in t[:5] for f in s}
        await asyncio.wait_for(_wait_all(market, expected), 20)
        await until(lambda: len(market.gather("oi", "BTC")) > 0, 10, "open interest from the REST poll")
        await until(lambda: bool(books) and books[-1][2] > 1000, 10, "the book rebuilt from the snapshot")
        h = col.health()["binance"]
        live_book = col.feeds()[("binance", "book")].books["BTC"]
        live_bids, live_asks = dict(live_book.bids), dict(live_book.asks)
    finally:
        await col.stop()
        recorder.close()

    # one connection per session on /market: close → reconnect, abort → reconnect, stall → reconnect
    assert server.connections["/market/stream"] >= 4
    assert server.connections["/public/stream"] == 1  # its own watchdog is long: never touched
    assert h["reconnects"] >= 3
    assert h["stalls"] >= 1
    # garbage: counted, not fatal (t[3] came after it on the same socket and arrived)
    assert h["parse_errors"] >= 2
    assert any(k.startswith("frame") for k in h["errors_by_kind"])
    liqs = market.gather("liq", "BTC")
    assert len(liqs) == 1 and liqs["side"][0] == -1  # S=BUY: a short was liquidated
    assert abs(liqs["price"][0] - 4706.04) < 1e-9  # the average fill price
    assert len(market.gather("trade", "BTC")) == 50
    oi = market.gather("oi", "BTC")
    assert abs(oi["oi"][-1] - 71234.567) < 1e-6
    assert server.rest_hits["/fapi/v1/depth"] >= 1 and "symbol=BTCUSDT" in server.queries["/fapi/v1/depth"][0]
    assert h["frames"] >= 50 + len(depth) and h["rest_frames"] >= 2

    # the recording holds every frame (websocket and REST) and replays to the same events
    rec = open_recording(rec_path)
    frames = list(rec)
    assert sum(1 for f in frames if f.conn.startswith("https://")) == h["rest_frames"]
    assert sum(1 for f in frames if not f.conn.startswith("http")) == h["frames"] - h["rest_frames"]
    replayed = Market(["BTC"])
    parser = FrameParser("binance", col.assets, lambda k, a, r: replayed.add(k, a, r), cfg=cfg)
    for f in frames:
        await parser.feed(f.raw, f.t, f.conn if f.conn.startswith("http") else rec.addresses.get(f.conn, ""))
    assert np.array_equal(np.sort(replayed.gather("trade", "BTC")["price"]),
                          np.sort(market.gather("trade", "BTC")["price"]))
    assert len(replayed.gather("liq", "BTC")) == 1
    # the book rebuilt offline from the recorded snapshot + diffs is the live book, level for level
    assert parser.books["BTC"].bids == live_bids and parser.books["BTC"].asks == live_asks
    assert len(live_bids) > 500


async def _wait_all(market: Market, expected: set[float]) -> None:
    while True:
        rows = market.gather("trade", "BTC")
        if {round(float(p), 2) for p in rows["price"]} >= expected and len(rows) >= 50:
            return
        await asyncio.sleep(0.02)


async def test_one_venue_down_never_stalls_another(server):
    """bybit points at a refused port and okx at a server that accepts and never says anything; binance
    keeps delivering, and each venue's health says what is wrong with it."""
    trades, _depth, _snap, _liq = binance_frames()
    server.script("/market/stream", [*[("send", f) for f in trades[:20]], ("hold",)])
    server.rest["/fapi/v1/openInterest"] = '{"openInterest":"1.5","symbol":"BTCUSDT","time":1723161300000}'
    cfg = test_config(watchdog=30.0)
    cfg["universe"]["focus_extra"] = []
    market = Market(["BTC"])
    eps = loopback.endpoints(server.base, "binance")
    eps["binance"]["public"] = f"wss://{server.base}/public"
    venues = ["binance"]
    from liqmap.feeds.venues import VENUE_CLASSES

    if "bybit" in VENUE_CLASSES:
        venues.append("bybit")
        eps["bybit"] = {"ws": "wss://127.0.0.1:1/v5/public/linear"}  # nothing listens on port 1
    col = Collector(cfg, market, ["BTC"], venues, endpoints=eps, focus=[])
    await col.start()
    try:
        await until(lambda: len(market.gather("trade", "BTC")) == 20, 10, "binance trades")
        h = col.health()
    finally:
        await col.stop()
    assert h["binance"]["frames"] >= 20
    if "bybit" in venues:
        assert h["bybit"]["state"] == "down"
        assert h["bybit"]["failed_connects"] >= 1 and "refused" in h["bybit"]["last_error"]


async def test_record_live_writes_every_frame(server, tmp_path):
    """`liqmap record` (live) against the loopback venue: websocket and REST frames land in the file."""
    from liqmap.commands.record import record_live

    trades, depth, snapshot, _liq = binance_frames()
    server.script("/market/stream", [*[("send", f) for f in trades[:30]], ("hold",)])
    server.script("/public/stream", [*[("send", f) for f in depth[:40]], ("hold",)])
    server.rest["/fapi/v1/depth"] = snapshot
    server.rest["/fapi/v1/openInterest"] = '{"openInterest":"1.5","symbol":"BTCUSDT","time":1723161300000}'
    cfg = test_config(watchdog=30.0)
    cfg["universe"]["assets"] = ["BTC"]
    cfg["universe"]["venues"] = ["binance"]
    out = tmp_path / "live.jsonl.gz"
    err = io.StringIO()
    eps = loopback.endpoints(server.base, "binance")
    rc = await record_live(str(out), cfg, duration=2.0, status_every=0.5, endpoints=eps, err=err)
    assert rc == 0, err.getvalue()
    rec = open_recording(out)
    assert rec.header["meta"] == {"source": "live"} and rec.venues == ["binance"]
    frames = list(rec)
    ws = [f for f in frames if not f.conn.startswith("http")]
    rest = [f for f in frames if f.conn.startswith("https://127.0.0.1")]
    assert {f.raw for f in ws} >= set(trades[:30]) | set(depth[:40])
    assert any("lastUpdateId" in f.raw for f in rest) and any("openInterest" in f.raw for f in rest)
    assert set(rec.addresses.values()) >= {f"wss://{server.base}/market/stream?streams=" + "/".join(
        ["!forceOrder@arr", "btcusdt@aggTrade", "btcusdt@markPrice@1s"])}
    assert "record " in err.getvalue() and "recorded" in err.getvalue()


async def test_record_live_with_nothing_reachable_exits_1(tmp_path):
    from liqmap.commands.record import record_live

    port = loopback.free_port()
    cfg = test_config(watchdog=30.0)
    cfg["universe"]["assets"] = ["BTC"]
    cfg["universe"]["venues"] = ["binance"]
    eps = loopback.endpoints(f"127.0.0.1:{port}", "binance")
    err = io.StringIO()
    rc = await record_live(str(tmp_path / "none.gz"), cfg, duration=1.0, endpoints=eps, err=err)
    assert rc == 1
    assert "binance: down" in err.getvalue() and "refused" in err.getvalue()
    assert "no frames received" in err.getvalue()

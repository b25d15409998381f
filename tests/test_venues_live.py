"""The live path of the Binance adapter against a TLS server on 127.0.0.1 (never anything else):
the two routed websocket connections (/market, /public), the REST depth snapshot it fetches itself to
sync the book, and the REST open-interest poll — all through cryptofeed's own connection machinery."""

from __future__ import annotations

import asyncio
import json

import pytest

from tls.loopback import LoopbackServer, make_cert, trust_cert

from liqmap.core.events import LONG
from liqmap.feeds.venues import make_feed
from venue_helpers import Collector, market

FORCE = {"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": 1700000000100, "o": {
    "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.5", "p": "60000", "ap": "60010", "X": "FILLED",
    "l": "0.5", "z": "0.5", "T": 1700000000099, "ps": "BTCUSDT", "st": 1}}}
AGG = {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1700000000200, "s": "BTCUSDT", "a": 7,
                                              "p": "60005.5", "q": "0.25", "f": 1, "l": 2, "T": 1700000000199,
                                              "m": True}}
DIFF1 = {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1700000000300, "T": 1700000000300,
                                                   "s": "BTCUSDT", "U": 95, "u": 101, "pu": 94,
                                                   "b": [["59999.0", "3.0"]], "a": [["60001.0", "0"]]}}
DIFF2 = {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1700000000400, "T": 1700000000400,
                                                   "s": "BTCUSDT", "U": 102, "u": 105, "pu": 101,
                                                   "b": [["59998.0", "1.0"]], "a": [["60002.0", "4.0"]]}}
SNAPSHOT = {"lastUpdateId": 100, "E": 1700000000250, "T": 1700000000250,
            "bids": [["59999.0", "1.0"], ["59990.0", "2.0"]], "asks": [["60001.0", "1.5"], ["60010.0", "2.5"]]}
OI = {"openInterest": "12345.678", "symbol": "BTCUSDT", "time": 1700000000500}


@pytest.fixture
def server(tmp_path, monkeypatch):
    cert, key = make_cert(tmp_path)
    trust_cert(cert, monkeypatch)
    return LoopbackServer(cert, key)


async def test_binance_live_routing_snapshot_and_oi_poll(server):
    server.script("/market/stream", [("send", json.dumps(FORCE)), ("send", json.dumps(AGG)), ("hold",)])
    server.script("/public/stream", [("send", json.dumps(DIFF1)), ("sleep", 0.3), ("send", json.dumps(DIFF2)),
                                     ("hold",)])
    server.rest["/fapi/v1/depth"] = json.dumps(SNAPSHOT)
    server.rest["/fapi/v1/openInterest"] = json.dumps(OI)
    await server.start()
    base = server.base
    col = Collector()
    books = []
    feed = make_feed("binance", market("binance", BTC=("BTCUSDT", False, 1.0)), sink=col,
                     book_sink=lambda a, v, b: books.append((a, dict(b.bids), dict(b.asks))),
                     endpoints={"market": f"wss://{base}/market", "public": f"wss://{base}/public",
                                "rest": f"https://{base}"}, retries=1)
    feed.start(asyncio.get_running_loop())
    try:
        for _ in range(300):  # up to 15 s on a loaded 2-core CI box; normally well under 1 s
            if (col.get("oi", "BTC").size and len(books) >= 2 and col.get("liq", "BTC").size
                    and col.get("trade", "BTC").size):
                break
            await asyncio.sleep(0.05)
    finally:
        feed.stop()
        await feed.shutdown()
        await server.stop()
    liq = col.get("liq", "BTC")
    assert len(liq) == 1 and liq["side"][0] == LONG and liq["usd"][0] == pytest.approx(0.5 * 60010)
    assert len(col.get("trade", "BTC")) == 1, (feed.errors, feed.stats)
    oi = col.get("oi", "BTC")
    assert oi["oi"][0] == pytest.approx(12345.678) and oi["mark"][0] == pytest.approx(60005.5)
    # the snapshot was fetched by the adapter itself, then DIFF1 (buffered) and DIFF2 applied in sequence
    assert server.rest_hits["/fapi/v1/depth"] == 1 and "symbol=BTCUSDT" in server.queries["/fapi/v1/depth"][0]
    asset, bids, asks = books[-1]
    assert bids == {59999.0: 3.0, 59990.0: 2.0, 59998.0: 1.0}
    assert asks == {60010.0: 2.5, 60002.0: 4.0}
    assert not feed.errors
    assert "!forceOrder@arr" in server.queries["/market/stream"][0]
    assert "btcusdt@depth@100ms" in server.queries["/public/stream"][0]

"""The load budget's light depth, end to end against a 127.0.0.1 TLS server: with focus=BTC, Binance's full
book feed carries BTC and its light ``depth`` feed (``<sym>@depth20@500ms`` top-20 snapshots) carries ETH,
whose book fills from it; ``set_focus("ETH")`` moves ETH to the full book (diffs + REST snapshot) and BTC to
light depth; ``health()`` reports light depth as on."""

from __future__ import annotations

import copy
import time

import orjson

from liqmap.config import DEFAULTS
from liqmap.core.events import ASK, BID
from liqmap.core.market import Market
from liqmap.feeds.collector import Collector
from tls import loopback
from tls.loopback import server, until  # noqa: F401  (server: the shared loopback TLS fixture)


def config() -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["asset"] = "BTC"
    cfg["universe"]["focus_extra"] = []
    cfg["feeds"].update({"watchdog_seconds": 30.0, "close_timeout_seconds": 0.3, "retries": 2,
                         "restart_seconds": 0.3, "oi_poll_seconds": 5.0, "stale_seconds": 5.0,
                         "light_depth": True})
    return cfg


def partial(sym: str, bids, asks, t: int) -> str:
    """A USD-M partial-book push (``depthUpdate`` payload holding the whole top N) on its combined stream."""
    return orjson.dumps({"stream": f"{sym.lower()}@depth20@500ms", "data": {
        "e": "depthUpdate", "E": t, "T": t, "s": sym, "U": 1, "u": 2, "pu": 0, "b": bids, "a": asks}}).decode()


def sides(book) -> tuple[list, list]:
    return tuple(list(zip(*(a.tolist() for a in book.levels(s)))) for s in (BID, ASK))


async def test_light_depth_fills_books_out_of_focus_and_follows_the_focus(server):
    now_ms = int(time.time() * 1000)
    eth_light = partial("ETHUSDT", [["1990.00", "1.5"], ["1989.50", "2.0"]], [["1991.00", "4.0"]], now_ms)
    btc_light = partial("BTCUSDT", [["60000.0", "0.5"]], [["60001.0", "0.25"], ["60002.0", "1.0"]], now_ms)
    # ETH's full book after the switch: one diff that straddles the REST snapshot's lastUpdateId
    eth_diff = orjson.dumps({"stream": "ethusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": now_ms, "T": now_ms, "s": "ETHUSDT", "U": 95, "u": 105, "pu": 90,
        "b": [["2000.00", "7"]], "a": []}}).decode()
    server.rest["/fapi/v1/depth"] = orjson.dumps({"lastUpdateId": 100, "E": now_ms, "T": now_ms,
                                                  "bids": [["2000.00", "5"], ["1999.00", "1"]],
                                                  "asks": [["2001.00", "3"]]}).decode()
    server.rest["/fapi/v1/openInterest"] = '{"openInterest":"10.5","symbol":"BTCUSDT","time":%d}' % now_ms
    server.script("/public/stream?depth20", [("send", eth_light), ("hold",)], [("send", btc_light), ("hold",)])
    server.script("/public/stream?depth@100ms", [("hold",)], [("sleep", 0.1), ("send", eth_diff), ("hold",)])

    announced = []
    market = Market(["BTC", "ETH"])
    eps = loopback.endpoints(server.base, "binance")
    col = Collector(config(), market, ["BTC", "ETH"], ["binance"], endpoints=eps,
                    on_book=lambda a, v, b: announced.append((a, v)))
    await col.start()
    try:
        # --- focus BTC: full book for BTC, light depth for ETH -------------------------------------------
        await until(lambda: "binance" in col.books("ETH"), 10, "ETH's light-depth book")
        eth = col.books("ETH")["binance"]
        assert sides(eth) == ([(1990.0, 1.5), (1989.5, 2.0)], [(1991.0, 4.0)])
        assert ("ETH", "binance") in announced
        h = col.health()["binance"]
        assert h["light_depth"] == "on"
        assert h["feeds"]["book"]["assets"] == ["BTC"] and h["feeds"]["depth"]["assets"] == ["ETH"]
        assert h["feeds"]["depth"]["kinds"] == ["depth"]
        qs = server.queries["/public/stream"]
        assert "streams=btcusdt@depth@100ms" in qs and "streams=ethusdt@depth20@500ms" in qs
        assert len(qs) == 2  # one full-book and one light connection, nothing else on /public
        assert "binance" not in col.books("BTC")  # the full book waits for its diffs; no light copy of BTC
        n_market = server.connections["/market/stream"]

        # --- focus ETH: ETH moves to the full book, BTC to light depth ------------------------------------
        task = col.set_focus("ETH")
        assert task is not None
        await task
        await until(lambda: "binance" in col.books("BTC"), 10, "BTC's light-depth book after the switch")
        assert sides(col.books("BTC")["binance"]) == ([(60000.0, 0.5)], [(60001.0, 0.25), (60002.0, 1.0)])
        await until(lambda: "binance" in col.books("ETH") and col.books("ETH")["binance"].best_bid() == 2000.0,
                    10, "ETH's full book (diff + REST snapshot)")
        # the full book: the REST snapshot with the straddling diff applied (2000: 5 → 7), not the light one
        assert sides(col.books("ETH")["binance"]) == ([(2000.0, 7.0), (1999.0, 1.0)], [(2001.0, 3.0)])
        assert server.rest_hits["/fapi/v1/depth"] >= 1
        h = col.health()["binance"]
        assert h["focus"] == ["ETH"] and h["light_depth"] == "on"
        assert h["feeds"]["book"]["assets"] == ["ETH"] and h["feeds"]["depth"]["assets"] == ["BTC"]
        qs = server.queries["/public/stream"]
        assert qs[2:] and sorted(qs[2:]) == ["streams=btcusdt@depth20@500ms", "streams=ethusdt@depth@100ms"]
        assert server.connections["/market/stream"] == n_market  # the flow feed was never touched
        assert not any(k.startswith("depth") for k in h["errors_by_kind"])
    finally:
        await col.stop()


async def test_light_depth_off_and_health_wording():
    """With ``feeds.light_depth`` off no depth feed is planned and health says "off"; on, every venue's
    adapter now parses the kind, so none reads "unsupported by the venue adapter"."""
    cfg = config()
    cfg["feeds"]["light_depth"] = False
    col = Collector(cfg, Market(["BTC", "ETH"]), ["BTC", "ETH"], ["binance", "bybit", "okx", "bitmex", "deribit"])
    assert all(col._light_assets(v) == [] for v in col.venues)
    assert {v: d["light_depth"] for v, d in col.health().items()} == {v: "off" for v in col.venues}
    col = Collector(config(), Market(["BTC", "ETH"]), ["BTC", "ETH"], ["binance", "bybit", "okx", "bitmex", "deribit"])
    assert {v: col._light_assets(v) for v in col.venues} == {v: ["ETH"] for v in col.venues}
    assert all(d["light_depth"] == "on" for d in col.health().values())

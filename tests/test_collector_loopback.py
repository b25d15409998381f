"""The collector against 127.0.0.1 TLS servers: the focus switch moves only the book subscription; a
venue that gives up is reported down and restarted; a feed that cannot be built is retried; a handler
exception is counted, not fatal; Bybit's allLiquidation list arrives with the position side; a stalled
venue never holds up another; a dead cryptofeed task reaches the loop exception handler's report."""

from __future__ import annotations

import asyncio
import copy
import time

import orjson
import pytest
from cryptofeed.exceptions import ExhaustedRetries

from liqmap.config import DEFAULTS
from liqmap.core.events import LONG, SHORT
from liqmap.core.market import Market
from liqmap.feeds.collector import Collector
from tls import loopback
from tls.loopback import server, until  # noqa: F401  (server: the shared loopback TLS fixture)
from common import gz_trades, real



def fixture_lines(name: str) -> list[str]:
    return real(name).read_text().splitlines()


def config(**feeds) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["app"]["asset"] = "BTC"
    cfg["universe"]["focus_extra"] = []
    f = cfg["feeds"]
    f.update({"watchdog_seconds": 30.0, "close_timeout_seconds": 0.3, "retries": 2, "restart_seconds": 0.3,
              "oi_poll_seconds": 0.5, "stale_seconds": 5.0})
    f.update(feeds)
    return cfg


async def test_focus_switch_moves_only_the_book_subscription(server):
    cfg = config(light_depth=False)  # the full book alone; the light-depth move is in test_collector_depth.py
    market = Market(["BTC", "ETH", "SOL"])
    eps = loopback.endpoints(server.base, "binance")
    col = Collector(cfg, market, ["BTC", "ETH", "SOL"], ["binance"], endpoints=eps)
    await col.start()
    try:
        await until(lambda: server.connections["/public/stream"] == 1 and server.connections["/market/stream"] == 1,
                    10, "flow and book connections")
        assert server.queries["/public/stream"][0] == "streams=btcusdt@depth@100ms"
        flow_query = server.queries["/market/stream"][0]
        assert all(f"{s}usdt@aggTrade" in flow_query for s in ("btc", "eth", "sol"))  # trades: every asset
        assert col.health()["binance"]["feeds"]["book"]["assets"] == ["BTC"]
        assert col.set_focus("BTC") is None  # unchanged: nothing to do
        task = col.set_focus(["SOL"])
        col.set_focus(["ETH"])  # a burst of switches: only the last one is applied
        assert task.cancelled() or not task.done()
        await until(lambda: server.connections["/public/stream"] == 2, 10, "the moved book subscription")
        await asyncio.sleep(0.3)
        assert server.queries["/public/stream"][1] == "streams=ethusdt@depth@100ms"
        assert server.connections["/public/stream"] == 2  # SOL was never subscribed
        assert server.connections["/market/stream"] == 1  # the flow connection was never touched
        h = col.health()["binance"]
        assert h["feeds"]["book"]["assets"] == ["ETH"] and h["focus"] == ["ETH"]
        assert h["feeds"]["book"]["open"] == 1
    finally:
        await col.stop()


async def test_venue_that_gives_up_is_down_then_restarted():
    port = loopback.free_port()  # nothing listens: every connect is refused
    cfg = config(retries=0, restart_seconds=0.3)
    market = Market(["BTC"])
    eps = loopback.endpoints(f"127.0.0.1:{port}", "binance")
    col = Collector(cfg, market, ["BTC"], ["binance"], endpoints=eps, focus=[])
    await col.start()
    try:
        await until(lambda: "gave up" in col.health()["binance"]["last_error"], 10, "the give-up report")
        first = col.health()["binance"]["failed_connects"]
        assert col.health()["binance"]["state"] == "down"
        await until(lambda: col.health()["binance"]["failed_connects"] > first, 10, "a restart after the pause")
    finally:
        await col.stop()


async def test_feed_that_cannot_be_built_is_retried(server):
    from liqmap.feeds.venues import make_feed

    calls = []

    def factory(*args, **kwargs):
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("metadata unavailable")
        return make_feed(*args, **kwargs)

    server.script("/market/stream", [("send", gz_trades(1)[0]), ("hold",)])
    market = Market(["BTC"])
    eps = loopback.endpoints(server.base, "binance")
    col = Collector(config(light_depth=False), market, ["BTC"], ["binance"], endpoints=eps,
                    focus=[], feed_factory=factory)  # one flow feed only (no light-depth feed to build)
    await col.start()
    try:
        h = col.health()["binance"]
        assert h["state"] == "down" and "metadata unavailable" in h["last_error"]
        assert "build flow" in h["feeds"]["flow"]["error"]
        await until(lambda: len(market.gather("trade", "BTC")) == 1, 10, "the trade after the rebuild")
        assert len(calls) == 2
    finally:
        await col.stop()


async def test_handler_exception_is_counted_not_fatal(server):
    from liqmap.feeds.venues import make_feed

    def factory(*args, **kwargs):
        feed = make_feed(*args, **kwargs)
        inner = feed.message_handler

        async def handler(msg, conn, ts):
            if "BOOM" in msg:
                raise RuntimeError("handler blew up")
            await inner(msg, conn, ts)

        feed.message_handler = handler
        return feed

    trades = gz_trades(12)
    server.script("/market/stream", [*[("send", t) for t in trades[:5]], ("send", '{"BOOM":1}'),
                                     *[("send", t) for t in trades[5:]], ("hold",)])
    market = Market(["BTC"])
    eps = loopback.endpoints(server.base, "binance")
    col = Collector(config(), market, ["BTC"], ["binance"], endpoints=eps, focus=[],
                    feed_factory=factory)
    await col.start()
    try:
        await until(lambda: len(market.gather("trade", "BTC")) == 12, 10, "trades on both sides of the bomb")
        h = col.health()["binance"]
        assert h["errors_by_kind"].get("RuntimeError") == 1 and h["parse_errors"] >= 1
        assert server.connections["/market/stream"] == 1 and h["reconnects"] == 0
    finally:
        await col.stop()



async def test_bybit_all_liquidation_and_a_stall_that_stalls_nobody_else(server):
    """Bybit sends its real allLiquidation, publicTrade and tickers frames, then goes silent; Binance keeps
    delivering meanwhile, and Bybit's watchdog reconnects it."""
    from liqmap.feeds.venues import VENUE_CLASSES

    assert "bybit" in VENUE_CLASSES
    bybit = fixture_lines("bybit_messages.jsonl")
    all_liq = next(x for x in bybit if x.startswith('{"topic":"allLiquidation.PIPPINUSDT"'))
    trade = next(x for x in bybit if x.startswith('{"topic":"publicTrade.LTCUSDT"'))
    # after the reconnect: the same real trade under a new trade id (the adapter drops replayed ids)
    again = orjson.loads(trade)
    for row in again["data"]:
        row["i"] = "liqmap-loopback-" + row["i"]
    server.script("/v5/public/linear", [("send", all_liq), ("send", trade), ("stall",)],
                  [("send", orjson.dumps(again).decode()), ("hold",)])
    trades = gz_trades(80)  # 4 s of Binance trades, 50 ms apart
    server.script("/market/stream", [*[x for t in trades for x in (("send", t), ("sleep", 0.05))], ("hold",)])
    cfg = config(watchdog_seconds=0.6, watchdog_by_kind={"trade": 0.0, "book": 0.0, "oi": 0.0, "liq": 0.0},
                 light_depth=False)  # one connection per venue: the counts below are the flow feeds'
    cfg["feeds"]["watchdog_seconds"] = 0.6
    market = Market(["BTC", "LTC", "PIPPIN"])
    eps = loopback.endpoints(server.base, "binance", "bybit")
    col = Collector(cfg, market, ["BTC", "LTC", "PIPPIN"], ["binance", "bybit"], endpoints=eps, focus=[])
    await col.start()
    try:
        await until(lambda: len(market.gather("liq", "PIPPIN")) == 1, 10, "the Bybit liquidation")
        n_binance = len(market.gather("trade", "BTC"))
        await until(lambda: server.connections["/v5/public/linear"] >= 2, 10, "Bybit's reconnect")
        # Binance went on delivering while Bybit was silent, and was never itself taken for stalled
        assert len(market.gather("trade", "BTC")) > n_binance
        assert col.health()["binance"]["stalls"] == 0
        await until(lambda: len(market.gather("trade", "LTC")) == 2, 10, "Bybit data after the reconnect")
        h = col.health()
        assert h["bybit"]["stalls"] >= 1 and h["bybit"]["reconnects"] >= 1
    finally:
        await col.stop()
    liq = market.gather("liq", "PIPPIN")[0]
    # S=Sell is Bybit's *position* side: a short was liquidated (cryptofeed #985 had it inverted)
    assert liq["side"] == SHORT and liq["side"] != LONG
    assert liq["price"] == pytest.approx(0.02456) and liq["qty"] == pytest.approx(2846.0)
    assert liq["ts"] == pytest.approx(1740480207.110)
    subs = " ".join(server.received["/v5/public/linear"])
    assert "allLiquidation.PIPPINUSDT" in subs and "liquidation.PIPPINUSDT\"" not in subs.replace("allL", "")


async def test_dead_task_reaches_the_loop_exception_handler():
    seen = []
    loop = asyncio.get_running_loop()
    prev = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx.get("message")))
    col = Collector(config(), Market(["BTC"]), ["BTC"], [], focus=[])
    await col.start()
    try:
        async def handler_like():
            raise ExhaustedRetries()

        task = loop.create_task(handler_like())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        loop.call_exception_handler({"message": "Task exception was never retrieved",
                                     "exception": task.exception(), "task": task})
        assert col.task_errors and "feed task died" in col.task_errors[0]
        assert seen == ["Task exception was never retrieved"]  # chained to the previous handler
    finally:
        await col.stop()
        loop.set_exception_handler(prev)
    assert loop.get_exception_handler() is not col._exception_handler

"""The load budget as the collector plans it (no sockets: the feed factory records what it was asked to
build): flow for every asset on every venue, full books for the focus set, light depth for the rest where
the adapter supports it; a focus switch rebuilds only the book and depth feeds."""

from __future__ import annotations

import copy

from liqmap.config import DEFAULTS
from liqmap.core.assets import universe
from liqmap.core.market import Market
from liqmap.feeds.collector import Collector


class FakeFeed:
    def __init__(self, venue, channels, book_assets):
        self.venue, self.channels, self.book_assets = venue, channels, book_assets
        self.errors, self.books, self.http_conn = {}, {}, None

    def connect(self):
        return []


class Factory:
    def __init__(self, kinds=("liq", "trade", "oi", "book", "depth")):
        self.SUPPORTED_KINDS = kinds
        self.calls = []

    def __call__(self, venue, assets, channels, sink, book_sink, cfg, endpoints, book_assets, retries):
        self.calls.append((venue, tuple(channels), None if book_assets is None else tuple(book_assets)))
        return FakeFeed(venue, channels, book_assets)

    def built(self, venue, kinds):
        return [c for c in self.calls if c[0] == venue and c[1] == kinds]


ASSETS = ["BTC", "ETH", "SOL", "PEPE", "KAS"]


def cfg():
    c = copy.deepcopy(DEFAULTS)
    c["app"]["asset"] = "BTC"
    c["universe"]["focus_extra"] = ["ETH"]
    return c


async def test_budget_flow_book_and_light_depth():
    f = Factory()
    col = Collector(cfg(), Market(ASSETS), ASSETS, ["binance", "bitmex"], feed_factory=f)
    await col.start()
    try:
        assert f.built("binance", ("liq", "trade", "oi")) == [("binance", ("liq", "trade", "oi"), None)]
        assert f.built("binance", ("book",)) == [("binance", ("book",), ("BTC", "ETH"))]
        assert f.built("binance", ("depth",)) == [("binance", ("depth",), ("SOL", "PEPE", "KAS"))]
        # BitMEX lists no KAS perpetual: it is not asked for one
        meta = universe(ASSETS)
        want = tuple(a for a in ("SOL", "PEPE", "KAS") if "bitmex" in meta[a].markets)
        assert f.built("bitmex", ("depth",)) == [("bitmex", ("depth",), want)] and "KAS" not in want
        h = col.health()
        assert h["binance"]["light_depth"] == "on"
        assert set(h["binance"]["feeds"]) == {"flow", "book", "depth"}

        task = col.set_focus("SOL")
        await task
        assert f.built("binance", ("book",))[-1] == ("binance", ("book",), ("ETH", "SOL"))
        assert f.built("binance", ("depth",))[-1] == ("binance", ("depth",), ("BTC", "PEPE", "KAS"))
        assert len(f.built("binance", ("liq", "trade", "oi"))) == 1  # flow never rebuilt
        assert col.health()["binance"]["focus"] == ["ETH", "SOL"]
    finally:
        await col.stop()


async def test_no_light_depth_without_adapter_support():
    f = Factory(kinds=("liq", "trade", "oi", "book"))
    col = Collector(cfg(), Market(ASSETS), ASSETS, ["okx"], feed_factory=f)
    await col.start()
    try:
        assert not f.built("okx", ("depth",))
        assert col.health()["okx"]["light_depth"] == "unsupported by the venue adapter"
    finally:
        await col.stop()


async def test_light_depth_can_be_switched_off():
    c = cfg()
    c["feeds"]["light_depth"] = False
    f = Factory()
    col = Collector(c, Market(ASSETS), ASSETS, ["binance"], feed_factory=f)
    await col.start()
    try:
        assert not f.built("binance", ("depth",))
        assert col.health()["binance"]["light_depth"] == "off"
    finally:
        await col.stop()


async def test_set_focus_from_another_thread():
    import asyncio

    f = Factory()
    col = Collector(cfg(), Market(ASSETS), ASSETS, ["binance"], feed_factory=f)
    await col.start()
    try:
        assert await asyncio.to_thread(col.set_focus, "PEPE") is None  # scheduled, not run, off-loop
        for _ in range(200):
            if f.built("binance", ("book",))[-1][2] == ("ETH", "PEPE"):
                break
            await asyncio.sleep(0.01)
        assert f.built("binance", ("book",))[-1] == ("binance", ("book",), ("ETH", "PEPE"))
    finally:
        await col.stop()


async def test_metadata_applied_then_refreshed_in_the_background(tmp_path):
    import asyncio

    from liqmap.feeds.metadata import Metadata

    fetched = []

    def fetch(venue, assets):
        fetched.append(venue)
        if venue == "okx":  # a ctVal unlike the built-in cold-start table: the feed must be rebuilt
            return {"BTC-USDT-SWAP": {"symbol": "BTC-USDT-SWAP", "asset": "BTC", "contract_size": 0.001,
                                      "tick": 0.1, "inverse": False}}
        raise OSError("offline")

    md = Metadata(tmp_path, fetch=fetch)
    seen = []

    class Recording(Factory):
        def __call__(self, venue, assets, *a, **k):
            seen.append((venue, assets["BTC"].markets[venue].contract_size))
            return super().__call__(venue, assets, *a, **k)

    f = Recording()
    col = Collector(cfg(), Market(["BTC"]), ["BTC"], ["okx", "bybit"], feed_factory=f, metadata=md)
    await col.start()
    try:
        assert ("okx", 0.01) in seen  # cold start: the OKX ctVal table, not 1.0
        for _ in range(300):
            if ("okx", 0.001) in seen and len([s for s in seen if s[0] == "okx"]) >= 4:
                break
            await asyncio.sleep(0.01)
        assert sorted(fetched) == ["bybit", "okx"]
        okx_builds = [s for s in seen if s[0] == "okx"]
        assert okx_builds[-2:] == [("okx", 0.001), ("okx", 0.001)]  # flow and book rebuilt with the new size
        assert all(s[1] == 1.0 for s in seen if s[0] == "bybit")  # bybit: fetch failed, not rebuilt
        assert len([s for s in seen if s[0] == "bybit"]) == 2
        assert "offline" in col.health()["bybit"]["metadata_error"]
    finally:
        await col.stop()
    assert (tmp_path / "metadata.json").exists()  # the cache a restart will use

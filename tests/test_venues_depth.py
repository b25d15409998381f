"""Light depth (the ``depth`` kind): top-N book snapshots for the assets out of focus, on all five venues.

Each venue's frame follows the venue's documented shape; the expected levels are worked out by hand in the
comments (contracts → coins, inverse USD → coins). Where the frame is real it comes from tests/data.
Sources of the shapes:
- Binance USD-M "Partial Book Depth Streams" (developers.binance.com …/usds-margined-futures/
  websocket-market-streams/Partial-Book-Depth-Streams): stream ``<symbol>@depth<5|10|20>@<speed>``, payload a
  ``depthUpdate`` event (``E``, ``T``, ``s``, ``U``, ``u``, ``pu``, ``b``, ``a``) holding the whole top N.
  The numbers below are those of that page's response example as we recall it (the docs search here only
  returned the diff-stream page, so they are not checked verbatim; the hand-checked arithmetic is ours).
- Bybit v5 "Orderbook" (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook): topic
  ``orderbook.{depth}.{symbol}``, linear depths 1/50/200/1000 pushed every 10/20/100/200 ms; a snapshot
  first, then deltas (size "0" deletes, an unknown price inserts, a known one updates); a new snapshot
  (``u`` = 1 after a service restart) resets the book. Frame: ``{"topic","type","ts","data":{"s","b","a",
  "u","seq"},"cts"}``, bids best (highest) first, asks lowest first. The light default is
  ``orderbook.200`` (5x fewer pushes than ``orderbook.50``). Real ``orderbook.50.BTCPERP`` snapshot + delta
  from tests/data/tardis-node-fixtures/bybit_messages.jsonl (lines 43–44) — the parser does not depend on
  the depth in the topic; the ``orderbook.200`` frames and the restart snapshots are ours in that shape.
- OKX v5 "Order book channel" (``books5``): ``{"arg":{"channel":"books5","instId":..},"data":[{"asks":
  [[px, sz, "0", n],..],"bids":..,"instId":..,"ts":..,"seqId":..}]}``, no ``action``, no checksum.
- BitMEX ``orderBook10`` (bitmex.com/app/wsAPI): ``{"table":"orderBook10","action":"partial"|"update",
  "data":[{"symbol","bids":[[price, size]..],"asks":..,"timestamp"}]}``.
- Deribit ``book.{instrument_name}.{group}.{depth}.{interval}`` (docs.deribit.com/subscriptions/orderbook/
  bookinstrument_namegroupdepthinterval): ``bids``/``asks`` are ``[price, amount]`` pairs; amount USD for
  inverse perpetuals, base coin for linear ones; no change type, no ``prev_change_id``.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from liqmap.core.book import Book
from liqmap.core.events import ASK, BID
from liqmap.feeds.collector import light_depth_supported
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.venues import VENUE_CLASSES, make_feed

from venue_helpers import Collector, fixture_lines, market

VENUES = ("binance", "bybit", "okx", "bitmex", "deribit")


def levels(book: Book) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    out = []
    for side in (BID, ASK):
        p, q = book.levels(side)
        out.append(list(zip(p.tolist(), q.tolist())))
    return out[0], out[1]


def assert_levels(book: Book, bids, asks) -> None:
    got_b, got_a = levels(book)
    assert len(got_b) == len(bids) and len(got_a) == len(asks), (got_b, got_a)
    for (gp, gq), (p, q) in zip(got_b + got_a, list(bids) + list(asks)):
        assert gp == pytest.approx(p, rel=1e-12) and gq == pytest.approx(q, rel=1e-12)


def run(venue, assets, frames, channels=("depth",), book_assets=None):
    """Frames through a light-depth FrameParser; returns (parser, books announced, subscribe messages)."""
    announced = []
    parser = FrameParser(venue, assets, Collector(), book_sink=lambda a, v, b: announced.append((a, v, len(b))),
                         channels=channels, book_assets=book_assets)

    async def go():
        for i, f in enumerate(frames):
            await parser.feed(f if isinstance(f, str) else orjson.dumps(f).decode(), 1.7e9 + i)

    asyncio.run(go())
    return parser, announced


# ------------------------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("venue", VENUES)
def test_every_adapter_declares_depth(venue):
    cls = VENUE_CLASSES[venue]
    assert "depth" in cls.SUPPORTED_KINDS
    assert light_depth_supported(venue)


def test_book_and_depth_cannot_share_a_feed():
    with pytest.raises(ValueError, match="separate feeds"):
        make_feed("okx", market("okx", BTC=("BTC-USDT-SWAP", False, 0.01)), channels=("book", "depth"))
    with pytest.raises(ValueError, match="unsupported kinds"):
        make_feed("okx", market("okx", BTC=("BTC-USDT-SWAP", False, 0.01)), channels=("nope",))


# (venue, assets, what the light subscription must name for ETH, and must not name for BTC)
SUBS = {
    "binance": (dict(BTC=("BTCUSDT", False, 1.0), ETH=("ETHUSDT", False, 1.0)),
                "ethusdt@depth20@500ms", "btcusdt@depth"),
    "bybit": (dict(BTC=("BTCUSDT", False, 1.0), ETH=("ETHUSDT", False, 1.0)),
              "orderbook.200.ETHUSDT", "BTCUSDT"),
    "okx": (dict(BTC=("BTC-USDT-SWAP", False, 0.01), ETH=("ETH-USDT-SWAP", False, 0.1)),
            '{"channel":"books5","instId":"ETH-USDT-SWAP"}', "BTC-USDT-SWAP"),
    "bitmex": (dict(BTC=("XBTUSD", True, 1.0), ETH=("ETHUSD", False, 1e-6)), "orderBook10:ETHUSD", "XBTUSD"),
    "deribit": (dict(BTC=("BTC-PERPETUAL", True, 10.0), ETH=("ETH-PERPETUAL", True, 1.0)),
                "book.ETH-PERPETUAL.none.20.100ms", "BTC-PERPETUAL"),
}


@pytest.mark.parametrize("venue", VENUES)
def test_light_subscription_names_the_configured_channel_for_its_assets_only(venue):
    spec, want, not_btc = SUBS[venue]
    parser = FrameParser(venue, market(venue, **spec), Collector(), channels=("depth",), book_assets=["ETH"])
    asyncio.run(parser.subscribe())
    wire = " ".join([c.address for c in parser.connections] + [m for c in parser.connections for m in c.sent])
    assert want in wire
    assert not_btc not in wire
    # the full-book channel is not what a light feed asks for (on Bybit the light default is the same
    # 200-level topic as the full book: the light feed differs only in the assets it carries)
    full = {"binance": "ethusdt@depth@100ms", "bybit": None, "okx": '"books"',
            "bitmex": "orderBookL2", "deribit": "book.ETH-PERPETUAL.100ms"}[venue]
    if full is not None:
        assert full not in wire
    else:
        sent = [orjson.loads(m) for c in parser.connections for m in c.sent]
        assert sent == [{"op": "subscribe", "args": ["orderbook.200.ETHUSDT"]}]


def test_light_channel_names_come_from_config():
    cfg = {"feeds": {"channels": {"bybit_light_depth": "orderbook.1"}}}
    parser = FrameParser("bybit", market("bybit", ETH=("ETHUSDT", False, 1.0)), Collector(), cfg=cfg,
                         channels=("depth",))
    asyncio.run(parser.subscribe())
    assert "orderbook.1.ETHUSDT" in " ".join(m for c in parser.connections for m in c.sent)


# ----------------------------------------------------------------------------------------- Binance

BINANCE_PARTIAL = {  # USD-M partial book stream payload (see module doc)
    "e": "depthUpdate", "E": 1571889248277, "T": 1571889248276, "s": "BTCUSDT",
    "U": 390497796, "u": 390497878, "pu": 390497794,
    "b": [["7403.89", "0.002"], ["7403.90", "3.906"], ["7404.00", "1.428"], ["7404.85", "5.239"],
          ["7405.43", "2.562"]],
    "a": [["7405.96", "3.340"], ["7406.63", "4.525"], ["7407.08", "2.475"], ["7407.15", "4.800"],
          ["7407.20", "0.175"]],
}


def wrap(stream, data):
    return {"stream": stream, "data": data}


def test_binance_partial_depth_is_a_snapshot_that_replaces():
    assets = market("binance", BTC=("BTCUSDT", False, 1.0), PEPE=("1000PEPEUSDT", False, 1.0, 1000.0))
    second = dict(BINANCE_PARTIAL, E=1571889248777, T=1571889248776, b=[["7404.00", "1.000"]],
                  a=[["7406.00", "2.000"], ["7406.50", "0.500"]])
    pepe = {"e": "depthUpdate", "E": 1, "T": 1, "s": "1000PEPEUSDT", "U": 1, "u": 2, "pu": 0,
            "b": [["0.01000", "5"]], "a": [["0.01010", "7"]]}
    p, announced = run("binance", assets, [wrap("btcusdt@depth20@500ms", BINANCE_PARTIAL)], book_assets=None)
    book = p.books["BTC"]
    # bids best first (the docs list them worst first): exactly the five pushed levels
    assert_levels(book, [(7405.43, 2.562), (7404.85, 5.239), (7404.00, 1.428), (7403.90, 3.906), (7403.89, 0.002)],
                  [(7405.96, 3.340), (7406.63, 4.525), (7407.08, 2.475), (7407.15, 4.800), (7407.20, 0.175)])
    assert book.ts == pytest.approx(1571889248.276)
    assert announced == [("BTC", "binance", 10)]

    p, announced = run("binance", assets, [wrap("btcusdt@depth20@500ms", BINANCE_PARTIAL),
                                           wrap("btcusdt@depth20@500ms", second),
                                           wrap("1000pepeusdt@depth20@500ms", pepe)])
    # the second push replaces the first: nothing of the first survives
    assert_levels(p.books["BTC"], [(7404.0, 1.0)], [(7406.0, 2.0), (7406.5, 0.5)])
    # 1000PEPE: price per lot / 1000, size in lots × 1000 (0.01000 → 0.00001, 5 → 5000)
    assert_levels(p.books["PEPE"], [(0.00001, 5000.0)], [(0.0000101, 7000.0)])
    assert [a for a, _, _ in announced] == ["BTC", "BTC", "PEPE"]
    assert not p.errors


def test_binance_partial_depth_also_routes_in_the_default_replay_parser_and_in_the_spot_shape():
    """A recording of a light feed replays through the default (all kinds) parser; the spot-style partial
    payload (no ``e``/``s``: symbol from the stream) is read as a snapshot, not taken for a REST body."""
    assets = market("binance", BTC=("BTCUSDT", False, 1.0))
    spot_shape = {"lastUpdateId": 160, "bids": [["100.00", "1.5"]], "asks": [["101.00", "2.5"]]}
    p, _ = run("binance", assets, [wrap("btcusdt@depth20@500ms", BINANCE_PARTIAL),
                                   wrap("btcusdt@depth5@100ms", spot_shape)], channels=("liq", "trade", "oi", "book"))
    assert_levels(p.books["BTC"], [(100.0, 1.5)], [(101.0, 2.5)])
    assert not p.errors
    # a raw (unwrapped) push on a light-only feed is a snapshot too
    p, _ = run("binance", assets, [BINANCE_PARTIAL])
    assert len(p.books["BTC"]) == 10 and not p.errors


def test_binance_malformed_partials_are_counted_and_keep_the_last_snapshot():
    assets = market("binance", BTC=("BTCUSDT", False, 1.0))
    bad = [wrap("btcusdt@depth20@500ms", dict(BINANCE_PARTIAL, b="oops")),
           wrap("btcusdt@depth20@500ms", dict(BINANCE_PARTIAL, a=[["x", "1"]])),
           wrap("btcusdt@depth20@500ms", dict(BINANCE_PARTIAL, b=[["1.0"]])),
           wrap("btcusdt@depth20@500ms", [1, 2]),
           "{not json"]
    p, announced = run("binance", assets, [wrap("btcusdt@depth20@500ms", BINANCE_PARTIAL), *bad,
                                           wrap("ethusdt@depth20@500ms", dict(BINANCE_PARTIAL, s="ETHUSDT"))])
    assert len(p.books["BTC"]) == 10  # the good snapshot still stands, untouched by the bad ones
    assert p.books["BTC"].best_bid() == 7405.43
    assert p.errors[("depth", "bad_levels")] == 3
    assert sum(p.errors.values()) == 5
    assert p.stats["filtered"] == 1  # ETHUSDT is not one of this feed's assets
    assert len(announced) == 1


# ------------------------------------------------------------------------------------------- Bybit


def bybit_book_lines() -> list[str]:
    return [ln for ln in fixture_lines("bybit_messages.jsonl") if ln.startswith('{"topic":"orderbook.50.')]


def test_bybit_orderbook50_snapshot_then_delta_then_a_new_snapshot_replaces():
    real = bybit_book_lines()
    assert len(real) == 2  # the real snapshot and delta (tardis-node fixture, 2023-04-05)
    assets = market("bybit", BTC=("BTCPERP", False, 1.0))
    p, announced = run("bybit", assets, real[:1])
    assert_levels(p.books["BTC"], [(28555.20, 0.597)], [(28555.30, 0.225)])
    p, announced = run("bybit", assets, real)
    # the delta updates both levels in place: 0.597 → 0.677, 0.225 → 0.029
    assert_levels(p.books["BTC"], [(28555.20, 0.677)], [(28555.30, 0.029)])
    assert p.books["BTC"].ts == pytest.approx(1680673821.651)
    restart = {"topic": "orderbook.50.BTCPERP", "type": "snapshot", "ts": 1680673822000,
               "data": {"s": "BTCPERP", "b": [["28550.00", "1.000"], ["28549.50", "0.250"]],
                        "a": [["28560.00", "2.000"]], "u": 1, "seq": 10916156600}}
    p, announced = run("bybit", assets, [*real, restart])
    assert_levels(p.books["BTC"], [(28550.0, 1.0), (28549.5, 0.25)], [(28560.0, 2.0)])
    assert len(announced) == 3 and not p.errors


def bybit200(kind: str, bids, asks, ts: int, u: int, seq: int) -> dict:
    """An ``orderbook.200.ETHUSDT`` push in the documented v5 shape (``cts``: the matching-engine time)."""
    return {"topic": "orderbook.200.ETHUSDT", "type": kind, "ts": ts,
            "data": {"s": "ETHUSDT", "b": bids, "a": asks, "u": u, "seq": seq}, "cts": ts - 2}


def test_bybit_default_light_depth_is_orderbook200_snapshot_then_deltas():
    assets = market("bybit", BTC=("BTCUSDT", False, 1.0), ETH=("ETHUSDT", False, 1.0))
    # the default configuration subscribes the 200-level topic, for the assets out of focus only
    parser = FrameParser("bybit", assets, Collector(), channels=("depth",), book_assets=["ETH"])
    asyncio.run(parser.subscribe())
    assert [orjson.loads(m) for c in parser.connections for m in c.sent] == \
        [{"op": "subscribe", "args": ["orderbook.200.ETHUSDT"]}]

    snap = bybit200("snapshot", [["3000.10", "5.20"], ["3000.00", "1.00"], ["2999.90", "12.50"]],
                    [["3000.20", "0.80"], ["3000.30", "4.00"], ["3000.50", "20.00"]],
                    1732400000100, 400123, 81234567890)
    # delta 1: delete bid 3000.00 (size "0"), insert a new best bid 3000.15, update ask 3000.20
    d1 = bybit200("delta", [["3000.00", "0"], ["3000.15", "2.00"]], [["3000.20", "0.30"]],
                  1732400000200, 400124, 81234567901)
    # delta 2: the best ask is taken out, 3000.40 appears; a "0" for a price we never had is a no-op
    d2 = bybit200("delta", [["2990.00", "0"]], [["3000.20", "0"], ["3000.40", "7.50"]],
                  1732400000300, 400125, 81234567950)
    p, announced = run("bybit", assets, [snap], book_assets=["ETH"])
    assert_levels(p.books["ETH"], [(3000.10, 5.2), (3000.00, 1.0), (2999.90, 12.5)],
                  [(3000.20, 0.8), (3000.30, 4.0), (3000.50, 20.0)])
    p, announced = run("bybit", assets, [snap, d1, d2], book_assets=["ETH"])
    assert_levels(p.books["ETH"], [(3000.15, 2.0), (3000.10, 5.2), (2999.90, 12.5)],
                  [(3000.30, 4.0), (3000.40, 7.5), (3000.50, 20.0)])
    assert p.books["ETH"].ts == pytest.approx(1732400000.300)
    assert [a for a, _, _ in announced] == ["ETH", "ETH", "ETH"] and not p.errors
    # a service restart: a snapshot with u=1 replaces everything; the deltas after it build on it
    restart = bybit200("snapshot", [["2990.00", "1.00"]], [["2991.00", "3.00"]], 1732400001000, 1, 81234568000)
    d3 = bybit200("delta", [["2989.50", "4.00"]], [], 1732400001100, 2, 81234568010)
    p, announced = run("bybit", assets, [snap, d1, d2, restart, d3], book_assets=["ETH"])
    assert_levels(p.books["ETH"], [(2990.0, 1.0), (2989.5, 4.0)], [(2991.0, 3.0)])
    assert len(announced) == 5 and not p.errors
    # a delta before any snapshot (say, right after a reconnect) is counted and dropped, the snapshot
    # after it starts the book
    p, announced = run("bybit", assets, [d1, snap], book_assets=["ETH"])
    assert p.errors == {("depth", "delta_before_snapshot"): 1}
    assert len(p.books["ETH"]) == 6 and len(announced) == 1


def test_bybit_inverse_light_depth_converts_usd_contracts():
    assets = market("bybit", BTC=("BTCUSD", True, 1.0))
    snap = {"topic": "orderbook.50.BTCUSD", "type": "snapshot", "ts": 1, "data": {
        "s": "BTCUSD", "b": [["50000.0", "100000"]], "a": [["50000.5", "50000.5"]], "u": 5, "seq": 1}}
    p, _ = run("bybit", assets, [snap])
    # 100000 USD / 50000 = 2 BTC; 50000.5 USD / 50000.5 = 1 BTC
    assert_levels(p.books["BTC"], [(50000.0, 2.0)], [(50000.5, 1.0)])


def test_bybit_malformed_light_depth_is_counted_not_fatal():
    real = bybit_book_lines()
    assets = market("bybit", BTC=("BTCPERP", False, 1.0))
    bad_snapshot = {"topic": "orderbook.50.BTCPERP", "type": "snapshot", "ts": 2,
                    "data": {"s": "BTCPERP", "b": [["x", "1"]], "a": []}}
    p, _ = run("bybit", assets, [real[1], real[0], bad_snapshot, '{"topic":"orderbook.50.BTCPERP"}'])
    # the delta before any snapshot, the bad snapshot and the frame without data: counted, dropped
    assert p.errors[("depth", "delta_before_snapshot")] == 1  # a light feed counts under "depth"
    assert p.errors[("depth", "bad_levels")] == 1
    assert sum(p.errors.values()) == 3
    assert_levels(p.books["BTC"], [(28555.20, 0.597)], [(28555.30, 0.225)])


# --------------------------------------------------------------------------------------------- OKX


def okx_books5(inst, asks, bids, ts="1597026383085", seq=123):
    return {"arg": {"channel": "books5", "instId": inst},
            "data": [{"asks": asks, "bids": bids, "instId": inst, "ts": ts, "seqId": seq}]}


def test_okx_books5_snapshots_replace_and_convert_contracts():
    assets = market("okx", BTC=("BTC-USDT-SWAP", False, 0.01), INV=("BTC-USD-SWAP", True, 100.0))
    first = okx_books5("BTC-USDT-SWAP", [["8446", "95", "0", "3"], ["8447", "1", "0", "1"]],
                       [["8444", "4", "0", "1"], ["8443", "2", "0", "1"]])
    second = okx_books5("BTC-USDT-SWAP", [["8450", "10", "0", "2"]], [["8449", "300", "0", "9"]],
                        ts="1597026383185", seq=124)
    inverse = okx_books5("BTC-USD-SWAP", [["50000", "10", "0", "1"]], [["49999.5", "1", "0", "1"]])
    p, announced = run("okx", assets, [first])
    # ctVal 0.01 BTC: 95 → 0.95, 1 → 0.01, 4 → 0.04, 2 → 0.02
    assert_levels(p.books["BTC"], [(8444.0, 0.04), (8443.0, 0.02)], [(8446.0, 0.95), (8447.0, 0.01)])
    assert p.books["BTC"].ts == pytest.approx(1597026383.085)
    p, announced = run("okx", assets, [first, second, inverse])
    assert_levels(p.books["BTC"], [(8449.0, 3.0)], [(8450.0, 0.1)])
    # inverse: 10 contracts × 100 USD / 50000 = 0.02 BTC; 1 × 100 / 49999.5
    assert_levels(p.books["INV"], [(49999.5, 100.0 / 49999.5)], [(50000.0, 0.02)])
    assert [a for a, _, _ in announced] == ["BTC", "BTC", "INV"]
    assert not p.errors and p.stats["checksum_ok"] == 0  # books5 carries no checksum; none is checked


def test_okx_malformed_books5_counted_not_fatal():
    assets = market("okx", BTC=("BTC-USDT-SWAP", False, 0.01))
    good = okx_books5("BTC-USDT-SWAP", [["8446", "95", "0", "3"]], [["8444", "4", "0", "1"]])
    bad = [okx_books5("BTC-USDT-SWAP", "oops", []),
           okx_books5("BTC-USDT-SWAP", [["8446"]], []),
           {"arg": {"channel": "books5", "instId": "BTC-USDT-SWAP"}, "data": []},
           {"arg": {"channel": "books5", "instId": "BTC-USDT-SWAP"}, "data": ["x"]}]
    p, announced = run("okx", assets, [good, *bad])
    assert_levels(p.books["BTC"], [(8444.0, 0.04)], [(8446.0, 0.95)])
    assert p.errors[("depth", "bad_levels")] == 3 and p.errors[("depth", "no_data")] == 1
    assert len(announced) == 1


# ------------------------------------------------------------------------------------------ BitMEX


def orderbook10(action, rows, **extra):
    return {"table": "orderBook10", "action": action, **extra, "data": rows}


def test_bitmex_orderbook10_partial_then_updates_replace_and_convert():
    assets = market("bitmex", BTC=("XBTUSD", True, 1.0), ETH=("ETHUSDT", False, 0.001))
    partial = orderbook10("partial", [{"symbol": "XBTUSD", "bids": [[50000, 100000], [49999.5, 5000]],
                                       "asks": [[50000.5, 20000]], "timestamp": "2024-01-02T03:04:05.678Z"}],
                          keys=["symbol"], filter={"symbol": "XBTUSD"})
    update = orderbook10("update", [{"symbol": "XBTUSD", "bids": [[49990, 49990]],
                                     "timestamp": "2024-01-02T03:04:06.000Z", "asks": [[50010, 100020]]}])
    eth = orderbook10("update", [{"symbol": "ETHUSDT", "bids": [[2000, 1000]], "asks": [[2001, 2500]],
                                  "timestamp": "2024-01-02T03:04:06.000Z"}])
    p, announced = run("bitmex", assets, [partial])
    # XBTUSD: 1 USD per contract → coins = size / price: 100000/50000 = 2, 5000/49999.5, 20000/50000.5
    assert_levels(p.books["BTC"], [(50000.0, 2.0), (49999.5, 5000 / 49999.5)], [(50000.5, 20000 / 50000.5)])
    assert p.books["BTC"].ts == pytest.approx(1704164645.678)
    p, announced = run("bitmex", assets, [partial, update, eth])
    assert_levels(p.books["BTC"], [(49990.0, 1.0)], [(50010.0, 2.0)])
    # ETHUSDT linear, 0.001 ETH per contract: 1000 → 1.0, 2500 → 2.5
    assert_levels(p.books["ETH"], [(2000.0, 1.0)], [(2001.0, 2.5)])
    assert [a for a, _, _ in announced] == ["BTC", "BTC", "ETH"] and not p.errors


def test_bitmex_malformed_orderbook10_counted_not_fatal():
    assets = market("bitmex", BTC=("XBTUSD", True, 1.0))
    good = orderbook10("update", [{"symbol": "XBTUSD", "bids": [[50000, 100000]], "asks": [[50001, 50001]]}])
    bad = [orderbook10("update", [{"symbol": "XBTUSD", "bids": [[50000, "x"]], "asks": []}]),
           orderbook10("update", [{"symbol": "XBTUSD", "bids": []}]),
           orderbook10("update", [{"bids": [], "asks": []}]),
           {"table": "orderBook10", "action": "update", "data": "nope"}]
    p, announced = run("bitmex", assets, [good, *bad])
    assert_levels(p.books["BTC"], [(50000.0, 2.0)], [(50001.0, 1.0)])
    assert p.errors[("depth", "bad_levels")] == 2
    assert p.errors[("depth", "no_symbol")] == 1 and p.errors[("depth", "no_data")] == 1
    assert len(announced) == 1


# ----------------------------------------------------------------------------------------- Deribit


def grouped(inst, bids, asks, ts=1653983481909, change_id=45176552517):
    return {"jsonrpc": "2.0", "method": "subscription",
            "params": {"channel": f"book.{inst}.none.20.100ms",
                       "data": {"timestamp": ts, "instrument_name": inst, "change_id": change_id,
                                "bids": bids, "asks": asks}}}


def test_deribit_grouped_book_snapshots_replace_and_convert():
    assets = market("deribit", BTC=("BTC-PERPETUAL", True, 10.0), SOL=("SOL_USDC-PERPETUAL", False, 1.0))
    first = grouped("BTC-PERPETUAL", [[50000.0, 100000.0], [49999.5, 10.0]], [[50000.5, 50000.5]])
    second = grouped("BTC-PERPETUAL", [[49000.0, 49000.0]], [[49001.0, 98002.0], [49002.0, 24501.0]],
                     ts=1653983482009, change_id=45176552600)
    sol = grouped("SOL_USDC-PERPETUAL", [[150.0, 3.0]], [[150.1, 0.5]])
    p, announced = run("deribit", assets, [first])
    # inverse: amounts are USD → coins = amount / price: 100000/50000 = 2, 10/49999.5, 50000.5/50000.5 = 1
    assert_levels(p.books["BTC"], [(50000.0, 2.0), (49999.5, 10 / 49999.5)], [(50000.5, 1.0)])
    assert p.books["BTC"].ts == pytest.approx(1653983481.909)
    p, announced = run("deribit", assets, [first, second, sol])
    assert_levels(p.books["BTC"], [(49000.0, 1.0)], [(49001.0, 2.0), (49002.0, 0.5)])
    # linear USDC perpetual: amounts are coins already
    assert_levels(p.books["SOL"], [(150.0, 3.0)], [(150.1, 0.5)])
    assert [a for a, _, _ in announced] == ["BTC", "BTC", "SOL"] and not p.errors


def test_deribit_malformed_grouped_book_counted_not_fatal_and_full_book_unaffected():
    assets = market("deribit", BTC=("BTC-PERPETUAL", True, 10.0))
    good = grouped("BTC-PERPETUAL", [[50000.0, 100000.0]], [[50001.0, 50001.0]])
    bad = [grouped("BTC-PERPETUAL", [["new", 50000.0, 1.0]], []),  # a change-style level on a grouped channel
           grouped("BTC-PERPETUAL", "x", []),
           {"jsonrpc": "2.0", "method": "subscription",
            "params": {"channel": "book.BTC-PERPETUAL.none.20.100ms", "data": None}}]
    p, announced = run("deribit", assets, [good, *bad])
    assert_levels(p.books["BTC"], [(50000.0, 2.0)], [(50001.0, 1.0)])
    assert p.errors[("depth", "bad_levels")] == 2 and p.errors[("depth", "no_data")] == 1
    # the full 100ms book (change tuples) still goes through its own sequenced path
    full = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "book.BTC-PERPETUAL.100ms", "data": {
        "type": "snapshot", "timestamp": 1, "instrument_name": "BTC-PERPETUAL", "change_id": 7,
        "bids": [["new", 40000.0, 40000.0]], "asks": [["new", 40001.0, 80002.0]]}}}
    p, _ = run("deribit", assets, [full], channels=("book",))
    assert_levels(p.books["BTC"], [(40000.0, 1.0)], [(40001.0, 2.0)])
    assert not p.errors


# ------------------------------------------------------------------------------------ replay routing

REPLAY = {  # venue → (assets, one light-depth frame, expected (bids, asks)) — all hand-checked above
    "binance": (dict(BTC=("BTCUSDT", False, 1.0)),
                wrap("btcusdt@depth20@500ms", dict(BINANCE_PARTIAL, b=[["7404.00", "1.000"]], a=[["7406.00", "2.0"]])),
                ([(7404.0, 1.0)], [(7406.0, 2.0)])),
    "bybit": (dict(BTC=("BTCPERP", False, 1.0)), None, ([(28555.20, 0.597)], [(28555.30, 0.225)])),
    "okx": (dict(BTC=("BTC-USDT-SWAP", False, 0.01)),
            okx_books5("BTC-USDT-SWAP", [["8446", "95", "0", "3"]], [["8444", "4", "0", "1"]]),
            ([(8444.0, 0.04)], [(8446.0, 0.95)])),
    "bitmex": (dict(BTC=("XBTUSD", True, 1.0)),
               orderbook10("update", [{"symbol": "XBTUSD", "bids": [[50000, 100000]], "asks": [[50001, 50001]]}]),
               ([(50000.0, 2.0)], [(50001.0, 1.0)])),
    "deribit": (dict(BTC=("BTC-PERPETUAL", True, 10.0)),
                grouped("BTC-PERPETUAL", [[50000.0, 100000.0]], [[50001.0, 50001.0]]),
                ([(50000.0, 2.0)], [(50001.0, 1.0)])),
}


@pytest.mark.parametrize("venue", VENUES)
def test_light_depth_frames_replay_through_the_default_parser(venue):
    """``liqmap replay`` builds FrameParser with the default kinds (no "depth"): a recording of the
    collector's light feeds must still land in the books."""
    spec, frame, (bids, asks) = REPLAY[venue]
    if frame is None:
        frame = bybit_book_lines()[0]
    col = Collector()
    parser = FrameParser(venue, market(venue, **spec), col)  # channels = ALL_KINDS
    asyncio.run(parser.feed(frame if isinstance(frame, str) else orjson.dumps(frame).decode(), 1.7e9))
    assert_levels(parser.books["BTC"], bids, asks)
    assert not parser.errors


def okx_books(action, inst, asks, bids, seq, prev, checksum=0, ts="1597026383085"):
    return {"arg": {"channel": "books", "instId": inst}, "action": action,
            "data": [{"asks": asks, "bids": bids, "ts": ts, "checksum": checksum, "seqId": seq, "prevSeqId": prev}]}


def test_okx_books_with_todays_zero_checksum_apply_and_a_sequence_gap_is_caught():
    """OKX fills ``checksum`` with 0 since 2026-06-23: every push used to fail the check. Continuity is
    checked on seqId/prevSeqId instead."""
    assets = market("okx", BTC=("BTC-USDT-SWAP", False, 0.01))
    snap = okx_books("snapshot", "BTC-USDT-SWAP", [["8446", "95", "0", "3"]], [["8444", "4", "0", "1"]], 100, -1)
    upd = okx_books("update", "BTC-USDT-SWAP", [["8446", "0", "0", "0"], ["8447", "10", "0", "1"]],
                    [["8445", "3", "0", "1"]], 101, 100)
    p, _ = run("okx", assets, [snap, upd], channels=("book",))
    assert not p.errors, p.errors
    assert_levels(p.books["BTC"], [(8445.0, 0.03), (8444.0, 0.04)], [(8447.0, 0.1)])
    gap = okx_books("update", "BTC-USDT-SWAP", [["8448", "5", "0", "1"]], [], 105, 103)  # 102-104 lost
    after = okx_books("update", "BTC-USDT-SWAP", [["8449", "5", "0", "1"]], [], 106, 105)
    p, _ = run("okx", assets, [snap, upd, gap, after], channels=("book",))
    assert sum(n for k, n in p.errors.items() if "sequence_gap" in str(k)) == 1
    assert sum(n for k, n in p.errors.items() if "update_before_snapshot" in str(k)) == 1  # until a snapshot

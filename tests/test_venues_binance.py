"""Binance USD-M on the real hftbacktest BTCUSDT recording (2024-08-08, ~94k frames).

The book is rebuilt by the adapter from the recording's REST snapshot with the U/u/pu sequencing and
compared with an independent reconstruction written here with plain dicts; trades are counted exactly.
"""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from liqmap.core.events import ASK, BID, BUY, SELL
from liqmap.feeds.parser import FrameParser
from venue_helpers import REAL, Collector, market

RECORDING = REAL / "binance-usdm" / "hftbacktest_usdm_btcusdt_20240808.gz"


def recording_lines() -> list[tuple[float, str]]:
    out = []
    with gzip.open(RECORDING, "rt") as f:
        for line in f:
            ns, _, body = line.partition(" ")
            out.append((int(ns) / 1e9, body.rstrip("\n")))
    return out


def independent_book(lines):
    """Plain-dict reconstruction following Binance's documented futures procedure."""
    diffs, snapshot = [], None
    for _, body in lines:
        m = json.loads(body)
        if "lastUpdateId" in m:
            snapshot = m
        elif m.get("data", {}).get("e") == "depthUpdate":
            diffs.append(m["data"])
    bids = {float(p): float(q) for p, q in snapshot["bids"] if float(q)}
    asks = {float(p): float(q) for p, q in snapshot["asks"] if float(q)}
    last, applied = snapshot["lastUpdateId"], 0
    for d in diffs:
        if d["u"] < last:
            continue
        if applied == 0:
            assert d["U"] <= last <= d["u"]
        else:
            assert d["pu"] == last, "the recording has no gaps"
        for side, book in (("b", bids), ("a", asks)):
            for p, q in d[side]:
                if float(q):
                    book[float(p)] = float(q)
                else:
                    book.pop(float(p), None)
        last, applied = d["u"], applied + 1
    return bids, asks, applied


def run(lines, extra=()):
    col = Collector()
    parser = FrameParser("binance", market("binance", BTC=("BTCUSDT", False, 1.0)), col)

    async def go():
        for ts, body in lines:
            await parser.feed(body, ts)
        for body in extra:
            await parser.feed(body, 1.8e9)

    asyncio.run(go())
    return parser, col


@pytest.fixture(scope="module")
def lines():
    return recording_lines()


@pytest.fixture(scope="module")
def parsed(lines):
    return run(lines)


def test_book_matches_independent_reconstruction(lines, parsed):
    parser, _ = parsed
    bids, asks, applied = independent_book(lines)
    book = parser.books["BTC"]
    assert applied > 6000
    assert book.bids == bids
    assert book.asks == asks
    bp, _ = book.levels(BID, 5)
    ap, _ = book.levels(ASK, 5)
    assert bp[0] == max(bids) and ap[0] == min(asks) and bp[0] < ap[0]
    assert not parser.errors


def test_trades_counted_exactly(lines, parsed):
    parser, col = parsed
    expected = [json.loads(b)["data"] for _, b in lines if '"@trade"' in b or "@trade\"" in b]
    expected = [d for d in expected if d.get("e") == "trade"]
    trades = col.get("trade", "BTC")
    assert len(expected) == 21313 == len(trades)
    assert trades["qty"].sum() == pytest.approx(sum(float(d["q"]) for d in expected))
    assert (trades["side"] == SELL).sum() == sum(1 for d in expected if d["m"])
    assert (trades["side"] == BUY).sum() == sum(1 for d in expected if not d["m"])
    assert trades["ts"][0] == pytest.approx(expected[0]["T"] / 1000)
    assert parser.stats["ignored"] == 66089  # bookTicker frames, parsed and deliberately unused


def test_garbage_counted_not_fatal_and_replays_dropped(lines):
    head = lines[:400]
    trade_frames = [b for _, b in head if "@trade" in b]
    garbage = ["garbage", "{", "[]", "null", b"\xff\xfe\x00",
               '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}',
               '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT"}}}']
    parser, col = run(head, extra=garbage + trade_frames)  # the trades again, as after a reconnect
    assert sum(parser.errors.values()) == len(garbage)
    assert len(col.get("trade", "BTC")) == len(trade_frames)  # replayed trade ids dropped
    assert parser.stats["duplicates"] == len(trade_frames)


def test_sequence_gap_stops_applying_until_resync(lines):
    depth = [i for i, (_, b) in enumerate(lines) if "depthUpdate" in b]
    cut = depth[len(depth) // 4]
    part = lines[:cut + 3000]
    parser, _ = run(part[:cut] + part[cut + 1:])  # lose one diff
    assert parser.errors[("book", "sequence_gap")] == 1
    bids, asks, _ = independent_book(part)
    book = parser.books["BTC"]
    assert (book.bids, book.asks) != (bids, asks)  # it did not silently carry on as if complete

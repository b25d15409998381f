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


def _generic(monkeypatch):
    """The parser without its typed decoders (every frame decoded to dicts, numbers read with ``float``)."""
    from liqmap.feeds.venues import binance

    kind = binance.BinanceFeed._stream_kind
    monkeypatch.setattr(binance.BinanceFeed, "_stream_kind",
                        lambda self, name: binance._UNUSED if kind(self, name) == binance._UNUSED else 0)


def test_typed_decoders_read_the_recording_exactly_as_the_generic_path(lines, parsed, monkeypatch):
    """Trades and depth are decoded by msgspec straight to floats (issue 19: the ``float()`` of every level was
    two thirds of a depth frame). Same rows, same book, same counters as decoding to dicts — bit for bit."""
    parser, col = parsed
    _generic(monkeypatch)
    g_parser, g_col = run(lines)
    assert parser.venue_feed._unused  # the typed path ran (stream kinds memoized) ...
    assert parser.stats["book_frames"] == g_parser.stats["book_frames"] > 6000
    t, g = col.get("trade", "BTC"), g_col.get("trade", "BTC")
    assert len(t) == len(g) == 21313 and (t == g).all()
    assert parser.books["BTC"].bids == g_parser.books["BTC"].bids
    assert parser.books["BTC"].asks == g_parser.books["BTC"].asks
    assert dict(parser.stats) == dict(g_parser.stats) and not parser.errors and not g_parser.errors


BAD_TYPED = [  # frames on the typed streams that are not the documented shape
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1723161256322,"s":"BTCUSDT","p":"61800.30","q":"0.006","m":false}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1723161256322,"s":"BTCUSDT","t":1,"p":"abc","q":"0.006","m":false}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1723161256322,"s":"BTCUSDT","t":2,"p":"61800.30","q":null,"m":false}}',
    # the real 2019 aggTrade shape of the tardis fixtures: no aggregate id "a"
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1568693103463,"s":"BTCUSDT","p":"10223.74","q":"0.236","f":181349,"l":181349,"T":1568693103463,"m":false}}',
    '{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","2","3"]],"a":[]}}',
    '{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":"x","a":[]}}',
    '{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1}}',
    '{"stream":"btcusdt@depth@0ms",',
]


def test_frames_the_typed_decoders_refuse_are_read_or_refused_as_before(lines, monkeypatch):
    """A frame the typed decoder refuses goes the generic way: read if it can be (a depth level with a third
    value), otherwise counted under the same error, and nothing already parsed is lost."""
    head = lines[:2000]
    typed, t_col = run(head, extra=BAD_TYPED)
    _generic(monkeypatch)
    generic, g_col = run(head, extra=BAD_TYPED)
    assert typed.errors == generic.errors and sum(typed.errors.values()) >= 5
    assert (t_col.get("trade", "BTC") == g_col.get("trade", "BTC")).all()
    assert typed.books["BTC"].bids == generic.books["BTC"].bids


def test_agg_trades_are_read_typed_with_the_aggregate_id_as_the_key():
    """``<sym>@aggTrade`` as Binance documents it today (e, E, s, a, p, q, f, l, T, m): one row per aggregate,
    the aggregate id the dedup key (a replay after a reconnect adds nothing)."""
    frame = ('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1723161256323,"s":"BTCUSDT","a":%d,'
             '"p":"61800.30","q":"0.250","f":100,"l":105,"T":1723161256322,"m":true}}')
    frames = [(1723161256.4, frame % 5933014), (1723161256.5, frame % 5933015), (1723161256.6, frame % 5933014)]
    parser, col = run(frames)
    rows = col.get("trade", "BTC")
    assert len(rows) == 2 and parser.stats["duplicates"] == 1 and not parser.errors
    assert rows["price"][0] == 61800.30 and rows["qty"][0] == 0.25 and (rows["side"] == SELL).all()
    assert rows["ts"][0] == 1723161256.322


def test_typed_frames_are_screened_before_they_are_decoded(lines):
    """The typed streams are read without ``VenueFeed.parse`` in between (issue 19: two call layers fewer a
    frame), but its screening still comes first: a well-formed trade frame over ``MAX_FRAME_BYTES`` (padded
    with JSON whitespace, so msgspec alone would read it) and one spelling its price in full-width digits are
    refused and named, and the frames around them are read."""
    from liqmap.feeds.venues.binance import BinanceFeed

    trade = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1799999999900,"s":"BTCUSDT","t":%d,'
             '"p":"%s","q":"0.006","m":false%s}}')
    big = trade % (91, "61800.30", " " * (BinanceFeed.MAX_FRAME_BYTES + 1))
    wide = trade % (92, "６１８００.30", "")
    head = lines[:2000]
    base, base_col = run(head)
    parser, col = run(head, extra=[big, wide, trade % (93, "61800.30", "")])
    assert parser.errors[("frame", "too_large")] == 1 and parser.errors[("frame", "non_ascii_number")] == 1
    assert sum(parser.errors.values()) == 2
    assert parser.stats["frames"] == base.stats["frames"] + 3
    assert len(col.get("trade", "BTC")) == len(base_col.get("trade", "BTC")) + 1

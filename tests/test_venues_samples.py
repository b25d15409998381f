"""The cryptofeed BitMEX and OKX raw-data samples through the adapters, books checked independently."""

from __future__ import annotations

import asyncio
import json

import pytest

from liqmap.core.assets import Asset, VenueMarket
from liqmap.feeds.parser import FrameParser
from venue_helpers import REAL, Collector, cryptofeed_sample_lines, market

BITMEX = REAL / "bitmex" / "cryptofeed_sample_BITMEX.ws.1.0"
OKX = REAL / "okx" / "cryptofeed_sample_OKX.ws.1.0"


def run(venue, assets, lines):
    col = Collector()
    books_seen = []
    parser = FrameParser(venue, assets, col, book_sink=lambda a, v, b: books_seen.append((a, v)))

    async def go():
        for ts, body in lines:
            await parser.feed(body, ts)

    asyncio.run(go())
    return parser, col, books_seen


def test_bitmex_l2_with_id_to_price_map():
    lines = cryptofeed_sample_lines(BITMEX)
    assets = market("bitmex", BTC=("XBTUSD", True, 1.0), ADA=("ADAUSDT", False, 1.0), BCH=("BCHUSD", True, 1.0))
    parser, col, seen = run("bitmex", assets, lines)
    assert not parser.errors
    # independent: id → (side, price, size) per symbol, updates/deletes located by id alone
    levels: dict[str, dict[int, list]] = {}
    for _, body in lines:
        m = json.loads(body)
        if m.get("table") != "orderBookL2":
            continue
        for r in m["data"]:
            book = levels.setdefault(r["symbol"], {})
            if m["action"] in ("partial", "insert"):
                book[r["id"]] = [r["side"], r["price"], r["size"]]
            elif m["action"] == "update":
                assert "price" not in r  # the 2021 capture: update rows carry no price
                book[r["id"]][2] = r["size"]
            else:
                del book[r["id"]]
    for asset, sym, inverse in (("BTC", "XBTUSD", True), ("ADA", "ADAUSDT", False), ("BCH", "BCHUSD", True)):
        want_b = {p: (s / p if inverse else s) for side, p, s in levels[sym].values() if side == "Buy"}
        want_a = {p: (s / p if inverse else s) for side, p, s in levels[sym].values() if side == "Sell"}
        book = parser.books[asset]
        assert book.bids == pytest.approx(want_b) and book.asks == pytest.approx(want_a)
        assert book.best_bid() < book.best_ask()
    assert len(levels["XBTUSD"]) > 500
    trades = col.get("trade", "BTC")
    msgs = [json.loads(b) for _, b in lines]
    raw = [r for m in msgs if m.get("table") == "trade" for r in m["data"] if r.get("symbol") == "XBTUSD"]
    assert len(trades) == len(raw) > 0
    # XBTUSD: homeNotional is BTC, foreignNotional USD
    assert trades["qty"].sum() == pytest.approx(sum(r["homeNotional"] for r in raw))
    assert trades["usd"].sum() == pytest.approx(sum(r["foreignNotional"] for r in raw))


def test_okx_books_and_trades():
    lines = cryptofeed_sample_lines(OKX)
    assets = {
        "UNI": Asset("UNI", 5.0, 0.001, {"okx": VenueMarket("UNI-USD-SWAP", True, 10.0)}),
        "BTCF": Asset("BTCF", 3e4, 0.1, {"okx": VenueMarket("BTC-USD-220527", True, 100.0)}),
        "BTCS": Asset("BTCS", 3e4, 0.1, {"okx": VenueMarket("BTC-USDT", False, 1.0)}),
    }
    parser, col, seen = run("okx", assets, lines)
    assert not parser.errors
    want: dict[str, dict[str, dict[float, float]]] = {}
    for _, body in lines:
        m = json.loads(body)
        if m.get("arg", {}).get("channel") != "books" or "data" not in m:
            continue
        inst = m["arg"]["instId"]
        if m["action"] == "snapshot":
            want[inst] = {"bids": {}, "asks": {}}
        for side in ("bids", "asks"):
            for p, q, *_ in m["data"][0][side]:
                if float(q):
                    want[inst][side][float(p)] = float(q)
                else:
                    want[inst][side].pop(float(p), None)
    for asset, inst, cs, inverse in (("UNI", "UNI-USD-SWAP", 10.0, True), ("BTCF", "BTC-USD-220527", 100.0, True),
                                     ("BTCS", "BTC-USDT", 1.0, False)):
        conv = (lambda p, q: q * cs / p) if inverse else (lambda p, q: q * cs)
        book = parser.books[asset]
        assert book.bids == pytest.approx({p: conv(p, q) for p, q in want[inst]["bids"].items()})
        assert book.asks == pytest.approx({p: conv(p, q) for p, q in want[inst]["asks"].items()})
        assert book.best_bid() < book.best_ask()
    assert len(col.get("trade", "BTCS")) == 69
    assert len(col.get("trade", "BTCF")) == 4
    uni = col.get("trade", "UNI")
    raw = [json.loads(b) for _, b in lines if '"trades","instId":"UNI' in b and '"data"' in b]
    assert len(uni) == 1 and uni["usd"][0] == pytest.approx(float(raw[0]["data"][0]["sz"]) * 10.0)  # 10 USD each
    assert ("UNI", "okx") in seen


def test_okx_checksums_verified_on_real_frames_and_corruption_detected():
    lines = cryptofeed_sample_lines(OKX)
    assets = {"UNI": Asset("UNI", 5.0, 0.001, {"okx": VenueMarket("UNI-USD-SWAP", True, 10.0)})}
    parser, _, _ = run("okx", assets, lines)
    n_books = sum(1 for _, b in lines if '"books","instId":"UNI-USD-SWAP"' in b and '"checksum"' in b)
    assert n_books == 93 and parser.stats["checksum_ok"] == n_books and not parser.errors
    # change one size in the 10th update: the CRC32 no longer matches, the book is no longer trusted
    hit = [i for i, (_, b) in enumerate(lines) if '"books","instId":"UNI-USD-SWAP"' in b and '"update"' in b][9]
    m = json.loads(lines[hit][1])
    side = "asks" if m["data"][0]["asks"] else "bids"
    m["data"][0][side][0][1] = str(float(m["data"][0][side][0][1]) + 1)
    bad = lines[:hit] + [(lines[hit][0], json.dumps(m))] + lines[hit + 1:]
    parser, _, _ = run("okx", assets, bad)
    assert parser.errors[("book", "checksum_mismatch")] == 1
    assert parser.errors[("book", "update_before_snapshot")] > 0  # later updates wait for a new snapshot

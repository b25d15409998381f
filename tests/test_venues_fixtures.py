"""Every liquidation and open-interest message in the tardis-node fixtures, for all five venues.

Expected values are worked out by hand from the raw numbers in each message (see the comments); the
rows come from the real venue feed classes driven through FrameParser. Messages from retired APIs
(OKEx v3 ``futures/*``/``swap/*`` tables, Bybit v2 ``instrument_info``) and Deribit options/combos (not
perpetuals, not in liqmap's universe) are asserted to be ignored/filtered, not silently mis-parsed.
"""

from __future__ import annotations

import json

import pytest

from liqmap.core.events import LONG, PRICE_BANKRUPTCY, PRICE_FILL, PRICE_ORDER, SHORT, VENUE_ID
from venue_helpers import fixture_lines, market
from venue_helpers import parse_lines as _parse_lines


def parse_lines(*args, **kw):
    """The fixture files mix messages from 2019-2023 with no receipt times: no exchange-clock check."""
    return _parse_lines(*args, clock_check=False, **kw)

approx = pytest.approx


def one(rows, i=0):
    return {k: rows[k][i].item() for k in rows.dtype.names}


def test_binance_force_order_and_open_interest():
    assets = market("binance", BTC=("BTCUSDT", False, 1.0), ETH=("ETHUSDT", False, 1.0))
    p, col = parse_lines("binance", assets, fixture_lines("binance_futures_messages.jsonl"))
    liq = col.get("liq", "BTC")
    assert len(liq) == 1
    r = one(liq)
    # {"S":"BUY","q":"0.014","p":"4793.91","ap":"4706.04","z":"0.014","T":1584059031421}: a forced BUY closes a short
    assert r["side"] == SHORT
    assert r["price"] == approx(4706.04) and r["price_kind"] == PRICE_FILL  # average fill, not order price
    assert r["qty"] == approx(0.014) and r["usd"] == approx(0.014 * 4706.04)
    assert r["ts"] == approx(1584059031.421) and r["venue"] == VENUE_ID["binance"]
    oi = col.get("oi", "BTC")
    assert len(oi) == 1
    o = one(oi)
    # generated REST body {"openInterest":"26286.181"}; last BTCUSDT trade before it was 7627.60
    assert o["oi"] == approx(26286.181) and o["mark"] == approx(7627.60)
    assert o["oi_usd"] == approx(26286.181 * 7627.60)
    # @trade rows 4 and 11 (ours) and ETH row 10; row 1's aggTrade goes through cryptofeed's parser, and
    # tardis's copy of it lacks the aggregate id "a": counted and dropped, not guessed
    assert len(col.get("trade", "BTC")) == 2 and len(col.get("trade", "ETH")) == 1
    assert p.errors[("frame", "KeyError")] == 1


def test_bybit_liquidations_all_variants_flip_position_side():
    assets = market("bybit", BTC=("BTCUSD", True, 1.0), ETH=("ETHUSD", True, 1.0), XRP=("XRPUSD", True, 1.0),
                    BTCT=("BTCUSDT", False, 1.0), GALA=("GALAUSDT", False, 1.0),
                    PIPPIN=("PIPPINUSDT", False, 1.0), BTCU23=("BTCUSDU23", True, 1.0))
    p, col = parse_lines("bybit", assets, fixture_lines("bybit_messages.jsonl"))
    assert not p.errors
    btc = col.get("liq", "BTC")
    # row 25 (v2 generated list): Sell 836 @ 23216; row 29: three Buy; row 31: Sell 2329 @ 45171 (inverse: qty = USD)
    assert list(btc["side"]) == [SHORT, LONG, LONG, LONG, SHORT]
    assert list(btc["usd"]) == approx([836, 1257079, 2314, 650, 2329])
    assert list(btc["price"]) == approx([23216, 44662.5, 44593, 44598, 45171])
    assert list(btc["qty"]) == approx([836 / 23216, 1257079 / 44662.5, 2314 / 44593, 650 / 44598, 2329 / 45171])
    assert (btc["price_kind"] == PRICE_BANKRUPTCY).all()
    assert btc["ts"][0] == approx(1608280339.753)
    eth = one(col.get("liq", "ETH"))  # row 30: Sell 3655 USD @ 3384.15
    assert eth["side"] == SHORT and eth["usd"] == approx(3655) and eth["qty"] == approx(3655 / 3384.15)
    btct = one(col.get("liq", "BTCT"))  # row 32 linear: Sell 0.009 @ 45212.5
    assert btct["side"] == SHORT and btct["qty"] == approx(0.009) and btct["usd"] == approx(0.009 * 45212.5)
    gala = one(col.get("liq", "GALA"))  # row 50 v5 deprecated object: Buy = long liquidated, size 1637
    assert gala["side"] == LONG and gala["qty"] == approx(1637) and gala["price"] == approx(0.03803)
    assert gala["usd"] == approx(1637 * 0.03803) and gala["ts"] == approx(1673251091.822)
    xrp = one(col.get("liq", "XRP"))  # row 51 inverse: Sell 6949 USD @ 0.5149
    assert xrp["side"] == SHORT and xrp["usd"] == approx(6949) and xrp["qty"] == approx(6949 / 0.5149)
    pip = one(col.get("liq", "PIPPIN"))  # row 53 allLiquidation list: S=Sell (a short), v 2846 @ 0.02456
    assert pip["side"] == SHORT and pip["qty"] == approx(2846) and pip["usd"] == approx(2846 * 0.02456)
    assert pip["ts"] == approx(1740480207.110)


def test_bybit_open_interest_snapshot_and_delta():
    assets = market("bybit", BTC=("BTCUSD", True, 1.0), BTCT=("BTCUSDT", False, 1.0),
                    BTCU23=("BTCUSDU23", True, 1.0))
    p, col = parse_lines("bybit", assets, fixture_lines("bybit_messages.jsonl"))
    btc = col.get("oi", "BTC")
    # Bybit's openInterest counts both sides (a long and its short): one side is half of it.
    # row 45 snapshot: openInterest 449736676 USD (inverse), markPrice 28560; row 46 delta: 449736674, mark kept
    assert list(btc["oi_usd"]) == approx([449736676 / 2, 449736674 / 2])
    assert list(btc["oi"]) == approx([449736676 / 2 / 28560, 449736674 / 2 / 28560])
    assert list(btc["ts"]) == approx([1680673822.577, 1680673822.776])
    u23 = one(col.get("oi", "BTCU23"))  # row 47; row 48's delta has no openInterest → no second row
    assert len(col.get("oi", "BTCU23")) == 1
    assert u23["oi_usd"] == approx(4547176 / 2) and u23["mark"] == approx(29023.60)
    t = one(col.get("oi", "BTCT"))  # row 49 linear: 52774.528 BTC, openInterestValue 1506861070.82 USD, two-sided
    assert t["oi"] == approx(52774.528 / 2) and t["oi_usd"] == approx(1506861070.82 / 2)
    assert t["mark"] == approx(28552.81)
    # rows 2, 22, 37, 38 are Bybit v2 instrument_info (retired): ignored, not parsed
    assert p.stats["ignored"] >= 4



def test_bybit_single_open_interest_read_when_present():
    """Row 49's real ticker in today's shape: Bybit added singleOpenInterest(Value) (one side) beside the
    two-sided openInterest(Value); the one-sided figures are read as they are, never halved again, and a
    delta carrying only the one-sided field still makes a sample."""
    assets = market("bybit", BTCT=("BTCUSDT", False, 1.0))
    line = next(ln for ln in fixture_lines("bybit_messages.jsonl") if ln.startswith('{"topic":"tickers.BTCUSDT"'))
    row = json.loads(line)
    row["data"].update(singleOpenInterest="26387.264", singleOpenInterestValue="753430535.41")
    delta = {"topic": "tickers.BTCUSDT", "type": "delta", "ts": row["ts"] + 100,
             "data": {"symbol": "BTCUSDT", "singleOpenInterest": "26390", "singleOpenInterestValue": "753508000"}}
    p, col = parse_lines("bybit", assets, [json.dumps(row), json.dumps(delta)])
    oi = col.get("oi", "BTCT")
    assert list(oi["oi"]) == approx([26387.264, 26390]) and list(oi["oi_usd"]) == approx([753430535.41, 753508000])
    assert not p.errors

def test_okx_liquidations_contracts_times_ctval():
    assets = market("okx", XRPF=("XRP-USD-230929", True, 10.0), BTCF=("BTC-USD-220624", True, 100.0),
                    BTCU=("BTC-USDT-211231", False, 0.01), FIL=("FIL-USDT-220325", False, 0.1))
    cfg = {"feeds": {"okx_skip_first_liquidation": False}}
    p, col = parse_lines("okx", assets, fixture_lines("okx_futures_messages.jsonl"), cfg=cfg)
    assert not p.errors
    # row 23 (REST-shaped): posSide short, sz 12 contracts of 100 USD @ bkPx 51886.2
    f = one(col.get("liq", "BTCF"))
    assert f["side"] == SHORT and f["usd"] == approx(1200) and f["qty"] == approx(1200 / 51886.2)
    assert f["price"] == approx(51886.2) and f["price_kind"] == PRICE_BANKRUPTCY and f["ts"] == approx(1640140210.617)
    # row 24: linear, 40 contracts × 0.01 BTC @ 49674.2
    u = one(col.get("liq", "BTCU"))
    assert u["side"] == SHORT and u["qty"] == approx(0.4) and u["usd"] == approx(0.4 * 49674.2)
    # row 27 WS liquidation-orders: 39 contracts × 10 USD @ 0.55205
    x = one(col.get("liq", "XRPF"))
    assert x["side"] == SHORT and x["usd"] == approx(390) and x["qty"] == approx(390 / 0.55205)
    assert x["ts"] == approx(1680173247.614)
    # row 19 open-interest: oi 236870 contracts, oiCcy 23687 FIL; row 18 mark-price 36.232
    o = one(col.get("oi", "FIL"))
    assert o["oi"] == approx(23687) and o["mark"] == approx(36.232) and o["oi_usd"] == approx(23687 * 36.232)
    assert 236870 * 0.1 == approx(o["oi"])  # contracts × ctVal agrees with oiCcy
    # rows 1-14 are OKEx v3 tables (futures/*, retired 2021) incl. 2 generated futures/liquidation rows
    assert p.stats["ignored"] >= 14


def test_okx_swap_open_interest():
    assets = market("okx", WNCG=("WNCG-USDT-SWAP", False, 1.0))
    p, col = parse_lines("okx", assets, fixture_lines("okx_swap_messages.jsonl"))
    o = one(col.get("oi", "WNCG"))  # row 16 oi 644195 = oiCcy 644195, mark-price (row 15) 2.1729
    assert o["oi"] == approx(644195) and o["mark"] == approx(2.1729) and o["oi_usd"] == approx(644195 * 2.1729)
    assert o["ts"] == approx(1640131258.756) and o["venue"] == VENUE_ID["okx"]


def test_bitmex_liquidation_insert_delete_and_instrument_oi():
    assets = market("bitmex", BTC=("XBTUSD", True, 1.0), ETH=("ETHUSD", True, 1.0))
    lines = fixture_lines("bitmex_messages.jsonl")
    p, col = parse_lines("bitmex", assets, lines, receipt=1.7e9)
    liq = col.get("liq", "BTC")
    assert len(liq) == 1  # emitted when the order leaves the table, never twice
    r = one(liq)
    # insert Buy 9214 contracts (USD) @ 10106, then delete: a forced Buy closes a short
    assert r["side"] == SHORT and r["usd"] == approx(9214) and r["qty"] == approx(9214 / 10106)
    assert r["price"] == approx(10106) and r["price_kind"] == PRICE_ORDER
    assert r["ts"] == approx(1.7e9 + 12)  # the delete frame's receipt time (row 13, index 12)
    o = one(col.get("oi", "ETH"))
    # row 11 openInterest 58922153 contracts; price from the ETHUSD quote (row 6) mid (267.7+267.75)/2
    assert o["oi_usd"] == approx(58922153) and o["mark"] == approx(267.725)
    assert o["oi"] == approx(58922153 / 267.725)
    # row 4 is ETHM19 (an XBT-quoted future): not in the universe → filtered, no row
    assert ("oi", "ETHM19") not in col.rows


def test_deribit_liquidation_sides_and_ticker_oi():
    assets = market("deribit", BTC=("BTC-PERPETUAL", True, 10.0), ETH=("ETH-PERPETUAL", True, 1.0))
    p, col = parse_lines("deribit", assets, fixture_lines("deribit_messages.jsonl"))
    liq = col.get("liq", "BTC")
    assert len(liq) == 2
    a, b = one(liq, 0), one(liq, 1)
    # row 11: liquidation "T", direction sell: the taker's forced sell closed a long; 1120 USD @ 4469.5
    assert a["side"] == LONG and a["usd"] == approx(1120) and a["qty"] == approx(1120 / 4469.5)
    assert a["price_kind"] == PRICE_FILL and a["ts"] == approx(1584058044.032)
    # row 12: "M", direction buy: the maker (the seller) was liquidated → a long; 2500 USD @ 4458.5
    assert b["side"] == LONG and b["usd"] == approx(2500) and b["qty"] == approx(2500 / 4458.5)
    oi = col.get("oi", "BTC")
    # rows 5, 6: open_interest in USD on the inverse perpetual, mark_price 10094.1 / 8304.39
    assert list(oi["oi_usd"]) == approx([66128281, 84844461])
    assert list(oi["oi"]) == approx([66128281 / 10094.1, 84844461 / 8304.39])
    assert list(oi["mark"]) == approx([10094.1, 8304.39])
    # options/combos tickers (rows 7-10, 15-18) are not perpetuals: filtered
    assert p.stats["filtered"] >= 8
    # trades also come out of the same channel (rows 1, 11, 12: 4 trades)
    assert len(col.get("trade", "BTC")) == 4


def test_deribit_mt_emits_both_sides():
    assets = market("deribit", BTC=("BTC-PERPETUAL", True, 10.0))
    frame = ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":'
             '[{"trade_seq":1,"trade_id":"9","timestamp":1584058044032,"price":4469.5,"liquidation":"MT",'
             '"instrument_name":"BTC-PERPETUAL","direction":"buy","amount":100}]}}')
    p, col = parse_lines("deribit", assets, [frame])
    assert sorted(col.get("liq", "BTC")["side"]) == [SHORT, LONG]

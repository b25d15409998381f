"""The demo emits Hyperliquid on every asset the live venue lists (liqmap.core.assets: 61 of the 65, MKR delisted,
MANA/VET/EOS never listed), not only on BitMEX's former 25 whose simulator slot it holds: the rest come from a
shadow simulator beside each asset's (demo/market.ShadowSim), which must leave every other frame byte for byte as
it was. Simulated time only."""

import asyncio

import orjson
import pytest

import liqmap.feeds.demo.contracts as demo_contracts
from liqmap.core.assets import DEFAULT_ASSETS, universe
from liqmap.core.events import VENUE_ID
from liqmap.core.market import Market
from liqmap.feeds.demo import DemoSource, make_parsers
from liqmap.feeds.demo.clearinghouse import DemoClearinghouse
from liqmap.feeds.demo.contracts import contracts_for
from liqmap.feeds.hl_positions import parse_clearinghouse

START = 1_700_000_000.0
# BitMEX-slot assets (BTC inverse, SOL, kPEPE), shadow ones (TRX, a k-coin SHIB, a low-priced GALA) and two
# Hyperliquid does not list (MKR delisted, MANA absent)
ASSETS = ["BTC", "SOL", "PEPE", "TRX", "SHIB", "GALA", "MKR", "MANA"]


def _hl_coins(frames) -> set[str]:
    out = set()
    for f in frames:
        if f.venue != "hyperliquid":
            continue
        d = orjson.loads(f.raw).get("data")
        if isinstance(d, list):
            out.update(x["coin"] for x in d)
        elif isinstance(d, dict) and "coin" in d:
            out.add(d["coin"])
    return out


def test_hyperliquid_on_every_asset_the_live_venue_lists():
    names = list(DEFAULT_ASSETS)
    listed = {a.markets["hyperliquid"].symbol for a in universe(names).values() if "hyperliquid" in a.markets}
    assert len(listed) == 61
    src = DemoSource(assets=names, seed=1, start=START, books=False)
    slot = {n for n in names if "hyperliquid" in contracts_for(src.assets[n], 0, 1.0)}
    assert len(slot) == 25  # BitMEX's former listing: the rest are shadows
    assert {n for n in names if "hyperliquid" in src.venues_of(n)} == {
        n for n, a in src.assets.items() if "hyperliquid" in a.markets}
    assert _hl_coins(src.run_for(60)) == listed


def test_shadow_venues_leave_every_other_frame_byte_identical(monkeypatch):
    with_shadow = list(DemoSource(assets=ASSETS, seed=1, start=START).run_for(40))
    monkeypatch.setattr(demo_contracts, "SHADOW_VENUES", ())
    without = list(DemoSource(assets=ASSETS, seed=1, start=START).run_for(40))
    assert _hl_coins(with_shadow) == {"BTC", "SOL", "kPEPE", "TRX", "kSHIB", "GALA"}
    assert _hl_coins(without) == {"BTC", "SOL", "kPEPE"}
    others = [f for f in with_shadow if f.venue != "hyperliquid"]
    assert len(others) > 2000
    assert others == [f for f in without if f.venue != "hyperliquid"]
    # and Hyperliquid's own frames of the slot assets (trade ids are per coin)
    slot = ('"coin":"BTC"', '"coin":"SOL"', '"coin":"kPEPE"')
    mine = [f for f in with_shadow if f.venue == "hyperliquid" and any(c in f.raw for c in slot)]
    assert mine and mine == [f for f in without if f.venue == "hyperliquid" and any(c in f.raw for c in slot)]


def test_shadow_hyperliquid_is_deterministic_parses_cleanly_and_is_polled():
    a = DemoSource(assets=ASSETS, seed=4, start=START)
    fa = list(a.run_for(90))
    fb = list(DemoSource(assets=ASSETS, seed=4, start=START).run_for(90))
    fc = list(DemoSource(assets=ASSETS, seed=5, start=START).run_for(90))
    hl = [f for f in fa if f.venue == "hyperliquid"]
    assert hl == [f for f in fb if f.venue == "hyperliquid"]
    assert hl != [f for f in fc if f.venue == "hyperliquid"]
    market = Market(list(a.assets), clock=a.now)
    parsers = make_parsers(a, market.add)

    async def go():
        for f in fa:
            await parsers[f.venue].feed(f.raw, f.t, f.conn)

    asyncio.run(go())
    p = parsers["hyperliquid"]
    assert sum(p.errors.values()) == 0, p.errors
    assert market.rejects.total() == 0, market.rejects.counts
    vid = VENUE_ID["hyperliquid"]
    for asset in ("TRX", "SHIB", "GALA"):
        oi = market.gather("oi", asset)
        mine = oi[oi["venue"] == vid]
        assert len(mine) and mine["oi"][-1] > 0, asset
        truth = a.truth(asset)
        held = truth[truth["venue"] == vid]
        # open interest is the heavier side of the shadow's own positions, in coins
        assert mine["oi"][-1] == pytest.approx(max(held["size_base"][held["side"] > 0].sum(),
                                                   held["size_base"][held["side"] < 0].sum()), rel=1e-6)
        tr = market.gather("trade", asset)
        assert (tr["venue"] == vid).sum() > 0
    # a shadow position's wallet (named by its trades) is answered by the demo clearinghouse at its true
    # liquidation price, in the k-coin's units on the wire
    ch = DemoClearinghouse(a)
    sh = a.shadows["SHIB"]
    pos = sh.pos
    live = pos[(pos["lev"] >= 3) & (pos["liq"] > 0)][0]
    from liqmap.feeds.demo.hyperliquid import position_wallet

    wallet = position_wallet("SHIB", int(live["id"]))
    status, body, _ = ch.answer({"type": "clearinghouseState", "user": wallet})
    assert status == 200
    assert orjson.loads(body)["assetPositions"][0]["position"]["coin"] == "kSHIB"
    (got,) = parse_clearinghouse(body, wallet, a.now(), set(ASSETS))
    assert got.asset == "SHIB" and got.liq_px == pytest.approx(float(live["liq"]), rel=1e-9)

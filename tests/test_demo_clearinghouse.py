"""The demo's clearinghouseState (liqmap/feeds/demo/clearinghouse.py): the simulator's own positions in
Hyperliquid's answer shape, read by the live parser; deterministic per seed; the simulation untouched."""

import asyncio

import numpy as np
import orjson
import pytest

from liqmap.core.events import VENUE_ID
from liqmap.core.positions import PositionBook
from liqmap.feeds.demo import DemoSource
from liqmap.feeds.demo.clearinghouse import DemoClearinghouse, position_wallet
from liqmap.feeds.hl_positions import PositionPoller, parse_clearinghouse

START = 1_700_000_000.0
# Hyperliquid's contracts once the demo lists it; before that a linear venue stands in (same answer shape)
VENUE = "hyperliquid" if "hyperliquid" in VENUE_ID else "binance"
ASSETS = ["BTC", "PEPE"]


def _source(seed=5):
    src = DemoSource(None, assets=ASSETS, seed=seed, start=START, books=False)
    for _ in src.run_batches(30):
        pass
    return src


def _alive(src, asset):
    sim = src.sim(asset)
    c = sim.contracts[VENUE]
    p = sim.pos
    return c, p[p["venue"] == c.vid]


def test_answers_carry_the_simulators_true_positions():
    src = _source()
    ch = DemoClearinghouse(src, VENUE)
    c, alive = _alive(src, "BTC")
    row = alive[np.argmax(alive["qty"])]
    w = position_wallet("BTC", int(row["id"]))
    status, body, _ = ch.answer({"type": "clearinghouseState", "user": w})
    assert status == 200
    d = orjson.loads(body)
    assert set(d) >= {"assetPositions", "marginSummary", "crossMarginSummary", "withdrawable", "time"}
    ps = parse_clearinghouse(body, w, 0.0, set(ASSETS))
    btc = [p for p in ps if p.asset == "BTC"]
    assert len(btc) == 1
    p = btc[0]
    # size in base units at entry (the demo's inverse contracts converted at entry, as ground truth does)
    assert p.size == pytest.approx(float(row["side"]) * float(c.base_qty(row["qty"], row["entry"])))
    assert p.entry == pytest.approx(float(row["entry"])) and p.liq_px == pytest.approx(float(row["liq"]))
    assert p.leverage == round(float(row["lev"])) and not p.cross
    raw = d["assetPositions"][[x["position"]["coin"] for x in d["assetPositions"]].index("BTC")]["position"]
    assert isinstance(raw["szi"], str) and raw["leverage"]["type"] == "isolated"
    # a wallet the demo does not know has an empty state, and a bad request is refused
    status, body, _ = ch.answer({"type": "clearinghouseState", "user": "0x" + "f" * 40})
    assert orjson.loads(body)["assetPositions"] == []
    assert ch.answer({"type": "meta"})[0] == 422


def test_k_coins_in_the_coins_units_and_one_wallet_per_position():
    src = _source()
    ch = DemoClearinghouse(src, VENUE)
    _, pepe = _alive(src, "PEPE")
    row = pepe[np.argmax(pepe["qty"])]
    w = position_wallet("PEPE", int(row["id"]))
    d = orjson.loads(ch.answer({"type": "clearinghouseState", "user": w})[1])
    assert [x["position"]["coin"] for x in d["assetPositions"]] == ["kPEPE"]
    raw = d["assetPositions"][0]["position"]
    assert float(raw["liquidationPx"]) == pytest.approx(float(row["liq"]) * 1000)  # kPEPE price: 1000 PEPE
    (p,) = parse_clearinghouse(orjson.dumps(d), w, 0.0, set(ASSETS))
    assert p.asset == "PEPE" and p.liq_px == pytest.approx(float(row["liq"]))  # back in PEPE's own units
    # the same position id in BTC is another trader
    assert position_wallet("BTC", int(row["id"])) != w


def test_deterministic_per_seed_and_the_simulation_untouched():
    a, b = _source(seed=9), _source(seed=9)
    ids = _alive(a, "BTC")[1]["id"][:50]
    ca, cb = DemoClearinghouse(a, VENUE), DemoClearinghouse(b, VENUE)
    for i in ids:
        w = position_wallet("BTC", int(i))
        assert ca.answer({"type": "clearinghouseState", "user": w}) == \
            cb.answer({"type": "clearinghouseState", "user": w})
    # b answered nothing more than a; stepping both on gives the same market
    fa = [f for f in a.run_for(20)]
    fb = [f for f in b.run_for(20)]
    assert fa == fb


async def test_the_live_poller_reads_the_demo_within_its_budget():
    src = _source()
    ch = DemoClearinghouse(src, VENUE)
    book = PositionBook()
    t = [START]

    async def sleep(dt):
        t[0] += dt
        await asyncio.sleep(0)

    poller = PositionPoller(book, ch, set(ASSETS), clock=lambda: t[0], sleep=sleep)
    _, alive = _alive(src, "BTC")
    for i in alive["id"][:400]:
        poller.on_users("BTC", (position_wallet("BTC", int(i)), position_wallet("BTC", int(i))), 1000.0, t[0])
    for _ in range(5000):
        if t[0] >= START + 60.0:
            break
        if not await poller.poll_once():
            await sleep(poller.next_wait())
    assert ch.requests == 300  # half of 1200 weight a minute at 2 each
    assert book.wallets == 300 and poller.stats.malformed == 0
    b, lo, sh = book.levels("BTC", 25.0)
    assert lo.sum() > 0 and sh.sum() > 0

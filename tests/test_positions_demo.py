"""The demo runs the Positions layer end to end: the demo's Hyperliquid trades name their wallets, the
runtime's poller discovers them through the trade parser's hook and asks the demo clearinghouse within its
budget, the engine draws the exact map with its label, detected liquidations reach the market, and the live
accuracy is on the snapshot. Simulated time only (the poller runs on the demo's clock): nothing here depends
on how fast the machine is."""

import asyncio
import copy

import pytest

from liqmap.config import DEFAULTS
from liqmap.core.events import VENUE_ID
from liqmap.feeds.demo import DemoFeed
from liqmap.feeds.demo.feed import pump
from liqmap.runtime import Runtime


@pytest.mark.skipif("hyperliquid" not in VENUE_ID, reason="until the Hyperliquid venue (branch hl) is merged")
def test_demo_feeds_the_positions_layer_and_the_live_accuracy():
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC", "ETH"], focus_extra=[])
    cfg["positions"]["accuracy_every_seconds"] = 60.0
    feed = DemoFeed(cfg, assets=["BTC", "ETH"], seed=2)
    rt = Runtime(cfg, feed)
    assert rt.positions is not None
    key = rt.engine.set_view("BTC", "positions", "1m", None, 400, None)
    poller = rt.positions.poller
    t0 = rt.clock()
    sent = []

    async def go():
        for _ in range(12):  # twelve simulated minutes
            await pump(feed.demo, rt.ingest, seconds=60.0)
            before = poller.stats.requests
            while await poller.poll_once():  # until the budget or the due wallets run out
                pass
            sent.append(poller.stats.requests - before)
            rt.ingest.flush()
            for a in ("BTC", "ETH"):
                rt.engine.ingest(a, rt.clock())
            rt.engine.build(rt.engine._screen, rt.clock(), force=True)

    asyncio.run(go())
    assert rt.clock() - t0 >= 12 * 60 - 1
    assert len(poller.ranker.wallets) > 300  # discovered from the trades' users
    assert max(sent) <= 300 and sum(sent) >= 1000  # half the budget: 300 a minute, and used
    assert poller.stats.malformed == 0 and poller.stats.rate_limited == 0
    snap = rt.engine.latest(key)
    ex = snap.reports["exact"]
    assert ex["coverage"]["wallets"] > 50 and 0 < ex["coverage"]["oi_share"] <= 1
    assert ex["label"].startswith("exact: ") and " % of HL OI, " in ex["label"] and ex["label"].endswith(" % at ≤3×")
    assert snap.grid.long.sum() > 0 and snap.grid.short.sum() > 0
    assert snap.grid.profile_long.sum() > 0
    assert ex["accuracy"]["n"] >= 1 and ex["accuracy_text"].startswith("model ")
    # every position the demo's clearinghouse returns is one the simulator holds, at its true liquidation price
    truth = feed.demo.truth("BTC")
    hl = truth[truth["venue"] == VENUE_ID["hyperliquid"]]
    liq_prices = set(round(float(x), 6) for x in hl["liq_price"])
    mine = rt.positions.book.positions("BTC")
    live = [p for p in mine if round(p.liq_px, 6) in liq_prices]
    assert len(live) >= 0.8 * len(mine)  # the rest were closed since their last poll

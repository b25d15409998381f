"""Engine side of fast switching (issue 20, item 6): a new view on screen wakes the fast loop and the UI is told
when its snapshot is built; the screen asset's other modes are background views, so a mode key finds a map."""

from __future__ import annotations

import asyncio
import copy
import time

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.engine import Engine, ring_capacities
from liqmap.core.market import Market
from liqmap.core.modes import MODES
from liqmap.core.timeframes import ORDER as TF_ORDER


def _market(assets=("BTC", "ETH")) -> tuple[dict, Market]:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["engine"]["workers"] = 1
    m = Market(list(assets), capacity=ring_capacities(cfg))
    rng = np.random.default_rng(4)
    now = time.time()
    for a in assets:
        n = 200
        rows = np.zeros(n, dtype=ev.TRADE_DTYPE)
        rows["ts"] = np.sort(rng.uniform(now - 120, now - 1, n))
        rows["price"] = 100.0 + np.cumsum(rng.normal(0, 0.01, n))
        rows["qty"] = rng.uniform(0.1, 2, n)
        rows["usd"] = rows["price"] * rows["qty"]
        rows["side"] = rng.choice([1, -1], n)
        rows["venue"] = rng.integers(0, 5, n)
        m.add("trade", a, rows)
    return cfg, m


async def _until(cond, limit: float = 300.0) -> bool:
    # (a guard against a hang, not a speed bound: under load an asset's first model warm-up can take a while)
    end = time.monotonic() + limit
    while time.monotonic() < end and not cond():
        await asyncio.sleep(0.01)
    return cond()


async def test_a_new_screen_view_is_built_at_once_and_the_ui_told():
    cfg, m = _market()
    eng = Engine(cfg, m)
    # One fast tick every ~17 minutes: within this test only a wake-up can build a second screen view.
    eng.fast_hz = 1e-3
    built: list[tuple] = []
    eng.on_screen = lambda: built.append(eng._screen.key)
    k1 = eng.set_view("BTC", "raw", "1m", None, 40, None)
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop))
    try:
        assert await _until(lambda: k1 in built)
        ticks = eng.stats["fast_ticks"]
        for asset, mode, tf in (("BTC", "synthetic", "1m"), ("BTC", "synthetic", "5m"), ("ETH", "synthetic", "5m")):
            k = eng.set_view(asset, mode, tf, None, 40, None)
            assert await _until(lambda: k in built), (asset, mode, tf)
            snap = eng.latest(k)
            assert (snap.grid.asset, snap.grid.mode, snap.grid.timeframe) == (asset, mode, tf)
        assert eng.stats["fast_ticks"] == ticks + 3  # one woken tick per new view, none idle
        # the same view again is no change: no wake-up
        eng.set_view("ETH", "synthetic", "5m", None, 40, None)
        await asyncio.sleep(0.2)
        assert eng.stats["fast_ticks"] == ticks + 3
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_screen_view_the_background_pool_already_built_is_still_published_and_the_ui_told():
    # The screen asset's other modes are background views: a mode key often lands on a view the pool built a
    # moment before, with nothing ingested since. The switch must still publish it on screen and tell the UI.
    # CI met this as a race (the pool's ingest and build fell between the fast tick's own ingest and build);
    # here a source that steps ingest itself (as a replay does) and a fixed clock make it certain.
    cfg, m = _market()
    eng = Engine(cfg, m)
    eng.fast_hz = 1e-3
    eng.ingest_by_source = True
    t = time.time()
    eng.clock = lambda: t
    k1 = eng.set_view("BTC", "raw", "1m", None, 40, None)
    for a in eng.assets:
        eng.ingest(a, t)
    eng.step(t)  # the screen view and every background view, BTC's Synthetic 1m among them
    k2 = ("BTC", "synthetic") + k1[2:]
    assert k1 in eng._latest and k2 in eng._latest and k2 in {v.key for v in eng.background_views()}
    built: list[tuple] = []
    eng.on_screen = lambda: built.append(eng._screen.key)
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop))
    try:
        assert await _until(lambda: k1 in built)
        assert eng.set_view("BTC", "synthetic", "1m", None, 40, None) == k2
        assert await _until(lambda: k2 in built)
        snap = eng.latest(k2)
        assert (snap.grid.asset, snap.grid.mode, snap.grid.timeframe) == ("BTC", "synthetic", "1m")
        # once published, a view the fast loop already built is not forced again: the back-and-forth below
        # forces each once more (each was another view's screen in between), and nothing else is rebuilt
        eng.set_view("BTC", "raw", "1m", None, 40, None)
        assert await _until(lambda: built[-1] == k1)
        assert built == [k1, k2, k1]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_background_views_hold_every_mode_of_the_screen_asset_and_every_asset_in_its_mode():
    cfg, m = _market(("BTC", "ETH", "SOL"))
    eng = Engine(cfg, m)
    scr = eng.set_view("ETH", "heatmap", "15m", None, 50, None)
    keys = {v.key for v in eng.background_views()}
    # no exact positions attached: the Positions mode is not built ahead; with them it is, like every mode
    assert not any(k[1] == "positions" for k in keys)
    from liqmap.core.positions import PositionBook

    eng.attach_positions(PositionBook())
    keys = {v.key for v in eng.background_views()}
    assert scr not in keys
    for mode in MODES:
        for tf in TF_ORDER:
            if (mode, tf) != ("heatmap", "15m"):
                assert ("ETH", mode, tf, eng._norm_venues(None), 50, None, 1) in keys
    for a in ("BTC", "SOL"):
        assert all((a, "heatmap", tf, eng._norm_venues(None), 50, None, 1) in keys for tf in TF_ORDER)
        assert not any(k[0] == a and k[1] != "heatmap" for k in keys)  # bounded: other assets in one mode
    assert len(keys) == 3 * len(TF_ORDER) + (len(MODES) - 1) * len(TF_ORDER) - 1

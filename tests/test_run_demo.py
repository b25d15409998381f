"""``liqmap --demo``'s data side (the ``Runtime`` with the ``DemoFeed``): pre-roll into the engine, the demo clock, focus on view change."""

from __future__ import annotations

import asyncio
import copy
import time
import types

import numpy as np

from liqmap.commands.run import build_runtime, build_source
from liqmap.config import DEFAULTS
from liqmap.core.market import FUTURE_TOLERANCE_S
from liqmap.ui.source import View

ASSETS = ["BTC", "ETH", "SOL", "XRP"]


def _cfg(preroll_minutes: float = 4.0, **demo) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = list(ASSETS)
    cfg["demo"].update(preroll_minutes=preroll_minutes, preroll_fill_window=False, **demo)
    cfg["engine"]["workers"] = 1
    return cfg


async def _until(cond, limit: float = 20.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def test_preroll_fills_market_and_engine_before_live_screen_asset_first():
    cfg = _cfg()
    runner = build_runtime("demo", cfg, types.SimpleNamespace(seed=5, speed=None))
    start = runner.source.demo.start
    assert runner.source.demo.pending() == ASSETS
    assert all(runner.engine.held(a) for a in ASSETS)  # the engine waits for each asset's past

    async def go():
        task = asyncio.ensure_future(runner.run())
        try:
            assert await _until(lambda: runner.source.preroll is not None and not runner.source.preroll.queue)
            assert await _until(lambda: runner.engine.version > 0)
        finally:
            await runner.stop()
            await asyncio.wait_for(task, 10)

    asyncio.run(go())
    assert runner.source.preroll.done[0] == "BTC"  # cfg app.asset: the screen asset's history first
    assert runner.source.preroll.done[1:3] == ["ETH", "SOL"]  # then universe.focus_extra
    assert not any(runner.engine.held(a) for a in ASSETS)
    assert runner.market.rejects.total() == 0
    for a in ASSETS:
        trades = runner.market.gather("trade", a)
        # history from the start of the pre-roll window, in the past of the live start
        assert trades["ts"].min() < start - 4 * 60 + 30, a
        assert (trades["ts"] < start).sum() > 10, a
    # the engine took the history at its own times: the model's 1m columns go back over the pre-roll
    st = runner.engine.state("BTC")
    assert st.rows_ingested > 100
    snap = runner.engine.build_screen(runner.clock())
    assert snap is not None and snap.grid.asset == "BTC"
    tape = st.trades["1m"].rows
    assert len(np.unique(np.floor(tape["ts"] / 60))) >= 4  # several past minutes, not one burst


def test_engine_clock_is_the_demo_clock_when_it_runs_ahead_of_the_wall_clock():
    """At ``--speed`` > 1 the simulated clock runs ahead of the wall clock; the market and the engine must take
    it as their "now" (with the wall clock, demo rows more than FUTURE_TOLERANCE_S ahead would be rejected as
    "from the future", and the engine's newest column would end before the newest data).

    The demo's own stream is written unpaced (what ``frames()`` yields at any speed, without the pacing), so the
    simulated clock ends at exactly start + AHEAD however fast or busy the machine is: nothing here is timed."""
    cfg = _cfg(preroll_minutes=0.0, tick_ms=1000)  # one asset, 1 s steps: a few seconds of work
    cfg["universe"].update(assets=["BTC"], focus_extra=[])
    runner = build_runtime("demo", cfg, types.SimpleNamespace(seed=1, speed=30.0))
    assert runner.engine.clock is runner.clock and runner.market.clock is runner.clock
    demo = runner.source.demo
    ahead = 3 * FUTURE_TOLERANCE_S  # well past the market's tolerance for clocks that run ahead

    async def go():
        await runner.source.preroll.run()  # no history to write: every asset joins the live stream at once
        for f in demo.run_for(ahead):
            await runner.ingest.push(f)
        runner.ingest.flush()

    asyncio.run(go())
    assert not runner.engine.held("BTC")
    end = demo.start + ahead
    assert demo.now() == end
    assert runner.clock() == runner.engine.clock() == runner.market.clock() == end
    # the newest rows carry simulated times more than the tolerance past the start, and none was rejected
    trades = runner.market.gather("trade", "BTC")
    assert trades["ts"].max() > demo.start + FUTURE_TOLERANCE_S
    assert runner.market.rejects.total() == 0
    # the engine builds at the simulated "now" (its own clock, no time passed in)
    snap = runner.engine.build_screen()
    assert snap is not None and snap.created == end
    last_col = snap.grid.col0 + snap.grid.shape[1] - 1
    assert last_col == int(end // snap.grid.period)  # the newest column is the simulated minute
    assert np.isfinite(snap.grid.trace[-1])  # and it holds the newest trades


def test_view_change_reaches_the_demo_focus_and_the_preroll_order():
    cfg = _cfg()
    src = build_source("demo", cfg, types.SimpleNamespace(seed=2, speed=None))
    runner = src.runner
    assert runner.source.demo.focus == {"BTC", "ETH", "SOL"}
    src.set_view(View("XRP", "hybrid", "1m", None, 60, None))
    assert runner.source.demo.focus == {"XRP", "ETH", "SOL"}  # fine ticks and full books for the screen asset
    assert runner.source.preroll.queue[0] == "XRP"  # and its history is written next
    assert runner.screen_asset == "XRP"
    src.set_view(View("ETH", "raw", "5m", None, 60, None))
    assert runner.source.demo.focus == {"ETH", "SOL"}
    assert runner.source.preroll.queue[0] == "ETH"


def test_engine_hold_keeps_its_loop_off_an_asset_until_release():
    """A held asset is ingested only by whoever holds it, at the history's own times; release makes the next
    build of its views full (closed columns written while held may have changed)."""
    from liqmap.core.engine import Engine
    from liqmap.core.market import Market
    from liqmap.feeds.demo import DemoSource, make_parsers

    start = 1_700_000_000.0
    src = DemoSource(assets=["BTC", "ETH"], seed=4, start=start, preroll=300, lazy=True)
    market = Market(["BTC", "ETH"], clock=lambda: max(src.now(), start))
    parsers = make_parsers(src, market.add)
    cfg = _cfg()
    engine = Engine(cfg, market, clock=lambda: start + 1.0)
    engine.hold(["BTC", "ETH"])
    key = engine.set_view("BTC", "synthetic", "1m", None, 40, None)

    async def feed(frames):
        for t, venue, conn, raw in frames:
            await parsers[venue].feed(raw, t, conn)

    chunks = list(src.catch_up("BTC", chunk_seconds=60))
    asyncio.run(feed(chunks[0]))
    engine.step()  # the engine's own cadence: must not take BTC at "now" while its past is being written
    assert engine.state("BTC").rows_ingested == 0
    engine.ingest("BTC", start - 240.0)  # the holder does, at the chunk's own time
    n0 = engine.state("BTC").rows_ingested
    assert n0 > 0
    engine.build_screen(start + 1.0)
    engine.build_screen(start + 2.0)
    assert engine.stats["incremental"] == 0  # held: always full
    for c in chunks[1:]:
        asyncio.run(feed(c))
    engine.release("BTC")
    assert not engine.held("BTC") and engine.held("ETH")
    snap = engine.build_screen(start + 3.0)  # not held: ingests the rest itself
    assert engine.state("BTC").rows_ingested > n0
    assert snap is not None and engine.latest(key) is snap
    engine.step(start + 4.0)
    assert engine.state("ETH").rows_ingested == 0  # still held


def test_a_failing_preroll_leaves_a_running_demo_and_says_why():
    runner = build_runtime("demo", _cfg(), types.SimpleNamespace(seed=6, speed=None))

    def broken(asset, t):
        raise RuntimeError("history writer broke")

    runner.source.preroll.on_chunk = broken

    async def go():
        task = asyncio.ensure_future(runner.run())
        try:
            assert await _until(lambda: "pre-roll stopped" in runner.engine.status)
            assert await _until(lambda: len(runner.market.gather("trade", "XRP")) > 0)
        finally:
            await runner.stop()
            await asyncio.wait_for(task, 10)

    asyncio.run(go())
    assert "history writer broke" in runner.engine.status
    assert runner.source.demo.pending() == [] and not any(runner.engine.held(a) for a in ASSETS)

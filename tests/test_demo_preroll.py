"""The demo's pre-roll: history written through the real parsers, in the past, deterministic, screen first."""

from __future__ import annotations

import asyncio
import copy

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core.market import Market
from liqmap.feeds.demo import DemoSource, make_parsers
from liqmap.feeds.ingest import Ingest
from liqmap.feeds.demo.preroll import Preroll

START = 1_700_000_000.0
PREROLL = 600.0


def _source(seed: int = 7, assets=("BTC", "ETH", "SOL")) -> DemoSource:
    return DemoSource(assets=list(assets), seed=seed, start=START, preroll=PREROLL, lazy=True, focus=["BTC"])


def test_lazy_preroll_source_starts_with_every_asset_pending_and_builds_sims_on_demand():
    src = _source()
    assert src.pending() == ["BTC", "ETH", "SOL"]
    assert src.sims == {}  # nothing simulated before it is needed (start-up)
    assert src.history_start == START - PREROLL
    assert src.step() == []  # nothing live yet: the live stream is empty, not wrong
    sim = src.sim("ETH")
    assert sim.now == START - PREROLL and list(src.sims) == ["ETH"]


def test_catch_up_writes_history_in_the_past_then_joins_the_live_stream():
    src = _source()
    chunks = list(src.catch_up("ETH", chunk_seconds=60))
    frames = [f for c in chunks for f in c]
    assert len(chunks) == PREROLL / 60
    assert src.is_live("ETH") and src.pending() == ["BTC", "SOL"]
    ts = [f[0] for f in frames]
    assert min(ts) >= START - PREROLL and max(ts) <= START + 1.0  # receipt times: history, not the future
    # through the real venue parsers into a Market whose clock is the live start: nothing rejected
    market = Market(["BTC", "ETH", "SOL"], clock=lambda: START)
    parsers = make_parsers(src, market.add)

    async def feed():
        for t, venue, conn, raw in frames:
            await parsers[venue].feed(raw, t, conn)

    asyncio.run(feed())
    assert sum(sum(p.errors.values()) for p in parsers.values()) == 0
    assert market.rejects.total() == 0
    trades = market.gather("trade", "ETH")
    oi = market.gather("oi", "ETH")
    assert len(trades) > 100 and len(oi) > 20
    # the history covers the pre-roll window: first minute to last minute
    assert trades["ts"].min() < START - PREROLL + 60 and trades["ts"].max() > START - 60
    assert set(np.unique(trades["venue"])) >= {0, 1, 2}  # several venues, each in its own shape
    assert len(market.gather("trade", "BTC")) == 0  # only the asset asked for
    # once live, the asset is stepped by the paced stream, after its history
    live = [f for _ in range(8) for f in src.step()]
    assert live and min(f[0] for f in live) > START


def test_preroll_is_deterministic_for_a_seed():
    def run(seed):
        src = _source(seed)
        return [f for name in ("BTC", "ETH") for c in src.catch_up(name) for f in c]

    a, b, c = run(7), run(7), run(8)
    assert len(a) > 200
    assert a == b
    assert a != c


def test_plain_source_unchanged_by_the_preroll_machinery():
    """Without pre-roll every asset is live from the first tick (tests, benchmarks, record, collect)."""
    src = DemoSource(assets=["BTC", "ETH"], seed=3, start=START)
    assert src.pending() == [] and src.history_start == START
    assert list(src.sims) == ["BTC", "ETH"]
    frames = list(src.run_for(5))
    assert frames and min(f[0] for f in frames) > START


def test_preroll_driver_screen_asset_first_then_the_rest_and_prioritize():
    src = _source(assets=("BTC", "ETH", "SOL", "XRP"))
    market = Market(list(src.assets), clock=lambda: max(src.now(), START))
    ingest = Ingest(None, market, src.assets)
    seen: list[tuple[str, float]] = []
    pr = Preroll(src, ingest, order=["SOL"], on_chunk=lambda a, t: seen.append((a, t)))

    def chunk_hook(asset, t):
        seen.append((asset, t))
        if asset == "SOL" and len(seen) == 3:
            pr.prioritize("XRP")  # the user switched to XRP while SOL's history was being written

    pr.on_chunk = chunk_hook
    asyncio.run(pr.run())
    order = list(dict.fromkeys(a for a, _ in seen))
    assert order == ["SOL", "XRP", "BTC", "ETH"]
    assert pr.done == ["XRP", "SOL", "BTC", "ETH"]
    for name in ("BTC", "ETH", "SOL", "XRP"):
        ts = [t for a, t in seen if a == name]
        assert ts == sorted(ts) and ts[-1] >= START  # in time order, up to the live clock
        assert src.is_live(name)
        assert market.gather("trade", name)["ts"].min() < START - PREROLL + 60
    assert pr.frames > 0 and sum(sum(p.errors.values()) for p in ingest.parsers.values()) == 0


def test_preroll_config_keys_exist():
    d = DEFAULTS["demo"]
    assert d["preroll_minutes"] >= 60
    assert d["preroll_tick_ms"] >= d["tick_ms"]


def test_chunking_never_changes_the_history():
    """A short first chunk (the screen asset's first frame) writes the same frames as plain chunks."""
    a = [f for c in _source().catch_up("BTC", 60) for f in c]
    b = [f for c in _source().catch_up("BTC", 60, first_chunk_seconds=10) for f in c]
    assert a == b and len(a) > 100


def test_live_stream_never_publishes_a_pending_assets_held_back_liquidations():
    """The venues' emitters are shared by the live stream and the pre-roll; liquidations a venue batches
    (BitMEX's open liquidation orders, Bybit's 500 ms push, Binance's 1 s window) held back during an asset's
    history must go out in that history, never with a live timestamp: one such frame moved the model's clock
    to the wall clock in the middle of the history, and every later minute of history was drawn in the live
    column (a bright live column beside a dark, frozen map)."""
    src = DemoSource(assets=["BTC", "ETH"], seed=3, start=START, preroll=1800.0, lazy=True, focus=["BTC"])
    list(src.catch_up("ETH", chunk_seconds=300))  # ETH live: the live stream runs from now on
    btc_syms = {c.symbol for c in src.sim("BTC").contracts.values()}
    live_frames, history = [], []
    for chunk in src.catch_up("BTC", chunk_seconds=60):  # BTC's history, the live stream ticking between chunks
        history.extend(chunk)
        for _ in range(3):
            live_frames.extend(src.step())
    assert live_frames and history
    leaked = [raw for ts, venue, conn, raw in live_frames if any(s in raw for s in btc_syms)]
    # once BTC is live (after its catch-up) it may appear: only the frames from before count
    assert not leaked, leaked[:2]
    # and the history carried BTC's batched liquidations itself, at history times
    liq_frames = [f for f in history if '"liquidation"' in f[3] or "forceOrder" in f[3] or "allLiquidation" in f[3]]
    assert liq_frames and max(f[0] for f in liq_frames) <= START + 1.0


def test_preroll_fills_the_start_views_window():
    """Item 4 of the levels issue: the pre-roll covers the visible window of the default view (no empty left
    quarter at 200 columns), at least the configured minutes, and never days of history on a coarse timeframe."""
    from liqmap.feeds.demo.preroll import MAX_WINDOW_PREROLL_S, preroll_seconds

    assert preroll_seconds(90.0, "1m", 200) == 200 * 60.0  # 200 columns of 1m > 90 minutes
    assert preroll_seconds(90.0, "1m", 80) == 90 * 60.0  # a narrow terminal keeps the configured minimum
    assert preroll_seconds(90.0, "4h", 200) == MAX_WINDOW_PREROLL_S
    assert preroll_seconds(90.0, "1m", 0) == 90 * 60.0
    assert preroll_seconds(90.0, "1m", 116, warmup_minutes=45.0) == (116 + 45) * 60.0  # the model warms up first
    assert preroll_seconds(90.0, "1m", 0, warmup_minutes=45.0) == 90 * 60.0  # no window asked: the minimum


def test_preroll_hands_the_loop_back_within_a_chunk(monkeypatch):
    """The app's screen, keys and live stream share the loop with the pre-roll: it must not hold the loop for a
    whole chunk (simulate + parse + ingest, ~0.3 s on a busy machine: the UI painted half a frame and sat
    there). Another task gets the loop after a chunk is simulated, while it is parsed (every SLICE_S of
    parsing; 0 here, so every frame) and before the engine ingests it — counted in turns, not timed."""
    from liqmap.feeds.demo import preroll as preroll_mod

    monkeypatch.setattr(preroll_mod, "SLICE_S", 0.0)
    src = _source(assets=("BTC",))
    market = Market(list(src.assets), clock=lambda: max(src.now(), START))
    ingest = Ingest(None, market, src.assets)
    turns = [0]  # how many times the other task has run
    at_ingest: list[int] = []
    pr = Preroll(src, ingest, order=["BTC"], on_chunk=lambda a, t: at_ingest.append(turns[0]))
    fed_at: list[tuple[int, int]] = []  # (turns, frames fed) seen by the other task
    made: list[int] = []  # turns when each chunk had been simulated
    catch_up = src.catch_up

    def counted(*a, **k):
        for chunk in catch_up(*a, **k):
            made.append(turns[0])
            yield chunk

    monkeypatch.setattr(src, "catch_up", counted)

    async def other(done: asyncio.Event):
        while not done.is_set():
            turns[0] += 1
            fed_at.append((turns[0], ingest.frames))
            await asyncio.sleep(0)

    async def go():
        done = asyncio.Event()
        task = asyncio.ensure_future(other(done))
        await pr.run()
        done.set()
        await task

    asyncio.run(go())
    assert len(made) == len(at_ingest) > 5
    # between simulating a chunk and ingesting it, the other task ran more than once (after the simulation,
    # during the parse, before the ingest) ...
    assert all(ing - mk >= 3 for mk, ing in zip(made, at_ingest))
    # ... and saw the ingest part-way through a chunk's frames, not only at chunk boundaries
    rows = sorted({n for _, n in fed_at})
    assert len(rows) > 2 * len(made)


def test_far_history_is_stepped_coarser_and_stays_deterministic():
    """History older than ``demo.preroll_minutes`` exists only to fill a wide start view: it is stepped every
    ``preroll_far_tick_ms`` (fewer simulator steps, frames and model updates), the last ``preroll_minutes`` at
    the usual ``preroll_tick_ms``; the frames of a seed are the same every run."""
    from liqmap.config import DEFAULTS

    cfg = copy.deepcopy(DEFAULTS)
    cfg["demo"].update(preroll_minutes=10.0, preroll_tick_ms=5000, preroll_far_tick_ms=20000)

    def history() -> list:
        src = DemoSource(cfg, assets=["BTC"], seed=5, start=START, preroll=30 * 60.0, lazy=True, focus=["BTC"])
        return [f for chunk in src.catch_up("BTC", 60.0) for f in chunk]

    frames = history()
    assert frames == history()
    fine_from = START - 10 * 60.0

    def step_times(lo: float, hi: float) -> list[int]:  # receipt = step time + latency (< 0.2 s)
        return sorted({int(f[0]) for f in frames if lo <= f[0] < hi})

    far = step_times(START - 30 * 60.0 + 60, fine_from - 60)
    near = step_times(fine_from + 60, START - 60)
    assert far and near
    assert min(np.diff(far)) >= 19  # no two far steps closer than the far tick
    assert max(np.diff(near)) <= 6  # the last minutes at the fine tick (a step with no frame is rare)


def test_start_window_estimate_matches_the_apps_map_width():
    """``map_columns`` (how much history the demo writes for a terminal's width) must track the app's real
    layout: the heat map's width in a running app at 200, 120 and 80 columns."""
    from demo_app import demo_app, demo_cfg

    from liqmap.ui.app import map_columns
    from liqmap.ui.heatmap import HeatmapView

    async def width_at(cols: int, rows: int, mode: str) -> int:
        app, _src = demo_app(demo_cfg(("BTC", "ETH", "SOL"), preroll_minutes=0.0, mode=mode))
        async with app.run_test(size=(cols, rows)) as pilot:
            await pilot.pause()
            return app.query_one(HeatmapView).size.width

    for mode in ("hybrid", "synthetic"):  # Hybrid shows the profile strip
        for cols, rows in ((80, 24), (120, 40), (200, 60)):
            real = asyncio.run(width_at(cols, rows, mode))
            want = map_columns(cols, profile=mode == "hybrid")
            assert real > 0 and abs(want - real) <= 1, (mode, cols, real, want)


def test_history_never_reads_as_lag_while_the_live_stream_runs(monkeypatch):
    """The pre-roll's history is stamped at the end of coarse simulation steps while its events span the step
    (and arrives hours after them): counted as lag, every venue of an on-time demo read "5.1s late" with
    ``lag 5130ms`` in the header for minutes after start. Lag is measured on the live stream only — also when
    the live stream's runs and the history's slices interleave on the loop (SLICE_S 0: a turn every frame)."""
    from liqmap.feeds.demo import preroll as preroll_mod
    from liqmap.feeds.demo.feed import pump

    monkeypatch.setattr(preroll_mod, "SLICE_S", 0.0)
    src = _source(assets=("BTC", "ETH"))
    market = Market(list(src.assets), clock=lambda: max(src.now(), START))
    ingest = Ingest(None, market, src.assets)
    pr = Preroll(src, ingest, order=["BTC"])

    async def go():
        gen = src.catch_up("BTC", 60.0)
        for chunk in gen:  # BTC's history alone first
            await pr.feed(chunk)
        assert src.is_live("BTC")
        measured = {v: h.lag_max for v, h in ingest._health.items()}
        assert measured and all(m is None for m in measured.values()), measured  # history is no lag
        pr.queue = ["ETH"]
        # then ETH's history interleaved with BTC's live stream (unpaced) on the same loop
        await asyncio.gather(pr.run(), pump(src, ingest, seconds=120.0))

    asyncio.run(go())
    assert src.is_live("ETH")
    lags = {v: h.lag_max for v, h in ingest._health.items()}
    assert all(m is not None for m in lags.values()), lags  # the live stream was measured on every venue ...
    assert max(lags.values()) < 2.0, lags  # ... and never read late (history's steps are 5-15 s)
    assert all(h.state() != "lagging" for h in ingest._health.values())
    assert len(market.gather("trade", "ETH")) > 100  # the history itself went in


def test_hours_old_history_does_not_make_a_connected_venue_stale():
    """`collect --demo` fired five CRITICAL "venue down: X stale" alerts in its first second (the TUI rang the
    bell): the pre-roll's history, hours old, set each connected venue's newest receipt. History is not a sign
    of a live venue: connected as the demo connects them, the venues stay "connected" through it."""
    src = _source(assets=("BTC",))
    frames = [f for chunk in src.catch_up("BTC", 60.0) for f in chunk]
    now = max(f.t for f in frames) + 3 * 3600.0  # the history is hours old
    market = Market(["BTC"], clock=lambda: now)
    ingest = Ingest(None, market, ["BTC"], clock=lambda: now)
    venues = sorted({f.venue for f in frames})
    for v in venues:  # as DemoFeed.run connects them, before the pre-roll starts
        h = ingest.health_of(v, open_connections=0)
        h.on_connect(f"demo-{v}", now)
        h.open_connections = 1

    async def go():
        for f in frames:
            await ingest.push(f, history=True)
        ingest.flush()

    asyncio.run(go())
    assert len(market.gather("trade", "BTC")) > 10  # the history went in
    assert {v: ingest.health_of(v).state() for v in venues} == dict.fromkeys(venues, "connected")

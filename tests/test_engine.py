"""Engine: cursors read only new rows, tapes equal full rebuilds, incremental = full, scheduling, shedding."""

from __future__ import annotations

import asyncio
import copy
import threading
import time

import numpy as np
import polars as pl
import pytest

from liqmap.config import DEFAULTS
from liqmap.core import events as ev
from liqmap.core.engine import Engine, ring_capacities
from liqmap.core.engine.capacity import horizons
from liqmap.core.engine.tape import LiqTape, TradeTape
from liqmap.core.grids.layers import column_prices, liquidation_layers
from liqmap.core.grids.modes import build_view
from liqmap.core.view import View
from liqmap.core.grids.window import make_window
from liqmap.core.market import Market
from liqmap.core.snapshot import Snapshot
from liqmap.core.store import Store
from liqmap.core.timeframes import TIMEFRAMES
from common import Clock

T0 = 1_700_000_000.0


def _cfg(**engine):
    cfg = copy.deepcopy(DEFAULTS)
    cfg["engine"].update(engine)
    return cfg


def _trades(rng, n, t0, t1, price=66000.0, venues=5):
    rows = np.zeros(n, dtype=ev.TRADE_DTYPE)
    rows["ts"] = np.sort(rng.uniform(t0, t1, n))
    rows["price"] = price + np.cumsum(rng.normal(0, 3, n))
    rows["qty"] = rng.uniform(0.001, 1, n)
    rows["usd"] = rows["price"] * rows["qty"]
    rows["side"] = rng.choice([1, -1], n)
    rows["venue"] = rng.integers(0, venues, n)
    return rows


def _liqs(rng, n, t0, t1, price=66000.0, spread=150.0):
    rows = np.zeros(n, dtype=ev.LIQ_DTYPE)
    rows["ts"] = np.sort(rng.uniform(t0, t1, n))
    rows["price"] = price + rng.normal(0, spread, n)
    rows["qty"] = rng.uniform(0.01, 2, n)
    rows["usd"] = rows["price"] * rows["qty"]
    rows["side"] = rng.choice([1, -1], n)
    rows["venue"] = rng.integers(0, 5, n)
    rows["price_kind"] = rng.integers(0, 3, n)
    return rows



# ---------------------------------------------------------------- tapes


@pytest.mark.parametrize("tf", list(TIMEFRAMES))
def test_trade_tape_keeps_last_high_low_per_column(tf):
    rng = np.random.default_rng(1)
    now = T0
    tr = _trades(rng, 20000, now - 3 * 86400, now)
    tape = TradeTape(TIMEFRAMES[tf], 240)
    for chunk in np.array_split(tr, 37):  # merged in batches, as the engine does
        tape.merge(chunk, float(chunk["ts"][-1]) if len(chunk) else None)
    win = make_window(now, tf, 240, 25.0, 2600, 80)
    full = column_prices(tr, win)
    cond = column_prices(tape.select(None), win)
    np.testing.assert_array_equal(cond.last, full.last)
    np.testing.assert_array_equal(cond.high, full.high)
    np.testing.assert_array_equal(cond.low, full.low)
    assert len(tape) <= 3 * 5 * 241  # bounded by columns × venues, not by the flow


def test_liq_tape_bins_like_the_raw_rows_and_trims():
    rng = np.random.default_rng(2)
    now = T0
    lq = _liqs(rng, 5000, now - 86400, now)
    tape = LiqTape(60, 240)
    for chunk in np.array_split(lq, 11):
        tape.merge(chunk, float(chunk["ts"][-1]), step=25.0)
    win = make_window(now, "1m", 240, 25.0, 2600, 80)
    np.testing.assert_allclose(liquidation_layers(tape.select(None), win), liquidation_layers(lq, win),
                               rtol=1e-12)
    assert tape.rows["ts"].min() >= (int(now // 60) - 240) * 60  # older columns dropped
    sub = tape.select(np.array([1, 3], dtype=np.uint8))
    assert set(np.unique(sub["venue"])) <= {1, 3}


def test_ring_capacities_follow_the_windows():
    caps = ring_capacities(_cfg(columns=240))
    assert caps["liq"] >= 0.25 * 240 * 60  # the 1m window of liquidations at the design rate
    assert caps["trade"] >= 60 * horizons(240)["trade"]
    small = ring_capacities(_cfg(columns=30, ring_capacity_trade=1024))
    assert small["trade"] == 1024 and small["liq"] <= caps["liq"]


# ---------------------------------------------------------------- engine vs full rebuild


def _market(clock, assets=("BTC", "ETH"), cfg=None):
    return Market(list(assets), capacity=ring_capacities(cfg or _cfg()), clock=clock)


def test_engine_raw_grid_equals_full_rebuild_from_rings():
    rng = np.random.default_rng(3)
    clock = Clock(T0)
    cfg = _cfg()
    m = _market(clock, cfg=cfg)
    eng = Engine(cfg, m, clock=clock)
    key = eng.set_view("BTC", "raw", "1m", None, 120, None)
    t = T0 - 3 * 3600
    clock.t = t
    for _ in range(12):  # 3 hours in 15-minute batches, one engine step after each
        t1 = t + 900
        clock.t = t1
        m.add("trade", "BTC", _trades(rng, 3000, t, t1))
        m.add("liq", "BTC", _liqs(rng, 60, t, t1))
        eng.step(t1)
        t = t1
    snap = eng.latest(key)
    g = snap.grid
    spec = (View("BTC", "raw", "1m", rows=g.values.shape[0], columns=240), g.step, g.row0)
    ref = build_view(m, *spec, clock.t)
    np.testing.assert_allclose(g.long, ref.long, rtol=1e-6)
    np.testing.assert_allclose(g.short, ref.short, rtol=1e-6)
    # The trade ring only covers the ingest horizon; the tape keeps the whole window's trace.
    assert np.isfinite(g.trace).sum() >= np.isfinite(ref.trace).sum()
    # Where every venue's ring still holds the whole column, the ring-based trace is exact: compare there.
    covered_from = max(r.view()["ts"].min() for r in m.rings("trade", "BTC"))
    col_start = (g.col0 + np.arange(240)) * 60.0
    recent = np.isfinite(ref.trace) & (col_start >= covered_from)
    assert recent.sum() >= 5
    np.testing.assert_array_equal(g.trace[recent], ref.trace[recent])
    assert eng.state("BTC").rows_ingested == 12 * 3060  # every row once: cursors, not whole rings


def test_cursor_reads_only_new_rows():
    rng = np.random.default_rng(4)
    clock = Clock(T0)
    m = _market(clock)
    eng = Engine(_cfg(), m, clock=clock)
    m.add("liq", "BTC", _liqs(rng, 10, T0 - 100, T0 - 50))
    assert eng.ingest("BTC", T0) == 10
    assert eng.ingest("BTC", T0) == 0
    m.add("liq", "BTC", _liqs(rng, 3, T0 - 40, T0 - 30))
    assert eng.ingest("BTC", T0) == 3
    assert len(eng.state("BTC").liqs["1m"].rows) <= 13


class ColumnModel:
    """A deterministic stand-in for the synthetic model whose profile depends only on the column, so the
    incremental path (closed columns kept) must equal a full rebuild exactly. It forecasts (a volatility and a
    horizon), so the map weighs its columns by the chance of reach on every build (core/grids/reach.py) and the
    kept columns must still come out as a full rebuild's."""

    sigma_hour = 0.004
    horizon_hours = 1.0
    tails = "t3"

    def __init__(self):
        self.updates = 0

    def update(self, oi, trades, liqs):
        self.updates += 1

    def advance(self, now):
        pass

    def levels(self, venues=None):
        idx = np.arange(2600, 2700)
        return idx, np.full(100, 1e5), np.full(100, 2e5)

    def forecast(self, horizon_hours=None, venues=None, price=None):
        b, lo, sh = self.levels(venues)
        return b, lo * 0.5, sh * 0.5, np.full(len(b), 0.5)

    draws_resting = True  # hands a resting layer's part apart (``rest_out``), a share set by the column alone

    def column_profiles(self, tf, col_lo, col_hi, row0, nrows, venues=None, rest_out=None):
        cols = np.arange(col_lo, col_hi)
        rows = np.arange(row0, row0 + nrows)[:, None]
        lo = ((rows * 7 + cols[None, :] * 13) % 101).astype(float) * 1e3
        sh = lo[::-1].copy()
        if rest_out is not None:
            rest_out += ((lo + sh) * ((cols[None, :] % 5) / 4.0)).astype(np.float32)
        return lo, sh


@pytest.mark.parametrize("mode", ["synthetic", "heatmap", "hybrid"])
def test_incremental_equals_full_rebuild(mode):
    rng = np.random.default_rng(5)
    clock = Clock(T0)
    cfg = _cfg()
    m = _market(clock, cfg=cfg)
    eng = Engine(cfg, m, clock=clock)
    eng._ensure_step(eng.state("BTC"), 66000.0)
    eng.state("BTC").model = ColumnModel()  # replaces the real model before any data arrives
    key = eng.set_view("BTC", mode, "1m", None, 100, 66000.0)
    t = T0
    for _ in range(8):  # the window slides by a few columns between builds
        t += 150
        clock.t = t
        m.add("trade", "BTC", _trades(rng, 200, t - 150, t))
        m.add("liq", "BTC", _liqs(rng, 20, t - 150, t))
        eng.step(t, background=False)
    assert eng._built[key].incremental >= 6
    inc = eng.latest(key).grid
    fresh = eng.build(eng._screen, t, force=True)  # same window → still incremental; force a full one:
    eng._built[key].win = None
    full = eng.build(eng._screen, t, force=True).grid
    assert inc.resting is not None and full.resting is not None  # the layer's own plane, kept like the others
    for name in ("values", "long", "short", "real", "profile_long", "profile_short", "resting"):
        a, b = getattr(inc, name), getattr(full, name)
        if a is None:
            assert b is None
            continue
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
    assert fresh.version < eng.latest(key).version


# ---------------------------------------------------------------- views, versions, restore


def test_views_versions_and_background():
    rng = np.random.default_rng(6)
    clock = Clock(T0)
    m = _market(clock)
    eng = Engine(_cfg(), m, clock=clock)
    m.add("trade", "ETH", _trades(rng, 100, T0 - 60, T0, price=3000.0))
    key = eng.set_view("BTC", "raw", "1m", None, 50, None)
    assert eng.latest(key) is None
    built = eng.step(T0)
    # the screen view + every other asset × timeframe in the background + the screen asset's other modes
    assert built == 2 * 5 + 3 * 5  # (the Positions mode only where exact positions are attached)
    s1 = eng.latest(key)
    assert s1.source == "LIVE" and s1.grid.asset == "BTC" and s1.grid.values.shape == (50, 240)
    eth = eng.latest(("ETH", "raw", "4h", s1.grid.venues, 50, None, 1))
    assert eth is not None and eth.grid.timeframe == "4h" and np.isfinite(eth.grid.trace).any()
    # Nothing new and nothing due: no work, same snapshot object.
    assert eng.step(T0 + 0.5) == 0 and eng.latest(key) is s1
    m.add("liq", "BTC", _liqs(rng, 5, T0 - 10, T0))
    eng.step(T0 + 1.0)
    s2 = eng.latest(key)
    assert s2.version > s1.version and s2 is not s1 and s2.grid.values.sum() > 0
    assert s1.grid.values.sum() == 0  # the old snapshot was not touched
    with pytest.raises(ValueError):
        eng.set_view("BTC", "nope", "1m")


def test_venue_filter():
    rng = np.random.default_rng(7)
    clock = Clock(T0)
    m = _market(clock)
    eng = Engine(_cfg(), m, clock=clock)
    lq = _liqs(rng, 200, T0 - 600, T0)
    m.add("liq", "BTC", lq)
    key = eng.set_view("BTC", "raw", "1m", ("okx",), 400, 66000.0)
    eng.step(T0, background=False)
    g = eng.latest(key).grid
    okx = lq[lq["venue"] == ev.VENUE_ID["okx"]]
    inside = (okx["price"] >= g.row0 * g.step) & (okx["price"] < (g.row0 + 400) * g.step)
    assert g.values.sum() == pytest.approx(okx["usd"][inside].sum(), rel=1e-5)
    assert g.venues == ("okx",)


def test_store_persistence_and_restore(tmp_path):
    rng = np.random.default_rng(8)
    clock = Clock(T0)
    cfg = _cfg()
    cfg["_data_dir"] = str(tmp_path)
    m = _market(clock)
    store = Store(cfg, clock=clock)
    eng = Engine(cfg, m, clock=clock, store=store, source="DEMO")
    lq = _liqs(rng, 50, T0 - 600, T0)
    m.add("liq", "BTC", lq)
    m.add("oi", "BTC", ev.open_interest([(T0 - 5, 1000.0, 6.6e7, 66000.0, 0)]))
    key = eng.set_view("BTC", "raw", "1m", None, 200, None)
    eng.step(T0)  # the first step also saves the snapshots (then once a minute and at exit)
    # every follow-the-price view: 2 assets × 5 timeframes in raw + BTC's other 3 modes × 5 timeframes
    assert len(list((tmp_path / "snapshots").glob("*.lqs"))) == 25
    assert eng.save_snapshots() == 0  # nothing changed since
    store.flush()
    assert store.load("liquidations", "BTC").height == 50
    assert store.load("open_interest", "BTC").height == 1
    # A new process: the snapshot is there before anything is computed, and the history is in the tapes.
    m2 = _market(clock)
    eng2 = Engine(cfg, m2, clock=clock, store=Store(cfg, clock=clock))
    assert eng2.restore() == 25
    snap = eng2.latest(key)
    assert snap is not None and snap.source == "DEMO"
    np.testing.assert_allclose(snap.grid.values, eng.latest(key).grid.values, rtol=0.0101)  # codec precision
    eng2.set_view("BTC", "raw", "1m", None, 200, None)
    eng2.step(T0 + 1)
    assert eng2.latest(key).grid.values.sum() == pytest.approx(eng.latest(key).grid.values.sum(), rel=1e-5)


def test_health_provider_lands_in_snapshots():
    clock = Clock(T0)
    eng = Engine(_cfg(), _market(clock), clock=clock)
    eng.health_provider = lambda: {"binance": {"state": "connected"}}
    key = eng.set_view("BTC", "raw", "1m", None, 20, 66000.0)
    eng.step(T0, background=False)
    assert eng.latest(key).health == {"binance": {"state": "connected"}}


# ---------------------------------------------------------------- the async loop


async def until(cond, limit: float, what: str) -> None:
    """Wait for ``cond`` (a hang guard of ``limit`` seconds, not a speed assertion)."""
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_run_keeps_screen_cadence_and_sheds_background():
    """Background builds are held back (a gate they wait on, as long as the test likes: a build that takes too
    long, without depending on how long "too long" is on this machine); the screen view still refreshes, the
    event loop still turns, status says background work is shed. Counted in builds and loop turns, not time."""
    rng = np.random.default_rng(9)
    cfg = _cfg(workers=1, fast_hz=4.0, max_queue=2)
    assets = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE")
    m = Market(list(assets), capacity=ring_capacities(cfg))
    now = time.time()
    for a in assets:
        m.add("trade", a, _trades(rng, 50, now - 60, now - 1, price=100.0))
    eng = Engine(cfg, m)
    key = eng.set_view("BTC", "raw", "1m", None, 40, None)
    real_build = eng.build
    screen_builds = []
    gate = threading.Event()
    stuck = []  # threads of background builds waiting at the gate
    loop_thread = threading.current_thread()

    def slow_build(view, t, force=False):
        if view.asset != "BTC":
            stuck.append(threading.current_thread())
            gate.wait(60)  # a background view that takes too long (a hang guard, never reached)
        else:
            screen_builds.append(t)
        return real_build(view, t, force=True)

    eng.build = slow_build
    turns = [0]
    stop = asyncio.Event()

    async def ticker():  # the UI's tick: must keep turning while background work is stuck
        while not stop.is_set():
            turns[0] += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(eng.run(stop))
    tick = asyncio.create_task(ticker())
    try:
        await until(lambda: stuck, 30, "a background build")
        builds0, turns0 = len(screen_builds), turns[0]
        await until(lambda: len(screen_builds) >= builds0 + 6 and eng.status.startswith("shedding background work:"),
                    60, "screen builds and shedding while background work is stuck")
        assert turns[0] > turns0 + 6  # the loop turned all along
        assert len(stuck) == 1  # workers=1: one background job ran (and waits); the rest were shed
    finally:
        gate.set()
        stop.set()
        await asyncio.wait_for(task, 30)
        await tick
    assert eng.stats["shed"] > 0
    assert all(t is not loop_thread for t in stuck)  # background builds never run on the event loop
    assert eng.latest(key) is not None


async def test_run_stops_and_saves(tmp_path):
    cfg = _cfg(fast_hz=10.0)
    cfg["_data_dir"] = str(tmp_path)
    m = Market(["BTC"], capacity=ring_capacities(cfg))
    m.add("trade", "BTC", _trades(np.random.default_rng(1), 20, time.time() - 30, time.time() - 1))
    eng = Engine(cfg, m, store=Store(cfg))
    eng.set_view("BTC", "hybrid", "1m", None, 30, None)
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert list((tmp_path / "snapshots").glob("BTC_hybrid_1m_*.lqs"))
    assert threading.active_count() < 10  # executors were shut down


def test_panning_does_not_accumulate_views():
    rng = np.random.default_rng(10)
    clock = Clock(T0)
    m = _market(clock, assets=("BTC",))
    m.add("trade", "BTC", _trades(rng, 100, T0 - 60, T0))
    eng = Engine(_cfg(), m, clock=clock)
    for i in range(30):  # the user pans: a new centre every step
        eng.set_view("BTC", "raw", "1m", None, 40, 66000.0 + i * 25)
        eng.step(T0 + i, background=False)
    assert len(eng._latest) <= 1 + 4 + 4  # screen + recent screens (+ background built earlier)
    assert len(eng._built) <= 1 + 4 + 5
    # Going back to a recent view is instant: its snapshot is still there.
    back = eng.set_view("BTC", "raw", "1m", None, 40, 66000.0 + 28 * 25)
    assert eng.latest(back) is not None


def test_background_views_are_packed_and_decode_on_read():
    rng = np.random.default_rng(11)
    clock = Clock(T0)
    m = _market(clock)
    m.add("liq", "ETH", _liqs(rng, 80, T0 - 3000, T0, price=3000.0, spread=10.0))
    m.add("trade", "ETH", _trades(rng, 500, T0 - 3000, T0, price=3000.0))
    eng = Engine(_cfg(), m, clock=clock)
    eng.set_view("BTC", "raw", "1m", None, 60, None)
    eng.step(T0)
    key = ("ETH", "raw", "1m", tuple(m.venues), 60, None, 1)
    packed = eng._latest[key]
    assert not isinstance(packed, Snapshot) and len(packed.blob) < 60 * 240 * 4 / 10
    snap = eng.latest(key)
    assert isinstance(snap, Snapshot) and snap.version == packed.version and eng.latest(key) is snap
    # Put it on screen: built hot, and equal to the packed one within the codec's precision.
    hot_key = eng.set_view("ETH", "raw", "1m", None, 60, None)
    assert hot_key == key
    eng.step(T0, background=False)
    eng.build(eng._screen, T0, force=True)
    hot = eng.latest(key)
    assert isinstance(eng._latest[key], Snapshot)
    nz = hot.grid.values != 0
    assert nz.any()
    np.testing.assert_allclose(snap.grid.values[nz], hot.grid.values[nz], rtol=0.0101)
    assert (snap.grid.values[~nz] == 0).all()


def test_open_interest_history_is_thinned_per_venue(tmp_path):
    clock = Clock(T0)
    cfg = _cfg()
    cfg["_data_dir"] = str(tmp_path)
    m = _market(clock, assets=("BTC",))
    store = Store(cfg, clock=clock)
    eng = Engine(cfg, m, clock=clock, store=store)
    # 10 minutes of 1-second samples from two venues, delivered in two batches.
    rows = [(T0 - 600 + i, 1000.0 + i, (1000.0 + i) * 66000, 66000.0, v) for i in range(600) for v in (0, 2)]
    oi = ev.open_interest(rows)
    m.add("oi", "BTC", oi[: len(oi) // 2])
    eng.ingest("BTC", T0)
    m.add("oi", "BTC", oi[len(oi) // 2:])
    eng.ingest("BTC", T0)
    store.flush()
    df = store.load("open_interest", "BTC")
    ts = T0 - 600 + np.arange(600)
    slots = np.floor(ts / 60)
    first_of_slot = ts[np.r_[True, slots[1:] != slots[:-1]]].tolist()
    assert df.height == 2 * len(first_of_slot)  # one per venue per minute (store.oi_every_seconds = 60)
    assert df.filter(pl.col("venue") == "okx")["ts"].to_list() == first_of_slot
    assert eng.state("BTC").rows_ingested == 1200  # the model still saw every sample


def test_liq_tape_row_guard_keeps_newest_columns(monkeypatch):
    from liqmap.core.engine import tape as tape_mod

    monkeypatch.setattr(tape_mod, "MAX_LIQ_ROWS", 500)
    rng = np.random.default_rng(12)
    t = LiqTape(14400, 240)
    lq = _liqs(rng, 4000, T0 - 30 * 86400, T0, spread=2000.0)  # spread over very many buckets
    t.merge(lq, T0, step=25.0)
    assert len(t) <= 500 and t.dropped_columns_before is not None
    assert t.rows["ts"].max() == lq["ts"].max()  # the newest events are the ones kept

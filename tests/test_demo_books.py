"""The demo's book walls (issue 16 item 3): walls the reports can read, pulled and consumed, absorptions held
and broken, sweeps — without touching the simulator's positions or price path (the forecast benchmark's truth)."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.feeds.demo import DemoSource
from liqmap.feeds.demo.books import BookWall, BookWalls
from liqmap.feeds.demo.market import AssetSim
from liqmap.core.assets import universe

START = 1_700_000_000.0


def _cfg(**demo):
    return {"demo": {**DEFAULTS["demo"], **demo}}


def _run(cfg, seconds: float, assets=("BTC", "SOL"), seed: int = 1):
    src = DemoSource(cfg, assets=list(assets), seed=seed, start=START, focus=[assets[0]])
    frames = sum(1 for _ in src.run_for(seconds))
    return src, frames


def test_book_walls_leave_the_simulators_liquidations_and_price_path_alone():
    """Seed 1, 30 simulated minutes: the same liquidations (every field) and prices with the book walls on,
    off, and with no books at all; the book walls did print (the tape differs)."""
    on, n_on = _run(_cfg(), 1800)
    off, n_off = _run(_cfg(book_walls=False), 1800)
    bare = DemoSource(_cfg(), assets=["BTC", "SOL"], seed=1, start=START, focus=["BTC"], books=False)
    for _ in bare.run_for(1800):  # no books at all: how the forecast benchmark runs the market
        pass
    lq = on.liquidations()
    assert len(lq) > 0
    for other in (off, bare):
        assert np.array_equal(lq, other.liquidations())
        assert [on.sims[a].price for a in on.names] == [other.sims[a].price for a in other.names]
    assert on.book_walls and not off.book_walls and not bare.book_walls
    ended = Counter(w.state for bw in on.book_walls.values() for w in bw.log)
    assert ended["pulled"] > 0 and ended["consumed"] > 0, ended
    assert n_on > n_off  # their prints


def _walls(price=100.0) -> BookWalls:
    a = universe(["SOL"])["SOL"]
    sim = AssetSim(a, dict(DEFAULTS["demo"]), seed=3, start=START, prehistory=False)
    sim.price = price
    bw = BookWalls(sim, 0.01, {**DEFAULTS["demo"], "book_wall_rate_per_hour": 0.0}, np.random.default_rng(1))
    bw._started = True
    return bw


def test_a_pulled_wall_leaves_without_a_trade_and_a_standing_one_absorbs_then_is_consumed():
    bw = _walls()
    vid = int(bw.sim.vids[0])
    pulled = BookWall(vid, 1, 99.50, 200_000.0, START, START + 3600, pull=True)
    stand = BookWall(vid, 1, 99.00, 200_000.0, START, START + 3600, pull=False)
    bw.walls = [pulled, stand]
    t = START
    prints = []
    for price in (99.80, 99.56, 99.52):  # toward the first wall: it is pulled within book_wall_pull_bp
        t += 0.25
        prints.append(bw.step(t, 0.25, price))
    assert pulled.state == "pulled" and sum(len(p) for p in prints) == 0
    t += 0.25
    first = bw.step(t, 0.25, 99.02)  # 2 bp above the standing bid wall: a sweep of taker sells into it
    assert stand.touching and len(first) == 3 and set(first["side"]) == {-1}
    assert len(set(first["price"].tolist())) == 3 and first["price"].min() == pytest.approx(99.00)
    at_level = [bw.step(t + 0.25 * i, 0.25, 99.02) for i in range(1, 30)]
    absorbed = sum(float(p["usd"].sum()) for p in at_level) + float(first["usd"].sum())
    assert all(np.all(p["price"] == 99.00) for p in at_level if len(p))
    assert absorbed > 1.5 * stand.usd  # an iceberg: more traded at the level than it ever showed
    assert bw.step(t + 8, 0.25, 99.30).size == 0 and not stand.touching  # price turned away: held
    through = bw.step(t + 9, 0.25, 98.90)  # price goes through: consumed, the prints walk the levels
    assert stand.state == "consumed" and bw.walls == []
    assert len(set(through["price"].tolist())) >= 3 and through["price"].max() <= 99.00
    assert float(through["usd"].sum()) >= 0.9 * stand.usd


def test_demo_engine_reports_walls_sweeps_absorptions_and_chips_spread_over_the_run():
    """The default seed through the runtime and the engine, BTC on screen: after a short pre-roll, ten
    simulated minutes give walls pulled and consumed, sweeps, absorptions and convergence chips, and not all
    in the first minute."""
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC", "ETH"], focus_extra=[])
    cfg["alerts"] = []
    feed = DemoFeed(cfg, assets=["BTC", "ETH"], preroll=120.0, lazy=True, focus=["BTC"])
    rt = Runtime(cfg, feed)
    seen: dict = {"walls": {}, "sweeps": {}, "absorptions": {}, "convergence": {}}

    async def go():
        await feed.preroll.run()
        t0 = rt.clock()
        for i in range(900):
            await pump(feed.demo, rt.ingest, seconds=1.0)
            now = rt.clock()
            for name in ("BTC", "ETH"):
                if name == "ETH" and i % 5:
                    continue
                rt.engine.ingest(name, now)
                st = rt.engine.state(name)
                r = st.records
                for w in r.walls:
                    seen["walls"].setdefault((name, w.side, w.bucket, w.first_seen), [w.first_seen - t0, 0])[1] = \
                        w.status
                for s in st.reports.sweeps.sweeps:
                    seen["sweeps"].setdefault((name, s.venue, s.ts), [s.ts - t0, s.usd])
                for ab in r.absorptions:
                    seen["absorptions"].setdefault((name, ab.side, ab.bucket, ab.start), [ab.start - t0, 0])[1] = \
                        ab.outcome
                for c in r.convergence:
                    seen["convergence"].setdefault((name, c.bucket, c.since), [c.since - t0, c.components])

    asyncio.run(go())
    live = {k: [v for v in d.values() if v[0] >= 0] for k, d in seen.items()}
    walls = Counter(v[1] for v in live["walls"])
    assert walls["pulled"] >= 1 and walls["consumed"] >= 1, walls
    assert len(live["sweeps"]) >= 3
    outcomes = Counter(v[1] for v in live["absorptions"])
    assert outcomes["held"] + outcomes["broke"] >= 1, outcomes
    assert len(live["convergence"]) >= 1
    times = sorted(v[0] for d in live.values() for v in d)
    assert times[-1] - times[0] > 300  # spread over the run, not stamped at its start


def test_collect_demo_writes_the_first_step_burst_as_history_not_at_its_start(tmp_path):
    """The simulator's seeded population has half its positions past their planned exit; they all close on its
    first step (a burst of trades, a jump, liquidations). `collect --demo` starts with a short pre-roll so that
    burst is history at its own simulated time, and its live start carries no burst."""
    from liqmap.commands.collect import Collect

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC", "ETH"], focus_extra=[])
    cfg["_data_dir"] = str(tmp_path)
    c = Collect(cfg, True, 1.0, 1.0, seed=3)
    src = c.source.demo
    assert src.preroll == 60.0 * DEFAULTS["demo"]["collect_preroll_minutes"] > 0
    assert src.pending() == ["BTC", "ETH"]  # history first: the engine holds them until it is written
    sim = src.sim("BTC")
    overdue = int((sim.pos["close_at"] <= sim.now + 1.0).sum())
    assert overdue > 0.3 * len(sim.pos)  # the burst to come
    for a in ("BTC", "ETH"):
        for _ in src.catch_up(a):
            pass
    frames = list(src.run_for(60))
    lq = src.liquidations()
    t = lq["ts"] - src.start
    steps, n = np.unique(np.round(t, 3), return_counts=True)
    assert steps[0] < -250 and steps[np.argmax(n)] < 0  # the burst: the history's first step, before the start
    assert ((t > 0) & (t <= 0.25)).sum() < n[0]  # the live start carries no burst (was start + 0.25 s)
    assert all(f[0] >= src.start for f in frames)

"""Engine rebucketing: once price has moved so far that the asset's bucket step is off by more than 2×, the
engine switches step — model, liquidation tapes, every view — without losing anything already collected."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core import buckets
from liqmap.core import events as ev
from liqmap.core.engine import Engine, ring_capacities
from liqmap.core.engine.rebucket import new_step_for, taken_rows
from liqmap.core.engine.tape import LiqTape
from liqmap.core.grids.modes import build_view
from liqmap.core.view import View
from liqmap.core.market import Market
from liqmap.core.store import Store
from common import Clock

T0 = 1_700_000_000.0
BATCH = 600.0  # seconds of flow between two engine steps



def _cfg():
    return copy.deepcopy(DEFAULTS)


def _path(t0: float, t1: float, p0: float, p1: float, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n trade times in [t0, t1) and prices moving geometrically from p0 to p1 with 2 bp noise."""
    ts = np.sort(rng.uniform(t0, t1, n))
    frac = (ts - t0) / (t1 - t0)
    px = p0 * (p1 / p0) ** frac * np.exp(rng.normal(0, 2e-4, n))
    return ts, px


def _batch(rng, t0, t1, p0, p1, oi_before, oi_step):
    """One batch of valid rows for BTC on every venue: trades along the path (more buys: new longs),
    real liquidations around it, and one rising open-interest sample per venue at the end."""
    ts, px = _path(t0, t1, p0, p1, 1500, rng)
    tr = np.zeros(len(ts), ev.TRADE_DTYPE)
    tr["ts"], tr["price"] = ts, px
    tr["qty"] = rng.uniform(0.01, 0.5, len(ts))
    tr["usd"] = tr["price"] * tr["qty"]
    tr["side"] = np.where(rng.random(len(ts)) < 0.6, 1, -1)
    tr["venue"] = rng.integers(0, 5, len(ts))
    lts, lpx = _path(t0, t1, p0, p1, 40, rng)
    lq = np.zeros(len(lts), ev.LIQ_DTYPE)
    lq["ts"] = lts
    lq["price"] = lpx * (1 + rng.normal(0, 0.002, len(lts)))
    lq["qty"] = rng.uniform(0.01, 2.0, len(lts))
    lq["usd"] = lq["price"] * lq["qty"]
    lq["side"] = rng.choice([1, -1], len(lts))
    lq["venue"] = rng.integers(0, 5, len(lts))
    lq["price_kind"] = rng.integers(0, 3, len(lts))
    oi = np.zeros(5, ev.OI_DTYPE)
    oi["ts"] = t1 - 1.0
    oi["oi"] = oi_before + oi_step
    oi["mark"] = p1
    oi["oi_usd"] = oi["oi"] * p1
    oi["venue"] = np.arange(5)
    return tr, lq, oi


def _run_path(prices, assets=("BTC",), store=None, cfg=None, seed=7, views=(("raw", "1m"),)):
    """Feed BTC along ``prices`` (one batch of BATCH seconds per consecutive pair), one engine step after each.
    Returns (engine, market, clock, view keys, all liquidation rows fed, step after each batch)."""
    rng = np.random.default_rng(seed)
    cfg = cfg or _cfg()
    clock = Clock(T0)
    m = Market(list(assets), capacity=ring_capacities(cfg), clock=clock)
    eng = Engine(cfg, m, clock=clock, store=store)
    keys = [eng.set_view("BTC", mode, tf, None, 120, None) for mode, tf in views[:1]]
    keys += [eng.add_view("BTC", mode, tf, None, 120, None) for mode, tf in views[1:]]
    t = T0
    all_liqs, steps = [], []
    oi = 5000.0
    for p0, p1 in zip(prices[:-1], prices[1:]):
        t1 = t + BATCH
        clock.t = t1
        tr, lq, o = _batch(rng, t, t1, p0, p1, oi, 40.0)
        oi += 40.0
        m.add("trade", "BTC", tr)
        m.add("liq", "BTC", lq)
        m.add("oi", "BTC", o)
        all_liqs.append(lq)
        eng.step(t1)
        steps.append(eng.state("BTC").step)
        t = t1
    return eng, m, clock, keys, np.concatenate(all_liqs), steps


RISE = list(np.geomspace(40_000.0, 100_000.0, 19))  # 2.5× over 3 hours, in 10-minute batches


def test_price_rising_2_5x_switches_the_step_once_and_keeps_everything():
    eng, m, clock, keys, liqs, steps = _run_path(
        RISE, views=(("raw", "1m"), ("hybrid", "1m"), ("synthetic", "4h"), ("raw", "4h")))
    st = eng.state("BTC")
    assert steps[0] == 20.0 == buckets.bucket_step(40_000.0, 0.1)
    assert st.step == 50.0 == buckets.bucket_step(100_000.0, 0.1)
    # exactly one switch, at the first batch whose price put the old step off by more than 2×
    assert len(st.rebuckets) == 1 and eng.stats["rebuckets"] == 1
    rec = st.rebuckets[0]
    assert (rec["old_step"], rec["new_step"]) == (20.0, 50.0)
    assert buckets.needs_rebucket(20.0, rec["price"]) and rec["price"] > 80_000.0
    i = steps.index(50.0)
    assert not buckets.needs_rebucket(20.0, RISE[i] * 0.99)  # the batch before ended below the threshold
    assert set(steps[:i]) == {20.0} and set(steps[i:]) == {50.0}

    # the model kept its levels: what it held before = after + what fell outside its new window (counted)
    assert rec["model_usd_before"] > 1e6
    assert rec["model_usd_after"] + rec["model_dropped_usd"] == pytest.approx(rec["model_usd_before"], rel=1e-9)
    assert rec["model_dropped_usd"] <= 0.01 * rec["model_usd_before"]
    assert st.model.step == 50.0
    b, lo, sh = st.model.levels()
    assert len(b) and lo.sum() + sh.sum() > 0
    last = st.last_price
    assert np.all(np.abs(b * 50.0 / last - 1.0) < 0.4)  # levels in the new step's units, near the price

    # every view now uses the new step
    for k in keys:
        snap = eng.latest(k)
        assert snap.grid.step == 50.0
        assert abs(snap.grid.row_price(snap.grid.values.shape[0] // 2) / last - 1.0) < 0.02
    hyb = eng.latest(keys[1]).grid
    assert hyb.values.sum() > 0

    # nothing collected is lost: every liquidation fed is in the 4h tape (its window spans 40 days) ...
    for tf in ("1m", "5m", "15m", "1h", "4h"):
        window_start = (np.floor(clock.t / {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400}[tf])
                        - 240) * {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400}[tf]
        fed = liqs["usd"][liqs["ts"] >= window_start].sum()
        assert st.liqs[tf].rows["usd"].sum() == pytest.approx(fed, rel=1e-9), tf
    # ... and the on-screen raw map is exactly what a fresh build at the new step from the rings gives
    g = eng.latest(keys[0]).grid
    ref = build_view(m, *(View("BTC", "raw", "1m", rows=g.values.shape[0], columns=240), 50.0, g.row0), clock.t)
    np.testing.assert_allclose(g.long, ref.long, rtol=1e-9)
    np.testing.assert_allclose(g.short, ref.short, rtol=1e-9)
    raw4h = eng.latest(keys[3]).grid
    ref4h = build_view(m, *(View("BTC", "raw", "4h", rows=raw4h.values.shape[0], columns=240), 50.0, raw4h.row0), clock.t)
    np.testing.assert_allclose(raw4h.long, ref4h.long, rtol=1e-9)

    # the reports run at the new step
    assert st.reports.step == 50.0
    assert eng.latest(keys[0]).reports is st.report_dicts


def test_price_falling_2_5x_switches_to_a_finer_step(monkeypatch):
    """Down 2.5×: 50 → 25 once (at 25 the step is within 2× of its target all the way down to 40,000).

    A finer step means a narrower model window in price (``model.track_pct`` of price each side, re-sized
    around the current price): shorts left far above by the fall are dropped there, counted in
    ``dropped_usd`` — the model's documented range — and every level within the range is kept."""
    from liqmap.core.synthetic import SyntheticModel

    seen = []
    orig = SyntheticModel.rebucket

    def spy(self, new_step):
        b, lo, sh = self.levels()
        k = self.usd_scale()  # the rebucket record counts placed USD (before the dollar scale)
        seen.append((self, self.step, self.last_price, b, lo / k, sh / k))
        return orig(self, new_step)

    monkeypatch.setattr(SyntheticModel, "rebucket", spy)
    fall = list(np.geomspace(100_000.0, 40_000.0, 19))
    eng, m, clock, keys, liqs, steps = _run_path(fall, seed=11)
    st = eng.state("BTC")
    assert steps[0] == 50.0 and st.step == 25.0 == buckets.bucket_step(49_000.0, 0.1)
    assert [(r["old_step"], r["new_step"]) for r in st.rebuckets] == [(50.0, 25.0)]
    assert eng.latest(keys[0]).grid.step == 25.0
    assert st.liqs["4h"].rows["usd"].sum() == pytest.approx(liqs["usd"].sum(), rel=1e-9)
    rec = st.rebuckets[0]
    assert rec["model_usd_after"] + rec["model_dropped_usd"] == pytest.approx(rec["model_usd_before"], rel=1e-9)
    # the engine's model (its forecast's band state re-bins too: a second model inside it)
    (_, old_step, price, b, lo, sh), = [x for x in seen if x[0] is st.model]
    dist = np.abs((b + 0.5) * old_step / price - 1.0)
    usd = lo + sh
    track = DEFAULTS["model"]["track_pct"] / 100.0
    assert usd[dist < track - 0.01].sum() <= rec["model_usd_after"] * (1 + 1e-9)
    assert rec["model_usd_after"] <= usd[dist < track + 0.01].sum() * (1 + 1e-9)


def test_moves_under_2x_and_tick_limited_steps_never_switch():
    eng, *_, steps = _run_path(list(np.geomspace(60_000.0, 80_000.0, 7)))
    assert set(steps) == {25.0} and eng.state("BTC").rebuckets == []
    # a step the tick keeps coarse is "off by 2×" for good, yet stays: switching to itself would loop
    assert buckets.needs_rebucket(0.1, 50.0) and new_step_for(0.1, 0.1, 50.0, 5.0) is None
    assert new_step_for(0.1, 0.1, 1000.0, 5.0) == 0.5


def test_restored_history_is_rebinned_not_dropped(tmp_path):
    """Liquidations restored from the store are in no ring: the rebucket re-bins their columns, keeping every
    USD, and rebuilds only the columns after the restore from the rings."""
    cfg = _cfg()
    cfg["_data_dir"] = str(tmp_path)
    clock = Clock(T0)
    store = Store(cfg, clock=clock)
    m = Market(["BTC"], capacity=ring_capacities(cfg), clock=clock)
    eng = Engine(cfg, m, clock=clock, store=store)
    rng = np.random.default_rng(5)
    _, old, _ = _batch(rng, T0 - 3000, T0 - 60, 40_000.0, 40_000.0, 1000.0, 0.0)
    m.add("liq", "BTC", old)
    eng.step(T0)
    store.flush()

    eng2_cfg = copy.deepcopy(cfg)
    m2 = Market(["BTC"], capacity=ring_capacities(eng2_cfg), clock=clock)
    eng2 = Engine(eng2_cfg, m2, clock=clock, store=Store(eng2_cfg, clock=clock))
    eng2.restore()
    st = eng2.state("BTC")
    assert st.step == 20.0 and st.exact_since == T0
    restored = st.liqs["1m"].rows["usd"].sum()
    assert restored == pytest.approx(old["usd"].sum(), rel=1e-9)
    t, oi, fed = T0, 1000.0, []
    for p0, p1 in zip(RISE[:-1], RISE[1:]):
        clock.t = t + BATCH
        tr, lq, o = _batch(rng, t, clock.t, p0, p1, oi, 40.0)
        oi += 40.0
        m2.add("trade", "BTC", tr)
        m2.add("liq", "BTC", lq)
        m2.add("oi", "BTC", o)
        fed.append(lq)
        eng2.step(clock.t)
        t = clock.t
    assert st.step == 50.0 and st.rebuckets[0]["liq_exact_since"] == T0
    total = np.concatenate(fed)["usd"].sum() + old["usd"].sum()
    assert st.liqs["4h"].rows["usd"].sum() == pytest.approx(total, rel=1e-9)
    # the restored rows' 1m columns (all before T0) were re-binned: each old bucket's USD is now in the new
    # bucket holding that old bucket's middle
    tape = st.liqs["1m"]
    pre = tape.rows[tape.rows["ts"] < T0]
    assert pre["usd"].sum() == pytest.approx(old["usd"].sum(), rel=1e-9)
    want = buckets.index((buckets.index(old["price"], 20.0) + 0.5) * 20.0, 50.0)
    got_b = buckets.index(pre["price"], 50.0)
    for bb in np.unique(want):
        assert pre["usd"][got_b == bb].sum() == pytest.approx(old["usd"][want == bb].sum(), rel=1e-9)


def test_liq_tape_rebin_exact_columns_equal_a_tape_built_at_the_new_step():
    rng = np.random.default_rng(2)
    n = 3000
    rows = np.zeros(n, ev.LIQ_DTYPE)
    rows["ts"] = np.sort(rng.uniform(T0 - 7200, T0, n))
    rows["price"] = rng.uniform(60_000, 62_000, n)
    rows["qty"] = rng.uniform(0.01, 1, n)
    rows["usd"] = rows["price"] * rows["qty"]
    rows["side"] = rng.choice([1, -1], n)
    rows["venue"] = rng.integers(0, 5, n)
    tape, ref = LiqTape(300, 240), LiqTape(300, 240)
    for chunk in np.array_split(rows, 9):
        tape.merge(chunk, T0, step=20.0)
    ref.merge(rows, T0, step=50.0)
    cut = T0 - 3000.0
    tape.rebin(50.0, T0, rows, cut)
    first = np.ceil(cut / 300) * 300
    new = tape.rows[tape.rows["ts"] >= first]
    want = ref.rows[ref.rows["ts"] >= first]
    np.testing.assert_array_equal(np.sort(new, order=["ts", "price", "side", "venue"]),
                                  np.sort(want, order=["ts", "price", "side", "venue"]))
    assert tape.rows["usd"].sum() == pytest.approx(rows["usd"].sum(), rel=1e-12)
    # columns before the cut were re-binned from their condensed rows: USD per (column, side, venue) kept
    old = tape.rows[tape.rows["ts"] < first]
    src = rows[rows["ts"] < first]
    for side in (1, -1):
        assert old["usd"][old["side"] == side].sum() == pytest.approx(src["usd"][src["side"] == side].sum())


def test_taken_rows_stop_at_the_cursor_and_say_where_rings_are_complete():
    cfg = _cfg()
    clock = Clock(T0)
    m = Market(["BTC"], capacity={"liq": 64}, clock=clock)
    lq = np.zeros(100, ev.LIQ_DTYPE)
    lq["ts"] = T0 - 600 + np.arange(100.0)
    lq["price"], lq["qty"], lq["usd"], lq["side"] = 40_000.0, 1.0, 40_000.0, 1
    m.add("liq", "BTC", lq[:30])
    cursors: dict = {}
    m.take_new("liq", "BTC", cursors)
    m.add("liq", "BTC", lq[30:35])  # not yet taken
    rows, since = taken_rows(m, "liq", "BTC", cursors)
    assert len(rows) == 30 and since == -np.inf
    m.take_new("liq", "BTC", cursors)
    m.add("liq", "BTC", lq[35:])  # the 64-row ring overflows: the oldest rows are gone
    m.take_new("liq", "BTC", cursors)
    rows, since = taken_rows(m, "liq", "BTC", cursors)
    assert len(rows) == 64 and since == rows["ts"].min() == lq["ts"][len(lq) - 64]
    assert cfg  # (config unused beyond the ring sizes)


def test_tick_limited_asset_keeps_its_step_until_the_tick_allows_a_nearer_one():
    """EOS at 0.5 with a 0.001 tick: the step (one tick) is 4× its 5 bp target for good; the engine must not
    re-examine it on every batch, nor switch — until price has risen so far that a coarser step fits."""
    cfg = _cfg()
    clock = Clock(T0)
    m = Market(["EOS"], capacity=ring_capacities(cfg), clock=clock)
    eng = Engine(cfg, m, clock=clock)
    rng = np.random.default_rng(9)
    path = [0.5, 0.52, 0.49, 0.51] + list(np.geomspace(0.51, 5.0, 12))
    t, steps = T0, []
    for p0, p1 in zip(path[:-1], path[1:]):
        clock.t = t + BATCH
        ts, px = _path(t, clock.t, p0, p1, 200, rng)
        tr = np.zeros(len(ts), ev.TRADE_DTYPE)
        tr["ts"], tr["price"], tr["qty"], tr["side"] = ts, px, 100.0, 1
        tr["usd"] = tr["price"] * tr["qty"]
        m.add("trade", "EOS", tr)
        eng.step(clock.t)
        steps.append(eng.state("EOS").step)
        t = clock.t
    st = eng.state("EOS")
    assert steps[:3] == [0.001] * 3 and st.step == 0.002 == buckets.bucket_step(5.0, 0.001)
    assert [(r["old_step"], r["new_step"]) for r in st.rebuckets] == [(0.001, 0.002)]

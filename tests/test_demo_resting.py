"""The demo's resting cohorts (issue 16 item 3, ``feeds/demo/resting.py``): open interest at real size, the same
price path and liquidations as without them, a real liquidation rate, and believable USD on small assets."""

from __future__ import annotations

import asyncio
import copy
import re

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core.assets import DEFAULT_ASSETS
from liqmap.feeds.demo import DemoSource
from liqmap.feeds.demo.resting import target_oi

START = 1_700_000_000.0
# The cohorts as docs/architecture.md describes them (the shipped default may differ: see config ``demo``)
ON = {"resting_oi_btc_usd": 20e9, "resting_oi_small_usd": 41e6, "resting_positions": 3000, "resting_hold_hours": 24.0,
      "resting_leverage": 2.0}
OFF = {"resting_oi_btc_usd": 0.0}


def _demo_cfg(resting: bool) -> dict:
    return {**copy.deepcopy(DEFAULTS["demo"]), **(ON if resting else OFF)}


def _source(resting: bool, assets=("BTC", "PENDLE"), seed: int = 0) -> DemoSource:
    return DemoSource({"demo": _demo_cfg(resting)}, assets=list(assets), seed=seed, start=START, focus=[], books=False)


def _oi_usd(src: DemoSource, asset: str) -> float:
    out = 0.0
    for v, c in src.contracts_of(asset).items():
        sim = src.venue_sim(asset, v)
        out += float(c.usd(sim.open_interest(c.vid), sim.price))
    return out


def _liqs(src: DemoSource, asset: str) -> np.ndarray:
    return np.concatenate(src.sims[asset].liq_log)


def test_cohorts_bring_oi_to_size_and_leave_prices_and_liquidations_alone():
    """Default seed, one simulated hour, BTC and PENDLE: the same price after every step and the same liquidations
    with the cohorts on and off; open interest within a factor 1.5 of the target on (BTC $20bn, PENDLE $41M) and
    ~100× smaller off."""
    on, off = _source(True), _source(False)
    for a in ("BTC", "PENDLE"):
        assert on.sims[a].resting.rate > 0 and off.sims[a].resting.rate == 0
    paths = {True: [], False: []}
    for key, src in ((True, on), (False, off)):
        for _ in range(3600):
            src.step()
            paths[key].append([src.sims[a].price for a in src.names])
    assert paths[True] == paths[False]
    for a in ("BTC", "PENDLE"):
        lq_on, lq_off = _liqs(on, a), _liqs(off, a)
        assert len(lq_on) == len(lq_off) > 0
        for f in ("ts", "price", "side", "venue", "usd", "lev"):
            assert np.array_equal(lq_on[f], lq_off[f]), (a, f)
        t = target_oi(DEFAULT_ASSETS.index(a), ON)
        assert t / 1.5 < _oi_usd(on, a) < 1.5 * t, (a, _oi_usd(on, a), t)
        assert _oi_usd(off, a) < t / 20, (a, _oi_usd(off, a))
        assert on.truth(a)["usd"].sum() > 20 * off.truth(a)["usd"].sum()  # the ground truth holds the cohorts


def test_btc_liquidations_per_hour_stay_real():
    """Default seed, BTC, two simulated hours: liquidations between $1M and $100M an hour (real BTC: tens of $M,
    more in cascades) and under 1 % of open interest an hour (real: ~0.05-0.1 %; the simulator's active traders
    alone: ~15 %; every position × a cohort of 250, the earlier attempt: ~$700M an hour)."""
    src = _source(True, assets=("BTC",))
    for _ in src.run_for(7200):
        pass
    per_hour = float(_liqs(src, "BTC")["usd"].sum()) / 2.0
    assert 1e6 < per_hour < 100e6, per_hour
    assert per_hour / _oi_usd(src, "BTC") < 0.01


_USD = re.compile(r"liqs \$([0-9.]+)([kMB]|bn)?")
_MULT = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9, "bn": 1e9}


def _after_preroll(asset: str, resting: bool = True, preroll: float = 1800.0):
    """The app's way in on the default seed: the asset on screen, ``preroll`` seconds of history through the
    runtime, 5 s live; (verdict's two magnets USD, NEXT 1H clusters' largest USD at risk, the asset's OI)."""
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=[asset], focus_extra=[])
    cfg["app"]["asset"] = asset
    cfg["alerts"] = []
    cfg["demo"] = _demo_cfg(resting)
    # the model's USD as it holds them: the dollar scale (issue 17 item 3, public OI ÷ the model's OI, up to 3×)
    # is a separate fix; these tests are about the open interest the simulated market carries
    cfg["model"]["dollar_scale_cap"] = 1.0
    feed = DemoFeed(cfg, assets=[asset], preroll=preroll, lazy=True, focus=[asset])
    rt = Runtime(cfg, feed)

    async def go():
        await feed.preroll.run()
        for _ in range(5):
            await pump(feed.demo, rt.ingest, seconds=1.0)
            rt.engine.ingest(asset, rt.clock())

    asyncio.run(go())
    rec = rt.engine.state(asset).records
    mags = [float(x) * _MULT[u] for x, u in _USD.findall(rec.verdict)]
    next_hour = max((c.at_risk_usd for c in rec.forecast.clusters), default=0.0)
    return mags, next_hour, _oi_usd(feed.demo, asset)


# (smallest magnet, largest magnet, NEXT 1H largest) at least; before the cohorts, default seed: PENDLE $1.1k, $1.8k,
# $3.6k; PEPE $2.5k, $2.6k, $9.2k. After: PENDLE $6.1k, $24k, $20k; PEPE $49k, $50k, $129k.
FLOORS = {"PENDLE": (4e3, 12e3, 10e3), "PEPE": (20e3, 30e3, 40e3)}


@pytest.mark.parametrize("asset", ["PENDLE", "PEPE"])
def test_small_assets_read_believable_usd_after_the_preroll(asset):
    """Default seed, 30-minute pre-roll + 5 s: the verdict's two liquidation magnets and the NEXT 1H clusters are
    above the floors (each was below them without the cohorts) and a small share of the asset's open interest
    (believable: a magnet is not the whole market)."""
    mags, next_hour, oi = _after_preroll(asset)
    lo, hi, nh = FLOORS[asset]
    assert len(mags) == 2 and min(mags) >= lo and max(mags) >= hi, mags
    assert next_hour >= nh, next_hour
    assert max(max(mags), next_hour) < 0.05 * oi, (mags, next_hour, oi)


def test_without_the_cohorts_small_assets_read_a_few_thousand():
    """The same check fails without the cohorts (the floors above are what they add)."""
    mags, next_hour, _ = _after_preroll("PENDLE", resting=False)
    lo, hi, nh = FLOORS["PENDLE"]
    assert max(mags) < hi and next_hour < nh, (mags, next_hour)

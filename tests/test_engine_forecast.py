"""The engine publishes the model's next-hour forecast with the reports; a venue filter restates it."""

from __future__ import annotations

import copy

import pytest

from liqmap.config import DEFAULTS
from liqmap.core import forecast
from liqmap.core.engine import Engine
from liqmap.core.market import Market
from liqmap.core.reports import for_venues
from liqmap.feeds.demo import DemoSource, make_parsers

START = 1_700_000_000.0


async def _engine_on_demo(minutes: float):
    cfg = copy.deepcopy(DEFAULTS)
    src = DemoSource(cfg, assets=["BTC"], seed=4, start=START, focus=["BTC"], books=False)
    market = Market(["BTC"], clock=src.now)
    parsers = make_parsers(src, market.add, None, cfg)
    eng = Engine(cfg, market, clock=src.now)
    key = eng.set_view("BTC", "hybrid", "1m", None, 80, None)
    end = src.now() + minutes * 60.0
    next_step = src.now() + 10.0
    while src.now() < end:
        for ts, venue, conn, raw in src.step():
            await parsers[venue].feed(raw, ts, conn)
        if src.now() >= next_step:
            eng.step(src.now())
            next_step += 10.0
    eng.step(src.now())
    return eng, key


async def test_snapshot_carries_the_models_forecast_and_the_filter_restates_it():
    eng, key = await _engine_on_demo(20.0)
    snap = eng.latest(key)
    fc = snap.reports["forecast"]
    st = eng.state("BTC")
    model = st.model
    assert fc["horizon_hours"] == model.horizon_hours == 1.0 and fc["tails"] == "t3"
    assert fc["sigma_hour"] == pytest.approx(model.sigma_hour) and fc["sigma_hour"] != 0.01  # measured, not default
    assert fc["price"] == pytest.approx(snap.last_price)
    # the same clusters as computing them from the model directly
    b, lo, sh, reach = model.forecast(price=fc["price"])
    want = forecast.clusters(b, lo, sh, reach, st.step, fc["price"], top=3)
    assert fc["clusters"] and fc["clusters"] == want
    # one venue: the clusters come from that venue's levels only (and differ from the all-venue ones)
    one = ("bybit",)
    restated = for_venues(snap.reports, one, now=snap.created, step=st.step, mid=snap.last_price,
                          synth=model.levels(one), cfg=eng.core, forecast_synth=model.forecast_levels(one))
    b1, lo1, sh1, r1 = model.forecast(venues=one, price=fc["price"])
    want1 = forecast.clusters(b1, lo1, sh1, r1, st.step, fc["price"], top=3)
    assert restated["forecast"]["clusters"] == want1
    assert sum(c["at_risk_usd"] for c in want1) < sum(c["at_risk_usd"] for c in want)
    # without the model's levels for the venues, no forecast rather than the all-venue one
    assert for_venues(snap.reports, one, now=snap.created, step=st.step, mid=snap.last_price)["forecast"] is None


async def test_a_filtered_views_snapshot_carries_typed_restated_records_and_reading_it_takes_no_lock():
    import threading

    from liqmap.core.reports import ForecastCluster, ReportRecords
    from liqmap.core.view import View
    from liqmap.ui.source import EngineSource

    eng, key = await _engine_on_demo(20.0)
    st = eng.state("BTC")
    # all venues: the typed records are the snapshot's reports, forecast included, computed once at ingest
    snap = eng.latest(key)
    assert isinstance(snap.records, ReportRecords) and snap.records.venues is None
    assert snap.reports is snap.records.to_dict()  # one object: the JSON form of the typed records
    assert snap.records.forecast.clusters and isinstance(snap.records.forecast.clusters[0], ForecastCluster)
    assert [c.to_dict() for c in snap.records.forecast.clusters] == snap.reports["forecast"]["clusters"]
    # one venue, through the UI's source: the engine's worker restated it while building the view
    source = EngineSource(eng, label="REPLAY", run=lambda: None)
    view = View("BTC", "hybrid", "1m", ("bybit",), 80, None)
    source.set_view(view)
    eng.step(eng.clock())
    with st.lock:  # the worker's lock held elsewhere: the UI's read must not wait for it
        got: list = []
        t = threading.Thread(target=lambda: got.append(source.latest(view)))
        t.start()
        t.join(2.0)
        assert not t.is_alive()
    filtered = got[0]
    assert filtered.records.venues == ("bybit",) and filtered.reports["venues"] == ["bybit"]
    want = for_venues(st.report_dicts, ("bybit",), now=filtered.created, step=st.step, mid=filtered.last_price,
                      synth=st.model.levels(("bybit",)), cfg=eng.core,
                      forecast_synth=st.model.forecast_levels(("bybit",)))
    assert filtered.reports["forecast"] == want["forecast"] and filtered.verdict == want["verdict"]
    typed = filtered.records.forecast.to_dict()
    assert typed.pop("hit") is None  # the hit rate scores the all-venue forecast: not restated for a filter
    assert typed == want["forecast"]

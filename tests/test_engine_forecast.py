"""The engine publishes the model's next-hour forecast with the reports; a venue filter restates it."""

from __future__ import annotations

import pytest

from liqmap.core import forecast
from liqmap.core.calibration import calibration_for, regime_of
from liqmap.core.reports import for_venues

from demo_engine import engine_on_demo


async def _engine_on_demo(minutes: float):
    _, eng, key, _ = await engine_on_demo(minutes, 4, "hybrid", 80)
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
    # the chance printed is calibrated, read in the market's regime (core/calibration.py)
    cal = calibration_for(model.params, st.reachlog, regime_of(model))
    # ... each saying how much of its USD at risk is the resting layer (docs/model.md §3 step 13)
    want = forecast.clusters(b, lo, sh, reach, st.step, fc["price"], top=3, calibration=cal,
                             resting=forecast.aligned_part(b, model.resting_levels()))
    assert fc["clusters"] and fc["clusters"] == want and fc["calibration"] == [list(k) for k in cal.knots]
    # one venue: the clusters come from that venue's levels only (and differ from the all-venue ones)
    one = ("bybit",)
    restated = for_venues(snap.reports, one, now=snap.created, step=st.step, mid=snap.last_price,
                          synth=model.report_levels(one), cfg=eng.core, forecast_synth=model.forecast_levels(one),
                          forecast_resting=model.resting_levels(one))
    b1, lo1, sh1, r1 = model.forecast(venues=one, price=fc["price"])
    want1 = forecast.clusters(b1, lo1, sh1, r1, st.step, fc["price"], top=3, calibration=cal,
                              resting=forecast.aligned_part(b1, model.resting_levels(one)))
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
                      synth=st.model.report_levels(("bybit",)), cfg=eng.core,
                      forecast_synth=st.model.forecast_levels(("bybit",)),
                      forecast_resting=st.model.resting_levels(("bybit",)))
    assert filtered.reports["forecast"] == want["forecast"] and filtered.verdict == want["verdict"]
    typed = filtered.records.forecast.to_dict()
    assert typed.pop("hit") is None  # the hit rate scores the all-venue forecast: not restated for a filter
    assert typed == want["forecast"]


async def test_the_reports_weigh_the_maps_levels_and_the_resting_layer():
    """The verdict, convergence, the screener and the forward profile read ``st.synth``: the map's levels plus the
    resting layer (docs/model.md §3 step 13), so a magnet NEXT 1H names after a long run is the verdict's too."""
    import numpy as np

    from liqmap.core.model.resting import add_levels

    eng, _ = await _engine_on_demo(40.0)  # the layer waits for half an hour of bars (its usual volatility)
    st = eng.state("BTC")
    rest = st.model.resting_levels()
    assert len(rest[0]) and rest[1].sum() > 1e9  # the demo's real-sized OI: billions resting, 30 % or more away
    # ... the part of it within ±range_pct (15 %) of price: in the demo's quiet hour, the tails of the unseen past
    px = st.model.last_price
    near = np.abs((rest[0] + 0.5) * st.step / px - 1.0) <= 0.15
    assert rest[1][near].sum() + rest[2][near].sum() < 0.01 * (rest[1].sum() + rest[2].sum())
    want = add_levels(st.model.levels(), (rest[0][near], rest[1][near], rest[2][near]))
    assert all(np.array_equal(a, b) for a, b in zip(st.synth, want, strict=True))
    # after a run the layer comes within range and the reports weigh it: the same model, read 30 % lower
    st.model.last_price = px * 0.7
    b, lo, sh = st.model.report_levels()
    r = st.model.resting_levels()
    near = np.abs((r[0] + 0.5) * st.step / st.model.last_price - 1.0) <= 0.15
    assert r[1][near].sum() > 0.05 * r[1].sum()  # the longs from before the run
    want = add_levels(st.model.levels(), (r[0][near], r[1][near], r[2][near]))
    assert all(np.array_equal(x, y) for x, y in zip((b, lo, sh), want, strict=True))


async def test_grid_carries_the_next_hour_strip_whose_peaks_are_the_reported_clusters():
    """The live column's NEXT 1H strip (docs/map.md §3) draws ``grid.forecast``: the expected USD per row is the
    model's forecast binned onto the view's rows, and each reported cluster holds the strip's brightest rows."""
    import numpy as np

    from liqmap.ui.live_column import forecast_level_of

    eng, key = await _engine_on_demo(20.0)
    snap = eng.latest(key)
    g = snap.grid
    assert g.forecast is not None and g.forecast.shape == (g.values.shape[0],)
    model = eng.state("BTC").model
    b, lo, sh, _ = model.forecast(price=snap.last_price)
    rows = np.asarray(b) - g.row0
    inside = (rows >= 0) & (rows < len(g.forecast))
    want = np.zeros(len(g.forecast))
    np.add.at(want, rows[inside], (lo + sh)[inside])
    np.testing.assert_allclose(g.forecast, want, rtol=1e-5, atol=1e-3)
    levels = forecast_level_of(g.forecast, 10)
    for c in snap.reports["forecast"]["clusters"]:
        r0, r1 = int(round(c["price_lo"] / g.step)) - g.row0, int(round(c["price_hi"] / g.step)) - g.row0
        if 0 <= r0 and r1 <= len(levels):
            assert levels[r0:r1].max() >= 8, (c, levels[r0:r1])  # the top quarter of a ten-colour ramp
    # Raw draws no model: no strip
    raw = eng.set_view("BTC", "raw", "1m", None, 80, None)
    eng.step(eng.clock())
    assert eng.latest(raw).grid.forecast is None


def test_next_hour_strip_scale_is_relative_to_its_strongest_row():
    import numpy as np

    from liqmap.ui.live_column import forecast_level_of

    v = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 500.0, 0.5])
    lv = forecast_level_of(v, 10)
    assert lv[4] == 10 and lv[0] == 0  # the strongest row is the top; nothing is empty
    assert lv[3] == 7 and lv[2] == 4 and lv[1] == 1  # a decade down is 3⅓ levels down
    assert lv[6] == 0  # more than three decades below the top: not drawn
    assert lv[5] == 9  # half the top: one level under it
    assert not forecast_level_of(np.zeros(5), 10).any() and not forecast_level_of(np.array([np.nan]), 10).any()
    # anchored at the weakest named cluster (100): from it up is the top quarter (8–10), log-spaced to the top;
    # below it levels 1–7 over three decades
    v = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 200.0, 0.09, 99.0])
    lv = forecast_level_of(v, 10, anchor=100.0)
    assert lv.tolist() == [0, 3, 5, 8, 10, 8, 0, 7]
    assert (forecast_level_of(v, 10, anchor=1000.0) == forecast_level_of(v, 10)).all()  # the top: no anchor


async def test_heatmap_smoothing_follows_the_zoom_in_screen_rows():
    """At the fitted zoom (8 buckets a row) a 1.5-bucket blur was a fifth of a row and Synthetic Heatmap drew
    exactly what Synthetic drew. The view says its zoom; the blur is ``heatmap_sigma_buckets`` × zoom buckets."""
    import numpy as np

    from liqmap.core.grids.layers import smooth_rows

    eng, _ = await _engine_on_demo(20.0)
    now = eng.clock()
    mid = round(eng.state("BTC").last_price)  # a fixed centre: the same rows for every view
    keys = {z: eng.set_view("BTC", "heatmap", "1m", None, 80, mid, zoom=z) for z in (1, 4)}
    syn_key = eng.set_view("BTC", "synthetic", "1m", None, 80, mid, zoom=4)
    for k in (*keys.values(), syn_key):
        eng.set_view(*k[:6], zoom=k[6])
        eng.step(now)
    syn = eng.latest(syn_key).grid
    sigma = eng.params.heatmap_sigma_buckets
    for z, k in keys.items():
        g = eng.latest(k).grid
        assert g.row0 == syn.row0 and g.col0 == syn.col0
        want = smooth_rows(np.stack((syn.long, syn.short)).astype(np.float64), sigma * z)
        np.testing.assert_allclose(g.long, want[0], rtol=1e-3, atol=1.0)
    a, b = (eng.latest(keys[z]).grid.long for z in (1, 4))
    assert not np.allclose(a, b, rtol=1e-2)  # a different picture at zoom 4

"""The forecast scored as its hours pass (liqmap.core.hitrate): the rankings fixed when the forecast is made,
real liquidations scored against them for one hour, the ratio to the distance baseline with its interval,
shown in the NEXT 1H header; and on the engine, from the demo market's published liquidations."""

from __future__ import annotations

import asyncio
import copy

import numpy as np
import pytest

from liqmap.core import buckets
from liqmap.core.events import LIQ_DTYPE
from liqmap.core.hitrate import HitRate, HitScore, top_buckets

STEP, PRICE, T0 = 25.0, 60_000.0, 1_800_000_000.0


def liqs(rows):
    a = np.zeros(len(rows), dtype=LIQ_DTYPE)
    for i, (t, p, u) in enumerate(rows):
        a["ts"][i], a["price"][i], a["usd"][i], a["qty"][i] = t, p, u, u / p
    return a


def test_top_buckets_rank_by_score_then_distance_and_the_baseline_is_the_nearest():
    idx, base = top_buckets(PRICE, STEP, None, 5.0)
    assert len(base) == int(np.ceil(0.1 * len(idx)))
    assert buckets.index(PRICE, STEP) in base and abs(base * STEP - PRICE).max() < 0.6 * 0.05 * PRICE
    far = int(buckets.index(57_500.0, STEP))
    _, top = top_buckets(PRICE, STEP, {far: 1e6}, 5.0)
    assert top[0] == far and set(top[1:]) <= set(base)  # the rest: empty buckets, nearest first


def test_a_forecast_that_names_the_level_that_gets_hit_beats_the_baseline():
    hr = HitRate(every_s=900.0, horizon_s=3600.0)
    lvl = int(buckets.index(58_000.0, STEP))  # a cluster 3.3 % below: not among the nearest buckets
    for k in range(8):  # eight forecasts, 15 minutes apart, each naming the cluster
        t = T0 + 900.0 * k
        assert hr.due(t)
        hr.add_forecast(t, PRICE, STEP, np.array([lvl]), np.array([5e6]))
        assert not hr.due(t + 1)
        # the hour after: $1M liquidated at the cluster, $200k near price, $50k outside ±5 % (not scored)
        hr.observe(liqs([(t + 600, 58_010.0, 1e6), (t + 700, 60_010.0, 2e5), (t + 800, 50_000.0, 5e4)]))
    assert hr.score().n == 0 and hr.score().pending == 8  # nothing has had its hour yet
    assert hr.settle(T0 + 3599.0) == []
    settled = hr.settle(T0 + 900.0 * 7 + 3600.0)
    assert len(settled) == 8 and not hr.open
    first = settled[0]  # saw its own hour's rows and the next three forecasts' (inside its hour)
    # the forecast's top buckets: the cluster, then the nearest empty ones (so it caught both)
    assert first.realized_usd == pytest.approx(4 * 1.2e6) and first.model_usd == pytest.approx(4 * 1.2e6)
    sc = hr.score()
    assert sc.n == 8 and sc.ratio == pytest.approx(1.2e6 / 2e5)  # the nearest buckets caught only the $200k
    assert sc.lo is not None and sc.lo <= sc.ratio <= sc.hi
    assert sc.text().startswith("hit 6.0× baseline") and "n=8" in sc.text()
    assert hr.score() is sc  # cached until something changes
    again = HitRate()
    again.restore(hr.settled)  # from the history: the same number after a restart
    assert again.score().ratio == sc.ratio and again.score().n == 8


def test_no_liquidations_in_range_means_no_ratio_yet_not_a_made_up_one():
    hr = HitRate()
    hr.add_forecast(T0, PRICE, STEP, np.array([], dtype=np.int64), np.array([]))
    hr.settle(T0 + 3600.0)
    assert hr.score() == HitScore(None, 0, pending=0)
    assert "pending" in hr.score().text() or "scoring" in hr.score().text()


def test_the_panel_header_says_how_the_forecast_did():
    from liqmap.ui.reports_table import build_rows

    fc = {"horizon_hours": 1.0, "sigma_hour": 0.01, "clusters": [],
          "hit": {"ratio": 1.63, "n": 42, "lo": 1.21, "hi": 2.04, "pending": 4}}
    header = [r.text for r in build_rows({"forecast": fc}, STEP) if r.kind == "header" and r.section == "forecast"]
    assert header == ["NEXT 1H · hit 1.6× base (1.2–2.0) n=42 (0)"]


def test_the_engine_scores_its_forecast_on_the_demo_markets_liquidations(tmp_path):
    """64 simulated minutes of the demo through the runtime's ingest and the engine: the first forecast
    settles, its score is on the snapshot's forecast record, and it is in the history a restart restores."""
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC"], focus_extra=[])
    cfg["_data_dir"] = str(tmp_path)
    feed = DemoFeed(cfg, assets=["BTC"], seed=5)
    rt = Runtime(cfg, feed, store=True)

    async def go():
        for _ in range(64):
            await pump(feed.demo, rt.ingest, seconds=60.0)
            rt.engine.ingest("BTC", rt.clock())

    asyncio.run(go())
    st = rt.engine.state("BTC")
    hr = st.hitrate
    assert len(hr.settled) >= 1 and len(hr.open) >= 3  # one hour passed; one forecast every 15 min since
    hit = st.records.forecast.hit
    assert hit["pending"] == len(hr.open) and hit["n"] == sum(1 for s in hr.settled if s.realized_usd > 0)
    assert st.report_dicts["forecast"]["hit"] == hit  # in the snapshot's JSON form too (panel, exports)
    rt.store.flush()
    again = Runtime(cfg, DemoFeed(cfg, assets=["BTC"], seed=5), store=True)
    again.engine.restore()
    assert [s.t for s in again.engine.state("BTC").hitrate.settled] == [s.t for s in hr.settled]


def test_a_hit_rate_from_fewer_than_five_hours_prints_no_ratio():
    # An hour's 0.0× or 5× says nothing about the forecast: the panel and the score name the count and when a
    # verdict comes, never a bare ratio (from five on, the ratio with its interval, as above)
    from liqmap.ui.reports_table import hit_text

    few = HitScore(0.0, 1, pending=3)
    assert few.text() == "hit: n=1, judged from 5" and "×" not in few.text()
    assert hit_text(few.to_dict()) == "hit: n=1, judged from 5"
    assert hit_text({"ratio": 4.8, "n": 4, "pending": 1}) == "hit: n=4, judged from 5"
    assert hit_text({"ratio": 1.63, "n": 5, "lo": 1.2, "hi": 2.0}) == "hit 1.6× base (1.2–2.0) n=5"

"""Next-hour forecast: fat-tailed reach probability, realized volatility, and the model's expected liquidations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqmap.core import events as ev
from liqmap.core.events import VENUE_ID
from liqmap.core.forecast import RealizedVol, reach_probability, survival
from liqmap.core.synthetic import SyntheticModel

BIN = VENUE_ID["binance"]


def test_t3_survival_matches_the_integrated_density():
    # unit-variance Student-t(3): X = T/√3, density of T is 6√3 / (π (3 + t²)²); integrate it independently
    for z in (0.0, 0.5, 1.0, 2.0, 3.0, 5.0):
        t = z * math.sqrt(3) + np.expm1(np.linspace(0.0, math.log1p(1e5), 400_001))  # dense near the start
        pdf = 6 * math.sqrt(3) / (math.pi * (3 + t * t) ** 2)
        assert float(survival(z)) == pytest.approx(np.trapezoid(pdf, t), abs=2e-6)
    # fatter than a Gaussian far out, thinner near the centre (same variance)
    assert survival(3.0) > 5 * survival(3.0, "gauss")
    assert survival(1.0) < survival(1.0, "gauss")
    with pytest.raises(ValueError):
        survival(1.0, "cauchy")


def test_reach_probability_is_the_reflection_principle_of_a_random_walk():
    # Gaussian random walk, 1 h in 3600 one-second steps, σ = 1 %/h: the share of paths whose running maximum
    # passes d converges to 2·P(end > d). Discrete monitoring misses a few crossings, so it sits a bit below.
    rng = np.random.default_rng(7)
    sigma, n_paths, n_steps = 0.01, 2000, 3600
    steps = rng.standard_normal((n_paths, n_steps)) * sigma / math.sqrt(n_steps)
    running_max = np.maximum.accumulate(np.cumsum(steps, axis=1), axis=1)[:, -1]
    for d in (0.005, 0.01, 0.02):
        want = float(reach_probability(np.array([d]), sigma, 1.0, "gauss")[0])
        got = float((running_max >= d).mean())
        assert got == pytest.approx(want, abs=0.035)
        assert got <= want + 0.01
    p = reach_probability(np.array([0.0, 0.002, -0.002, 0.01, 0.05]), 0.01, 1.0)
    assert p[0] == 1.0 and p[1] == p[2]  # distance, either side
    assert p[1] > p[3] > p[4] > 0
    # a longer horizon reaches further; no volatility reaches nothing but the price itself
    assert reach_probability(np.array([0.02]), 0.01, 4.0)[0] > reach_probability(np.array([0.02]), 0.01, 1.0)[0]
    assert list(reach_probability(np.array([0.0, 0.01]), 0.0, 1.0)) == [1.0, 0.0]


def test_realized_vol_measures_a_known_volatility_and_counts_gaps():
    rng = np.random.default_rng(3)
    sig_min = 0.002  # per minute → 1.55 %/h
    logp = np.cumsum(rng.standard_normal(600) * sig_min)
    v = RealizedVol(window_minutes=600, default_hour=0.05)
    assert v.sigma_hour() == 0.05  # nothing seen: the default
    for m, lp in enumerate(logp):
        v.add(1000 + m, 100.0 * math.exp(lp))
    assert v.sigma_hour() == pytest.approx(sig_min * math.sqrt(60), rel=0.1)
    # every other minute missing: the two-minute returns count as two minutes, so the estimate is unchanged
    g = RealizedVol(window_minutes=600, default_hour=0.05)
    for m in range(0, 600, 2):
        g.add(1000 + m, 100.0 * math.exp(logp[m]))
    assert g.sigma_hour() == pytest.approx(sig_min * math.sqrt(60), rel=0.15)
    # the window slides: an old calm hour does not dilute a volatile recent one
    w = RealizedVol(window_minutes=30, default_hour=0.05)
    for m in range(120):
        step = 0.0001 if m < 60 else 0.004
        w.add(m, 100.0 * math.exp(step * (m % 2)))
    assert w.sigma_hour() == pytest.approx(0.004 * math.sqrt(60), rel=1e-6)
    w.add(119, -1.0)  # bad prices are ignored
    w.add(50, 99.0)  # and so are minutes older than the newest
    assert w.sigma_hour() == pytest.approx(0.004 * math.sqrt(60), rel=1e-6)


def _trades(ts, prices, venue=BIN):
    n = len(ts)
    usd = np.full(n, 50_000.0)
    side = np.where(np.arange(n) % 2 == 0, 1, -1)
    return ev.trades([(t, p, u / p, u, s, venue) for t, p, u, s in zip(ts, prices, usd, side, strict=True)])


def test_model_forecast_is_levels_times_reach_from_its_own_volatility():
    params = {"min_delta_usd": 0.0, "min_delta_rel": 0.0, "cap_rel": 1.0, "half_life_hours": 0.0,
              "leverage_spread": 0.0, "forecast_default_vol_hour_pct": 2.0}
    m = SyntheticModel("BTC", 25.0, params)
    oi = lambda t, o: ev.open_interest([(t, o, o * 60_000.0, 60_000.0, BIN)])  # noqa: E731
    m.update(oi(0.0, 1000.0))
    m.update(trades=_trades([10.0, 20.0], [60_000.0, 60_000.0]))
    m.update(oi(30.0, 1010.0))
    assert m.sigma_hour == pytest.approx(0.02)  # the default until ten minutes of trades
    b, lo, sh = m.levels()
    fb, flo, fsh, p = m.forecast()
    assert np.array_equal(b, fb)
    want = reach_probability(np.log((b + 0.5) * 25.0 / m.last_price), 0.02, 1.0)
    assert np.allclose(p, want) and np.allclose(flo, lo * p) and np.allclose(fsh, sh * p)
    # the 100x levels (~0.6 % away) are likelier to be reached than the 5x levels (~20 % away)
    near, far = np.argmin(np.abs(b * 25.0 - 60_000)), np.argmax(np.abs(b * 25.0 - 60_000))
    assert p[near] > 0.5 > 0.01 > p[far]
    # a calm hour of trades: the measured volatility replaces the default and the far levels fade further
    rng = np.random.default_rng(1)
    minutes = np.arange(1, 61)
    prices = 60_000.0 * np.exp(np.cumsum(rng.standard_normal(60) * 0.0005))
    m.update(trades=_trades(30.0 + 60.0 * minutes, prices))
    assert m.sigma_hour == pytest.approx(0.0005 * math.sqrt(60), rel=0.3)
    _, _, _, p2 = m.forecast()
    assert p2[far] < p[far]
    # longer horizon, venue filter and an explicit price go through
    _, _, _, p4 = m.forecast(horizon_hours=4.0)
    assert np.all(p4 >= p2 - 1e-12)
    assert len(m.forecast(venues=("okx",))[0]) == 0
    with pytest.raises(ValueError):
        SyntheticModel("BTC", 25.0, {"forecast_tails": "normal"})


def test_clusters_group_adjacent_buckets_per_side_and_rank_by_expected_usd():
    from liqmap.core.forecast import clusters

    step, price = 10.0, 1000.0
    # longs below: a run 960–990 (buckets 96..98) and a lone bucket 900; shorts above: 1010 and 1030 (gap of 1
    # empty bucket: still one cluster), and a speck at 1100
    b = np.array([90, 96, 97, 98, 101, 103, 110])
    at_lo = np.array([5e6, 1e6, 2e6, 1e6, 0, 0, 0])
    at_sh = np.array([0, 0, 0, 0, 3e6, 1e6, 1e3])
    reach = reach_probability(np.log((b + 0.5) * step / price), 0.01, 1.0)
    got = clusters(b, at_lo * reach, at_sh * reach, reach, step, price, top=5)
    sides = [(c["side"], c["price_lo"], c["price_hi"]) for c in got]
    assert ("long", 960.0, 990.0) in sides and ("short", 1010.0, 1040.0) in sides
    # the far 5 M$ long cluster at 900 (−9.5 %) is less likely to be hit than the nearer, smaller ones
    run = next(c for c in got if c["price_lo"] == 960.0)
    assert run["at_risk_usd"] == pytest.approx(4e6) and run["expected_usd"] == pytest.approx(
        float((at_lo[1:4] * reach[1:4]).sum()))
    assert run["reach"] == pytest.approx(reach[3]) and -4 < run["distance_pct"] < -1
    assert [c["expected_usd"] for c in got] == sorted((c["expected_usd"] for c in got), reverse=True)
    assert all(c["price_lo"] != 1100.0 for c in got)  # under 2 % of the total: noise
    far = [c for c in got if c["price_lo"] == 900.0]
    assert not far or got.index(far[0]) > got.index(run)
    assert clusters(b, at_lo * reach, at_sh * reach, reach, step, price, top=1) == got[:1]
    assert clusters(b[:0], at_lo[:0], at_sh[:0], reach[:0], step, price) == []

"""What Synthetic draws (issue 20 item 2): the model's at-risk lines × the chance of reach^α, not plain lines.

Plain at-risk lines rank the next hour's liquidations worse than "near price" (0.86× the distance baseline on
demo seeds 1-10); weighted by reach^0.7 they catch 1.5× (docs/benchmarks.md). These tests hold the engine's
Synthetic grid to that weighting on a fixed demo market fed through the real parsers: if the map went back to
drawing plain lines, a far cluster would be drawn as bright per dollar as a near one and the grid's top rows
would be the plain lines' top rows.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from liqmap.config import DEFAULTS
from liqmap.core.grids.reach import ReachWeight, column_prices_filled, drawn_levels, of_model
from liqmap.core.grids.window import Window

from demo_engine import engine_on_demo


def test_reach_weight_falls_with_distance_and_alpha_zero_is_the_plain_lines():
    rw = ReachWeight(sigma_hour=0.01, horizon_hours=1.0, alpha=0.7)
    step, price = 10.0, 60_000.0
    rows = np.array([6000, 6030, 6120, 6300])  # 0 %, 0.5 %, 2 %, 5 % above
    w = rw.weights(rows, step, np.array([price]))[:, 0]
    assert w[0] == pytest.approx(1.0, abs=0.02) and np.all(np.diff(w) < 0) and w[-1] < 0.1
    plain = rw.weights(rows, step, np.array([price]))[:, 0] ** (1 / 0.7)  # α = 1: the chance itself
    assert np.all(w >= plain - 1e-12)  # α < 1 keeps far clusters brighter than the expected USD would
    assert of_model(None, 0.7) is None
    usd = np.array([5.0, 5.0, 5.0, 5.0])
    np.testing.assert_array_equal(drawn_levels(rows, usd, step, price, None), usd)
    np.testing.assert_allclose(drawn_levels(rows, usd, step, price, rw), usd * w)
    # gaps carry the last price before them; leading gaps the first; no price: nothing to weigh from
    np.testing.assert_array_equal(column_prices_filled(np.array([np.nan, 2.0, np.nan, 3.0, np.nan])),
                                  [2.0, 2.0, 2.0, 3.0, 3.0])
    assert column_prices_filled(np.full(3, np.nan)) is None


async def _engine_on_demo(minutes: float, alpha: float | None = None):
    """BTC of the demo market (seed 3) through the real parsers into a Market and an Engine; the Synthetic view
    on screen at 400 rows."""
    cfg = copy.deepcopy(DEFAULTS)
    if alpha is not None:
        cfg["model"]["synthetic_reach_alpha"] = alpha
    return await engine_on_demo(minutes, 3, "synthetic", 400, cfg)


def _grid_of(eng, mode: str, now: float):
    """The grid the engine builds for ``mode`` of the same asset, rows and timeframe."""
    eng.set_view("BTC", mode, "1m", None, 400, None)
    return eng.build(eng._screen, now, force=True).grid


@pytest.fixture(scope="module")
def demo_engine():
    import asyncio

    return asyncio.run(_engine_on_demo(25.0))


def test_synthetic_draws_at_risk_times_reach_and_a_far_cluster_dimmer_than_a_near_one(demo_engine):
    cfg, eng, key, _ = demo_engine
    st = eng.state("BTC")
    model = st.model
    grid = eng.latest(key).grid
    alpha = cfg["model"]["synthetic_reach_alpha"]
    assert 0 < alpha < 1
    win = Window(grid.step, grid.row0, grid.values.shape[0], grid.col0, grid.values.shape[1], grid.period)
    # the model's plain at-risk lines of the same cells (what Synthetic drew before issue 20)
    lo, sh = model.column_profiles("1m", win.col0, win.col1, win.row0, win.nrows)
    at_risk = (lo + sh).astype(np.float64)[:, -1]
    drawn = grid.values.astype(np.float64)[:, -1]
    price = float(column_prices_filled(grid.trace)[-1])
    assert at_risk.sum() > 0 and math.isfinite(price)
    rows = np.arange(win.row0, win.row1)
    dist = np.abs((rows + 0.5) * win.step / price - 1.0)
    w = of_model(model, alpha).weights(rows, win.step, np.array([price]))[:, 0]
    np.testing.assert_allclose(drawn, at_risk * w, rtol=1e-4, atol=1e-3 * drawn.max())

    # per dollar at risk, the strongest line 3-5 % away is drawn much dimmer than the strongest within 1 %
    near = np.flatnonzero((dist < 0.01) & (at_risk > 0))
    far = np.flatnonzero((dist > 0.03) & (dist < 0.05) & (at_risk > 0))
    assert len(near) and len(far)
    n, f = near[np.argmax(at_risk[near])], far[np.argmax(at_risk[far])]
    assert drawn[f] / at_risk[f] < 0.5 * drawn[n] / at_risk[n]
    # ... but still drawn: α < 1 keeps a far cluster on the map
    assert drawn[f] > 0

    # the rows a trader's eye goes to (the top 10 % of the live column within ±5 %) are the reach-weighted
    # ones, not the plain lines' — plain lines rank far tiers first
    inside = np.flatnonzero(dist <= 0.05)
    k = max(1, int(math.ceil(0.1 * len(inside))))
    top = lambda v: set(inside[np.argsort(-v[inside], kind="stable")[:k]].tolist())  # noqa: E731
    assert top(drawn) == top(at_risk * w)
    assert top(drawn) != top(at_risk)
    assert np.mean(dist[list(top(drawn))]) < np.mean(dist[list(top(at_risk))])


@pytest.mark.parametrize("mode", ["heatmap", "hybrid"])
def test_heatmap_and_hybrid_share_the_weighted_body(demo_engine, mode):
    """Synthetic Heatmap smooths and Hybrid adds real marks to the same drawn layers: their model part is the
    reach-weighted one too (a far line per dollar dimmer than a near one)."""
    cfg, eng, _, now = demo_engine
    grid = _grid_of(eng, mode, now)
    model = eng.state("BTC").model
    win = Window(grid.step, grid.row0, grid.values.shape[0], grid.col0, grid.values.shape[1], grid.period)
    lo, sh = model.column_profiles("1m", win.col0, win.col1, win.row0, win.nrows)
    at_risk = (lo + sh).astype(np.float64)[:, -1]
    body = (grid.long + grid.short).astype(np.float64)[:, -1]
    if grid.real is not None:
        body = body - grid.real.astype(np.float64)[:, -1]
    price = float(column_prices_filled(grid.trace)[-1])
    rows = np.arange(win.row0, win.row1)
    dist = np.abs((rows + 0.5) * win.step / price - 1.0)
    near = (dist < 0.01) & (at_risk > 0)
    far = (dist > 0.03) & (dist < 0.05) & (at_risk > 0)
    assert near.any() and far.any(), mode
    # the body's USD per at-risk USD near price vs far (smoothing moves USD between rows: sums, not rows)
    assert body[far].sum() / at_risk[far].sum() < 0.5 * body[near].sum() / at_risk[near].sum(), mode

"""What the Synthetic map draws: the model's at-risk lines weighted by the chance price gets there (issue 20).

The model's levels (``column_profiles``) are USD *at risk*: what would be liquidated if price went there. Drawn
as they are, a 50x line 4 % away shines as bright as one 0.4 % away, and ranking the rows by it does worse than
"liquidations happen near price" (0.86× the distance baseline on demo seeds 1-10, docs/benchmarks.md). The map
draws each cell as

    drawn[row, col] = at_risk[row, col] · P(price reaches the row within the forecast horizon)^α

with ``P`` the forecast's chance of reach (``liqmap.core.forecast.reach_probability``: the model's realized
volatility, its shrunk trend, fat tails) measured from the price the column closed at (the column's last trade,
the trace the map draws; columns without a trade carry the last one before). α = ``synthetic_reach_alpha``:
1 is the expected liquidation USD over the horizon, but its top rows are sharper than the simulator's true
positions (1.23× the oracle's top-10 % share); α < 1 keeps far clusters on the map, dimmer, as a trader zoomed
out wants them; 0 draws the plain at-risk lines. Chosen on seeds 1-10 (docs/benchmarks.md, "What Synthetic
draws").

Past columns are weighed with today's volatility and trend (as they are drawn at today's dollar scale): the
colours stay one scale, and a full rebuild and an incremental one give the same cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..forecast import reach_probability
from .window import Window


@dataclass(frozen=True)
class ReachWeight:
    """The chance-of-reach weighting of one build: the model's volatility, trend and horizon, and α."""

    sigma_hour: float
    horizon_hours: float
    tails: str = "t3"
    drift_hour: float = 0.0
    alpha: float = 1.0

    def weights(self, rows_bucket: np.ndarray, step: float, prices: np.ndarray) -> np.ndarray:
        """(len(rows_bucket), len(prices)) weights: reach^α of each row's bucket centre from each price."""
        centre = (np.asarray(rows_bucket, dtype=np.float64) + 0.5) * float(step)
        d = np.log(centre[:, None] / np.asarray(prices, dtype=np.float64)[None, :])
        p = reach_probability(d, self.sigma_hour, self.horizon_hours, self.tails, self.drift_hour)
        return p if self.alpha == 1.0 else p ** self.alpha


def of_model(model, alpha: float) -> ReachWeight | None:
    """The weighting a model's forecast implies (duck-typed: ``sigma_hour``, ``horizon_hours``, ``tails``,
    ``drift_hour``), or None — draw the levels as they are — for α ≤ 0 or a model that has no forecast."""
    if model is None or not (alpha > 0) or not hasattr(model, "sigma_hour") or not hasattr(model, "horizon_hours"):
        return None
    sigma, h = float(model.sigma_hour), float(model.horizon_hours)
    if not (sigma > 0 and math.isfinite(sigma) and h > 0 and math.isfinite(h)):
        return None
    return ReachWeight(sigma, h, str(getattr(model, "tails", "t3")), float(getattr(model, "drift_hour", 0.0) or 0.0),
                       float(alpha))


def column_prices_filled(trace: np.ndarray) -> np.ndarray | None:
    """The trace with each gap carrying the last price before it (leading gaps: the first price); None when
    no column traded."""
    t = np.asarray(trace, dtype=np.float64)
    ok = np.isfinite(t) & (t > 0)
    if not ok.any():
        return None
    idx = np.where(ok, np.arange(len(t)), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(ok))
    idx[idx < 0] = first
    return t[idx]


def weigh_layers(lo: np.ndarray, sh: np.ndarray, win: Window, trace: np.ndarray,
                 rw: ReachWeight | None) -> tuple[np.ndarray, np.ndarray]:
    """(long, short) at-risk layers of ``win`` weighted by reach^α from each column's price (module docstring);
    new arrays. Unweighted (the same arrays) without a weighting or without any traded price in view."""
    if rw is None:
        return lo, sh
    prices = column_prices_filled(trace)
    if prices is None:
        return lo, sh
    w = rw.weights(np.arange(win.row0, win.row0 + win.nrows), win.step, prices)
    return lo * w, sh * w


def drawn_levels(bucket: np.ndarray, usd: np.ndarray, step: float, price: float,
                 rw: ReachWeight | None) -> np.ndarray:
    """What the map's live column draws for levels ``usd`` per ``bucket`` with price at ``price``: the same
    weighting as :func:`weigh_layers` (the benchmark ranks this, ``benchmarks/bench_forecast.py``)."""
    usd = np.asarray(usd, dtype=np.float64)
    if rw is None or not (price > 0) or len(usd) == 0:
        return usd.copy()
    return usd * rw.weights(np.asarray(bucket), step, np.array([float(price)]))[:, 0]

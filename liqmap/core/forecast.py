"""Where liquidations are likely to happen next: the synthetic levels weighted by the chance price gets there.

The synthetic model (:mod:`liqmap.core.synthetic`) estimates the notional *at risk* per price bucket: what
would be liquidated if price went there. It says nothing about *when*. A big cluster 4 % away is rarely hit
within the hour, a modest one 0.3 % away usually is. A trader asking "where will liquidations hit next?"
wants both: the expected liquidated notional over a horizon,

    E[b] = at_risk[b] · P(price reaches bucket b within the horizon).

The reach probability uses the reflection principle for a driftless random walk — the chance the running
maximum (or minimum) of the log price over ``T`` passes a distance ``d`` is twice the chance the end point
does — ``P = min(1, 2·sf(d / (σ·√T)))``, with ``σ`` the realized volatility of 1-minute returns the model
has seen and ``sf`` the survival function of a unit-variance Student-t with 3 degrees of freedom (crypto
returns are fat-tailed: jumps and cascades reach further than a Gaussian says; ``tails="gauss"`` gives the
thin-tailed version). The t₃ survival function has a closed form, so no scipy.

Drift (issue 17 item 4): a driftless walk gives a level 1 % above the same chance as one 1 % below, so in a
one-sided run it ranks the side price is leaving as high as the side it is heading for. The walk may carry the
recent trend: ``drift_hour`` (log return per hour) moves the distance by the drift over the horizon — a level
ahead of the trend is nearer by ``drift · T``, one behind it further (``P = min(1, 2·sf((|d| ∓ μT)/(σ√T)))``).
The drift is the one measured over the volatility window (:meth:`RealizedVol.drift_hour`), shrunk toward
zero by its own noise: with ``t`` = drift ÷ its standard error (σ/√hours seen), only ``1 − shrink/t²`` of it
is kept (none when ``t² ≤ shrink``), so the usual wandering of a ranging or steady market — t of order 1 —
leaves the walk symmetric and only a run the noise cannot explain tilts it.

Nothing here is fitted to the demo market: the volatility is measured from trades like any venue would
publish them, and the tail shape is the textbook fat-tail choice.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

TAILS = ("t3", "gauss")


def survival(z: np.ndarray | float, tails: str = "t3") -> np.ndarray:
    """P(X > z) for a unit-variance X: Student-t with 3 degrees of freedom (``t3``) or Gaussian."""
    z = np.asarray(z, dtype=np.float64)
    if tails == "gauss":
        return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(z / math.sqrt(2.0))
    if tails != "t3":
        raise ValueError(f"tails must be one of {TAILS}, got {tails!r}")
    # T₃ has variance 3, so X = T₃/√3 and P(X > z) = P(T₃ > z√3) = 1/2 − (atan z + z/(1+z²))/π
    return 0.5 - (np.arctan(z) + z / (1.0 + z * z)) / math.pi


def reach_probability(distance_log: np.ndarray, sigma_hour: float, horizon_hours: float,
                      tails: str = "t3", drift_hour: float = 0.0) -> np.ndarray:
    """Chance that price touches a level ``distance_log`` = ln(level / price) away (signed: above price > 0)
    within the horizon; with ``drift_hour`` the distance ahead of the drift shrinks by ``drift · T`` and the one
    behind it grows by as much (module docstring)."""
    dl = np.asarray(distance_log, dtype=np.float64)
    d = np.abs(dl)
    h = max(float(horizon_hours), 0.0)
    scale = float(sigma_hour) * math.sqrt(h)
    if not (scale > 0 and math.isfinite(scale)):
        return (d == 0).astype(np.float64)
    mu = float(drift_hour) if math.isfinite(drift_hour) else 0.0
    if mu:
        d = d - np.sign(dl) * mu * h  # ahead of the trend: nearer; behind it: further (never below 0 → P = 1)
    return np.minimum(1.0, 2.0 * survival(d / scale, tails))


def minute_returns(closes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(minutes, log prices, squared log returns, minutes each return spans) of (minute, last price) closes:
    the one place the volatility window's closes become returns (``RealizedVol`` and
    ``liqmap.core.calibration.regime`` read the same closes)."""
    n = len(closes)
    m = np.fromiter((x[0] for x in closes), np.float64, n)
    lp = np.log(np.fromiter((x[1] for x in closes), np.float64, n))
    return m, lp, np.diff(lp) ** 2, np.diff(m)


class RealizedVol:
    """Realized volatility per hour from the last traded price of each minute, over a sliding window.

    Minutes without trades are simply absent: a return that spans ``g`` minutes counts as ``g`` minutes of
    variance. With fewer than ``min_returns`` returns the ``default`` (per hour) is used: a model that has
    just started has no history to measure."""

    def __init__(self, window_minutes: int = 60, default_hour: float = 0.01, min_returns: int = 10):
        self.window = max(2, int(window_minutes))
        self.default = float(default_hour)
        self.min_returns = max(1, int(min_returns))
        self._closes: deque[tuple[int, float]] = deque()

    def add(self, minute: int, price: float) -> None:
        """The last price traded in ``minute`` (minutes since the epoch); later calls overwrite."""
        if not (price > 0 and math.isfinite(price)):
            return
        c = self._closes
        if c and c[-1][0] == minute:
            c[-1] = (minute, price)
        elif not c or minute > c[-1][0]:
            c.append((minute, price))
        while c and c[0][0] < minute - self.window:
            c.popleft()

    def minutes_seen(self) -> int:
        """Minutes from the window's first close to its last (0 with fewer than two)."""
        c = self._closes
        return int(c[-1][0] - c[0][0]) if len(c) > 1 else 0

    def sigma_hour(self) -> float:
        c = self._closes
        if len(c) <= self.min_returns:
            return self.default
        _, _, r2, minutes = minute_returns(c)
        var_per_minute = r2.sum() / minutes.sum()
        return float(math.sqrt(var_per_minute * 60.0))

    def variance_ratio(self, k: int, shrink: float = 4.0, lo: float = 0.25, hi: float = 4.0) -> float:
        """How far price travels over ``k`` minutes against what its 1-minute returns say: the variance of the
        window's overlapping ``k``-minute returns ÷ ``k`` × that of its 1-minute ones (Lo–MacKinlay, with their
        unbiased divisors), both about the window's mean return (the trend is the drift's business, not the spread's). Below 1 the market
        reverts (a ranging market, bid-ask bounce between venues); above 1 moves run on (a trend, a cascade).
        Shrunk toward 1 by its own noise as the drift is: with ``z`` = (VR − 1) ÷ its standard error under a
        random walk (√(2(2k−1)(k−1) / (3k·n)), n 1-minute returns), ``1 − shrink/z²`` of the gap is kept,
        none when ``z² ≤ shrink``; then clipped to [``lo``, ``hi``]. 1 with fewer than ``k + min_returns``
        minutes seen, or ``k`` < 2 (module docstring)."""
        k = int(k)
        c = self._closes
        if k < 2 or len(c) <= self.min_returns:
            return 1.0
        m = np.fromiter((x[0] for x in c), np.int64, len(c))
        lp = np.log(np.fromiter((x[1] for x in c), np.float64, len(c)))
        n = int(m[-1] - m[0])  # 1-minute steps on the full grid: a minute without trades keeps the last price
        if n < k + self.min_returns:
            return 1.0
        grid = np.empty(n + 1)
        grid[m - m[0]] = lp
        have = np.zeros(n + 1, bool)
        have[m - m[0]] = True
        idx = np.maximum.accumulate(np.where(have, np.arange(n + 1), 0))
        grid = grid[idx]
        mu = (grid[-1] - grid[0]) / n
        r1 = np.diff(grid) - mu
        var1 = float(r1 @ r1) / (n - 1)
        if not var1 > 0:
            return 1.0
        rk = grid[k:] - grid[:-k] - k * mu
        # Lo–MacKinlay's unbiased divisor: the mean taken out and the overlaps leave k(n−k+1)(1−k/n) degrees of
        # freedom, not k(n−k+1) (with n = 60, k = 15 the plain mean reads a random walk 25 % low)
        vr = float(rk @ rk) / (k * (n - k + 1) * (1.0 - k / n)) / var1
        se2 = 2.0 * (2 * k - 1) * (k - 1) / (3.0 * k * n)
        gap = vr - 1.0
        keep = 1.0 - float(shrink) * se2 / (gap * gap) if gap else 0.0
        vr = 1.0 + gap * keep if keep > 0 else 1.0
        return float(min(max(vr, lo), hi))

    def drift_hour(self, shrink: float = 4.0) -> float:
        """The trend over the window (log return per hour, first close to last), shrunk by its noise: with
        ``t`` = drift ÷ (σ/√hours), ``1 − shrink/t²`` of it is kept, none when ``t² ≤ shrink`` (module
        docstring). 0 with fewer than ``min_returns`` returns: too little seen to call a trend."""
        c = self._closes
        if len(c) <= self.min_returns:
            return 0.0
        hours = (c[-1][0] - c[0][0]) / 60.0
        sigma = self.sigma_hour()
        if not (hours > 0 and sigma > 0):
            return 0.0
        mu = math.log(c[-1][1] / c[0][1]) / hours
        t2 = mu * mu * hours / (sigma * sigma)
        keep = 1.0 - float(shrink) / t2 if t2 > 0 else 0.0
        return mu * keep if keep > 0 else 0.0


def expected(bucket: np.ndarray, long_usd: np.ndarray, short_usd: np.ndarray, step: float, price: float,
             sigma_hour: float, horizon_hours: float, tails: str = "t3",
             drift_hour: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected long USD, expected short USD, reach probability) per bucket: USD at risk × chance of reach
    from ``price`` to the bucket centre within the horizon (with the trend ``drift_hour``, module docstring)."""
    bucket = np.asarray(bucket)
    if len(bucket) == 0 or not (price > 0):
        z = np.zeros(len(bucket))
        return z, z.copy(), z.copy()
    p = reach_probability(np.log((bucket + 0.5) * step / price), sigma_hour, horizon_hours, tails, drift_hour)
    return np.asarray(long_usd) * p, np.asarray(short_usd) * p, p


def summary(levels: tuple[np.ndarray, np.ndarray, np.ndarray], step: float, price: float | None,
            sigma_hour: float, horizon_hours: float, tails: str = "t3", top: int = 3,
            calibration: Callable | None = None, drift_hour: float = 0.0, resting=None) -> dict:
    """The forecast as the engine publishes it with the reports: parameters and the ``top`` clusters, their
    chance of reach through ``calibration`` (``liqmap.core.calibration``; None: the walk's own chance).
    ``resting``: the part of ``levels`` that is the resting layer (``SyntheticModel.resting_levels``,
    docs/model.md §3 step 13), so each cluster says how much of its USD at risk is positions held for days."""
    out = {"horizon_hours": float(horizon_hours), "sigma_hour": float(sigma_hour), "tails": tails,
           "drift_hour": float(drift_hour),
           "price": float(price) if price else None, "clusters": [],
           # the map the chance went through, as (raw, calibrated) knots: a venue-filtered view restates with it
           "calibration": [list(k) for k in calibration.knots] if hasattr(calibration, "knots") else None}
    b, lo, sh = levels
    if price and price > 0 and len(b):
        el, es, p = expected(b, lo, sh, step, price, sigma_hour, horizon_hours, tails, drift_hour)
        # the drift ranks the clusters; the chance printed stays the driftless walk's, the one the calibration map
        # was fitted on (the shifted walk saturates at 1 ahead of a run: such clusters were reached ~60 % of
        # the time on hold-out seeds 11-20, docs/benchmarks.md)
        chance = reach_probability(np.log((b + 0.5) * step / price), sigma_hour, horizon_hours, tails) \
            if drift_hour else None
        out["clusters"] = clusters(b, el, es, p, step, price, top=top, calibration=calibration, chance=chance,
                                   resting=aligned_part(b, resting))
    return out


def aligned_part(b: np.ndarray, part) -> tuple[np.ndarray, np.ndarray] | None:
    """(long, short) USD of ``part`` (bucket, long, short) on the buckets ``b`` (sorted); None without a part."""
    if part is None:
        return None
    pb, pl, ps = (np.asarray(x) for x in part)
    lo, sh = np.zeros(len(b)), np.zeros(len(b))
    if len(pb) and len(b):
        i = np.clip(np.searchsorted(b, pb), 0, len(b) - 1)
        ok = b[i] == pb
        np.add.at(lo, i[ok], pl[ok])
        np.add.at(sh, i[ok], ps[ok])
    return lo, sh


def clusters(bucket: np.ndarray, long_usd: np.ndarray, short_usd: np.ndarray, reach: np.ndarray, step: float,
             price: float, top: int = 3, frac: float = 0.5, max_buckets: int = 12, min_share: float = 0.02,
             calibration: Callable | None = None, chance: np.ndarray | None = None,
             resting: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """The ``top`` liquidation clusters most likely to be hit next, best first.

    Inputs are :meth:`SyntheticModel.forecast`'s output (expected USD per bucket and side, reach probability).
    The model's levels are spread over bands, so a side is often one unbroken run of buckets from price to
    the window's edge; a trader wants the peaks. Each cluster is grown from the largest expected bucket
    left, over adjacent buckets of the same side that still hold at least ``frac`` of its USD at risk (at
    most ``max_buckets`` wide), then removed — with half that width around it — before the next is looked for,
    so the clusters are distinct places rather than slices of one slope. Each cluster: ``side`` ("long" =
    longs liquidated, below price; "short" above), ``price_lo``/``price_hi`` (bucket edges), ``price``
    (expected-weighted centre), ``distance_pct`` (signed, from ``price``), ``at_risk_usd``, ``expected_usd``
    and ``reach`` (the best chance of reach inside it; through ``calibration`` when one is given, the walk's own
    chance then in ``reach_raw``: ``liqmap.core.calibration``). Clusters under ``min_share`` of the total expected
    USD are not reported: noise is not a forecast. ``chance`` (default ``reach``): the per-bucket chance printed
    as ``reach`` when it is not the one the expected USD was weighted by (the driftless walk's, :func:`summary`).
    ``resting``: per bucket, the (long, short) USD at risk of the resting layer: each cluster's ``resting_usd`` is
    its part of ``at_risk_usd`` (0 without it)."""
    out: list[dict] = []
    if len(bucket) == 0 or not (price > 0):
        return out
    bucket = np.asarray(bucket, np.int64)
    reach = np.asarray(reach, float)
    chance = reach if chance is None else np.asarray(chance, float)
    total = float(np.sum(long_usd) + np.sum(short_usd))
    if total <= 0:
        return out
    left = {"long": np.array(long_usd, float), "short": np.array(short_usd, float)}
    with np.errstate(divide="ignore", invalid="ignore"):
        risk = {k: np.where(reach > 0, v / np.where(reach > 0, reach, 1.0), 0.0) for k, v in left.items()}
    top = max(0, int(top))
    while len(out) < 2 * top:  # a few more candidates than asked: a wide cluster may outweigh a sharp peak
        name = max(left, key=lambda k: float(left[k].max()) if len(left[k]) else 0.0)
        exp, at = left[name], risk[name]
        i = int(np.argmax(exp))
        if exp[i] <= 0:
            break
        peak = at[i]
        lo = hi = i
        while (hi - lo + 1 < max_buckets and lo > 0 and bucket[lo] - bucket[lo - 1] == 1
               and exp[lo - 1] > 0 and at[lo - 1] >= frac * peak):
            lo -= 1
        while (hi - lo + 1 < max_buckets and hi + 1 < len(exp) and bucket[hi + 1] - bucket[hi] == 1
               and exp[hi + 1] > 0 and at[hi + 1] >= frac * peak):
            hi += 1
        sel = slice(lo, hi + 1)
        e, r = exp[sel].copy(), chance[sel]
        exp_usd = float(e.sum())
        # taken, and its neighbours within half a cluster's width too: the next peak is somewhere else, not
        # the next slice of the same slope (a trader wants distinct places, not one run cut in three)
        b_lo, b_hi = bucket[lo] - max_buckets // 2, bucket[hi] + max_buckets // 2
        exp[(bucket >= b_lo) & (bucket <= b_hi)] = 0.0
        if exp_usd < min_share * total:
            continue
        centre = float(((bucket[sel] + 0.5) * step * e).sum() / exp_usd)
        at_risk = float(at[sel].sum())
        out.append({
            "side": name,
            "price_lo": float(bucket[lo] * step),
            "price_hi": float((bucket[hi] + 1) * step),
            "price": centre,
            "distance_pct": (centre / price - 1.0) * 100.0,
            "at_risk_usd": at_risk,
            "expected_usd": exp_usd,
            "reach": float(r.max()),
            # positions held for days (the resting layer): the part of the USD at risk no flow was seen to open
            "resting_usd": float(resting[0 if name == "long" else 1][sel].sum()) if resting is not None else 0.0,
        })
        if calibration is not None:  # the chance printed means what it says (core/calibration.py)
            out[-1]["reach_raw"] = out[-1]["reach"]
            out[-1]["reach"] = float(calibration(out[-1]["reach_raw"]))
    out.sort(key=lambda c: -c["expected_usd"])
    return out[:top]

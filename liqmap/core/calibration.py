"""Calibrated odds: the NEXT 1H chance of reach made to mean what it says, and the record that checks it.

The chance of reach (:mod:`liqmap.core.forecast`) is a driftless random walk's: the realized volatility of
1-minute closes, fat tails. Per bucket it is close to right. For the clusters the reports panel lists it is
not: on the demo (seeds 1–10) clusters printed at 10–50 % were reached 17–31 points more often than that, and
those at 80–90 % 16 points less (``benchmarks/bench_forecast.py forecast_calibration``). Two reasons a walk
cannot see: the clusters are picked where the liquidations are, and price is drawn to them (a cascade runs
through the levels it sets off); and a trade can touch a level between two minute closes.

So the panel prints the *calibrated* chance: the raw chance, moved for the market's regime (:func:`shifted`:
the last 15 minutes' volatility over the window's, :func:`regime`), through a monotone map fitted on what happened
(:data:`DEMO_MAP`). Map and shift were fitted and chosen on demo seeds 1–10 of all five market conditions only
(``tools/fit_reach_calibration.py``, leave-one-seed-out log-loss), then judged on seeds 11–30 by a rule declared
beforehand (:func:`judged`: seed-bootstrap intervals per decile; docs/benchmarks.md). It must be refitted whenever
the model changes which clusters are listed or its σ. ``reach_raw`` keeps the walk's number beside it.
``model.forecast_calibrated = false`` shows the raw chance instead.

The check goes on outside the demo: :class:`ReachLog` keeps each forecast's clusters (every 15 minutes, with
the hit rate, :mod:`liqmap.core.hitrate`) and, as trades come in, whether price reached each one within the
hour. :func:`reliability` is the table — per decile of the chance printed, how many clusters, the mean
chance and the share reached — in the headless replay report (``synthetic.forecast.reliability``) for any
recording, and in the ``forecast_calibration`` benchmark for the demo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from liqmap.core.forecast import minute_returns

# Knots of the raw → calibrated map (the walk's raw chance moved for the regime, :func:`shifted`; share reached),
# fitted by ``tools/fit_reach_calibration.py`` on the 7,200 NEXT 1H clusters of demo seeds 1–10 of all five market
# conditions (steady, trend, range, cascade, empty; BTC, ETH, SOL, a forecast every 2 minutes from 30 to 60 minutes
# into 2 simulated hours; docs/benchmarks.md, session 10). The form was chosen on those seeds alone by
# leave-one-seed-out log-loss: isotonic over 6 bins 0.63345, 10 / 8 / 5 bins 0.63436 / 0.63423 / 0.63441, logistic
# 0.63488 (near ties); then the regime shift DEMO_VOL_SHIFT 0.75 (0.63051; none 0.63345). Seeds 11–30 were not
# looked at to fit or choose it. Re-run the script (``--write``) whenever the reach or the cluster choice changes.
# (0, 0) and (1, 1) are the ends: a cluster price is already at is reached, one infinitely far is not.
DEMO_MAP: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.093, 0.338),
    (0.245, 0.499),
    (0.415, 0.594),
    (0.583, 0.659),
    (0.753, 0.737),
    (0.893, 0.809),
    (1.0, 1.0),
)
# The regime shift (tools/fit_reach_calibration.py chooses it on seeds 1-10 of every market condition; 0 = none):
# before the map, the raw chance's logit moves by DEMO_VOL_SHIFT · ln(the volatility of the last 15 minutes ÷ the
# 60-minute window's), the ratio clipped to VOL_RATIO_CLIP. The walk's σ is the window's: when the market has just
# turned wilder it lags and the walk says too little, when it has just calmed (a jump leaving the window) too much.
DEMO_VOL_SHIFT = 0.75
VOL_RATIO_CLIP = (1 / 3, 3.0)
MIN_ROW_N = 20  # deciles with fewer outcomes are shown but not judged (the benchmark's gap ignores them)
# How many outcomes the demo map counts for per decile when the engine learns its own map: after ~20 settled
# clusters in a decile the asset's own record weighs as much as the demo's, after 200 it is 90 % of the map.
PRIOR_N = 20.0


@dataclass(frozen=True)
class CalibrationMap:
    """A monotone piecewise-linear map from the raw chance of reach to the share of clusters reached."""

    knots: tuple[tuple[float, float], ...] = DEMO_MAP

    def __call__(self, raw: np.ndarray | float) -> np.ndarray | float:
        x = np.array([k[0] for k in self.knots], float)
        y = np.array([k[1] for k in self.knots], float)
        out = np.interp(np.clip(np.asarray(raw, float), 0.0, 1.0), x, y)
        return float(out) if np.ndim(out) == 0 else out


IDENTITY = CalibrationMap(((0.0, 0.0), (1.0, 1.0)))
DEMO = CalibrationMap(DEMO_MAP)


def shifted(raw, vol_ratio: float = 1.0, k: float | None = None):
    """The raw chance moved for the regime: logit(raw) + k · ln(vol_ratio clipped to VOL_RATIO_CLIP), back to a
    chance (``k`` default :data:`DEMO_VOL_SHIFT`; 0 or a ratio of 1 leave it as it is; 0 and 1 stay 0 and 1)."""
    k = DEMO_VOL_SHIFT if k is None else float(k)
    r = np.asarray(raw, float)
    vr = float(vol_ratio) if vol_ratio and np.isfinite(vol_ratio) else 1.0
    if not k or vr == 1.0:
        out = r
    else:
        move = k * math.log(min(max(vr, VOL_RATIO_CLIP[0]), VOL_RATIO_CLIP[1]))
        with np.errstate(divide="ignore"):
            z = np.log(r) - np.log1p(-r) + move
        out = np.where(r <= 0, 0.0, np.where(r >= 1, 1.0, 1 / (1 + np.exp(-np.clip(z, -50, 50)))))
    return float(out) if np.ndim(out) == 0 else out


def in_regime(m: CalibrationMap, regime: dict | None, k: float | None = None) -> CalibrationMap:
    """The map ``m`` read in this ``regime`` (:func:`regime`) as a map of the walk's raw chance: knots at
    ``(x, m(shifted(x)))`` on a fine grid, so the record's knots (``forecast.calibration``) and every reader
    of them print what the panel prints. ``m`` itself without a shift."""
    k = DEMO_VOL_SHIFT if k is None else float(k)
    vr = float((regime or {}).get("vol_ratio", 1.0))
    if not k or vr == 1.0:
        return m
    xs = np.unique(np.r_[np.linspace(0, 1, 101), 0.005, 0.015, 0.995])
    return CalibrationMap(tuple((round(float(x), 4), round(float(m(shifted(x, vr, k))), 4)) for x in xs))


def calibration_for(model_params, log: "ReachLog | None" = None, regime: dict | None = None) -> CalibrationMap | None:
    """The map a model's NEXT 1H chance goes through: None when ``forecast_calibrated`` is off (the walk's raw
    chance is printed); else the asset's own learned map (``log``, :meth:`ReachLog.calibration`), or
    :data:`DEMO` without one — read in the market's ``regime`` (:func:`regime_of` the model; :func:`in_regime`)."""
    on = True if model_params is None else bool(model_params.get("forecast_calibrated", True))
    if not on:
        return None
    return in_regime(log.calibration() if log is not None else DEMO, regime)


def regime_of(model) -> dict:
    """:func:`regime` of a synthetic model's volatility window (its 1-minute closes; neutral without one)."""
    return regime(getattr(model, "minute_closes", ()))


def demo_chance(raw, vol_ratio: float = 1.0):
    """The chance the panel prints from the demo map (no learned record) in a market whose volatility ratio is
    ``vol_ratio``: :data:`DEMO` at the shifted raw chance (the benchmark's judged number)."""
    return DEMO(shifted(raw, vol_ratio))


def fit(pairs, prior: CalibrationMap | None = None, prior_n: float = 0.0, bins: int = 10) -> CalibrationMap:
    """Isotonic fit of (raw chance, reached) pairs: per decile of the raw chance its mean and the share reached,
    adjacent deciles pooled (weighted by their counts) until the shares never fall as the chance rises; the
    pooled blocks' (mean raw, share reached) are the knots, between (0, 0) and (1, 1).

    With a ``prior`` map, each decile also counts ``prior_n`` outcomes at the prior's share (deciles without
    outcomes at their centre): a few outcomes move the map a little away from the prior, many move it all the
    way (the engine learns its own map this way from :data:`DEMO`, :meth:`ReachLog.calibration`)."""
    p, h = _arrays(pairs)
    if not len(p) and prior is None:
        return IDENTITY
    d = np.minimum((p * bins).astype(int), bins - 1)
    m = float(prior_n) if prior is not None else 0.0
    blocks = []  # [sum raw, sum reached, weight]
    for k in range(bins):
        sel = d == k
        n = int(sel.sum())
        if n + m <= 0:
            continue
        x = float(p[sel].mean()) if n else (k + 0.5) / bins
        blocks.append([float(p[sel].sum()) + m * x, float(h[sel].sum()) + (m * float(prior(x)) if m else 0.0), n + m])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            s, r, w = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += r
            blocks[-1][2] += w
    knots = [(0.0, 0.0)] + [(round(s / w, 3), round(r / w, 3)) for s, r, w in blocks] + [(1.0, 1.0)]
    return CalibrationMap(tuple(knots))


def _arrays(pairs) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(pairs)
    p = np.array([float(x[0]) for x in pairs], float)
    h = np.array([float(bool(x[1])) for x in pairs], float)
    ok = np.isfinite(p)
    return np.clip(p[ok], 0.0, 1.0), h[ok]


def reliability(pairs, min_n: int = MIN_ROW_N) -> dict:
    """The reliability table of (chance printed, reached) pairs: per decile of the chance, ``n``, the mean
    chance (``predicted``), the share reached (``observed``) and the gap in points (observed − predicted);
    ``max_gap_points`` over deciles with at least ``min_n`` outcomes (None without any), the Brier score."""
    p, h = _arrays(pairs)
    if not len(p):
        return {"rows": [], "max_gap_points": None, "n": 0, "brier": None}
    d = np.minimum((p * 10).astype(int), 9)
    rows = []
    for k in range(10):
        m = d == k
        if m.any():
            rows.append({"decile": f"{k * 10}-{k * 10 + 10}%", "n": int(m.sum()),
                         "predicted": round(float(p[m].mean()), 3), "observed": round(float(h[m].mean()), 3),
                         "gap_points": round(100 * float(h[m].mean() - p[m].mean()), 1)})
    big = [abs(r["gap_points"]) for r in rows if r["n"] >= min_n]
    return {"rows": rows, "max_gap_points": max(big) if big else None, "n": int(len(p)),
            "brier": round(float(np.mean((p - h) ** 2)), 4)}


# The judging rule of the reliability table (docs/benchmarks.md, "The judging rule", declared before the session's
# hold-out numbers): a 90 % interval per decile from resampling whole seeds (a seed's clusters share one price path
# and move together: one news jump reaches every far cluster of a seed at once), a decile judged with at least
# MIN_ROW_N clusters from MIN_ROW_SEEDS seeds, "off" only when its whole interval lies beyond ±TOLERANCE points.
TOLERANCE = 10.0
MIN_ROW_SEEDS = 4
BOOT_N = 2000
BOOT_SEED = 17
BOOT_LEVEL = 0.90


def judged(rows, tol: float = TOLERANCE, min_n: int = MIN_ROW_N, min_seeds: int = MIN_ROW_SEEDS,
           n_boot: int = BOOT_N, seed: int = BOOT_SEED, level: float = BOOT_LEVEL) -> dict:
    """The reliability table of ``rows`` = (stratum, seed, chance printed, reached) with a cluster-bootstrap
    interval per decile: the seeds (units = (stratum, seed)) are resampled with replacement within each stratum
    (a market condition), ``n_boot`` times with a fixed random seed; per decile the ``level`` percentile interval
    of the gap (share reached − mean chance, points), the verdict (``off``: the whole interval beyond ±``tol``;
    ``within``: the whole interval inside; else ``undecided``) for deciles with ``min_n`` clusters from
    ``min_seeds`` seeds. ``excess_points``: the most a judged interval misses ±``tol`` by (0: none shown off)."""
    rows = [(str(r[0]), r[1], float(r[2]), bool(r[3])) for r in rows if np.isfinite(float(r[2]))]
    empty = {"rows": [], "n": 0, "brier": None, "max_gap_points": None, "excess_points": None,
             "verdicts": {"off": 0, "within": 0, "undecided": 0}}
    if not rows:
        return empty
    units = sorted({(r[0], r[1]) for r in rows}, key=str)
    uid = {u: i for i, u in enumerate(units)}
    u = np.array([uid[(r[0], r[1])] for r in rows])
    p = np.clip(np.array([r[2] for r in rows]), 0.0, 1.0)
    h = np.array([float(r[3]) for r in rows])
    d = np.minimum((p * 10).astype(int), 9)
    nu = len(units)
    cnt, sp, sh = (np.zeros((nu, 10)) for _ in range(3))
    np.add.at(cnt, (u, d), 1.0)
    np.add.at(sp, (u, d), p)
    np.add.at(sh, (u, d), h)
    # the resamples: per stratum draw as many of its seeds as it has, with replacement (a weight per unit)
    rng = np.random.default_rng(seed)
    w = np.zeros((n_boot, nu))
    for st in sorted({x[0] for x in units}):
        idx = np.array([uid[x] for x in units if x[0] == st])
        draws = rng.integers(0, len(idx), size=(n_boot, len(idx)))
        np.add.at(w, (np.repeat(np.arange(n_boot), len(idx)), idx[draws.ravel()]), 1.0)
    bn, bp, bh = w @ cnt, w @ sp, w @ sh
    out, q = [], ((1 - level) / 2 * 100, (1 + level) / 2 * 100)
    for k in range(10):
        n = cnt[:, k].sum()
        if not n:
            continue
        ok = bn[:, k] > 0
        gaps = 100 * (bh[ok, k] - bp[ok, k]) / bn[ok, k]
        lo, hi = (float(x) for x in np.percentile(gaps, q)) if ok.any() else (float("nan"),) * 2
        n_seeds = int((cnt[:, k] > 0).sum())
        judge = bool(n >= min_n and n_seeds >= min_seeds)
        verdict = None
        if judge:
            verdict = "off" if (lo > tol or hi < -tol) else "within" if (lo >= -tol and hi <= tol) else "undecided"
        out.append({"decile": f"{k * 10}-{k * 10 + 10}%", "n": int(n), "seeds": n_seeds,
                    "predicted": round(float(sp[:, k].sum() / n), 3), "observed": round(float(sh[:, k].sum() / n), 3),
                    "gap_points": round(100 * float((sh[:, k].sum() - sp[:, k].sum()) / n), 1),
                    "interval_points": [round(lo, 1), round(hi, 1)], "judged": judge, "verdict": verdict})
    jud = [r for r in out if r["judged"]]
    verdicts = {v: sum(1 for r in jud if r["verdict"] == v) for v in ("off", "within", "undecided")}
    excess = max((max(0.0, r["interval_points"][0] - tol, -tol - r["interval_points"][1]) for r in jud), default=None)
    return {"rows": out, "n": int(len(p)), "seeds": nu, "brier": round(float(np.mean((p - h) ** 2)), 4),
            "max_gap_points": max((abs(r["gap_points"]) for r in jud), default=None),
            "excess_points": None if excess is None else round(excess, 1), "verdicts": verdicts}


def judged_text(table: dict) -> str:
    """One line per decile with its interval and verdict (``30-40%  n=41/7 seeds  35% → 52%  +17 [+4, +29] off``)."""
    if not table.get("rows"):
        return "no settled clusters"
    return "\n".join(f"{r['decile']:>8}  n={r['n']:<4d}/{r['seeds']:>2d} seeds  {r['predicted'] * 100:3.0f}% → "
                     f"{r['observed'] * 100:3.0f}%  {r['gap_points']:+5.1f} [{r['interval_points'][0]:+.1f}, "
                     f"{r['interval_points'][1]:+.1f}] {r['verdict'] or 'not judged'}" for r in table["rows"])


def regime(closes, short_minutes: int = 15) -> dict:
    """What the market is doing, from the (minute, last price) closes the model's volatility window holds
    (:class:`liqmap.core.forecast.RealizedVol`) — features a live engine has, for a map conditioned on them:
    ``drift_t`` the window's log return over its standard error (σ·√hours; unshrunk, signed: > 0 up) and
    ``vol_ratio`` the realized volatility of the last ``short_minutes`` over the whole window's (> 1: turbulent
    now). Neutral values (0, 1) with too few closes to say."""
    c = [(float(m), float(x)) for m, x in closes if x > 0]
    if len(c) < 11:
        return {"drift_t": 0.0, "vol_ratio": 1.0}
    m, lp, r2, dm = minute_returns(c)
    var = r2.sum() / dm.sum()
    hours = (m[-1] - m[0]) / 60.0
    t = float((lp[-1] - lp[0]) / math.sqrt(var * 60.0 * hours)) if var > 0 and hours > 0 else 0.0
    recent = m[1:] > m[-1] - short_minutes
    ratio = math.sqrt((r2[recent].sum() / dm[recent].sum()) / var) if var > 0 and recent.sum() >= 3 else 1.0
    return {"drift_t": round(t, 3), "vol_ratio": round(float(ratio), 3)}


def table_text(table: dict) -> str:
    """One line per decile (``30-40%  n=41  predicted 35%  reached 52%``) — or why there is nothing to show."""
    if not table.get("rows"):
        return "no settled clusters yet"
    return "\n".join(f"{r['decile']:>8}  n={r['n']:<5d} predicted {r['predicted'] * 100:3.0f}%  "
                     f"reached {r['observed'] * 100:3.0f}%" for r in table["rows"])


def reached(side: str, edge: float, lo: float, hi: float) -> bool:
    """Did a price range [lo, hi] reach a cluster's nearest edge? Longs are liquidated below price (a low at
    or under the edge), shorts above (a high at or over it)."""
    return bool(lo <= edge) if side == "long" else bool(hi >= edge)


def nearest_edge(cluster: dict, step: float) -> float:
    """The centre of the cluster's bucket nearest price: the bucket its chance of reach is for (the best
    chance inside the cluster, ``forecast.clusters``)."""
    return cluster["price_hi"] - step / 2 if cluster["side"] == "long" else cluster["price_lo"] + step / 2


@dataclass
class _Pending:
    t: float
    side: str
    edge: float
    reach: float  # the chance printed (calibrated unless turned off)
    reach_raw: float  # the walk's chance as the map reads it (moved for the regime, :meth:`ReachLog.add`)
    hit: bool = False


@dataclass
class ReachLog:
    """Each forecast's clusters, checked against where price went within the hour (see the module docstring).

    ``add`` with the clusters printed at ``now``; ``observe`` every trade batch; ``settle`` closes the clusters
    whose hour has passed. A cluster is reached as soon as a trade touches its nearest edge (final, even before
    its hour is over); one not reached settles as missed when the hour has passed."""

    horizon_s: float = 3600.0
    prior: CalibrationMap = DEMO
    prior_n: float = PRIOR_N
    open: list[_Pending] = field(default_factory=list)
    settled: list[tuple[float, float, float, bool]] = field(default_factory=list)  # (t, chance, raw, reached)
    _map: tuple | None = field(default=None, repr=False)  # (settled count, fitted map)

    def add(self, now: float, clusters, step: float, regime: dict | None = None) -> None:
        """The clusters printed at ``now``. Their raw chance is kept as the map reads it: moved for the market's
        ``regime`` (:func:`shifted`; unmoved without one or with DEMO_VOL_SHIFT 0), so the asset's learned map
        (:meth:`calibration`, fitted on it from :data:`DEMO`, which is on that scale) stays on the same scale."""
        vr = float((regime or {}).get("vol_ratio", 1.0))
        for c in clusters:
            c = c if isinstance(c, dict) else c.to_dict()
            r = float(c["reach"])
            self.open.append(_Pending(now, str(c["side"]), nearest_edge(c, step), r,
                                      float(shifted(float(c.get("reach_raw", r)), vr))))

    def observe(self, ts: np.ndarray, price: np.ndarray) -> None:
        """Trades (times, prices): every open cluster whose hour they fall in and whose edge they touch is hit."""
        if not len(ts) or not self.open:
            return
        ts = np.asarray(ts, float)
        price = np.asarray(price, float)
        for o in self.open:
            if o.hit:
                continue
            m = (ts >= o.t) & (ts < o.t + self.horizon_s)
            if m.any():
                o.hit = reached(o.side, o.edge, float(price[m].min()), float(price[m].max()))

    def settle(self, now: float) -> list[tuple[float, float, float, bool]]:
        """Close the clusters whose hour has passed; returns them (time, chance printed, raw chance, reached)."""
        done = [o for o in self.open if now >= o.t + self.horizon_s]
        if not done:
            return []
        self.open = [o for o in self.open if now < o.t + self.horizon_s]
        new = [(o.t, o.reach, o.reach_raw, o.hit) for o in done]
        self.settled.extend(new)
        return new

    def restore(self, rows) -> None:
        """Settled clusters from the history (time, chance printed, raw chance, reached): a live run's table
        accumulates over days."""
        known = set(self.settled)
        self.settled.extend(r for r in (tuple(x) for x in rows) if r not in known)
        self.settled.sort(key=lambda s: s[0])

    def calibration(self) -> CalibrationMap:
        """The map learned from this asset's settled clusters (their raw chance against what happened), starting
        from ``prior`` (:func:`fit`); refitted only when a cluster has settled since."""
        n = len(self.settled)
        if self._map is None or self._map[0] != n:
            m = fit([(s[2], s[3]) for s in self.settled], prior=self.prior, prior_n=self.prior_n) if n else self.prior
            self._map = (n, m)
        return self._map[1]

    def table(self, raw: bool = False) -> dict:
        """The reliability table of the settled clusters (``raw``: of the walk's chance), with ``pending`` (open
        clusters whose hour has not passed; those already reached are counted in ``pending_reached``)."""
        t = reliability([(s[2] if raw else s[1], s[3]) for s in self.settled])
        t["pending"] = len(self.open)
        t["pending_reached"] = sum(1 for o in self.open if o.hit)
        return t

"""The forecast scored as time passes: does the next-hour forecast beat "liquidations happen near price"?

Every ``every_s`` (15 min) the engine hands in the model's expected next-hour liquidations by bucket (at risk ×
chance of reach, ``SyntheticModel.forecast``). Two rankings of the buckets within ±``range_pct`` (5 %) of price
are fixed at that moment: the forecast's top 10 % of buckets (ties and empty buckets by distance), and the
distance baseline's top 10 % (the nearest buckets: a forecast that knows nothing). Over the following
``horizon_s`` (one hour) every real liquidation the venues publish is scored against both: the USD falling in
the forecast's top buckets and in the baseline's. When the hour is over the forecast *settles*.

The hit rate is the ratio of the two sums over every settled forecast that saw liquidations in range —
``hit 1.6× baseline`` means the forecast's top buckets caught 1.6 times the USD the nearest buckets did —
with the number of forecasts and a 90 % bootstrap interval over them (resampled forecasts, a fixed seed so
the same history always prints the same interval). It is the same measure as the ``forecast_skill``
benchmark, scored on what actually happened instead of on the simulator's truth (docs/model.md §7).

A venue that samples its liquidations (Binance: at most one per symbol per second) under-weights its cascades
in both rankings alike; the ratio is over the same liquidations for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import buckets

TOP_SHARE = 0.10
RANGE_PCT = 5.0
MIN_FORECASTS_FOR_INTERVAL = 5
BOOTSTRAP_DRAWS = 400


def top_buckets(price: float, step: float, scores: dict[int, float] | None,
                range_pct: float = RANGE_PCT) -> tuple[np.ndarray, np.ndarray]:
    """(every bucket within ±range_pct of price, the top 10 % of them) by score; ties and zeros by distance
    (so an empty forecast is the baseline). ``scores`` None: the distance baseline."""
    lo = int(buckets.index(price * (1 - range_pct / 100), step))
    hi = int(buckets.index(price * (1 + range_pct / 100), step))
    idx = np.arange(lo, hi + 1)
    dist = np.abs((idx + 0.5) * step - price)
    n_top = max(1, int(math.ceil(TOP_SHARE * len(idx))))
    if scores is None:
        order = np.argsort(dist, kind="stable")
    else:
        s = np.array([scores.get(int(b), 0.0) for b in idx])
        order = np.lexsort((dist, -s))  # by score descending, then nearest first
    return idx, idx[order[:n_top]]


@dataclass
class _Open:
    """A forecast waiting for its hour to pass."""

    t: float
    step: float
    lo: int
    hi: int
    top_model: np.ndarray
    top_base: np.ndarray
    model_usd: float = 0.0
    base_usd: float = 0.0
    realized_usd: float = 0.0


@dataclass(frozen=True)
class Settled:
    """One forecast's hour: the liquidation USD its top buckets caught, the baseline's, all of it in range."""

    t: float
    model_usd: float
    base_usd: float
    realized_usd: float


@dataclass(frozen=True)
class HitScore:
    """The hit rate so far: forecast ÷ baseline over ``n`` settled forecasts that saw liquidations in range."""

    ratio: float | None
    n: int
    lo: float | None = None  # 90 % bootstrap interval of the ratio (None with fewer than 5 forecasts)
    hi: float | None = None
    pending: int = 0  # forecasts whose hour has not passed yet
    model_share: float | None = None  # share of the in-range liquidation USD the forecast's top buckets caught
    base_share: float | None = None

    def text(self) -> str:
        """``hit 1.6× baseline (1.2–2.0), n=42`` — or what is missing (the ratio only from
        ``MIN_FORECASTS_FOR_INTERVAL`` forecasts, when it has its interval)."""
        if self.ratio is None:
            return f"hit: scoring, {self.pending} forecast{'s' if self.pending != 1 else ''} pending" \
                if self.n == 0 else f"hit: n={self.n}, no baseline hit yet"
        if few := too_few(self.n):
            return f"hit: {few}"
        ci = f" ({self.lo:.1f}–{self.hi:.1f})" if self.lo is not None and self.hi is not None else ""
        return f"hit {self.ratio:.1f}× baseline{ci}, n={self.n}"

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "n": self.n, "lo": self.lo, "hi": self.hi, "pending": self.pending,
                "model_share": self.model_share, "base_share": self.base_share}


def too_few(n: int) -> str | None:
    """``n=3, judged from 5`` while fewer than ``MIN_FORECASTS_FOR_INTERVAL`` results are in (one hour's or one
    comparison's 0.0× or 5× is no verdict: no ratio is printed before its interval), else None. The one rule
    behind the hit header, the hit rate's text and the exact positions' accuracy line."""
    return f"n={n}, judged from {MIN_FORECASTS_FOR_INTERVAL}" if n < MIN_FORECASTS_FOR_INTERVAL else None


def ratio_of_sums(model: np.ndarray, base: np.ndarray) -> float | None:
    b = float(base.sum())
    return float(model.sum()) / b if b > 0 else None


def ratio_interval(model: np.ndarray, base: np.ndarray) -> tuple[float | None, float | None]:
    """90 % bootstrap interval of Σ model ÷ Σ base over the resampled items (forecasts, comparisons); (None, None)
    with fewer than ``MIN_FORECASTS_FOR_INTERVAL``. A fixed seed: the same history always prints the same interval."""
    n = len(model)
    if n < MIN_FORECASTS_FOR_INTERVAL:
        return None, None
    rng = np.random.default_rng(20261205)
    draws = rng.integers(0, n, size=(BOOTSTRAP_DRAWS, n))
    bs = base[draws].sum(axis=1)
    ok = bs > 0
    boot = model[draws].sum(axis=1)[ok] / bs[ok]
    if not len(boot):
        return None, None
    lo, hi = np.percentile(boot, [5.0, 95.0])
    return float(lo), float(hi)


@dataclass
class HitRate:
    """One asset's forecast scoring (see the module docstring)."""

    every_s: float = 900.0
    horizon_s: float = 3600.0
    range_pct: float = RANGE_PCT
    open: list[_Open] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    next_due: float | None = None
    _score: HitScore | None = None

    def due(self, now: float) -> bool:
        return self.next_due is None or now >= self.next_due

    def add_forecast(self, now: float, price: float, step: float, bucket: np.ndarray, usd: np.ndarray) -> None:
        """Fix the rankings of a new forecast (expected USD per bucket) made at ``now`` from ``price``."""
        if not (price and price > 0 and step > 0):
            return
        scores = dict(zip(np.asarray(bucket).tolist(), np.asarray(usd, dtype=float).tolist()))
        idx, top_m = top_buckets(price, step, scores, self.range_pct)
        _, top_b = top_buckets(price, step, None, self.range_pct)
        self.open.append(_Open(now, step, int(idx[0]), int(idx[-1]), top_m, top_b))
        self.next_due = (math.floor(now / self.every_s) + 1) * self.every_s
        self._score = None

    def observe(self, liqs: np.ndarray) -> None:
        """Score new liquidation rows (``ts``, ``price``, ``usd``) against every forecast still open."""
        if not len(liqs) or not self.open:
            return
        ts = np.asarray(liqs["ts"], dtype=float)
        px = np.asarray(liqs["price"], dtype=float)
        usd = np.asarray(liqs["usd"], dtype=float)
        for o in self.open:
            m = (ts >= o.t) & (ts < o.t + self.horizon_s)
            if not m.any():
                continue
            b = np.floor(px[m] / o.step + 1e-9).astype(np.int64)
            u = usd[m]
            inside = (b >= o.lo) & (b <= o.hi)
            o.realized_usd += float(u[inside].sum())
            o.model_usd += float(u[inside & np.isin(b, o.top_model)].sum())
            o.base_usd += float(u[inside & np.isin(b, o.top_base)].sum())
        self._score = None

    def settle(self, now: float) -> list[Settled]:
        """Close every forecast whose hour has passed; returns the newly settled ones (to persist)."""
        done = [o for o in self.open if now >= o.t + self.horizon_s]
        if not done:
            return []
        self.open = [o for o in self.open if now < o.t + self.horizon_s]
        new = [Settled(o.t, o.model_usd, o.base_usd, o.realized_usd) for o in done]
        self.settled.extend(new)
        self._score = None
        return new

    def restore(self, rows: list[Settled]) -> None:
        """Settled forecasts from the history (a live run accumulates its hit rate over days)."""
        known = {s.t for s in self.settled}
        self.settled.extend(s for s in rows if s.t not in known)
        self.settled.sort(key=lambda s: s.t)
        self._score = None

    def score(self) -> HitScore:
        if self._score is not None:
            return self._score
        used = [s for s in self.settled if s.realized_usd > 0]
        n = len(used)
        if not n:
            self._score = HitScore(None, 0, pending=len(self.open))
            return self._score
        m = np.array([s.model_usd for s in used])
        b = np.array([s.base_usd for s in used])
        r = np.array([s.realized_usd for s in used])
        ratio = ratio_of_sums(m, b)
        lo, hi = ratio_interval(m, b) if ratio is not None else (None, None)
        self._score = HitScore(ratio, n, lo, hi, len(self.open), float(m.sum() / r.sum()), float(b.sum() / r.sum()))
        return self._score


def pooled(rates) -> HitScore:
    """Every asset's settled forecasts as one score (the collect status line, the headless report)."""
    allr = HitRate()
    for r in rates:
        allr.settled.extend(r.settled)
        allr.open.extend(r.open)
    return allr.score()

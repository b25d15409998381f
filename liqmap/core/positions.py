"""Exact positions: the book of tracked wallets' positions on a venue that publishes them (Hyperliquid).

Hyperliquid answers ``clearinghouseState`` for any wallet with its positions and their liquidation prices
(docs/hyperliquid.md §3). The feeds poll the wallets that matter most (``liqmap/feeds/hl_positions.py``) and
hand each answer, parsed into :class:`ExactPosition` rows, to :meth:`PositionBook.apply`. From the book:

- ``levels(asset, step)``: the *exact* at-risk map — USD that would be liquidated if price reached each
  bucket (a long's size × its liquidation price, below price; a short's above), in the shape of the synthetic
  model's ``levels()`` ``(bucket, long_usd, short_usd)``, so the grids, the verdict and the accuracy check
  read both alike;
- ``coverage(asset, oi)``: how many wallets that map holds and what share of the venue's open interest they
  cover — the map is a sample of the largest wallets, never the whole market, and must say so;
- ``detected``: liquidations seen as a position that vanished (or shrank: Hyperliquid liquidates positions
  above 100k USDC 20 % at a time) between two polls while price traded to within ``tolerance_pct`` of its last
  liquidation price. The only liquidations the public API shows (no market-wide stream exists, docs/hyperliquid.md §5): a
  tracked wallet's, which is at most the covered share of the venue's liquidations;
- ``segments(asset)``: each level as a band over time (from when it was first seen to when it ended: a poll
  that moved or removed it, or the first trade through its price, ``cross``), so the Positions mode draws exact
  levels like the other modes draw theirs.

Pure data: no I/O, no clock of its own (every call says its time).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .events import LIQ_DTYPE, LONG, PRICE_FILL, SHORT
from .hitrate import ratio_interval, too_few, top_buckets

#: ``price_range(asset, t0, t1)`` → (lowest, highest) traded price in [t0, t1], or None when unknown.
PriceRange = Callable[[str, float, float], "tuple[float, float] | None"]


@dataclass(frozen=True)
class ExactPosition:
    """One wallet's position in one asset, as its venue reported it at ``refreshed``."""

    wallet: str
    asset: str
    size: float  # signed, base units (positive long)
    entry: float
    leverage: float
    cross: bool  # cross margin: the liquidation price moves with the wallet's other cross positions
    liq_px: float  # NaN: no reachable liquidation price (the venue sends null)
    margin: float  # USD held by the position
    refreshed: float

    @property
    def side(self) -> int:
        return LONG if self.size > 0 else SHORT

    @property
    def at_risk_usd(self) -> float:
        """USD liquidated if price reaches the liquidation price (0 without one)."""
        return abs(self.size) * self.liq_px if self.liq_px > 0 and math.isfinite(self.liq_px) else 0.0


@dataclass(frozen=True)
class DetectedLiquidation:
    """A tracked position that vanished (or shrank) at its liquidation price between two polls."""

    ts: float  # the poll that saw it gone (the liquidation happened between ``prev_ts`` and ``ts``)
    prev_ts: float
    asset: str
    wallet: str
    side: int  # LONG / SHORT: the position's side
    price: float  # its last known liquidation price
    size: float  # base units liquidated (positive)
    partial: bool  # the position shrank rather than vanished

    @property
    def usd(self) -> float:
        return self.size * self.price


#: A position is held at 3× or less when its liquidation price is at least this far from its entry (a 3× position's
#: third, less a maintenance margin's worth) or when it has none (the venue sends a null ``liquidationPx`` when the
#: account's equity covers any move). The synthetic model's resting layer believes most of a venue's open interest
#: is held so (docs/model.md §3 step 13): the tracked wallets are the one place that belief can be read live.
LOW_LEVERAGE_DISTANCE = 0.30


def low_leverage_share(ps: Iterable[ExactPosition]) -> float | None:
    """The share of these positions' notional (at entry) held at 3× or less (``LOW_LEVERAGE_DISTANCE``); None
    without any."""
    total = far = 0.0
    for p in ps:
        usd = abs(p.size) * p.entry
        total += usd
        if not (p.liq_px > 0 and math.isfinite(p.liq_px)) or abs(p.liq_px / p.entry - 1.0) >= LOW_LEVERAGE_DISTANCE:
            far += usd
    return far / total if total > 0 else None


@dataclass(frozen=True)
class Coverage:
    """What the exact map of one asset holds: ``wallets`` with a position in it, their notional, the share of the
    venue's open interest they cover (None without an OI sample), and the share of their notional held at 3× or
    less (``low_leverage_share``; None without positions)."""

    wallets: int
    positions: int
    notional_usd: float
    oi_share: float | None
    low_leverage: float | None = None

    def label(self, venue: str = "HL") -> str:
        """``exact: 812 wallets, 23 % of HL OI, 41 % at ≤3×`` — so nobody mistakes a sample for the whole, and the
        resting layer's belief (most OI at a few ×) can be checked against it."""
        share = "OI share unknown" if self.oi_share is None else f"{self.oi_share * 100:.0f} % of {venue} OI"
        low = "" if self.low_leverage is None else f", {self.low_leverage * 100:.0f} % at ≤3×"
        return f"exact: {self.wallets} wallet{'s' if self.wallets != 1 else ''}, {share}{low}"

    def to_dict(self) -> dict:
        return {"wallets": self.wallets, "positions": self.positions, "notional_usd": self.notional_usd,
                "oi_share": self.oi_share, "low_leverage_share": self.low_leverage}


def oi_share(sizes: Iterable[float], oi_base: float | None) -> float | None:
    """Share of open interest ``oi_base`` (one side, base units: liqmap's convention, ``core/events.py``) held
    by positions of these signed sizes. Every contract has a long and a short, so the whole market's
    Σ|size| is twice the one-sided OI."""
    if not oi_base or not (oi_base > 0 and math.isfinite(oi_base)):
        return None
    total = sum(abs(s) for s in sizes)
    return min(1.0, total / (2.0 * oi_base))


class PositionBook:
    """Per wallet, per asset: the newest reported position (see the module docstring)."""

    def __init__(self, tolerance_pct: float = 0.5, max_segments: int = 5000, max_detected: int = 5000) -> None:
        self.tolerance = max(float(tolerance_pct), 0.0) / 100.0
        self._wallets: dict[str, dict[str, ExactPosition]] = {}
        # the same positions by asset (the engine reads one asset per ingest, 65 of them a second) and a
        # version per asset, so an asset's levels are recomputed only after one of its positions changed
        self._by_asset: dict[str, dict[str, ExactPosition]] = {}
        self._asset_version: dict[str, int] = {}
        self._levels_cache: dict[tuple[str, float], tuple[int, tuple]] = {}
        self._refreshed: dict[str, float] = {}
        # asset → wallet → (first seen, liq_px, side, usd) of the band being drawn; closed bands below
        self._open: dict[str, dict[str, tuple[float, float, int, float]]] = {}
        self._max_segments = max(1, int(max_segments))  # ended bands kept per asset (the newest)
        self._closed: dict[str, deque] = {}
        self.detected: deque[DetectedLiquidation] = deque(maxlen=max(1, int(max_detected)))
        self._new_detected: list[DetectedLiquidation] = []
        self.detected_by_asset: dict[str, int] = {}
        self.stats = {"answers": 0, "positions": 0, "detected": 0, "vanished": 0, "forgotten": 0}
        self.version = 0
        # Written by the poller on the event loop, read by the engine's worker threads.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ updates
    def apply(self, wallet: str, positions: Iterable[ExactPosition], ts: float,
              price_range: PriceRange | None = None) -> list[DetectedLiquidation]:
        """The wallet's whole state at ``ts`` (its answer lists every open position: one absent is closed).
        Returns the liquidations detected against the wallet's previous state."""
        with self._lock:
            return self._apply(wallet, positions, ts, price_range)

    def _apply(self, wallet: str, positions: Iterable[ExactPosition], ts: float,
               price_range: PriceRange | None) -> list[DetectedLiquidation]:
        new = {p.asset: p for p in positions}
        old = self._wallets.get(wallet, {})
        prev_ts = self._refreshed.get(wallet)
        found: list[DetectedLiquidation] = []
        for asset, p in old.items():
            q = new.get(asset)
            same_side = q is not None and (q.size > 0) == (p.size > 0)
            lost = abs(p.size) - (abs(q.size) if same_side else 0.0)
            if q is None:
                self.stats["vanished"] += 1
            if lost > 1e-12 * max(abs(p.size), 1.0) and prev_ts is not None:
                d = self._check(p, lost, q is not None and same_side, prev_ts, ts, price_range)
                if d is not None:
                    found.append(d)
        for asset in set(old) | set(new):
            self._segment(wallet, asset, new.get(asset), ts)
            self._index(wallet, asset, new.get(asset), old.get(asset))
        if new:
            self._wallets[wallet] = new
        else:
            self._wallets.pop(wallet, None)
        self._refreshed[wallet] = ts
        self.stats["answers"] += 1
        self.stats["positions"] += len(new)
        if found:
            self.detected.extend(found)
            self._new_detected.extend(found)
            self.stats["detected"] += len(found)
            for d in found:
                self.detected_by_asset[d.asset] = self.detected_by_asset.get(d.asset, 0) + 1
        self.version += 1
        return found

    def _check(self, p: ExactPosition, lost: float, partial: bool, t0: float, t1: float,
               price_range: PriceRange | None) -> DetectedLiquidation | None:
        """A liquidation if price traded to within the tolerance of the last liquidation price meanwhile."""
        if price_range is None or not (p.liq_px > 0 and math.isfinite(p.liq_px)):
            return None
        rng = price_range(p.asset, t0, t1)
        if rng is None:
            return None
        lo, hi = rng
        reached = lo <= p.liq_px * (1 + self.tolerance) if p.size > 0 else hi >= p.liq_px * (1 - self.tolerance)
        if not reached:
            return None
        return DetectedLiquidation(t1, t0, p.asset, p.wallet, p.side, p.liq_px, lost, partial)

    def _index(self, wallet: str, asset: str, p: ExactPosition | None, old: ExactPosition | None) -> None:
        by = self._by_asset.setdefault(asset, {})
        if p is None:
            by.pop(wallet, None)
        else:
            by[wallet] = p
        if p is None or old is None or (p.size, p.liq_px, p.entry) != (old.size, old.liq_px, old.entry):
            self._asset_version[asset] = self._asset_version.get(asset, 0) + 1

    def _segment(self, wallet: str, asset: str, p: ExactPosition | None, ts: float) -> None:
        """Keep the drawn band of (wallet, asset) in step with its level: a new band when the level moves."""
        bands = self._open.setdefault(asset, {})
        cur = bands.get(wallet)
        usd = p.at_risk_usd if p is not None else 0.0
        if cur is not None:
            t0, px, side, cur_usd = cur
            if p is not None and usd > 0 and px == p.liq_px and side == p.side and abs(cur_usd - usd) <= 0.01 * usd:
                return
            self._end(asset, cur, ts)
            del bands[wallet]
        if p is not None and usd > 0:
            bands[wallet] = (ts, p.liq_px, p.side, usd)

    def _end(self, asset: str, band: tuple[float, float, int, float], ts: float) -> None:
        t0, px, side, usd = band
        closed = self._closed.get(asset)
        if closed is None:
            closed = self._closed[asset] = deque(maxlen=self._max_segments)
        closed.append((px, side, usd, t0, ts))

    def cross(self, asset: str, ts: np.ndarray, price: np.ndarray) -> int:
        """Trades of ``asset`` (times, prices; any order): a band whose liquidation price a trade reached after
        the band began ends at the first such trade — a long's at a price at or below it, a short's at or
        above. Its wallet was liquidated or closed there, whenever the budget polls it again; drawn on until
        then, the band would be a wall that is not there (the right edge's strip drops such levels too,
        ``engine/exact.standing``). The next poll opens a new band if the position is still there. Returns
        the number of bands ended."""
        with self._lock:
            bands = self._open.get(asset)
            if not bands or not len(price):
                return 0
            ts, price = np.asarray(ts, dtype=float), np.asarray(price, dtype=float)
            lo, hi = float(np.min(price)), float(np.max(price))
            ended = []
            for wallet, band in bands.items():
                t0, px, side, _ = band
                if side > 0:
                    if px < lo:  # no trade reached it: the common case costs one comparison
                        continue
                    hit = (price <= px) & (ts >= t0)
                else:
                    if px > hi:
                        continue
                    hit = (price >= px) & (ts >= t0)
                if hit.any():
                    ended.append((wallet, float(ts[hit].min())))
            for wallet, t in ended:
                self._end(asset, bands.pop(wallet), t)
            if ended:
                self.version += 1
            return len(ended)

    def forget(self, wallet: str, ts: float) -> None:
        """Stop tracking ``wallet`` (the cap on tracked wallets): its levels end now, nothing is detected."""
        with self._lock:
            self._forget(wallet, ts)

    def _forget(self, wallet: str, ts: float) -> None:
        for asset, p in list(self._wallets.get(wallet, {}).items()):
            self._segment(wallet, asset, None, ts)
            self._index(wallet, asset, None, p)
        self._wallets.pop(wallet, None)
        self._refreshed.pop(wallet, None)
        self.stats["forgotten"] += 1
        self.version += 1

    def drain_detected(self) -> list[DetectedLiquidation]:
        """Liquidations detected since the last call (for the market's liquidation rows)."""
        with self._lock:
            out, self._new_detected = self._new_detected, []
        return out

    # ------------------------------------------------------------------ reading
    @property
    def wallets(self) -> int:
        return len(self._refreshed)

    def refreshed(self, wallet: str) -> float | None:
        return self._refreshed.get(wallet)

    def positions(self, asset: str | None = None) -> list[ExactPosition]:
        with self._lock:
            if asset is not None:
                return list(self._by_asset.get(asset, {}).values())
            return [p for ps in self._wallets.values() for p in ps.values()]

    def assets(self) -> set[str]:
        with self._lock:
            return {a for a, ps in self._by_asset.items() if ps}

    def levels(self, asset: str, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The exact at-risk map: (bucket int64, long USD, short USD) of every bucket holding a liquidation
        price, like ``SyntheticModel.levels``. Cached until one of the asset's positions changes."""
        with self._lock:
            version = self._asset_version.get(asset, 0)
            hit = self._levels_cache.get((asset, step))
            if hit is not None and hit[0] == version:
                return hit[1]
            ps = [p for p in self._by_asset.get(asset, {}).values() if p.at_risk_usd > 0]
        out = self._levels(ps, step)
        with self._lock:
            self._levels_cache[(asset, step)] = (version, out)
        return out

    @staticmethod
    def _levels(ps: list[ExactPosition], step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not ps or not step > 0:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        px = np.array([p.liq_px for p in ps])
        usd = np.array([p.at_risk_usd for p in ps])
        long_ = np.array([p.size > 0 for p in ps])
        b = np.floor(px / step + 1e-9).astype(np.int64)
        uniq, inv = np.unique(b, return_inverse=True)
        lo = np.bincount(inv, weights=np.where(long_, usd, 0.0), minlength=len(uniq))
        sh = np.bincount(inv, weights=np.where(long_, 0.0, usd), minlength=len(uniq))
        return uniq, lo, sh

    def coverage(self, asset: str, oi_base: float | None = None) -> Coverage:
        ps = self.positions(asset)
        wallets = len({p.wallet for p in ps})
        notional = sum(abs(p.size) * p.entry for p in ps)
        return Coverage(wallets, len(ps), notional, oi_share([p.size for p in ps], oi_base), low_leverage_share(ps))

    def segments(self, asset: str | None = None) -> np.ndarray:
        """Every band (closed and open) as rows of ``SEGMENT_DTYPE``; open bands end at +inf."""
        with self._lock:
            closed = [self._closed.get(asset, ())] if asset is not None else list(self._closed.values())
            rows = [r for c in closed for r in c]
            opened = [self._open.get(asset, {})] if asset is not None else list(self._open.values())
            rows += [(px, side, usd, t0, math.inf) for bands in opened for (t0, px, side, usd) in bands.values()]
        return np.array(rows, dtype=SEGMENT_DTYPE) if rows else np.zeros(0, SEGMENT_DTYPE)

    def liquidation_rows(self, found: Iterable[DetectedLiquidation], venue_id: int) -> np.ndarray:
        """Detected liquidations as the market's liquidation rows (``LIQ_DTYPE``; price = the liquidation price,
        which Hyperliquid liquidates at the mark: closest to a fill price)."""
        found = list(found)
        out = np.zeros(len(found), LIQ_DTYPE)
        for i, d in enumerate(found):
            out[i] = (d.ts, d.price, d.size, d.usd, d.side, venue_id, PRICE_FILL)
        return out


SEGMENT_DTYPE = np.dtype([("price", "f8"), ("side", "i1"), ("usd", "f8"), ("start", "f8"), ("end", "f8")])


@dataclass(frozen=True)
class Accuracy:
    """One comparison of the model with the exact map over the same range (docs/model.md §8): the share of the
    exact at-risk USD within ±``range_pct`` of price that falls in the model's top 10 % of buckets, and in the
    distance baseline's (the nearest 10 %)."""

    ts: float
    exact_usd: float
    model_share: float
    base_share: float

    @property
    def ratio(self) -> float | None:
        return self.model_share / self.base_share if self.base_share > 0 else None

    def to_dict(self) -> dict:
        return {"ts": self.ts, "exact_usd": self.exact_usd, "model_share": self.model_share,
                "base_share": self.base_share, "ratio": self.ratio}


def accuracy(model_levels, exact_levels, price: float, step: float, ts: float = 0.0,
             range_pct: float = 5.0) -> Accuracy | None:
    """Compare ``model_levels`` with ``exact_levels`` (both ``(bucket, long, short)``) around ``price``; None when
    the exact map holds nothing in range. Reuses the hit rate's rankings (``hitrate.top_buckets``): the
    model's top 10 % by at-risk USD (ties and empty buckets nearest first), the baseline's the nearest 10 %."""
    if not (price and price > 0 and step > 0):
        return None
    eb, el, es = (np.asarray(x) for x in exact_levels)
    mb, ml, ms = (np.asarray(x) for x in model_levels)
    scores = dict(zip(mb.astype(np.int64).tolist(), (ml + ms).astype(float).tolist()))
    idx, top_m = top_buckets(price, step, scores, range_pct)
    _, top_b = top_buckets(price, step, None, range_pct)
    eb = eb.astype(np.int64)
    usd = el.astype(float) + es.astype(float)
    inside = (eb >= idx[0]) & (eb <= idx[-1])
    total = float(usd[inside].sum())
    if not total > 0:
        return None
    m = float(usd[inside & np.isin(eb, top_m)].sum()) / total
    b = float(usd[inside & np.isin(eb, top_b)].sum()) / total
    return Accuracy(ts, total, m, b)


@dataclass(frozen=True)
class AccuracyScore:
    """The live accuracy over the comparisons so far (pooled: shares weighted by each one's exact USD)."""

    n: int
    model_share: float | None
    base_share: float | None
    last: Accuracy | None = None
    lo: float | None = None  # 90 % bootstrap interval of the ratio over the comparisons (None with fewer than 5)
    hi: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.model_share is None or not self.base_share:
            return None
        return self.model_share / self.base_share

    def text(self) -> str:
        """``model 41 % vs base 18 % of exact $ (2.3×, 1.6–3.1) n=12`` — the interval as the hit rate's (none with
        fewer than 5 comparisons: one comparison's 0.0× or 5× says little, so no ratio is printed before then) — or that
        none was possible yet."""
        if not self.n or self.model_share is None:
            return "accuracy: waiting for exact positions in range"
        if few := too_few(self.n):  # the shares, but no ratio to read a verdict from yet
            return f"model {self.model_share * 100:.0f} % vs base {self.base_share * 100:.0f} % of exact $ {few}"
        r = self.ratio
        ci = f", {self.lo:.1f}–{self.hi:.1f}" if self.lo is not None and self.hi is not None else ""
        return (f"model {self.model_share * 100:.0f} % vs base {self.base_share * 100:.0f} % of exact $"
                f"{f' ({r:.1f}×{ci})' if r is not None else ''} n={self.n}")

    def to_dict(self) -> dict:
        return {"n": self.n, "model_share": self.model_share, "base_share": self.base_share, "ratio": self.ratio,
                "lo": self.lo, "hi": self.hi, "last": self.last.to_dict() if self.last is not None else None}


class AccuracyLog:
    """Comparisons made every ``every_s`` (the engine calls ``due``/``add``), the newest ``keep`` kept."""

    def __init__(self, every_s: float = 300.0, keep: int = 288) -> None:
        self.every_s = float(every_s)
        self.items: deque[Accuracy] = deque(maxlen=max(1, int(keep)))
        self.next_due: float | None = None
        # the engine reads the score at every ingest; it changes only with a comparison (every_s), and its
        # interval is a bootstrap: computed once per comparison, not per ingest
        self._score: AccuracyScore | None = None

    def due(self, now: float) -> bool:
        return self.next_due is None or now >= self.next_due

    def add(self, now: float, acc: Accuracy | None) -> None:
        self.next_due = now + self.every_s
        if acc is not None:
            self.items.append(acc)
            self._score = None

    def score(self) -> AccuracyScore:
        if self._score is None:
            self._score = self._scored()
        return self._score

    def _scored(self) -> AccuracyScore:
        if not self.items:
            return AccuracyScore(0, None, None)
        w = np.array([a.exact_usd for a in self.items])
        m = np.array([a.model_share for a in self.items])
        b = np.array([a.base_share for a in self.items])
        tot = float(w.sum())
        lo, hi = ratio_interval(w * m, w * b)  # the pooled ratio is Σ w·m ÷ Σ w·b: resample the comparisons
        return AccuracyScore(len(self.items), float((w * m).sum() / tot), float((w * b).sum() / tot),
                             self.items[-1], lo, hi)

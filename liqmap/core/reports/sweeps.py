"""Sweeps (docs/detectors.md §3): runs of same-side aggressive trades that walk the book.

Per venue, taker trades are grouped by side while the gap between consecutive trades is ≤ ``gap_ms``. A run
is a sweep when
- it moved price by ≥ max(``min_ticks`` ticks, ``min_bp``) (high − low of its own trade prices) or traded at
  ≥ ``min_levels`` distinct prices (book levels hit), and
- its USD ≥ μ + kσ of that venue's 1-second notional over ``stats_window_s`` (seconds without trades count as
  zero), never below the asset's floor, and ``warmup_factor`` × the floor while history is shorter than
  ``warmup_s``.

Each sweep says whether it cleared a wall (a tracked wall on the side it hit sat in its bucket range), and
which liquidations of the forced side (short liquidations are forced buys) on its venue fell within
``liq_pad_s`` of it. Sweeps on the same side within ``cross_venue_ms`` on ≥ 2 venues are cross-venue.
Repeats are clustered for display (:func:`cluster`).

Only new trades are processed each tick; the open run at the end of a tick is carried to the next one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from ..buckets import index
from ..events import ASK, BID, BUY, LIQ_DTYPE, VENUE_ID
from ._common import (TAKER_NAME, Cols, Record, adaptive_threshold, columns, concat, floor_usd, ncols, params, take,
                      venue_name)


@dataclass(frozen=True)
class Sweep(Record):
    ts: float  # first trade
    end_ts: float  # last trade
    side: str  # taker side: "buy" | "sell"
    venue: str
    usd: float
    qty: float
    trades: int
    price_first: float
    price_last: float
    price_lo: float
    price_hi: float
    bp: float  # (hi − lo) / lo × 1e4
    levels: int  # distinct trade prices (book levels hit)
    bucket_lo: int
    bucket_hi: int
    threshold_usd: float  # the adaptive threshold it beat
    cleared_wall: float | None = None  # price of the wall it went through, if any
    liq_usd: float = 0.0  # forced-side liquidations on its venue inside the sweep (± liq_pad_s)
    liq_count: int = 0
    cross_venues: tuple[str, ...] = ()  # other venues swept on the same side within cross_venue_ms

    @property
    def liq_driven(self) -> bool:
        return self.liq_count > 0

    def _json_extra(self) -> dict[str, Any]:
        return {"liq_driven": self.liq_driven, "cross_venue": bool(self.cross_venues)}


@dataclass(frozen=True)
class SweepCluster(Record):
    """Repeated sweeps on one side near one level: shown as ``count × total``."""

    side: str
    count: int
    total_usd: float
    ts: float  # first member's start (the map's time cursor jumps here)
    last_ts: float
    price_lo: float
    price_hi: float
    bp: float
    levels: int  # the most levels any member crossed
    venues: tuple[str, ...]
    cross_venue: bool
    cleared_wall: float | None
    liq_usd: float
    members: tuple[Sweep, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        obj = super().from_dict(d)
        return replace(obj, members=tuple(Sweep.from_dict(m) if isinstance(m, dict) else m
                                          for m in obj.members))


MAX_OPEN_RUN = 50_000  # trades; a run this long is closed at the tick boundary


class SecondNotional:
    """A venue's traded USD per whole second over a sliding window, for μ + kσ thresholds."""

    def __init__(self, window_s: int) -> None:
        self.n = max(1, int(window_s))
        self.usd = np.zeros(self.n)
        self.sec = np.full(self.n, -(1 << 62), dtype=np.int64)
        self.first: int | None = None

    def add(self, ts: np.ndarray, usd: np.ndarray) -> None:
        if not len(ts):
            return
        secs = np.floor(ts).astype(np.int64)
        u, inv = np.unique(secs, return_inverse=True)
        sums = np.bincount(inv, weights=usd)
        if len(u) > self.n:  # a batch longer than the window: only its newest seconds matter
            u, sums = u[-self.n:], sums[-self.n:]
        slots = u % self.n
        stale = self.sec[slots] != u
        self.usd[slots[stale]] = 0.0
        self.sec[slots] = u
        self.usd[slots] += sums
        lo = int(u[0])
        self.first = lo if self.first is None else min(self.first, lo)

    def stats(self, now: float) -> tuple[float, float, float]:
        """(μ, σ, seconds of history) of per-second USD over the window ending at ``now``."""
        if self.first is None:
            return 0.0, 0.0, 0.0
        cur = int(math.floor(now))
        span = max(1, min(self.n, cur - self.first + 1))
        valid = (self.sec > cur - span) & (self.sec <= cur)
        vals = self.usd[valid]
        mu = float(vals.sum()) / span
        var = max(0.0, float(np.dot(vals, vals)) / span - mu * mu)
        return mu, math.sqrt(var), float(cur - self.first)


class SweepDetector:
    """Finds sweeps in each tick's new trades; keeps the recent ones for display and convergence."""

    def __init__(self, asset: str, cfg: Mapping[str, Any] | None = None, tick: float = 0.0) -> None:
        self.p = params(cfg, "sweeps")
        self.tick = float(tick)
        self.floor = floor_usd(self.p, asset)
        self._tail: dict[int, Cols] = {}  # per venue: the run still open at the end of the last tick
        self._stats: dict[int, SecondNotional] = {}
        self._liqs = np.zeros(0, dtype=LIQ_DTYPE)
        self.sweeps: list[Sweep] = []
        self.version = 0
        self._clusters: tuple[int, list[SweepCluster]] | None = None
        self._thr_cache: dict[tuple[int, int], float] = {}  # (venue, second) → threshold, per update

    def reset(self) -> None:
        """Drop bucket-indexed state (the bucket step changed); the notional statistics stay valid."""
        self.sweeps.clear()
        self.version += 1

    def threshold(self, venue: int, now: float) -> float:
        key = (venue, math.floor(now))
        hit = self._thr_cache.get(key)
        if hit is None:
            hit = self._thr_cache[key] = self._threshold(venue, now)
        return hit

    def _threshold(self, venue: int, now: float) -> float:
        st = self._stats.get(venue)
        mu, sd, span = st.stats(now) if st else (0.0, 0.0, 0.0)
        return adaptive_threshold(self.p, self.floor, span < float(self.p["warmup_s"]), mu, sd)

    def update(self, now: float, trades: np.ndarray | Cols | None, liqs: np.ndarray | None, step: float,
               walls: Callable[[int], list[tuple[int, float, float | None]]] | None = None) -> list[Sweep]:
        """Process only this tick's new rows; return the sweeps found in this tick."""
        p = self.p
        new: list[Sweep] = []
        self._thr_cache.clear()  # the per-second series changes below
        if liqs is not None and len(liqs):
            self._liqs = np.concatenate([self._liqs, liqs])
        if len(self._liqs):
            self._liqs = self._liqs[self._liqs["ts"] >= now - max(120.0, 4 * float(p["liq_pad_s"]))]
        trades = columns(trades)
        nt = ncols(trades)
        venues = set(np.unique(trades["venue"]).tolist()) | set(self._tail)
        for v in sorted(venues):
            nv = take(trades, trades["venue"] == v) if nt else trades
            tail = self._tail.pop(v, None)
            arr = nv if tail is None else concat(tail, nv)
            if ncols(arr) > 1 and (np.diff(arr["ts"]) < 0).any():
                arr = take(arr, np.argsort(arr["ts"], kind="stable"))
            if ncols(nv):
                self._stats.setdefault(v, SecondNotional(int(p["stats_window_s"]))).add(nv["ts"], nv["usd"])
            if ncols(arr):
                new.extend(self._runs(now, v, arr, step))
        new = [self._decorate(s, walls) for s in new]
        for s in new:
            self._add_marking_cross_venue(s)
        if liqs is not None and len(liqs) and self.sweeps:
            self._reattach_liqs(float(liqs["ts"].min()))
        keep = now - float(p["keep_s"])
        if self.sweeps and (self.sweeps[0].end_ts < keep or len(self.sweeps) > int(p["max_kept"])):
            self.sweeps = [s for s in self.sweeps if s.end_ts >= keep][-int(p["max_kept"]):]
            self.version += 1
        if new:
            self.version += 1
        return new

    # -- internals -------------------------------------------------------------------------------
    def _runs(self, now: float, v: int, arr: Cols, step: float) -> list[Sweep]:
        p = self.p
        gap = float(p["gap_ms"]) / 1000.0
        ts, side, price = arr["ts"], arr["side"], arr["price"]
        n = ncols(arr)
        brk = np.ones(n, dtype=bool)
        if n > 1:
            brk[1:] = (side[1:] != side[:-1]) | (np.diff(ts) > gap)
        starts = np.flatnonzero(brk)
        ends = np.append(starts[1:], n)
        # The last run stays open while another trade could still join it (bounded, so an endless drip of
        # same-side trades cannot grow the carried tail forever).
        if now - ts[-1] <= gap + float(p["close_grace_ms"]) / 1000.0 and n - starts[-1] < MAX_OPEN_RUN:
            self._tail[v] = take(arr, slice(int(starts[-1]), None))
            starts, ends = starts[:-1], ends[:-1]
        if not len(starts):
            return []
        usd = np.add.reduceat(arr["usd"][: ends[-1]], starts)
        # Every threshold is at least the floor (× the warm-up factor), so runs under it are out at once.
        cand = usd >= self.floor * min(1.0, float(p["warmup_factor"]))
        if not cand.any():
            return []
        lo = np.minimum.reduceat(price[: ends[-1]], starts)
        hi = np.maximum.reduceat(price[: ends[-1]], starts)
        out: list[Sweep] = []
        min_move_ticks = int(p["min_ticks"]) * self.tick
        for r in np.flatnonzero(cand):
            a, b = int(starts[r]), int(ends[r])
            # The threshold as of the second before the run began: its own volume (already counted in
            # the per-second series when a run spans ticks) must not raise the bar it is judged by.
            thr = self.threshold(v, math.floor(ts[a]) - 1.0)
            if usd[r] < thr:
                continue
            pr = price[a:b]
            levels = int(len(np.unique(pr)))
            move = float(hi[r] - lo[r])
            need = max(min_move_ticks, float(p["min_bp"]) * float(lo[r]) / 1e4)
            if not (move >= need - 1e-12 or levels >= int(p["min_levels"])):
                continue
            out.append(Sweep(
                ts=float(ts[a]), end_ts=float(ts[b - 1]), side=TAKER_NAME[int(side[a])], venue=venue_name(v),
                usd=float(usd[r]), qty=float(arr["qty"][a:b].sum()), trades=b - a,
                price_first=float(pr[0]), price_last=float(pr[-1]), price_lo=float(lo[r]), price_hi=float(hi[r]),
                bp=move / float(lo[r]) * 1e4, levels=levels,
                bucket_lo=int(index(lo[r], step)), bucket_hi=int(index(hi[r], step)), threshold_usd=thr,
            ))
        return out

    def _decorate(self, s: Sweep, walls) -> Sweep:
        cleared = None
        if walls is not None:
            book_side = ASK if s.side == "buy" else BID  # buys lift asks, sells hit bids
            # A wall in its range that was still standing when the sweep began (one that ended before it,
            # e.g. pulled, was not cleared by it). Walls end on the tick after the trades that ate them.
            hit = [price for bucket, price, ended in walls(book_side)
                   if s.bucket_lo <= bucket <= s.bucket_hi and (ended is None or ended >= s.ts)]
            if hit:
                cleared = max(hit) if s.side == "buy" else min(hit)  # the farthest one it went through
        usd, cnt = self._liqs_for(s)
        return replace(s, cleared_wall=cleared, liq_usd=usd, liq_count=cnt)

    def _liqs_for(self, s: Sweep) -> tuple[float, int]:
        if not len(self._liqs):
            return 0.0, 0
        pad = float(self.p["liq_pad_s"])
        forced = -(BUY if s.side == "buy" else -BUY)  # short liquidations (−1) are forced buys
        lq = self._liqs
        m = ((lq["ts"] >= s.ts - pad) & (lq["ts"] <= s.end_ts + pad) & (lq["side"] == forced)
             & (lq["venue"] == VENUE_ID.get(s.venue, -1)))
        return float(lq["usd"][m].sum()), int(m.sum())

    def _reattach_liqs(self, since: float) -> None:
        pad = float(self.p["liq_pad_s"])
        for i, s in enumerate(self.sweeps):
            if s.end_ts >= since - pad:
                usd, cnt = self._liqs_for(s)
                if (usd, cnt) != (s.liq_usd, s.liq_count):
                    self.sweeps[i] = replace(s, liq_usd=usd, liq_count=cnt)
                    self.version += 1

    def _add_marking_cross_venue(self, s: Sweep) -> None:
        """Append ``s``; mark it and any same-side sweep on another venue within ``cross_venue_ms``."""
        w = float(self.p["cross_venue_ms"]) / 1000.0
        ss = self.sweeps
        mine: set[str] = set(s.cross_venues)
        # Sweeps are appended roughly in time order (runs close a gap after their last trade), so
        # scanning back until well before ``s`` began finds every candidate.
        for i in range(len(ss) - 1, -1, -1):
            o = ss[i]
            if o.end_ts < s.ts - w - 60.0:
                break
            if o.venue != s.venue and o.side == s.side and o.ts <= s.end_ts + w and s.ts <= o.end_ts + w:
                mine.add(o.venue)
                if s.venue not in o.cross_venues:
                    ss[i] = replace(o, cross_venues=tuple(sorted({*o.cross_venues, s.venue})))
        ss.append(replace(s, cross_venues=tuple(sorted(mine))) if mine else s)

    def clusters(self, step: float | None = None) -> list[SweepCluster]:
        """Clustered for display; recomputed only when the sweeps changed (so records and their cached
        JSON are reused from tick to tick)."""
        if self._clusters is None or self._clusters[0] != self.version:
            self._clusters = (self.version, cluster(self.sweeps, float(self.p["cluster_window_s"]),
                                                    int(self.p["cluster_buckets"])))
        return self._clusters[1]


def cluster(sweeps: list[Sweep], window_s: float, near_buckets: int) -> list[SweepCluster]:
    """Merge sweeps on the same side whose bucket ranges overlap or lie within ±``near_buckets`` and that
    start within ``window_s`` of the cluster's last member. Newest cluster first."""
    groups: list[list[Sweep]] = []
    spans: list[list[float]] = []  # side, bucket lo, bucket hi, last end
    for s in sorted(sweeps, key=lambda x: x.ts):
        for g, sp in zip(groups, spans):
            if (g[0].side == s.side and s.ts - sp[2] <= window_s
                    and s.bucket_lo <= sp[1] + near_buckets and s.bucket_hi >= sp[0] - near_buckets):
                g.append(s)
                sp[0], sp[1], sp[2] = min(sp[0], s.bucket_lo), max(sp[1], s.bucket_hi), max(sp[2], s.end_ts)
                break
        else:
            groups.append([s])
            spans.append([s.bucket_lo, s.bucket_hi, s.end_ts])
    out = []
    for g in groups:
        lo = min(s.price_lo for s in g)
        hi = max(s.price_hi for s in g)
        walls = [s.cleared_wall for s in g if s.cleared_wall is not None]
        venues: list[str] = []
        for s in g:
            for v in (s.venue, *s.cross_venues):
                if v not in venues:
                    venues.append(v)
        out.append(SweepCluster(
            side=g[0].side, count=len(g), total_usd=sum(s.usd for s in g), ts=g[0].ts,
            last_ts=max(s.end_ts for s in g), price_lo=lo, price_hi=hi, bp=(hi - lo) / lo * 1e4,
            levels=max(s.levels for s in g), venues=tuple(venues),
            cross_venue=any(s.cross_venues for s in g),
            cleared_wall=(max(walls) if g[0].side == "buy" else min(walls)) if walls else None,
            liq_usd=sum(s.liq_usd for s in g), members=tuple(g),
        ))
    out.sort(key=lambda c: -c.last_ts)
    return out

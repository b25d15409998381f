"""Absorptions (docs/detectors.md §4): heavy aggression into one level that does not move price.

For each bucket and taker side over the trailing ``window_s``:
- the aggressive USD there ≥ max(floor, μ + kσ of per-level window volumes over ``stats_window_s``)
  (floor × ``warmup_factor`` until ``warmup_samples`` samples exist);
- the level is the price inside the bucket that took the most of it; since the first of those trades, no
  trade (any side, any venue) went beyond the level by more than max(``max_ticks`` ticks, ``max_bp``);
- aggressive USD ÷ the peak visible USD resting in that bucket on the absorbing side during the window
  ≥ ``refill_ratio``: more traded than was ever shown, so the level was refilled (iceberg evidence).
Taker sells absorbed by bids are a *bid* absorption (buyers absorbing), taker buys into asks an *ask* one.

While aggression keeps arriving the event grows. The outcome is *broke* as soon as a trade prints beyond
the level by more than the allowed excursion, *held* once ``horizon_s`` passed after the last aggression
without that.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..buckets import index
from ..events import ASK, BID, BUY, SELL
from ._common import (SIDE_NAME, BookBuckets, Cols, Record, adaptive_threshold, columns, concat, floor_usd, ncols,
                      params, take, venue_name)


def _empty() -> Cols:
    c = dict(columns(None))
    c["bucket"] = np.zeros(0, dtype=np.int64)
    return c


@dataclass(frozen=True)
class Absorption(Record):
    side: str  # absorbing side: "bid" (absorbing taker sells) | "ask" (absorbing taker buys)
    price: float  # the level
    bucket: int
    usd: float  # aggressive USD absorbed at the level
    start: float
    last: float  # last aggressive trade at the level
    duration_s: float
    peak_visible_usd: float  # largest resting USD seen in the bucket on the absorbing side
    refill: float  # usd ÷ peak_visible_usd
    excursion_bp: float  # farthest print beyond the level while it lasted (≥ 0)
    venues: tuple[str, ...]  # venues whose aggression it absorbed, largest first
    threshold_usd: float
    outcome: str  # "pending" | "held" | "broke"
    outcome_ts: float | None = None


@dataclass
class _Event:
    side: int  # absorbing book side
    bucket: int
    price: float
    allowed: float  # price distance beyond the level that still counts as holding
    start: float
    last: float
    usd: float
    peak: float
    excursion: float
    venue_usd: dict[int, float]
    threshold: float
    outcome: str = "pending"
    outcome_ts: float | None = None
    _rec: tuple | None = None  # (state signature, record): the record and its JSON are reused until it changes

    def record(self) -> Absorption:
        sig = (self.usd, self.last, self.peak, self.excursion, self.outcome, self.outcome_ts)
        if self._rec is not None and self._rec[0] == sig:
            return self._rec[1]
        venues = tuple(venue_name(v) for v, _ in sorted(self.venue_usd.items(), key=lambda kv: -kv[1]))
        rec = Absorption(
            side=SIDE_NAME[self.side], price=self.price, bucket=self.bucket, usd=self.usd, start=self.start,
            last=self.last, duration_s=self.last - self.start, peak_visible_usd=self.peak,
            refill=self.usd / self.peak if self.peak > 0 else math.inf,
            excursion_bp=self.excursion / self.price * 1e4, venues=venues, threshold_usd=self.threshold,
            outcome=self.outcome, outcome_ts=self.outcome_ts,
        )
        self._rec = (sig, rec)
        return rec


class AbsorptionDetector:
    """Finds absorptions from each tick's new trades and bucketed book; decides their outcomes later."""

    def __init__(self, asset: str, cfg: Mapping[str, Any] | None = None, tick: float = 0.0) -> None:
        self.p = params(cfg, "absorptions")
        self.tick = float(tick)
        self.floor = floor_usd(self.p, asset)
        # Recent trades (arrival order) + their "bucket"; pruned lazily (kept up to 2 × window_s) because
        # compacting the buffer every tick cost more than masking it.
        self._trades: Cols = _empty()
        self._book: deque[tuple[float, int, np.ndarray, np.ndarray]] = deque()
        self._samples: deque[tuple[float, np.ndarray]] = deque()
        self._last_sample: float | None = None
        self._events: list[_Event] = []
        self.settled: list[Absorption] = []  # outcomes decided since the owner last emptied it
        self.version = 0

    def reset(self) -> None:
        self._trades = _empty()
        self._book.clear()
        self._events.clear()
        self.version += 1

    def threshold(self) -> float:
        vals = [v for _, v in self._samples]
        if sum(len(v) for v in vals) < int(self.p["warmup_samples"]):
            return adaptive_threshold(self.p, self.floor, True)
        allv = np.concatenate(vals)
        return adaptive_threshold(self.p, self.floor, False, float(allv.mean()), float(allv.std()))

    def update(self, now: float, trades: np.ndarray | Cols | None, bb: BookBuckets | None,
               step: float) -> list[Absorption]:
        p = self.p
        win = float(p["window_s"])
        if bb is not None:
            self._book.append((now, bb.lo, bb.usd[BID], bb.usd[ASK]))
        while self._book and self._book[0][0] < now - win:
            self._book.popleft()
        trades = dict(columns(trades))
        trades["bucket"] = index(trades["price"], step)  # computed once, on arrival
        if ncols(trades):
            self._trades = concat(self._trades, trades)
        if ncols(self._trades) and self._trades["ts"][0] < now - 2 * win:
            self._trades = take(self._trades, self._trades["ts"] >= now - win)
        inwin = self._trades["ts"] >= now - win
        changed = self._follow(now, trades, trades["bucket"], bb)
        thr = self.threshold()
        found = self._detect(now, thr, inwin)
        self._sample(now, inwin)
        keep = now - float(p["keep_s"])
        self._events = [e for e in self._events
                        if e.outcome == "pending" or (e.outcome_ts or e.last) >= keep][-int(p["max_kept"]):]
        if found or changed:
            self.version += 1
        return [e.record() for e in found]

    def absorptions(self) -> list[Absorption]:
        """Newest first."""
        return [e.record() for e in sorted(self._events, key=lambda e: -e.last)]

    # -- internals -------------------------------------------------------------------------------
    def _follow(self, now: float, trades: Cols, b: np.ndarray, bb: BookBuckets | None) -> bool:
        """Grow live events with this tick's aggression, and settle outcomes."""
        changed = False
        win = float(self.p["window_s"])
        horizon = float(self.p["horizon_s"])
        for e in self._events:
            if e.outcome != "pending":
                continue
            if len(b):
                live = now - e.last <= win
                if live:
                    m = (b == e.bucket) & (trades["side"] == -e.side)
                    if m.any():
                        e.usd += float(trades["usd"][m].sum())
                        e.last = float(trades["ts"][m].max())
                        for v, u in zip(trades["venue"][m].tolist(), trades["usd"][m].tolist()):
                            e.venue_usd[v] = e.venue_usd.get(v, 0.0) + u
                        changed = True
                beyond = (e.price - trades["price"]) if e.side == BID else (trades["price"] - e.price)
                worst = float(beyond.max())
                if worst > e.allowed + 1e-12:
                    j = int(np.flatnonzero(beyond > e.allowed + 1e-12)[0])
                    e.outcome, e.outcome_ts = "broke", float(trades["ts"][j])
                    self.settled.append(e.record())
                    changed = True
                    continue
                e.excursion = max(e.excursion, worst)
            if bb is not None and now - e.last <= win:
                e.peak = max(e.peak, bb.at(e.side, e.bucket))
            if now - e.last >= horizon:
                e.outcome, e.outcome_ts = "held", e.last + horizon
                self.settled.append(e.record())
                changed = True
        return changed

    def _window_volumes(self, inwin: np.ndarray):
        t = self._trades
        if not inwin.any():
            return None
        b = t["bucket"]
        lo, hi = int(b[inwin].min()), int(b[inwin].max())
        out = {}
        for taker in (SELL, BUY):
            m = inwin & (t["side"] == taker)
            out[taker] = np.bincount(b[m] - lo, weights=t["usd"][m], minlength=hi - lo + 1)
        return lo, b, out

    def _detect(self, now: float, thr: float, inwin: np.ndarray) -> list[_Event]:
        wv = self._window_volumes(inwin)
        if wv is None:
            return []
        lo, b, vols = wv
        t = self._trades
        p = self.p
        win, ratio = float(p["window_s"]), float(p["refill_ratio"])
        found: list[_Event] = []
        for taker in (SELL, BUY):
            side = -taker  # the book side that absorbs: bids absorb sells
            cand = np.flatnonzero(vols[taker] >= thr)
            if not len(cand):
                continue
            buckets = cand + lo
            # Refill first (cheap, from the bucketed book history): more traded than was ever visible.
            peak = np.zeros(len(buckets))
            for _, blo, bid, ask in self._book:
                arr = bid if side == BID else ask
                j = buckets - blo
                ok = (j >= 0) & (j < len(arr))
                peak[ok] = np.maximum(peak[ok], arr[j[ok]])
            v = vols[taker][cand]
            keep = (peak > 0) & (v >= ratio * peak)
            for bucket, pk in zip(buckets[keep].tolist(), peak[keep].tolist()):
                if any(e.bucket == bucket and e.side == side and (e.outcome == "pending" or e.last >= now - win)
                       for e in self._events):
                    continue  # already an event here (live, or its aggression is still in the window)
                m = (b == bucket) & (t["side"] == taker) & inwin
                sub = take(t, m)
                prices, inv = np.unique(sub["price"], return_inverse=True)
                level = float(prices[int(np.argmax(np.bincount(inv, weights=sub["usd"])))])
                first = float(sub["ts"].min())
                after = t["price"][t["ts"] >= first]
                beyond = (level - after) if side == BID else (after - level)
                allowed = max(int(p["max_ticks"]) * self.tick, float(p["max_bp"]) * level / 1e4)
                exc = max(0.0, float(beyond.max()))
                if exc > allowed + 1e-12:
                    continue  # price went through: not absorbed
                vu: dict[int, float] = {}
                for vid, u in zip(sub["venue"].tolist(), sub["usd"].tolist()):
                    vu[vid] = vu.get(vid, 0.0) + u
                e = _Event(side=side, bucket=bucket, price=level, allowed=allowed, start=first,
                           last=float(sub["ts"].max()), usd=float(sub["usd"].sum()), peak=pk, excursion=exc,
                           venue_usd=vu, threshold=thr)
                self._events.append(e)
                found.append(e)
        return found

    def _sample(self, now: float, inwin: np.ndarray) -> None:
        """Every ``window_s``: the non-zero per-level window volumes become samples for μ + kσ."""
        win = float(self.p["window_s"])
        if self._last_sample is not None and now - self._last_sample < win:
            return
        self._last_sample = now
        wv = self._window_volumes(inwin)
        if wv is not None:
            _, _, vols = wv
            v = np.concatenate([vols[SELL], vols[BUY]])
            v = v[v > 0]
            if len(v):
                self._samples.append((now, v))
        while self._samples and self._samples[0][0] < now - float(self.p["stats_window_s"]):
            self._samples.popleft()

"""Liquidity walls (docs/detectors.md §1): buckets of resting size that stand out from their neighbourhood.

A bucket on one side is a wall candidate when, within ±``range_pct`` of mid,
- its all-venue USD ≥ ``k_median`` × the median of that side's non-empty buckets and ≥ the asset's floor, or
- (``per_venue``) one venue's USD there ≥ k × that venue's own median and ≥ the floor, so a wall that stands
  out on one venue is not washed out by the others' depth.
It is reported once it is ``min_age_s`` old and was a candidate in ≥ ``min_seen_share`` of the snapshots
since first sighting. When it shrinks by ≥ ``pull_drop`` of its peak it ends: *consumed* when trades on its
side at its bucket since the peak account for ≥ ``traded_share`` of the fall, *pulled* otherwise.

Why a tracker: age, the seen share and the pulled/consumed verdict all need the wall's history, and the
traded volume has to be counted from the trades that arrive between snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..buckets import index
from ..events import ASK, BID
from ._common import SIDE_NAME, BookBuckets, Record, floor_usd, median_positive, params


@dataclass(frozen=True)
class Wall(Record):
    side: str  # "bid" | "ask"
    price: float  # the largest single level inside the bucket (where the wall sits)
    bucket: int  # canonical bucket index (price ∈ [bucket·step, (bucket+1)·step))
    usd: float  # all-venue USD resting in the bucket (current, or last seen for ended walls)
    peak_usd: float
    peak_ts: float  # when it was largest (the pulled/consumed verdict counts trades after this)
    density: float  # usd ÷ median bucket USD of that side within the range
    distance_bp: float  # signed: (price / mid − 1) × 1e4, bids negative
    age_s: float
    first_seen: float
    venues: tuple[str, ...]  # venues holding ≥ venue_share of the USD, largest first
    status: str  # "active" | "pulled" | "consumed"
    ended: float | None = None  # when it was pulled / consumed
    traded_usd: float = 0.0  # traded on its side at its bucket since its peak
    # venue → USD in the bucket at the last sighting with size (sums to ``usd`` while active): lets a view
    # filtered to some venues restate the wall for them (``venue_view.for_venues``).
    venue_usd: dict[str, float] = field(default_factory=dict)


@dataclass
class _WallState:
    side: int
    bucket: int
    first_seen: float
    last_seen: float
    seen: int = 1
    snaps: int = 1
    peak: float = 0.0
    peak_ts: float = 0.0
    usd: float = 0.0
    density: float = 0.0
    price: float = 0.0
    traded: float = 0.0  # traded on the wall's side at its bucket since first sighting
    traded_at_peak: float = 0.0
    confirmed: bool = False
    status: str = "active"
    ended: float | None = None
    out_since: float | None = None
    venues: tuple[str, ...] = field(default_factory=tuple)
    venue_usd: dict[str, float] = field(default_factory=dict)


class WallTracker:
    """Tracks walls across snapshots. Call :meth:`update` once per engine tick."""

    def __init__(self, asset: str, cfg: Mapping[str, Any] | None = None) -> None:
        self.p = params(cfg, "walls")
        self.asset = asset
        self.floor = floor_usd(self.p, asset)
        self._states: dict[tuple[int, int], _WallState] = {}
        self._mid: float | None = None
        self.median: dict[int, float] = {BID: 0.0, ASK: 0.0}

    def reset(self) -> None:
        self._states.clear()

    # -- per tick -------------------------------------------------------------------------------
    def add_trades(self, trades: np.ndarray, step: float) -> None:
        """Count traded USD at tracked wall buckets: taker sells hit bid walls, taker buys lift asks."""
        if not len(trades["ts"]) or not self._states:
            return
        # One pass: USD per (bucket, taker side), then a dict lookup per tracked wall.
        key = index(trades["price"], step) * 2 + (trades["side"] > 0)
        u, inv = np.unique(key, return_inverse=True)
        sums = dict(zip(u.tolist(), np.bincount(inv, weights=trades["usd"]).tolist()))
        for (side, bucket), st in self._states.items():
            if st.status == "active":
                st.traded += sums.get(bucket * 2 + (1 if -side > 0 else 0), 0.0)

    def update(self, now: float, bb: BookBuckets | None, trades: np.ndarray | None = None,
               step: float | None = None) -> None:
        if trades is not None and step is not None:
            self.add_trades(trades, step)
        if bb is None:
            return
        self._mid = bb.mid
        p = self.p
        rng = p["range_pct"] / 100.0
        edge = np.arange(bb.lo, bb.lo + bb.n) * bb.step  # lower edge of each bucket
        near = (edge + bb.step > bb.mid * (1 - rng)) & (edge <= bb.mid * (1 + rng))  # overlaps ±range
        k, floor = float(p["k_median"]), self.floor
        seen_now: set[tuple[int, int]] = set()
        for side in (BID, ASK):
            usd = bb.usd[side]
            med = median_positive(usd[near])
            self.median[side] = med
            cand = np.zeros(bb.n, dtype=bool)
            if med > 0:
                cand |= (usd >= k * med) & (usd >= floor) & near
            if p["per_venue"]:
                for vu in bb.venue_usd[side].values():
                    vmed = median_positive(vu[near])
                    if vmed > 0:
                        cand |= (vu >= k * vmed) & (vu >= floor) & near
            for i in np.flatnonzero(cand):
                bucket = bb.lo + int(i)
                key = (side, bucket)
                seen_now.add(key)
                st = self._states.get(key)
                if st is None or st.status != "active":
                    st = _WallState(side, bucket, now, now, peak=float(usd[i]), peak_ts=now)
                    self._states[key] = st
                    st.snaps = 0  # counted below with the others
                    st.seen = 0
        keep_ended = float(p["keep_ended_s"])
        min_age, min_share = float(p["min_age_s"]), float(p["min_seen_share"])
        drop = float(p["pull_drop"])
        for key in list(self._states):
            st = self._states[key]
            if st.status != "active":
                if now - (st.ended or now) > keep_ended:
                    del self._states[key]
                continue
            side, bucket = key
            i = bucket - bb.lo
            if not (0 <= i < bb.n) or not near[i]:
                # Out of view: nothing can be said about it; forget it after a while.
                st.out_since = st.out_since or now
                if now - st.out_since > keep_ended:
                    del self._states[key]
                continue
            st.out_since = None
            usd = float(bb.usd[side][i])
            st.snaps += 1
            if key in seen_now:
                st.seen += 1
                st.last_seen = now
            st.usd = usd
            med = self.median[side]
            st.density = usd / med if med > 0 else 0.0
            if usd > st.peak:
                st.peak, st.peak_ts = usd, now
                st.traded_at_peak = st.traded
            if usd > 0:
                st.price = bb.top_price(side, bucket) or st.price
                st.venue_usd = {name: float(v[i]) for name, v in bb.venue_usd[side].items() if v[i] > 0}
                st.venues = _venues(st.venue_usd, usd, float(p["venue_share"]))
            elif not st.price:
                st.price = bucket * bb.step
            if st.confirmed and usd <= (1.0 - drop) * st.peak:
                fall = st.peak - usd
                traded = st.traded - st.traded_at_peak
                st.status = "consumed" if traded >= float(p["traded_share"]) * fall else "pulled"
                st.ended = now
                continue
            share = st.seen / st.snaps if st.snaps else 0.0
            if not st.confirmed:
                if share < min_share:
                    del self._states[key]  # flickered: never became a wall
                elif now - st.first_seen >= min_age:
                    st.confirmed = True
            elif share < min_share and key not in seen_now and st.usd < st.peak * 0.5:
                del self._states[key]  # faded below the threshold without a clear pull: no longer a wall

    # -- results ----------------------------------------------------------------------------------
    def walls(self, now: float) -> list[Wall]:
        """Confirmed active walls (largest first, ``max_per_side`` per side), then ended ones (newest first)."""
        mid = self._mid or 0.0
        active: dict[int, list[Wall]] = {BID: [], ASK: []}
        ended: list[Wall] = []
        for st in self._states.values():
            if not st.confirmed or (st.status == "active" and st.out_since is not None):
                continue  # unconfirmed, or out of view (price moved away): its size is unknown now
            w = self._record(st, now, mid)
            if st.status == "active":
                active[st.side].append(w)
            else:
                ended.append(w)
        out: list[Wall] = []
        cap = int(self.p["max_per_side"])
        for side in (BID, ASK):
            out.extend(sorted(active[side], key=lambda w: -w.usd)[:cap])
        out.extend(sorted(ended, key=lambda w: -(w.ended or 0.0)))
        return out

    def _record(self, st: _WallState, now: float, mid: float) -> Wall:
        price = st.price
        return Wall(
            side=SIDE_NAME[st.side],
            price=price,
            bucket=st.bucket,
            usd=st.usd,
            peak_usd=st.peak,
            peak_ts=st.peak_ts,
            density=st.density,
            distance_bp=(price / mid - 1.0) * 1e4 if mid > 0 and price > 0 else 0.0,
            age_s=(st.ended or now) - st.first_seen,
            first_seen=st.first_seen,
            venues=st.venues,
            status=st.status,
            ended=st.ended,
            traded_usd=st.traded - st.traded_at_peak,
            venue_usd=st.venue_usd,
        )

    def tracked_buckets(self, side: int) -> list[tuple[int, float, float | None]]:
        """(bucket, price, ended) of confirmed walls on ``side``, active (ended None) or recently ended:
        sweeps check whether they went through one."""
        return [(st.bucket, st.price, st.ended) for st in self._states.values()
                if st.side == side and st.confirmed]


def _venues(venue_usd: Mapping[str, float], total: float, share: float) -> tuple[str, ...]:
    parts = sorted(((u, name) for name, u in venue_usd.items()), reverse=True)
    return tuple(name for u, name in parts if u >= share * total)

"""The bid/ask asymmetry read (docs/detectors.md §2).

``I = (B − A)/(B + A)``. The headline number weights every level by ``e^{−d/λ}`` (d in bp from mid) so far
levels cannot fake an imbalance (Bookmap's "illusionary imbalance"); the plain one is given at fixed ranges
for comparison, and the wall asymmetry compares the USD in active walls on each side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..events import ASK, BID
from ._common import BookBuckets, Record, params


@dataclass(frozen=True)
class Asymmetry(Record):
    mid: float
    weighted: float  # distance-weighted imbalance in [−1, 1]; + means bids heavier
    bid_share: float  # weighted B / (B + A), 0..1
    plain: tuple[tuple[float, float], ...]  # ((range %, imbalance), ...)
    walls: float  # (Σ bid walls − Σ ask walls) / sum, 0 when there are none
    dominant: str  # "bids" | "asks" | "even"
    lambda_bp: float
    # venue → {"bid", "ask": distance-weighted USD; "plain_bid", "plain_ask": USD within each range}: the
    # sums behind the read, per venue, so a view filtered to some venues gets the exact read for them
    # (:func:`for_venues`).
    by_venue: dict[str, dict[str, Any]] = field(default_factory=dict)


def imbalance(b: float, a: float) -> float:
    s = b + a
    return (b - a) / s if s > 0 else 0.0


def asymmetry(bb: BookBuckets | None, walls=(), cfg: Mapping[str, Any] | None = None) -> Asymmetry | None:
    """The read for one tick from the bucketed book (its raw levels) and the active walls."""
    if bb is None:
        return None
    p = params(cfg, "asymmetry")
    lam = float(p["lambda_bp"])
    mid = bb.mid
    ranges = [float(x) for x in p["ranges_pct"]]
    lim = np.asarray(ranges) * 100.0  # % → bp
    by_venue: dict[str, dict[str, Any]] = {}
    for side, name in ((BID, "bid"), (ASK, "ask")):
        for venue, lv in bb.levels[side].items():
            d = np.abs(lv.prices / mid - 1.0) * 1e4
            sums = by_venue.setdefault(venue, {"bid": 0.0, "ask": 0.0, "plain_bid": [0.0] * len(ranges),
                                               "plain_ask": [0.0] * len(ranges)})
            sums[name] = float(np.dot(lv.usd, np.exp(-d / lam)))
            # float slack at the edge
            sums["plain_" + name] = [float(lv.usd[d <= r + 1e-6].sum()) for r in lim]
    return read(mid, by_venue, walls, cfg)


def read(mid: float, by_venue: Mapping[str, Mapping[str, Any]], walls=(),
         cfg: Mapping[str, Any] | None = None) -> Asymmetry:
    """The read from per-venue sums (all of them, or only the venues a view is filtered to)."""
    p = params(cfg, "asymmetry")
    ranges = [float(x) for x in p["ranges_pct"]]
    wb_ = sum(float(s["bid"]) for s in by_venue.values())
    wa_ = sum(float(s["ask"]) for s in by_venue.values())
    plain = []
    for j, r in enumerate(ranges):
        pb = sum(float(s["plain_bid"][j]) for s in by_venue.values() if j < len(s["plain_bid"]))
        pa = sum(float(s["plain_ask"][j]) for s in by_venue.values() if j < len(s["plain_ask"]))
        plain.append((r, imbalance(pb, pa)))
    w = imbalance(wb_, wa_)
    tot = wb_ + wa_
    wb = sum(x.usd for x in walls if x.status == "active" and x.side == "bid")
    wa = sum(x.usd for x in walls if x.status == "active" and x.side == "ask")
    dom = float(p["dominance"])
    return Asymmetry(
        mid=mid,
        weighted=w,
        bid_share=wb_ / tot if tot > 0 else 0.5,
        plain=tuple(plain),
        walls=imbalance(wb, wa),
        dominant="bids" if w > dom else "asks" if w < -dom else "even",
        lambda_bp=float(p["lambda_bp"]),
        by_venue={v: dict(s) for v, s in by_venue.items()},
    )

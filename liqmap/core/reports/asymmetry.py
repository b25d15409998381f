"""The bid/ask asymmetry read (methods §3.2).

``I = (B − A)/(B + A)``. The headline number weights every level by ``e^{−d/λ}`` (d in bp from mid) so far
levels cannot fake an imbalance (Bookmap's "illusionary imbalance"); the plain one is given at fixed ranges
for comparison, and the wall asymmetry compares the USD in active walls on each side.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    weighted = {BID: 0.0, ASK: 0.0}
    ranges = [float(x) for x in p["ranges_pct"]]
    plain = {side: np.zeros(len(ranges)) for side in (BID, ASK)}
    lim = np.asarray(ranges) * 100.0  # % → bp
    for side in (BID, ASK):
        for lv in bb.levels[side].values():
            d = np.abs(lv.prices / mid - 1.0) * 1e4
            weighted[side] += float(np.dot(lv.usd, np.exp(-d / lam)))
            for j, r in enumerate(lim):
                plain[side][j] += float(lv.usd[d <= r + 1e-6].sum())  # float slack at the edge
    w = imbalance(weighted[BID], weighted[ASK])
    tot = weighted[BID] + weighted[ASK]
    wb = sum(x.usd for x in walls if x.status == "active" and x.side == "bid")
    wa = sum(x.usd for x in walls if x.status == "active" and x.side == "ask")
    dom = float(p["dominance"])
    return Asymmetry(
        mid=mid,
        weighted=w,
        bid_share=weighted[BID] / tot if tot > 0 else 0.5,
        plain=tuple((r, imbalance(float(plain[BID][j]), float(plain[ASK][j]))) for j, r in enumerate(ranges)),
        walls=imbalance(wb, wa),
        dominant="bids" if w > dom else "asks" if w < -dom else "even",
        lambda_bp=lam,
    )

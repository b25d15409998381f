"""Each venue's simulated L2 book: a ladder of levels around the simulated price, with walls.

Levels sit on a grid (``book_step_bp`` of price, a nice multiple of the tick), keyed by integer index
``k`` (price = k·grid). On every refresh the ladder re-centres on the price: levels that price moved
through are deleted at once (aggressive flow swept them), new levels appear at the far end, a share of
the resting levels change size (quotes come and go), and the venue's walls from ``AssetSim.walls`` show as
big size on their level until they are pulled or absorbed. ``refresh`` returns the changed levels in the
venue's units, which ``venues.py`` turns into each venue's frames.
"""

from __future__ import annotations

import math

import numpy as np

from liqmap.core.buckets import nice_step

from .contracts import Contract


def grid_step(price: float, tick: float, bp: float) -> float:
    """Book level spacing: ``bp`` of price as a nice number, a whole number of ticks."""
    step = nice_step(price * bp / 1e4)
    if step <= tick:
        return tick
    return float(f"{round(step / tick) * tick:.12g}")


class VenueBook:
    """Book state of one (asset, venue) as last published: {k: qty} per side, venue contracts."""

    def __init__(self, contract: Contract, grid: float, levels: int, level_usd: float,
                 rng: np.random.Generator) -> None:
        self.c = contract
        self.grid = grid  # real price units
        self.levels = levels
        self.level_usd = level_usd * contract.share
        self.rng = rng
        self._base: tuple[dict[int, float], dict[int, float]] = ({}, {})  # quotes without walls
        self._extra: tuple[dict[int, float], dict[int, float]] = ({}, {})  # wall size last published
        self.bids: dict[int, float] = {}  # as published (quotes + walls)
        self.asks: dict[int, float] = {}
        self.published = False

    def price_of(self, k: int) -> float:
        return k * self.grid

    def _qty(self, k: int, usd: float) -> float:
        c = self.c
        unit = c.contract_size if c.inverse else c.contract_size * c.mult * k * self.grid
        return round(max(round(usd / unit / c.lot), 1) * c.lot, c.qty_dp)

    def refresh(self, price: float, walls=(), churn: float = 0.1, levels: int | None = None):
        """Re-centre on ``price``; returns (bid_changes, ask_changes) as [(k, qty)] best first, qty 0 =
        delete. ``levels`` (default: all) lets assets out of focus publish a shallower book."""
        g = self.grid
        kb = math.ceil(price / g - 1e-9) - 1  # best bid strictly below price
        ka = math.floor(price / g + 1e-9) + 1  # best ask strictly above price
        n = levels or self.levels
        extra: tuple[dict[int, float], dict[int, float]] = ({}, {})
        for w in walls:
            if w.vid == self.c.vid and w.state == "active" and w.usd > 0:
                k = round(w.price / g)
                side = extra[0 if w.side > 0 else 1]
                side[k] = side.get(k, 0.0) + self._qty(k, w.usd)
        out = []
        rng = self.rng
        for i, (lo, hi, best) in enumerate(((kb - n + 1, kb, kb), (ka, ka + n - 1, ka))):
            base, pub = self._base[i], (self.bids, self.asks)[i]
            touched = [k for k in base if k < lo or k > hi]  # swept by price or beyond the depth
            for k in touched:
                del base[k]
            fresh = [k for k in range(lo, hi + 1) if k not in base]
            if self.published and base and churn > 0:
                resting = [k for k in range(lo, hi + 1) if k in base]
                m = rng.binomial(len(resting), churn)
                if m:
                    fresh += [resting[j] for j in rng.choice(len(resting), m, replace=False)]
            if fresh:
                z = rng.standard_normal(len(fresh))
                lu = self.level_usd
                for k, zz in zip(fresh, z):
                    base[k] = self._qty(k, lu * math.exp(0.7 * zz) * (1 + 0.02 * abs(k - best)))
            ex, prev_ex = extra[i], self._extra[i]
            diff: dict[int, float] = {}
            for k in (*touched, *fresh, *ex, *prev_ex):
                q = base.get(k)
                if q is None:
                    if k in pub:
                        del pub[k]
                        diff[k] = 0.0
                    continue
                if k in ex:
                    q = round(q + ex[k], self.c.qty_dp)
                if pub.get(k) != q:
                    pub[k] = q
                    diff[k] = q
            self._extra = (ex, self._extra[1]) if i == 0 else (self._extra[0], ex)
            out.append(sorted(diff.items(), reverse=(i == 0)))
        self.published = True
        return out[0], out[1]

    def top(self, side: int, n: int) -> list[tuple[int, float]]:
        """Best ``n`` levels of a side, best first."""
        if side > 0:
            return sorted(self.bids.items(), reverse=True)[:n]
        return sorted(self.asks.items())[:n]

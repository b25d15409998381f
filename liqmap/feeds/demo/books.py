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
        self.bids: dict[int, float] = {}  # as published (quotes + walls)
        self.asks: dict[int, float] = {}
        self.published = False

    def price_of(self, k: int) -> float:
        return k * self.grid

    def _draw(self, ks: list[int], dist: np.ndarray) -> list[float]:
        usd = self.level_usd * np.exp(0.7 * self.rng.standard_normal(len(ks))) * (1 + 0.02 * dist)
        prices = np.array(ks, dtype=float) * self.grid
        return [float(q) for q in self.c.qty_for_usd(usd, prices)]

    def refresh(self, price: float, walls=(), churn: float = 0.1):
        """Re-centre on ``price``; returns (bid_changes, ask_changes) as [(k, qty)] best first, qty 0 =
        delete. The first call returns the full book (a snapshot)."""
        g = self.grid
        kb = math.ceil(price / g - 1e-9) - 1  # best bid strictly below price
        ka = math.floor(price / g + 1e-9) + 1  # best ask strictly above price
        n = self.levels
        extra: tuple[dict[int, float], dict[int, float]] = ({}, {})
        for w in walls:
            if w.vid == self.c.vid and w.state == "active" and w.usd > 0:
                k = round(w.price / g)
                side = extra[0 if w.side > 0 else 1]
                side[k] = side.get(k, 0.0) + float(self.c.qty_for_usd(w.usd, w.price))
        out = []
        for i, (base, pub, lo, hi, best) in enumerate((
                (self._base[0], self.bids, kb - n + 1, kb, kb),
                (self._base[1], self.asks, ka, ka + n - 1, ka))):
            for k in [k for k in base if k < lo or k > hi]:
                del base[k]  # swept by price or beyond the published depth
            missing = [k for k in range(lo, hi + 1) if k not in base]
            if self.published and base:
                resting = [k for k in range(lo, hi + 1) if k in base]
                m = self.rng.random(len(resting)) < churn
                missing += [k for k, x in zip(resting, m) if x]
            if missing:
                dist = np.abs(np.array(missing) - best).astype(float)
                for k, q in zip(missing, self._draw(missing, dist)):
                    base[k] = q
            new = {k: (round(q + extra[i][k], self.c.qty_dp) if k in extra[i] else q) for k, q in base.items()}
            diff = {k: 0.0 for k in pub if k not in new}
            diff.update({k: q for k, q in new.items() if pub.get(k) != q})
            pub.clear()
            pub.update(new)
            out.append(sorted(diff.items(), reverse=(i == 0)))
        self.published = True
        return out[0], out[1]

    def top(self, side: int, n: int) -> list[tuple[int, float]]:
        """Best ``n`` levels of a side, best first."""
        if side > 0:
            return sorted(self.bids.items(), reverse=True)[:n]
        return sorted(self.asks.items())[:n]

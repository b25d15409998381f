"""A float L2 order book for the hot path.

cryptofeed's book keeps Decimal keys in a sorted dict (~1.65 µs per level applied). Here each side is a
plain dict price → size (float), updated in one tight loop per frame, and sorted arrays are produced
lazily only when a reader (walls, the UI, a report) asks, cached until the next change.

``apply_raw`` / ``replace_raw`` take the venue's level lists as they come out of the JSON decoder
(``["61800.20", "2.909"]`` strings or numbers, extra fields ignored) and an optional lot multiplier, so a
depth frame is applied without building intermediate tuples.
"""

from __future__ import annotations

import math

import numpy as np

from .events import ASK, BID


_OPEN = (0.0, math.inf, math.inf)


class TooManyLevels(ValueError):
    """One frame carried more levels for one side than ``Book.max_levels`` (the venue's documented depth):
    refused whole, because applying it would hold the event loop (a 100k-level OKX frame took 3.3 s)."""


class Book:
    """``band`` = (lowest price, highest price, largest price × size) a level may have: set by the venue parser from
    its last good price (``liqmap.feeds.plausible``); a level outside it (or NaN, inf, negative) is not
    applied and counted in ``rejected``. Deletes (size 0) always apply, so a level inserted before the band
    moved can still be removed."""

    __slots__ = ("bids", "asks", "ts", "version", "_cache", "band", "rejected", "max_levels")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.ts = 0.0
        self.version = 0
        self._cache: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        self.band: tuple[float, float, float] = _OPEN
        self.rejected = 0
        self.max_levels = 1 << 30  # levels per side per frame; the venue parser sets its documented depth

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.version += 1

    def _side(self, side: int) -> dict[float, float]:
        return self.bids if side == BID else self.asks

    def apply(self, side: int, levels, ts: float = 0.0) -> None:
        """Apply (price, size) pairs to one side; size 0 deletes the level."""
        if len(levels) > self.max_levels:
            raise TooManyLevels(len(levels))
        book = self._side(side)
        pop = book.pop
        lo, hi, qmax = self.band
        for price, size in levels:
            if size == 0:
                pop(price, None)
            elif lo <= price <= hi and 0.0 < size and price * size <= qmax:  # NaN fails every comparison
                book[price] = size
            else:
                self.rejected += 1
        if ts:
            self.ts = ts
        self.version += 1

    def apply_raw(self, side: int, levels, ts: float = 0.0, mult: float = 1.0, size_scale: float = 1.0) -> None:
        """Apply venue level lists ``[price, size, ...]`` (strings or numbers) to one side.

        ``mult`` converts a venue lot (1000PEPE) to coins: price / mult, size × mult; ``size_scale``
        multiplies sizes further (contracts → coins, e.g. OKX ctVal).
        """
        if len(levels) > self.max_levels:
            raise TooManyLevels(len(levels))
        book = self.bids if side == BID else self.asks
        pop = book.pop
        lo, hi, qmax = self.band
        bad = 0
        if mult == 1.0 and size_scale == 1.0:
            try:  # [price, size] pairs (Binance, Bybit): tuple unpacking is the fastest loop
                for p, q in levels:
                    p = float(p)
                    q = float(q)
                    if q == 0:
                        pop(p, None)
                    elif lo <= p <= hi and 0.0 < q and p * q <= qmax:  # NaN fails every comparison
                        book[p] = q
                    else:
                        bad += 1
            except ValueError:  # longer level lists (OKX [px, sz, 0, n]); re-applying is idempotent
                bad = 0
                for lv in levels:
                    p = float(lv[0])
                    q = float(lv[1])
                    if q == 0:
                        pop(p, None)
                    elif lo <= p <= hi and 0.0 < q and p * q <= qmax:
                        book[p] = q
                    else:
                        bad += 1
        else:
            qm = mult * size_scale
            for lv in levels:
                p = float(lv[0]) / mult
                q = float(lv[1]) * qm
                if q == 0:
                    pop(p, None)
                elif lo <= p <= hi and 0.0 < q and p * q <= qmax:
                    book[p] = q
                else:
                    bad += 1
        self.rejected += bad
        if ts:
            self.ts = ts
        self.version += 1

    def replace(self, bids, asks, ts: float = 0.0) -> None:
        """Replace the whole book with a snapshot."""
        if len(bids) > self.max_levels or len(asks) > self.max_levels:
            raise TooManyLevels(max(len(bids), len(asks)))
        self.bids = {}
        self.asks = {}
        self.apply(BID, bids)
        self.apply(ASK, asks)
        self.ts = ts or self.ts

    def replace_raw(self, bids, asks, ts: float = 0.0, mult: float = 1.0, size_scale: float = 1.0) -> None:
        """Replace the whole book from venue level lists (see ``apply_raw``)."""
        if len(bids) > self.max_levels or len(asks) > self.max_levels:
            raise TooManyLevels(max(len(bids), len(asks)))
        self.bids = {}
        self.asks = {}
        self.apply_raw(BID, bids, ts, mult, size_scale)
        self.apply_raw(ASK, asks, ts, mult, size_scale)

    def levels(self, side: int, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prices, sizes) best first: bids descending, asks ascending."""
        hit = self._cache.get(side)
        if hit is None or hit[0] != self.version:
            book = self._side(side)
            if book:
                prices = np.fromiter(book.keys(), dtype=np.float64, count=len(book))
                sizes = np.fromiter(book.values(), dtype=np.float64, count=len(book))
                order = np.argsort(-prices if side == BID else prices, kind="stable")
                prices, sizes = prices[order], sizes[order]
            else:
                prices = sizes = np.zeros(0)
            hit = (self.version, prices, sizes)
            self._cache[side] = hit
        _, prices, sizes = hit
        if depth is not None:
            return prices[:depth], sizes[:depth]
        return prices, sizes

    def best_bid(self) -> float | None:
        hit = self._cache.get(BID)
        if hit is not None and hit[0] == self.version:
            return float(hit[1][0]) if len(hit[1]) else None
        return max(self.bids) if self.bids else None

    def best_ask(self) -> float | None:
        hit = self._cache.get(ASK)
        if hit is not None and hit[0] == self.version:
            return float(hit[1][0]) if len(hit[1]) else None
        return min(self.asks) if self.asks else None

    def mid(self) -> float | None:
        b, a = self.best_bid(), self.best_ask()
        if b is None or a is None:
            return b if a is None else a
        return (a + b) / 2

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)


__all__ = ["Book", "BID", "ASK", "TooManyLevels"]

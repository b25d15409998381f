"""Exact positions in the engine: per asset, the exact at-risk map of the tracked wallets, what it covers, and
the live accuracy of the synthetic model against it (docs/model.md §8).

The feeds fill a ``PositionBook`` (``liqmap/core/positions.py``) from the venue that publishes positions
(Hyperliquid); the runtime hands it to the engine (``Engine.attach_positions``). Each ingest of an asset reads
the book once (``exact_view``): the exact levels (for the Positions mode and as the verdict's ``exact``
magnets), the coverage label, and every ``every_s`` a comparison of the model's levels *from that venue's own
open interest and trades* (``SyntheticModel.levels((venue,))``) with the exact map over ±5 % of price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import VENUE_ID
from ..positions import AccuracyLog, AccuracyScore, Coverage, PositionBook, accuracy

EMPTY = (np.empty(0, np.int64), np.empty(0), np.empty(0))


@dataclass(frozen=True)
class ExactView:
    """One asset's exact map as of its last ingest."""

    venue: str
    levels: tuple[np.ndarray, np.ndarray, np.ndarray]  # (bucket, long USD, short USD)
    coverage: Coverage
    accuracy: AccuracyScore
    detected: int  # liquidations detected for this asset so far (tracked wallets only)

    @property
    def label(self) -> str:
        return self.coverage.label(_SHORT.get(self.venue, self.venue))

    def to_dict(self) -> dict[str, Any]:
        b, lo, sh = self.levels
        return {"venue": self.venue, "label": self.label, "coverage": self.coverage.to_dict(),
                "at_risk_long_usd": float(np.sum(lo)), "at_risk_short_usd": float(np.sum(sh)),
                "levels": int(len(b)), "accuracy": self.accuracy.to_dict(), "accuracy_text": self.accuracy.text(),
                "detected_liquidations": self.detected}


_SHORT = {"hyperliquid": "HL"}


@dataclass
class ExactState:
    """Per asset: the last OI of the venue (base units, one side) and the accuracy log."""

    every_s: float
    oi: float | None = None
    log: AccuracyLog | None = None
    version: int = -1
    view: ExactView | None = None

    def __post_init__(self) -> None:
        self.log = AccuracyLog(self.every_s)


def standing(levels, price: float | None, step: float):
    """The exact levels price has not traded through: a long whose liquidation price is at or above the last
    price (a short's at or below) was liquidated — or closed — since its wallet was last polled, however long
    ago that was (a wallet is polled again only when the budget reaches it). Drawn, named as a magnet or scored
    against the model, such a level would be a wall that is not there; it leaves the map until the next poll
    says what happened (a vanished position is then a detected liquidation)."""
    b, lo, sh = levels
    if not (price and price > 0 and step and len(b)):
        return levels
    pb = np.floor(price / step + 1e-9)
    lo = np.where(b < pb, lo, 0.0)
    sh = np.where(b > pb, sh, 0.0)
    keep = (lo > 0) | (sh > 0)
    return b[keep], lo[keep], sh[keep]


def exact_view(book: PositionBook, venue: str, asset: str, state: ExactState, oi_rows: np.ndarray, model,
               price: float | None, step: float | None, now: float, compare: bool = True) -> ExactView | None:
    """Update ``state`` from the new OI rows and the book; the asset's view (None without a bucket step).
    ``compare`` False: no accuracy comparison now (the engine's history is behind the book's present)."""
    vid = VENUE_ID.get(venue)
    if vid is not None and len(oi_rows):
        mine = oi_rows[oi_rows["venue"] == vid]
        if len(mine):
            state.oi = float(mine["oi"][-1])
    if not step:
        return None
    levels = standing(book.levels(asset, step), price, step)
    if compare and state.log.due(now) and price:
        model_levels = model.levels((venue,)) if model is not None and vid is not None else EMPTY
        state.log.add(now, accuracy(model_levels, levels, price, step, ts=now))
    detected = book.detected_by_asset.get(asset, 0)
    state.view = ExactView(venue, levels, book.coverage(asset, state.oi), state.log.score(), detected)
    return state.view

"""Normalized event records shared by every venue.

Every venue adapter turns its frames into rows of these numpy structured dtypes, so the rest of the
program (ring buffers, the model, grids, reports) never sees a venue's own units or conventions.

Conventions (the same for every venue, whatever the venue itself reports):
- ``ts`` is the exchange time in float seconds since the epoch (receipt time when the venue sends none).
- ``qty`` is in base units (BTC for BTCUSDT and for XBTUSD alike); ``usd`` is the notional in USD.
- liquidation ``side`` is the side of the *position* that was liquidated: ``LONG`` (+1) or ``SHORT`` (-1).
- trade ``side`` is the taker (aggressor) side: ``BUY`` (+1) or ``SELL`` (-1).
- book ``side`` is ``BID`` (+1) or ``ASK`` (-1); a ``qty`` of 0 deletes the level.
"""

from __future__ import annotations

import numpy as np

from .venues import TABLE

# Every venue liqmap has ever parsed, by id: a row's ``venue`` is the index here, and stored history,
# recordings and the model's packing carry it, so a venue keeps its id forever and new ones are appended
# (at most 8: liqmap.feeds.venues.model_venue_limit). Declared once, in ``core.venues.TABLE``.
VENUES: tuple[str, ...] = tuple(v.name for v in TABLE)
VENUE_ID: dict[str, int] = {name: i for i, name in enumerate(VENUES)}
# The venues liqmap connects to live (defaults, status bar, doctor, collect, demo). BitMEX closed on
# 2026-09-23: its id and parser stay only so old recordings replay (docs/recording.md).
LIVE_VENUES: tuple[str, ...] = tuple(v.name for v in TABLE if v.live)
REPLAY_ONLY_VENUES: tuple[str, ...] = tuple(v.name for v in TABLE if not v.live)

LONG, SHORT = 1, -1  # liquidation: which position side was liquidated
BUY, SELL = 1, -1  # trade: taker side
BID, ASK = 1, -1  # book side

# What the venue's liquidation price means. Binance reports the average fill, OKX and Bybit the
# bankruptcy price, BitMEX (old recordings) the price of the liquidation order (placed at bankruptcy).
PRICE_FILL, PRICE_BANKRUPTCY, PRICE_ORDER = 0, 1, 2
PRICE_KIND_NAMES = ("fill", "bankruptcy", "order")

# What a liquidation and a trade row share (a liquidation adds what its price means).
_PRINT_FIELDS = [
    ("ts", "f8"),
    ("price", "f8"),
    ("qty", "f8"),
    ("usd", "f8"),
    ("side", "i1"),
    ("venue", "u1"),
]
LIQ_DTYPE = np.dtype(_PRINT_FIELDS + [("price_kind", "u1")])
TRADE_DTYPE = np.dtype(_PRINT_FIELDS)

# Open interest in base units (one side of the market: one long and one short make one contract).
OI_DTYPE = np.dtype(
    [
        ("ts", "f8"),
        ("oi", "f8"),
        ("oi_usd", "f8"),
        ("mark", "f8"),
        ("venue", "u1"),
    ]
)

BOOK_DTYPE = np.dtype(
    [
        ("ts", "f8"),
        ("price", "f8"),
        ("qty", "f8"),
        ("side", "i1"),
        ("venue", "u1"),
    ]
)

KINDS: dict[str, np.dtype] = {
    "liq": LIQ_DTYPE,
    "trade": TRADE_DTYPE,
    "oi": OI_DTYPE,
    "book": BOOK_DTYPE,
}


def make(kind: str, rows: list[tuple] | None = None, n: int = 0) -> np.ndarray:
    """Build an array of ``kind`` events from tuples in dtype field order (or ``n`` zeroed rows)."""
    dtype = KINDS[kind]
    if rows is not None:
        return np.array(rows, dtype=dtype)
    return np.zeros(n, dtype=dtype)


def liquidations(rows: list[tuple]) -> np.ndarray:
    """Rows of (ts, price, qty, usd, side, venue, price_kind)."""
    return make("liq", rows)


def trades(rows: list[tuple]) -> np.ndarray:
    """Rows of (ts, price, qty, usd, side, venue)."""
    return make("trade", rows)


def open_interest(rows: list[tuple]) -> np.ndarray:
    """Rows of (ts, oi, oi_usd, mark, venue)."""
    return make("oi", rows)


def book_levels(rows: list[tuple]) -> np.ndarray:
    """Rows of (ts, price, qty, side, venue)."""
    return make("book", rows)

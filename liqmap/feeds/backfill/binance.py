"""Binance USDⓈ-M history: 1-minute klines (``/fapi/v1/klines``: quote volume and taker-buy quote volume, so
the venue's own taker split) and open-interest statistics (``/futures/data/openInterestHist``, 5-minute
samples, the last 30 days). docs/venues.md §2.1, §4.1."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ...core.events import VENUE_ID
from .fetch import get_json
from .rows import BackfillError, Minutes, minutes, num, oi_rows

KLINES_PATH = "/fapi/v1/klines"
OI_HIST_PATH = "/futures/data/openInterestHist"
MAX_KLINES = 1500  # Binance's page limits
MAX_OI_ROWS = 500
VID = VENUE_ID["binance"]


def minutes_from_klines(rows: list, mult: float = 1.0) -> Minutes:
    """Binance kline arrays (open time, open, high, low, close, volume, close time, quote volume, trades,
    taker-buy base, taker-buy quote, ignore) → :class:`Minutes`. Malformed rows raise ``BackfillError``."""
    out = []
    for r in rows:
        try:
            out.append((num(r[6]) / 1000.0, num(r[2]), num(r[3]), num(r[4]), num(r[7]), num(r[10])))
        except (TypeError, ValueError, IndexError) as e:
            raise BackfillError(f"kline row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
    return minutes(out, "kline", mult)


def oi_from_history(rows: list, venue: int = VID, mult: float = 1.0) -> np.ndarray:
    """Binance open-interest statistics → OI rows (coins, USD value, the implied mark)."""
    out = []
    for r in rows:
        try:
            out.append((num(r["timestamp"]) / 1000.0, num(r["sumOpenInterest"]), num(r["sumOpenInterestValue"])))
        except (TypeError, ValueError, KeyError) as e:
            raise BackfillError(f"open-interest row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
    return oi_rows(out, venue, "open-interest", mult)


async def fetch(session, rest: str, symbol: str, hours: float, timeout: float,
                mult: float = 1.0) -> tuple[np.ndarray, Minutes]:
    """(OI rows, minutes) of the last ``hours`` for one Binance USDⓈ-M ``symbol``."""
    kp: dict[str, Any] = {"symbol": symbol, "interval": "1m", "limit": int(min(max(hours * 60, 1), MAX_KLINES))}
    op: dict[str, Any] = {"symbol": symbol, "period": "5m", "limit": int(min(max(hours * 12, 2), MAX_OI_ROWS))}
    base = rest.rstrip("/")
    klines, hist = await asyncio.gather(get_json(session, base + KLINES_PATH, kp, timeout),
                                        get_json(session, base + OI_HIST_PATH, op, timeout))
    if not isinstance(klines, list) or not isinstance(hist, list):
        raise BackfillError(f"{symbol}: unexpected body (klines {type(klines).__name__}, "
                            f"open interest {type(hist).__name__})")
    return oi_from_history(hist, VID, mult), minutes_from_klines(klines, mult)

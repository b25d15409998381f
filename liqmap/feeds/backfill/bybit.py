"""Bybit v5 linear history: 1-minute klines (``/v5/market/kline``, newest first, [start, open, high, low, close,
volume, turnover]: no taker split, so φ is borrowed from Binance's minute) and open interest
(``/v5/market/open-interest``, ``intervalTime=5min``, newest first, in coins; ``openInterest`` counts both sides,
``singleOpenInterest`` one, as the ticker's fields do). docs/venues.md §2.2, §4.1."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ...core.events import VENUE_ID
from ..venues.bybit import one_sided_oi
from .fetch import get_json
from .rows import BackfillError, Minutes, num, oi_rows, open_stamped_minutes

KLINE_PATH = "/v5/market/kline"
OI_PATH = "/v5/market/open-interest"
MAX_KLINES = 1000  # Bybit's page limits
MAX_OI_ROWS = 200
VID = VENUE_ID["bybit"]


def _list(body: Any, what: str) -> list:
    """``result.list`` of a Bybit answer; an error code or another shape raises ``BackfillError``."""
    if not isinstance(body, dict) or body.get("retCode") != 0:
        code = body.get("retCode") if isinstance(body, dict) else type(body).__name__
        msg = body.get("retMsg", "") if isinstance(body, dict) else ""
        raise BackfillError(f"{what}: unexpected body (retCode {code} {msg})".rstrip())
    rows = (body.get("result") or {}).get("list")
    if not isinstance(rows, list):
        raise BackfillError(f"{what}: unexpected body (no result.list)")
    return rows


def minutes_from_klines(rows: list, mult: float = 1.0) -> Minutes:
    """Bybit kline arrays ([start, open, high, low, close, volume, turnover]) → :class:`Minutes`."""
    return open_stamped_minutes(rows, 6, "bybit kline", mult)


def oi_from_history(rows: list, closes: Minutes, mult: float = 1.0) -> np.ndarray:
    """Bybit open-interest samples (coins, one side) → OI rows valued at the last close at or before each sample
    (the answer carries no value)."""
    out = []
    for r in rows:
        try:
            ts = num(r["timestamp"]) / 1000.0
            oi, _ = one_sided_oi(r)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise BackfillError(f"bybit open-interest row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
        if oi is None or not len(closes):
            raise BackfillError(f"bybit open-interest row without a size or a price: {str(r)[:80]}")
        at = max(int(np.searchsorted(closes.ts, ts, side="right")) - 1, 0)
        out.append((ts, oi, oi * mult * float(closes.close[at])))
    return oi_rows(out, VID, "bybit open-interest", mult)


async def fetch(session, rest: str, symbol: str, hours: float, timeout: float,
                mult: float = 1.0) -> tuple[np.ndarray, Minutes]:
    """(OI rows, minutes) of the last ``hours`` for one Bybit linear ``symbol``."""
    kp: dict[str, Any] = {"category": "linear", "symbol": symbol, "interval": "1",
                          "limit": int(min(max(hours * 60, 1), MAX_KLINES))}
    op: dict[str, Any] = {"category": "linear", "symbol": symbol, "intervalTime": "5min",
                          "limit": int(min(max(hours * 12, 2), MAX_OI_ROWS))}
    base = rest.rstrip("/")
    kb, ob = await asyncio.gather(get_json(session, base + KLINE_PATH, kp, timeout),
                                  get_json(session, base + OI_PATH, op, timeout))
    m = minutes_from_klines(_list(kb, f"{symbol} klines"), mult)
    return oi_from_history(_list(ob, f"{symbol} open interest"), m, mult), m

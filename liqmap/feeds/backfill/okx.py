"""OKX v5 swap history: 1-minute candles (``/api/v5/market/candles``, newest first, [ts, o, h, l, c, vol, volCcy,
volCcyQuote, confirm], 300 a page, ``after`` pages back: no taker split, so φ is borrowed from Binance's minute)
and contract open interest (``/api/v5/rubik/stat/contracts/open-interest-history``, ``period=5m``, newest first,
[ts, oi, oiCcy, oiUsd], 100 a page, ``end`` pages back). docs/venues.md §2.3, §4.1."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ...core.events import VENUE_ID
from .fetch import get_json
from .rows import BackfillError, Minutes, num, oi_rows, open_stamped_minutes

CANDLES_PATH = "/api/v5/market/candles"
OI_PATH = "/api/v5/rubik/stat/contracts/open-interest-history"
CANDLES_PAGE = 300  # OKX's page limits
OI_PAGE = 100
MAX_PAGES = 8  # the candles endpoint keeps the latest 1,440 minutes: 5 pages
VID = VENUE_ID["okx"]


def _data(body: Any, what: str) -> list:
    """``data`` of an OKX answer; an error code or another shape raises ``BackfillError``."""
    if not isinstance(body, dict) or str(body.get("code")) != "0" or not isinstance(body.get("data"), list):
        code = body.get("code") if isinstance(body, dict) else type(body).__name__
        msg = body.get("msg", "") if isinstance(body, dict) else ""
        raise BackfillError(f"{what}: unexpected body (code {code} {msg})".rstrip())
    return body["data"]


async def _pages(session, url: str, params: dict, cursor: str, page: int, want: int, timeout: float,
                 what: str) -> list:
    """Up to ``want`` rows, newest first, paging back with ``cursor`` (the oldest ``ts`` seen) as OKX does."""
    rows: list = []
    q = dict(params, limit=str(page))
    for _ in range(MAX_PAGES):
        got = _data(await get_json(session, url, q, timeout), what)
        rows.extend(got)
        if len(rows) >= want or len(got) < page:
            break
        try:
            q[cursor] = str(int(min(num(r[0]) for r in got)))
        except (TypeError, ValueError, IndexError) as e:
            raise BackfillError(f"{what} row unreadable ({type(e).__name__})") from None
    return rows[:want]


def minutes_from_candles(rows: list, mult: float = 1.0) -> Minutes:
    """OKX candle arrays ([ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]; the quote traded is ``volCcyQuote``)
    → :class:`Minutes`; prices per lot of ``mult`` coins become per coin (OKX's swaps in the universe quote per
    coin: 1)."""
    return open_stamped_minutes(rows, 7, "okx candle", mult)


def oi_from_history(rows: list) -> np.ndarray:
    """OKX contract open-interest rows → OI rows (``oiCcy`` coins, ``oiUsd``)."""
    out = []
    for r in rows:
        try:
            out.append((num(r[0]) / 1000.0, num(r[2]), num(r[3])))
        except (TypeError, ValueError, IndexError) as e:
            raise BackfillError(f"okx open-interest row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
    return oi_rows(out, VID, "okx open-interest")


async def fetch(session, rest: str, symbol: str, hours: float, timeout: float,
                mult: float = 1.0) -> tuple[np.ndarray, Minutes]:
    """(OI rows, minutes) of the last ``hours`` for one OKX swap ``symbol`` (instId). Open interest is read in
    coins (``oiCcy``), whatever the contract's lot."""
    base = rest.rstrip("/")
    n_k, n_oi = max(int(hours * 60), 1), max(int(hours * 12), 2)
    candles, hist = await asyncio.gather(
        _pages(session, base + CANDLES_PATH, {"instId": symbol, "bar": "1m"}, "after", CANDLES_PAGE, n_k, timeout,
               f"{symbol} candles"),
        _pages(session, base + OI_PATH, {"instId": symbol, "period": "5m"}, "end", OI_PAGE, n_oi, timeout,
               f"{symbol} open interest"))
    return oi_from_history(hist), minutes_from_candles(candles, mult)

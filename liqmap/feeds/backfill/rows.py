"""A venue's public history as the synthetic model's input rows (docs/model.md §3 step 10).

Every venue's 1-minute bars become :class:`Minutes` (per-coin prices, quote USD, the taker-buy quote where the
venue publishes it), and every minute becomes the trades the model needs: the taker buys and sells at the
minute's typical price (the entry profile and the taker split φ), worthless marker trades at its low and high
(so the levels the minute traded through are consumed, as live trades would have), and last one at its close
(the model reads a minute's last price as its close). Open-interest samples become OI rows in base coins.

Bybit's and OKX's bars carry no taker-buy volume. Their φ is borrowed from Binance's bar of the same minute
(:func:`borrow_split`): arbitrage keeps the venues' flows moving together minute by minute, and an even split
would tell the model that no side opened more than the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ...core import events as ev
from ...core.events import BUY, SELL

TOKEN_USD = 1e-6  # the high/low/close marker trades: positive (the model drops empty rows) but worth nothing


class BackfillError(Exception):
    """One line: what went wrong fetching or reading an asset's history. ``unreachable``: the venue could not
    be reached at all (no network, refused, timeout) — the same answer awaits every other asset."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Minutes:
    """One venue's 1-minute bars, oldest first: close time (s), per-coin high/low/close, quote USD traded, and
    the taker-buy share of it in USD (NaN where the venue does not publish it)."""

    ts: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    quote: np.ndarray
    buy: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def minutes(rows: list[tuple], what: str, mult: float = 1.0) -> Minutes:
    """:class:`Minutes` from (close ts in s, high, low, close, quote USD, buy USD or NaN) tuples already read as
    floats; prices quoted per lot of ``mult`` coins (1000PEPEUSDT) become per coin. Out-of-range bars raise
    ``BackfillError`` naming ``what``; a minute listed twice (pages overlapping) counts once."""
    a = np.array(rows, dtype=float).reshape(-1, 6)
    ts, high, low, close, quote, buy = a.T
    finite = np.isfinite(a[:, :5]).all(axis=1)
    split_bad = np.isfinite(buy) & ((buy < 0) | (buy > quote * 1.000001))  # a taker-buy share outside the quote
    bad = ~finite | ~((low > 0) & (low <= high) & (quote >= 0)) | split_bad
    if bad.any():
        raise BackfillError(f"{what} row out of range: {[float(x) for x in a[int(np.argmax(bad))]]}"[:120])
    ts, first = np.unique(ts, return_index=True)  # sorted, duplicates dropped
    m = 1.0 / mult
    return Minutes(ts, high[first] * m, low[first] * m, close[first] * m, quote[first], buy[first])


def open_stamped_minutes(rows: list, quote_col: int, what: str, mult: float = 1.0) -> Minutes:
    """:class:`Minutes` from bars stamped at their open — [open ms, open, high, low, close, …] with the quote traded
    in column ``quote_col`` and no taker split (Bybit's klines, OKX's candles) — each closing one millisecond before
    the next minute, Binance's close time, so the same minute of every venue shares one time (and ``borrow_split``
    finds Binance's φ by it). Malformed rows raise ``BackfillError`` naming ``what``."""
    out = []
    for r in rows:
        try:
            out.append(((num(r[0]) + 59_999) / 1000.0, num(r[2]), num(r[3]), num(r[4]), num(r[quote_col]),
                        float("nan")))
        except (TypeError, ValueError, IndexError) as e:
            raise BackfillError(f"{what} row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
    return minutes(out, what, mult)


def borrow_split(m: Minutes, ref: Minutes | None) -> Minutes:
    """``m`` with every unknown taker-buy filled from ``ref``'s taker split φ of the same minute (Binance's: the
    venues' flows move together), or an even split where ``ref`` has no such minute or traded nothing."""
    unknown = ~np.isfinite(m.buy)
    if not unknown.any():
        return m
    phi = np.full(len(m), 0.5)
    if ref is not None and len(ref):
        at = np.clip(np.searchsorted(ref.ts, m.ts), 0, len(ref) - 1)
        same = (ref.ts[at] == m.ts) & np.isfinite(ref.buy[at]) & (ref.quote[at] > 0)
        phi[same] = ref.buy[at][same] / ref.quote[at][same]
    return replace(m, buy=np.where(unknown, m.quote * phi, m.buy))


def trades(m: Minutes, venue: int) -> np.ndarray:
    """TRADE rows, five per minute at its close time: a marker at the low, the taker buys and sells at the typical
    price (dropped when empty), a marker at the high, and last a marker at the close. Unknown splits are even."""
    n = len(m)
    typical = (m.high + m.low + m.close) / 3.0
    buy = np.where(np.isfinite(m.buy), m.buy, 0.5 * m.quote)
    sell = np.maximum(m.quote - buy, 0.0)
    token = np.full(n, TOKEN_USD)
    # the minute's last trade is its close: the model reads each minute's last price as its close (the walk's
    # σ, its drift, the price the forecast starts from)
    price = np.stack([m.low, typical, typical, m.high, m.close], axis=1)
    usd = np.stack([token, buy, sell, token, token], axis=1)
    close_side = np.where(m.close >= typical, BUY, SELL)
    side = np.stack([np.full(n, SELL), np.full(n, BUY), np.full(n, SELL), np.full(n, BUY), close_side], axis=1)
    keep = (usd > 0).ravel()
    out = np.zeros(int(keep.sum()), dtype=ev.TRADE_DTYPE)
    out["ts"] = np.repeat(m.ts, 5)[keep]
    out["price"] = price.ravel()[keep]
    out["usd"] = usd.ravel()[keep]
    out["qty"] = out["usd"] / out["price"]
    out["side"] = side.ravel()[keep]
    out["venue"] = venue
    return out


def oi_rows(rows: list[tuple], venue: int, what: str, mult: float = 1.0) -> np.ndarray:
    """OI rows from (ts in s, open interest in the venue's lots, USD value) tuples, oldest first; lots of
    ``mult`` coins become coins. Non-positive or non-finite samples raise ``BackfillError`` naming ``what``."""
    out = []
    for ts, oi, value in rows:
        if not (oi > 0 and value > 0 and math.isfinite(oi) and math.isfinite(value) and math.isfinite(ts)):
            raise BackfillError(f"{what} row out of range: {[ts, oi, value]}"[:120])
        out.append((ts, oi * mult, value, value / (oi * mult), venue))
    arr = ev.open_interest(out)
    return arr[np.argsort(arr["ts"], kind="stable")]


def num(x) -> float:
    """A venue's number (a string in most bodies) as a float; unreadable values raise ``ValueError``."""
    if isinstance(x, bool):
        raise ValueError(f"not a number: {x!r}")
    return float(x)

"""Back-fill the synthetic model from public history when live mode starts (docs/model.md §3 step 10).

A live start knows nothing of the positions opened before it: the Synthetic map would stay empty for its first
hours. Binance publishes enough to replay the model's steps 1–9 over the recent past: open-interest history
(``/futures/data/openInterestHist``, 5-minute samples, last 30 days) and 1-minute klines (``/fapi/v1/klines``:
quote volume and taker-buy quote volume, so the taker split φ, and the high/low each minute reached). Each
kline becomes the trades the model needs: the taker buys and sells at the kline's typical price (the entry
profile and φ), token trades at its high and low (so levels the minute traded through are consumed, as
live trades would have), and last a token trade at its close (the minute's last price, as live trades leave
it). Each OI sample becomes an open-interest row.

The engine holds the asset while its history is fetched (live rows wait in the rings, so the model's clock
never passes history that has not arrived); the asset is released whatever happens. A failed fetch (no
network, HTTP error, a malformed body) costs that asset its back-fill and nothing else: one line says why.
Only Binance USDⓈ-M is fetched — the largest venue; the model places it with Binance's own ladder.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import numpy as np

from ..core import events as ev
from ..core.events import BUY, SELL, VENUE_ID

LOG = logging.getLogger(__name__)
KLINES_PATH = "/fapi/v1/klines"
OI_HIST_PATH = "/futures/data/openInterestHist"
MAX_KLINES = 1500  # Binance's page limits
MAX_OI_ROWS = 500
TOKEN_USD = 1e-6  # the high/low marker trades: positive (the model drops empty rows) but worth nothing
BINANCE = VENUE_ID["binance"]


class BackfillError(Exception):
    """One line: what went wrong fetching or reading an asset's history. ``unreachable``: the venue could not
    be reached at all (no network, refused, timeout) — the same answer awaits every other asset."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def trades_from_klines(rows: list, venue: int = BINANCE) -> np.ndarray:
    """Binance kline arrays → TRADE rows: per minute the taker buys and sells at the typical price, token
    trades at the low and the high, and last one at the close, all at the kline's close time. Malformed rows
    raise ``BackfillError``."""
    out = []
    for r in rows:
        try:
            high, low, close = float(r[2]), float(r[3]), float(r[4])
            quote, buy_quote = float(r[7]), float(r[10])
            ts = float(r[6]) / 1000.0
        except (TypeError, ValueError, IndexError) as e:
            raise BackfillError(f"kline row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
        if not all(math.isfinite(x) for x in (high, low, close, quote, buy_quote, ts)) or not (0 < low <= high):
            raise BackfillError(f"kline row out of range: {str(r)[:80]}")
        typical = (high + low + close) / 3.0
        sell_quote = max(quote - buy_quote, 0.0)
        out.append((ts, low, TOKEN_USD / low, TOKEN_USD, SELL, venue))
        if buy_quote > 0:
            out.append((ts, typical, buy_quote / typical, buy_quote, BUY, venue))
        if sell_quote > 0:
            out.append((ts, typical, sell_quote / typical, sell_quote, SELL, venue))
        out.append((ts, high, TOKEN_USD / high, TOKEN_USD, BUY, venue))
        # the minute's last trade is its close: the model reads each minute's last price as its close (the
        # walk's σ, its drift, the last price the forecast starts from); the high marker last made every
        # back-filled close the minute's high
        out.append((ts, close, TOKEN_USD / close, TOKEN_USD, BUY if close >= typical else SELL, venue))
    rows_out = ev.trades(out)
    return rows_out[np.argsort(rows_out["ts"], kind="stable")]


def oi_from_history(rows: list, venue: int = BINANCE) -> np.ndarray:
    """Binance open-interest statistics → OI rows (base units, USD value, the implied mark)."""
    out = []
    for r in rows:
        try:
            oi, value, ts = float(r["sumOpenInterest"]), float(r["sumOpenInterestValue"]), float(r["timestamp"])
        except (TypeError, ValueError, KeyError) as e:
            raise BackfillError(f"open-interest row unreadable ({type(e).__name__}): {str(r)[:80]}") from None
        if not (oi > 0 and value > 0 and math.isfinite(oi) and math.isfinite(value)):
            raise BackfillError(f"open-interest row out of range: {str(r)[:80]}")
        out.append((ts / 1000.0, oi, value, value / oi, venue))
    rows_out = ev.open_interest(out)
    return rows_out[np.argsort(rows_out["ts"], kind="stable")]


async def _get_json(session, url: str, params: dict, timeout: float) -> Any:
    import aiohttp

    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise BackfillError(f"HTTP {resp.status} from {url}")
            return await resp.json(content_type=None)
    except BackfillError:
        raise
    except asyncio.TimeoutError:
        raise BackfillError(f"timeout after {timeout:g} s: {url}", unreachable=True) from None
    except (aiohttp.ClientConnectionError, OSError) as e:
        raise BackfillError(f"{type(e).__name__}: {e} ({url})", unreachable=True) from None
    except (aiohttp.ClientError, ValueError) as e:
        raise BackfillError(f"{type(e).__name__}: {e} ({url})") from None


async def fetch_binance(session, rest: str, symbol: str, hours: float, timeout: float = 10.0,
                        end_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(OI rows, trade rows) of the last ``hours`` for one Binance USDⓈ-M ``symbol``."""
    n_k = int(min(max(hours * 60, 1), MAX_KLINES))
    n_oi = int(min(max(hours * 12, 2), MAX_OI_ROWS))
    kp: dict[str, Any] = {"symbol": symbol, "interval": "1m", "limit": n_k}
    op: dict[str, Any] = {"symbol": symbol, "period": "5m", "limit": n_oi}
    if end_ms is not None:
        kp["endTime"] = op["endTime"] = int(end_ms)
    klines, hist = await asyncio.gather(_get_json(session, rest.rstrip("/") + KLINES_PATH, kp, timeout),
                                        _get_json(session, rest.rstrip("/") + OI_HIST_PATH, op, timeout))
    if not isinstance(klines, list) or not isinstance(hist, list):
        raise BackfillError(f"{symbol}: unexpected body (klines {type(klines).__name__}, "
                            f"open interest {type(hist).__name__})")
    return oi_from_history(hist), trades_from_klines(klines)


async def backfill(engine, cfg: dict, assets: list[str], symbols: dict[str, str] | None = None,
                   first: str | None = None, session=None, now=None) -> dict[str, str]:
    """Fetch each asset's Binance history and feed it to its model, the asset on screen first; every asset in
    ``symbols`` (default: each asset's Binance symbol, ``venues.symbol_for``) is held by the engine until its
    own history is in (or failed). Returns asset → "ok (N rows)"
    or the reason it has none; the engine's status line says how many failed."""
    import aiohttp

    from .venues import symbol_for
    from .venues.base import feeds_cfg

    f = feeds_cfg(cfg)  # the config's defaults for anything left out
    hours = float(f["backfill_hours"])
    rest = str(f["endpoints"]["binance_rest"])
    timeout = float(f["backfill_timeout_seconds"])
    if symbols is None:
        symbols = {a: s for a in assets if (s := symbol_for("binance", a))}
    order = [a for a in dict.fromkeys(([first] if first else []) + list(assets)) if a in symbols]
    result: dict[str, str] = {}
    if hours <= 0 or not order:
        return result
    engine.hold(order)
    own = session is None
    if own:
        session = aiohttp.ClientSession()
    try:
        for a in order:
            try:
                oi, trades = await fetch_binance(session, rest, symbols[a], hours, timeout)
                # the model's replay (~50 ms of CPU per asset) runs in a worker thread, as the grids do, so the
                # event loop — the UI, the live feeds — keeps running between and during the 65 assets
                n = await asyncio.to_thread(engine.backfill, a, oi=oi, trades=trades, now=now() if now else None)
                result[a] = f"ok ({n} rows)"
            except BackfillError as e:
                result[a] = str(e)
                LOG.warning("back-fill %s: %s", a, e)
                if len(result) == 1 and e.unreachable:  # the first asset found no venue to talk to:
                    for rest_a in order[1:]:  # do not wait a timeout per asset for the same answer
                        result[rest_a] = f"skipped after {a}: {e}"
                    break
            finally:
                engine.release(a)
    finally:
        for a in order:
            if engine.held(a):
                engine.release(a)
        if own:
            await session.close()
    failed = [a for a, r in result.items() if not r.startswith("ok")]
    if failed:
        engine.status = f"back-fill: {len(failed)} of {len(order)} assets without history ({result[failed[0]]})"
    return result

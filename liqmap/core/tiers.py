"""Margin tiers and liquidation prices.

A venue's maintenance margin is tiered by position notional: bigger positions pay a higher maintenance-
margin rate (MMR) and may use less leverage. Binance publishes each band as (notional floor, cap, MMR, max
leverage, ``cum``) where ``cum`` is the maintenance amount that keeps the maintenance margin continuous across
bands: ``MM(n) = n·MMR(n) − cum(n)``.

Liquidation-price forms (docs/model.md §2, docs/venues.md §5); ``s`` = +1 long, −1 short:

- linear, MM on the liquidation value (the Binance margin equation ``WB + cum − s·Q·E = Q·(MMR·LP − s·LP)``
  with an isolated wallet ``WB = E·Q/L``)::

      LP = (E·(1 − s/L) − s·cum/Q) / (1 − s·m)      → E(1−1/L)/(1−m) long, E(1+1/L)/(1+m) short

- linear, MM on the entry value (Bybit's help-centre form, ``LP = E ∓ (IM − MM)/Q``)::

      LP = E·(1 − s/L + s·m) − s·deduction/Q        (1 BTC at 20,000, 50x, 0.5 % → 19,700)

- inverse (BitMEX XBTUSD, Deribit BTC-PERPETUAL; Bybit inverse ``LP = Qty/(PV ± IM ∓ MM)``)::

      LP = E / (1 + s·(1/L − m + cum/N))              → E/(1+1/L−m) long, E/(1−1/L+m) short

  where ``N`` is the USD notional (fixed for an inverse contract) and the deduction is converted to coin
  at the entry price.

Tiered: the MMR and ``cum`` are those of the tier holding the position's notional *at the liquidation price*
(Binance computes maintenance margin on mark-price notional; its COIN-M FAQ says to recompute with the
other tier when the tier at the liquidation price differs from the entry tier). Because MM(n) is continuous
and convex, exactly one tier is self-consistent, so :func:`liq_price_tiered` computes the candidate price
for every tier at once and keeps the consistent one — vectorized, no iteration.

Functions return ``nan`` where a position has no liquidation price (a 1x linear long, or an inverse
short at ≤ 1x): nothing is at risk there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

ArrayLike = np.ndarray | float


@dataclass(frozen=True, eq=False)
class TierTable:
    """Notional bands of one contract: ``floor[i] ≤ notional < cap[i]`` uses ``mmr[i]``, ``max_lev[i]``, ``cum[i]``.

    Notionals are in USD (USDT). Arrays are float64, sorted by floor. A notional above the last cap uses the
    last band (the venue would refuse it; the model only needs a number).
    """

    floor: np.ndarray
    cap: np.ndarray
    mmr: np.ndarray
    max_lev: np.ndarray
    cum: np.ndarray
    name: str = ""

    @classmethod
    def from_rows(cls, rows: list[list[float]] | list[tuple], name: str = "") -> TierTable:
        """Build from rows of (floor, cap, mmr, max_leverage, cum); checks that the bands make sense."""
        a = np.asarray(rows, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 5 or len(a) == 0:
            raise ValueError(f"tier table {name!r}: need rows of (floor, cap, mmr, max_leverage, cum)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"tier table {name!r}: non-finite number")
        a = a[np.argsort(a[:, 0], kind="stable")]
        floor, cap, mmr, lev, cum = (a[:, i].copy() for i in range(5))
        if np.any(cap <= floor) or np.any(floor[1:] < cap[:-1] - 1e-6 * cap[:-1]):
            raise ValueError(f"tier table {name!r}: bands overlap or are empty")
        if np.any((mmr <= 0) | (mmr >= 1)) or np.any(lev < 1):
            raise ValueError(f"tier table {name!r}: mmr must be in (0, 1) and max leverage ≥ 1")
        for arr in (floor, cap, mmr, lev, cum):
            arr.flags.writeable = False
        return cls(floor, cap, mmr, lev, cum, name)

    @classmethod
    def continuous(cls, rows: list[tuple[float, float, float, float]], name: str = "") -> TierTable:
        """Build from (floor, cap, mmr, max_leverage) rows, deriving ``cum`` so MM is continuous (Binance's rule:
        ``cum[i] = cum[i−1] + floor[i]·(mmr[i] − mmr[i−1])``)."""
        out, cum, prev = [], 0.0, None
        for floor, cap, mmr, lev in rows:
            if prev is not None:
                cum += floor * (mmr - prev)
            out.append((floor, cap, mmr, lev, cum))
            prev = mmr
        return cls.from_rows(out, name)

    def __len__(self) -> int:
        return len(self.floor)

    @property
    def max_leverage(self) -> float:
        """Highest leverage any band allows (the smallest positions')."""
        return float(self.max_lev.max())

    def tier_index(self, notional: ArrayLike) -> np.ndarray:
        """Band index of each notional (``floor ≤ n < cap``), clipped to the table."""
        n = np.asarray(notional, dtype=np.float64)
        i = np.searchsorted(self.cap, n, side="right")
        return np.clip(i, 0, len(self.cap) - 1)

    def mmr_for(self, notional: ArrayLike) -> np.ndarray | float:
        i = self.tier_index(notional)
        out = self.mmr[i]
        return float(out) if np.ndim(out) == 0 else out

    def cum_for(self, notional: ArrayLike) -> np.ndarray | float:
        i = self.tier_index(notional)
        out = self.cum[i]
        return float(out) if np.ndim(out) == 0 else out

    def max_leverage_for(self, notional: ArrayLike) -> np.ndarray | float:
        i = self.tier_index(notional)
        out = self.max_lev[i]
        return float(out) if np.ndim(out) == 0 else out

    def maintenance_margin(self, notional: ArrayLike) -> np.ndarray | float:
        """``MM(n) = n·MMR(n) − cum(n)`` in USD."""
        n = np.asarray(notional, dtype=np.float64)
        i = self.tier_index(n)
        out = n * self.mmr[i] - self.cum[i]
        return float(out) if np.ndim(out) == 0 else out

    def max_notional_at(self, leverage: ArrayLike) -> np.ndarray | float:
        """Largest notional a position may have at ``leverage`` (cap of the last band allowing it; 0 if none)."""
        lev = np.asarray(leverage, dtype=np.float64)
        ok = self.max_lev[None, :] >= lev.reshape(-1)[:, None] - 1e-9
        caps = np.where(ok, self.cap[None, :], 0.0).max(axis=1).reshape(lev.shape)
        return float(caps) if caps.ndim == 0 else caps

    def rows(self) -> list[tuple[float, float, float, float, float]]:
        return [tuple(float(x) for x in r)
                for r in zip(self.floor, self.cap, self.mmr, self.max_lev, self.cum, strict=True)]


def _nan_unless_positive(lp: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(lp) & (lp > 0), lp, np.nan)


def _out(x: np.ndarray) -> np.ndarray | float:
    return float(x) if np.ndim(x) == 0 else x


def liq_price_linear(entry: ArrayLike, leverage: ArrayLike, mmr: ArrayLike, side: ArrayLike) -> np.ndarray | float:
    """Linear contract, MM on the liquidation value: long ``E(1−1/L)/(1−m)``, short ``E(1+1/L)/(1+m)``."""
    e, lev, m, s = (np.asarray(x, dtype=np.float64) for x in (entry, leverage, mmr, side))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lp = e * (1.0 - s / lev) / (1.0 - s * m)
    return _out(_nan_unless_positive(lp))


def liq_price_inverse(entry: ArrayLike, leverage: ArrayLike, mmr: ArrayLike, side: ArrayLike) -> np.ndarray | float:
    """Inverse contract: long ``E/(1+1/L−m)``, short ``E/(1−1/L+m)``."""
    e, lev, m, s = (np.asarray(x, dtype=np.float64) for x in (entry, leverage, mmr, side))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        den = 1.0 + s * (1.0 / lev - m)
        lp = np.where(den > 0, e / np.where(den > 0, den, 1.0), np.nan)
    return _out(_nan_unless_positive(lp))


def liq_price_entry_mm(entry: ArrayLike, leverage: ArrayLike, mmr: ArrayLike, side: ArrayLike,
                       deduction: ArrayLike = 0.0, qty: ArrayLike = 1.0) -> np.ndarray | float:
    """Linear contract, MM on the entry value (Bybit's isolated form): ``E(1 − s/L + s·m) − s·deduction/Q``."""
    e, lev, m, s, d, q = (np.asarray(x, dtype=np.float64) for x in (entry, leverage, mmr, side, deduction, qty))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lp = e * (1.0 - s / lev + s * m) - s * d / q
    return _out(_nan_unless_positive(lp))


def liq_price_binance(entry: ArrayLike, qty: ArrayLike, side: ArrayLike, wallet: ArrayLike,
                      mmr: ArrayLike, cum: ArrayLike = 0.0) -> np.ndarray | float:
    """Binance's isolated one-way formula as documented: ``LP = (WB + cum − s·Q·E) / (Q·MMR − s·Q)``."""
    e, q, s, wb, m, c = (np.asarray(x, dtype=np.float64) for x in (entry, qty, side, wallet, mmr, cum))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lp = (wb + c - s * q * e) / (q * m - s * q)
    return _out(_nan_unless_positive(lp))


def liq_price_tiered(entry: ArrayLike, leverage: ArrayLike, side: ArrayLike, notional: ArrayLike,
                     table: TierTable, inverse: bool = False) -> np.ndarray | float:
    """Liquidation price using the MMR and ``cum`` of the tier the position is in *at that price*.

    ``notional`` is the position's USD notional at entry (so ``Q = notional/entry`` base units for a linear
    contract; for an inverse contract the USD notional is the contract count and does not change with price).
    All of ``entry``, ``leverage``, ``side``, ``notional`` broadcast together.
    """
    e, lev, s, n = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (entry, leverage, side, notional)))
    ex, lx, sx, nx = (a[..., None] for a in (e, lev, s, n))  # trailing axis: candidate tier
    m, cum = table.mmr, table.cum
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if inverse:
            den = 1.0 + sx * (1.0 / lx - m + cum / nx)
            cand = np.where(den > 0, ex / np.where(den > 0, den, 1.0), np.nan)
            at_lp = np.broadcast_to(nx, cand.shape)  # USD notional of an inverse position is fixed
        else:
            q = nx / ex
            cand = (ex * (1.0 - sx / lx) - sx * cum / q) / (1.0 - sx * m)
            at_lp = q * cand
        lo = table.floor.copy()
        hi = table.cap.copy()
        lo[0], hi[-1] = -np.inf, np.inf
        tol = 1e-9 * np.maximum(np.abs(at_lp), 1.0)
        ok = np.isfinite(cand) & (cand > 0) & (at_lp >= lo - tol) & (at_lp <= hi + tol)
    # The consistent tier (the first one when the price sits exactly on a band edge: both give the same
    # price there, since MM is continuous). If rounding leaves none, fall back to the entry-notional tier.
    first = np.argmax(ok, axis=-1)
    any_ok = ok.any(axis=-1)
    entry_tier = table.tier_index(n)
    pick = np.where(any_ok, first, entry_tier)
    lp = np.take_along_axis(cand, pick[..., None], axis=-1)[..., 0]
    return _out(_nan_unless_positive(lp))


# --- bundled tables -------------------------------------------------------------------------------------

#: Fallback for venues/assets without a table: a mid-cap alt ladder shaped like Binance's (50x at 1 % up to
#: 10k, stepping to 1x at 50 %); ``cum`` derived for continuity. Deliberately conservative (max 50x), so the
#: model never assumes 100x leverage where it does not know the venue allows it.
GENERIC_TIERS = TierTable.continuous(
    [
        (0.0, 10_000.0, 0.010, 50.0),
        (10_000.0, 100_000.0, 0.015, 25.0),
        (100_000.0, 500_000.0, 0.025, 20.0),
        (500_000.0, 1_000_000.0, 0.050, 10.0),
        (1_000_000.0, 5_000_000.0, 0.100, 5.0),
        (5_000_000.0, 10_000_000.0, 0.125, 4.0),
        (10_000_000.0, 20_000_000.0, 0.250, 2.0),
        (20_000_000.0, 50_000_000.0, 0.500, 1.0),
    ],
    name="generic",
)


def load_tier_file(path_or_text: str, *, is_text: bool = False) -> tuple[dict, dict[str, TierTable]]:
    """Parse a liqmap tier file (``{"source", "as_of", "columns", "symbols": {SYM: {"asset", "brackets"}}}``).

    Returns (header, {symbol: TierTable, asset: TierTable}). Raises ValueError naming the problem.
    """
    try:
        doc = json.loads(path_or_text) if is_text else json.loads(open(path_or_text, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"tier file: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), dict):
        raise ValueError("tier file: missing 'symbols' table")
    if doc.get("columns") != ["floor", "cap", "mmr", "max_leverage", "cum"]:
        raise ValueError("tier file: columns must be floor, cap, mmr, max_leverage, cum")
    out: dict[str, TierTable] = {}
    for sym, entry in doc["symbols"].items():
        table = TierTable.from_rows(entry["brackets"], name=sym)
        out[sym] = table
        if entry.get("asset"):
            out[entry["asset"]] = table
    header = {k: v for k, v in doc.items() if k != "symbols"}
    return header, out


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[dict, dict[str, TierTable]]:
    text = resources.files("liqmap").joinpath("data", "binance_tiers.json").read_text(encoding="utf-8")
    return load_tier_file(text, is_text=True)


def binance_tiers() -> dict[str, TierTable]:
    """The bundled Binance USD-M tables, keyed by Binance symbol (``1000PEPEUSDT``) and by asset (``PEPE``)."""
    return dict(_bundled()[1])


def binance_tiers_header() -> dict:
    """Source and date of the bundled table."""
    return dict(_bundled()[0])


# Hyperliquid's margin tables (docs/hyperliquid.md §6, §8; HL docs ``trading/margin-tiers``, checked
# 2026-12-05): table id → tiers of (lower bound in USDC, max leverage). Ids below 50 are one tier at that
# leverage. Maintenance margin is half the initial margin at the tier's max leverage: mmr = 1/(2·lev), with
# the deduction continuous across tiers (``TierTable.continuous``, the same rule as Binance's ``cum``).
HYPERLIQUID_MARGIN_TABLES: dict[int, tuple[tuple[float, float], ...]] = {
    51: ((0.0, 10.0), (3e6, 5.0)),
    52: ((0.0, 10.0), (20e6, 5.0)),
    53: ((0.0, 20.0), (40e6, 10.0)),
    54: ((0.0, 20.0), (70e6, 10.0)),
    55: ((0.0, 25.0), (100e6, 15.0)),
    56: ((0.0, 40.0), (150e6, 20.0)),
}
# liqmap asset → Hyperliquid margin table id (the capture of ``meta`` in docs/hyperliquid.md §8; a live run's
# ``meta`` answer is trusted over it: ``hyperliquid_table(tiers)``).
HYPERLIQUID_TABLE_OF: dict[str, int] = {
    "BTC": 56, "ETH": 55, "SOL": 54, "XRP": 53,
    **{a: 51 for a in ("BNB", "DOT", "TRX", "TON", "ARB", "OP", "INJ", "SEI", "SHIB", "LDO", "ONDO", "JUP")},
    **{a: 52 for a in ("DOGE", "ADA", "AVAX", "LINK", "SUI", "LTC", "BCH", "NEAR", "APT", "TIA", "PEPE", "BONK",
                       "UNI", "AAVE", "CRV", "ENA", "WLD", "ZEC")},
    **{a: 3 for a in ("GALA", "ORDI", "KAS")},
}
_HL_CAP = 1e12  # above every tier (TierTable needs a finite cap)


def hyperliquid_table(tiers, name: str = "") -> TierTable:
    """A Hyperliquid margin table from its tiers ``[(lowerBound USDC, maxLeverage), ...]`` (as ``meta``'s
    ``marginTables`` give them): mmr = 1/(2·max leverage) per tier, deduction continuous."""
    rows = sorted((float(lb), float(lev)) for lb, lev in tiers)
    out = []
    for i, (lb, lev) in enumerate(rows):
        cap = rows[i + 1][0] if i + 1 < len(rows) else _HL_CAP
        out.append((lb, cap, 1.0 / (2.0 * lev), lev))
    return TierTable.continuous(out, name=name)


@functools.lru_cache(maxsize=None)
def hyperliquid_table_for(asset: str) -> TierTable:
    """The bundled Hyperliquid table of ``asset`` (5x single tier where the capture lists none)."""
    tid = HYPERLIQUID_TABLE_OF.get(asset.upper(), 5)
    tiers = HYPERLIQUID_MARGIN_TABLES.get(tid) or ((0.0, float(tid)),)
    return hyperliquid_table(tiers, name=f"hyperliquid:{tid}")


def table_for(asset: str, venue: str = "binance") -> TierTable:
    """The table the model uses for ``asset`` on ``venue``.

    Binance uses its bundled table. Other venues have no bundled table: a live run gives the model the
    ladders the venues publish (Bybit, OKX, BitMEX; fetched and cached by ``liqmap.feeds.metadata``, passed in
    through the engine's ``tiers`` source), and this is the fallback where none was fetched (Deribit, demo,
    replay, an offline first start): the asset's Binance table as a proxy, because the venues' ladders are
    similar for the same asset (BTC tier 1 ≈ 0.4–0.5 % everywhere). Assets Binance does not list use
    :data:`GENERIC_TIERS`. Hyperliquid's tables are public and small: they are bundled here
    (:func:`hyperliquid_table_for`).
    """
    if venue == "hyperliquid":
        return hyperliquid_table_for(asset)
    return binance_tiers().get(asset.upper(), GENERIC_TIERS)

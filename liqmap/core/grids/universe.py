"""The engine's full rebuild: every asset × timeframe in one pass over each asset's rows.

Each asset's rings are gathered once (``Market.gather``: venues in order, time-sorted) and reused for all
five timeframes; per timeframe the liquidations are one ``np.bincount`` into the (side, row, column) cells
and the trace is two binary searches per column boundary over the time-sorted trades (no pass per event
beyond computing its column). Modes other than Raw take each asset's synthetic model from ``models``.
"""

from __future__ import annotations

from dataclasses import dataclass


from ..snapshot import MapGrid
from .. import timeframes as _tf
from .layers import column_prices, sorted_by_time
from .modes import (
    GridParams,
    SyntheticModel,
    build_heatmap,
    build_hybrid,
    build_raw,
    build_synthetic,
    model_layers,
    model_levels,
)
from .window import Window, make_window


@dataclass(frozen=True)
class AssetRows:
    """An asset's bucket step and the rows its grids cover (see ``window.rows_around``)."""

    step: float
    row0: int
    nrows: int


def build_all(
    market,
    rows: dict[str, AssetRows],
    now: float,
    *,
    timeframes: tuple[str, ...] = _tf.ORDER,
    ncols: int = 240,
    venues: tuple[str, ...] | None = None,
    mode: str = "raw",
    models: dict[str, SyntheticModel] | None = None,
    params: GridParams = GridParams(),
) -> dict[tuple[str, str], MapGrid]:
    """Full rebuild of ``mode`` for every asset in ``rows`` and every timeframe: {(asset, tf): MapGrid}."""
    vs = tuple(market.venues if venues is None else venues)
    out: dict[tuple[str, str], MapGrid] = {}
    for asset, ar in rows.items():
        trades = sorted_by_time(market.gather("trade", asset, vs))
        liqs = market.gather("liq", asset, vs) if mode in ("raw", "hybrid") else None
        model = (models or {}).get(asset)
        for tf in timeframes:
            win = make_window(now, tf, ncols, ar.step, ar.row0, ar.nrows)
            out[(asset, tf)] = _one(asset, tf, win, mode, liqs, trades, model, venues, vs, now, params)
    return out


def _one(asset: str, tf: str, win: Window, mode: str, liqs, trades, model, venues, vs, now: float,
         params: GridParams) -> MapGrid:
    if mode == "raw":
        return build_raw(asset, tf, win, liqs, trades, now=now, half_life_s=params.raw_half_life_s, venues=vs)
    lo, sh = model_layers(model, tf, win, venues)
    if mode == "synthetic":
        return build_synthetic(asset, tf, win, lo, sh, trades, venues=vs)
    if mode == "heatmap":
        return build_heatmap(asset, tf, win, lo, sh, trades, params=params, venues=vs)
    if mode == "hybrid":
        return build_hybrid(asset, tf, win, liqs, lo, sh, trades, model_levels(model, venues), now=now,
                            params=params, venues=vs)
    raise ValueError(f"unknown mode {mode!r}")


def column_prices_all(market, asset: str, win: Window, venues=None):
    """Trace, high and low for one asset's window straight from the market (helper for consumers)."""
    vs = tuple(market.venues if venues is None else venues)
    return column_prices(market.gather("trade", asset, vs), win)


__all__ = ["AssetRows", "build_all", "column_prices_all"]

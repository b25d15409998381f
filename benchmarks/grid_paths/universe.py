"""A full rebuild of every asset × timeframe in one pass over each asset's rows.

Benchmark-only (``benchmarks/bench_grids.py``: ``grid_full``): the app never runs it — the engine builds each
view from its condensed tapes and the model (``liqmap.core.engine``), not from the rings.

Each asset's rings are read once (in ``Market.gather`` order: venues in order, stable by time; trades as
bare ts/price arrays) and reused for all five timeframes. Per timeframe the liquidations are one bincount
into the (side, row, column) cells (per occupied cell when sparse, see ``layers.split_f32``) and the trace
is a binary search per column edge over each venue's time-sorted trades, merged by the same "latest, then
later venue" rule as a gather, so there is no per-trade pass per timeframe and no cross-venue sort. Modes other than Raw take each asset's synthetic model from ``models``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liqmap.core.events import LIQ_DTYPE
from liqmap.core.snapshot import MapGrid
from liqmap.core import timeframes as _tf
from liqmap.core.grids.layers import column_prices, liquidation_grids, prices_sorted, profile_rows
from liqmap.core.grids.modes import (
    GridParams,
    SyntheticModel,
    assemble,
    heatmap_layers,
    hybrid_real,
    drawn_layers,
    model_layers,
    model_levels,
)
from liqmap.core.grids.window import Window, column_thresholds, make_window


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
    """Full rebuild of ``mode`` for every asset in ``rows`` and every timeframe: {(asset, tf): MapGrid}.

    Equal to ``build_view`` per (asset, timeframe) (the tests check it); faster because each asset's rows
    are read once for all timeframes and the trades are never copied as whole records.
    """
    vs = tuple(market.venues if venues is None else venues)
    out: dict[tuple[str, str], MapGrid] = {}
    for asset, ar in rows.items():
        per_venue = _venue_prices(market, asset, vs)
        liqs = _gather_liqs(market, asset, vs) if mode in ("raw", "hybrid") else None
        model = (models or {}).get(asset)
        for tf in timeframes:
            win = make_window(now, tf, ncols, ar.step, ar.row0, ar.nrows)
            trace = merged_trace(per_venue, win)
            out[(asset, tf)] = _one(asset, tf, win, mode, liqs, trace, model, venues, vs, now, params)
    return out


def _venue_prices(market, asset: str, venues: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per venue ring, in venue order: contiguous time-sorted (ts, price). A venue's ring is nearly always
    in time order already (checked in one pass); ties keep append order. Market rows are validated."""
    out = []
    for ring in market.rings("trade", asset, venues):
        rows = ring.view()
        if not len(rows):
            continue
        ts, price = np.ascontiguousarray(rows["ts"]), np.ascontiguousarray(rows["price"])
        if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            order = np.argsort(ts, kind="stable")
            ts, price = ts[order], price[order]
        out.append((ts, price))
    return out


def merged_trace(per_venue: list[tuple[np.ndarray, np.ndarray]], win: Window) -> np.ndarray:
    """Last price per column over several venues' sorted trades, as ``Market.gather`` + ``price_trace``
    would give: the latest time wins, and on equal times the later venue (then the later append) wins.
    Costs a binary search per column edge per venue: the venues are never concatenated or sorted."""
    best_ts = np.full(win.ncols, -np.inf)
    trace = np.full(win.ncols, np.nan)
    edges = column_thresholds(win)
    for ts, price in per_venue:
        cp = prices_sorted(ts, price, win, with_range=False, edges=edges)
        take = cp.last_ts >= best_ts  # NaN (no trade in the column) compares False
        best_ts[take] = cp.last_ts[take]
        trace[take] = cp.last[take]
    return trace


def _gather_liqs(market, asset: str, venues: tuple[str, ...]) -> np.ndarray:
    """Liquidations need no time order for binning: just the venues' rows, concatenated."""
    parts = [r.view() for r in market.rings("liq", asset, venues)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=LIQ_DTYPE)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _one(asset: str, tf: str, win: Window, mode: str, liqs, trace: np.ndarray, model, venues, vs,
         now: float, params: GridParams) -> MapGrid:
    if mode == "raw":
        lo, sh, vals = liquidation_grids(liqs, win, now=now, half_life_s=params.raw_half_life_s)
        return assemble(asset, "raw", tf, win, trace, long=lo, short=sh, values=vals, venues=vs)
    lo, sh = drawn_layers(model, win, *model_layers(model, tf, win, venues), None, params, trace=trace)
    if mode == "synthetic":
        return assemble(asset, "synthetic", tf, win, trace, long=lo, short=sh, venues=vs)
    if mode == "heatmap":
        slo, ssh, vals = heatmap_layers(lo, sh, params)
        return assemble(asset, "heatmap", tf, win, trace, long=slo, short=ssh, values=vals, venues=vs)
    if mode == "hybrid":
        real = hybrid_real(liqs, win, now, params)
        return assemble(asset, "hybrid", tf, win, trace, long=lo + real[0], short=sh + real[1],
                        real=real[0] + real[1], profile=profile_rows(model_levels(model, venues), win),
                        venues=vs)
    raise ValueError(f"unknown mode {mode!r}")


def column_prices_all(market, asset: str, win: Window, venues=None):
    """Trace, high and low for one asset's window straight from the market (helper for consumers)."""
    vs = tuple(market.venues if venues is None else venues)
    return column_prices(market.gather("trade", asset, vs), win)


__all__ = ["AssetRows", "build_all", "column_prices_all"]

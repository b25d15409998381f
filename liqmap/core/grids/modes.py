"""The four map modes (docs/architecture.md §4) as pure builders over arrays, plus the one-call ``build_view``.

Every builder takes plain arrays (liquidation rows, trade rows, the synthetic model's per-column profile
arrays, its current levels) and returns a ``MapGrid``; nothing here reads a ring or calls a model except
the thin conveniences ``model_layers``/``model_levels`` and ``build_view``. The benchmarks' incremental path
(``benchmarks/grid_paths``) produces the same grids without rebuilding; tests hold the two equal.

What each mode's grid holds (float32 USD unless said):

- raw: ``long``/``short`` real liquidations per cell, ``values`` = long + short (optionally decayed).
- synthetic: the model's per-column long/short profile weighted by the chance price reaches each row from the
  column's price, to the power ``synthetic_reach_alpha`` (``drawn_layers``, ``reach.py``: USD at risk ×
  reach^α), ``values`` = long + short.
- heatmap: ``long``/``short`` = those drawn layers smoothed along price (USD), ``values`` = their sum
  normalized per view to 0–1 (log scale, percentile clip).
- positions: ``long``/``short`` = the exact liquidation USD of the tracked wallets of a venue that publishes
  positions (Hyperliquid), each level a band from when it was first seen to when it moved or ended;
  ``profile_long``/``profile_short`` = the exact levels now (the right edge). A sample of the largest wallets,
  labelled with its coverage wherever it is shown (``core/engine/exact.py``).
- hybrid: ``real`` = real liquidations of the last ``hybrid_real_hours``, decayed with age (``real_long`` its
  long side, so the map can colour each mark by side); ``long``/``short``
  = real + drawn synthetic per side; ``values`` = long + short; ``profile_long``/``profile_short`` = the model's
  current levels binned onto the rows (the forward profile for the right edge).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from ..params import GridParams
from ..snapshot import MapGrid
from ..view import View
from .layers import (
    LONG_PLANE,
    SHORT_PLANE,
    clean_layer,
    column_prices,
    liquidation_grids,
    liquidation_layers,
    normalize,
    profile_rows,
    smooth_rows,
)
from .reach import of_model, weigh_layers
from .window import Window, view_window

HOUR = 3600.0


class SyntheticModel(Protocol):
    """What the grids need from ``liqmap.core.synthetic`` (duck-typed so the grids never import it)."""

    def column_profiles(self, tf: str, col_lo: int, col_hi: int, row0: int, nrows: int,
                        venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def levels(self, venues: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    # optional: ``forecast(venues=, price=) -> (bucket, expected long USD, expected short USD, reach)``
    # optional: ``draws_resting = True`` and ``column_profiles(..., rest_out=)`` (``model_layers``)


def f32(a: np.ndarray) -> np.ndarray:
    """A float32 layer: float64 layers are converted (tiny negative float residue clamped to 0); float32
    arrays are taken as they are (they are fresh arrays made for this grid)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32:
        return a
    out = np.asarray(a, dtype=np.float32)
    np.maximum(out, 0.0, out=out)
    return out


def assemble(asset: str, mode: str, tf: str, win: Window, trace: np.ndarray, *, long: np.ndarray,
             short: np.ndarray, values: np.ndarray | None = None, real: np.ndarray | None = None,
             real_long: np.ndarray | None = None, profile: tuple[np.ndarray, np.ndarray] | None = None,
             venues: tuple[str, ...] = ()) -> MapGrid:
    """Wrap layers into a MapGrid (float64 → float32 copies; ``values`` defaults to long + short)."""
    lo, sh = f32(long), f32(short)
    vals = lo + sh if values is None else f32(values)
    return MapGrid(
        asset=asset, mode=mode, timeframe=tf, step=win.step, row0=win.row0, col0=win.col0,
        period=win.period, values=vals, trace=np.asarray(trace, dtype=np.float64), long=lo, short=sh,
        real=None if real is None else f32(real),
        real_long=None if real_long is None else f32(real_long),
        profile_long=None if profile is None else f32(profile[0]),
        profile_short=None if profile is None else f32(profile[1]),
        venues=tuple(venues),
    )


def _trace(trades: np.ndarray | None, win: Window) -> np.ndarray:
    if trades is None:
        return np.full(win.ncols, np.nan)
    return column_prices(trades, win, with_range=False).last


def _layers(syn_long, syn_short, win: Window) -> tuple[np.ndarray, np.ndarray]:
    shape = (win.nrows, win.ncols)
    return clean_layer(syn_long, shape, "synthetic long"), clean_layer(syn_short, shape, "synthetic short")


def build_raw(asset: str, tf: str, win: Window, liqs: np.ndarray, trades: np.ndarray | None = None, *,
              now: float | None = None, half_life_s: float = 0.0, venues: tuple[str, ...] = ()) -> MapGrid:
    """Raw: real liquidations per cell, long and short apart (exact USD sums unless a half-life is set)."""
    lo, sh, vals = liquidation_grids(liqs, win, now=now, half_life_s=half_life_s)
    return assemble(asset, "raw", tf, win, _trace(trades, win), long=lo, short=sh, values=vals, venues=venues)


def build_synthetic(asset: str, tf: str, win: Window, syn_long, syn_short, trades: np.ndarray | None = None,
                    *, venues: tuple[str, ...] = ()) -> MapGrid:
    """Synthetic: the model's drawn profile per cell (``drawn_layers``: USD at risk × reach^α)."""
    lo, sh = _layers(syn_long, syn_short, win)
    return assemble(asset, "synthetic", tf, win, _trace(trades, win), long=lo, short=sh, venues=venues)


def heatmap_layers(lo: np.ndarray, sh: np.ndarray, params: GridParams) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray]:
    """(smoothed long, smoothed short, normalized values) from clean synthetic layers."""
    both = smooth_rows(np.stack((lo, sh)), params.heatmap_sigma_buckets)
    vals = normalize(both[0] + both[1], params.heatmap_clip_pct, params.heatmap_decades)
    return both[0], both[1], vals


def build_heatmap(asset: str, tf: str, win: Window, syn_long, syn_short, trades: np.ndarray | None = None,
                  *, params: GridParams = GridParams(), venues: tuple[str, ...] = ()) -> MapGrid:
    """Synthetic Heatmap: the synthetic layers smoothed along price, values normalized to 0–1."""
    lo, sh = _layers(syn_long, syn_short, win)
    slo, ssh, vals = heatmap_layers(lo, sh, params)
    return assemble(asset, "heatmap", tf, win, _trace(trades, win), long=slo, short=ssh, values=vals,
                    venues=venues)


def hybrid_real(liqs: np.ndarray, win: Window, now: float, params: GridParams) -> np.ndarray:
    """The Hybrid real layer: liquidations since ``now − hybrid_real_s``, decayed with age. (2, r, c)."""
    return liquidation_layers(liqs, win, now=now, half_life_s=params.hybrid_half_life_s,
                              since_ts=now - params.hybrid_real_s)


def build_hybrid(asset: str, tf: str, win: Window, liqs: np.ndarray, syn_long, syn_short,
                 trades: np.ndarray | None = None, levels=None, *, now: float,
                 params: GridParams = GridParams(), venues: tuple[str, ...] = ()) -> MapGrid:
    """Hybrid: recent real liquidations (own layer, for markers) + unconsumed synthetic levels per column,
    and the forward profile (the model's current ``levels``) binned onto the rows."""
    lo, sh = _layers(syn_long, syn_short, win)
    real = hybrid_real(liqs, win, now, params)
    lo += real[LONG_PLANE]
    sh += real[SHORT_PLANE]
    return assemble(asset, "hybrid", tf, win, _trace(trades, win), long=lo, short=sh,
                    real=real[LONG_PLANE] + real[SHORT_PLANE], real_long=real[LONG_PLANE],
                    profile=profile_rows(levels, win),
                    venues=venues)


def exact_layers(segments: np.ndarray | None, win: Window, now: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact bands (``core.positions.SEGMENT_DTYPE`` rows: price, side, usd, start, end) as (long, short)
    layers: each band's USD on its price's row over the columns from its start to its end (open bands: now)."""
    shape = (win.nrows, win.ncols)
    lo, sh = np.zeros(shape), np.zeros(shape)
    if segments is None or not len(segments):
        return lo, sh
    with np.errstate(invalid="ignore"):
        r = np.floor(segments["price"] / win.step + 1e-9) - win.row0
        end = np.minimum(segments["end"], now)
        c0 = np.floor(segments["start"] / win.period) - win.col0
        c1 = np.floor(end / win.period) - win.col0  # the column the band ended in still shows it
    ok = (r >= 0) & (r < win.nrows) & (c1 >= 0) & (c0 < win.ncols) & (end >= segments["start"]) & \
        (segments["usd"] > 0) & np.isfinite(segments["usd"])
    if not ok.any():
        return lo, sh
    r, usd, side = r[ok].astype(np.int64), segments["usd"][ok], segments["side"][ok]
    a = np.clip(c0[ok], 0, win.ncols - 1).astype(np.int64)
    b = np.clip(c1[ok], 0, win.ncols - 1).astype(np.int64) + 1
    for layer, m in ((lo, side > 0), (sh, side < 0)):
        if not m.any():
            continue
        diff = np.zeros((win.nrows, win.ncols + 1))  # a band adds at its first column and stops after its last
        np.add.at(diff, (r[m], a[m]), usd[m])
        np.add.at(diff, (r[m], b[m]), -usd[m])
        layer += np.cumsum(diff, axis=1)[:, :win.ncols]
    np.maximum(lo, 0.0, out=lo)
    np.maximum(sh, 0.0, out=sh)
    return lo, sh


def build_positions(asset: str, tf: str, win: Window, segments: np.ndarray | None, levels,
                    trades: np.ndarray | None = None, *, now: float, venues: tuple[str, ...] = ()) -> MapGrid:
    """Positions: exact liquidation USD of the tracked wallets by price over time, the exact levels now at the
    right edge."""
    lo, sh = exact_layers(segments, win, now)
    return assemble(asset, "positions", tf, win, _trace(trades, win), long=lo, short=sh,
                    profile=profile_rows(levels, win), venues=venues)


def model_layers(model: SyntheticModel | None, tf: str, win: Window,
                 venues: tuple[str, ...] | None = None, col_lo: int | None = None,
                 rest_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The model's per-column (long, short) profile for columns ``col_lo .. win.col1-1`` (default: the whole
    window), cleaned to finite non-negative float64. No model → zeros (the map still shows real data).
    ``rest_out`` (float32 zeros of that shape) receives the resting layer's part of long + short, where the
    model has one (``draws_resting``)."""
    lo_col = win.col0 if col_lo is None else col_lo
    shape = (win.nrows, win.col1 - lo_col)
    if model is None or shape[1] <= 0:
        return np.zeros(shape), np.zeros(shape)
    if rest_out is not None and getattr(model, "draws_resting", False):
        lo, sh = model.column_profiles(tf, lo_col, win.col1, win.row0, win.nrows, venues, rest_out=rest_out)
    else:
        lo, sh = model.column_profiles(tf, lo_col, win.col1, win.row0, win.nrows, venues)
    return clean_layer(lo, shape, "synthetic long"), clean_layer(sh, shape, "synthetic short")


RESTING_MIN_SHARE = 1e-3  # the resting layer's part of a view's drawn USD under which the view draws none apart


def resting_plane(mode: str, rest: np.ndarray | None, lo: np.ndarray, sh: np.ndarray, drawn_lo: np.ndarray,
                  drawn_sh: np.ndarray, params: GridParams = GridParams()) -> np.ndarray | None:
    """The part of a model mode's heat (``MapGrid.resting``) that is the resting layer — positions held for
    days, read from the OI and the price path (docs/model.md §3 step 13) — so the map can draw it in a hue of
    its own: without it the layer, tens of millions a row after a crash, is one block of the top colour over
    the flow's clusters. ``rest``: its at-risk USD per cell, of the at-risk ``lo + sh``; drawn as the same
    share of the drawn cell (reach weighs a cell, not a side). The heatmap mode's is smoothed like its layers.
    None when no cell holds any (the usual case: the layer is within ±15 % of price only after a large move), or
    only its far tail — under ``RESTING_MIN_SHARE`` of the view's drawn USD (a key reading "$10/row held" in a
    calm market says nothing)."""
    if rest is None or not (rest > 0).any():
        return None
    tot = np.asarray(lo, np.float64) + sh
    share = np.divide(rest, tot, out=np.zeros(tot.shape), where=tot > 0)
    np.clip(share, 0.0, 1.0, out=share)
    heat = np.asarray(drawn_lo, np.float64) + drawn_sh
    drawn = share * heat
    if not drawn.sum() >= RESTING_MIN_SHARE * heat.sum():
        return None
    if mode == "heatmap":
        drawn = smooth_rows(drawn[None], params.heatmap_sigma_buckets)[0]
    return f32(drawn)


def drawn_layers(model: SyntheticModel | None, win: Window, lo: np.ndarray, sh: np.ndarray,
                 trades: np.ndarray | None, params: GridParams = GridParams(),
                 trace: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the model modes draw from the model's at-risk layers ``lo``/``sh`` of ``win``: each cell × the chance
    price reaches its row from the column's price (the trace of ``trades``, or ``trace`` when the caller has it),
    to the power ``params.synthetic_reach_alpha`` (``reach.py``). The layers as they are without a model
    that forecasts, with α = 0, or with no traded price in view."""
    rw = of_model(model, params.synthetic_reach_alpha)
    if rw is None:
        return lo, sh
    return weigh_layers(lo, sh, win, _trace(trades, win) if trace is None else trace, rw)


def model_levels(model: SyntheticModel | None, venues: tuple[str, ...] | None = None):
    """The model's current levels ``(bucket_idx, long_usd, short_usd)``, or None without a model."""
    return None if model is None else model.levels(venues)


def report_levels(model, venues: tuple[str, ...] | None = None):
    """The levels the reports and the forward profile weigh (``SyntheticModel.report_levels``: the map's and the
    resting layer), or the map's levels for a model without one; None without a model."""
    if model is None:
        return None
    return model.report_levels(venues) if hasattr(model, "report_levels") else model.levels(venues)


def model_forecast(model, win: Window, venues: tuple[str, ...] | None = None,
                   price: float | None = None) -> np.ndarray | None:
    """The next hour's expected liquidation USD per row of ``win`` (long + short, float32), from the model's
    forecast (``SyntheticModel.forecast``: its forecast levels × the chance of reach from ``price``) — the same
    numbers the NEXT 1H clusters are grown from. None without a model that forecasts."""
    if model is None or not hasattr(model, "forecast"):
        return None
    b, el, es, _ = model.forecast(venues=venues, price=price)
    lo, sh = profile_rows((b, el, es), win)
    return f32(lo + sh)


def build_view(market, view: View, step: float, row0: int, now: float, model: SyntheticModel | None = None,
               params: GridParams = GridParams()) -> MapGrid:
    """Full rebuild of one view from the market's rings (``Market.gather``) and the model: ``view.rows``
    buckets of ``step`` from bucket ``row0`` (where the engine placed the view) × ``view.columns`` columns."""
    from ..modes import spec as mode_spec  # the registry builds on this module: imported when first needed

    mode_spec(view.mode)  # an unknown mode is refused here
    win = view_window(view, now, step, row0)
    venues = tuple(market.venues if view.venues is None else view.venues)
    trades = market.gather("trade", view.asset, venues)
    tf = view.timeframe
    if view.mode == "raw":
        liqs = market.gather("liq", view.asset, venues)
        return build_raw(view.asset, tf, win, liqs, trades, now=now, half_life_s=params.raw_half_life_s,
                         venues=venues)
    rest = np.zeros((win.nrows, win.ncols), np.float32)
    alo, ash = model_layers(model, tf, win, view.venues, rest_out=rest)
    lo, sh = drawn_layers(model, win, alo, ash, trades, params)
    held = resting_plane(view.mode, rest, alo, ash, lo, sh, params)
    if view.mode == "synthetic":
        grid = build_synthetic(view.asset, tf, win, lo, sh, trades, venues=venues)
    elif view.mode == "heatmap":
        grid = build_heatmap(view.asset, tf, win, lo, sh, trades, params=params, venues=venues)
    else:
        liqs = market.gather("liq", view.asset, venues)
        grid = build_hybrid(view.asset, tf, win, liqs, lo, sh, trades, model_levels(model, view.venues),
                            now=now, params=params, venues=venues)
    return grid if held is None else replace(grid, resting=held)

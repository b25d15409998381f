"""The numeric layers every mode is made of, each a whole-array numpy operation (no per-event Python).

- ``liquidation_layers`` / ``liquidation_grids``: real liquidations binned by (bucket, column), USD summed,
  long and short apart, optionally decayed with age and cut at a horizon (float64 planes / the float32
  long, short and values grids of the Raw mode).
- ``column_prices``: last trade price per column (the price trace) and each column's high and low.
- ``smooth_rows`` / ``normalize``: the Synthetic Heatmap's Gaussian along price and its 0–1 scaling.
- ``profile_rows``: the model's current levels (bucket index, long USD, short USD) binned onto the rows.

Safety: every event weight is made finite, non-negative and capped at ``MAX_EVENT_USD`` before it is
summed, and every model array is cleaned the same way, so no NaN or inf can ever reach a grid whatever
finite (or non-finite) numbers come in. The cap is far above any real notional (1e30 USD) and keeps a
cell's sum finite in float64 and in float32 (3.4e38) unless one cell held over 10^8 capped events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .window import Window, cells, column_thresholds

MAX_EVENT_USD = 1e30

# Index of the long and short planes in a (2, nrows, ncols) side-split array.
LONG_PLANE, SHORT_PLANE = 0, 1


def clean_usd(usd: np.ndarray) -> np.ndarray:
    """Finite, non-negative, capped float64 copy of a USD array (NaN/−x → 0, +inf → cap)."""
    w = np.array(usd, dtype=np.float64, copy=True)
    bad = ~np.isfinite(w)
    if bad.any():  # rare: only a caller bypassing Market's validation gets here
        w[bad] = np.where(w[bad] > 0, MAX_EVENT_USD, 0.0)
    np.clip(w, 0.0, MAX_EVENT_USD, out=w)
    return w


def decay_factor(age_s: np.ndarray | float, half_life_s: float) -> np.ndarray:
    """2^(−age/half-life). Ages are in seconds; a zero or negative half-life means no decay."""
    if not half_life_s > 0:
        return np.ones_like(np.asarray(age_s, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore"):
        return np.exp2(-np.asarray(age_s, dtype=np.float64) / half_life_s)


def liquidation_cells(liqs: np.ndarray, win: Window, since_ts: float | None = None):
    """Events of ``liqs`` (LIQ_DTYPE) inside the window, as (index into liqs, side-split flat cell, usd).

    The flat cell is ``plane*ncells + row*ncols + col`` with plane 0 = long, 1 = short. Rows with a side of
    0 (neither) are dropped: a liquidation always has a position side. ``since_ts`` drops older events
    (the Hybrid horizon).
    """
    if len(liqs) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0, dtype=np.float64)
    ok, flat = cells(liqs["price"], liqs["ts"], win)
    idx = np.flatnonzero(ok)
    side = liqs["side"][idx]
    keep = side != 0
    if since_ts is not None:
        keep &= liqs["ts"][idx] >= since_ts
    if not keep.all():
        idx, flat, side = idx[keep], flat[keep], side[keep]
    flat = flat + (side < 0).astype(np.int64) * win.ncells
    return idx, flat, clean_usd(liqs["usd"][idx])


def bin_flat(flat: np.ndarray, weights: np.ndarray, nbins: int) -> np.ndarray:
    """Sum ``weights`` per flat bin (float64 of length ``nbins``). bincount: one pass, no Python loop."""
    if len(flat) == 0:
        return np.zeros(nbins, dtype=np.float64)
    return np.bincount(flat, weights=weights, minlength=nbins)


def liquidation_layers(
    liqs: np.ndarray,
    win: Window,
    *,
    now: float | None = None,
    half_life_s: float = 0.0,
    since_ts: float | None = None,
) -> np.ndarray:
    """Real liquidations as a float64 (2, nrows, ncols) array: plane 0 long USD, plane 1 short USD.

    With ``half_life_s > 0`` each event is weighted by 2^(−(now − ts)/half_life_s) (docs/model.md §4: Raw has a
    recency decay); with 0 the cells are exact sums of the events' USD.
    """
    idx, flat, w = liquidation_cells(liqs, win, since_ts)
    if half_life_s > 0 and len(idx):
        if now is None:
            raise ValueError("a decayed liquidation layer needs `now`")
        w = w * decay_factor(now - liqs["ts"][idx], half_life_s)
    return bin_flat(flat, w, 2 * win.ncells).reshape(2, win.nrows, win.ncols)


def split_f32(flat: np.ndarray, weights: np.ndarray, win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Side-split flat cells (see ``liquidation_cells``) summed straight into float32 (long, short, values).

    The three grids are views of one (3, nrows, ncols) allocation: fresh memory costs page faults, and
    one block per grid instead of three is what keeps the 325-grid rebuild in budget. Liquidations are
    sparse (a few per column at most, most cells empty), so when there are far fewer events than cells the
    sums are taken per occupied cell (sort + bincount over the occupied ones) and scattered into the zeroed
    block, instead of a dense float64 bincount and dense conversions. ``values`` is ``long + short`` added
    in float32 either way, so both paths give identical grids.
    """
    nc = win.ncells
    out = np.zeros((3, nc), dtype=np.float32)
    if len(flat) * 8 < nc:
        if len(flat):
            occupied, inverse = np.unique(flat, return_inverse=True)
            both = out[:2].reshape(-1)
            both[occupied] = np.bincount(inverse, weights=weights)
            k = int(np.searchsorted(occupied, nc))
            lc, sc = occupied[:k], occupied[k:] - nc
            values = out[2]
            values[lc] = out[0, lc]
            values[sc] += out[1, sc]
    else:
        out[:2] = bin_flat(flat, weights, 2 * nc).reshape(2, nc)
        np.add(out[0], out[1], out=out[2])
    out = out.reshape(3, win.nrows, win.ncols)
    return out[0], out[1], out[2]


def liquidation_grids(
    liqs: np.ndarray,
    win: Window,
    *,
    now: float | None = None,
    half_life_s: float = 0.0,
    since_ts: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``liquidation_layers`` as float32 (long, short, values) grids, the Raw mode's output."""
    idx, flat, w = liquidation_cells(liqs, win, since_ts)
    if half_life_s > 0 and len(idx):
        if now is None:
            raise ValueError("a decayed liquidation layer needs `now`")
        w = w * decay_factor(now - liqs["ts"][idx], half_life_s)
    return split_f32(flat, w, win)


@dataclass(frozen=True)
class ColumnPrices:
    """Per column of a window: last trade price (NaN if none), its time, high and low (NaN if none)."""

    last: np.ndarray
    last_ts: np.ndarray
    high: np.ndarray
    low: np.ndarray

    @property
    def traded(self) -> np.ndarray:
        return ~np.isnan(self.last)


def _empty_prices(n: int) -> ColumnPrices:
    nan = np.full(n, np.nan)
    return ColumnPrices(nan, nan.copy(), nan.copy(), nan.copy())


def sorted_by_time(rows: np.ndarray) -> np.ndarray:
    """``rows`` in time order, ties kept in their given order (a no-op pass when already sorted)."""
    ts = rows["ts"]
    if len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1])):
        return rows
    return rows[np.argsort(ts, kind="stable")]


def prices_sorted(ts: np.ndarray, price: np.ndarray, win: Window, *, with_range: bool = True,
                  edges: np.ndarray | None = None) -> ColumnPrices:
    """``column_prices`` for contiguous, time-sorted, valid ``ts``/``price`` arrays.

    Column boundaries come from binary searches of the exact float column edges (``edges``: the window's
    ``column_thresholds``, computed here when not given), so the cost is O(ncols·log n) plus, for
    high/low, one pass over the window's trades.
    """
    n = win.ncols
    if len(ts) == 0:
        return _empty_prices(n)
    bounds = np.searchsorted(ts, column_thresholds(win) if edges is None else edges, side="left")
    starts, ends = bounds[:-1], bounds[1:]
    has = ends > starts
    last = np.full(n, np.nan)
    last_ts = np.full(n, np.nan)
    last_i = ends[has] - 1
    last[has] = price[last_i]
    last_ts[has] = ts[last_i]
    high = np.full(n, np.nan)
    low = np.full(n, np.nan)
    if with_range and has.any():
        lo, hi = int(bounds[0]), int(bounds[-1])
        seg = price[lo:hi]
        s = starts[has] - lo
        high[has] = np.maximum.reduceat(seg, s)
        low[has] = np.minimum.reduceat(seg, s)
    return ColumnPrices(last, last_ts, high, low)


def column_prices(trades: np.ndarray, win: Window, *, with_range: bool = True) -> ColumnPrices:
    """Last trade price per column plus high/low. "Last" is the greatest ``ts``; equal times resolve to
    the row that comes later in ``trades`` (``Market.gather`` order: venues in order, then append order).
    Trades outside the columns are dropped; the row range does not matter (the trace may leave the view).
    """
    if len(trades) == 0:
        return _empty_prices(win.ncols)
    good = np.isfinite(trades["price"]) & (trades["price"] > 0) & np.isfinite(trades["ts"])
    if not good.all():
        trades = trades[good]
    trades = sorted_by_time(trades)
    return prices_sorted(np.ascontiguousarray(trades["ts"]), np.ascontiguousarray(trades["price"]), win,
                         with_range=with_range)


def price_trace(trades: np.ndarray, win: Window) -> np.ndarray:
    """Last trade price per column (float64, NaN where nothing traded)."""
    return column_prices(trades, win, with_range=False).last


def price_range(trades: np.ndarray, win: Window) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) trade price per column (NaN where nothing traded): what the model's consumption and the
    UI's candles need."""
    cp = column_prices(trades, win)
    return cp.high, cp.low


def gaussian_kernel(sigma_buckets: float) -> np.ndarray:
    """Normalized Gaussian taps over ±ceil(4σ) buckets (a tiny or non-positive σ gives the identity)."""
    if not sigma_buckets >= 0.05 or not np.isfinite(sigma_buckets):
        return np.ones(1)  # narrower than 1/20 bucket: the taps beside the centre are < 1e-40
    radius = max(1, int(np.ceil(4.0 * sigma_buckets)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_buckets) ** 2)
    return k / k.sum()


def smooth_rows(a: np.ndarray, sigma_buckets: float) -> np.ndarray:
    """Convolve every column of ``a`` (..., nrows, ncols) with a Gaussian along the price axis.

    The map wants a Gaussian in *log*-price (docs/model.md §4). Buckets are linear steps, but one bucket is
    ~5 bp of price and spans nearly the same log width everywhere in a view (across a ±15% view the log
    width of a bucket changes by ±15%), so σ in buckets is σ in log-price to within that for σ of 1–2
    buckets. Cells beyond the view are taken as empty (zero padding): mass smoothed off the edge is lost,
    which only dims the edge rows slightly. One vectorized slice-add per kernel tap, no per-cell loop.
    """
    k = gaussian_kernel(sigma_buckets)
    if len(k) == 1:
        return np.array(a, dtype=np.float64, copy=True)
    a = np.asarray(a, dtype=np.float64)
    nrows = a.shape[-2]
    out = np.zeros_like(a)
    radius = len(k) // 2
    for t, w in enumerate(k):
        d = t - radius  # output row r receives input row r - d
        if abs(d) >= nrows:
            continue
        if d >= 0:
            out[..., d:, :] += w * a[..., : nrows - d, :]
        else:
            out[..., : nrows + d, :] += w * a[..., -d:, :]
    return out


def normalize(values: np.ndarray, clip_pct: float = 99.0, decades: float = 3.0) -> np.ndarray:
    """Scale a USD grid to 0–1 for at-a-glance reading: log scale with a percentile clip.

    ``hi`` is the ``clip_pct`` percentile (nearest rank) of the non-empty cells: cells above it read as
    full, so one monster cell cannot wash out the rest; values ``decades`` orders of magnitude below ``hi``
    fade to ~0.1 and an empty cell is exactly 0. Only the non-empty cells are touched (the heatmap is
    renormalized on every 1m update). Always finite, in [0, 1], also for an all-zero grid (all zeros);
    NaN and negative cells count as empty, +inf as full.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        nz = np.flatnonzero(v > 0)
    if nz.size == 0:
        return out
    vals = np.minimum(v.reshape(-1)[nz], MAX_EVENT_USD)
    pct = min(max(float(clip_pct), 0.0), 100.0) if np.isfinite(clip_pct) else 99.0
    k = int(round(pct / 100.0 * (vals.size - 1)))
    hi = float(np.partition(vals, k)[k])
    floor = hi * 10.0 ** (-min(max(float(decades), 0.1), 300.0) if np.isfinite(decades) else -3.0)
    if not floor > 0:
        floor = np.finfo(np.float64).tiny
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scaled = np.log1p(vals / floor) / np.log1p(hi / floor)
    np.nan_to_num(scaled, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    out.reshape(-1)[nz] = scaled
    return out


def clean_layer(a, shape: tuple[int, int], what: str = "model layer") -> np.ndarray:
    """A model-provided (nrows, ncols) USD array as a clean float64 copy (finite, ≥0, capped)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{what}: expected shape {tuple(shape)}, got {arr.shape}")
    return clean_usd(arr)


def profile_rows(levels, win: Window) -> tuple[np.ndarray, np.ndarray]:
    """Bin the model's current levels ``(bucket_idx, long_usd, short_usd)`` onto the window's rows.

    Levels outside the rows are dropped. Returns float64 (nrows,) long and short USD.
    """
    if levels is None:
        z = np.zeros(win.nrows)
        return z, z.copy()
    idx, lu, su = levels
    idx = np.asarray(idx)
    if idx.dtype.kind in "iu":
        rel = idx.astype(np.int64) - win.row0
        ok = (rel >= 0) & (rel < win.nrows)
        r = rel[ok]
    else:  # tolerate float bucket indices; NaN/inf fail the range test and are dropped
        with np.errstate(invalid="ignore"):
            relf = np.floor(idx.astype(np.float64)) - win.row0
            ok = (relf >= 0) & (relf < win.nrows)
        r = relf[ok].astype(np.int64)
    lu = clean_usd(np.asarray(lu, dtype=np.float64)[ok])
    su = clean_usd(np.asarray(su, dtype=np.float64)[ok])
    return bin_flat(r, lu, win.nrows), bin_flat(r, su, win.nrows)

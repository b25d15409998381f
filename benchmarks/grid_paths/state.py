"""Incremental grids over the rings: keep one view's grid alive and fold in only what arrived since.

Benchmark-only (``benchmarks/bench_grids.py``: ``grid_1m``), kept as the reference for a ring-cursor path:
the app never runs it. The engine's own incremental path is different — it keeps the model's closed columns
and re-bins real liquidations and the trace from its condensed tapes (``liqmap.core.engine``). ``GridState``
keeps, per view:

- one cursor per (kind, venue) ring (``RingBuffer.written``), so an update reads only the rows appended
  since (``since_count``) and adds them into their cells (``np.add.at`` for a handful, ``np.bincount``
  for a flood);
- the column window: when time moves into a new column the arrays shift left by k columns in place and
  the new columns start empty, instead of rebuilding;
- a full rebuild when the view (asset, mode, timeframe, rows, venues, column count) changes, when time
  goes backwards, or on first use.

The result equals a full rebuild (``modes.build_view``) up to float rounding; the tests check this over
random event streams. How the pieces stay exact:

- Decay (Raw with a half-life, Hybrid's real layer): cells hold ``usd·2^((ts−ref)/h)`` for a fixed
  reference time, and the output multiplies by ``2^(−(now−ref)/h)``, which is exactly each event's
  ``2^(−age/h)`` without touching old cells; the reference is moved forward now and then so the stored
  numbers stay small.
- Hybrid's horizon (``hybrid_real_hours``): the few real events inside it are remembered with their cell
  and weight; when one ages out its weight is subtracted again and a per-cell count resets emptied cells
  to exactly 0 (no float residue).
- Events stamped in a column that is not in the window yet (exchange clock slightly ahead) are held back
  and added when their column arrives, as a rebuild at that moment would.
- The price trace keeps, per column, the time and venue rank of the last trade, so "last" means the same
  thing as in a rebuild (latest time; ties go to the later venue in the view's venue order, then to the
  later append).
- The synthetic layers: closed columns are frozen (a column's profile is the model's state when the column
  closed, ``SyntheticModel.column_profiles`` replays its history exactly); each update re-reads the column
  that was open at the previous update, the one before it (in case the model's clock lagged the view's by
  a column) and every newer one.

Not equal: if a ring overflows between two updates the rows it overwrote are lost to both paths, but the
state keeps what it had already counted while a rebuild cannot see it any more.
"""

from __future__ import annotations

import numpy as np

from liqmap.core.snapshot import MapGrid
from liqmap.core.grids.layers import (
    LONG_PLANE,
    SHORT_PLANE,
    decay_factor,
    liquidation_cells,
    normalize,
    profile_rows,
    smooth_rows,
)
from liqmap.core.grids.modes import GridParams, SyntheticModel, assemble, model_layers, model_levels
from liqmap.core.grids.reach import of_model, weigh_layers
from liqmap.core.grids.window import view_window
from liqmap.core.view import View
from liqmap.core.grids.window import Window, col_float

# Rebase the decay reference once it is this many half-lives old (2^256 ≈ 1e77: far from overflow).
_REBASE_HALF_LIVES = 256.0


def read_since(ring, cursor: int) -> tuple[np.ndarray, int]:
    """Rows appended to ``ring`` after ``cursor`` and the cursor to use next time."""
    lo = max(int(cursor), ring.written - ring.capacity, 0)
    rows = ring.since_count(lo)
    return rows, lo + len(rows)


def add_into(target: np.ndarray, flat: np.ndarray, weights: np.ndarray) -> None:
    """``target.flat[flat] += weights`` with repeats summed: add.at for a few rows, bincount for many."""
    if len(flat) == 0:
        return
    flat_view = target.reshape(-1)
    if len(flat) * 16 < flat_view.size:
        np.add.at(flat_view, flat, weights)
    else:
        add = np.bincount(flat, weights=weights, minlength=flat_view.size)
        flat_view += add if add.dtype == flat_view.dtype else add.astype(flat_view.dtype)


def _shift_left(a: np.ndarray, k: int, fill) -> None:
    """Shift the last axis left by k in place; the k newest slots get ``fill``."""
    n = a.shape[-1]
    if k >= n:
        a[...] = fill
        return
    a[..., : n - k] = a[..., k:]
    a[..., n - k :] = fill


class GridState:
    """One view's grid, kept up to date incrementally. Call ``update(now)``; it returns a fresh MapGrid."""

    def __init__(self, market, view: View, step: float, row0: int, model: SyntheticModel | None = None,
                 params: GridParams = GridParams()) -> None:
        self.market = market
        self.model = model
        self.params = params
        self._spec = (view, float(step), int(row0))  # the view and where its rows sit: a change rebuilds
        self._win: Window | None = None
        self._now = -np.inf
        self.rebuilds = 0  # full rebuilds done (the engine and tests watch this)

    # -- view ---------------------------------------------------------------------------------------
    @property
    def view(self) -> View:
        return self._spec[0]

    @property
    def window(self) -> Window | None:
        return self._win

    def set_view(self, view: View, step: float, row0: int) -> None:
        """Switch view; the next update rebuilds if anything that shapes the grid changed."""
        spec = (view, float(step), int(row0))
        if spec != self._spec:
            self._spec = spec
            self._win = None

    def invalidate(self) -> None:
        self._win = None

    @property
    def high(self) -> np.ndarray:
        """Per-column trade high of the current window (NaN where nothing traded)."""
        return self._hi.copy()

    @property
    def low(self) -> np.ndarray:
        return self._lo.copy()

    @property
    def trace(self) -> np.ndarray:
        return self._tr_price.copy()

    # -- what the mode needs ------------------------------------------------------------------------
    @property
    def _uses_liq(self) -> bool:
        return self.view.mode in ("raw", "hybrid")

    @property
    def _uses_model(self) -> bool:
        return self.view.mode != "raw"

    @property
    def _half_life(self) -> float:
        p = self.params
        return p.raw_half_life_s if self.view.mode == "raw" else p.hybrid_half_life_s

    @property
    def _horizon(self) -> float | None:
        return self.params.hybrid_real_s if self.view.mode == "hybrid" else None

    # -- update -------------------------------------------------------------------------------------
    def update(self, now: float) -> MapGrid:
        now = float(now)
        view, step, row0 = self._spec
        win = view_window(view, now, step, row0)
        if self._win is None or win.col0 < self._win.col0 or now < self._now:
            self._reset(win, now)
            self.rebuilds += 1
        elif win.col0 > self._win.col0:
            self._shift(win)
        self._now = now
        self._maybe_rebase(now)
        if self.view.mode == "hybrid":
            self._expire(now - self._horizon)
        new = self._read_new()
        if self._uses_liq:
            self._add_liqs(*self._with_pending("liq", *new["liq"]), now)
        self._add_trades(*self._with_pending("trade", *new["trade"]))
        if self._uses_model:
            self._refresh_model()
        return self._grid(now)

    def _reset(self, win: Window, now: float) -> None:
        view = self.view
        self._win = win
        self._venues = tuple(self.market.venues if view.venues is None else view.venues)
        shape = (2, win.nrows, win.ncols)
        self._cursor: dict[tuple[str, str], int] = {}
        self._pending: dict[str, tuple[np.ndarray, np.ndarray] | None] = {"liq": None, "trade": None}
        self._ref = now
        self._liq = np.zeros(shape) if self._uses_liq else None
        self._count = np.zeros(shape, dtype=np.int64) if view.mode == "hybrid" else None
        self._ev = _RealEvents()
        n = win.ncols
        self._tr_price = np.full(n, np.nan)
        self._tr_ts = np.full(n, np.nan)
        self._tr_rank = np.full(n, -1, dtype=np.int64)
        self._hi = np.full(n, np.nan)
        self._lo = np.full(n, np.nan)
        self._syn = np.zeros(shape) if self._uses_model else None
        self._smooth = np.zeros(shape) if view.mode == "heatmap" else None
        self._open_col: int | None = None
        self._profile = (np.zeros(win.nrows), np.zeros(win.nrows))

    def _shift(self, win: Window) -> None:
        k = win.col0 - self._win.col0
        for a in (self._liq, self._count, self._syn, self._smooth):
            if a is not None:
                _shift_left(a, k, 0)
        for a in (self._tr_price, self._tr_ts, self._hi, self._lo):
            _shift_left(a, k, np.nan)
        _shift_left(self._tr_rank, k, -1)
        self._ev.drop_before_col(win.col0)
        self._win = win

    def _maybe_rebase(self, now: float) -> None:
        h = self._half_life
        if self._liq is None or not h > 0 or (now - self._ref) / h < _REBASE_HALF_LIVES:
            return
        f = float(decay_factor(now - self._ref, h))
        self._liq *= f
        self._ev.w *= f
        self._ref = now

    # -- reading rings ------------------------------------------------------------------------------
    def _read_new(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per kind: rows appended since the last read, venues in view order, and each row's venue rank."""
        out = {}
        asset = self.view.asset
        for kind in ("liq", "trade"):
            if kind == "liq" and not self._uses_liq:
                continue
            parts, ranks = [], []
            for rank, venue in enumerate(self._venues):
                rings = self.market.rings(kind, asset, (venue,))
                if not rings:
                    continue
                key = (kind, venue)
                rows, self._cursor[key] = read_since(rings[0], self._cursor.get(key, 0))
                if len(rows):
                    parts.append(rows)
                    ranks.append(np.full(len(rows), rank, dtype=np.int64))
            if parts:
                out[kind] = (np.concatenate(parts), np.concatenate(ranks))
            else:
                out[kind] = (None, None)
        return out

    def _with_pending(self, kind: str, rows, ranks):
        """Rows held back as "in a future column" go first (they were appended earlier)."""
        held = self._pending[kind]
        self._pending[kind] = None
        if held is None:
            return rows, ranks
        if rows is None:
            return held
        return np.concatenate((held[0], rows)), np.concatenate((held[1], ranks))

    def _hold_future(self, kind: str, rows, ranks) -> tuple[np.ndarray, np.ndarray]:
        """Split off rows whose column is after the window; keep them for later. Returns the rest."""
        cf = col_float(rows["ts"], self._win)
        fut = cf >= self._win.ncols
        if fut.any():
            self._pending[kind] = (rows[fut], ranks[fut])
            return rows[~fut], ranks[~fut]
        return rows, ranks

    # -- liquidations -------------------------------------------------------------------------------
    def _add_liqs(self, rows, ranks, now: float) -> None:
        if rows is None:
            return
        rows, ranks = self._hold_future("liq", rows, ranks)
        win = self._win
        since = None if self._horizon is None else now - self._horizon
        idx, flat, w = liquidation_cells(rows, win, since)
        if len(idx) == 0:
            return
        h = self._half_life
        if h > 0:
            w = w * decay_factor(self._ref - rows["ts"][idx], h)
        add_into(self._liq, flat, w)
        if self._count is not None:
            add_into(self._count, flat, np.ones(len(flat), dtype=np.int64))
            cell = flat % win.ncells
            self._ev.add(rows["ts"][idx], flat // win.ncells, cell // win.ncols,
                         cell % win.ncols + win.col0, w)

    def _expire(self, cutoff: float) -> None:
        """Take Hybrid real events older than ``cutoff`` out of their cells again."""
        gone = self._ev.pop_before(cutoff)
        if gone is None:
            return
        plane, row, col, w = gone
        win = self._win
        flat = plane * win.ncells + row * win.ncols + (col - win.col0)
        neg = np.negative(w)
        add_into(self._liq, flat, neg)
        add_into(self._count, flat, np.full(len(flat), -1, dtype=np.int64))
        empty = self._count.reshape(-1)[flat] <= 0
        self._liq.reshape(-1)[flat[empty]] = 0.0

    # -- trades -------------------------------------------------------------------------------------
    def _add_trades(self, rows, ranks) -> None:
        if rows is None:
            return
        rows, ranks = self._hold_future("trade", rows, ranks)
        win = self._win
        price, ts = rows["price"], rows["ts"]
        cf = col_float(ts, win)
        ok = (cf >= 0) & (cf < win.ncols) & np.isfinite(price) & (price > 0)
        if not ok.any():
            return
        price, ts, ranks, cols = price[ok], ts[ok], ranks[ok], cf[ok].astype(np.int64)
        order = np.lexsort((np.arange(len(ts)), ranks, ts))  # time, then venue rank, then append order
        price, ts, ranks, cols = price[order], ts[order], ranks[order], cols[order]
        change = np.flatnonzero(cols[1:] != cols[:-1])
        starts = np.concatenate(([0], change + 1))
        ends = np.concatenate((change, [len(cols) - 1]))
        c = cols[ends]
        cand_ts, cand_rank = ts[ends], ranks[ends]
        st_ts, st_rank = self._tr_ts[c], self._tr_rank[c]
        better = np.isnan(st_ts) | (cand_ts > st_ts) | ((cand_ts == st_ts) & (cand_rank >= st_rank))
        cb = c[better]
        self._tr_price[cb] = price[ends][better]
        self._tr_ts[cb] = cand_ts[better]
        self._tr_rank[cb] = cand_rank[better]
        self._hi[c] = np.fmax(self._hi[c], np.maximum.reduceat(price, starts))
        self._lo[c] = np.fmin(self._lo[c], np.minimum.reduceat(price, starts))

    # -- synthetic ----------------------------------------------------------------------------------
    def _refresh_model(self) -> None:
        win = self._win
        # Re-read from the column *before* the one open last time: a model whose clock lagged the view by up
        # to a column showed that column live last time and has closed it since.
        lo_col = win.col0 if self._open_col is None else max(self._open_col - 1, win.col0)
        lo, sh = model_layers(self.model, self.view.timeframe, win, self.view.venues, col_lo=lo_col)
        j = lo_col - win.col0
        self._syn[LONG_PLANE, :, j:] = lo
        self._syn[SHORT_PLANE, :, j:] = sh
        if self._smooth is not None:
            self._smooth[:, :, j:] = smooth_rows(self._syn[:, :, j:], self.params.heatmap_sigma_buckets)
        self._open_col = win.col1 - 1
        if self.view.mode == "hybrid":
            self._profile = profile_rows(model_levels(self.model, self.view.venues), win)

    # -- output -------------------------------------------------------------------------------------
    def _decayed_liq(self, now: float) -> np.ndarray:
        h = self._half_life
        if not h > 0:
            return self._liq
        return self._liq * decay_factor(now - self._ref, h)

    def _grid(self, now: float) -> MapGrid:
        view, win = self.view, self._win
        trace = self._tr_price.copy()
        a = (view.asset, view.mode, view.timeframe, win, trace)
        if view.mode == "raw":
            liq = self._decayed_liq(now)
            return assemble(*a, long=liq[LONG_PLANE], short=liq[SHORT_PLANE], venues=self._venues)
        # what the map draws: the at-risk columns kept here × the chance of reach from each column's price, on
        # every output (core/grids/reach.py: the weighting moves with the model's volatility)
        rw = of_model(self.model, self.params.synthetic_reach_alpha)
        syn = self._syn
        if rw is not None:
            syn = np.stack(weigh_layers(syn[LONG_PLANE], syn[SHORT_PLANE], win, trace, rw))
        if view.mode == "synthetic":
            return assemble(*a, long=syn[LONG_PLANE], short=syn[SHORT_PLANE], venues=self._venues)
        if view.mode == "heatmap":
            # the kept smoothing is of the at-risk columns; weighted ones are smoothed whole
            sm = self._smooth if syn is self._syn else smooth_rows(syn, self.params.heatmap_sigma_buckets)
            vals = normalize(sm[LONG_PLANE] + sm[SHORT_PLANE], self.params.heatmap_clip_pct,
                             self.params.heatmap_decades)
            return assemble(*a, long=sm[LONG_PLANE], short=sm[SHORT_PLANE], values=vals, venues=self._venues)
        real = self._decayed_liq(now)
        return assemble(*a, long=syn[LONG_PLANE] + real[LONG_PLANE],
                        short=syn[SHORT_PLANE] + real[SHORT_PLANE],
                        real=real[LONG_PLANE] + real[SHORT_PLANE], real_long=real[LONG_PLANE],
                        profile=self._profile, venues=self._venues)


class _RealEvents:
    """The Hybrid real events currently counted in the grid: time, cell (plane, row, absolute column) and
    the weight added, so each can be taken out again when it leaves the horizon. A few thousand at most."""

    def __init__(self) -> None:
        self.ts = np.zeros(0)
        self.plane = np.zeros(0, dtype=np.int64)
        self.row = np.zeros(0, dtype=np.int64)
        self.col = np.zeros(0, dtype=np.int64)
        self.w = np.zeros(0)

    def add(self, ts, plane, row, col, w) -> None:
        self.ts = np.concatenate((self.ts, ts))
        self.plane = np.concatenate((self.plane, plane))
        self.row = np.concatenate((self.row, row))
        self.col = np.concatenate((self.col, col))
        self.w = np.concatenate((self.w, w))

    def _keep(self, keep: np.ndarray) -> None:
        self.ts, self.plane, self.row, self.col, self.w = (
            self.ts[keep], self.plane[keep], self.row[keep], self.col[keep], self.w[keep])

    def drop_before_col(self, col0: int) -> None:
        if len(self.col):
            self._keep(self.col >= col0)

    def pop_before(self, cutoff: float):
        if not len(self.ts):
            return None
        old = self.ts < cutoff
        if not old.any():
            return None
        out = (self.plane[old], self.row[old], self.col[old], self.w[old])
        self._keep(~old)
        return out

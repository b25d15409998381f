"""Which cells a view covers, and which cell an event falls in.

A view is a rectangle of canonical buckets (rows, lowest price first) × timeframe columns. Rows come from
the zoom (how many buckets) and a centre price; columns from ``timeframes.window(now, tf, ncols)``, so a
view's columns are whole, epoch-aligned periods that every asset shares.

Events outside the rectangle are *dropped*, never clipped onto the edge: a liquidation 20% below the view
must not pile up on the bottom row and pretend to be a cluster there.

Cell coordinates are computed in float first and cast to integers only for the events inside the view, so
absurd but finite inputs (a price of 1e300) can never overflow an int64 and land somewhere arbitrary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import buckets, timeframes
from ..view import View

# buckets.index adds this so a price sitting exactly on a bucket edge is not pushed down by float error;
# the grids must use the very same rule so a level and its row always agree.
_EDGE_EPS = 1e-9


@dataclass(frozen=True)
class Window:
    """The cell rectangle of one view: rows ``row0 .. row0+nrows-1``, columns ``col0 .. col0+ncols-1``."""

    step: float
    row0: int
    nrows: int
    col0: int
    ncols: int
    period: int

    def __post_init__(self) -> None:
        if self.nrows <= 0 or self.ncols <= 0:
            raise ValueError(f"a grid needs at least one row and one column, got {self.nrows}×{self.ncols}")
        if not (self.step > 0 and np.isfinite(self.step)):
            raise ValueError(f"bucket step must be positive and finite, got {self.step!r}")

    @property
    def col1(self) -> int:
        return self.col0 + self.ncols

    @property
    def row1(self) -> int:
        return self.row0 + self.nrows

    @property
    def ncells(self) -> int:
        return self.nrows * self.ncols

    @property
    def t0(self) -> float:
        """Start of the first column (seconds)."""
        return float(self.col0 * self.period)

    @property
    def t1(self) -> float:
        """End of the last column (seconds, exclusive)."""
        return float(self.col1 * self.period)

    def shifted(self, col0: int) -> "Window":
        return Window(self.step, self.row0, self.nrows, int(col0), self.ncols, self.period)


def rows_around(centre_price: float, step: float, nrows: int) -> tuple[int, int]:
    """(row0, nrows): ``nrows`` buckets with the centre price's bucket in the middle row."""
    if nrows <= 0:
        raise ValueError(f"nrows must be positive, got {nrows}")
    if not (centre_price > 0 and np.isfinite(centre_price)):
        raise ValueError(f"centre price must be positive and finite, got {centre_price!r}")
    centre = int(buckets.index(centre_price, step))
    return centre - nrows // 2, int(nrows)


def make_window(now: float, tf: str, ncols: int, step: float, row0: int, nrows: int) -> Window:
    """The window ending with the column that holds ``now``."""
    c0, _ = timeframes.window(now, tf, ncols)
    return Window(float(step), int(row0), int(nrows), int(c0), int(ncols), timeframes.period(tf))


def view_window(view: View, now: float, step: float, row0: int) -> Window:
    """The window of ``view`` (its rows and columns) placed at bucket ``row0`` of ``step``, ending with the
    column that holds ``now``."""
    return make_window(now, view.timeframe, view.columns, step, row0, view.rows)


def window_around(now: float, tf: str, ncols: int, step: float, centre_price: float, nrows: int) -> Window:
    row0, nrows = rows_around(centre_price, step, nrows)
    return make_window(now, tf, ncols, step, row0, nrows)


def row_float(prices: np.ndarray, win: Window) -> np.ndarray:
    """Row of each price relative to ``row0`` as float (NaN/±inf stay non-finite and fail range checks)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.floor(np.asarray(prices, dtype=np.float64) / win.step + _EDGE_EPS) - win.row0


def col_float(ts: np.ndarray, win: Window) -> np.ndarray:
    """Column of each timestamp relative to ``col0`` as float (same rule as ``timeframes.column``)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.floor(np.asarray(ts, dtype=np.float64) / win.period) - win.col0


def in_columns(cf: np.ndarray, win: Window) -> np.ndarray:
    return (cf >= 0) & (cf < win.ncols)


def in_rows(rf: np.ndarray, win: Window) -> np.ndarray:
    return (rf >= 0) & (rf < win.nrows)


def cells(prices: np.ndarray, ts: np.ndarray, win: Window) -> tuple[np.ndarray, np.ndarray]:
    """(mask of events inside the window, flat cell index ``row*ncols + col`` of those events)."""
    rf = row_float(prices, win)
    cf = col_float(ts, win)
    ok = in_rows(rf, win) & in_columns(cf, win)
    flat = rf[ok].astype(np.int64) * win.ncols + cf[ok].astype(np.int64)
    return ok, flat


def column_thresholds(win: Window) -> np.ndarray:
    """Float times ``thr`` (ncols + 1) with ``thr[k] <= ts < thr[k+1]`` exactly when ``col_float(ts) == k``.

    ``c·period`` is the mathematical edge, but ``floor(ts / period)`` rounds the division, so a time a few
    ulps below the edge can already count as the next column. Stepping each edge down ulp by ulp while
    the division still says "next column" gives the exact float edge of the rule every other path uses;
    then a binary search over time-sorted trades finds each column without touching every trade.
    """
    p = float(win.period)
    cols = np.arange(win.col0, win.col1 + 1, dtype=np.float64)
    thr = cols * p
    while True:
        lower = np.nextafter(thr, -np.inf)
        move = np.floor(lower / p) >= cols
        if not move.any():
            return thr
        thr[move] = lower[move]

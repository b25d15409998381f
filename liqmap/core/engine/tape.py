"""Condensed tapes: the trades and liquidations a view needs, bounded by the view's window, not by the flow.

Why: a 4h view of 240 columns spans 40 days; keeping 40 days of raw trades in ring buffers for 325
(asset, venue) pairs would need gigabytes. But a grid only reads, per column, the last/high/low trade price
(the trace) and the liquidation USD per (bucket, side). So each (asset, timeframe) keeps a tape condensed to
exactly that resolution:

- ``TradeTape``: per (column, venue) three trade rows — the high and the low (stamped with the column's first
  trade time) and the last (its own time, total qty/USD of the column). ``grids.layers.column_prices`` over a
  condensed tape gives the same last/high/low per column as over the full tape, for this timeframe and any
  coarser one.
- ``LiqTape``: per (column, bucket, side, venue) one liquidation row with the summed qty/USD, stamped with
  the newest event's time and priced at the bucket's middle (the price kind of the group's first event is
  kept; grids do not use it). Binning it gives exactly the raw grid's sums; a Hybrid age decay sees each
  cell at its newest event's age (≤ one column off).

Rows older than the window are dropped on every merge, so a tape's size is bounded by
columns × venues × (3 | occupied buckets); ``MAX_LIQ_ROWS`` is a last guard for a flood spread over very many
buckets (a 4h tape spans 40 days): past it the oldest columns go first. New rows merge only with the newest columns (the condensed head
before the first touched column is kept as is), so a merge costs the size of the new batch, not the tape.
"""

from __future__ import annotations

import numpy as np

from ..buckets import index as bucket_index
from ..events import LIQ_DTYPE, TRADE_DTYPE

MAX_LIQ_ROWS = 32768  # ~1.1 MB per (asset, timeframe)


def _cols(ts: np.ndarray, period: int) -> np.ndarray:
    return np.floor(ts / period).astype(np.int64)


def _group_starts(keys: list[np.ndarray]) -> np.ndarray:
    """Start offsets of runs of equal consecutive keys (rows already sorted by the keys)."""
    n = len(keys[0])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


class _Tape:
    dtype: np.dtype

    def __init__(self, period: int, columns: int) -> None:
        self.dropped_columns_before: int | None = None  # set when the row guard cut old columns
        self.period = int(period)
        self.columns = int(columns)
        self.rows = np.zeros(0, dtype=self.dtype)  # sorted by (column, ...), condensed
        self._col = np.zeros(0, dtype=np.int64)  # column of each row (kept alongside, sorted)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self._col.nbytes

    def trim(self, now: float) -> None:
        """Drop columns older than the window ending at ``now`` (one spare column for the shift)."""
        first = int(now // self.period) - self.columns
        if len(self._col) and self._col[0] < first:
            k = int(np.searchsorted(self._col, first, side="left"))
            self.rows, self._col = self.rows[k:], self._col[k:]

    def merge(self, new: np.ndarray, now: float | None = None, **kw) -> None:
        if len(new):
            new_col = _cols(new["ts"], self.period)
            first_new = int(new_col.min())
            k = int(np.searchsorted(self._col, first_new, side="left"))
            head, head_col = self.rows[:k], self._col[:k]
            tail = np.concatenate((self.rows[k:], new)) if k < len(self.rows) else new
            tail_col = np.concatenate((self._col[k:], new_col)) if k < len(self.rows) else new_col
            rows, cols = self._condense(tail, tail_col, **kw)
            self.rows = np.concatenate((head, rows)) if len(head) else rows
            self._col = np.concatenate((head_col, cols)) if len(head) else cols
        if now is not None:
            self.trim(now)

    def select(self, venue_ids: np.ndarray | None) -> np.ndarray:
        """The condensed rows (of some venues), time-sorted for the grid builders."""
        rows = self.rows
        if venue_ids is not None:
            rows = rows[np.isin(rows["venue"], venue_ids)]
        return rows[np.argsort(rows["ts"], kind="stable")]

    def _condense(self, rows: np.ndarray, cols: np.ndarray, **kw):  # pragma: no cover - abstract
        raise NotImplementedError


class TradeTape(_Tape):
    dtype = TRADE_DTYPE

    def _condense(self, rows: np.ndarray, cols: np.ndarray, **kw):
        venue = rows["venue"].astype(np.int64)
        order = np.lexsort((rows["ts"], venue, cols))
        rows, cols, venue = rows[order], cols[order], venue[order]
        starts = _group_starts([cols, venue])
        ends = np.append(starts[1:], len(rows))
        price = rows["price"]
        hi = np.maximum.reduceat(price, starts)
        lo = np.minimum.reduceat(price, starts)
        qty = np.add.reduceat(rows["qty"], starts)
        usd = np.add.reduceat(rows["usd"], starts)
        last = rows[ends - 1]
        first_ts = rows["ts"][starts]
        g = len(starts)
        out = np.zeros(3 * g, dtype=TRADE_DTYPE)
        # high, low at the column's first trade time; last keeps its own (greatest) time.
        out["ts"][0::3] = first_ts
        out["price"][0::3] = hi
        out["ts"][1::3] = first_ts
        out["price"][1::3] = lo
        out["ts"][2::3] = last["ts"]
        out["price"][2::3] = last["price"]
        out["qty"][2::3] = qty
        out["usd"][2::3] = usd
        out["side"] = np.repeat(last["side"], 3)
        out["venue"] = np.repeat(last["venue"], 3)
        # High/low rows carry no size: a consumer summing volume reads the column's total once.
        return out, np.repeat(cols[starts], 3)


class LiqTape(_Tape):
    dtype = LIQ_DTYPE

    def merge(self, new: np.ndarray, now: float | None = None, step: float = 1.0) -> None:  # type: ignore[override]
        super().merge(new, now, step=step)
        if len(self._col) > MAX_LIQ_ROWS:
            cut = int(self._col[len(self._col) - MAX_LIQ_ROWS])  # keep whole columns from this one on
            k = int(np.searchsorted(self._col, cut, side="left"))
            if k == 0:
                k = len(self._col) - MAX_LIQ_ROWS
            self.rows, self._col = self.rows[k:], self._col[k:]
            self.dropped_columns_before = cut

    def rebin(self, step: float, now: float | None = None, exact: np.ndarray | None = None,
              exact_from: float = float("inf")) -> None:
        """Re-condense the tape at a new bucket step (the asset was rebucketed).

        Columns that start at or after ``exact_from`` are rebuilt from ``exact`` — the raw rows the tape was
        built from (the rings still hold them), so they bin exactly as if the new step had always been in
        force. Older columns only exist condensed: their rows (priced at the old bucket's middle) are re-binned,
        which keeps every USD and moves a row by at most half an old bucket. Either way no row is lost.
        """
        first_exact = float(np.ceil(exact_from / self.period))  # first column wholly after exact_from (±inf ok)
        if exact is None:
            first_exact = float("inf")
        keep = self._col < first_exact
        rows, cols = self.rows[keep], self._col[keep]
        if exact is not None and len(exact) and first_exact < float("inf"):
            ecol = _cols(exact["ts"], self.period)
            sel = ecol >= first_exact
            rows, cols = np.concatenate((rows, exact[sel])), np.concatenate((cols, ecol[sel]))
        if len(rows):
            self.rows, self._col = self._condense(rows, cols, step=step)
        else:
            self.rows, self._col = np.zeros(0, dtype=self.dtype), np.zeros(0, dtype=np.int64)
        self.merge(self.rows[:0], now, step=step)  # trim to the window and apply the row guard

    def _condense(self, rows: np.ndarray, cols: np.ndarray, step: float = 1.0):
        bucket = bucket_index(rows["price"], step)
        side = rows["side"].astype(np.int64)
        venue = rows["venue"].astype(np.int64)
        kind = rows["price_kind"].astype(np.int64)
        order = np.lexsort((venue, side, bucket, cols))
        rows, cols, bucket = rows[order], cols[order], bucket[order]
        side, venue, kind = side[order], venue[order], kind[order]
        starts = _group_starts([cols, bucket, side, venue])
        out = np.zeros(len(starts), dtype=LIQ_DTYPE)
        out["ts"] = np.maximum.reduceat(rows["ts"], starts)
        out["price"] = (bucket[starts] + 0.5) * step
        out["qty"] = np.add.reduceat(rows["qty"], starts)
        out["usd"] = np.add.reduceat(rows["usd"], starts)
        out["side"] = side[starts]
        out["venue"] = venue[starts]
        out["price_kind"] = kind[starts]
        return out, cols[starts]

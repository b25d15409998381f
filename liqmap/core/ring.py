"""Fixed-capacity ring buffers of structured events.

One buffer per (asset, venue, kind). Appends are batched numpy slice copies (no per-event Python work);
readers ask for "everything since write count N" so incremental grid updates touch only new rows, or
for the whole window in time order. The oldest rows are overwritten once the buffer is full, so memory
is fixed at construction: capacities are derived from the timeframes' windows (see ``capacity_for``).
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    __slots__ = ("dtype", "capacity", "_data", "_written")

    def __init__(self, dtype: np.dtype, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.dtype = np.dtype(dtype)
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=self.dtype)
        self._written = 0  # total rows ever appended; doubles as the buffer's version

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    @property
    def written(self) -> int:
        """Total rows ever appended (monotonic). Use it as a cursor for ``since_count``."""
        return self._written

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def append(self, rows: np.ndarray) -> None:
        """Append a batch in one or two slice copies; a batch longer than the capacity keeps its tail."""
        n = len(rows)
        if n == 0:
            return
        if rows.dtype != self.dtype:
            rows = rows.astype(self.dtype)
        cap = self.capacity
        if n >= cap:
            self._data[:] = rows[n - cap :]
            # Keep the physical layout consistent with _written so reads stay in order.
            start = (self._written + n) % cap
            self._data[:] = np.roll(self._data, start)
            self._written += n
            return
        start = self._written % cap
        end = start + n
        if end <= cap:
            self._data[start:end] = rows
        else:
            first = cap - start
            self._data[start:] = rows[:first]
            self._data[: n - first] = rows[first:]
        self._written += n

    def since_count(self, count: int) -> np.ndarray:
        """Rows appended after the buffer's write count was ``count``, in append order (a copy).

        If the reader fell behind by more than the capacity, it gets what is still held.
        """
        lo = max(count, self._written - self.capacity, 0)
        return self._range(lo, self._written)

    def view(self) -> np.ndarray:
        """Every held row in append order (a copy)."""
        return self._range(max(self._written - self.capacity, 0), self._written)

    def last(self, n: int) -> np.ndarray:
        return self._range(max(self._written - min(n, self.capacity), 0), self._written)

    def since_ts(self, t0: float) -> np.ndarray:
        """Rows with ``ts >= t0``. Venues deliver nearly in time order, so filter, not bisect."""
        rows = self.view()
        if len(rows) == 0:
            return rows
        return rows[rows["ts"] >= t0]

    def _range(self, lo: int, hi: int) -> np.ndarray:
        n = hi - lo
        if n <= 0:
            return np.zeros(0, dtype=self.dtype)
        cap = self.capacity
        s = lo % cap
        e = s + n
        if e <= cap:
            return self._data[s:e].copy()
        return np.concatenate((self._data[s:], self._data[: e - cap]))


def capacity_for(events_per_second: float, window_seconds: float, floor: int = 1024) -> int:
    """Capacity that holds ``window_seconds`` of flow at ``events_per_second`` (power of two, ≥ floor)."""
    need = max(int(events_per_second * window_seconds), floor)
    return 1 << (need - 1).bit_length()

"""The consumed ledger: levels that price swept (docs/model.md §3 step 7), newest ``CONSUMED_CAPACITY`` kept.

Rows arrive in batches (one per sweep); they are concatenated only when read, so a busy minute appends
cheaply and a reader pays once.
"""

from __future__ import annotations

import numpy as np

from .sources import VENUE_BITS_DTYPE

CONSUMED_DTYPE = np.dtype(
    [
        ("ts", "f8"),  # time of the first trade that reached the bucket
        ("bucket", "i8"),  # bucket index in the step in force at the time
        ("price", "f8"),  # bucket centre
        ("side", "i1"),  # LONG = +1 / SHORT = -1 (the side of the positions liquidated)
        ("usd", "f8"),
        ("venues", VENUE_BITS_DTYPE),  # bit i set = venue VENUES[i] contributed
    ]
)
CONSUMED_CAPACITY = 100_000


class ConsumedLedger:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.n = 0
        self._rows: np.ndarray | None = None

    def append(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        rows = rows[np.argsort(rows["ts"], kind="stable")]
        self.parts.append(rows)
        self.n += len(rows)
        self._rows = None
        if self.n > CONSUMED_CAPACITY * 1.5:
            allrows = np.concatenate(self.parts)[-CONSUMED_CAPACITY:]
            self.parts, self.n = [allrows], len(allrows)

    @property
    def rows(self) -> np.ndarray:
        """All kept rows, oldest first."""
        if self._rows is None:
            self._rows = np.concatenate(self.parts) if self.parts else np.empty(0, CONSUMED_DTYPE)
            self.parts = [self._rows] if len(self._rows) else []
        return self._rows

    def nbytes(self) -> int:
        return sum(x.nbytes for x in self.parts)

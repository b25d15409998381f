"""Time columns: 1m, 5m, 15m, 1h and 4h.

Column ``c`` of timeframe ``tf`` covers ``[c·period, (c+1)·period)`` seconds since the epoch, so columns of
every asset line up and a column's identity never changes as the window slides.
"""

from __future__ import annotations

import numpy as np

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400}
ORDER: tuple[str, ...] = tuple(TIMEFRAMES)


def period(tf: str) -> int:
    try:
        return TIMEFRAMES[tf]
    except KeyError:
        raise ValueError(f"unknown timeframe {tf!r} (choose from {', '.join(ORDER)})") from None


def column(ts: np.ndarray | float, tf: str) -> np.ndarray:
    return np.floor(np.asarray(ts, dtype=np.float64) / period(tf)).astype(np.int64)


def window(now: float, tf: str, ncols: int) -> tuple[int, int]:
    """The ``ncols`` columns ending with the one that holds ``now``: (first column, last column + 1)."""
    last = int(now // period(tf))
    return last - ncols + 1, last + 1


def next_tf(tf: str, step: int = 1) -> str:
    i = ORDER.index(tf)
    return ORDER[(i + step) % len(ORDER)]

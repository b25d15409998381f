"""Immutable, versioned views of the map: what the engine produces and the UI (or a report) reads.

The engine builds these off the UI loop; readers never touch ring buffers. Arrays inside are never
mutated after construction (treat them as read-only), so a snapshot can be handed across threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The modes (names, keys, labels, builders) are listed once, in ``liqmap.core.modes``.


@dataclass(frozen=True)
class MapGrid:
    """A price × time grid for one (asset, mode, timeframe, venue set).

    Row ``r`` is bucket index ``row0 + r`` (row 0 is the *lowest* price); column ``c`` is timeframe
    column ``col0 + c``. ``values`` is what the mode shows, in USD (the heatmap mode: normalized 0–1).
    """

    asset: str
    mode: str
    timeframe: str
    step: float
    row0: int
    col0: int
    period: int
    values: np.ndarray  # float32 (rows, cols)
    trace: np.ndarray  # float64 (cols,), last price per column, NaN where nothing traded
    long: np.ndarray | None = None  # float32 (rows, cols): long-side part where the mode has one
    short: np.ndarray | None = None
    real: np.ndarray | None = None  # hybrid: the real-liquidation layer, for markers
    real_long: np.ndarray | None = None  # hybrid: the part of ``real`` that liquidated longs (marks by side)
    profile_long: np.ndarray | None = None  # hybrid forward profile at the right edge, USD per row
    profile_short: np.ndarray | None = None
    # the next hour's expected liquidation USD per row (long + short): the model's forecast levels × the chance
    # price reaches each row within the horizon (core/forecast.py) — what the NEXT 1H clusters are grown from,
    # drawn in the right-edge strip so the clusters the reports name are the brightest cells there
    forecast: np.ndarray | None = None
    venues: tuple[str, ...] = ()
    # the model modes: the part of the heat (``values``; Hybrid's without ``real``; the heatmap mode's smoothed
    # USD) that is the resting layer — positions held for days (docs/model.md §3 step 13) — drawn in a hue of
    # its own on its own scale (grids/modes.py ``resting_plane``); None where no cell in view holds any
    resting: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def row_price(self, r: int) -> float:
        return (self.row0 + r) * self.step

    def col_time(self, c: int) -> float:
        return float((self.col0 + c) * self.period)


@dataclass(frozen=True)
class Snapshot:
    """Everything the UI needs to draw one view, at one engine version."""

    version: int
    created: float
    grid: MapGrid
    # The reports' JSON form (walls/sweeps/absorptions/convergence/asymmetry/verdict/forecast): what snapshot
    # files, exports and the reports panel read. ``records`` is the same as typed records
    # (``liqmap.core.reports.ReportRecords``) where the engine built the snapshot; None when decoded from bytes.
    reports: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""
    health: dict[str, Any] = field(default_factory=dict)  # venue → health record
    source: str = "LIVE"  # LIVE / REPLAY / DEMO
    last_price: float | None = None
    records: Any = None

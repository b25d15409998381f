"""What the engine keeps: per asset (``AssetState``), per built view (``Built``), and a packed background snapshot."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..grids.window import Window
from ..calibration import ReachLog
from ..hitrate import HitRate
from .tape import LiqTape, TradeTape


@dataclass(frozen=True)
class PackedSnapshot:
    """A background view's snapshot kept encoded (``liqmap.core.codec``): ~15 kB instead of ~0.5 MB of
    float32 layers, decoded on the first ``latest()`` (a few ms) and written to disk as is."""

    version: int
    blob: bytes
    asset: str
    mode: str
    timeframe: str
    venues: tuple[str, ...]


@dataclass
class Built:
    """What was last built for a view, to decide between skip, incremental and full rebuild."""

    win: Window | None = None
    data_version: int = -1
    built_at: float = -math.inf
    full_builds: int = 0
    incremental: int = 0
    syn: tuple[np.ndarray, np.ndarray] | None = None  # the model's per-column layers for ``win``
    version: int = 0  # snapshot version built from ``syn`` (the heatmap's snapshot file stores ``syn``)
    open_col: int | None = None  # newest column when ``syn`` was read: it and newer ones are re-read
    rest: np.ndarray | None = None  # the resting layer's part of ``syn`` (long + short), None when it holds none
    reports: Any = None  # the reports dict the snapshot carries (a new one means the books or reports moved)


@dataclass
class AssetState:
    name: str
    ref_price: float
    tick: float
    step: float | None = None
    last_price: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    cursors: dict[tuple[str, str], int] = field(default_factory=dict)
    trades: dict[str, TradeTape] = field(default_factory=dict)
    liqs: dict[str, LiqTape] = field(default_factory=dict)
    model: Any = None
    reports: Any = None
    records: Any = None  # the typed reports + forecast of the last ingest (``reports.ReportRecords``)
    report_dicts: dict[str, Any] = field(default_factory=dict)  # their JSON form
    # venues → (the all-venue records they were restated from, the restated records) for filtered views
    restated: dict[tuple, tuple[Any, Any]] = field(default_factory=dict)
    verdict: str = ""
    data_version: int = 0  # bumps whenever new rows were ingested
    rows_ingested: int = 0
    last_ingest: float = -math.inf
    wall_status: dict[tuple, str] = field(default_factory=dict)
    oi_slot: dict[int, int] = field(default_factory=dict)  # venue → last OI time slot written to history
    # The liquidation tapes before this time may hold rows the rings never had (history restored from the
    # store): a rebucket re-bins those columns instead of rebuilding them from the rings.
    exact_since: float = -math.inf
    rebuckets: list[dict] = field(default_factory=list)  # step changes (``Engine._rebucket``), oldest first
    step_kept_at: float = math.nan  # last price where a step change was ruled out (tick-limited step)
    synth: Any = None  # the model's all-venue levels as of the last ingest (the model changes only there)
    hitrate: HitRate = field(default_factory=HitRate)  # the next-hour forecast scored as its hours pass
    reachlog: ReachLog = field(default_factory=ReachLog)  # its clusters' chance of reach against what price did
    price_marks: deque = field(default_factory=lambda: deque(maxlen=90))  # (minute, last price): the 1 h change
    exact: Any = None  # exact positions (``engine/exact.py``: ExactState) where a position book is attached

"""The market store: per-(asset, venue) ring buffers behind one validating entry point.

Every normalized event enters through ``Market.add``. Bad rows (NaN/inf/zero/negative price or size,
an unknown venue or asset, a timestamp far in the future) are rejected, counted per reason and never
stored, so nothing downstream has to defend against them. Accepted rows land in fixed-capacity rings.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .events import KINDS, VENUE_ID, VENUES
from .ring import RingBuffer

# Default capacities: a day of 1m columns needs ~1.5k liquidations per venue in a busy day, trades are
# the bulk. Override per kind through config (engine.ring_capacity.*).
DEFAULT_CAPACITY: dict[str, int] = {"liq": 1 << 14, "trade": 1 << 18, "oi": 1 << 14, "book": 1 << 12}

FUTURE_TOLERANCE_S = 60.0  # exchange clocks drift; more than a minute ahead is a broken timestamp

REASONS = (
    "unknown_asset",
    "unknown_venue",
    "bad_price",
    "bad_size",
    "future_ts",
    "bad_ts",
)


@dataclass
class RejectCounts:
    """Rejected events per (kind, reason); a Counter so it prints and sums naturally."""

    counts: Counter = field(default_factory=Counter)

    def add(self, kind: str, reason: str, n: int) -> None:
        if n:
            self.counts[(kind, reason)] += int(n)

    def total(self) -> int:
        return sum(self.counts.values())

    def by_reason(self) -> dict[str, int]:
        out: Counter = Counter()
        for (_, reason), n in self.counts.items():
            out[reason] += n
        return dict(out)


def _size_field(kind: str) -> str:
    return "oi" if kind == "oi" else "qty"


def _price_field(kind: str) -> str:
    return "mark" if kind == "oi" else "price"


def validate(kind: str, rows: np.ndarray, now: float, rejects: RejectCounts) -> np.ndarray:
    """Return only the rows that are safe to store, counting the others per reason.

    Book rows may carry qty 0 (a delete), open interest may be 0 (a fresh contract); everything else
    must be strictly positive and finite.
    """
    if len(rows) == 0:
        return rows
    ok = np.ones(len(rows), dtype=bool)

    venue_ok = rows["venue"] < len(VENUES)
    rejects.add(kind, "unknown_venue", np.count_nonzero(ok & ~venue_ok))
    ok &= venue_ok

    ts = rows["ts"]
    ts_ok = np.isfinite(ts) & (ts > 0)
    rejects.add(kind, "bad_ts", np.count_nonzero(ok & ~ts_ok))
    ok &= ts_ok
    fut = ts > now + FUTURE_TOLERANCE_S
    rejects.add(kind, "future_ts", np.count_nonzero(ok & fut))
    ok &= ~fut

    price = rows[_price_field(kind)]
    price_ok = np.isfinite(price) & (price > 0)
    rejects.add(kind, "bad_price", np.count_nonzero(ok & ~price_ok))
    ok &= price_ok

    size = rows[_size_field(kind)]
    if kind in ("book", "oi"):
        size_ok = np.isfinite(size) & (size >= 0)
    else:
        size_ok = np.isfinite(size) & (size > 0)
    if "usd" in rows.dtype.names:
        size_ok &= np.isfinite(rows["usd"]) & (rows["usd"] >= 0)
    if kind == "oi":
        size_ok &= np.isfinite(rows["oi_usd"]) & (rows["oi_usd"] >= 0)
    rejects.add(kind, "bad_size", np.count_nonzero(ok & ~size_ok))
    ok &= size_ok

    return rows if ok.all() else rows[ok]


class Market:
    """Ring buffers for every (asset, venue, kind) of the universe, and the reject counters."""

    def __init__(
        self,
        assets: list[str] | tuple[str, ...],
        venues: tuple[str, ...] = VENUES,
        capacity: dict[str, int] | None = None,
        clock=time.time,
    ) -> None:
        self.assets = tuple(assets)
        self.venues = tuple(venues)
        self.capacity = {**DEFAULT_CAPACITY, **(capacity or {})}
        self.clock = clock
        self.rejects = RejectCounts()
        self._rings: dict[tuple[str, str, str], RingBuffer] = {}
        self._asset_set = set(self.assets)
        self.version = 0  # bumps on every accepted batch; the engine compares it to skip idle work
        # on_accept(kind, asset, rows): every accepted batch as it is stored (``liqmap collect`` queues
        # liquidations for the history store here, at parse time, so a kill -9 loses at most one flush)
        self.on_accept = None

    def ring(self, kind: str, asset: str, venue: str) -> RingBuffer:
        """The ring for (kind, asset, venue), created on first use so unused pairs cost nothing."""
        key = (kind, asset, venue)
        r = self._rings.get(key)
        if r is None:
            r = self._rings[key] = RingBuffer(KINDS[kind], self.capacity[kind])
        return r

    def rings(self, kind: str, asset: str, venues: tuple[str, ...] | None = None) -> list[RingBuffer]:
        vs = self.venues if venues is None else venues
        return [self._rings[(kind, asset, v)] for v in vs if (kind, asset, v) in self._rings]

    def add(self, kind: str, asset: str, rows: np.ndarray) -> int:
        """Validate and store a batch of one kind for one asset (rows may mix venues). Returns rows kept."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        if asset not in self._asset_set:
            self.rejects.add(kind, "unknown_asset", len(rows))
            return 0
        if rows.dtype != KINDS[kind]:
            rows = rows.astype(KINDS[kind])
        good = validate(kind, rows, self.clock(), self.rejects)
        if len(good) == 0:
            return 0
        venue_ids = good["venue"]
        first = int(venue_ids[0])
        if (venue_ids == first).all():
            self.ring(kind, asset, VENUES[first]).append(good)
        else:
            # a set of the (few) ids, not np.unique: its hash table cost ~0.5 ms a call, and a cascade's flush
            # makes one such call per (kind, asset) every 50 ms on the event loop
            for vid in sorted(set(venue_ids.tolist())):
                self.ring(kind, asset, VENUES[vid]).append(good[venue_ids == vid])
        self.version += 1
        if self.on_accept is not None:
            self.on_accept(kind, asset, good)
        return len(good)

    def gather(self, kind: str, asset: str, venues: tuple[str, ...] | None = None,
               since_ts: float | None = None) -> np.ndarray:
        """All held rows of a kind for an asset across venues, sorted by time."""
        parts = [r.view() if since_ts is None else r.since_ts(since_ts) for r in self.rings(kind, asset, venues)]
        return merge_by_time(kind, parts)

    def take_new(self, kind: str, asset: str, cursors: dict[tuple[str, str], int]) -> np.ndarray:
        """Rows of a kind for an asset appended since the reader's ``cursors`` ((kind, venue) → write count),
        time-sorted across venues; advances the cursors. Only new rows are copied (incremental readers)."""
        parts = []
        for venue in self.venues:
            ring = self._rings.get((kind, asset, venue))
            if ring is None:
                continue
            cur = cursors.get((kind, venue), 0)
            if ring.written > cur:
                parts.append(ring.since_count(cur))
                cursors[(kind, venue)] = ring.written
        return merge_by_time(kind, parts)

    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._rings.values())


def merge_by_time(kind: str, parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=KINDS[kind])
    if len(parts) == 1:
        return parts[0]
    out = np.concatenate(parts)
    return out[np.argsort(out["ts"], kind="stable")]


def venue_id(name: str) -> int:
    return VENUE_ID[name]

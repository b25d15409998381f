"""Order-flow reports for one asset: walls + asymmetry, sweeps, absorptions, convergence, the verdict.

Definitions: ``docs/detectors.md``; parameters: ``reports.*``, defaults in ``defaults.py`` (:class:`ReportParams`).

Use one :class:`Reports` per asset and feed it once per engine tick with only what is new::

    rep = Reports("BTC", cfg, tick=0.1)
    rep.update(now, books, new_trades, new_liqs, step, synth=model.levels())
    snapshot_reports = rep.result()     # JSON-ready dict (walls, asymmetry, sweeps, ...)
    verdict = snapshot_reports["verdict"]
    history = rep.drain_history()       # finished sweeps / settled absorptions since the last call

``books`` maps venue name → :class:`liqmap.core.book.Book` (missing or empty books are skipped); trades and
liquidations are ``TRADE_DTYPE`` / ``LIQ_DTYPE`` rows of this asset (any venues, any order); ``synth`` is
``(bucket_idx int64, long_usd, short_usd)`` from the synthetic model, or None. The reports are stateful
(wall age, run carry-over, adaptive thresholds, outcomes), so always reuse the same object per asset; a
change of bucket step resets the bucket-indexed state. Not thread-safe: one worker per asset at a time.

``result()`` (JSON; every record also has ``to_dict``/``from_dict``):

- ``walls``: [{side bid|ask, price, bucket, usd, peak_usd, peak_ts, density, distance_bp (signed), age_s,
  first_seen, venues, status active|pulled|consumed, ended, traded_usd, venue_usd {venue: USD}}] — active
  (largest first), then ended
- ``asymmetry``: {mid, weighted, bid_share, plain [[range %, I], ...], walls, dominant bids|asks|even, lambda_bp,
  by_venue {venue: {bid, ask, plain_bid [...], plain_ask [...]}}}
- ``sweeps``: clusters, newest first: {side buy|sell, count, total_usd, ts, last_ts, price_lo, price_hi, bp,
  levels, venues, cross_venue, cleared_wall, liq_usd, members: [{ts, end_ts, side, venue, usd, qty, trades,
  price_first, price_last, price_lo, price_hi, bp, levels, bucket_lo, bucket_hi, threshold_usd, cleared_wall,
  liq_usd, liq_count, cross_venues, liq_driven, cross_venue}]}
- ``absorptions``: newest first: {side bid|ask (the absorbing side), price, bucket, usd, start, last,
  duration_s, peak_visible_usd, refill, excursion_bp, venues, threshold_usd, outcome pending|held|broke,
  outcome_ts}
- ``convergence``: {bucket, price, distance_bp, score 0..1, count, components, ages {kind: s | None},
  strengths, since}
- ``verdict``: "▼ 65,800 −0.6% $42M · ▲ 67,100 +1.4% $18M · book: bids 62% · CONVERGENCE 66,000"

A view filtered to some venues gets all of these restated for them by :func:`for_venues` (``venue_view.py``);
the typed form the engine puts on each snapshot — these records plus the next-hour forecast, for all venues or
restated — is :class:`ReportRecords` (``records.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..assets import default_universe
from ..book import Book
from ..events import LIQ_DTYPE
from ._common import bucket_books, check_params, columns, ncols, params, reference_mid
from .absorptions import Absorption, AbsorptionDetector
from .asymmetry import Asymmetry, asymmetry
from .defaults import ReportParams, report_params
from .records import Forecast, ForecastCluster, ReportRecords, restate
from .convergence import Convergence, ConvergenceDetector, converge
from .sweeps import Sweep, SweepCluster, SweepDetector, cluster
from .venue_view import for_venues
from .verdict import VerdictMemory, magnets, verdict
from .walls import Wall, WallTracker

__all__ = [
    "Reports", "ReportRecords", "ReportParams", "report_params", "compute_reports", "check_params",
    "Wall", "WallTracker", "Asymmetry", "asymmetry",
    "Sweep", "SweepCluster", "SweepDetector", "cluster",
    "Absorption", "AbsorptionDetector",
    "Convergence", "ConvergenceDetector", "converge",
    "verdict", "magnets", "for_venues", "Forecast", "ForecastCluster", "restate",
]

_NO_LIQS = np.zeros(0, dtype=LIQ_DTYPE)


@dataclass
class _History:
    sweeps: list[Sweep] = field(default_factory=list)
    absorptions: list[Absorption] = field(default_factory=list)


class Reports:
    """All reports for one asset, updated incrementally once per tick."""

    def __init__(self, asset: str, cfg: Mapping[str, Any] | None = None, tick: float | None = None) -> None:
        self.asset = asset.upper()
        check_params(cfg)
        self.cfg = cfg = report_params(cfg)  # typed once: every per-tick read is an attribute lookup
        if tick is None:
            a = default_universe().get(self.asset)
            tick = a.tick if a else 0.0
        self.tick = float(tick)
        self.walls = WallTracker(self.asset, cfg)
        self.sweeps = SweepDetector(self.asset, cfg, self.tick)
        self.absorptions = AbsorptionDetector(self.asset, cfg, self.tick)
        self.convergence = ConvergenceDetector(cfg)
        wp, ap = params(cfg, "walls"), params(cfg, "asymmetry")
        self._range = max(float(wp["range_pct"]), max((float(x) for x in ap["ranges_pct"]), default=0.0))
        self.step: float | None = None
        self._records = ReportRecords()
        self._result: dict[str, Any] | None = None
        self._history = _History()
        self._verdict_memory = VerdictMemory()

    def update(self, now: float, books: Mapping[str, Book | None], trades: np.ndarray | None = None,
               liqs: np.ndarray | None = None, step: float | None = None, synth=None,
               exact=None) -> ReportRecords:
        """Advance every report by one tick; returns the new :class:`ReportRecords`. ``exact``: the exact
        positions' levels ``(bucket, long_usd, short_usd)`` where a venue publishes them (the verdict's magnets)."""
        step = float(step or self.step or 0.0)
        if not step > 0:
            raise ValueError("reports need the asset's bucket step")
        if self.step is not None and step != self.step:
            self.walls.reset()
            self.sweeps.reset()
            self.absorptions.reset()
            self.convergence.reset()
            self._verdict_memory.reset()
        self.step = step
        trades = columns(trades)  # once, shared by every report (packed records are slow to copy)
        liqs = _NO_LIQS if liqs is None else liqs
        mid = reference_mid(books)
        bb = bucket_books(books, step, self._range, mid)
        self.walls.update(now, bb, trades, step)
        wall_list = self.walls.walls(now)
        asym = asymmetry(bb, wall_list, self.cfg)
        self._history.sweeps.extend(self.sweeps.update(now, trades, liqs, step, self.walls.tracked_buckets))
        self.absorptions.update(now, trades, bb, step)
        self._history.absorptions.extend(self.absorptions.settled)
        self.absorptions.settled.clear()
        abs_list = self.absorptions.absorptions()
        if mid is None and ncols(trades):
            mid = float(trades["price"][np.argmax(trades["ts"])])
        conv = self.convergence.update(now, mid, step, wall_list, self.sweeps.sweeps, abs_list, synth)
        self._result = None
        self._records = ReportRecords(
            walls=tuple(wall_list),
            asymmetry=asym,
            sweeps=tuple(self.sweeps.clusters(step)),
            absorptions=tuple(abs_list),
            convergence=tuple(conv),
            verdict=verdict(mid, step, wall_list, asym, conv, synth, self.cfg, self._verdict_memory, now,
                            exact=exact),
            mid=mid,
            step=step,
            ts=now,
        )
        return self._records

    def records(self) -> ReportRecords:
        return self._records

    def result(self) -> dict[str, Any]:
        """JSON-ready: {"walls", "asymmetry", "sweeps", "absorptions", "convergence", "verdict"}.

        Built once per update and shared: treat it as read-only."""
        if self._result is None:
            self._result = self._records.to_dict()
        return self._result

    def drain_history(self) -> dict[str, list]:
        """Sweeps found and absorptions settled (held/broke) since the last call, for the history store."""
        out = {"sweeps": self._history.sweeps, "absorptions": self._history.absorptions}
        self._history = _History()
        return out


def compute_reports(now: float, books: Mapping[str, Book | None], trades: np.ndarray | None = None,
                    liqs: np.ndarray | None = None, step: float | None = None, synth=None, *,
                    asset: str = "BTC", cfg: Mapping[str, Any] | None = None, tick: float | None = None,
                    state: Reports | None = None) -> dict[str, Any]:
    """One tick of the reports as a JSON-ready dict.

    Pass the same ``state`` (a :class:`Reports`) every tick: walls need age, sweeps and absorptions need
    their adaptive statistics. Without one, a fresh state sees a single snapshot (so walls with a
    ``min_age_s`` > 0 cannot qualify yet).
    """
    rep = state if state is not None else Reports(asset, cfg, tick)
    rep.update(now, books, trades, liqs, step, synth)
    return rep.result()

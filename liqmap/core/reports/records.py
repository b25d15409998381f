"""The typed reports a snapshot carries: walls, asymmetry, sweeps, absorptions, convergence, the verdict and
the next-hour forecast, for all venues or restated for a venue filter.

The engine's worker computes them once per ingest (``Reports.update`` + :meth:`Forecast.compute`), restates
them for a filtered view (:func:`restate`) while it builds that view, and puts them on the ``Snapshot``
(``Snapshot.records``) together with their JSON form (``Snapshot.reports``, what the snapshot files, the
exports and the reports panel read). Front ends only read them: nothing here is computed on a UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from .. import forecast as _forecast
from ._common import Record
from .absorptions import Absorption
from .asymmetry import Asymmetry
from .convergence import Convergence
from .sweeps import SweepCluster
from .walls import Wall


@dataclass(frozen=True)
class ForecastCluster(Record):
    """A liquidation cluster likely to be hit within the horizon (``liqmap.core.forecast.clusters``)."""

    side: str  # "long" = longs liquidated (below price), "short" above
    price_lo: float
    price_hi: float
    price: float  # expected-weighted centre
    distance_pct: float  # signed, from the forecast's price
    at_risk_usd: float
    expected_usd: float
    reach: float  # the best chance of reach inside it (calibrated: core/calibration.py)
    reach_raw: float | None = None  # the random walk's own chance, before calibration (None: not calibrated)
    resting_usd: float = 0.0  # the part of at_risk_usd that is the resting layer (docs/model.md §3 step 13)


@dataclass(frozen=True)
class Forecast(Record):
    """The next-hour forecast: its parameters and its clusters, best first."""

    horizon_hours: float
    sigma_hour: float
    tails: str
    price: float | None
    clusters: tuple[ForecastCluster, ...] = ()
    hit: dict | None = None  # how past forecasts did (``liqmap.core.hitrate.HitScore.to_dict``)
    # the (raw, calibrated) knots the clusters' chance of reach went through (``liqmap.core.calibration``);
    # None: the random walk's raw chance
    calibration: tuple | None = None
    drift_hour: float = 0.0  # the trend the walk carried (log return per hour; 0 = driftless, core/forecast.py)

    @classmethod
    def compute(cls, levels, step: float, price: float | None, sigma_hour: float, horizon_hours: float,
                tails: str = "t3", top: int = 3, calibration=None, drift_hour: float = 0.0,
                resting=None) -> "Forecast":
        """From the model's levels ``(bucket, long_usd, short_usd)`` (``liqmap.core.forecast.summary``), of which
        ``resting`` is the resting layer."""
        return cls.from_dict(_forecast.summary(levels, step, price, sigma_hour, horizon_hours, tails, top=top,
                                               calibration=calibration, drift_hour=drift_hour, resting=resting))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Forecast":
        return cls(horizon_hours=float(d["horizon_hours"]), sigma_hour=float(d["sigma_hour"]),
                   tails=str(d.get("tails", "t3")), price=d.get("price"),
                   clusters=tuple(ForecastCluster.from_dict(c) for c in d.get("clusters") or ()),
                   hit=dict(d["hit"]) if isinstance(d.get("hit"), Mapping) else None,
                   calibration=tuple(tuple(float(v) for v in k) for k in d["calibration"])
                   if d.get("calibration") else None, drift_hour=float(d.get("drift_hour") or 0.0))


@dataclass(frozen=True)
class ReportRecords:
    """One asset's reports as records. ``venues`` None: over every venue; else the venues they were restated
    for. ``forecast`` None: no model levels to forecast from (or none for these venues)."""

    walls: tuple[Wall, ...] = ()
    asymmetry: Asymmetry | None = None
    sweeps: tuple[SweepCluster, ...] = ()
    absorptions: tuple[Absorption, ...] = ()
    convergence: tuple[Convergence, ...] = ()
    verdict: str = ""
    forecast: Forecast | None = None
    venues: tuple[str, ...] | None = None
    # exact positions where a venue publishes them (``core/engine/exact.ExactView.to_dict``): coverage label,
    # at-risk totals, the live accuracy of the model against them
    exact: dict | None = None
    mid: float | None = None
    step: float | None = None
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the shape documented in ``liqmap.core.reports``). Built once per record: treat it as
        read-only."""
        d = self.__dict__.get("_json")
        if d is not None:
            return d
        d = {
            "walls": [w.to_dict() for w in self.walls],
            "asymmetry": self.asymmetry.to_dict() if self.asymmetry else {},
            "sweeps": [s.to_dict() for s in self.sweeps],
            "absorptions": [a.to_dict() for a in self.absorptions],
            "convergence": [c.to_dict() for c in self.convergence],
            "verdict": self.verdict,
        }
        if self.forecast is not None or self.venues is not None:
            d["forecast"] = self.forecast.to_dict() if self.forecast is not None else None
        if self.venues is not None:
            d["venues"] = list(self.venues)
        if self.exact is not None:
            d["exact"] = self.exact
        object.__setattr__(self, "_json", d)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReportRecords":
        asym = d.get("asymmetry") or None
        fc = d.get("forecast")
        venues = d.get("venues")
        return cls(
            walls=tuple(Wall.from_dict(x) for x in d.get("walls", ())),
            asymmetry=Asymmetry.from_dict(asym) if asym else None,
            sweeps=tuple(SweepCluster.from_dict(x) for x in d.get("sweeps", ())),
            absorptions=tuple(Absorption.from_dict(x) for x in d.get("absorptions", ())),
            convergence=tuple(Convergence.from_dict(x) for x in d.get("convergence", ())),
            verdict=d.get("verdict", ""),
            forecast=Forecast.from_dict(fc) if fc else None,
            venues=tuple(venues) if venues is not None else None,
            exact=dict(d["exact"]) if isinstance(d.get("exact"), Mapping) else None,
        )


def restate(records: ReportRecords, venues: Iterable[str], *, now: float, step: float, mid: float | None = None,
            synth=None, params=None, forecast_synth=None, forecast_resting=None) -> ReportRecords:
    """``records`` (over every venue) as seen from ``venues`` only (``venue_view.for_venues``: the same
    arithmetic, no detector re-run); ``synth`` is the model's levels for those venues."""
    from .venue_view import for_venues

    out = for_venues(records.to_dict(), venues, now=now, step=step, mid=mid, synth=synth, cfg=params,
                     forecast_synth=forecast_synth, forecast_resting=forecast_resting)
    rec = replace(ReportRecords.from_dict(out), mid=records.mid, step=records.step, ts=records.ts)
    object.__setattr__(rec, "_json", out)  # its JSON form is the restated dict itself
    return rec

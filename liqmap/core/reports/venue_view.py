"""The reports restated for a view filtered to some venues (the app's ``v`` key, ``View.venues``).

The reports are computed once per tick over every venue (walls are found in the all-venue book, sweeps per
venue, ...). A trader who filters the map to one venue expects the panel and the verdict to speak for that
venue too, so :func:`for_venues` derives them from the all-venue result without re-running any detector:

- walls: kept when the chosen venues hold ≥ ``walls.venue_share`` of the wall (the rule behind a wall's
  ``venues`` list); ``usd`` and ``density`` are restated to the chosen venues' part (from ``venue_usd``),
  ``peak_usd`` and ``traded_usd`` stay all-venue; largest first again, ``max_per_side`` per side;
- asymmetry: the exact read over the chosen venues' books (from its per-venue sums ``by_venue``), with the
  wall asymmetry of the kept walls;
- sweeps: only the member sweeps that happened on a chosen venue, clustered again (``cross_venues``
  restricted to the chosen venues);
- absorptions: those that absorbed aggression on a chosen venue;
- convergence: recomputed from the kept walls, sweeps and absorptions and ``synth`` (a chip keeps its
  ``since`` when the all-venue read had one at that level);
- verdict: recomputed from the above and ``synth``, which must be the synthetic model's levels for the same
  venues (``SyntheticModel.levels(venues)``); None leaves the model out of the magnets.
- forecast (the next-hour clusters the engine adds, ``liqmap.core.forecast``): recomputed from ``synth`` with
  the same volatility, horizon and price; without ``synth`` it is left out rather than shown for all venues.

The result is the same JSON shape as ``Reports.result()`` plus ``"venues"``: the venue set it speaks for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping

from .absorptions import Absorption
from .asymmetry import Asymmetry, read
from .convergence import Convergence, converge, keep_since
from .sweeps import Sweep, SweepCluster, cluster
from .verdict import verdict
from .walls import Wall
from ._common import params


def for_venues(reports: Mapping[str, Any], venues: Iterable[str], *, now: float, step: float,
               mid: float | None = None, synth=None, cfg: Mapping[str, Any] | None = None,
               forecast_synth=None, forecast_resting=None) -> dict[str, Any]:
    """``reports`` (a ``Reports.result()`` dict over all venues) as seen from ``venues`` only.

    ``forecast_synth``: the levels the forecast weighs for those venues (``SyntheticModel.forecast_levels``:
    each tier spread over its leverage band); default ``synth``. ``forecast_resting``: the part of it that is the
    resting layer (``SyntheticModel.resting_levels``), which each cluster's ``resting_usd`` counts.

    ``mid`` is used when the reports carry no book mid (no books yet: the last trade price then). ``now`` is
    the reports' tick time (ages and the convergence window are measured from it).
    """
    chosen = tuple(dict.fromkeys(venues))
    vset = set(chosen)
    wp = params(cfg, "walls")
    asym_d = reports.get("asymmetry") or {}
    if asym_d.get("mid"):
        mid = float(asym_d["mid"])

    walls = _walls(reports.get("walls") or (), vset, float(wp["venue_share"]), int(wp["max_per_side"]))
    wall_recs = [Wall.from_dict(w) for w in walls]

    asym: Asymmetry | None = None
    if asym_d:
        by_venue = {v: s for v, s in (asym_d.get("by_venue") or {}).items() if v in vset}
        if by_venue:
            asym = read(float(asym_d["mid"]), by_venue, wall_recs, cfg)

    members: list[Sweep] = []
    for c in reports.get("sweeps") or ():
        for m in c.get("members") or ():
            if m.get("venue") in vset:
                s = Sweep.from_dict(m)
                members.append(replace(s, cross_venues=tuple(v for v in s.cross_venues if v in vset)))
    sp = params(cfg, "sweeps")
    clusters: list[SweepCluster] = cluster(members, float(sp["cluster_window_s"]), int(sp["cluster_buckets"]))

    absorptions = [a for a in reports.get("absorptions") or () if vset.intersection(a.get("venues") or ())]
    abs_recs = [Absorption.from_dict(a) for a in absorptions]

    conv: list[Convergence] = []
    if mid and step > 0:
        before = [Convergence.from_dict(c) for c in reports.get("convergence") or ()]
        conv = keep_since(converge(now, mid, step, wall_recs, members, abs_recs, synth, cfg), before,
                          int(params(cfg, "convergence")["buckets"]))

    out_forecast = None
    fc = reports.get("forecast")
    fsynth = forecast_synth if forecast_synth is not None else synth
    if fc and fsynth is not None:
        from ..calibration import CalibrationMap
        from ..forecast import summary

        # the same chance as the all-venue forecast: through the map it went through (core/calibration.py)
        knots = fc.get("calibration")
        cal = CalibrationMap(tuple((float(x), float(y)) for x, y in knots)) if knots else None
        out_forecast = summary(fsynth, step, fc.get("price"), float(fc["sigma_hour"]), float(fc["horizon_hours"]),
                               str(fc.get("tails", "t3")), calibration=cal,
                               drift_hour=float(fc.get("drift_hour") or 0.0), resting=forecast_resting)

    return {
        "forecast": out_forecast,
        "walls": walls,
        "asymmetry": asym.to_dict() if asym else {},
        "sweeps": [c.to_dict() for c in clusters],
        "absorptions": absorptions,
        "convergence": [c.to_dict() for c in conv],
        "verdict": verdict(mid, step, wall_recs, asym, conv, synth, cfg) if mid else "",
        "venues": list(chosen),
    }


def _walls(walls: Iterable[Mapping[str, Any]], vset: set[str], share_min: float, cap: int) -> list[dict]:
    active: dict[str, list[dict]] = {"bid": [], "ask": []}
    ended: list[dict] = []
    for w in walls:
        vu = w.get("venue_usd") or {}
        total = sum(float(u) for u in vu.values())
        if total > 0:
            part = sum(float(u) for v, u in vu.items() if v in vset)
            share = part / total
            if part <= 0 or share < share_min:
                continue
        else:  # no breakdown (a record from before it existed): keep it when a chosen venue is listed
            if not vset.intersection(w.get("venues") or ()):
                continue
            share = 1.0
        d = dict(w)
        if share < 1.0:
            d["usd"] = float(w.get("usd") or 0.0) * share
            d["density"] = float(w.get("density") or 0.0) * share
        d["venues"] = [v for v in w.get("venues") or () if v in vset]
        d["venue_usd"] = {v: u for v, u in vu.items() if v in vset}
        if d.get("status", "active") == "active" and d.get("side") in active:
            active[d["side"]].append(d)
        else:
            ended.append(d)
    out: list[dict] = []
    for side in ("bid", "ask"):
        out.extend(sorted(active[side], key=lambda x: -float(x.get("usd") or 0.0))[:cap])
    return out + ended

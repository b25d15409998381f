"""Ring capacities derived from what each kind of event must cover, so memory stays flat over days.

The rings are not the history: grids read the condensed tapes (``tape.py``), the synthetic model and the
reports consume rows incrementally through ring cursors, and the store keeps the long history on disk. A
ring must only hold

- trades: the ingest horizon — how far the engine may fall behind a busy pair before rows are overwritten
  unread (plus the newest 1m column for anyone who gathers it);
- liquidations: the 1m view's window (``columns`` minutes), so the view on screen can always be rebuilt
  exactly from the rings (for example after a bucket-step change) and doctor/replay can read them back;
- open interest: an hour of samples (the model reads ΔOI incrementally; an hour covers a restart of it);
- book deltas: a short horizon (books themselves live in ``Book`` objects).

Rates are per (asset, venue) ring, for a busy major in a fast market; quieter pairs never fill theirs, and
numpy's zeroed allocations are not resident until written. ``engine.ring_capacity_<kind>`` in the config is
the ceiling.
"""

from __future__ import annotations

from ..params import CoreParams, core_params
from ..ring import capacity_for
from ..timeframes import TIMEFRAMES

# events per second per (asset, venue) that a ring must absorb without loss
PEAK_RATE = {"trade": 60.0, "liq": 0.25, "oi": 0.5, "book": 50.0}
INGEST_HORIZON_S = 60.0  # the engine ingests every asset at least twice this often, even when shedding


def horizons(columns: int) -> dict[str, float]:
    """Seconds of flow each ring must hold."""
    return {
        "trade": INGEST_HORIZON_S,
        "liq": columns * TIMEFRAMES["1m"],
        "oi": 3600.0,
        "book": 60.0,
    }


def ring_capacities(cfg: "CoreParams | dict") -> dict[str, int]:
    """``{kind: capacity}`` for ``Market(capacity=...)``."""
    e = core_params(cfg).engine
    out = {}
    for kind, horizon in horizons(int(e.columns)).items():
        derived = capacity_for(PEAK_RATE[kind], horizon, floor=256)
        ceiling = int(getattr(e, f"ring_capacity_{kind}"))
        out[kind] = max(16, min(derived, ceiling))
    return out

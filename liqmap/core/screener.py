"""The screener: one row per asset of what the map knows, so a trader watching one asset sees the other 64.

Built by the engine off the UI thread (:meth:`Engine.screener`) from each asset's latest typed reports and
model levels — the same numbers the map, the verdict and the panel show — and read by the TUI's screener
(key ``s``) and ``liqmap screen --headless --json``. An asset with nothing observed yet still gets a row that
says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from .buckets import price_of
from .reports._common import fmt_usd as _usd  # the verdict's and status line's way of writing USD
from .reports.verdict import _Field

MAGNET_RANGE_PCT = 3.0


@dataclass(frozen=True)
class Magnet:
    price: float
    distance_pct: float
    usd: float
    what: str  # "wall" | "liqs" | "wall+liqs"


@dataclass(frozen=True)
class ScreenRow:
    asset: str
    price: float | None
    change_1h_pct: float | None
    below: Magnet | None  # the strongest magnet below price (within ±3 %)
    above: Magnet | None
    next_hour_usd: float  # expected liquidations within the hour (the NEXT 1H clusters' sum)
    bid_share: float | None  # the book's distance-weighted bid share
    sweep: str  # the newest sweep: "sell $3.2M 4m ago"
    sweep_ts: float | None
    convergence: float | None  # the nearest convergence chip's price
    state: str  # "ok", or why the row is empty ("no data yet", "held: history loading")
    updated: float | None
    # The next-hour forecast's hit rate so far (``core/hitrate.py``): its top-10 % share of the liquidations
    # that followed ÷ the distance baseline's, over ``hit_n`` settled forecasts (None: none settled yet).
    hit: float | None = None
    hit_n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _magnet(f: _Field, up: bool, step: float, price: float) -> Magnet | None:
    m = f.best(up)
    if m is None:
        return None
    p = float(price_of(m.bucket, step))
    what = "wall+liqs" if m.wall_usd > 0 and m.liq_usd > 0 else "wall" if m.wall_usd > 0 else "liqs"
    return Magnet(p, (p / price - 1.0) * 100.0, m.usd, what)


def row(asset: str, now: float, price: float | None, price_1h_ago: float | None, records: Any, synth: Any,
        step: float | None, state: str = "ok", cache: dict | None = None) -> ScreenRow:
    """One asset's row from its engine state's pieces (``records``: its ``ReportRecords``).

    ``cache`` (a dict the caller keeps, one per engine): the parts that only change with a new ingest — the
    magnets (``_Field`` over the walls and the model levels: most of a row's cost), the forecast's sums, the
    chip — are reused while the asset's records, levels, price and step are the same objects. A background
    asset is ingested every 5–30 s and the screener refreshes every second: most rows are reused."""
    if price is None or not step or records is None:
        return ScreenRow(asset, price, None, None, None, 0.0, None, "", None, None,
                         state if state != "ok" else "no data yet", None)
    key = (records, synth, price, step)
    got = cache.get(asset) if cache is not None else None
    if got is not None and got[0][0] is records and got[0][1] is synth and got[0][2:] == key[2:]:
        parts = got[1]
    else:
        parts = _parts(records, synth, price, step)
        if cache is not None:
            cache[asset] = (key, parts)
    below, above, next_usd, bid_share, chip, hit, hit_n, newest = parts
    sweep, sweep_ts = "", None
    if newest is not None:
        side, total, sweep_ts = newest
        age = max(now - sweep_ts, 0.0)
        ago = f"{age:.0f}s" if age < 120 else f"{age / 60:.0f}m" if age < 7200 else f"{age / 3600:.0f}h"
        sweep = f"{side} {_usd(total)} {ago} ago"
    change = (price / price_1h_ago - 1.0) * 100.0 if price_1h_ago and price_1h_ago > 0 else None
    return ScreenRow(asset, price, change, below, above, next_usd, bid_share, sweep, sweep_ts, chip, state,
                     float(getattr(records, "ts", 0.0) or 0.0) or None, hit, hit_n)


def _parts(records: Any, synth: Any, price: float, step: float) -> tuple:
    f = _Field(price, step, getattr(records, "walls", ()) or (), synth, MAGNET_RANGE_PCT)
    fc = getattr(records, "forecast", None)
    next_usd = float(sum(c.expected_usd for c in (getattr(fc, "clusters", ()) or ())))
    asym = getattr(records, "asymmetry", None)
    sweeps = list(getattr(records, "sweeps", ()) or ())
    newest = None
    if sweeps:
        s = max(sweeps, key=lambda s: s.last_ts)
        newest = (s.side, float(s.total_usd), float(s.last_ts))
    conv = list(getattr(records, "convergence", ()) or ())
    chip = min(conv, key=lambda c: abs(c.price - price)).price if conv else None
    hit = getattr(fc, "hit", None) or {}
    ratio, n = hit.get("ratio"), int(hit.get("n") or 0)
    ratio = float(ratio) if isinstance(ratio, (int, float)) and math.isfinite(ratio) and n > 0 else None
    return (_magnet(f, False, step, price), _magnet(f, True, step, price), next_usd,
            float(asym.bid_share) if asym is not None else None, chip, ratio, n, newest)


# Sort keys: a column name → the value to sort by (None last, whichever way).
SORT_KEYS = {
    "asset": lambda r: r.asset,
    "price": lambda r: r.price,
    "1h": lambda r: r.change_1h_pct,
    "below": lambda r: -abs(r.below.distance_pct) if r.below else None,  # nearest first when descending
    "above": lambda r: -abs(r.above.distance_pct) if r.above else None,
    "next 1h": lambda r: r.next_hour_usd,
    "book": lambda r: r.bid_share,
    "sweep": lambda r: r.sweep_ts,
    "conv": lambda r: 1.0 if r.convergence is not None else 0.0,
    "hit": lambda r: r.hit,
}


def sort_rows(rows: Iterable[ScreenRow], key: str, descending: bool = True) -> list[ScreenRow]:
    f = SORT_KEYS[key]
    rows = list(rows)
    have = [r for r in rows if f(r) is not None and not (isinstance(f(r), float) and math.isnan(f(r)))]
    none = [r for r in rows if r not in have]
    return sorted(have, key=f, reverse=descending) + none


def fuzzy(query: str, text: str) -> bool:
    """The query's letters appear in ``text`` in order (``bt`` finds BTC, ``pp`` finds PEPE)."""
    it = iter(text.upper())
    return all(ch in it for ch in query.upper().strip())

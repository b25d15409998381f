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
    p = m.bucket * step  # buckets.price_of for one bucket (the same product, without numpy on a scalar)
    what = "wall+liqs" if m.wall_usd > 0 and m.liq_usd > 0 else "wall" if m.wall_usd > 0 else "liqs"
    return Magnet(p, (p / price - 1.0) * 100.0, m.usd, what)


def row(asset: str, now: float, price: float | None, price_1h_ago: float | None, records: Any, synth: Any,
        step: float | None, state: str = "ok", cache: dict | None = None) -> ScreenRow:
    """One asset's row from its engine state's pieces (``records``: its ``ReportRecords``).

    ``cache`` (a dict the caller keeps, one per engine) makes a refresh cost what changed, not what exists:
    a background asset is ingested every 5 s (``BACKGROUND_EVERY``) and the screener refreshes every second,
    so four rows in five are the same as a second ago. The parts that only change with a new ingest — the
    magnets (``_Field`` over the walls and the model levels: most of a row's cost), the forecast's sums, the
    chip — are reused while the asset's records, levels, price and step are the same objects; and while the
    texts that move with the clock (the sweep's age, the 1 h change) read the same too, the very same
    ``ScreenRow`` object is returned, so the table can tell an unchanged row by identity (``is``) and skip it."""
    if price is None or not step or records is None:
        why = state if state != "ok" else "no data yet"
        got = cache.get(asset) if cache is not None else None
        if got is not None and got[0] is None and got[2].state == why and got[2].price == price:
            return got[2]
        empty = ScreenRow(asset, price, None, None, None, 0.0, None, "", None, None, why, None)
        if cache is not None:
            cache[asset] = (None, None, empty)
        return empty
    got = cache.get(asset) if cache is not None else None
    if (got is not None and got[0] is not None and got[0][0] is records and got[0][1] is synth
            and got[0][2] == price and got[0][3] == step):
        parts, last = got[1], got[2]
    else:
        parts, last = _parts(records, synth, price, step), None
    below, above, next_usd, bid_share, chip, hit, hit_n, newest = parts
    sweep, sweep_ts = "", None
    if newest is not None:
        what, sweep_ts = newest
        sweep = f"{what} {sweep_age(now - sweep_ts)} ago"
    change = (price / price_1h_ago - 1.0) * 100.0 if price_1h_ago and price_1h_ago > 0 else None
    if last is not None and last.sweep == sweep and last.change_1h_pct == change and last.state == state:
        return last  # nothing the row says has changed: the same object (see the docstring)
    out = ScreenRow(asset, price, change, below, above, next_usd, bid_share, sweep, sweep_ts, chip, state,
                    float(getattr(records, "ts", 0.0) or 0.0) or None, hit, hit_n)
    if cache is not None:
        cache[asset] = ((records, synth, price, step), parts, out)
    return out


def sweep_age(age: float) -> str:
    """A sweep's age for a table refreshed every second: "<10s", "20s" (20–29 s), "3m", "2h".

    Steps of 10 s under a minute, then whole minutes, then hours: the text moves at most every 10 s, so a row
    changes when its asset has news, not every second for every asset that had a sweep in the last two
    minutes (in the demo that was 45 of 65 rows each second, most of the screener's repaint). The exact time
    is ``sweep_ts``."""
    age = max(age, 0.0)
    if age < 10:
        return "<10s"
    if age < 60:
        return f"{int(age // 10) * 10}s"
    if age < 7200:
        return f"{int(age // 60)}m"
    return f"{int(age // 3600)}h"


def _parts(records: Any, synth: Any, price: float, step: float) -> tuple:
    f = _Field(price, step, getattr(records, "walls", ()) or (), synth, MAGNET_RANGE_PCT)
    fc = getattr(records, "forecast", None)
    next_usd = float(sum(c.expected_usd for c in (getattr(fc, "clusters", ()) or ())))
    asym = getattr(records, "asymmetry", None)
    sweeps = list(getattr(records, "sweeps", ()) or ())
    newest = None
    if sweeps:
        s = max(sweeps, key=lambda s: s.last_ts)
        newest = (f"{s.side} {_usd(float(s.total_usd))}", float(s.last_ts))  # the age is added per refresh
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
    have, none = [], []
    for r in rows:  # one key call per row; rows without a value go last in their given order
        v = f(r)
        (none if v is None or (isinstance(v, float) and math.isnan(v)) else have).append((v, r))
    have.sort(key=lambda vr: vr[0], reverse=descending)  # stable: ties keep the given (universe) order
    return [r for _, r in have] + [r for _, r in none]


def fuzzy(query: str, text: str) -> bool:
    """The query's letters appear in ``text`` in order (``bt`` finds BTC, ``pp`` finds PEPE)."""
    it = iter(text.upper())
    return all(ch in it for ch in query.upper().strip())

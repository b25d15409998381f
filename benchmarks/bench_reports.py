"""Benchmark ``reports``: all four reports + the verdict for one asset, one tick (docs/architecture.md §11: ≤ 5 ms).

Realistic load: five venues with 1000 levels per side each (BTC around 66,000, levels spread over ±2.5%),
every book touched each tick (100 level changes per venue, so every sorted view is rebuilt), one second of
trades per tick (≈ 1000 trades across the venues, with bursts that make sweeps and absorptions), a few
liquidations, and a synthetic model profile of 1200 buckets. The timed part is ``Reports.update`` +
``result()`` (what the engine pays per tick). As a reference the same run times what merely sorting the ten
changed book sides costs (``Book.levels``, what any reader of a full book pays; the reports themselves
bucket the unsorted levels).

``value`` is the median CPU time of the process per tick (``time.process_time``): the machine is shared
(2 cores, other jobs), and CPU time is the cost that does not depend on who else is running. The wall-clock
median and the load average are in ``detail`` as well.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from liqmap.core.book import Book
from liqmap.core.buckets import bucket_step, index
from liqmap.core.events import ASK, BID, LIQ_DTYPE, TRADE_DTYPE, VENUES
from liqmap.core.reports import Reports

PRICE = 66000.0
TICK = 0.1
LEVELS = 1000
WARM_TICKS = 120
TIMED_TICKS = 200
TRADES_PER_S = 1000


def _books(rng: np.random.Generator) -> dict[str, Book]:
    books = {}
    for v in VENUES:
        b = Book()
        offs = np.sort(rng.uniform(0.5, PRICE * 0.025, LEVELS))
        bids = np.round((PRICE - offs) / TICK) * TICK
        asks = np.round((PRICE + offs) / TICK) * TICK
        sz = rng.lognormal(0.0, 1.0, (2, LEVELS))
        sz[:, rng.integers(0, LEVELS, 8)] *= 60.0  # a few walls
        b.replace(list(zip(bids.tolist(), sz[0].tolist())), list(zip(asks.tolist(), sz[1].tolist())))  # replace needs len()
        books[v] = b
    return books


def _touch(books: dict[str, Book], rng: np.random.Generator, mid: float) -> None:
    for b in books.values():
        for side in (BID, ASK):
            p, _ = b.levels(side)
            pick = rng.integers(0, len(p), 50)
            b.apply(side, list(zip(p[pick].tolist(), rng.lognormal(0.0, 1.0, 50).tolist())))


def _trades(rng: np.random.Generator, t0: float, mid: float) -> np.ndarray:
    n = TRADES_PER_S
    tr = np.zeros(n, dtype=TRADE_DTYPE)
    tr["ts"] = t0 + np.sort(rng.uniform(0.0, 1.0, n))
    # Runs of same-side trades (a taker order walking a few levels), some big.
    side = np.repeat(rng.choice([-1, 1], n // 10), 10)[:n]
    step = np.cumsum(rng.integers(0, 2, n) * TICK * side)
    tr["price"] = np.round((mid + step) / TICK) * TICK
    tr["qty"] = rng.lognormal(-2.0, 1.5, n)
    tr["usd"] = tr["price"] * tr["qty"]
    tr["side"] = side
    tr["venue"] = rng.integers(0, len(VENUES), n)
    return tr


def _liqs(rng: np.random.Generator, t0: float, mid: float) -> np.ndarray:
    lq = np.zeros(3, dtype=LIQ_DTYPE)
    lq["ts"] = t0 + rng.uniform(0, 1, 3)
    lq["price"] = mid
    lq["qty"] = 0.5
    lq["usd"] = mid * 0.5
    lq["side"] = rng.choice([-1, 1], 3)
    lq["venue"] = rng.integers(0, len(VENUES), 3)
    return lq


def bench_reports() -> dict:
    rng = np.random.default_rng(7)
    books = _books(rng)
    step = bucket_step(PRICE, TICK, 5.0)
    idx = np.arange(int(index(PRICE * 0.85, step)), int(index(PRICE * 1.15, step)), dtype=np.int64)
    synth = (idx, rng.lognormal(12, 1.5, len(idx)), rng.lognormal(12, 1.5, len(idx)))
    cfg = {"reports": {"walls": {"min_age_s": 5.0}}}
    rep = Reports("BTC", cfg, tick=TICK)
    t = 1_700_000_000.0
    times, walls_ms, sort_times, n_trades = [], [], [], 0
    for i in range(WARM_TICKS + TIMED_TICKS):
        mid = books["binance"].mid() or PRICE
        _touch(books, rng, mid)
        tr = _trades(rng, t, mid)
        lq = _liqs(rng, t, mid)
        t += 1.0
        if i >= WARM_TICKS:
            # Baseline: what sorting the ten changed book sides costs alone (on copies, same sizes).
            copies = {}
            for v, b in books.items():
                c = Book()
                c.bids, c.asks = dict(b.bids), dict(b.asks)
                copies[v] = c
            s0 = time.process_time()
            for c in copies.values():
                c.levels(BID)
                c.levels(ASK)
            sort_times.append((time.process_time() - s0) * 1e3)
        c0, t0 = time.process_time(), time.perf_counter()
        rep.update(t, books, tr, lq, step, synth)
        res = rep.result()
        dt, dc = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
        if i >= WARM_TICKS:
            times.append(dc)
            walls_ms.append(dt)
            n_trades += len(tr)
    med = statistics.median(times)
    p95 = sorted(times)[int(0.95 * len(times)) - 1]
    base = statistics.median(sort_times)
    return {
        "value": round(med, 3),
        "unit": "ms/tick",
        "target": 5.0,
        "ok": med <= 5.0,
        "detail": {
            "p95_ms": round(p95, 3),
            "max_ms": round(max(times), 3),
            "wall_clock_median_ms": round(statistics.median(walls_ms), 3),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            "baseline_book_sort_ms": round(base, 3),
            "ratio_to_sort": round(med / base, 2) if base > 0 else None,
            "venues": len(VENUES),
            "levels_per_side": LEVELS,
            "trades_per_tick": n_trades // len(times),
            "ticks_timed": len(times),
            "walls": len(res["walls"]),
            "sweep_clusters": len(res["sweeps"]),
            "absorptions": len(res["absorptions"]),
            "convergence": len(res["convergence"]),
            "verdict": res["verdict"],
        },
    }


BENCHMARKS = {"reports": bench_reports}


if __name__ == "__main__":
    import json
    print(json.dumps({"name": "reports", **bench_reports()}))

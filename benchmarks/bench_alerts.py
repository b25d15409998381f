"""Benchmark ``alerts`` (issue 14): what watching every asset costs. (The screener's is ``bench_screener.py``.)

The demo market (seed 1, 16 assets, the shipped config) is fed for 10 simulated minutes through the runtime's
ingest into two engines in the same run, one with the default alert rules and one without; every simulated
5 s each engine ingests every asset (what the background loop does). Both are timed in CPU seconds
(``time.process_time``: the machine is shared).

- ``alerts``: value = the alert evaluation's CPU per engine tick for all 65 assets (the per-asset cost in
  this run × 65), with the same run's engine ingest (trades, model, reports, forecast) per tick as the
  baseline, and their ratio.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import time

ASSETS = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "TRX", "NEAR",
          "ATOM", "UNI", "PEPE")
MINUTES = 10
STEP_S = 5.0


def _run() -> dict:
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=list(ASSETS), focus_extra=[])
    with_rules = Runtime(cfg, DemoFeed(cfg, assets=list(ASSETS), seed=1))
    quiet_cfg = copy.deepcopy(cfg)
    quiet_cfg["alerts"] = []
    without = Runtime(quiet_cfg, DemoFeed(quiet_cfg, assets=list(ASSETS), seed=1))
    assert without.engine.alerts is None and with_rules.engine.alerts is not None
    ev = with_rules.engine.alerts
    spent = {"evaluate": 0.0}
    real_eval = ev.evaluate

    def timed(*a, **k):
        t0 = time.process_time()
        try:
            return real_eval(*a, **k)
        finally:
            spent["evaluate"] += time.process_time() - t0

    ev.evaluate = timed
    ticks = {"with": [], "without": []}
    fired = 0

    async def go():
        nonlocal fired
        for _ in range(int(MINUTES * 60 / STEP_S)):
            for name, rt in (("with", with_rules), ("without", without)):
                await pump(rt.source.demo, rt.ingest, seconds=STEP_S)
                t0 = time.process_time()
                for a in ASSETS:
                    rt.engine.ingest(a, rt.clock())
                ticks[name].append(time.process_time() - t0)
            fired += with_rules.pump_alerts()

    asyncio.run(go())
    n_ticks = len(ticks["with"])
    eval_per_asset = spent["evaluate"] / (n_ticks * len(ASSETS))
    ingest_per_asset = statistics.median(ticks["without"]) / len(ASSETS)
    return {"eval_per_asset_ms": eval_per_asset * 1e3, "ingest_per_asset_ms": ingest_per_asset * 1e3,
            "ticks": n_ticks, "alerts_fired": fired,
            "with_median_tick_ms": statistics.median(ticks["with"]) * 1e3,
            "without_median_tick_ms": statistics.median(ticks["without"]) * 1e3}


_CACHE: dict = {}


def _once() -> dict:
    if not _CACHE:
        _CACHE.update(_run())
    return _CACHE


def bench_alerts() -> dict:
    r = _once()
    per_tick = r["eval_per_asset_ms"] * 65
    base = r["ingest_per_asset_ms"] * 65
    return {"value": round(per_tick, 3), "unit": "ms CPU per engine tick, 65 assets (alert evaluation)",
            "target": None, "ok": True,
            "detail": {"baseline_engine_ingest_ms_65": round(base, 2), "ratio_to_ingest": round(per_tick / base, 4),
                       "measured_assets": len(ASSETS), "ticks": r["ticks"], "alerts_fired": r["alerts_fired"],
                       "median_tick_ms_16_assets": {"with_alerts": round(r["with_median_tick_ms"], 2),
                                                    "without": round(r["without_median_tick_ms"], 2)}}}


BENCHMARKS = {"alerts": bench_alerts}

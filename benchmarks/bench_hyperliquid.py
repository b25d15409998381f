"""Hyperliquid ingest against another venue's in the same run (issue 12).

The demo market's frames of the same simulated minutes (seed 1; BTC in focus with full books, ETH, SOL and
PEPE, a kPEPE k-coin, coarser) are split by venue, and each venue's frames go through the one ingest path
(runs of frames through ``Ingest.push_many``, ``Ingest.flush`` per second of receipt time, as replay does): Hyperliquid's
(trades one per fill with wallets, 20-level l2Book snapshots, activeAssetCtx) against Bybit's (aggregated
public trades, orderbook.200 deltas, tickers, allLiquidation) as the baseline. Reported: frames/s and rows/s
(trades, OI, liquidations, book updates announced) per venue, process CPU time, best of 3 interleaved rounds.
"""

from __future__ import annotations

import asyncio

from benchmarks.ingest_loop import timed_push

START = 1_760_000_000.0
ASSETS = ["BTC", "ETH", "SOL", "PEPE"]
SECONDS = 600.0
BASELINE = "bybit"


def _frames() -> dict[str, list]:
    from liqmap.feeds.demo import DemoSource

    src = DemoSource(assets=ASSETS, seed=1, start=START, focus=["BTC"])
    out: dict[str, list] = {}
    for f in src.run_for(SECONDS):
        out.setdefault(f.venue, []).append(f)
    return out


async def _ingest(frames) -> tuple[float, dict]:
    from liqmap.core.assets import universe
    from liqmap.core.market import Market
    from liqmap.feeds.ingest import Ingest

    assets = universe(ASSETS)
    market = Market(list(assets), clock=lambda: START + SECONDS + 60)
    ingest = Ingest({}, market, assets)
    dt = await timed_push(ingest, frames)
    venue = frames[0].venue
    p = ingest.parsers[venue]
    rows = {k: n for (v, k), n in ingest.events.items() if v == venue}
    return dt, {"rows": rows, "errors": sum(p.errors.values()), "rejected": sum(p.rejected.values()),
                "market_rejects": market.rejects.total()}


def bench_ingest_hyperliquid() -> dict:
    by_venue = _frames()
    hl, base = by_venue["hyperliquid"], by_venue[BASELINE]
    runs: dict[str, list] = {"hyperliquid": [], BASELINE: []}
    for _ in range(3):  # interleaved rounds
        runs["hyperliquid"].append(asyncio.run(_ingest(hl)))
        runs[BASELINE].append(asyncio.run(_ingest(base)))
    out = {}
    for venue, frames in (("hyperliquid", hl), (BASELINE, base)):
        dt, info = min(runs[venue], key=lambda x: x[0])
        n_rows = sum(info["rows"].values())
        out[venue] = {"frames": len(frames), "cpu_s": round(dt, 3), "frames_per_s": round(len(frames) / dt),
                      "rows_per_s": round(n_rows / dt), "bytes_per_frame": round(sum(len(f.raw) for f in frames)
                                                                                 / len(frames)), **info}
    ratio = out["hyperliquid"]["frames_per_s"] / out[BASELINE]["frames_per_s"]
    rows_ratio = out["hyperliquid"]["rows_per_s"] / max(1, out[BASELINE]["rows_per_s"])
    clean = all(out[v]["errors"] == 0 and out[v]["market_rejects"] == 0 for v in out)
    return {"value": out["hyperliquid"]["frames_per_s"], "unit": "frames/s",
            "target": f">= 0.5x {BASELINE} frames/s in the same run, no errors", "ok": ratio >= 0.5 and clean,
            "detail": {"baseline_venue": BASELINE, "baseline_frames_per_s": out[BASELINE]["frames_per_s"],
                       "ratio": round(ratio, 2), "rows_ratio": round(rows_ratio, 2), "venues": out,
                       "source": f"demo market seed 1, {', '.join(ASSETS)}, {SECONDS:g} simulated s, BTC in focus",
                       "clock": "process CPU time, best of 3 interleaved rounds"}}


BENCHMARKS = {"ingest_hyperliquid": bench_ingest_hyperliquid}

if __name__ == "__main__":
    import json

    for name, fn in BENCHMARKS.items():
        print(json.dumps({"name": name, **fn()}))

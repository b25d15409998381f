"""Benchmark ``demo_reports`` (issue 16 item 3): what the demo gives the reports to show.

The demo market (the default seed, a few assets, the shipped config) writes ``PREROLL_MIN`` minutes of
history through the runtime's one ingest path, then runs ``MINUTES`` simulated minutes live, unpaced; the
engine ingests the screen asset (the first) every simulated second and the others every 5 s, as the app's
loop does. Every report the engine's records carry is counted once (walls by side, bucket and first
sighting with their final status; sweeps by venue and start; absorptions by side, bucket and start with their
outcome; convergence chips by level and first firing), per asset and per 5-minute bin of the live run.

Same run: the demo as it was before its books carried walls of their own (``demo.book_walls = false`` and
the simulator's walls shown whole) against the shipped demo, and a check that both runs' simulators
liquidated exactly the same positions at the same prices (the book walls never touch the price path).

value = report events per asset per 20 minutes in the shipped demo (walls ended + sweeps + absorptions settled
+ convergence chips), baseline the same count for the old books.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import time
from collections import Counter

ASSETS = ("BTC", "ETH", "SOL", "PEPE")
MINUTES = 20.0
PREROLL_MIN = 10.0
BIN_S = 300.0


def run_demo(assets=ASSETS, minutes: float = MINUTES, preroll_min: float = PREROLL_MIN, seed: int | None = None,
             book_walls: bool = True, screen_every: float = 1.0, other_every: float = 5.0) -> dict:
    """Run the demo headless and count the reports; returns {asset: counts}, the liquidations' digest and CPU s."""
    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.feeds.demo.feed import pump
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    assets = list(assets)
    cfg["universe"].update(assets=assets, focus_extra=[])
    cfg["app"]["asset"] = assets[0]
    cfg["alerts"] = []
    if not book_walls:
        cfg["demo"].update(book_walls=False)
    feed = DemoFeed(cfg, assets=assets, seed=seed, preroll=preroll_min * 60.0, lazy=True, focus=[assets[0]])
    rt = Runtime(cfg, feed)
    seen = {a: {"walls": {}, "sweeps": {}, "absorptions": {}, "convergence": {}} for a in assets}

    def collect(a: str, t0: float) -> None:
        st = rt.engine.state(a)
        r = st.records
        if r is None:
            return
        s = seen[a]
        for w in r.walls:
            s["walls"].setdefault((w.side, w.bucket, round(w.first_seen, 3)), [w.first_seen - t0, w.status])[1] = \
                w.status
        for sw in st.reports.sweeps.sweeps:
            s["sweeps"].setdefault((sw.venue, sw.ts, sw.side), [sw.ts - t0, "found"])
        for ab in r.absorptions:
            s["absorptions"].setdefault((ab.side, ab.bucket, round(ab.start, 3)), [ab.start - t0, ab.outcome])[1] = \
                ab.outcome
        for c in r.convergence:
            s["convergence"].setdefault((c.bucket, round(c.since, 3)), [c.since - t0, "+".join(c.components)])

    cpu0 = time.process_time()

    async def go() -> float:
        if feed.preroll is not None:
            await feed.preroll.run()
        t0 = rt.clock()
        ticks = int(minutes * 60)
        for i in range(ticks):
            await pump(feed.demo, rt.ingest, seconds=1.0)
            now = rt.clock()
            for a in assets:
                if a == assets[0] and i % max(int(screen_every), 1) == 0 or i % max(int(other_every), 1) == 0:
                    rt.engine.ingest(a, now)
                    collect(a, t0)
        return t0

    t0 = asyncio.run(go())
    out: dict = {}
    for a in assets:
        s = seen[a]
        live = {k: {key: v for key, v in d.items() if v[0] >= 0} for k, d in s.items()}  # after the pre-roll
        bins = int(minutes * 60 // BIN_S)
        per_bin = [sum(1 for d in live.values() for v in d.values() if int(v[0] // BIN_S) == b) for b in range(bins)]
        out[a] = {
            "walls": dict(Counter(v[1] for v in live["walls"].values())),
            "sweeps": len(live["sweeps"]),
            "absorptions": dict(Counter(v[1] for v in live["absorptions"].values())),
            "convergence": len(live["convergence"]),
            "per_5min": per_bin,
        }
    lq = feed.demo.liquidations().copy()
    lq["ts"] -= feed.demo.start  # the demo starts on the wall clock: compare times from its start
    digest = hashlib.sha256(lq.tobytes()).hexdigest()[:16]
    prices = [round(feed.demo.sims[a].price, 10) for a in assets]
    return {"assets": out, "liq_digest": digest, "liquidations": int(len(lq)), "prices": prices,
            "cpu_s": time.process_time() - cpu0, "t0": t0}


def events(counts: dict) -> int:
    """Report events of one asset: walls that ended (pulled/consumed), sweeps, absorptions settled, chips."""
    w = counts["walls"]
    a = counts["absorptions"]
    return (w.get("pulled", 0) + w.get("consumed", 0) + counts["sweeps"] + a.get("held", 0) + a.get("broke", 0)
            + counts["convergence"])


def bench_demo_reports() -> dict:
    old = run_demo(book_walls=False)
    new = run_demo(book_walls=True)
    per = lambda r: sum(events(c) for c in r["assets"].values()) / len(ASSETS) * (20.0 / MINUTES)  # noqa: E731
    same = (old["liq_digest"], old["prices"]) == (new["liq_digest"], new["prices"])
    every_bin = all(all(n > 0 for n in c["per_5min"]) for c in new["assets"].values())
    return {"value": round(per(new), 1), "unit": "report events per asset per 20 simulated minutes (demo, live)",
            "target": None, "ok": same and every_bin,
            "detail": {"baseline_old_books": round(per(old), 1), "assets": list(ASSETS), "minutes": MINUTES,
                       "preroll_min": PREROLL_MIN, "after": new["assets"], "before": old["assets"],
                       "same_liquidations_and_prices": same, "liquidations": new["liquidations"],
                       "every_5min_bin_has_events": every_bin,
                       "cpu_s": {"before": round(old["cpu_s"], 1), "after": round(new["cpu_s"], 1)}}}


BENCHMARKS = {"demo_reports": bench_demo_reports}

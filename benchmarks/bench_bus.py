"""Benchmarks ``bus_fanout`` and ``bus_catchup`` (issue 13 item 7; docs/bus.md) on a real ``nats-server``
started here on a free loopback port (Debian's package; README "Set up").

- ``bus_fanout``: one collector pushes the real Binance BTCUSDT recording at full speed through the one ingest
  path (parsers → batch sink → market) — the in-process path, timed alone first in the same run as the
  baseline — and then again with the bus publisher on, to 1 and 5 viewer processes (20 with
  ``LIQMAP_BENCH_BUS_VIEWERS=1,5,20``). Reported per viewer count: collector CPU with and without the bus,
  each viewer's CPU and bytes/s, and the end-to-end age of a message (publisher send → viewer market)
  p50/p99. Value: the p99 at the largest viewer count.
- ``bus_catchup``: a viewer joining with ``LIQMAP_BENCH_CATCHUP_HOURS`` (6) of rows behind it (3 assets × 5
  venues, one trade batch per pair per 2 s of history) and a collector's snapshot in the bucket: time to the
  first full frame (the bucket's snapshot in the engine) and to the end of the replay.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _cfg():
    from liqmap.config import DEFAULTS

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = ["BTC", "ETH", "SOL"]
    return cfg


async def _collector(frames, url: str | None, spool_dir: Path | None = None, bus_down: bool = False) -> dict:
    """The ingest path over ``frames`` (Binance BTC), with the bus publisher when ``url``; CPU of this process.
    ``bus_down``: the publisher never connects, so every batch goes to its disk spool (an outage's cost)."""
    from liqmap.core.market import Market
    from liqmap.feeds.frame import Frame
    from liqmap.feeds.ingest import Ingest

    cfg = _cfg()
    market = Market(["BTC", "ETH", "SOL"], capacity={"trade": 1 << 20})
    ingest = Ingest(cfg, market, ["BTC", "ETH", "SOL"])
    pub = None
    if url:
        from liqmap.bus.publisher import BusPublisher
        from liqmap.bus.settings import settings

        class _Rt:  # what the publisher reads of a runtime: the board (no books sent here) and no engine
            board = ingest.board
            assets = ["BTC", "ETH", "SOL"]
            engine = None

        pub = BusPublisher(settings(cfg, url), _Rt(), spool_dir)
        if bus_down:
            pub.spool.open()
        else:
            await pub.open()
        market.on_accept = pub.tap
    t0, c0 = time.perf_counter(), _cpu()
    for i, (ts, body) in enumerate(frames):
        await ingest.push(Frame(ts, "binance", "wss://fstream.binance.com/stream", body))
        if i % 500 == 499:  # the live flush timer and the publisher's batch tick, at full speed
            ingest.flush()
            if pub is not None:
                await pub.send_pending()
    ingest.flush()
    if pub is not None:
        await pub.send_pending()
    out = {"cpu_s": _cpu() - c0, "wall_s": time.perf_counter() - t0,
           "rows": sum(len(r) for k in ("trade", "liq", "oi") for r in market.rings(k, "BTC"))}
    if pub is not None:
        out.update(msgs=pub.sent_msgs, rows_sent=pub.sent_rows, bytes_sent=pub.sent_bytes,
                   spooled_msgs=pub.spooled_msgs, spooled_rows=pub.spool.rows, spooled_bytes=pub.spool.bytes)
        await pub.close()
    return out


VIEWER = r"""
import asyncio, json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from liqmap.bus.source import BusSource
from liqmap.config import DEFAULTS
from liqmap.runtime import Runtime
import copy

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

async def main(url, expected):
    cfg = copy.deepcopy(DEFAULTS); cfg["universe"]["assets"] = ["BTC", "ETH", "SOL"]
    rt = Runtime(cfg, BusSource(cfg, url), engine=False)
    src = rt.source; src.latencies = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(src.run(rt, stop))
    while not src.caught_up:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    c0 = cpu(); t0 = None; end = time.monotonic() + 300
    while src.rows < expected and time.monotonic() < end:
        if t0 is None and src.rows:
            t0 = time.perf_counter()
        await asyncio.sleep(0.005)
    wall = time.perf_counter() - (t0 or time.perf_counter())
    out = {"rows": src.rows, "bytes": src.bytes, "cpu_s": cpu() - c0, "wall_s": wall, "lat": src.latencies}
    stop.set(); await asyncio.gather(task, return_exceptions=True)
    print(json.dumps(out), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _fanout_round(frames, n_viewers: int, expected: int, tmp: Path) -> dict:
    from nats_servers import NatsServer

    srv = NatsServer(tmp / f"fan{n_viewers}").start()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", VIEWER, srv.url, str(expected), str(ROOT)],
                                  stdout=subprocess.PIPE, text=True, env=env) for _ in range(n_viewers)]
        # the stream exists before the viewers subscribe: the collector's publisher creates it
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "ready", line
        col = asyncio.run(_collector(frames, srv.url, tmp / f"spool{n_viewers}"))
        views = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    finally:
        srv.stop()
    lat = [x for v in views for x in v["lat"]]
    return {"viewers": n_viewers, "collector_cpu_s": round(col["cpu_s"], 3), "msgs": col["msgs"],
            "rows_sent": col["rows_sent"], "bytes_sent": col["bytes_sent"],
            "all_rows_arrived": all(v["rows"] == col["rows_sent"] for v in views),
            "viewer_cpu_s_mean": round(sum(v["cpu_s"] for v in views) / n_viewers, 3),
            "viewer_bytes_per_s_mean": round(sum(v["bytes"] / max(v["wall_s"], 1e-6) for v in views) / n_viewers),
            "latency_ms_p50": round(1000 * _pct(lat, 0.5), 1), "latency_ms_p99": round(1000 * _pct(lat, 0.99), 1)}


def bench_bus_fanout() -> dict:
    from bench_ingest import _frames

    from nats_servers import NatsServer  # noqa: F401 - fails early without nats-server

    frames = _frames()
    counts = [int(x) for x in os.environ.get("LIQMAP_BENCH_BUS_VIEWERS", "1,5").split(",")]
    base = asyncio.run(_collector(frames, None))  # the in-process path, same run
    rounds = []
    with tempfile.TemporaryDirectory() as d:
        # the bus away the whole run: every batch to the disk spool (what an outage costs the collector)
        down = asyncio.run(_collector(frames, "nats://127.0.0.1:9", Path(d) / "spool-down", bus_down=True))
        base2 = asyncio.run(_collector(frames, None))  # in-process again: the first run is also the coldest
        for n in counts:
            rounds.append(_fanout_round(frames, n, base["rows"], Path(d)))
    last = rounds[-1]
    return {"value": last["latency_ms_p99"], "unit": "ms p99 (publish → viewer market)", "target": 1000.0,
            "ok": all(r["all_rows_arrived"] for r in rounds) and last["latency_ms_p99"] <= 1000.0,
            "detail": {"frames": len(frames), "rows": base["rows"],
                       "in_process_collector_cpu_s": round(base["cpu_s"], 3),
                       "in_process_collector_cpu_s_after_spool_run": round(base2["cpu_s"], 3),
                       "bus_down_spooling_collector_cpu_s": round(down["cpu_s"], 3),
                       "bus_down_spooled": {k: down[k] for k in ("spooled_msgs", "spooled_rows", "spooled_bytes")},
                       "rounds": rounds,
                       "note": "collector pushes the real recording at full speed (no pacing): the latency "
                               "includes queueing behind the whole burst; the bus adds no batching delay here "
                               "because the benchmark flushes every 500 frames instead of every 250 ms"}}


async def _catchup(url: str, hours: float) -> dict:
    import numpy as np

    from liqmap.bus.client import connect, ensure_bucket, ensure_stream
    from liqmap.bus.settings import settings
    from liqmap.bus.source import BusSource
    from liqmap.bus.wire import encode_rows, snapshot_key, subject
    from liqmap.core.engine import Engine
    from liqmap.core.events import TRADE_DTYPE, VENUES
    from liqmap.core.market import Market
    from liqmap.runtime import Runtime

    cfg = _cfg()
    cfg["bus"]["catchup_hours"] = hours
    s = settings(cfg, url)
    nc = await connect(s)
    js = nc.jetstream()
    await ensure_stream(js, s)
    kv = await ensure_bucket(js, s)
    now = time.time()
    rng = np.random.default_rng(3)
    prices = {"BTC": 65000.0, "ETH": 3000.0, "SOL": 150.0}
    every = 2.0
    n_msgs = 0
    t_pub = time.perf_counter()
    market = Market(list(prices))
    # History, published in time order; the stream stamps arrival time, so the viewer's start-time policy
    # sees all of it (the whole run is younger than the window).
    steps = int(hours * 3600 / every)
    for i in range(steps):
        t = now - hours * 3600 + i * every
        futs = []
        for asset, p in prices.items():
            for vid, venue in enumerate(VENUES):
                rows = np.zeros(3, dtype=TRADE_DTYPE)
                rows["ts"] = t + np.arange(3) * 0.1
                rows["price"] = p * (1 + rng.normal(0, 1e-4, 3))
                rows["qty"] = 0.1
                rows["usd"] = rows["price"] * 0.1
                rows["side"] = 1
                rows["venue"] = vid
                if i >= steps - 1800:
                    market.add("trade", asset, rows)  # the collector's last hour: its snapshot
                futs.append(await js.publish_async(subject("trade", venue, asset), encode_rows(rows)))
                n_msgs += 1
        if futs:  # bounded: a lost ack would otherwise hang the benchmark with no sign of where
            await asyncio.wait_for(asyncio.gather(*futs), 60.0)
    t_pub = time.perf_counter() - t_pub
    eng = Engine(cfg, market)
    for a in prices:
        eng.ingest(a, now)
    eng.set_view("BTC", "hybrid", "1m", None, 60, None)
    eng.build_screen(now)
    for asset, mode, tf, venues, blob in eng.encoded_snapshots({}):
        await kv.put(snapshot_key(asset, mode, tf, venues), blob)
    await nc.close()

    rt = Runtime(cfg, BusSource(cfg, url))
    first = {}
    rt.on_update = lambda: first.setdefault("t", time.perf_counter())
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.ensure_future(rt.source.run(rt, stop))
    while not rt.source.caught_up and time.perf_counter() - t0 < 900:
        await asyncio.sleep(0.01)
    caught = time.perf_counter() - t0
    rows = rt.source.rows
    readers = {r.label: {"consumers_made": r.created, "found_dead": r.dead_found, "gaps": r.gaps}
               for r in rt.source.readers}
    stop.set()
    await asyncio.gather(task, return_exceptions=True)
    return {"first_frame_s": round(first.get("t", float("nan")) - t0, 3), "caught_up_s": round(caught, 2),
            "msgs": n_msgs, "rows": rows, "publish_s": round(t_pub, 1), "snapshots": rt.source.snapshots,
            "readers": readers}


def bench_bus_catchup() -> dict:
    from nats_servers import NatsServer

    hours = float(os.environ.get("LIQMAP_BENCH_CATCHUP_HOURS", "6"))
    with tempfile.TemporaryDirectory() as d:
        srv = NatsServer(Path(d)).start()
        try:
            r = asyncio.run(_catchup(srv.url, hours))
        finally:
            srv.stop()
    return {"value": r["first_frame_s"], "unit": "s to the first full frame", "target": 1.5,
            "ok": r["first_frame_s"] <= 1.5, "detail": {"window_hours": hours, **r,
                                                        "note": "then the window replays behind the map"}}


BENCHMARKS = {"bus_fanout": bench_bus_fanout, "bus_catchup": bench_bus_catchup}

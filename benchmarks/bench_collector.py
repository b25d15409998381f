"""Benchmarks of the live collection path around the parsers, on the real Binance BTCUSDT recording.

- ``collector_ingest``: frames/s through exactly what the ``Collector`` runs per websocket frame — the raw
  tap (health frame count, optional recorder), the guarded message handler (the Binance feed class's own
  parser, its rows waiting in the feed: ``defer_rows``), and the periodic ``Collector.flush`` (the feeds'
  rows through the sink — health lag + ``BatchSink`` — into ``Market``) — with only the socket left out.
  Baselines in the same run: bare cryptofeed parsing of the same frames (docs/architecture.md §11 target
  ≥ 0.67×) and the same path with each frame's rows handed on and stored at once (one ``Market.add`` per
  frame). All three in process CPU time, best of 2 interleaved rounds.
- ``record_write``: µs per frame that ``RecordingWriter.frame`` costs the calling thread (the event loop:
  JSON line + buffer; compression runs on the writer thread) over the same frames, against gzip-writing
  the raw frame bytes alone on one thread, same run; the total including the writer thread is in
  ``detail``. The tap runs on the event loop, so recording must stay cheap next to parsing (≤ 10 µs).
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("bench_ingest_for_collector", Path(__file__).parent / "bench_ingest.py")
_ingest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ingest)


async def _collector_path(frames, batched: bool = True, recorder=None) -> tuple[float, dict]:
    from liqmap.config import DEFAULTS
    from liqmap.core.market import Market
    from liqmap.feeds.collector import Collector, Slot
    from liqmap.feeds.health import Health
    from liqmap.feeds.parser import StandInConnection

    cfg = copy.deepcopy(DEFAULTS)
    market = Market(["BTC"])
    col = Collector(cfg, market, ["BTC"], ["binance"], recorder=recorder, focus=["BTC"])
    slot = Slot("binance", "all", ("liq", "trade", "oi", "book"), ("BTC",))
    slot.health = Health("binance", log_errors=False)
    if not batched:
        col.batch.add = lambda kind, asset, rows: market.add(kind, asset, rows)
    feed = slot.feed = col._build(slot)  # rows wait in the feed for the flush timer (defer_rows), as live
    col._slots[(slot.venue, slot.group)] = slot
    feed.live_rest = False
    if not batched:  # the per-frame baseline: every frame's rows handed on and stored at once
        feed.defer_rows = False
    stand = None
    for conn, sub, _h, _a in feed.connect():
        if isinstance(conn.address, str) and "/public" in conn.address:
            stand = StandInConnection(conn.address, conn.subscription, "BINANCE_FUTURES.ws.1")
            await sub(stand)
    tap = col._tap_for(slot)
    guarded = col._guard(slot, feed.message_handler)
    flush = col.flush  # what the collector's flush timer runs: the feeds' rows, then the batch into the market
    t = time.process_time()  # CPU time, as the bare baseline (``bench_ingest._bare``) is measured
    n = 0
    for ts, body in frames:
        if body.startswith('{"lastUpdateId"'):
            url = "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
            await tap(body, ts, "BINANCE_FUTURES.http.2", endpoint=url)
            await guarded(body, _ingest_rest(url), ts)
        else:
            await tap(body, ts, "BINANCE_FUTURES.ws.1")
            await guarded(body, stand, ts)
        n += 1
        if n % 2048 == 0:  # ~ the 50 ms flush timer at 40k frames/s
            flush()
    flush()
    dt = time.process_time() - t
    h = col.venue_health("binance")
    return dt, {"frames": h.frames, "events": dict(h.events), "errors": sum(feed.errors.values()),
                "trades_in_ring": len(market.gather("trade", "BTC")), "book_levels": len(feed.books["BTC"])}


def _ingest_rest(url: str):
    from liqmap.feeds.parser import StandInConnection

    return StandInConnection(url, {}, url)


def bench_collector_ingest() -> dict:
    frames = _ingest._frames()
    cf_log = logging.getLogger("feedhandler")
    old = cf_log.level
    cf_log.setLevel(logging.CRITICAL)
    try:
        ours, per_frame, bare = [], [], []
        for _ in range(2):  # interleaved rounds: a slow stretch of the shared machine hits all three
            ours.append(asyncio.run(_collector_path(frames)))
            per_frame.append(asyncio.run(_collector_path(frames, batched=False)))
            bare.append(asyncio.run(_ingest._bare(frames)))
    finally:
        cf_log.setLevel(old)
    t_ours, info = min(ours, key=lambda x: x[0])
    t_pf = min(per_frame, key=lambda x: x[0])[0]
    t_bare = min(bare)
    n = len(frames)
    rate, rate_bare, rate_pf = n / t_ours, n / t_bare, n / t_pf
    return {"value": round(rate), "unit": "frames/s", "target": ">= 0.67x bare cryptofeed",
            "ok": rate / rate_bare >= 0.67,
            "detail": {"frames": n, "bare_cryptofeed_frames_per_s": round(rate_bare),
                       "ratio_vs_bare": round(rate / rate_bare, 2),
                       "market_add_per_frame_frames_per_s": round(rate_pf),
                       "batch_sink_speedup": round(rate / rate_pf, 2), "collector": info}}


def bench_record_write() -> dict:
    import gzip

    from liqmap.feeds.recording import RecordingWriter

    frames = _ingest._frames()
    with tempfile.TemporaryDirectory() as d:
        def ours() -> tuple[float, float]:
            """(seconds on the calling thread — what the event loop pays, total until closed)."""
            p = os.path.join(d, "rec.jsonl.gz")
            w = RecordingWriter(p, ["binance"], ["BTC"])
            t = time.perf_counter()
            for ts, body in frames:
                w.frame(ts, "binance", "BINANCE_FUTURES.ws.1", body)
            t_loop = time.perf_counter() - t
            w.close()
            return t_loop, time.perf_counter() - t

        def raw_gzip() -> float:
            p = os.path.join(d, "raw.gz")
            t = time.perf_counter()
            with gzip.open(p, "wb", compresslevel=5) as fh:
                for _ts, body in frames:
                    fh.write(body.encode() + b"\n")
            return time.perf_counter() - t

        t_ours, t_total = min(ours() for _ in range(2))
        t_raw = min(raw_gzip() for _ in range(2))
        size = os.path.getsize(os.path.join(d, "rec.jsonl.gz"))
        raw_size = os.path.getsize(os.path.join(d, "raw.gz"))
    us, us_raw = t_ours / len(frames) * 1e6, t_raw / len(frames) * 1e6
    return {"value": round(us, 2), "unit": "us/frame", "target": 10.0, "ok": us <= 10.0,
            "detail": {"frames": len(frames), "raw_gzip_us_per_frame": round(us_raw, 2),
                       "total_us_per_frame_incl_writer_thread": round(t_total / len(frames) * 1e6, 2),
                       "loop_cost_vs_raw_gzip": round(us / us_raw, 2), "file_bytes": size,
                       "raw_gzip_bytes": raw_size}}


BENCHMARKS = {"collector_ingest": bench_collector_ingest, "record_write": bench_record_write}

if __name__ == "__main__":
    import json

    for name, fn in BENCHMARKS.items():
        print(json.dumps({"name": name, **fn()}))

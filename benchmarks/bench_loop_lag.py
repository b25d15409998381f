"""loop_lag: how long the event loop is held by the worst frames and by a 5,000 frames/s flood (issue 18 item 5).

The frames go through the real venue parsers (``FrameParser``) on the loop, as the collectors' websocket
readers hand them over, into a ``Market`` through the collector's ``BatchSink``. A probe task asks for the
loop every 10 ms (a key press stands for the same thing: it is answered when the loop gets to it) and
records how late it ran.

- ``loop_lag_worst_frames``: a 100,000-level OKX book (5.6 MB), the same levels at 300 kB under the byte cap,
  a 200,000-level Binance diff, and a real 0.7 MB BitMEX orderBookL2 partial. Baseline in the same run: the
  same frames with the per-frame caps lifted (``MAX_LEVELS`` / ``MAX_FRAME_BYTES`` as before the fix).
- ``loop_lag_flood``: demo frames of five venues and 10 assets replayed at 5,000 frames/s for 10 s; the
  value is the probe's worst lateness, with p50/p99, the parse cost per frame and the RSS before, at the
  end of and after the flood (memory returned).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liqmap.config import DEFAULTS  # noqa: E402
from liqmap.core.assets import universe  # noqa: E402
from liqmap.core.market import Market  # noqa: E402
from liqmap.feeds.collector import BatchSink  # noqa: E402
from liqmap.feeds.parser import FrameParser  # noqa: E402


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


class Probe:
    """Lateness of callbacks scheduled every 10 ms in advance (``call_at``): how long anything else waiting for
    the loop (a key press, a repaint) would wait. Scheduled ahead, so a loop that never suspends shows up as
    one very late batch instead of no samples."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.lags: list[float] = []
        self._handles: list = []

    def start(self, seconds: float = 600.0) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(1, int(seconds / self.period)):
            due = t0 + i * self.period
            self._handles.append(loop.call_at(due, lambda due=due: self.lags.append(max(0.0, loop.time() - due))))

    async def stop(self) -> None:
        await asyncio.sleep(self.period * 3)
        for h in self._handles:
            h.cancel()


def _okx_book(n: int) -> str:
    px = 65000.0
    bids = [[f"{px - i * 0.1:.1f}", "1", "0", "1"] for i in range(n)]
    asks = [[f"{px + 0.1 + i * 0.1:.1f}", "1", "0", "1"] for i in range(n)]
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": "snapshot",
                       "data": [{"asks": asks, "bids": bids, "ts": "1790000000000", "checksum": 0}]})


def _binance_diff(n: int) -> str:
    bids = [[f"{65000.0 - i * 0.1:.1f}", "1"] for i in range(n)]
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1790000000000, "T": 1790000000000, "s": "BTCUSDT", "U": 1, "u": 2, "pu": 0,
        "b": bids, "a": []}})


def _bitmex_partial() -> str | None:
    p = ROOT / "tests" / "data" / "real" / "bitmex" / "cryptofeed_sample_BITMEX.ws.1.0"
    if not p.exists():
        return None
    best = None
    for line in p.read_text().splitlines():
        body = line.split(": ", 1)[1] if ": " in line else ""
        if '"orderBookL2"' in body[:60] and '"partial"' in body[:120] and (best is None or len(body) > len(best)):
            best = body
    return best


async def _worst(lift_caps: bool) -> dict:
    assets = universe(["BTC"])
    frames = [("okx", _okx_book(100_000)), ("okx", _okx_book(5_000)), ("binance", _binance_diff(200_000))]
    bm = _bitmex_partial()
    if bm:
        frames.append(("bitmex", bm))
    market = Market(["BTC"])
    sink = BatchSink(market)
    parsers = {v: FrameParser(v, assets, sink.add) for v in {v for v, _ in frames}}
    for p in parsers.values():
        await p.subscribe()
        if lift_caps:
            p.venue_feed.MAX_LEVELS = 1 << 30
            p.venue_feed.MAX_FRAME_BYTES = 1 << 40
    probe = Probe()
    probe.start(60.0)
    per = {}
    for venue, raw in frames:
        await asyncio.sleep(0.05)
        t = time.perf_counter()
        await parsers[venue].feed(raw, 1790000000.0, "")
        per[f"{venue} {len(raw) / 1e6:.2f} MB"] = round((time.perf_counter() - t) * 1000, 1)
    await probe.stop()
    refused = {v: {":".join(k): n for k, n in p.errors.items() if k[1] in ("too_large", "too_many_levels")}
               for v, p in parsers.items()}
    return {"max_lag_ms": round(max(probe.lags) * 1000, 1), "per_frame_ms": per, "refused": refused}


def bench_worst_frames() -> dict:
    after = asyncio.run(_worst(False))
    before = asyncio.run(_worst(True))
    return {"value": after["max_lag_ms"], "unit": "ms max loop lag", "target": 100.0,
            "ok": after["max_lag_ms"] <= 100.0,
            "detail": {"after": after, "baseline_caps_lifted": before}}


def _demo_frames(seconds: float) -> list:
    from liqmap.feeds.demo import DemoSource

    names = ["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "LTC"]
    src = DemoSource({"demo": {**DEFAULTS["demo"]}}, assets=names, seed=4, start=1_790_000_000.0,
                     focus=names)
    return list(src.run_for(seconds)), src


async def _flood(rate: float, seconds: float, yield_every: float | None = None, plausible: bool = True) -> dict:
    frames, src = _demo_frames(120)
    n_needed = int(rate * seconds)
    frames = (frames * (n_needed // max(1, len(frames)) + 1))[:n_needed]
    market = Market(list(src.assets))
    sink = BatchSink(market)
    parsers = {v: FrameParser(v, src.assets, sink.add) for v in {f[1] for f in frames}}
    for p in parsers.values():
        await p.subscribe()
        if yield_every is not None:
            p.venue_feed.YIELD_EVERY_S = yield_every
        if not plausible:
            p.venue_feed.plausible.rows = lambda kind, asset, rows, receipt: rows
            p.venue_feed.plausible.band = lambda asset: (0.0, float("inf"), float("inf"))
    gc.collect()
    rss0 = _rss_mb()
    probe = Probe()
    probe.start(seconds * 20)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    busy = 0.0
    late_frames = 0
    for i, (t, venue, conn, raw) in enumerate(frames):
        due = t0 + i / rate
        now = loop.time()
        if due > now + 0.002:
            sink.flush()
            await asyncio.sleep(due - now)  # a socket delivers the next frame
        elif now - due > 0.1:
            late_frames += 1
        c = time.perf_counter()
        await parsers[venue].feed(raw, t, conn)  # buffered frames: a websocket read does not suspend
        busy += time.perf_counter() - c
        if i % 256 == 0:
            sink.flush()  # the collector's batch timer
    sink.flush()
    rss_end = _rss_mb()
    await probe.stop()
    wall = loop.time() - t0
    del frames
    gc.collect()
    lags = np.array(probe.lags) * 1000
    return {"max_lag_ms": round(float(lags.max()), 1), "p50_lag_ms": round(float(np.percentile(lags, 50)), 2),
            "p99_lag_ms": round(float(np.percentile(lags, 99)), 1), "frames": n_needed,
            "achieved_rate": round(n_needed / wall), "parse_us_per_frame": round(busy / n_needed * 1e6, 1),
            "cpu_share": round(busy / wall, 2), "frames_over_100ms_late": late_frames,
            "rss_mb": {"before": round(rss0, 1), "end": round(rss_end, 1), "after_gc": round(_rss_mb(), 1)}}


def bench_flood() -> dict:
    """After: the handlers yield the loop every 20 ms of parsing. Same-run baselines: never yielding (as
    before the fix), and the parse cost without the plausibility checks (their price per frame)."""
    res = asyncio.run(_flood(5000.0, 10.0))
    before = asyncio.run(_flood(5000.0, 10.0, yield_every=0.0))
    bare = asyncio.run(_flood(5000.0, 4.0, plausible=False))
    return {"value": res["max_lag_ms"], "unit": "ms max loop lag at 5,000 frames/s", "target": 100.0,
            "ok": res["max_lag_ms"] <= 100.0,
            "detail": {"after": res, "baseline_no_yield": before,
                       "parse_us_per_frame_without_plausibility": bare["parse_us_per_frame"]}}


BENCHMARKS = {"loop_lag_worst_frames": bench_worst_frames, "loop_lag_flood": bench_flood}

"""cascade: every venue bursting at once, with the TUI attached (issue 19 item 2).

The demo market's frames for five venues and ten assets (full books for the focus set BTC, ETH, SOL, light
depth for the rest, as live) are generated first; the busiest minute of their combined stream is then replayed
at 10× its own pace — all venues together, each frame at its simulated receipt time ÷ 10 — into the real
runtime (``Runtime``: the one ingest path, the engine, its worker pool) with the real app attached headless
(``App.run_test`` at 200×60, BTC Hybrid 1m, the shipped settings). Measured on the app's own loop:

- frames/s sustained (pushed ÷ wall time) against the rate asked for, and how many frames ran > 100 ms late;
- event-loop lag: lateness of callbacks scheduled every 10 ms (p50, p99, max), and of a key-equivalent: a
  callback posted from another thread with ``call_soon_threadsafe`` every 50 ms, as Textual's input thread
  posts a key;
- lag from receipt to snapshot: when the UI gets a new snapshot of the screen's view, the wall time since the
  newest frame it includes (its ``created`` clock) was pushed;
- CPU share: the process's CPU time (every thread: the loop, the engine's pool) ÷ wall time; 1.0 = one core;
  ``cpu_needed_cores``: the same CPU ÷ the wall time the 10× schedule asked for (what it takes to keep up);
- the loop thread's own CPU between two probe turns (``loop_cpu_between_turns_ms``): the part of the loop lag
  that is this process's work, whatever else the (shared, 2-core) machine runs — the wall-clock lag above
  also holds the time the OS gave other processes.

Baseline in the same run: the same frames at 1× (the busiest minute at its own pace, first 12 s), same app.
Targets: under one core, loop lag p99 ≤ 50 ms.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ASSETS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "LTC"]
FOCUS = ["BTC", "ETH", "SOL"]
START = 1_790_000_000.0
SPEED = 10.0
PLAY_SIM_S = 120.0  # simulated seconds replayed from the busiest minute on: 12 s of wall time at 10×


def _cfg() -> dict:
    from liqmap.config import DEFAULTS

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["assets"] = list(ASSETS)
    cfg["universe"]["focus_extra"] = FOCUS[1:]
    cfg["demo"]["preroll_minutes"] = 0
    return cfg


def _frames(cfg: dict, seconds: float = 300.0):
    """The demo's frames for ``seconds`` of simulated time, and the busiest minute's start (every venue)."""
    from liqmap.feeds.demo import DemoSource

    src = DemoSource(cfg, assets=ASSETS, seed=5, start=START, focus=FOCUS)
    frames = list(src.run_for(seconds))
    minutes = np.floor((np.array([f.t for f in frames]) - START) / 60.0).astype(int)
    counts = np.bincount(minutes)
    busiest = int(np.argmax(counts[:-1])) if len(counts) > 1 else 0
    per_venue: dict[str, int] = {}
    for f, m in zip(frames, minutes):
        if m == busiest:
            per_venue[f.venue] = per_venue.get(f.venue, 0) + 1
    return frames, src.assets, START + busiest * 60.0, {"frames_per_minute": counts.tolist(),
                                                       "busiest_minute_frames": int(counts[busiest]),
                                                       "busiest_minute_by_venue": per_venue}


class CascadeSource:
    """A ``FrameSource`` (``liqmap/feeds/sources.py``) replaying prepared frames at ``speed``× their receipt
    times, through the runtime's ``Ingest.push``; the rows are flushed every 50 ms (the demo flushes per step)."""

    label = "DEMO"
    status = ""

    def __init__(self, frames, assets, speed: float) -> None:
        self.frames = frames
        self.assets = assets
        self.speed = speed
        self.pushed_wall: list[float] = []  # wall time each frame was pushed (same order as frames)
        self.late = 0
        self.done = asyncio.Event()
        self.t_start = self.t_end = 0.0
        self._now = frames[0].t

    def clock(self) -> float:
        return self._now

    def tiers(self):
        return None

    def attach(self, rt) -> None:
        self.rt = rt

    def health(self):
        return None

    def on_view(self, asset: str) -> None:
        pass

    async def close(self) -> None:
        pass

    async def run(self, rt, stop: asyncio.Event) -> None:
        for v in rt.venues:
            h = rt.ingest.health_of(v, open_connections=0)
            h.on_connect(f"cascade-{v}", self._now)
            h.open_connections = 1
        await self.go.wait()
        ingest = rt.ingest
        push, flush = ingest.push, ingest.flush
        t_sim0 = self.frames[0].t
        clock = time.perf_counter
        w0 = self.t_start = clock()
        next_flush = w0 + 0.05
        for f in self.frames:
            if stop.is_set():
                break
            due = w0 + (f.t - t_sim0) / self.speed
            now = clock()
            if due > now + 0.002:
                flush()
                next_flush = now + 0.05
                await asyncio.sleep(due - now)
            elif now - due > 0.1:
                self.late += 1
            self._now = f.t
            await push(f)
            self.pushed_wall.append(clock())
            if self.pushed_wall[-1] >= next_flush:
                flush()
                next_flush = self.pushed_wall[-1] + 0.05
        flush()
        self.t_end = clock()
        self.done.set()
        await stop.wait()


async def _play(frames, assets, speed: float, cfg: dict) -> dict:
    from conftest import build_app

    from liqmap.runtime import Runtime
    from liqmap.ui.source import EngineSource

    source = CascadeSource(frames, assets, speed)
    source.go = asyncio.Event()
    runtime = Runtime(cfg, source)
    src = EngineSource(runtime.engine, label=runtime.label, stop=runtime.stop, run=runtime.run)
    src.runner = runtime
    runtime.on_update = lambda: src.on_update() if src.on_update is not None else None
    src.on_view = lambda view: runtime.on_view(view.asset)
    seen: list[tuple[float, float]] = []  # (wall time the UI got it, its created clock)
    latest = src.latest
    last_version = [None]

    def watched(view):
        snap = latest(view)
        if snap is not None and snap.version != last_version[0] and view.asset == "BTC":
            last_version[0] = snap.version
            seen.append((time.perf_counter(), snap.created))
        return snap

    src.latest = watched
    app = build_app(src, cfg, color_system="256")
    loop_lags: list[float] = []
    loop_cpu: list[float] = []
    key_lags: list[float] = []
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        loop = asyncio.get_running_loop()
        stop_probe = threading.Event()

        def key_thread() -> None:  # a key press posted from Textual's input thread
            while not stop_probe.wait(0.05):
                t0 = time.perf_counter()
                loop.call_soon_threadsafe(lambda t0=t0: key_lags.append(time.perf_counter() - t0))

        cpu_last = [time.thread_time()]

        def tick(due: float) -> None:
            now = loop.time()
            loop_lags.append(max(0.0, now - due))
            c = time.thread_time()  # the loop thread's own CPU since the last turn: its part of the lag
            loop_cpu.append(c - cpu_last[0])
            cpu_last[0] = c
            nxt = now + 0.01  # each probe on its own: a late one does not make the next late
            handles[0] = loop.call_at(nxt, tick, nxt)

        handles = [loop.call_at(loop.time() + 0.01, tick, loop.time() + 0.01)]
        th = threading.Thread(target=key_thread, daemon=True)
        c0 = time.process_time()
        source.go.set()
        th.start()
        await source.done.wait()
        cpu = time.process_time() - c0
        stop_probe.set()
        handles[0].cancel()
        th.join()
        await pilot.pause()
    wall = source.t_end - source.t_start
    n = len(source.pushed_wall)
    # receipt → snapshot: the newest frame a snapshot includes is the last pushed at or before its clock
    times = [f.t for f in frames[:n]]
    ages = []
    for got, created in seen:
        i = bisect.bisect_right(times, created) - 1
        if 0 <= i < n and got >= source.t_start:
            ages.append(got - source.pushed_wall[i])
    lags = np.array(loop_lags) * 1000
    busy = np.array(loop_cpu[1:] or [0.0]) * 1000
    keys = np.array(key_lags) * 1000
    span = frames[n - 1].t - frames[0].t if n > 1 else 1.0
    return {"frames": n, "wall_s": round(wall, 2), "frames_per_s": round(n / wall),
            "asked_frames_per_s": round(n / (span / speed)), "frames_over_100ms_late": source.late,
            "cpu_share": round(cpu / wall, 2),
            "loop_lag_ms": {"p50": round(float(np.percentile(lags, 50)), 1),
                            "p99": round(float(np.percentile(lags, 99)), 1), "max": round(float(lags.max()), 1)},
            "loop_cpu_between_turns_ms": {"p50": round(float(np.percentile(busy, 50)), 1),
                                          "p99": round(float(np.percentile(busy, 99)), 1),
                                          "max": round(float(busy.max()), 1)},
            "cpu_needed_cores": round(cpu / (span / speed), 2),
            "key_ms": {"p50": round(float(np.percentile(keys, 50)), 1), "p99": round(float(np.percentile(keys, 99)), 1),
                       "max": round(float(keys.max()), 1), "n": len(keys)},
            "receipt_to_snapshot_s": {"median": round(statistics.median(ages), 2) if ages else None,
                                      "max": round(max(ages), 2) if ages else None, "snapshots": len(ages)},
            "rows": dict(sorted((f"{v}:{k}", n) for (v, k), n in runtime.ingest.events.items())),
            "parse_errors": sum(sum(p.errors.values()) for p in runtime.ingest.parsers.values()),
            "loop_yields": runtime.ingest.loop_yields}


def bench_cascade() -> dict:
    cfg = _cfg()
    frames, assets, busy, info = _frames(cfg)
    window = [f for f in frames if busy <= f.t < busy + PLAY_SIM_S]
    fast = asyncio.run(_play(window, assets, SPEED, _cfg()))
    calm = asyncio.run(_play([f for f in window if f.t < busy + 12.0], assets, 1.0, _cfg()))
    p99 = fast["loop_lag_ms"]["p99"]
    return {"value": p99, "unit": "ms loop lag p99 at 10x the busiest minute", "target": "p99 <= 50 ms, < 1 core",
            "ok": p99 <= 50.0 and fast["cpu_share"] < 1.0,
            "detail": {"cascade_10x": fast, "baseline_1x": calm, "demo": info, "loadavg_1m": round(os.getloadavg()[0], 2), "assets": ASSETS, "focus": FOCUS,
                       "app": "LiqmapApp.run_test 200x60, BTC hybrid 1m, shipped settings, real Runtime + engine"}}


BENCHMARKS = {"cascade": bench_cascade}

if __name__ == "__main__":
    import json

    print(json.dumps({"name": "cascade", **bench_cascade()}))

"""When work runs: ``step`` (synchronous, deterministic) and ``run`` (the fast loop for the view on screen on
its own thread + the background pool, shedding what it cannot keep up with)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time

from ..snapshot import Snapshot
from ..view import View

# Background cadence per timeframe (seconds between rebuilds of a view that is not on screen).
BACKGROUND_EVERY = {"1m": 5.0, "5m": 15.0, "15m": 30.0, "1h": 60.0, "4h": 120.0}


class ScheduleMixin:
    """Scheduling (part of ``Engine``)."""

    def build_screen(self, now: float | None = None) -> Snapshot | None:
        """Ingest the asset on screen (unless held) and build its view at once, off the 1 Hz cadence (the first
        frame, or right after its history arrived). Returns the new snapshot, or None (no view, unchanged)."""
        scr = self._screen
        if scr is None or not self._buildable(scr.asset):
            return None
        now = self.clock() if now is None else now
        if self._ingests(scr.asset):
            self.ingest(scr.asset, now)
        return self.build(scr, now, force=True)

    def _ingests(self, asset: str) -> bool:
        """Whether the engine's own schedule ingests ``asset`` (not while its history is written, nor when
        the source steps it: ``ingest_by_source``)."""
        return not self.ingest_by_source and asset not in self._held

    def _buildable(self, asset: str) -> bool:
        """A source-stepped engine builds an asset only after its first ingest fixed the bucket step."""
        if not self.ingest_by_source:
            return True
        st = self._states.get(asset)
        return st is not None and st.step is not None

    def _due(self, view: View, now: float, on_screen: bool) -> bool:
        b = self._built.get(view.key)
        if b is None or view.key not in self._latest:
            return True
        every = 1.0 / self.fast_hz if on_screen else BACKGROUND_EVERY[view.tf]
        return now - b.built_at >= every - 1e-9

    def step(self, now: float | None = None, background: bool = True) -> int:
        """Ingest every asset, then build every due view (screen first). Deterministic; returns builds."""
        now = self.clock() if now is None else now
        for a in self.assets:
            if self._ingests(a):
                self.ingest(a, now)
        built = 0
        scr = self._screen
        if scr is not None and self._buildable(scr.asset) and self._due(scr, now, True):
            built += self.build(scr, now) is not None
        if background:
            for v in self.background_views():
                if v.asset not in self._held and self._buildable(v.asset) and self._due(v, now, False):
                    built += self.build(v, now) is not None
        self._maybe_save(now)
        return built

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Fast loop for the view on screen + background pool; never blocks the event loop."""
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        fast = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="liqmap-fast")
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="liqmap-bg")
        period = 1.0 / self.fast_hz
        pending: set[asyncio.Future] = set()
        try:
            while stop is None or not stop.is_set():
                t0 = time.perf_counter()
                now = self.clock()
                scr = self._screen
                self._wake.clear()
                if scr is not None:
                    try:
                        snap = await loop.run_in_executor(fast, self._fast_work, scr, now)
                    except Exception as e:  # one bad tick must not kill the loop; say it
                        snap = None
                        self.status = f"engine error on {scr.asset} {scr.tf}: {e!r}"
                    if snap is not None and self.on_screen is not None:
                        try:
                            self.on_screen()
                        except Exception as e:  # the UI's hook must never stop the engine
                            self.status = f"screen update hook failed: {e!r}"
                pending = {f for f in pending if not f.done()}
                self.check_venues(now)
                self._schedule_background(loop, pool, pending, now, scr)
                elapsed = time.perf_counter() - t0
                self.stats["fast_ticks"] += 1
                self.stats["last_fast_ms"] = elapsed * 1000
                if elapsed > period:
                    self.stats["fast_overruns"] += 1
                await self._pause(max(0.001, period - elapsed), stop)
        finally:
            self._loop = self._wake = None
            for f in pending:
                f.cancel()
            fast.shutdown(wait=True, cancel_futures=True)
            pool.shutdown(wait=True, cancel_futures=True)
            self._maybe_save(self.clock(), force=True)

    async def _pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        """Sleep until the next fast tick, a new view on screen (``_kick``) or ``stop``, whichever comes first."""
        waits = [asyncio.ensure_future(self._wake.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _fast_work(self, scr: View, now: float) -> Snapshot | None:
        if not self._buildable(scr.asset):
            return None
        if self._ingests(scr.asset):
            self.ingest(scr.asset, now)
        snap = self.build(scr, now, force=scr.key != self._fast_key)
        self._fast_key = scr.key
        self._maybe_save(now)
        return snap

    def _schedule_background(self, loop, pool, pending: set, now: float, scr: View | None) -> None:
        """Queue due background work, at most ``workers`` jobs deep; count and report what is shed."""
        screen_asset = scr.asset if scr is not None else None
        due_by_asset: dict[str, list[View]] = {}
        held = self._held
        for v in self.background_views():
            if (v.asset not in held and (v.key not in self._inflight) and self._buildable(v.asset)
                    and self._due(v, now, False)):
                due_by_asset.setdefault(v.asset, []).append(v)
        # Assets with nothing due are still ingested now and then, so their ring cursors keep up.
        for a in self.assets:
            if (a != screen_asset and self._ingests(a) and a not in due_by_asset
                    and self._ingest_stale(a, now)):
                due_by_asset[a] = []
        capacity = self.max_queue - len(pending)
        overloaded = self.stats["last_fast_ms"] > 1000.0 / self.fast_hz
        behind = 0
        jobs = sorted(due_by_asset.items(), key=lambda kv: (kv[0] != screen_asset, kv[0]))
        for asset, views in jobs:
            if capacity <= 0 or (overloaded and views):
                behind += len(views)
                continue
            keys = [v.key for v in views]
            self._inflight.update(keys)
            fut = loop.run_in_executor(pool, self._background_work, asset, views, now)
            fut.add_done_callback(lambda f, keys=keys: self._done(f, keys))
            pending.add(fut)
            capacity -= 1
        if behind:
            self.stats["shed"] += behind
            self.status = f"shedding background work: {behind} views behind"
        elif self.status.startswith("shedding"):
            self.status = ""

    def _ingest_stale(self, asset: str, now: float) -> bool:
        st = self._states.get(asset)
        return now - (st.last_ingest if st else -math.inf) >= 30.0

    def _background_work(self, asset: str, views: list[View], now: float) -> None:
        if not self.ingest_by_source:
            self.ingest(asset, now)
        for v in views:
            self.build(v, now)
            self.stats["background_done"] += 1

    def _done(self, fut, keys: list[tuple]) -> None:
        self._inflight.difference_update(keys)
        if not fut.cancelled() and fut.exception() is not None:
            self.status = f"background error: {fut.exception()!r}"

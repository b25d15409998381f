"""``liqmap collect``: the engine headless — collect, compute, persist — for a server or a tmux window.

Live, the venue collectors (``liqmap.feeds.collector``) write into the market rings; with ``--demo`` the
simulated five-venue market's frames go through the same venue parsers (``FrameParser``). The engine
computes every asset × timeframe in the background, the store flushes history every ``store.flush_seconds``
and the latest snapshots are saved, so a later ``liqmap`` start shows a full map at once and ``liqmap
export`` has something to write. One status line on stderr every ``--status-every`` seconds:

    collect DEMO 00:05:00 · 1,234,567 events (4,100/s) · 0 rejected · 325 views v812 · store 60 flushes, 0 pending · ok

``--duration`` stops after that many seconds; SIGINT/SIGTERM stop cleanly (flush + snapshots). Exit 0 on a
clean stop, 1 when the collectors could not be started.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

from ..core.assets import universe
from ..core.engine import Engine, ring_capacities
from ..core.market import Market
from ..core.store import Store


class _EngineStore:
    """The store as the engine sees it: everything but liquidations, which ``Collect`` queues itself the
    moment the market accepts them. Through the engine they would wait for its next ingest of the asset
    (seconds for background assets) before even reaching the flush queue, and a kill -9 lost up to 10.7 s
    of them against the documented one flush interval."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def append_events(self, table: str, asset: str, rows) -> None:
        if table != "liquidations":
            self._store.append_events(table, asset, rows)


def _fmt_dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Collect:
    """Wiring of market, engine, store and a frame source; ``run()`` until stopped."""

    def __init__(self, cfg: dict, demo: bool, duration: float | None, status_every: float,
                 seed: int | None = None, speed: float | None = None, out=None) -> None:
        self.cfg = cfg
        self.demo = demo
        self.duration = duration
        self.status_every = max(0.1, float(status_every))
        self.out = out if out is not None else sys.stderr  # looked up now: tests swap sys.stderr
        self.label = "DEMO" if demo else "LIVE"
        self.assets = list(cfg["universe"]["assets"])
        self.venues = tuple(cfg["universe"]["venues"])
        self.books: dict[str, dict[str, Any]] = {}
        self.source = None
        self.parsers: dict[str, Any] = {}
        self.collector = None
        clock = time.time
        if demo:
            from ..feeds.demo.source import DemoSource

            self.source = DemoSource(cfg, assets=self.assets, seed=seed, speed=speed)
            src = self.source
            clock = lambda: max(src.now(), 0.0) or time.time()  # noqa: E731 - simulated time drives the map
        self.clock = clock
        self.market = Market(self.assets, self.venues, capacity=ring_capacities(cfg), clock=clock)
        self.store = Store(cfg, clock=clock)
        self.liqs_seen = 0
        self.market.on_accept = self._on_accept
        self.metadata = None
        tiers = None
        if not demo:
            from ..feeds.metadata import Metadata
            from .run import metadata_tiers

            # Contract specs and public margin ladders from the disk cache (the collector refreshes stale
            # venues): each venue's synthetic levels use its own ladder.
            self.metadata = Metadata.from_config(cfg, cfg.get("_data_dir"))
            tiers = metadata_tiers(self.metadata, self.assets)
        self.engine = Engine(cfg, self.market, books_provider=self.books_for, source=self.label, clock=clock,
                             store=_EngineStore(self.store), tiers=tiers)
        app = cfg["app"]
        self.engine.set_view(app["asset"], app["mode"], app["timeframe"], None, 120, None)
        self.stop = asyncio.Event()
        self.started = time.monotonic()
        self._last_events = 0
        self._last_t = time.monotonic()

    def _on_accept(self, kind: str, asset: str, rows) -> None:
        if kind == "liq":
            self.liqs_seen += len(rows)
            self.store.append_events("liquidations", asset, rows)

    def books_for(self, asset: str) -> dict:
        return self.books.get(asset, {})

    def on_book(self, asset: str, venue: str, book) -> None:
        self.books.setdefault(asset, {})[venue] = book

    def events(self) -> int:
        return sum(st.rows_ingested for st in self.engine._states.values())

    def status_line(self) -> str:
        now = time.monotonic()
        ev = self.events()
        rate = (ev - self._last_events) / max(now - self._last_t, 1e-9)
        self._last_events, self._last_t = ev, now
        views = len(self.engine._latest)
        health = ""
        if self.collector is not None:
            h = self.collector.health()
            up = sum(1 for d in h.values() if d.get("state") == "connected")
            health = f" · venues {up}/{len(h)} up"
        elif self.parsers:
            errs = sum(sum(p.errors.values()) for p in self.parsers.values())
            implausible = sum(sum(p.rejected.values()) for p in self.parsers.values())
            health = f" · {errs} parse errors · {implausible} implausible"
        store = self.store.status()
        return (f"collect {self.label} {_fmt_dur(now - self.started)} · {ev:,} events ({rate:,.0f}/s) · "
                f"{self.liqs_seen:,} liquidations · "
                f"{self.market.rejects.total():,} rejected · {views} views v{self.engine.version} · store "
                f"{self.store.flushes} flushes, {self.store.pending_rows} pending{health} · "
                f"{store or self.engine.status or 'ok'}")

    async def _status_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), self.status_every)
            except asyncio.TimeoutError:
                pass
            print(self.status_line(), file=self.out, flush=True)

    async def _demo_feed(self) -> None:
        from ..feeds.parser import FrameParser

        metas = universe(self.assets)
        for v in self.venues:
            self.parsers[v] = FrameParser(v, metas, self.market.add, self.on_book, self.cfg)
        async for receipt_ts, venue, conn, raw in self.source.frames():
            p = self.parsers.get(venue)
            if p is not None:
                await p.feed(raw, receipt_ts, conn)
            if self.stop.is_set():
                return

    async def _live_feed(self) -> None:
        from ..feeds.collector import Collector

        # Live contract specs (OKX ctVal, inverse flags, ticks): the cache applies at once and stale venues
        # refresh in the background; without it OKX sizes would be off by the contract value. The same
        # object feeds the engine's margin tiers.
        self.collector = Collector(self.cfg, self.market, self.assets, self.venues, on_book=self.on_book,
                                   metadata=self.metadata)
        self.engine.health_provider = self.collector.health
        await self.collector.start()
        try:
            await self.stop.wait()
        finally:
            await self.collector.stop()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        restored = await asyncio.to_thread(self.engine.restore)
        if restored:
            print(f"liqmap: collect: restored {restored} snapshots from {self.store.snapshot_dir}",
                  file=self.out, flush=True)
        feed = asyncio.create_task(self._demo_feed() if self.demo else self._live_feed(), name="collect-feed")
        tasks = [
            asyncio.create_task(self.engine.run(self.stop), name="collect-engine"),
            asyncio.create_task(self.store.run(self.stop), name="collect-store"),
            asyncio.create_task(self._status_loop(), name="collect-status"),
        ]
        rc = 0
        try:
            if self.duration is not None:
                done, _ = await asyncio.wait({feed, asyncio.create_task(asyncio.sleep(self.duration))},
                                             return_when=asyncio.FIRST_COMPLETED)
            else:
                done, _ = await asyncio.wait({feed, asyncio.create_task(self.stop.wait())},
                                             return_when=asyncio.FIRST_COMPLETED)
            if feed in done and feed.exception() is not None:
                print(f"liqmap: collect: feed stopped: {feed.exception()!r}", file=self.out, flush=True)
                rc = 1
        finally:
            self.stop.set()
            if not feed.done():
                feed.cancel()
            await asyncio.gather(feed, *tasks, return_exceptions=True)
            await asyncio.to_thread(self.store.flush)
            await asyncio.to_thread(self.engine.save_snapshots)
            saved = len(list(self.store.snapshot_dir.glob("*.lqs"))) if self.store.snapshot_dir.is_dir() else 0
            print(self.status_line(), file=self.out, flush=True)
            print(f"liqmap: collect: stopped; {self.store.rows_written:,} history rows written, {saved} snapshots "
                  f"under {self.store.dir}", file=self.out, flush=True)
        return rc


def main(args, cfg) -> int:
    demo = bool(getattr(args, "demo", False))
    c = Collect(cfg, demo, getattr(args, "duration", None), getattr(args, "status_every", 10.0),
                seed=getattr(args, "seed", None), speed=getattr(args, "speed", None))
    return asyncio.run(c.run())

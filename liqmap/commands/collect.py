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

def _fmt_dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Collect:
    """The headless front end over a ``Runtime`` (store on) with the live or the demo source."""

    def __init__(self, cfg: dict, demo: bool, duration: float | None, status_every: float,
                 seed: int | None = None, speed: float | None = None, out=None, bus: str | None = None,
                 from_bus: str | None = None) -> None:
        from ..runtime import Runtime

        self.cfg = cfg
        self.demo = demo
        self.duration = duration
        self.status_every = max(0.1, float(status_every))
        self.out = out if out is not None else sys.stderr  # looked up now: tests swap sys.stderr
        if from_bus:
            from ..bus.source import BusSource

            source = BusSource(cfg, from_bus)
        elif demo:
            from ..feeds.demo.feed import DemoFeed

            # A short pre-roll: the simulator seeds its traders with positions opened over the past hours,
            # half of them already past their planned exit, and all of those close on its first step (5,091
            # of BTC's 10,411 on seed 3) — a burst of trades, a jump and its liquidations. Live from the first
            # step, collect stamped that burst at start + 0.25 s; the population and its price path are the
            # forecast benchmark's truth and stay, so the burst is written as history before the live start,
            # at its own simulated time, as the app's pre-roll does.
            preroll = 60.0 * float(cfg["demo"].get("collect_preroll_minutes", 0.0))
            source = DemoFeed(cfg, assets=list(cfg["universe"]["assets"]), seed=seed, speed=speed,
                              preroll=preroll, lazy=preroll > 0)
        else:
            from ..feeds.metadata import Metadata
            from ..feeds.sources import LiveSource

            # Contract specs and public margin ladders from the disk cache (the collector refreshes stale
            # venues): each venue's synthetic levels use its own ladder.
            source = LiveSource(cfg, metadata=Metadata.from_config(cfg, cfg.get("_data_dir")), backfill=False)
        self.runtime = rt = Runtime(cfg, source, store=True)
        self.publisher = None
        if bus:
            from ..bus.publisher import BusPublisher
            from ..bus.settings import settings as bus_settings
            from ..bus.spool import DIR_NAME

            # the outage spool sits in the data dir, under the data-dir lock this command holds
            self.publisher = BusPublisher(bus_settings(cfg, bus), rt, rt.store.dir / DIR_NAME,
                                          warn=lambda line: print(f"liqmap: collect: {line}", file=self.out,
                                                                  flush=True))
            rt.row_taps.append(self.publisher.tap)
        self.source = source
        self.label = rt.label
        self.market, self.engine, self.store, self.clock = rt.market, rt.engine, rt.store, rt.clock
        self.stop = asyncio.Event()
        rt.stop_event = self.stop
        self.started = time.monotonic()
        self._last_events = 0
        self._last_t = time.monotonic()
        self.alerts_fired = 0
        rt.alert_listeners.append(self._print_alert)  # a server alerts with no TUI attached

    def _print_alert(self, a) -> None:
        self.alerts_fired += 1
        stamp = time.strftime("%H:%M:%S", time.gmtime(a.ts))
        past = " (history: fired while catching up)" if getattr(a, "replayed", False) else ""
        print(f"ALERT {stamp} {a.severity.upper()} {a.rule}: {a.message}{past}", file=self.out, flush=True)

    @property
    def collector(self):
        return getattr(self.source, "collector", None)

    @property
    def liqs_seen(self) -> int:
        return self.runtime.liqs_seen

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
        elif self.runtime.ingest.parsers:
            parsers = self.runtime.ingest.parsers.values()
            errs = sum(sum(p.errors.values()) for p in parsers)
            implausible = sum(sum(p.rejected.values()) for p in parsers)
            health = f" · {errs} parse errors · {implausible} implausible"
        store = self.store.status()
        if self.publisher is not None:
            health += f" · {self.publisher.status()}"
        bus_in = getattr(self.source, "badge", "") if self.label == "BUS" else ""
        if self.label == "BUS":
            health += (f" · from bus {self.source.settings.shown}: {self.source.messages:,} msgs "
                       f"{self.source.rows:,} rows") + (
                f" ({bus_in})" if bus_in else "")
        from ..core.hitrate import pooled

        hit = pooled(st.hitrate for st in self.engine.states())
        return (f"collect {self.label} {_fmt_dur(now - self.started)} · {ev:,} events ({rate:,.0f}/s) · "
                f"{self.liqs_seen:,} liquidations · {self.alerts_fired} alerts · "
                f"{self.market.rejects.total():,} rejected · {views} views v{self.engine.version} · store "
                f"{self.store.flushes} flushes, {self.store.pending_rows} pending{health} · forecast {hit.text()} · "
                f"{store or self.engine.status or 'ok'}")

    async def _status_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), self.status_every)
            except asyncio.TimeoutError:
                pass
            print(self.status_line(), file=self.out, flush=True)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        restored = await self.runtime.restore()
        if restored:
            print(f"liqmap: collect: restored {restored} snapshots from {self.store.snapshot_dir}",
                  file=self.out, flush=True)
        feed, tasks = self.runtime.start()
        tasks.append(asyncio.create_task(self._status_loop(), name="collect-status"))
        # The publisher stops after the runtime's last flush (its own event), so the last batch is sent too.
        pub_stop = asyncio.Event()
        pub_task = asyncio.create_task(self.publisher.run(pub_stop), name="bus-publish") if self.publisher else None
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
            await self.runtime.stop()
            if pub_task is not None:
                pub_stop.set()
                try:  # the last batch gets a few seconds; a bus that does not answer cannot hold the exit
                    await asyncio.wait_for(asyncio.gather(pub_task, return_exceptions=True), 10.0)
                except asyncio.TimeoutError:
                    pass
            saved = len(list(self.store.snapshot_dir.glob("*.lqs"))) if self.store.snapshot_dir.is_dir() else 0
            print(self.status_line(), file=self.out, flush=True)
            print(f"liqmap: collect: stopped; {self.store.rows_written:,} history rows written, {saved} snapshots "
                  f"under {self.store.dir}", file=self.out, flush=True)
        return rc


def main(args, cfg) -> int:
    demo = bool(getattr(args, "demo", False))
    bus, from_bus = getattr(args, "bus", None), getattr(args, "from_bus", None)
    if bus or from_bus:
        from ..bus.settings import BusConfigError, settings as bus_settings

        try:  # a bad URL: one line, credentials redacted
            bus_settings(cfg, bus or from_bus)
        except BusConfigError as e:
            print(f"liqmap: collect: {e}", file=sys.stderr)
            return 2
    c = Collect(cfg, demo, getattr(args, "duration", None), getattr(args, "status_every", 10.0),
                seed=getattr(args, "seed", None), speed=getattr(args, "speed", None), bus=bus, from_bus=from_bus)
    if c.publisher is not None:
        from ..bus.spool import SpoolError

        try:  # a spool dir that cannot be used (a symlink, no permission): one line, before collecting
            spool = c.publisher.spool.open()
        except SpoolError as e:
            print(f"liqmap: collect: {e}", file=sys.stderr)
            return 2
        if spool.msgs:
            print(f"liqmap: collect: {spool.msgs:,} messages ({spool.rows:,} rows) spooled by an earlier run wait "
                  f"in {spool.dir}; they are sent first when the bus is up", file=c.out, flush=True)
    return asyncio.run(c.run())

"""The one composition root: a market, the one ingest path, the book board, the engine and (for live and
headless collection) the store, fed by one ``FrameSource`` and read by one front end.

    source (LiveSource | ReplaySource | DemoFeed)  →  Ingest (parsers → BatchSink → Market; BookBoard;
    health)  →  Engine (models, grids, reports; Store)  →  front end (TUI, collect, replay report, record,
    doctor)

Every command builds a ``Runtime`` with its source and reads it: ``liqmap`` / ``--demo`` / ``--replay`` (the
TUI through ``ui.source.EngineSource``), ``collect`` (status lines, persistence), ``record`` (the live source's
raw tap, no engine), ``doctor`` (one feed per channel, no engine). Construction does the heavy imports and
the demo's set-up, so the app builds it in a worker thread; ``run()`` then runs on the caller's loop (feeds and
the engine's loop are asyncio tasks, grid work happens in the engine's thread pool).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Callable

from liqmap.core.market import Market


class _EngineStore:
    """The store as the engine sees it: everything but liquidations, which the runtime queues itself the
    moment the market accepts them. Through the engine they would wait for its next ingest of the asset
    (seconds for background assets) before even reaching the flush queue, and a kill -9 lost up to 10.7 s
    of them against the documented one flush interval."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def append_events(self, table: str, asset: str, rows) -> None:
        if table != "liquidations":
            self._store.append_events(table, asset, rows)


def demo_preroll_seconds(cfg: dict[str, Any], map_columns=None) -> float:
    """The demo's history before its live start: ``demo.preroll_minutes`` (0: none, for tests and
    benchmarks), and with ``demo.preroll_fill_window`` enough to fill every column of the start view plus
    ``demo.preroll_warmup_minutes`` for the model to warm up. ``map_columns(terminal_columns, profile=...)``
    is the front end's layout rule (``ui.app.map_columns``); without one the window is not filled."""
    import shutil

    from .feeds.demo.preroll import preroll_seconds

    d = cfg.get("demo", {})
    app = cfg["app"]
    minutes = float(d.get("preroll_minutes", 0.0))
    if minutes <= 0:
        return 0.0
    columns = 0
    if d.get("preroll_fill_window", False) and map_columns is not None:
        # the widest mode's map (no profile strip): a switch from Hybrid to 2 or 3 shows no empty edge
        columns = map_columns(shutil.get_terminal_size(fallback=(200, 60)).columns, profile=False)
    warmup = float(d.get("preroll_warmup_minutes", 0.0))
    return preroll_seconds(minutes, str(app["timeframe"]), columns, warmup)


class Runtime:
    """See the module docstring. ``store``: persist history and snapshots (live app, collect);
    ``engine``: False for front ends that only move frames (record, doctor)."""

    def __init__(self, cfg: dict[str, Any], source, store: bool = False, engine: bool = True) -> None:
        from .core.engine import ring_capacities
        from .feeds.ingest import BookBoard, Ingest

        self.cfg = cfg
        self.source = source
        self.label = source.label
        self.assets = list(cfg["universe"]["assets"])
        self.venues = tuple(cfg["universe"]["venues"])
        # a replay also reads venues no longer live (old BitMEX recordings): ``source.extra_venues``
        self.venues += tuple(v for v in getattr(source, "extra_venues", ()) if v not in self.venues)
        app = cfg["app"]
        self.screen_asset = str(app["asset"]).upper()
        self.focus_extra = list(cfg["universe"].get("focus_extra", []))
        self.clock = source.clock
        self.market = Market(self.assets, self.venues, capacity=ring_capacities(cfg), clock=self.clock)
        self.store = None
        # Whoever wants every batch the market accepts, as (kind, asset, rows): the message bus's publisher.
        self.row_taps: list = []
        self.market.on_accept = self._on_accept
        if store:
            from .core.store import Store

            self.store = Store(cfg, clock=self.clock)
        self.liqs_seen = 0
        self.board = BookBoard()
        self.ingest = Ingest(cfg, self.market, source.assets, board=self.board, clock=self.clock)
        self.engine = None
        if engine:
            from .core import reports, synthetic  # noqa: F401 - imported here, off the loop, not on the first ingest
            from .core.engine import Engine

            self.engine = Engine(cfg, self.market, books_provider=self.board.books, source=self.label,
                                 clock=self.clock, store=_EngineStore(self.store) if self.store else None,
                                 tiers=source.tiers())
            self.engine.health_provider = self.health
            from .core.alerts import AlertEvaluator, parse_rules

            rules = parse_rules(cfg.get("alerts"), self.assets)
            self.engine.alerts = AlertEvaluator(rules) if rules else None
        # Hyperliquid's exact positions (feeds/hl_positions.py): None unless it is a venue and the source has them;
        # without the engine only to record the answers (``liqmap record``: the source's recorder).
        from .feeds.hl_positions import make_positions

        self.positions = make_positions(self, recorder=getattr(source, "recorder", None))
        # Fired alerts: kept for the front end's log, handed to its listeners and to the off-screen delivery.
        self.alert_log: deque = deque(maxlen=500)
        self.alert_listeners: list[Callable[[Any], None]] = []
        self.delivery = None
        self.on_update = None  # set by the TUI's source: called after a build it should show at once
        self.trace = lambda what: None  # the TUI's start-up trace (ui.app.trace): first-trade, first build
        self.stop_event: asyncio.Event | None = None
        self._tasks: set = set()
        source.attach(self)
        if self.engine is not None:
            self.engine.set_view(app["asset"], app["mode"], app["timeframe"], None, 120, None)

    # ------------------------------------------------------------------ reading
    def health(self) -> dict:
        """Per-venue health: the source's own (the live collector's, with its feeds) or the ingest's."""
        h = self.source.health()
        return h if h is not None else self.ingest.health()

    @property
    def status(self) -> str:
        return self.source.status or (self.engine.status if self.engine is not None else "")

    def _on_accept(self, kind: str, asset: str, rows) -> None:
        for tap in self.row_taps:
            tap(kind, asset, rows)
        if kind == "liq" and self.store is not None:
            self.liqs_seen += len(rows)
            self.store.append_events("liquidations", asset, rows)

    # ------------------------------------------------------------------ front-end hooks
    def on_view(self, asset: str) -> None:
        """The user put ``asset`` on screen: fine ticks and full books for it, its history next."""
        self.screen_asset = asset.upper()
        self.source.on_view(self.screen_asset)

    def screen_history_done(self, asset: str) -> None:
        """The screen asset's whole pre-roll is in: build it at once (the whole history on screen)."""
        self.trace(f"preroll-done-{asset}")
        self._spawn(self._build_now())

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _build_now(self) -> None:
        await asyncio.to_thread(self.engine.build_screen, self.clock())
        if self.on_update is not None:
            self.on_update()

    # ------------------------------------------------------------------ running
    async def restore(self) -> int:
        """Last run's snapshots into the engine (a full map at once); the number restored."""
        if self.store is None or self.engine is None:
            return 0
        return await asyncio.to_thread(self.engine.restore)

    def start(self, first_build: bool = False) -> tuple[asyncio.Task, list[asyncio.Task]]:
        """Start the source, the engine's loop and the store's; returns (the source's task, the others).
        ``first_build``: build the screen's view as soon as its asset has data (the TUI's first frame)."""
        self.stop_event = self.stop_event or asyncio.Event()
        stop = self.stop_event
        feed = asyncio.ensure_future(self.source.run(self, stop))
        tasks = []
        if self.engine is not None:
            if first_build:
                tasks.append(asyncio.ensure_future(self._first_build_then_run(feed)))
            else:
                tasks.append(asyncio.ensure_future(self.engine.run(stop)))
        if self.store is not None:
            tasks.append(asyncio.ensure_future(self.store.run(stop)))
        if self.engine is not None and self.engine.alerts is not None:
            tasks.append(asyncio.ensure_future(self._alert_pump(stop)))
        if self.positions is not None:
            tasks.append(asyncio.ensure_future(self.positions.run(stop)))
        return feed, tasks

    async def _alert_pump(self, stop: asyncio.Event, every: float = 0.25) -> None:
        """Fired alerts from the engine's worker threads to the listeners and the off-screen delivery."""
        from .delivery import Delivery

        self.delivery = Delivery(self.cfg)
        try:
            while not stop.is_set():
                self.pump_alerts()
                try:
                    await asyncio.wait_for(stop.wait(), every)
                except asyncio.TimeoutError:
                    pass
        finally:
            self.pump_alerts()
            await self.delivery.close()

    def pump_alerts(self) -> int:
        """Hand the alerts fired since the last call on; returns how many."""
        fired = self.engine.drain_alerts() if self.engine is not None else []
        for a in fired:
            self.alert_log.append(a)
            for cb in list(self.alert_listeners):
                try:
                    cb(a)
                except Exception:  # a front end's listener must never stop the pump  # noqa: BLE001
                    pass
            if self.delivery is not None and self.delivery.active and not a.replayed:
                self.delivery.deliver(a)  # a replayed alert (history caught up on) stays in the log only
        return len(fired)

    async def _first_build_then_run(self, feed) -> None:
        await self._first_build(feed)
        await self.engine.run(self.stop_event)

    async def run(self) -> None:
        """The TUI's run: restore, start everything, first build, until ``stop()``."""
        self.stop_event = asyncio.Event()
        await self.restore()
        feed, tasks = self.start(first_build=True)
        try:
            await asyncio.gather(feed, *tasks)
        finally:
            for t in (feed, *tasks):
                t.cancel()

    async def _first_build(self, feed_task, limit: float = 1.5) -> None:
        """Build the screen's view as soon as its asset has data, before the engine's 1 Hz loop starts:
        the first full frame should not wait for the loop's second tick (start-up target 1.5 s). In the
        demo that is the first chunk of the screen asset's pre-roll."""
        trace = self.trace
        asset = self.screen_asset
        end = time.monotonic() + limit
        first_data = getattr(self.source, "first_data", None)
        while time.monotonic() < end and not feed_task.done():
            has_trade = asset in self.market.assets and any(len(r) for r in self.market.rings("trade", asset))
            held = self.engine.held(asset)
            if has_trade and (not held or (first_data is not None and first_data(asset))):
                trace("first-trade")
                if not held:
                    await asyncio.sleep(0.05)  # live: let the first burst of frames land
                await asyncio.to_thread(self.engine.build_screen, self.clock())
                trace("engine-first-build")
                if self.on_update is not None:
                    self.on_update()
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop the source and the loops; flush the store and save the snapshots."""
        if self.stop_event is not None:
            self.stop_event.set()
        await self.source.close()
        self.ingest.flush()
        if self.store is not None:
            await asyncio.to_thread(self.store.flush)
            await asyncio.to_thread(self.engine.save_snapshots)

"""``liqmap`` / ``liqmap --demo`` / ``liqmap --replay FILE``: the terminal map.

Start-up order matters for the 1.5 s first-frame target and for colours:

1. pin the colour system (``TEXTUAL_COLOR_SYSTEM``) from ``--color`` before Textual is imported — Textual
   reads it once at import, and over ssh ``COLORTERM`` is usually lost;
2. load the theme files (a bad file: one line naming the file and the field, exit 2);
3. check that the data path's modules exist (a missing one: "liqmap: <X> is not built yet", exit 2);
4. start building the data source (cryptofeed/aiohttp imports, demo market, engine) in its own thread before
   Textual is even imported, and start the app at once with an empty map ("connecting…"); the app's source
   worker collects the source when it is ready, so neither waits for the other;
5. demo: the market starts with ``demo.preroll_minutes`` of history (``feeds/demo/preroll.py``): the first
   chunk of the screen asset's history gives the first full frame, the rest fills in behind it.

``LIQMAP_FIRST_FRAME_FILE``: when set, the app writes the wall-clock time of its first full frame there
(the ``startup`` benchmark reads it). ``LIQMAPUI_NAIVE=1``: the full-refresh baseline renderer (one
segment per cell, every row repainted on every update, no separate live column) that the ``ssh_bytes``
benchmark compares against in the same run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any


def metadata_tiers(metadata, assets):
    """The engine's ``tiers`` source over the feeds' contract metadata: ``fn(asset, venue, price)`` → the
    venue's public ladder as (floor, cap, mmr, max_leverage, cum) rows in USD (OKX's ladder in contracts
    converted with its contract value at ``price``; BitMEX's risk limit likewise), or None where the venue
    publishes none (Deribit) or nothing is cached yet. Binance is left to the engine's bundled table.
    Read on each call, so models built after a background refresh use the refreshed ladders."""
    from ..core.assets import universe

    by_name = universe(list(assets))

    def tiers(asset: str, venue: str, price: float):
        a = by_name.get(asset)
        if a is None or venue == "binance":
            return None
        return metadata.tier_rows(venue, a, price)

    return tiers


def _missing(*modules: str) -> str | None:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except ModuleNotFoundError:
            return m
    return None


class MarketRunner:
    """Market + engine + one frame source (demo, replay or live collectors), run on the app's loop.

    Built in a worker thread (construction does the heavy imports and the demo market's set-up); ``run()``
    then runs on the UI loop: feeds and the engine's own loop are asyncio tasks, grid work happens in the
    engine's thread pool, so the UI never blocks on data work.
    """

    def __init__(self, kind: str, cfg: dict[str, Any], args) -> None:
        from ..core import reports, synthetic  # noqa: F401 - imported here, off the loop, not on the first ingest
        from ..core.engine import Engine, ring_capacities
        from ..core.market import Market

        self.kind = kind
        self.cfg = cfg
        self.label = {"demo": "DEMO", "replay": "REPLAY", "live": "LIVE"}[kind]
        self.assets = list(cfg["universe"]["assets"])
        self.venues = tuple(cfg["universe"]["venues"])
        self.books: dict[str, dict[str, Any]] = {}
        self.health_by_venue: dict[str, Any] = {}
        self.store = None
        self.stop_event = None
        clock = time.time
        self.demo = self.replay = self.collector = self.preroll = None
        app = cfg["app"]
        self.screen_asset = str(app["asset"]).upper()
        self.focus_extra = list(cfg["universe"].get("focus_extra", []))
        if kind == "demo":
            import shutil

            from ..feeds.demo.preroll import preroll_seconds
            from ..feeds.demo.source import DemoSource

            d = cfg.get("demo", {})
            minutes = float(d.get("preroll_minutes", 0.0))  # 0: no history at all (tests, benchmarks)
            columns = 0
            if d.get("preroll_fill_window", False):  # enough history for every column of the start view
                from ..ui.app import map_columns

                # the widest mode's map (no profile strip): a switch from Hybrid to 2 or 3 shows no empty edge
                columns = map_columns(shutil.get_terminal_size(fallback=(200, 60)).columns, profile=False)
            warmup = float(d.get("preroll_warmup_minutes", 0.0))
            preroll = preroll_seconds(minutes, str(app["timeframe"]), columns, warmup) if minutes > 0 else 0.0
            # Lazy: only the asset on screen is simulated before the first frame; the others are built
            # by the pre-roll in the background (start-up target). Pre-roll: the market starts with history.
            self.demo = DemoSource(cfg, assets=self.assets, seed=getattr(args, "seed", None),
                                   speed=getattr(args, "speed", None), focus=[self.screen_asset, *self.focus_extra],
                                   preroll=preroll, lazy=True)
            demo = self.demo
            clock = lambda: max(demo.now(), 0.0) or time.time()  # noqa: E731 - simulated time drives the map
        self.clock = clock
        self.market = Market(self.assets, self.venues, capacity=ring_capacities(cfg), clock=clock)
        if kind == "replay":
            from ..feeds.replay import ReplaySource

            self.replay = ReplaySource(args.replay, cfg, self.market, speed=getattr(args, "speed", None) or 1.0,
                                       on_book=self.on_book)
            rp = self.replay
            self.clock = clock = rp.now
        self.metadata = None
        self.backfill_result: dict[str, str] | None = None  # live: asset → "ok (N rows)" or why it has no history
        tiers = None
        if kind == "live":
            from ..core.store import Store
            from ..feeds.metadata import Metadata

            self.store = Store(cfg, clock=clock)
            # Contract specs and public margin ladders from the disk cache (stale venues are refreshed in the
            # background by the collector): the synthetic model places each venue's levels with its own ladder.
            self.metadata = Metadata.from_config(cfg, cfg.get("_data_dir"))
            tiers = metadata_tiers(self.metadata, self.assets)
        self.engine = Engine(cfg, self.market, books_provider=self.books_for, source=self.label, clock=clock,
                             store=self.store, tiers=tiers)
        self.engine.health_provider = self.health
        self.parsers: dict[str, Any] = {}
        self._screen_chunks = 0  # pre-roll chunks of the screen asset ingested so far
        self._tasks: set = set()
        if kind == "demo":
            from ..core.assets import universe
            from ..feeds.demo.preroll import Preroll
            from ..feeds.health import Health
            from ..feeds.parser import FrameParser

            metas = universe(self.assets)
            stale = float(cfg["feeds"]["stale_seconds"])
            for v in self.venues:
                self.parsers[v] = FrameParser(v, metas, self.market.add, self.on_book, cfg)
                self.health_by_venue[v] = Health(v, stale_seconds=stale, clock=self.clock)
            if self.screen_asset in self.demo.assets:
                self.demo.sim(self.screen_asset)  # its simulator now, off the loop (the rest: in the pre-roll)
            pending = self.demo.pending()
            if pending:
                self.engine.hold(pending)  # their past is still to come: the engine must not run ahead of it
                self.preroll = Preroll(self.demo, self.parsers, order=[self.screen_asset, *self.focus_extra],
                                       on_chunk=self._preroll_chunk, on_done=self._preroll_done)
        self.on_update = None  # set by the UI source: called after the first build
        self.engine.set_view(app["asset"], app["mode"], app["timeframe"], None, 120, None)

    def books_for(self, asset: str) -> dict:
        return self.books.get(asset, {})

    def on_book(self, asset: str, venue: str, book) -> None:
        self.books.setdefault(asset, {})[venue] = book

    def health(self) -> dict:
        if self.collector is not None:
            return self.collector.health()
        if self.replay is not None:
            return self.replay.health()
        now = self.clock()
        return {v: h.as_dict(now) for v, h in self.health_by_venue.items()}

    def _preroll_chunk(self, asset: str, t: float) -> None:
        """A chunk of history is in the market: the engine takes it at the history's own time."""
        self.engine.ingest(asset, t)
        if asset == self.screen_asset:
            self._screen_chunks += 1

    def _preroll_done(self, asset: str) -> None:
        self.engine.release(asset)
        if asset == self.screen_asset:
            import asyncio

            from ..ui.app import trace

            trace(f"preroll-done-{asset}")

            task = asyncio.ensure_future(self._build_now())  # the whole history on screen at once
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    async def _build_now(self) -> None:
        import asyncio

        await asyncio.to_thread(self.engine.build_screen, self.clock())
        if self.on_update is not None:
            self.on_update()

    def on_view(self, asset: str) -> None:
        """The user put ``asset`` on screen: fine ticks and full books for it (and the focus extras), and its
        history written next if it is not complete yet."""
        self.screen_asset = asset.upper()
        if self.demo is not None:
            self.demo.set_focus([self.screen_asset, *self.focus_extra])
        if self.collector is not None:
            # Live: the full L2 book subscription follows the asset on screen (the collector adds the
            # configured focus extras and debounces rapid switches; safe from any thread).
            self.collector.set_focus(self.screen_asset)
        if self.preroll is not None:
            self.preroll.prioritize(self.screen_asset)

    async def _run_preroll(self) -> None:
        try:
            await self.preroll.run(self.stop_event)
        except Exception as e:  # the live demo goes on without the rest of the history; say why
            self.engine.status = f"demo pre-roll stopped: {e!r}"
            for a in self.preroll.pending():
                self.demo.join(a)
                self.engine.release(a)

    async def _demo_feed(self) -> None:
        parsers = self.parsers
        for v, h in self.health_by_venue.items():
            h.on_connect(f"demo-{v}", self.clock())
            h.open_connections = 1  # the simulated venue's one stand-in connection (the collector counts its own)
        async for receipt_ts, venue, conn, raw in self.demo.frames():
            p = parsers.get(venue)
            if p is not None:
                await p.feed(raw, receipt_ts, conn)
                h = self.health_by_venue[venue]
                h.on_frame(receipt_ts)
                h.on_lag(max(self.clock() - receipt_ts, 0.0))
            if self.stop_event.is_set():
                return

    async def _live_feed(self) -> None:
        from ..feeds.collector import Collector

        # Live contract specs (OKX ctVal, inverse flags, ticks): the cache applies at once, stale venues
        # refresh in the background; without them OKX sizes would be off by the contract value. The same
        # object feeds the engine's margin tiers.
        self.collector = Collector(self.cfg, self.market, self.assets, self.venues, on_book=self.on_book,
                                   metadata=self.metadata, focus=[self.screen_asset])
        await self.collector.start()
        try:
            await self.stop_event.wait()
        finally:
            await self.collector.stop()

    async def _backfill(self) -> None:
        """Binance OI history and klines through the synthetic models (feeds/backfill.py), screen asset first."""
        from ..feeds.backfill import backfill

        if "binance" not in self.venues:
            self.backfill_result = {}
            return
        self.backfill_result = await backfill(self.engine, self.cfg, self.assets, first=self.screen_asset,
                                              now=self.clock)

    async def run(self) -> None:
        import asyncio

        self.stop_event = asyncio.Event()
        if self.kind == "live":
            await asyncio.to_thread(self.engine.restore)  # a full map at once from the last run's snapshots
        if self.kind == "demo":
            feed = self._demo_feed()
        elif self.kind == "replay":
            feed = self.replay.run()
        else:
            feed = self._live_feed()
        tasks = []
        if self.kind == "live":  # the model's history first (held assets: live rows wait in the rings)
            tasks.append(asyncio.ensure_future(self._backfill()))
        feed_task = asyncio.ensure_future(feed)
        tasks.append(feed_task)
        if self.preroll is not None:
            tasks.append(asyncio.ensure_future(self._run_preroll()))
        await self._first_build(feed_task)
        tasks.append(asyncio.ensure_future(self.engine.run(self.stop_event)))
        if self.store is not None:
            tasks.append(asyncio.ensure_future(self.store.run(self.stop_event)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _first_build(self, feed_task, limit: float = 1.5) -> None:
        """Build the screen's view as soon as its asset has data, before the engine's 1 Hz loop starts:
        the first full frame should not wait for the loop's second tick (start-up target 1.5 s). In the
        demo that is the first chunk of the screen asset's pre-roll."""
        import asyncio

        asset = self.screen_asset
        end = time.monotonic() + limit
        while time.monotonic() < end and not feed_task.done():
            has_trade = asset in self.market.assets and any(len(r) for r in self.market.rings("trade", asset))
            if has_trade and (not self.engine.held(asset) or self._screen_chunks):
                from ..ui.app import trace

                trace("first-trade")
                if not self.engine.held(asset):
                    await asyncio.sleep(0.05)  # live: let the first burst of frames land
                await asyncio.to_thread(self.engine.build_screen, self.clock())
                trace("engine-first-build")
                if self.on_update is not None:
                    self.on_update()
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        import asyncio

        if self.stop_event is not None:
            self.stop_event.set()
        if self.replay is not None:
            await self.replay.stop()
        if self.store is not None:
            await asyncio.to_thread(self.store.flush)
            await asyncio.to_thread(self.engine.save_snapshots)


def build_source(kind: str, cfg: dict[str, Any], args):
    """The UI's ``SnapshotSource`` over a ``MarketRunner`` (called off the UI loop)."""
    from ..ui.source import EngineSource

    runner = MarketRunner(kind, cfg, args)
    src = EngineSource(runner.engine, label=runner.label, stop=runner.stop, run=runner.run)
    src.runner = runner
    runner.on_update = lambda: src.on_update() if src.on_update is not None else None
    if runner.demo is not None:
        src.on_view = lambda view: runner.on_view(view.asset)
    return src


def _start_build(kind: str, cfg: dict[str, Any], args):
    """``build_source`` in a daemon thread, started now; returns a Future of the source."""
    import concurrent.futures
    import threading

    fut: concurrent.futures.Future = concurrent.futures.Future()

    def work() -> None:
        try:
            fut.set_result(build_source(kind, cfg, args))
        except BaseException as e:  # noqa: BLE001 - handed to the app, which shows it on screen
            fut.set_exception(e)

    threading.Thread(target=work, name="liqmap-source-build", daemon=True).start()
    return fut


def main(args, cfg: dict[str, Any]) -> int:
    t_start = time.time()
    if os.environ.get("LIQMAPUI_STARTUP_TRACE"):
        with open(os.environ["LIQMAPUI_STARTUP_TRACE"], "a") as f:
            f.write(f"{t_start:.4f} run-main\n")
    from ..ui.palettes import detect_color_system, textual_color_system
    from ..ui.themes import ThemeError, resolve

    system = detect_color_system()
    os.environ["TEXTUAL_COLOR_SYSTEM"] = textual_color_system(system)
    try:
        spec, themes = resolve(cfg["app"]["theme"])
    except ThemeError as e:
        print(f"liqmap: {e}", file=sys.stderr)
        return 2

    kind = "demo" if getattr(args, "demo", False) else "replay" if getattr(args, "replay", None) else "live"
    needs = {"demo": ("liqmap.core.engine", "liqmap.feeds.demo.source", "liqmap.feeds.parser"),
             "replay": ("liqmap.core.engine", "liqmap.feeds.replay"),
             "live": ("liqmap.core.engine", "liqmap.feeds.collector")}[kind]
    missing = _missing(*needs)
    if missing:
        print(f"liqmap: {missing} is not built yet", file=sys.stderr)
        return 2
    if kind == "replay" and not os.path.isfile(args.replay):
        print(f"liqmap: {args.replay}: file not found", file=sys.stderr)
        return 2
    if kind == "replay":
        from ..feeds.recording import RecordingError, open_recording

        try:  # a file that is no recording at all: one line before the map starts, not a frozen map
            open_recording(args.replay)
        except RecordingError as e:
            print(f"liqmap: {e}", file=sys.stderr)
            return 2

    # The data path (cryptofeed and aiohttp imports, the demo market, the engine) is built in its own thread
    # from here on, while Textual is imported and the app mounts: the first full frame waits for both, not
    # for one after the other. The app's source worker just collects it.
    early = _start_build(kind, cfg, args)

    from ..ui.app import LiqmapApp

    probe = os.environ.get("LIQMAP_FIRST_FRAME_FILE")

    def first_frame() -> None:
        if probe:
            with open(probe, "w") as f:
                f.write(f"{time.time():.6f} {time.time() - t_start:.6f}\n")

    app = LiqmapApp(cfg, theme_spec=spec, themes=themes, color_system=system,
                    source_factory=early.result, first_frame=first_frame,
                    source_label={"demo": "DEMO", "replay": "REPLAY"}.get(kind, "LIVE"),
                    naive=os.environ.get("LIQMAPUI_NAIVE") == "1")
    app.run(mouse=bool(cfg["app"]["mouse"]))
    rc = int(app.return_code or 0)
    # Damage found mid-replay (the map showed everything before it): the same one line and exit 2 as headless.
    runner = getattr(early.result(), "runner", None) if early.done() and not early.exception() else None
    err = getattr(getattr(runner, "replay", None), "error", None)
    if err:
        print(f"liqmap: {err}", file=sys.stderr)
        return rc or 2
    return rc

"""Live collectors: liqmap's venue feeds (cryptofeed Feed subclasses) running on the app's own asyncio
loop, writing normalized rows into the ``Market`` rings, with per-venue health and a raw-frame tap.

Why not just ``FeedHandler.run(start_loop=False)``: cryptofeed starts each connection as a task nobody
holds, so when a connection exhausts its retries the task dies silently; its watchdog never fires on a
socket that goes silent before its first message; and an exception in a message handler tears the
connection down. The collector therefore starts each feed's connections itself (the same
``ConnectionHandler`` cryptofeed uses, on the running loop), keeps the task handles, restarts dead ones
after a pause, runs one watchdog for all connections (per-kind timeouts from ``feeds.watchdog_by_kind``),
wraps every message handler so one bad frame is counted and dropped, and installs a loop exception
handler so any other cryptofeed task that dies is reported instead of vanishing.

Load budget (docs/architecture.md §6): per venue one *flow* feed — liquidations, trades and open interest for every
asset — one *book* feed with full L2 books for the focus set only (the asset on screen plus
``universe.focus_extra``), and, where the venue adapter parses the light ``depth`` kind (top-N snapshots),
one *depth* feed for every other asset. ``set_focus`` moves the book (and depth) subscriptions by
rebuilding those feeds; flow keeps running untouched.

Feeds are built in a worker thread (``asyncio.to_thread``): building one seeds cryptofeed's symbol map and
may read metadata, and nothing that can block may run on the UI loop. One venue failing to build, connect
or parse never holds up the others: each has its own tasks and its own ``Health``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptofeed.connection_handler import ConnectionHandler
from cryptofeed.exceptions import ExhaustedRetries

from liqmap.core.assets import Asset, universe
from liqmap.core.book import Book
from liqmap.core.market import Market

from .collector_focus import CollectorFocus
from .collector_health import CollectorHealth
from .connection_hooks import ConnectionHooks
from .feed_plan import (BOOK_KINDS, FLOW_KINDS, LIGHT_KINDS, Slot, feeds_setting, flow_kinds, focus_set,  # noqa: F401
                        light_depth_supported, watchdog_for)  # (re-exported: the collector's import path for them)
from .health import Health, classify_error
from .ingest import FULL, LIGHT, BatchSink, BookBoard  # noqa: F401 - BatchSink: the one batch sink, re-exported

LOG = logging.getLogger("liqmap.feeds")


class Collector(CollectorFocus, CollectorHealth, ConnectionHooks):
    """Runs the venue feeds on the running loop; see the module docstring.

    ``assets`` is a list of names or a ``{name: Asset}`` dict (live metadata); ``venues`` the venue names.
    ``on_book(asset, venue, book)`` is called after every book change; ``recorder`` (a
    ``RecordingWriter``) receives every raw websocket and REST frame. ``endpoints`` overrides
    ``feeds.endpoints`` per venue: ``{"binance": {"market": "wss://127.0.0.1:9443/market", ...}}``.
    ``feed_factory`` defaults to ``liqmap.feeds.venues.make_feed``. ``ingest`` (a ``liqmap.feeds.ingest.Ingest``):
    the one sink rows, books and health go to; without one the collector keeps its own batch sink and board.
    """

    def __init__(
        self,
        cfg: dict,
        market: Market,
        assets: Iterable[str] | dict[str, Asset] | None = None,
        venues: Iterable[str] | None = None,
        on_book: Callable[[str, str, Book], None] | None = None,
        recorder: Any = None,
        endpoints: dict[str, dict[str, str]] | None = None,
        feed_factory: Callable[..., Any] | None = None,
        focus: Iterable[str] | None = None,
        book_kinds: tuple[str, ...] = BOOK_KINDS,
        clock: Callable[[], float] = time.time,
        plan: Iterable[tuple[str, str, tuple[str, ...], Iterable[str] | None]] | None = None,
        open_timeout: float = 10.0,
        exception_handler: bool = True,
        metadata: Any = None,
        ingest: Any = None,
    ) -> None:
        self.cfg = cfg
        self.market = market
        if assets is None:
            assets = list(market.assets)
        if venues is None:
            venues = [v for v in ((cfg.get("universe") or {}).get("venues") or market.venues) if v in market.venues]
        self.assets: dict[str, Asset] = dict(assets) if isinstance(assets, dict) else universe(list(assets))
        self.venues = tuple(venues)
        self.ingest = ingest
        self.on_book = on_book if on_book is not None or ingest is None else ingest.book
        self.board: BookBoard = ingest.board if ingest is not None else BookBoard()
        self.recorder = recorder
        self.endpoints = endpoints or {}
        self.feed_factory = feed_factory
        self.book_kinds = book_kinds
        self.clock = clock
        names = list(self.assets)
        self.focus: tuple[str, ...] = tuple(focus_set(cfg, names, list(focus) if focus is not None else None))
        stale = self._stale = float(feeds_setting(cfg, "stale_seconds", 10.0))
        self._lagging = float(feeds_setting(cfg, "lagging_seconds", 2.0))
        self._health: dict[str, Health] = {v: Health(v, stale_seconds=stale, lagging_seconds=self._lagging, clock=clock)
                                              for v in self.venues}
        if ingest is not None:  # the runtime reads health from the one sink: the venues' records live there
            ingest._health.update(self._health)
            ingest.flushers.append(self.flush_feeds)  # its flush (before an engine tick) takes our feeds' rows too
        self._slots: dict[tuple[str, str], Slot] = {}
        self._running = False
        self._watchdog: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._focus_task: asyncio.Task | None = None
        self._prev_exception_handler = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.task_errors: list[str] = []  # cryptofeed tasks that died (from the loop exception handler)
        self.retries = int(feeds_setting(cfg, "retries", 5))
        self.restart_seconds = float(feeds_setting(cfg, "restart_seconds", 30.0))
        self.close_timeout = float(feeds_setting(cfg, "close_timeout_seconds", 2.0))
        self.build_timeout = float(feeds_setting(cfg, "build_timeout_seconds", 30.0))
        self.light_depth = bool(feeds_setting(cfg, "light_depth", True))
        self.factory_kinds = getattr(feed_factory, "SUPPORTED_KINDS", None) if feed_factory is not None else None
        self.open_timeout = float(open_timeout)
        self.install_exception_handler = exception_handler
        # Contract metadata (liqmap.feeds.metadata.Metadata): contract sizes, inverse flags, ticks. Applied
        # from its disk cache before the feeds are built; a missing or stale venue is refetched in the
        # background and that venue's feeds rebuilt once if its contracts changed. None: built-in defaults.
        self.metadata = metadata
        self._base_assets = dict(self.assets)
        # An explicit list of feeds (venue, group, kinds, book assets or None) instead of the load budget's
        # flow + focus-book pair per venue; ``liqmap doctor`` runs one feed per venue and channel.
        self.plan = [(v, g, tuple(k), tuple(b) if b is not None else None) for v, g, k, b in plan] if plan else None
        self.batch_seconds = float(feeds_setting(cfg, "batch_ms", 50.0)) / 1000.0
        self.batch = ingest.batch if ingest is not None else BatchSink(market)
        self._flusher: asyncio.Task | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Build and start every venue's feeds; returns once all are started (or failed to build)."""
        if self._running:
            return
        self._running = True
        self._loop = asyncio.get_running_loop()
        if self.install_exception_handler:
            self._prev_exception_handler = self._loop.get_exception_handler()
            self._loop.set_exception_handler(self._exception_handler)
        if self.metadata is not None:
            try:
                self.assets = await asyncio.to_thread(self.metadata.apply, self._base_assets)
            except Exception as e:  # noqa: BLE001 — a bad cache means defaults, never no feeds
                LOG.warning("metadata not applied: %s", e)
            stale = [v for v in self.venues if not self.metadata.fresh(v)]
            if stale:
                t = asyncio.get_running_loop().create_task(self._refresh_metadata(stale), name="liqmap-metadata")
                self._background.add(t)
                t.add_done_callback(self._background.discard)
        plans = []
        if self.plan is not None:
            plans = [Slot(v, g, k, b) for v, g, k, b in self.plan if v in self._health]
        else:
            for venue in self.venues:
                plans.append(Slot(venue, "flow", flow_kinds(venue, self.factory_kinds)))
                book_assets = self._book_assets(venue)
                if book_assets:
                    plans.append(Slot(venue, "book", self.book_kinds, tuple(book_assets)))
                light = self._light_assets(venue)
                if light:
                    plans.append(Slot(venue, "depth", LIGHT_KINDS, tuple(light)))
        await asyncio.gather(*(self._launch(slot) for slot in plans))
        self._watchdog = asyncio.create_task(self._watchdog_loop(), name="liqmap-watchdog")
        self._flusher = asyncio.create_task(self._flush_loop(), name="liqmap-batch-flush")

    async def _refresh_metadata(self, venues: list[str]) -> None:
        """Fetch missing/stale metadata off the loop; rebuild the feeds of venues whose contracts changed
        (sizes are applied when rows are normalized, so a feed built on defaults must be replaced)."""
        fetched = await self.metadata.refresh(venues, self._base_assets)
        if not fetched or not self._running:
            return
        new = await asyncio.to_thread(self.metadata.apply, self._base_assets)
        changed = [v for v in fetched
                   if any(new[a].markets.get(v) != self.assets.get(a, new[a]).markets.get(v) for a in new)]
        self.assets = new
        for venue in changed:
            LOG.info("%s: contract metadata changed; rebuilding its feeds", venue)
            for (v, group), old in list(self._slots.items()):
                if v == venue and not old.stopped:
                    await self._stop_slot(old)
                    await self._launch(Slot(venue, group, old.kinds, old.book_assets))

    async def _flush_loop(self) -> None:
        while self._running:
            await asyncio.sleep(self.batch_seconds)
            self.flush()

    def flush_feeds(self) -> None:
        """Hand every feed's waiting rows to the batch sink (the feeds keep them: ``defer_rows``)."""
        for slot in list(self._slots.values()):
            flush_rows = getattr(slot.feed, "flush_rows", None)
            if flush_rows is not None:
                flush_rows()

    def flush(self) -> int:
        """The feeds' waiting rows into the market (every ``feeds.batch_ms`` and at stop)."""
        self.flush_feeds()
        return self.batch.flush()


    async def stop(self) -> None:
        """Stop every feed and close its connections; safe to call twice."""
        if not self._running:
            return
        self._running = False
        for t in (self._watchdog, self._flusher, self._focus_task, *self._background):
            if t is not None and not t.done():
                t.cancel()
        await asyncio.gather(*(self._stop_slot(s) for s in list(self._slots.values())), return_exceptions=True)
        self._slots.clear()
        self.batch.flush()  # (each stopped feed handed its rows on in _stop_slot)
        if self._loop is not None and self._loop.get_exception_handler() == self._exception_handler:
            self._loop.set_exception_handler(self._prev_exception_handler)

    # ---------------------------------------------------------------------------------------- reads

    def books(self, asset: str) -> dict[str, Book]:
        """The live L2 books of ``asset`` per venue (the engine's ``books_provider``): the full book for
        the focus set, the light top-N snapshot book for the other assets (``BookBoard``'s rule)."""
        return self.board.books(asset)

    def feeds(self) -> dict[tuple[str, str], Any]:
        """The live feed objects per (venue, group), e.g. for their ``books``."""
        return {k: s.feed for k, s in self._slots.items() if s.feed is not None}

    # ------------------------------------------------------------------------------ building a slot
    def _factory(self):
        if self.feed_factory is not None:
            return self.feed_factory
        from .venues import make_feed

        return make_feed

    def _build(self, slot: Slot):
        feed = self._make_feed(slot)
        if hasattr(feed, "defer_rows"):
            # rows wait in the feed for the flush timer (``flush``), as in an Ingest's parsers: the plausibility
            # pass, the numpy rows and the sink's counters cost per batch, not per frame
            feed.defer_rows = True
        return feed

    def _make_feed(self, slot: Slot):
        factory = self._factory()
        return factory(
            slot.venue,
            self.assets,
            channels=slot.kinds,
            sink=self._sink_for(slot),
            book_sink=self._book_sink_for(slot),
            cfg=self.cfg,
            endpoints=self.endpoints.get(slot.venue),
            book_assets=list(slot.book_assets) if slot.book_assets is not None else None,
            retries=self.retries,
        )

    async def _launch(self, slot: Slot) -> None:
        """Build the slot's feed off the loop and start its connections; on failure, retry later."""
        if slot.health is None:
            slot.health = Health(slot.venue, stale_seconds=self._stale, lagging_seconds=self._lagging, clock=self.clock,
                                 log_errors=False)
        h = self._fan(slot)
        self._slots[(slot.venue, slot.group)] = slot
        try:
            slot.feed = await asyncio.wait_for(asyncio.to_thread(self._build, slot), self.build_timeout)
        except Exception as e:  # noqa: BLE001 — any build failure is a venue problem, not ours
            kind, text = classify_error(e)
            slot.build_error = f"build {slot.group}: {text}"
            h.on_dead(slot.build_error)
            LOG.error("%s: cannot build %s feed: %s", slot.venue, slot.group, text)
            if self._running and not slot.stopped:
                self._later(self.restart_seconds, self._relaunch(slot))
            return
        if slot.stopped or not self._running:
            return
        slot.build_error = ""
        if slot.group in (FULL, LIGHT):
            self.board.attach(slot.venue, slot.group, getattr(slot.feed, "books", {}))
        self._start_slot(slot)

    async def _relaunch(self, slot: Slot) -> None:
        if self._running and not slot.stopped and self._slots.get((slot.venue, slot.group)) is slot:
            await self._launch(slot)

    def _start_slot(self, slot: Slot) -> None:
        feed = slot.feed
        loop = asyncio.get_running_loop()
        tap = self._tap_for(slot)
        http_conn = getattr(feed, "http_conn", None)
        if http_conn is not None:
            http_conn.raw_data_callback = tap  # REST fetches (book snapshots) are frames too
        timeout = watchdog_for(self.cfg, slot.kinds)
        for conn, sub, handler, auth in feed.connect():
            self._instrument(slot, conn, tap)
            ch = ConnectionHandler(conn, sub, self._guard(slot, handler), auth, self.retries,
                                   timeout=-1,  # our watchdog, not cryptofeed's (see module doc)
                                   timeout_interval=30, exceptions=None,
                                   log_on_error=False, start_delay=getattr(feed, "start_delay", 0))
            slot.handlers.append(ch)
            slot.timeouts[conn.id] = timeout
            self._run_handler(slot, ch, loop)

    def _run_handler(self, slot: Slot, ch: ConnectionHandler, loop) -> None:
        task = loop.create_task(ch._create_connection(), name=f"liqmap-{slot.venue}-{slot.group}-{ch.conn.id}")
        slot.tasks.append(task)
        task.add_done_callback(lambda t, s=slot, c=ch: self._handler_done(s, c, t))

    def _handler_done(self, slot: Slot, ch: ConnectionHandler, task: asyncio.Task) -> None:
        if task in slot.tasks:
            slot.tasks.remove(task)
        if task.cancelled() or slot.stopped or not self._running:
            return
        exc = task.exception()
        h = self._fan(slot)
        if isinstance(exc, ExhaustedRetries):
            why = f"{ch.conn.id}: gave up after {self.retries} retries ({h.last_error or 'no detail'})"
        else:
            why = f"{ch.conn.id}: feed task ended: {classify_error(exc)[1] if exc else 'returned'}"
        LOG.error("%s: %s; restarting in %.0f s", slot.venue, why, self.restart_seconds)
        h.on_dead(why)

        async def restart() -> None:
            if self._running and not slot.stopped:
                ch.running = True
                self._run_handler(slot, ch, asyncio.get_running_loop())

        self._later(self.restart_seconds, restart())

    async def _stop_slot(self, slot: Slot) -> None:
        slot.stopped = True
        if slot.feed is not None:
            self.board.detach(getattr(slot.feed, "books", {}))
        for ch in slot.handlers:
            ch.running = False
        for t in list(slot.tasks):
            t.cancel()
        if slot.tasks:
            await asyncio.gather(*slot.tasks, return_exceptions=True)
        flush_rows = getattr(slot.feed, "flush_rows", None)
        if flush_rows is not None:  # rows parsed before the stop are kept
            flush_rows()
        closes = [c.close() for c in slot.connections()]
        http_conn = getattr(slot.feed, "http_conn", None)
        if http_conn is not None:
            closes.append(http_conn.close())
        await asyncio.gather(*closes, return_exceptions=True)
        if self._slots.get((slot.venue, slot.group)) is slot:
            del self._slots[(slot.venue, slot.group)]

    def _later(self, delay: float, coro) -> None:
        async def run() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                coro.close()  # stopped before it was due: never started, never awaited
                raise
            await coro

        t = asyncio.get_running_loop().create_task(run())
        self._background.add(t)
        t.add_done_callback(self._background.discard)

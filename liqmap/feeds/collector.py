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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptofeed.connection import AsyncConnection, WSAsyncConn
from cryptofeed.connection_handler import ConnectionHandler
from cryptofeed.exceptions import ExhaustedRetries

from liqmap.core.assets import Asset, universe
from liqmap.core.book import Book
from liqmap.core.market import Market

from .health import Health, HealthFan, classify_error
from .ingest import FULL, LIGHT, BatchSink, BookBoard  # noqa: F401 - BatchSink: the one batch sink, re-exported

LOG = logging.getLogger("liqmap.feeds")

FLOW_KINDS = ("liq", "trade", "oi")
BOOK_KINDS = ("book",)
LIGHT_KINDS = ("depth",)  # top-N book snapshots for the assets out of focus (when the adapter has them)


def light_depth_supported(venue: str, factory_kinds: Iterable[str] | None = None) -> bool:
    """Whether the venue's adapter offers the light ``depth`` kind (top-N snapshots). Adapters declare
    what they can parse in ``SUPPORTED_KINDS`` (default: liqmap.feeds.venues.ALL_KINDS)."""
    if factory_kinds is not None:
        return "depth" in factory_kinds
    try:
        from .venues import ALL_KINDS, VENUE_CLASSES
    except ImportError:
        return False
    cls = VENUE_CLASSES.get(venue)
    return cls is not None and "depth" in getattr(cls, "SUPPORTED_KINDS", ALL_KINDS)


def flow_kinds(venue: str, factory_kinds: Iterable[str] | None = None) -> tuple[str, ...]:
    """``FLOW_KINDS`` the venue's adapter parses (Hyperliquid publishes no liquidations: trades and OI)."""
    if factory_kinds is None:
        try:
            from .venues import VENUE_CLASSES
        except ImportError:
            return FLOW_KINDS
        cls = VENUE_CLASSES.get(venue)
        factory_kinds = getattr(cls, "SUPPORTED_KINDS", FLOW_KINDS) if cls is not None else FLOW_KINDS
    return tuple(k for k in FLOW_KINDS if k in factory_kinds)


def feeds_setting(cfg: dict | None, key: str, default: Any) -> Any:
    return ((cfg or {}).get("feeds") or {}).get(key, default)


def focus_set(cfg: dict | None, assets: Iterable[str], on_screen: Iterable[str] | str | None = None) -> list[str]:
    """The assets that get full books: those on screen plus ``universe.focus_extra``, in universe order."""
    cfg = cfg or {}
    if on_screen is None:
        on_screen = [((cfg.get("app") or {}).get("asset")) or "BTC"]
    elif isinstance(on_screen, str):
        on_screen = [on_screen]
    want = {a.upper() for a in on_screen} | {a.upper() for a in (cfg.get("universe") or {}).get("focus_extra", [])}
    return [a for a in assets if a in want]


def watchdog_for(cfg: dict | None, kinds: Iterable[str]) -> float:
    """The watchdog timeout for a connection carrying ``kinds``: the smallest over them (a connection
    with trades on it should never be silent for long, even if it also carries liquidations)."""
    default = float(feeds_setting(cfg, "watchdog_seconds", 30.0))
    by_kind = feeds_setting(cfg, "watchdog_by_kind", {}) or {}
    vals = [float(by_kind.get(k) or 0.0) or default for k in kinds]
    return min(vals) if vals else default


@dataclass
class Slot:
    """One feed the collector runs for a venue: a group of kinds over a set of assets."""

    venue: str
    group: str  # "flow" | "book"
    kinds: tuple[str, ...]
    book_assets: tuple[str, ...] | None = None
    feed: Any = None
    handlers: list[ConnectionHandler] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    opened_at: dict[str, float] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    receipt: float = 0.0  # receipt time of the frame being parsed (for lag)
    build_error: str = ""
    stopped: bool = False
    health: Health | None = None  # this feed's own record (the venue's sums all its feeds)

    def connections(self) -> list[AsyncConnection]:
        return [h.conn for h in self.handlers]


class Collector:
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

    # ---------------------------------------------------------------------------------------- focus
    def _book_assets(self, venue: str) -> list[str]:
        return [a for a in self.focus if venue in self.assets.get(a, Asset(a, 1.0, 1e-6)).markets]

    def _light_assets(self, venue: str) -> list[str]:
        """The assets out of focus that get light depth: none unless ``feeds.light_depth`` is on and the
        venue's adapter parses the ``depth`` kind (``health()[venue]["light_depth"]`` says which)."""
        if not self.light_depth or not light_depth_supported(venue, self.factory_kinds):
            return []
        focus = set(self.focus)
        return [a for a, meta in self.assets.items() if a not in focus and venue in meta.markets]

    def set_focus(self, assets: Iterable[str] | str) -> asyncio.Task | None:
        """Full books for ``assets`` (plus ``universe.focus_extra``). Moves each venue's book subscription
        by rebuilding its book feed; flow feeds are untouched. Returns the task doing it (None when the
        focus did not change). Rapid calls coalesce: only the last focus is applied. Safe to call from
        another thread (it is then scheduled on the collector's loop and returns None)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called from another thread (a UI worker): hop onto the collector's loop
            if self._loop is not None and self._running:
                self._loop.call_soon_threadsafe(self.set_focus, assets)
            return None
        new = tuple(focus_set(self.cfg, list(self.assets), [assets] if isinstance(assets, str) else list(assets)))
        if new == self.focus:
            return None
        self.focus = new
        if not self._running or self.plan is not None:
            return None
        if self._focus_task is not None and not self._focus_task.done():
            self._focus_task.cancel()
        self._focus_task = asyncio.create_task(self._apply_focus(), name="liqmap-focus")
        return self._focus_task

    async def _apply_focus(self) -> None:
        await asyncio.sleep(0.2)  # let a burst of asset switches settle

        async def move(venue: str, group: str, kinds: tuple[str, ...], want: tuple[str, ...]) -> None:
            old = self._slots.get((venue, group))
            if old is not None and old.book_assets == want:
                return
            if old is not None:
                await self._stop_slot(old)
            if want:
                await self._launch(Slot(venue, group, kinds, want))

        moves = []
        for v in self.venues:
            moves.append(move(v, "book", self.book_kinds, tuple(self._book_assets(v))))
            if self.light_depth:
                moves.append(move(v, "depth", LIGHT_KINDS, tuple(self._light_assets(v))))
        await asyncio.gather(*moves)

    # --------------------------------------------------------------------------------------- health
    def health(self) -> dict[str, dict]:
        """Per venue: state (connected/stale/down), last message age, lag, frames, errors, reconnects."""
        now = self.clock()
        out = {}
        for venue, h in self._health.items():
            slots = [s for (v, _), s in self._slots.items() if v == venue]
            ws_open = 0
            errors_by_kind = dict(h.errors_by_kind)
            adapter_errors = 0
            implausible: dict[str, int] = {}
            for s in slots:
                for c in s.connections():
                    if isinstance(c, WSAsyncConn) and c.is_open:
                        ws_open += 1
                if s.feed is not None:
                    for key, n in getattr(s.feed, "errors", {}).items():
                        name = ":".join(key) if isinstance(key, tuple) else str(key)
                        errors_by_kind[name] = errors_by_kind.get(name, 0) + n
                        adapter_errors += n
                    plaus = getattr(s.feed, "plausible", None)
                    for (kind, reason), n in (plaus.rejected.items() if plaus is not None else ()):
                        implausible[f"{kind}:{reason}"] = implausible.get(f"{kind}:{reason}", 0) + n
            h.open_connections = ws_open
            d = h.as_dict(now)
            d["parse_errors"] = h.parse_errors + adapter_errors
            d["errors_by_kind"] = errors_by_kind
            d["implausible"] = implausible  # values refused at the parser boundary (feeds/plausible.py)
            d["feeds"] = {
                s.group: {
                    "kinds": list(s.kinds),
                    "assets": list(s.book_assets) if s.book_assets is not None else "all",
                    "connections": len(s.handlers),
                    "open": sum(1 for c in s.connections() if c.is_open and isinstance(c, WSAsyncConn)),
                    "error": s.build_error,
                }
                for s in slots
            }
            d["focus"] = list(self.focus)
            if self.metadata is not None and getattr(self.metadata, "errors", {}).get(venue):
                d["metadata_error"] = self.metadata.errors[venue]
            d["light_depth"] = ("on" if (venue, "depth") in self._slots else
                                "off" if not self.light_depth else
                                "on" if light_depth_supported(venue, self.factory_kinds) else
                                "unsupported by the venue adapter")
            out[venue] = d
        return out

    def _fan(self, slot: Slot) -> HealthFan:
        return HealthFan(self._health[slot.venue], slot.health)

    def slot_health(self) -> dict[tuple[str, str], dict]:
        """Per feed ((venue, group) → the same record as ``health()``), e.g. one row per channel in
        ``liqmap doctor``."""
        now = self.clock()
        out = {}
        for key, s in self._slots.items():
            h = s.health
            if h is None:
                continue
            h.open_connections = sum(1 for c in s.connections() if isinstance(c, WSAsyncConn) and c.is_open)
            d = h.as_dict(now)
            errs = dict(h.errors_by_kind)
            for k, n in (getattr(s.feed, "errors", None) or {}).items():
                name = ":".join(k) if isinstance(k, tuple) else str(k)
                errs[name] = errs.get(name, 0) + n
            d["parse_errors"] = sum(errs.values())
            d["errors_by_kind"] = errs
            d["kinds"] = list(s.kinds)
            d["addresses"] = [getattr(c, "address", "") for c in s.connections()]
            d["build_error"] = s.build_error
            out[key] = d
        return out

    def venue_health(self, venue: str) -> Health:
        return self._health[venue]

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

    # ------------------------------------------------------------------------------ instrumentation
    def _instrument(self, slot: Slot, conn: AsyncConnection, tap) -> None:
        """Per-connection hooks (instance attributes; cryptofeed's classes are untouched): the raw tap,
        connect success/failure with its cause, read errors, and bounded websocket timeouts."""
        h = self._fan(slot)
        venue = slot.venue
        conn.raw_data_callback = tap
        if isinstance(conn, WSAsyncConn):
            conn.ws_kwargs.setdefault("close_timeout", self.close_timeout)
            conn.ws_kwargs.setdefault("open_timeout", self.open_timeout)
        orig_open = conn._open
        orig_read = conn.read
        recorder = self.recorder
        clock = self.clock

        async def _open() -> None:
            try:
                await orig_open()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                kind, text = classify_error(e)
                h.on_connect_failed(f"{kind}: {text}")
                raise
            if isinstance(conn, WSAsyncConn):
                now = clock()
                slot.opened_at[conn.id] = now
                h.on_connect(conn.id, now)
                if recorder is not None:
                    recorder.connection(now, venue, conn.id, conn.address)

        async def read(*args, **kwargs):
            try:
                async for item in orig_read(*args, **kwargs):
                    yield item
            except asyncio.CancelledError:
                raise
            except Exception as e:
                kind, text = classify_error(e)
                h.last_error = f"{kind}: {text}"
                if not isinstance(conn, WSAsyncConn):
                    h.on_connect_failed(h.last_error)
                raise

        conn._open = _open
        conn.read = read

    def _tap_for(self, slot: Slot):
        h = self._fan(slot)
        venue = slot.venue
        collector = self

        async def tap(data, timestamp, uuid, endpoint=None, send=None, connect=None, header=None) -> None:
            if send is not None or connect is not None or data is None:
                return
            rest = endpoint is not None
            h.on_frame(timestamp, rest)
            rec = collector.recorder
            if rec is not None:
                rec.frame(timestamp, venue, endpoint if rest else uuid, data, "rest" if rest else "ws")

        return tap

    def _guard(self, slot: Slot, handler):
        """The feed's message handler, made unable to kill its connection: a frame that raises is
        counted per venue and exception kind, the first of each kind logged, and dropped."""
        h = self._fan(slot)

        async def guarded(msg, conn, timestamp) -> None:
            slot.receipt = timestamp or self.clock()
            try:
                await handler(msg, conn, timestamp)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                h.on_parse_error(type(e).__name__, str(e)[:120], msg)

        return guarded

    def _sink_for(self, slot: Slot):
        h = self._fan(slot)
        venue = slot.venue
        if self.ingest is not None:
            ingest_add = self.ingest.add

            def add(kind: str, asset: str, rows: np.ndarray) -> None:
                ingest_add(kind, asset, rows, venue)
        else:
            add = self.batch.add

        def sink(kind: str, asset: str, rows: np.ndarray) -> None:
            add(kind, asset, rows)
            h.on_events(kind, len(rows))
            if len(rows) and slot.receipt:
                h.on_lag(slot.receipt - float(rows["ts"].max()))

        return sink

    def _book_sink_for(self, slot: Slot):
        h = self._fan(slot)

        def book_sink(asset: str, venue: str, book: Book) -> None:
            h.on_events("book_update", 1)
            if book.ts and slot.receipt:
                h.on_lag(slot.receipt - book.ts)
            if self.on_book is not None:
                self.on_book(asset, venue, book)

        return book_sink

    # ------------------------------------------------------------------------------------- watchdog
    async def _watchdog_loop(self) -> None:
        """Close any open websocket silent for longer than its timeout; cryptofeed then reconnects.
        Unlike cryptofeed's own watcher this also catches a socket that never sent a first frame."""
        while self._running:
            timeouts = [t for s in self._slots.values() for t in s.timeouts.values()] or [30.0]
            interval = max(0.05, min(5.0, min(timeouts) / 4.0))
            await asyncio.sleep(interval)
            now = self.clock()
            for slot in list(self._slots.values()):
                for ch in slot.handlers:
                    conn = ch.conn
                    if not isinstance(conn, WSAsyncConn) or not conn.is_open or not ch.running:
                        continue
                    ref = max(conn.last_message or 0.0, slot.opened_at.get(conn.id, 0.0))
                    limit = slot.timeouts.get(conn.id, 30.0)
                    if ref and now - ref > limit:
                        h = self._fan(slot)
                        why = f"watchdog: {conn.id} silent for {now - ref:.1f} s"
                        h.on_stall(why)
                        LOG.warning("%s: %s, reconnecting", slot.venue, why)
                        slot.opened_at[conn.id] = now  # do not fire again while the close runs
                        t = asyncio.get_running_loop().create_task(conn.close())
                        self._background.add(t)
                        t.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------------ loop exception handler
    def _exception_handler(self, loop, context: dict) -> None:
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        text = context.get("message", "")
        if isinstance(exc, ExhaustedRetries) or "cryptofeed" in repr(task) or "ConnectionHandler" in repr(task):
            why = f"feed task died: {classify_error(exc)[1] if exc else text}"
            self.task_errors.append(why)
            LOG.error("%s", why)
        if self._prev_exception_handler is not None:
            self._prev_exception_handler(loop, context)
        else:
            loop.default_exception_handler(context)

"""The one ingest path: frames → venue parsers → batched market rows, books on one board, health per venue.

Every source ends here. A frame source (the demo market, a recording) hands ``Frame``s to ``Ingest.push``,
which parses them through the venue's real feed class (``FrameParser``); the live collector parses on its
sockets with the same feed classes and hands their rows to ``Ingest.add`` and their books to the board.
Rows are gathered per (kind, asset) in one ``BatchSink`` and handed to ``Market.add`` on ``flush`` (or when
``max_rows`` pile up). One counter per stage:

    frames        Ingest.frames (pushed), skipped_venues (no adapter / not in the market)
    parsed rows   Ingest.events[(venue, kind)] — what the parsers emitted
    accepted      BatchSink.accepted[(asset, kind)] — what the market kept (its rejects: Market.rejects)
    engine        Engine state rows_ingested

``BookBoard`` is the one place books live: every parser and every collector feed registers its books there,
and ``books(asset)`` applies the rule the engine reads — a venue's full book where it has one, its light
top-N snapshot book (the ``depth`` feeds for assets out of focus) otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from liqmap.core.assets import Asset, universe
from liqmap.core.book import Book
from liqmap.core.market import Market

from .frame import Frame, is_rest
from .health import Health

FULL, LIGHT = "book", "depth"  # the two tiers of books (a collector slot's group, a parser's "book")


class BatchSink:
    """Rows from the parsers, gathered per (kind, asset) and handed to ``Market.add`` in batches.

    ``Market.add`` validates with a dozen numpy operations: ~100 µs per call whatever the batch size, so
    one call per frame would cost more than parsing the frame (and cap a cascade at ~10k frames/s). The
    engine reads the rings at most once per second, so gathering for ``batch_ms`` loses nothing. ``flush``
    runs from a timer task live, after each paced step of the demo and before every engine tick in replay.
    """

    def __init__(self, market: Market, on_accepted: Callable[[str, str, np.ndarray, int], None] | None = None,
                 max_rows: int = 4096) -> None:
        self.market = market
        self.on_accepted = on_accepted
        self.max_rows = max_rows
        self._parts: dict[tuple[str, str], list[np.ndarray]] = {}
        self._rows = 0
        self.accepted: dict[tuple[str, str], int] = {}  # (asset, kind) → rows kept by the market

    def add(self, kind: str, asset: str, rows: np.ndarray) -> None:
        if not len(rows):
            return
        key = (kind, asset)
        parts = self._parts.get(key)
        if parts is None:
            self._parts[key] = [rows]
        else:
            parts.append(rows)
        self._rows += len(rows)
        if self._rows >= self.max_rows:
            self.flush()

    def flush(self) -> int:
        if not self._parts:
            return 0
        parts, self._parts, self._rows = self._parts, {}, 0
        total = 0
        for (kind, asset), arrs in parts.items():
            rows = arrs[0] if len(arrs) == 1 else np.concatenate(arrs)
            n = self.market.add(kind, asset, rows)
            total += n
            key = (asset, kind)
            self.accepted[key] = self.accepted.get(key, 0) + n
            if self.on_accepted is not None:
                self.on_accepted(kind, asset, rows, n)
        return total

    @property
    def pending(self) -> int:
        return self._rows


class BookBoard:
    """Every live book, per venue and tier, read through one rule (see the module docstring).

    Feeds own their books (they apply deltas in place); the board holds references to their ``books``
    dicts, so a feed that is stopped (a focus move) is detached and its books stop counting at once.
    """

    def __init__(self) -> None:
        self._by_tier: dict[str, list[tuple[str, dict[str, Book]]]] = {FULL: [], LIGHT: []}

    def attach(self, venue: str, tier: str, books: dict[str, Book]) -> None:
        if tier in self._by_tier:
            self._by_tier[tier].append((venue, books))

    def detach(self, books: dict[str, Book]) -> None:
        for tier, lst in self._by_tier.items():
            self._by_tier[tier] = [(v, b) for v, b in lst if b is not books]

    def books(self, asset: str) -> dict[str, Book]:
        """``asset``'s non-empty books per venue: the full book first, a light one only where a venue has
        no full book for it (the engine's ``books_provider``)."""
        out: dict[str, Book] = {}
        for tier in (FULL, LIGHT):
            for venue, books in self._by_tier[tier]:
                if venue not in out:
                    b = books.get(asset)
                    if b is not None and len(b):
                        out[venue] = b
        return out


class Ingest:
    """Frames and rows in, market rows and books out; see the module docstring.

    ``assets``: the parsers' contract specs (a recording's header, live metadata) as ``{name: Asset}`` or
    names; ``clock``: the health records' clock (default: the newest receipt time pushed, a recording's
    clock). ``keep_liquidations``: every parsed liquidation is kept for ``liquidations(asset)`` (the replay
    report; unbounded, so off elsewhere). ``on_book(asset, venue, book)`` is told of every book change.
    """

    # Pushing frames back to back (a replay, the demo's pre-roll, a flood) holds the loop; after this much the
    # push gives it a turn, so keys and repaints wait at most about this long (issue 18 item 5).
    YIELD_EVERY_S = 0.02
    _CHECK_EVERY = 8  # frames between two reads of the clock (a frame costs 1–50 µs: the slice overruns < 1 ms)

    def __init__(self, cfg: dict, market: Market, assets: dict[str, Asset] | Iterable[str] | None = None,
                 board: BookBoard | None = None, clock: Callable[[], float] | None = None,
                 keep_liquidations: bool = False, on_book: Callable[[str, str, Book], None] | None = None) -> None:
        self.cfg = cfg
        self.market = market
        if assets is None:
            assets = list(market.assets)
        self.assets: dict[str, Asset] = dict(assets) if isinstance(assets, dict) else universe(list(assets))
        self.board = board if board is not None else BookBoard()
        self.clock = clock or (lambda: self.now)
        self.keep_liquidations = keep_liquidations
        self.on_book = on_book
        self.parsers: dict[str, Any] = {}
        # other holders of parsed rows ``flush`` empties first (a live collector's feeds: ``Collector.flush_feeds``)
        self.flushers: list[Callable[[], None]] = []
        self.batch = BatchSink(market)
        self.now = 0.0  # receipt time of the newest frame pushed
        self.first_ts: float | None = None
        self.frames = 0
        self.events: Counter = Counter()  # (venue, kind) → rows parsed
        self.touched: set[str] = set()  # assets that received any event
        self.book_updates: Counter = Counter()
        self.skipped_venues: Counter = Counter()  # frames of venues with no adapter / not in the market
        self.addresses: dict[str, str] = {}
        self.trade_usd: Counter = Counter()  # asset → traded USD (every parsed trade, ring size aside)
        self.trade_count: Counter = Counter()
        self._liqs: dict[str, list[np.ndarray]] = {}  # asset → every parsed liquidation (keep_liquidations)
        feeds = (cfg or {}).get("feeds") or {}
        self._stale = float(feeds.get("stale_seconds", 10.0))
        self._lagging = float(feeds.get("lagging_seconds", 2.0))
        self._health: dict[str, Health] = {}
        self._receipt = 0.0
        # True while a run of history is parsed (the demo's pre-roll): its frames are stamped at the end of a
        # coarse simulation step while their events span the step, so their "lag" is the step, not lateness —
        # a venue read "5.1s late" under a demo that was on time. Lag is a live-stream measure.
        self._history = False
        self._known = set(market.assets)
        # Loop turns are seen by a marker callback, not guessed from gaps between pushes: a flush or a source's
        # own work between two pushes is no turn (a 1 ms gap rule never yielded under a 10x cascade).
        self._slice_start = 0.0
        self._turned = True
        self._routes: dict[str, tuple] = {}  # venue → (feed.parse, connection lookup, health, parser)
        self.loop_yields = 0

    # ------------------------------------------------------------------------------- health
    def health_of(self, venue: str, open_connections: int = 1) -> Health:
        """The venue's health record (made on first use; a frame source counts as one open connection)."""
        h = self._health.get(venue)
        if h is None:
            h = self._health[venue] = Health(venue, stale_seconds=self._stale, lagging_seconds=self._lagging, clock=self.clock)
            h.open_connections = open_connections
            h.created = self.clock()
        return h

    def health(self) -> dict[str, dict]:
        out = {}
        now = self.clock()
        for venue, h in self._health.items():
            d = h.as_dict(now)
            p = self.parsers.get(venue)
            if p is not None:
                errs = {":".join(k) if isinstance(k, tuple) else str(k): n for k, n in p.errors.items()}
                d["parse_errors"] = sum(errs.values())
                d["errors_by_kind"] = errs
            out[venue] = d
        return out

    # ------------------------------------------------------------------------------- rows and books
    def add(self, kind: str, asset: str, rows: np.ndarray, venue: str = "", receipt: float = 0.0) -> None:
        """Parsed rows of one frame (from a parser here or a live collector feed)."""
        self.batch.add(kind, asset, rows)
        n = len(rows)
        self.events[(venue, kind)] += n
        if not n or asset not in self._known:
            return
        self.touched.add(asset)
        if kind == "trade":
            self.trade_count[asset] += n
            self.trade_usd[asset] += float(rows["usd"].sum())
        elif kind == "liq" and self.keep_liquidations:
            self._liqs.setdefault(asset, []).append(rows)

    def book(self, asset: str, venue: str, book: Book) -> None:
        """A book changed (the board already holds it: this counts and tells ``on_book``)."""
        self.book_updates[venue] += 1
        self.touched.add(asset)
        if self.on_book is not None:
            self.on_book(asset, venue, book)

    def flush(self) -> int:
        """Hand the gathered rows to the market (before the engine reads it): the parsers' pending rows
        first (they batch across frames), then the batch sink's."""
        self._flush_parsers()
        for f in self.flushers:
            f()
        return self.batch.flush()

    def _flush_parsers(self) -> None:
        """The parsers' pending rows to the sink, which measures each venue's lag against the newest receipt."""
        for p in self.parsers.values():
            p.flush()

    def books(self, asset: str) -> dict[str, Book]:
        return self.board.books(asset)

    def liquidations(self, asset: str) -> np.ndarray:
        """Every liquidation parsed for ``asset`` (``keep_liquidations``; not bounded by the ring), time-sorted."""
        from liqmap.core.events import LIQ_DTYPE

        parts = self._liqs.get(asset)
        if not parts:
            return np.zeros(0, dtype=LIQ_DTYPE)
        rows = np.concatenate(parts)
        return rows[np.argsort(rows["ts"], kind="stable")]

    # ------------------------------------------------------------------------------- frames
    def parser(self, venue: str):
        """The venue's ``FrameParser`` (made on its first frame), or None for a venue with no adapter or
        not in the market."""
        p = self.parsers.get(venue)
        if p is not None or venue in self.skipped_venues:
            return p
        from .parser import FrameParser
        from .venues import VENUE_CLASSES

        if venue not in VENUE_CLASSES or venue not in self.market.venues:
            return None
        h = self.health_of(venue)
        add = self.add

        def sink(kind: str, asset: str, rows: np.ndarray) -> None:
            add(kind, asset, rows, venue)
            n = len(rows)
            h.on_events(kind, n)
            if n and asset in self._known and not self._history:
                h.on_lag(self._receipt - float(rows["ts"].max()))

        p = self.parsers[venue] = FrameParser(venue, self.assets, sink, self.book, self.cfg)
        p.defer_rows = True  # rows go on in batches at flush (every source flushes before the engine reads)
        self.board.attach(venue, FULL, p.books)
        return p

    @staticmethod
    def _conn(p, addr: str) -> tuple[bool, object]:
        """(is REST, the parser's stand-in connection) for a frame's address (see ``push``)."""
        if is_rest(addr):
            return True, p._conn_for(addr)
        # an address as such (demo frames, demo recordings, a recorded id mapped by its "open" line) is passed
        # on; anything else (cryptofeed/hftbacktest ids) means "the websocket"
        return False, p._conn_for(addr if addr.startswith("wss://") else "")

    async def push(self, fr: Frame, addresses: dict[str, str] | None = None, history: bool = False) -> None:
        """Parse one frame: ``push_many`` of one (see there)."""
        await self.push_many((fr,), addresses, history)

    async def push_many(self, frames: Iterable[Frame], addresses: dict[str, str] | None = None,
                        history: bool = False) -> None:
        """Parse frames in order (never raises for a bad frame: the parser counts and drops it). Their rows wait
        in the parsers until ``flush``; book changes are applied at once. After ``YIELD_EVERY_S`` of pushing
        without a pause the loop gets a turn (a source replaying buffered frames never suspends otherwise).

        The hot path of every replay and of the demo, so written for a run of frames: the venue's route (its
        feed's ``parse``, its connection lookup, its health) is looked up when the venue changes, the clock
        read every ``_CHECK_EVERY`` frames, the frame counters added once; the rest inline. Frame by frame
        (``push``) or in runs, the same rows, books and counters.

        ``history``: the frames are history written after the fact (the demo's pre-roll), not a live stream:
        parsed the same, but they do not count toward the venue's lag. A history run hands its rows on before
        every loop turn it gives away, so they are never measured against a live run's receipts. (Only history
        does: where a live run yields depends on the clock, and its flushes must not, or a replay's lag figures
        would differ from run to run.)"""
        self._history = history
        addrs = addresses or self.addresses
        routes = self._routes
        clock = time.perf_counter
        if self._turned:  # the loop had a turn since the slice began (the caller waited): a new slice
            self._new_slice()
        budget = self.YIELD_EVERY_S
        check_every = self._CHECK_EVERY
        venue0 = None
        route = None
        n = 0
        now = self.now
        for fr in frames:
            t, venue, conn, raw = fr
            n += 1
            if t > now:
                now = self.now = t
                if self.first_ts is None:
                    self.first_ts = t
            if venue != venue0:
                route = routes.get(venue)
                if route is None:
                    route = await self._route(venue)
                venue0 = venue
                if route is None:
                    self.skipped_venues[venue] += 1
                    continue
            elif route is None:
                self.skipped_venues[venue] += 1
                continue
            parse, conns, health, p = route
            # a recorded connection id → its address (liqmap "open" lines), then the stand-in for that address
            addr = addrs.get(conn) or conn
            hit = conns.get(addr)
            if hit is None:
                if len(conns) > 1024:  # REST URLs differ per symbol; never grow without bound
                    conns.clear()
                hit = conns[addr] = self._conn(p, addr)
            rest, stand = hit
            health.frames += 1  # Health.on_frame, inline
            if rest:
                health.rest_frames += 1
            if not history:  # a live frame: the venue delivers. History (the demo's pre-roll) is hours old, and
                # as the newest receipt before the live stream's first frame it read every venue "stale" at start
                # (five CRITICAL "venue down" alerts and the bell, the demo's first second)
                last = health.last_frame
                if last is None or t > last:
                    health.last_frame = t
            self._receipt = t
            pending = parse(raw, stand, t)
            if pending is not None:  # a venue whose handler is a coroutine
                await p.finish(pending, raw)
            if not n % check_every and clock() - self._slice_start > budget:
                self.frames += n
                n = 0
                self.loop_yields += 1
                if history:  # its rows measured (not) now, not with the next source's receipts after the turn
                    self._flush_parsers()
                await asyncio.sleep(0)  # (the turn marker runs in it)
                self._history = history
                self._new_slice()
        self.frames += n
        if clock() - self._slice_start > budget:  # a run that ends over budget yields before the caller goes on
            self.loop_yields += 1
            if history:
                self._flush_parsers()
            await asyncio.sleep(0)

    async def _route(self, venue: str):
        """(feed.parse, connection lookup, health, parser) of ``venue``, made and subscribed on its first frame;
        None for a venue with no adapter or not in the market."""
        p = self.parser(venue)
        if p is None:
            return None
        await p.subscribe()
        route = self._routes[venue] = (p.venue_feed.parse, {}, self._health[venue], p)
        return route

    def _new_slice(self) -> None:
        self._turned = False
        self._slice_start = time.perf_counter()
        asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        """Runs when the loop gets a turn: whatever pushed before it was not holding the loop."""
        self._turned = True

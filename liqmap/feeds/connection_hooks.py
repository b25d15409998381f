"""The collector's hooks on every connection and frame: the raw-frame tap, connect and read failures with their
cause, the guard that keeps a bad frame from killing its connection, the row and book sinks with lag, one
watchdog for all websockets, and the loop exception handler that reports cryptofeed tasks that die.

Separate from :mod:`.collector` because these run per frame or per connection event, inside cryptofeed's
machinery (instance attributes on its connections, its classes untouched), while the collector itself decides
which feeds run and when they restart. A mixin of :class:`~liqmap.feeds.collector.Collector`.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from cryptofeed.connection import AsyncConnection, WSAsyncConn
from cryptofeed.exceptions import ExhaustedRetries

from liqmap.core.book import Book

from .feed_plan import Slot
from .health import classify_error

LOG = logging.getLogger("liqmap.feeds")


class ConnectionHooks:
    """Instrumentation, sinks, watchdog and loop exception handler of the collector's connections."""

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

"""``BusPublisher``: what a collector ingests, onto the bus (``liqmap collect --bus URL``).

- rows: every batch the market accepts (``Runtime.row_taps``), gathered per (kind, venue, asset) and sent
  every ``bus.batch_ms`` as one message each — not one message per trade — into the retention stream;
- books: the top ``bus.book_levels`` of each book that changed, every ``bus.book_seconds``, into the books
  stream (newest per subject);
- snapshots: the engine's latest snapshot of each view that changed, every ``bus.snapshot_seconds``, into
  the KV bucket.

Every message carries a ``Nats-Msg-Id`` (this process's origin + a sequence number), so a batch sent again
after a lost ack or a reconnect is dropped by the server's dedup window instead of stored twice.

While the bus is away (or a send fails), row messages go to the on-disk spool (``liqmap.bus.spool``,
``<data dir>/bus-spool``, bounded by ``bus.spool_mb``: oldest dropped first and counted) with their ids.
When the bus is back the spool is sent first, oldest segment first, each segment deleted once every one of
its messages is acked; messages made meanwhile go to the spool's end, so order holds. A collector started
with a spool left by a killed run sends it the same way. Books are not spooled (only the newest of each
matters): they are all sent again when the bus returns.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections import deque
from pathlib import Path

import numpy as np

from liqmap.core.events import VENUES

from .client import pause
from .settings import BusSettings, redact_text
from .spool import DIR_NAME, Spool
from .wire import PREFIX, book_rows, encode_rows, snapshot_key, subject

BOOK_PREFIX = f"{PREFIX}.book."


class BusPublisher:
    def __init__(self, settings: BusSettings, rt, spool_dir: str | Path, origin: str | None = None,
                 warn=None) -> None:
        """``spool_dir``: where messages wait on disk while the bus is away (the collector passes
        ``<data dir>/bus-spool``, under its data-dir lock). ``warn``: one-line warnings (a damaged segment)."""
        self.settings = settings
        self.rt = rt
        self.origin = origin or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._pending: dict[tuple[str, str, str], list[np.ndarray]] = {}
        # messages made since the last send, while the bus is up: (subject, payload, msg id, rows)
        self._buffer: deque[tuple[str, bytes, str, int]] = deque()
        self.spool = Spool(spool_dir, settings.spool_bytes, warn=warn or self._warn)
        self._acked_in_head: tuple[int, set[str]] = (0, set())  # (segment, ids of it acked): not sent twice
        self._book_versions: dict[tuple[str, str], int] = {}
        self._snap_sent: dict[tuple, int] = {}
        self.nc = None
        self.js = None
        self.kv = None
        self.connected = False
        self.closed = False
        self.error = ""
        # counters (the collect status line, the tests, the benchmarks)
        self.sent_msgs = 0
        self.sent_rows = 0
        self.sent_bytes = 0
        self.duplicates = 0  # acks saying the server already had the message (a resend after a lost ack)
        self.already_on_bus = 0  # spooled messages found stored already (lost ack), not sent again
        self.spooled_msgs = 0  # messages written to the spool (the bus was away or a send failed)
        self.resent_msgs = 0  # messages sent from the spool when the bus was back
        self.resent_rows = 0
        self.warnings: list[str] = []
        self.snapshots_sent = 0
        self.disconnects = 0

    # ------------------------------------------------------------------ taps (on the loop, cheap)
    def tap(self, kind: str, asset: str, rows: np.ndarray) -> None:
        """Accepted market rows (may mix venues): gathered until the next batch tick."""
        if not len(rows) or kind not in ("trade", "liq", "oi"):
            return
        vids = rows["venue"]
        first = int(vids[0])
        if (vids == first).all():
            self._pending.setdefault((kind, VENUES[first], asset), []).append(rows)
            return
        for vid in np.unique(vids):
            self._pending.setdefault((kind, VENUES[int(vid)], asset), []).append(rows[vids == vid])

    # ------------------------------------------------------------------ status
    @property
    def buffered(self) -> int:
        """Messages not yet on the bus: in memory (since the last send) and in the spool on disk."""
        return len(self._buffer) + self.spool.msgs

    @property
    def dropped_msgs(self) -> int:
        return self.spool.dropped_msgs

    @property
    def dropped_rows(self) -> int:
        return self.spool.dropped_rows

    def status(self) -> str:
        state = "up" if self.connected else "closed" if self.closed else "DOWN"
        s = (f"bus {self.settings.shown} {state} · {self.sent_msgs:,} msgs {self.sent_rows:,} rows "
             f"{self.sent_bytes / 1e6:,.1f} MB")
        if self.spool.msgs:
            s += (f" · {self.spool.msgs:,} msgs ({self.spool.rows:,} rows, {self.spool.bytes / 1e6:.1f} MB) "
                  "spooled on disk")
        if self.dropped_msgs:
            s += f" · {self.dropped_msgs:,} msgs ({self.dropped_rows:,} rows) dropped: spool full"
        if self.spool.damaged_segments:
            s += f" · {self.spool.damaged_segments} damaged spool segments set aside"
        if self.error and not self.connected:
            s += f" · {self.error}"
        return s

    def _warn(self, line: str) -> None:
        self.warnings.append(line)
        self.error = line

    # ------------------------------------------------------------------ the loop
    async def _on_disconnect(self) -> None:
        if self.connected:
            self.disconnects += 1
        self.connected = False

    async def _on_reconnect(self) -> None:
        self.connected = True
        self.error = ""

    def _on_error(self, line: str) -> None:
        self.error = line

    async def open(self, stop: asyncio.Event | None = None) -> bool:
        """Connect (retrying until ``stop``) and make sure the stream and bucket exist."""
        from .client import connect, connect_until, ensure_bucket, ensure_stream

        self.spool.open()
        if stop is None:
            nc = await connect(self.settings, self._on_disconnect, self._on_reconnect, self._on_error)
        else:
            nc = await connect_until(stop, self.settings, self._on_disconnect, self._on_reconnect,
                                     self._on_error, on_fail=self._on_error)
            if nc is None:
                return False
        self.nc = nc
        js = nc.jetstream()
        while True:  # right after a server (re)start JetStream may not answer yet
            try:
                await ensure_stream(js, self.settings)
                self.kv = await ensure_bucket(js, self.settings)
                break
            except Exception as e:  # noqa: BLE001 - said in the status line, asked again
                self.error = redact_text(f"bus: {type(e).__name__}: {e}")
                if stop is None or stop.is_set():
                    raise
                await asyncio.sleep(0.5)
        self.js = js
        self.connected = nc.is_connected
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Batches every ``bus.batch_ms`` from the start: while the first connection is being made (or the
        bus is away) they go to the spool, so a collector started during an outage loses nothing either."""
        s = self.settings
        self.spool.open()
        opener = asyncio.ensure_future(self.open(stop))
        next_book = next_snap = time.monotonic()
        try:
            while not stop.is_set():
                await pause(stop, s.batch_seconds)
                if opener.done() and not stop.is_set() and self.js is None:
                    # the first connection failed in an unexpected way: say why, and try again
                    why = opener.exception()
                    if why is not None:
                        self.error = redact_text(f"bus: {type(why).__name__}: {why}")
                    opener = asyncio.ensure_future(self.open(stop))
                now = time.monotonic()
                if now >= next_book and self.connected:
                    next_book = now + s.book_seconds
                    self.collect_books()
                await self.send_pending()
                if now >= next_snap and self.connected and self.rt.engine is not None:
                    next_snap = now + s.snapshot_seconds
                    await self.send_snapshots()
        finally:
            if not opener.done():
                opener.cancel()
            await asyncio.gather(opener, return_exceptions=True)
            await self.close()

    async def close(self) -> None:
        """The rows still gathered are sent (the runtime's last flush came before) or spooled, then the
        connection ends. Whatever is not acked stays in the spool for the next start."""
        try:
            if self.connected:
                self.collect_books()
                await self.send_pending()
            else:
                self.take_pending()
        finally:
            self._spool_buffer()  # also when cancelled: nothing gathered is lost
            self.spool.close()
        if self.nc is not None:
            try:
                if self.connected:
                    await self.nc.drain()
                else:
                    await self.nc.close()
            except Exception as e:  # noqa: BLE001 - closing must not raise; the spool keeps what was not sent
                self.error = redact_text(f"closing: {type(e).__name__}: {e}")
        self.nc = None
        self.connected = False
        self.closed = True

    # ------------------------------------------------------------------ what is sent
    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.origin}.{self._seq}"

    def _queue(self, subj: str, payload: bytes, rows: int) -> None:
        self._buffer.append((subj, payload, self._next_id(), rows))

    def _spool_buffer(self) -> None:
        """The in-memory messages to the spool's end (books dropped: all are sent again on return)."""
        if not self._buffer:
            return
        items = [m for m in self._buffer if not m[0].startswith(BOOK_PREFIX)]
        if len(items) < len(self._buffer):
            self._book_versions.clear()
        self._buffer.clear()
        self.spool.append(items)
        self.spooled_msgs += len(items)

    def take_pending(self) -> None:
        """The gathered rows as messages at the buffer's end (one per (kind, venue, asset))."""
        pending, self._pending = self._pending, {}
        for (kind, venue, asset), parts in pending.items():
            rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
            self._queue(subject(kind, venue, asset), encode_rows(rows), len(rows))

    def collect_books(self) -> None:
        """Each book whose version moved since it was last sent, as a snapshot message."""
        board = self.rt.board
        depth = self.settings.book_levels
        for asset in self.rt.assets:
            for venue, book in board.books(asset).items():
                key = (venue, asset)
                if self._book_versions.get(key) == book.version:
                    continue
                self._book_versions[key] = book.version
                rows = book_rows(book, VENUES.index(venue), depth)
                self._queue(subject("book", venue, asset), encode_rows(rows), 0)

    async def _publish(self, items) -> tuple[int, int]:
        """``items`` in order; (messages acked from the start, the first failure's index or -1)."""
        futs = []
        try:
            for subj, payload, msg_id, _ in items:
                # Liqmap-Sent: when it left (viewers and the bus_fanout benchmark read the end-to-end age)
                hdr = {"Nats-Msg-Id": msg_id, "Liqmap-Sent": f"{time.time():.6f}"}
                futs.append(await self.js.publish_async(subj, payload, headers=hdr))
        except Exception as e:  # noqa: BLE001 - the bus went away mid-send: the rest is kept
            self.error = redact_text(f"{type(e).__name__}: {e}")
        done = 0
        if futs:
            results = await asyncio.gather(*(asyncio.wait_for(f, 5.0) for f in futs), return_exceptions=True)
            for (_, payload, _, rows), res in zip(items, results):
                if isinstance(res, BaseException):
                    self.error = redact_text(f"publish: {type(res).__name__}: {res}")
                    break  # this and the later ones are kept, in order; sent again with the same ids
                done += 1
                if getattr(res, "duplicate", False):
                    # the server had it already: its first ack was lost (that is why it was sent again), so
                    # it is on the bus once, and counted here once
                    self.duplicates += 1
                self.sent_msgs += 1
                self.sent_rows += rows
                self.sent_bytes += len(payload)
        return done, (done if done < len(items) else -1)

    async def _not_on_bus(self, records):
        """``records`` without those the stream already holds as the newest message of their subject.

        A message in flight when the bus went away may have been stored with its ack lost; it waits at the
        spool's head. The dedup window drops it when sent again — but only within ``bus.dedup_seconds`` of
        the first send. Past that, this check still catches the usual case (one message per subject in
        flight: the newest on its subject). An exact id match only: nothing is ever skipped on a guess."""
        newest: dict[str, str] = {}
        for subj in {r[0] for r in records}:
            try:
                m = await asyncio.wait_for(self.js.get_last_msg(self.settings.stream, subj), 5.0)
            except Exception:  # noqa: BLE001 - none on that subject, or no answer: the dedup window decides
                continue
            if m.headers:
                newest[subj] = m.headers.get("Nats-Msg-Id", "")
        out = []
        for r in records:
            if newest.get(r[0]) == r[2]:
                self.already_on_bus += 1
                self.sent_msgs += 1  # on the bus once: counted as sent, like an ack
                self.sent_rows += r[3]
                self.sent_bytes += len(r[1])
            else:
                out.append(r)
        return out

    async def _drain_spool(self) -> bool:
        """The spool's segments, oldest first, onto the bus; True when it is empty."""
        first = True
        while self.connected and self.spool.segments:
            got = self.spool.oldest()
            if got is None:
                break
            seg, records = got
            acked = self._acked_in_head[1] if self._acked_in_head[0] == seg.number else set()
            todo = [r for r in records if r[2] not in acked]
            if first:
                first = False
                todo = await self._not_on_bus(todo)
            done, failed = await self._publish(todo)
            sent = todo[:done]
            self.resent_msgs += len(sent)
            self.resent_rows += sum(r[3] for r in sent)
            if failed >= 0:
                self._acked_in_head = (seg.number, acked | {r[2] for r in sent})
                return False
            self._acked_in_head = (0, set())
            self.spool.done(seg)
        return not self.spool.segments

    async def send_pending(self) -> int:
        """Everything waiting, in order: the spool first (the gap after an outage), then the new messages.
        Returns the messages sent from memory this round."""
        self.take_pending()
        if not self.connected or self.js is None:
            self._spool_buffer()
            return 0
        if self.spool.segments:
            self._spool_buffer()  # behind the older ones, so order holds
            await self._drain_spool()
            return 0
        if not self._buffer:
            return 0
        items = list(self._buffer)
        self._buffer.clear()
        done, failed = await self._publish(items)
        if failed >= 0:  # the rest waits on disk, not in memory
            self._buffer.extend(items[done:])
            self._spool_buffer()
        return done

    async def send_snapshots(self) -> int:
        """The engine's changed views into the KV bucket (encoded off the loop)."""
        if not self.connected or self.kv is None:
            return 0
        got = await asyncio.to_thread(self.rt.engine.encoded_snapshots, self._snap_sent)
        n = 0
        for asset, mode, tf, venues, blob in got:
            try:
                await self.kv.put(snapshot_key(asset, mode, tf, venues), blob)
                n += 1
            except Exception as e:  # noqa: BLE001 - a snapshot is a cache: the next round sends a newer one
                self.error = redact_text(f"snapshot: {type(e).__name__}: {e}")
                self._snap_sent.clear()
                break
        self.snapshots_sent += n
        return n

"""``BusSource``: the bus as a frame source (``liqmap --bus URL``, ``liqmap collect --from-bus URL``).

In order, once connected:

1. the KV bucket's snapshots into the engine (shown like snapshots restored from disk: a full map at once);
2. the books stream, newest message per subject (each a venue's book, replacing this viewer's copy);
3. the rows stream from ``now − bus.catchup_hours`` (``deliver_policy`` by start time): the retention
   window replays into the market through ``Ingest.add`` — the same batch sink, market and engine as a local
   source — with the engine holding the assets and ingesting at the history's own times (like the demo's
   pre-roll), then live rows as they come.

Both streams are read by ``StreamReader``s (``liqmap.bus.reader``): pull consumers this source makes, checks
and makes again when they die (a node of a cluster killed, the server restarted), every request with a
timeout. Each message is handled once and in order: this source keeps the stream sequence it has reached, a
new rows consumer starts at the next one, and messages at or below it are dropped.
While the bus is away the map keeps what it has, the status bar's badge says ``BUS DOWN: last map kept``, and the venues
go stale on their own clocks. A venue whose collector stopped (a shard) goes stale the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from liqmap.core.assets import Asset, universe
from liqmap.core.book import Book

from .settings import BusSettings, redact_text, settings as bus_settings
from .wire import PREFIX, ROW_KINDS, WireError, decode_rows, parse_subject

HISTORY_STEP = 60.0  # while catching up, the engine ingests every this many seconds of the history's time


class BusSource:
    label = "BUS"

    def __init__(self, cfg: dict[str, Any], url: str | None = None, assets=None,
                 settings: BusSettings | None = None) -> None:
        self.cfg = cfg
        self.settings = settings or bus_settings(cfg, url)
        names = assets if assets is not None else list(cfg["universe"]["assets"])
        self.assets: dict[str, Asset] = dict(names) if isinstance(names, dict) else universe(list(names))
        self.status = ""
        self.rt = None
        self.nc = None
        self.js = None
        self.connected = False
        self.caught_up = False
        self.last_seq = 0  # rows stream sequence handled so far
        self.readers: list = []  # the rows and the books StreamReader
        self.consumer_replicas: int | None = None  # None: as many as the stream (tests set 1: the fragile case)
        self._books: dict[str, dict[str, Book]] = {}
        self._held: set[str] = set()
        self._touched: set[str] = set()
        self._history_t = 0.0  # newest row time seen while catching up
        self._history_ingested = 0.0
        # counters
        self.messages = 0
        self.rows = 0
        self.bytes = 0
        self.book_messages = 0
        self.snapshots = 0
        self.bad_messages = 0
        self.skipped_duplicates = 0
        self.disconnects = 0
        self.error = ""
        self.closed = False
        self.on_rows = None  # benchmarks: fn(kind, venue, asset, rows) after each message is added
        self.latencies: list | None = None  # benchmarks: set to a list to collect each message's age (s)

    # ------------------------------------------------------------------ FrameSource
    def clock(self) -> float:
        return time.time()

    def tiers(self):
        return None

    def health(self) -> dict | None:
        return None  # the ingest's per-venue records: fed here from each message's receipt

    def on_view(self, asset: str) -> None:
        return None  # every asset's rows arrive anyway; books follow whatever the collectors hold

    def first_data(self, asset: str) -> bool:
        return self.caught_up

    @property
    def badge(self) -> str:
        if self.closed:
            return "closed"
        if self.connected:
            return "" if self.caught_up else "catching up"
        if self.nc is None and not self.messages:
            return f"connecting to {self.settings.shown}"
        return "DOWN: last map kept, reconnecting"

    def attach(self, rt) -> None:
        self.rt = rt
        from liqmap.feeds.ingest import FULL

        for venue in rt.venues:
            self._books[venue] = {}
            rt.board.attach(venue, FULL, self._books[venue])

    # ------------------------------------------------------------------ connection events
    async def _on_disconnect(self) -> None:
        if self.connected:
            self.disconnects += 1
        self.connected = False
        self.status = f"bus down ({self.settings.shown}): showing the last map, reconnecting"

    async def _on_reconnect(self) -> None:
        self.connected = True
        self.status = ""
        for r in self.readers:
            r.poke()  # its consumer may have gone with the server: check now, not after idle_check

    def _on_error(self, line: str) -> None:
        self.error = line

    # ------------------------------------------------------------------ running
    @property
    def resubscribes(self) -> int:
        """Consumers made again after the first ones (a dead consumer found, a failed read)."""
        return sum(max(0, r.created - 1) for r in self.readers)

    async def run(self, rt, stop: asyncio.Event) -> None:
        from nats.js.api import DeliverPolicy

        from .client import connect_until
        from .reader import StreamReader

        self.status = f"connecting to the bus at {self.settings.shown}"

        def failed(why: str) -> None:
            self.status = why

        self.nc = await connect_until(stop, self.settings, self._on_disconnect, self._on_reconnect, self._on_error,
                                      on_fail=failed)
        if self.nc is None:
            return
        self.connected = True
        self.status = ""
        self.js = self.nc.jetstream(timeout=15.0)  # cluster: a stream leader election can take seconds
        s = self.settings
        replicas = self.consumer_replicas or s.replicas
        rows = StreamReader(s.stream, self._rows_start, self._on_rows, replicas=replicas,
                            on_created=self._rows_created, on_problem=failed, label="rows")
        books_start = {"deliver_policy": DeliverPolicy.LAST_PER_SUBJECT, "filter_subject": f"{PREFIX}.book.>"}
        books = StreamReader(s.books_stream, lambda: books_start, self._on_book, replicas=replicas,
                             on_created=self._books_created, on_problem=failed, label="books")
        self.readers = [rows, books]
        flusher = asyncio.ensure_future(self._flush_loop(stop))
        try:
            await self._setup()
            await self._load_snapshots()
            await asyncio.gather(*(r.run(self.js, stop, lambda: self.connected) for r in self.readers))
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self.close()

    def _rows_start(self) -> dict:
        """Where a (new) rows consumer starts: after the last sequence handled, else the catch-up window."""
        from nats.js.api import DeliverPolicy

        if self.last_seq:
            return {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.last_seq + 1}
        start = dt.datetime.fromtimestamp(time.time() - self.settings.catchup_seconds, tz=dt.timezone.utc)
        return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": start}

    def _books_created(self, info) -> None:
        self.status = ""

    def _rows_created(self, info) -> None:
        self.status = ""
        if self.caught_up:
            return
        if int(info.num_pending or 0) == 0:
            self._caught_up()
        elif self.rt.engine is not None and not self._held:
            self._held = set(self.rt.assets)
            self.rt.engine.hold(self._held)

    async def _setup(self) -> None:
        from .client import ensure_stream

        for _ in range(20):  # right after a server start JetStream may need a moment
            try:
                await ensure_stream(self.js, self.settings)
                return
            except Exception as e:  # noqa: BLE001
                self.status = redact_text(f"bus: {type(e).__name__}: {e}")
                await asyncio.sleep(0.25)

    async def _load_snapshots(self) -> None:
        """Every snapshot in the bucket into the engine (decoded off the loop): the first frame at once."""
        rt = self.rt
        if rt.engine is None:
            return
        from liqmap.core import codec
        from liqmap.core.snapshot import Snapshot

        from .client import ensure_bucket

        try:
            kv = await ensure_bucket(self.js, self.settings)
            try:
                keys = await kv.keys()
            except Exception:  # noqa: BLE001 - nats-py raises NoKeysError on an empty bucket
                keys = []
            blobs = []
            for k in keys:
                try:
                    e = await kv.get(k)
                except Exception:  # noqa: BLE001 - deleted meanwhile
                    continue
                if e.value:
                    blobs.append(e.value)
        except Exception as e:  # noqa: BLE001 - no snapshots: the rows fill the map instead
            self.error = redact_text(f"snapshots: {type(e).__name__}: {e}")
            return

        def decode_all():
            out = []
            for b in blobs:
                try:
                    s = codec.decode(b)
                except Exception:  # noqa: BLE001 - a damaged value is skipped, like a damaged file
                    self.bad_messages += 1
                    continue
                if isinstance(s, Snapshot):
                    out.append(s)
            return out

        snaps = await asyncio.to_thread(decode_all)
        self.snapshots = rt.engine.adopt_snapshots(snaps)
        if snaps and rt.on_update is not None:
            rt.on_update()

    # ------------------------------------------------------------------ messages
    def _receipt(self, venue: str, kind: str, rows) -> None:
        h = self.rt.ingest.health_of(venue)
        now = time.time()
        h.on_frame(now, False)
        h.on_events(kind, len(rows))
        if self.caught_up and len(rows) and kind == "trade":
            h.on_lag(now - float(rows["ts"].max()))

    async def _on_rows(self, msg) -> None:
        md = msg.metadata
        seq = md.sequence.stream
        if seq <= self.last_seq:
            self.skipped_duplicates += 1
            return
        self.last_seq = seq
        got = self._decoded(msg)
        if got is None:
            return
        kind, venue, asset, rows = got
        if venue not in self._books:
            return  # a venue this viewer does not show
        self.messages += 1
        self.rows += len(rows)
        self.bytes += len(msg.data)
        self.rt.ingest.add(kind, asset, rows, venue)
        self._receipt(venue, kind, rows)
        if self.latencies is not None and msg.headers:
            sent = msg.headers.get("Liqmap-Sent")
            if sent:
                self.latencies.append(time.time() - float(sent))
        if self.on_rows is not None:
            self.on_rows(kind, venue, asset, rows)
        if not self.caught_up:
            self._touched.add(asset)
            if len(rows):
                self._history_t = max(self._history_t, float(rows["ts"].max()))
            if self._history_t - self._history_ingested >= HISTORY_STEP:
                self._ingest_history()
            if md.num_pending == 0:
                self._caught_up()

    def _decoded(self, msg) -> tuple[str, str, str, object] | None:
        """(kind, venue, asset, rows) of a rows or book message; None (counted in ``bad_messages``) when its
        subject or body is not liqmap's wire format."""
        try:
            kind, venue, asset = parse_subject(msg.subject)
            return kind, venue, asset, decode_rows(kind, msg.data)
        except WireError:
            self.bad_messages += 1
            return None

    async def _on_book(self, msg) -> None:
        got = self._decoded(msg)
        if got is None:
            return
        _, venue, asset, rows = got
        books = self._books.get(venue)
        if books is None or asset not in self.assets:
            return
        book = books.get(asset)
        if book is None:
            book = books[asset] = Book()
        bid = rows["side"] > 0
        book.replace(list(zip(rows["price"][bid].tolist(), rows["qty"][bid].tolist())),
                     list(zip(rows["price"][~bid].tolist(), rows["qty"][~bid].tolist())),
                     ts=float(rows["ts"][0]) if len(rows) else 0.0)
        self.book_messages += 1
        self.bytes += len(msg.data)
        self.rt.ingest.book(asset, venue, book)

    def _ingest_history(self) -> None:
        """The history so far into the engine at its own time (the held assets' models advance with it)."""
        rt = self.rt
        rt.ingest.flush()
        t = self._history_t
        if rt.engine is not None:
            for a in self._touched:
                rt.engine.ingest(a, t)
        self._touched.clear()
        self._history_ingested = t

    def _caught_up(self) -> None:
        if self.caught_up:
            return
        if self._held:
            self._ingest_history()
            for a in self._held:
                self.rt.engine.release(a)
            self._held.clear()
        self.caught_up = True
        self.rt.ingest.flush()
        if self.rt.engine is not None:
            self.rt.screen_history_done(self.rt.screen_asset)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
            if self.caught_up:
                self.rt.ingest.flush()

    async def close(self) -> None:
        self.closed = True
        nc, self.nc = self.nc, None
        self.connected = False
        if nc is not None:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001
                pass

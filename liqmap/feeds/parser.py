"""Drive the real venue feeds without sockets: one raw frame in, normalized rows out.

``FrameParser`` builds the venue's feed class over the offline base (``venues/_bases.py``: the connections
cryptofeed would open, planned without importing cryptofeed), runs each ``connect()`` entry's subscribe
coroutine against a stand-in connection that only records what would have been sent, and then hands every
frame to the feed's own ``message_handler`` — exactly what the websocket reader does live, with the same
venue code. Replay, tests, the demo market and the
benchmarks all go through here, so they exercise the same parsing code as the collectors.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable

import numpy as np

from liqmap.core.assets import Asset
from liqmap.core.book import Book

from .venues import ALL_KINDS, make_feed


class StandInConnection:
    """Looks enough like cryptofeed's AsyncConnection for ``subscribe`` and ``message_handler``."""

    def __init__(self, address: str, subscription: dict | None, uuid: str) -> None:
        self.address = address
        self.subscription = subscription or {}
        self.id = uuid
        self.uuid = uuid
        self.sent: list[str] = []
        self.last_message = None
        self.received = 0

    async def write(self, msg: str) -> None:
        self.sent.append(msg)

    async def close(self) -> None:
        return None

    @property
    def is_open(self) -> bool:
        return True


class FrameParser:
    """Parse raw frames of one venue through its real feed class.

    ``sink(kind, asset, rows)`` receives numpy rows of liqmap.core.events dtypes; ``book_sink(asset, venue,
    book)`` is called after every book change. ``conn`` in ``feed()`` names where a frame came from (a
    websocket or REST URL); REST bodies such as a Binance depth snapshot need it to know their symbol
    (with no URL, the one symbol waiting for a snapshot gets it).

    Light-depth frames (top-N snapshots: Binance ``@depth20``, Bybit ``orderbook.200`` (the full book's topic, for the assets out of focus), OKX ``books5``,
    BitMEX ``orderBook10``, Deribit ``book.{inst}.none.20.100ms``) are recognised by their stream, topic,
    channel or table whatever ``channels`` says, so a recording of the collector's light ``depth`` feeds
    replays through the default parser; ``channels=("depth",)`` (with ``book_assets``) only changes what
    the stand-in subscribe sends.
    """

    def __init__(
        self,
        venue: str,
        assets: dict[str, Asset],
        sink: Callable[[str, str, np.ndarray], None],
        book_sink: Callable[[str, str, Book], None] | None = None,
        cfg: dict | None = None,
        channels: tuple[str, ...] = ALL_KINDS,
        book_assets: list[str] | tuple[str, ...] | None = None,
        live_class: bool = False,
    ) -> None:
        self.venue = venue
        self._sink = sink
        # live_class: the venue class over its cryptofeed class, as a live feed is (comparisons with cryptofeed's
        # own parsers and connection plans); by default over the offline base, with no cryptofeed import
        self.venue_feed = make_feed(venue, assets, channels=channels, sink=self._count_sink, book_sink=book_sink,
                                    cfg=cfg, book_assets=book_assets, offline=not live_class,
                                    **({"retries": 0} if live_class else {}))
        self.venue_feed.live_rest = False
        self.connections: list[StandInConnection] = []
        self._subscribed = False
        self._by_address: dict[str, StandInConnection] = {}
        self._default: StandInConnection | None = None  # the websocket a frame with no address came on
        self.events: Counter = Counter()

    def _count_sink(self, kind: str, asset: str, rows: np.ndarray) -> None:
        self.events[kind] += len(rows)
        self._sink(kind, asset, rows)

    async def subscribe(self) -> None:
        """Run every connection's subscribe coroutine against a stand-in (done on the first frame)."""
        if self._subscribed:
            return
        self._subscribed = True
        for i, (conn, sub, _handler, _auth) in enumerate(self.venue_feed.connect()):
            addr = conn.address if isinstance(conn.address, str) else ",".join(conn.address)
            stand = StandInConnection(addr, getattr(conn, "subscription", None), f"{self.venue}.standin.{i}")
            await sub(stand)
            self.connections.append(stand)
            self._by_address[addr] = stand
        self._default = None

    def _conn_for(self, conn: str):
        if conn:
            hit = self._by_address.get(conn)
            if hit is not None:
                return hit
            for addr, stand in self._by_address.items():
                if conn.startswith(addr) or addr.startswith(conn):
                    return stand
            return StandInConnection(conn, {}, conn)  # a REST URL: carries the symbol
        if self._default is None:
            ws = [c for c in self.connections if c.address.startswith("wss://")]
            self._default = ws[0] if ws else (self.connections[0] if self.connections else StandInConnection("", {}, "none"))
        return self._default

    async def feed(self, raw: str | bytes, receipt_ts: float | None = None, conn: str = "") -> None:
        """Parse one raw frame; never raises (bad frames are counted in ``errors``). Its rows reach the sink
        before this returns, unless ``defer_rows`` (then at ``flush``)."""
        if not self._subscribed:
            await self.subscribe()
        await self.venue_feed.message_handler(raw, self._conn_for(conn), time.time() if receipt_ts is None else receipt_ts)

    def parse(self, raw: str | bytes, receipt_ts: float, conn: str = ""):
        """``feed`` without the await, for a subscribed parser (``subscribed``): None, or the coroutine of a
        venue whose handler is ``async`` (await it through ``finish``). No loop turn is given here."""
        return self.venue_feed.parse(raw, self._conn_for(conn), receipt_ts)

    async def finish(self, pending, raw) -> None:
        await self.venue_feed._finish(pending, raw)

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    @property
    def defer_rows(self) -> bool:
        """True: rows wait for ``flush`` (or ``FLUSH_ROWS`` of one kind and asset) and go to the sink in batches."""
        return self.venue_feed.defer_rows

    @defer_rows.setter
    def defer_rows(self, on: bool) -> None:
        self.venue_feed.defer_rows = bool(on)

    def flush(self) -> None:
        """Hand the rows parsed so far to the sink."""
        self.venue_feed.flush_rows()

    @property
    def errors(self) -> Counter:
        return self.venue_feed.errors

    @property
    def rejected(self) -> Counter:
        """Values refused as implausible, (kind, reason) → count (``liqmap.feeds.plausible``)."""
        return self.venue_feed.plausible.rejected

    @property
    def stats(self) -> Counter:
        """frames, events per kind, and the venue's own counters (filtered, duplicates, ignored, ...)."""
        out = Counter(self.venue_feed.stats)
        out["events"] = sum(self.events.values())
        return out

    @property
    def books(self) -> dict[str, Book]:
        return self.venue_feed.books

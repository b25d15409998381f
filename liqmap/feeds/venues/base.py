"""What every liqmap venue feed shares, mixed in front of a cryptofeed Feed class.

A venue class is ``class BinanceFeed(VenueFeed)`` naming its cryptofeed class (``CRYPTOFEED``), and it is used
two ways (``_bases.py``): live, composed over that cryptofeed class, which keeps the connection machinery
(``connect()``, websockets, REST polls, retries, watchdog) and the symbol map; offline (the demo, replays,
``FrameParser``), composed over ``OfflineFeed``, which plans the same connections without importing cryptofeed
(its import, with aiohttp and requests, was a third of the demo's CPU to its first frame). Every
frame is parsed here, once: orjson straight to rows of floats (``trade_frame`` reads trades from the decoded
dict; cryptofeed 2.4.1's trade parsers built a Decimal ``Trade`` per trade only to be turned back into floats),
liquidations, open interest and the L2 book (a float book instead of Decimal) — one code path that the live
collector and the offline ``FrameParser`` both drive.

Each frame goes through ``parse`` (plain code: ``message_handler`` is cryptofeed's async entry around it,
``Ingest.push`` calls it directly) → the venue's ``_handle`` → ``_emit(kind, asset, row)``; rows wait per
(kind, asset) and go to ``sink(kind, asset, ndarray)`` in one batch, after the plausibility checks: at the end of
the frame, of a slice of back-to-back frames, or (``defer_rows``, an ``Ingest``'s parsers) at the ingest's flush.
L2 books are kept in liqmap's float ``Book`` (``self.books[asset]``) and announced to
``book_sink(asset, venue, book)``. A frame that fails to parse is counted in ``errors[(kind, reason)]``,
logged the first time, and dropped; the handler never raises, because in cryptofeed an exception in the
handler tears the connection down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Callable

import numpy as np
import orjson

from liqmap.core.assets import Asset, VenueMarket
from liqmap.core.book import Book, TooManyLevels
from liqmap.core.events import BUY, KINDS, SELL, VENUE_ID

from ..plausible import Plausibility, has_non_ascii_number, suspicious_text
from .normalize import BASE, CONTRACTS, SeenLRU, to_base

LOG = logging.getLogger("liqmap.feeds")

# cryptofeed's names for the channels and the instrument type (``cryptofeed.defines``), spelled here so that
# parsing never imports cryptofeed; tests/test_startup_imports.py holds them equal to cryptofeed's.
L2_BOOK, LIQUIDATIONS, OPEN_INTEREST, TRADES, PERPETUAL = "l2_book", "liquidations", "open_interest", "trades", "perpetual"


class Resync(Exception):
    """A book lost its sequence: live, the feed reconnects and resubscribes (cryptofeed's
    ``MissingSequenceNumber``, the live class's ``RESYNC``); offline it is only counted."""

# "depth" is the light book (top-N snapshots for assets out of focus, docs/architecture.md §6); on the
# cryptofeed side it rides the same L2_BOOK channel as the full book, so one feed carries one of the two, never both.
KIND_CHANNEL = {"liq": LIQUIDATIONS, "trade": TRADES, "oi": OPEN_INTEREST, "book": L2_BOOK, "depth": L2_BOOK}
ALL_KINDS = ("liq", "trade", "oi", "book")
SUPPORTED_KINDS = ALL_KINDS + ("depth",)
BOOKISH = ("book", "depth")

Sink = Callable[[str, str, np.ndarray], None]
BookSink = Callable[[str, str, Book], None]


# Parsing time shared by every venue's handlers (they interleave under a flood): [start of the current slice
# of back-to-back parsing, 1.0 once the loop had a turn since]. A turn is seen by a marker callback
# (``_turn``), not guessed from gaps between frames. See VenueFeed.YIELD_EVERY_S.
_SLICE = [0.0, 1.0]


def _turn() -> None:
    _SLICE[1] = 1.0


class FrameError(Exception):
    """A frame or record that cannot be parsed; ``kind`` and ``reason`` name the counter."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


def feeds_cfg(cfg: dict | None) -> dict:
    """The ``feeds`` section, falling back to liqmap.config.DEFAULTS for keys a caller left out."""
    from liqmap.config import DEFAULTS

    base = DEFAULTS["feeds"]
    if not cfg:
        got = {}
    elif "feeds" in cfg:  # the whole settings dict
        got = cfg["feeds"]
    else:  # just the feeds section, or a settings dict that has none
        got = {k: v for k, v in cfg.items() if k in base}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in (got or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def _quote_of(symbol: str, vm: VenueMarket) -> str:
    if vm.inverse:
        return "USD"
    for q in ("USDT", "USDC", "USD"):
        if q in symbol.upper():
            return q
    return "USDT"


class VenueFeed:
    """Mixin: put it before the cryptofeed class in the bases.

    A venue module declares everything about its venue on its class, and the registry
    (``liqmap.feeds.venues``) is derived from the modules: ``venue`` (the name), ``VID`` (its id in the
    normalized rows, fixed forever: stored history and recordings carry it; it must match its place in
    ``liqmap.core.venues.TABLE``, where its symbol rule and the names people read are declared), ``ENDPOINTS`` and
    ``CHANNELS`` (the default URLs and wire names, keyed without the venue prefix; ``feeds.endpoints`` /
    ``feeds.channels`` ``<venue>_<name>`` keys override them), ``CCXT_ID`` (contract metadata), and the limits
    (``MAX_LEVELS``, ``MAX_FRAME_BYTES``, ``ARGS_PER_SUBSCRIBE``, ``SUPPORTED_KINDS``).
    """

    venue: str = ""
    VID: int = -1
    ENDPOINTS: dict[str, str] = {}
    CHANNELS: dict[str, str] = {}
    CCXT_ID: str | None = None  # ccxt's id for contract specs and margin ladders (None: none used)
    # Topics per subscribe message the venue accepts (0: every topic in one message).
    ARGS_PER_SUBSCRIBE: int = 0
    # liqmap kind → the CHANNELS key of its wire name (``wire_names``), for venues that subscribe by name.
    KIND_CHANNELS: dict[str, str] = {}
    # What the adapter parses; the collector plans a light ``depth`` feed only where "depth" is listed.
    SUPPORTED_KINDS: tuple[str, ...] = SUPPORTED_KINDS
    # Levels per side one book frame may carry (the venue's documented depth, with room): more is refused
    # and counted as book:too_many_levels, never applied (per-frame cost stays bounded).
    MAX_LEVELS: int = 25_000
    # Bytes one frame may have before it is even decoded (decoding a 5.6 MB frame holds the loop ~0.5 s);
    # the largest real frames are BitMEX orderBookL2 partials (~0.7 MB in the 2021 sample).
    MAX_FRAME_BYTES: int = 8 << 20
    # Under a flood a websocket read returns at once (frames are already buffered), so a reader that never
    # suspends holds the loop for as long as frames keep coming: keys, the UI and the other venues wait.
    # After this much parsing without a pause the handler yields the loop once (0 = never).
    YIELD_EVERY_S: float = 0.02
    # With ``defer_rows`` (an ``Ingest``'s parsers) the rows of many frames go to the sink as one batch:
    # the plausibility pass, the numpy row arrays and the sink's counters cost per call, not per row.
    # The ingest's flush hands them on; this many rows of one (kind, asset) at most wait for it.
    FLUSH_ROWS: int = 1024
    # The venue's cryptofeed class, "module:Class" (the live base, ``_bases.live_class``), and what the
    # offline base needs of it: its ``id`` (each venue class declares cryptofeed's, also the key of cryptofeed
    # recordings) and its channel names (``websocket_channels``), held equal to cryptofeed's by
    # tests/test_startup_imports.py.
    CRYPTOFEED: str = ""
    CF_CHANNELS: dict[str, str] = {}
    RESYNC: type[Exception] = Resync  # raised to make a live feed resync (the live class: cryptofeed's)

    def __init__(
        self,
        assets: dict[str, Asset],
        sink: Sink | None = None,
        book_sink: BookSink | None = None,
        cfg: dict | None = None,
        endpoints: dict[str, str] | None = None,
        channels: tuple[str, ...] | list[str] = ALL_KINDS,
        book_assets: list[str] | tuple[str, ...] | None = None,
        callbacks: dict | None = None,
        **kwargs,
    ) -> None:
        self.fcfg = feeds_cfg(cfg)
        self.vid = VENUE_ID[self.venue]
        self.sink = sink
        self.book_sink = book_sink
        self.errors: Counter = Counter()
        self._stats: Counter = Counter()
        self._frames = 0  # frames parsed and not yet in ``stats`` (an int: a Counter update per frame cost more)
        self._ignored = 0  # frames of streams nobody subscribes, likewise
        self.books: dict[str, Book] = {}
        self._pending: dict[tuple[str, str], list[tuple]] = {}
        self._logged: set = set()
        self._seen_trades = SeenLRU(int(self.fcfg.get("dedup_size", 50_000)))
        self._seen_liqs = SeenLRU(int(self.fcfg.get("dedup_size", 50_000)))
        self._last_px: dict[str, float] = {}  # venue symbol → last mark/trade price, venue units
        self._held_oi: dict[str, tuple] = {}  # OI waiting for a first price (venue symbol → args)
        self.live_rest = True  # False when driven offline: never start REST fetches then
        self.plausible = Plausibility()  # rows and book levels checked before they leave (feeds/plausible.py)
        self._receipt = 0.0
        self.loop_yields = 0
        self.defer_rows = False
        self.last_exchange_ts = 0.0
        self.kinds = tuple(channels)
        unknown = [k for k in self.kinds if k not in self.SUPPORTED_KINDS]
        if unknown:
            raise ValueError(f"{self.venue}: unsupported kinds {unknown} (have {', '.join(self.SUPPORTED_KINDS)})")
        if "book" in self.kinds and "depth" in self.kinds:
            raise ValueError(f"{self.venue}: 'book' and 'depth' share the L2 channel; give them separate feeds")
        self.light = "depth" in self.kinds  # this feed carries top-N snapshots, not the full book

        # venue symbol → (asset name, VenueMarket)
        self.markets: dict[str, tuple[str, VenueMarket]] = {}
        for name, asset in assets.items():
            vm = asset.markets.get(self.venue)
            if vm is not None:
                self.markets[vm.symbol] = (name, vm)
        self.asset_of = {sym: name for sym, (name, _) in self.markets.items()}
        # venue symbol → coins per unit of a trade's amount where that is one fixed factor at the quoted price
        # (a linear contract with no lot multiplier); 0: to_base works it out (inverse, 1000PEPE-style)
        self._coin_scale = {sym: self._simple_scale(vm) for sym, (_, vm) in self.markets.items()}
        self.std_of = {sym: f"{name}-{_quote_of(sym, vm)}-PERP" for sym, (name, vm) in self.markets.items()}

        book_set = set(book_assets) if book_assets is not None else None
        subscription: dict[str, list[str]] = {}
        for kind in self.kinds:
            chan = KIND_CHANNEL[kind]
            syms = [self.std_of[s] for s, (name, _) in self.markets.items()
                    if kind not in BOOKISH or book_set is None or name in book_set]
            if syms:
                subscription[chan] = syms
        self.endpoints = self._endpoints(endpoints)
        # the base: cryptofeed's Feed live, OfflineFeed for parsing (``_bases.py``); both seed the symbol map
        # with ours first, so constructing a feed never makes a REST call
        super().__init__(subscription=subscription or {TRADES: []}, callbacks=callbacks,
                         timeout=int(self.fcfg.get("watchdog_seconds", 30)), **kwargs)
        self.websocket_endpoints = [self.ws_endpoint(*e) for e in self._ws_endpoints()]
        # cryptofeed's per-instance maps must name our symbols our way even if another feed seeded others
        self.exchange_symbol_mapping.update({sym: std for sym, std in self.std_of.items()})
        self.normalized_symbol_mapping.update({std: sym for sym, std in self.std_of.items()})
        # Trades are read by trade_frame; a cryptofeed trade parser still called (none of ours does) reaches
        # _cryptofeed_trade, first in the callback list.
        self.sym_of_std = {std: sym for sym, std in self.std_of.items()}
        user = [cb for cb in self.callbacks[TRADES] if getattr(cb, "callback", cb) is not None]
        self.callbacks[TRADES] = [self._cryptofeed_trade, *user]

    # --- configuration -------------------------------------------------------------------------
    @classmethod
    def configured(cls, section: str, cfg: dict | None) -> dict[str, str]:
        """The venue's ``ENDPOINTS`` or ``CHANNELS`` (``section``: "endpoints" / "channels") with the
        ``feeds.<section>.<venue>_<name>`` settings over them."""
        pre = f"{cls.venue}_"
        out = dict(cls.ENDPOINTS if section == "endpoints" else cls.CHANNELS)
        out.update({k[len(pre):]: v for k, v in (feeds_cfg(cfg).get(section) or {}).items() if k.startswith(pre)})
        return out

    def _endpoints(self, override: dict[str, str] | None) -> dict[str, str]:
        """This venue's endpoint URLs: its declared ones, ``feeds.endpoints`` over them, then overrides."""
        out = self.configured("endpoints", self.fcfg)
        out.update(override or {})
        return out

    def chan(self, name: str) -> str:
        """The wire channel/topic name for ``name``: ``feeds.channels.<venue>_<name>`` or the declared one."""
        got = self.fcfg["channels"].get(f"{self.venue}_{name}")
        return got if got is not None else self.CHANNELS[name]

    def wire_names(self) -> dict[str, str]:
        """liqmap kind → the wire channel name it is subscribed under (``KIND_CHANNELS``)."""
        return {kind: self.chan(name) for kind, name in self.KIND_CHANNELS.items()}

    async def send_chunked(self, conn, args: list, message: Callable[[list], dict]) -> None:
        """Subscribe ``args`` in as few messages as ``ARGS_PER_SUBSCRIBE`` allows; ``message(chunk)`` is
        the venue's request around one chunk. Nothing is sent for no args."""
        n = self.ARGS_PER_SUBSCRIBE or len(args) or 1
        for i in range(0, len(args), n):
            await conn.write(orjson.dumps(message(args[i:i + n])).decode())

    @staticmethod
    def json_object(msg) -> dict:
        """The frame decoded; anything but a JSON object is counted as ``frame:not_an_object``."""
        m = orjson.loads(msg)
        if not isinstance(m, dict):
            raise FrameError("frame", "not_an_object")
        return m

    def light_market(self, symbol):
        """(asset, VenueMarket) of a light-depth snapshot's symbol, or None for a symbol we do not follow
        (counted as filtered); a snapshot naming no symbol is ``depth:no_symbol``."""
        hit = self.markets.get(symbol) if symbol is not None else None
        if hit is None:
            if symbol is None:
                raise FrameError("depth", "no_symbol")
            self.stats["filtered"] += 1
        return hit

    @staticmethod
    def converted_sides(d: dict, convert: Callable[[float, float], tuple], keys=("bids", "asks")) -> list[list]:
        """A snapshot's bid and ask levels as (price, base size) pairs: ``convert(venue_size, venue_price)``
        per ``[price, size, ...]`` level; a malformed level is ``depth:bad_levels`` (the book stays)."""
        try:
            return [[convert(float(lv[1]), float(lv[0]))[:2] for lv in d[key]] for key in keys]
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            raise FrameError("depth", "bad_levels") from None

    def _ws_endpoints(self) -> list[tuple]:
        """The websocket endpoints as (address, subscription limit per connection, options); the base turns
        them into its endpoint objects (``ws_endpoint``)."""
        return [(self.endpoints["ws"], None, {"compression": None})]

    # --- frame entry point ---------------------------------------------------------------------
    async def message_handler(self, msg, conn, timestamp: float) -> None:
        """cryptofeed's entry point (one websocket or REST frame): ``parse`` it, hand its rows on (unless
        ``defer_rows``) and give the loop a turn after ``YIELD_EVERY_S`` of back-to-back parsing."""
        if _SLICE[1]:  # the loop had a turn since the slice began (the readers waited): a new slice starts
            _SLICE[1] = 0.0
            _SLICE[0] = time.perf_counter()
            asyncio.get_running_loop().call_soon(_turn)
        pending = self.parse(msg, conn, timestamp)
        if pending is not None:
            await self._finish(pending, msg)
        if self._pending and not self.defer_rows:
            self._flush()
        if self.YIELD_EVERY_S and time.perf_counter() - _SLICE[0] > self.YIELD_EVERY_S:
            self.loop_yields += 1  # not in stats: it depends on machine speed, the stats must not
            if self._pending:  # rows never wait behind a yield
                self._flush()
            await asyncio.sleep(0)

    def parse(self, msg, conn, timestamp: float):
        """Parse one frame on the spot (no await): its rows wait in ``_pending`` for ``flush_rows`` (or the
        end of ``message_handler``), its book changes are applied and announced. Never raises for a bad frame
        (counted in ``errors``). Returns None, or the coroutine of a venue whose ``_handle`` is still
        ``async`` (the caller awaits it through ``_finish``)."""
        self._frames += 1
        self._receipt = timestamp
        try:
            # the common case in one line: an ASCII text frame under the size cap with no \u escape is clean
            if type(msg) is not str or len(msg) > self.MAX_FRAME_BYTES or not msg.isascii() or "\\u" in msg:
                self._screen(msg)
            pending = self._handle(msg, conn, timestamp)
        except Exception as e:  # noqa: BLE001 - never let one frame kill the connection
            self._drop(e, msg)
            return None
        return pending

    @property
    def stats(self) -> Counter:
        """frames, rows per kind and the venue's own counters (filtered, duplicates, ignored, ...)."""
        st = self._stats
        if self._frames:
            st["frames"] += self._frames
            self._frames = 0
        if self._ignored:
            st["ignored"] += self._ignored
            self._ignored = 0
        return st

    def _screen(self, msg) -> None:
        """Refuse a frame before it is read: over ``MAX_FRAME_BYTES``, or spelling a number in non-ASCII digits."""
        if isinstance(msg, (str, bytes, bytearray)) and len(msg) > self.MAX_FRAME_BYTES:
            raise FrameError("frame", "too_large")
        if suspicious_text(msg) and has_non_ascii_number(orjson.loads(msg)):
            raise FrameError("frame", "non_ascii_number")

    async def _finish(self, pending, msg) -> None:
        try:
            await pending
        except Exception as e:  # noqa: BLE001
            self._drop(e, msg)

    def _drop(self, e: Exception, msg) -> None:
        """Count a frame that failed (by kind and reason); a live resync is re-raised for cryptofeed."""
        if isinstance(e, FrameError):
            self._error(e.kind, e.reason, msg)
        elif isinstance(e, TooManyLevels):
            self._error("depth" if self.light else "book", "too_many_levels", msg)
        elif isinstance(e, self.RESYNC):  # live resync: let cryptofeed reconnect and resubscribe
            if self._pending:  # rows parsed before the gap are good: never lost with it
                self._flush()
            raise e
        else:
            self._error("frame", type(e).__name__, msg)

    def flush_rows(self) -> None:
        """Hand the rows parsed so far to the sink (``defer_rows``: the ingest's flush calls this)."""
        if self._pending:
            self._flush()

    def _handle(self, msg, conn, timestamp: float):
        """Parse one frame (a plain function; an ``async def`` is still accepted and awaited)."""
        raise NotImplementedError

    def _error(self, kind: str, reason: str, msg=None) -> None:
        self.errors[(kind, reason)] += 1
        if (kind, reason) not in self._logged:
            self._logged.add((kind, reason))
            snippet = msg[:200] if isinstance(msg, (str, bytes)) else ""
            LOG.warning("%s: dropped %s frame (%s): %r", self.venue, kind, reason, snippet)

    # --- emission ------------------------------------------------------------------------------
    def _emit(self, kind: str, asset: str, row: tuple) -> None:
        self.last_exchange_ts = row[0]  # every dtype starts with ts: the collector's lag = receipt − this
        key = (kind, asset)
        rows = self._pending.get(key)
        if rows is None:
            self._pending[key] = [row]
        else:
            rows.append(row)
            if len(rows) >= self.FLUSH_ROWS:
                self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        sink = self.sink
        check = self.plausible.tuples
        for (kind, asset), rows in pending.items():
            good = check(kind, asset, rows, self._receipt)
            if not good:
                continue
            self.stats[kind] += len(good)
            if sink is not None:
                sink(kind, asset, np.array(good, dtype=KINDS[kind]))

    def liq(self, asset: str, ts: float, price: float, qty: float, usd: float, side: int, kind: int) -> None:
        self._emit("liq", asset, (ts, price, qty, usd, side, self.vid, kind))

    def trade(self, asset: str, ts: float, price: float, qty: float, usd: float, side: int) -> None:
        self._emit("trade", asset, (ts, price, qty, usd, side, self.vid))

    def market_of(self, symbol):
        """(asset, VenueMarket) for a venue symbol we follow, or None — counting the frame as filtered,
        since every venue pushes symbols outside the configured universe (OKX liquidations, all of them)."""
        hit = self.markets.get(symbol)
        if hit is None:
            self.stats["filtered"] += 1
        return hit

    def note_price(self, symbol: str, px: float) -> None:
        """Remember a venue price for ``symbol``; releases an open-interest sample held for want of one.
        An implausible price (feeds/plausible.py) is counted and forgotten."""
        hit = self.markets.get(symbol)
        if hit is not None:
            mult = hit[1].price_multiplier or 1.0
            if not self.plausible.price_ok(hit[0], px / mult):
                self.plausible.rejected[("price", "implausible")] += 1
                return
        self._last_px[symbol] = px
        if self._held_oi and symbol in self._held_oi:
            args = self._held_oi.pop(symbol)
            self.open_interest(*args)

    def open_interest(self, symbol: str, ts: float, base: float | None, usd: float | None,
                      mark: float | None = None, contracts: float | None = None) -> None:
        """Emit one OI sample; whatever of base/usd is missing is derived from the best known price.

        ``mark`` is a venue price; without one the last mark/trade price is used, and with no price at all
        the sample waits (one per symbol, newest wins) until the first price for that symbol arrives.
        """
        asset, vm = self.markets[symbol]
        px_venue = mark if mark else self._last_px.get(symbol)
        if not px_venue:
            self._held_oi[symbol] = (symbol, ts, base, usd, None, contracts)
            return
        px = px_venue / vm.price_multiplier
        if base is None and contracts is not None:
            if vm.inverse:
                usd = contracts * vm.contract_size
                base = usd / px
            else:
                base = contracts * vm.contract_size * vm.price_multiplier
        if base is None and usd is not None:
            base = usd / px
        if usd is None and base is not None:
            usd = base * px
        if base is None:
            raise FrameError("oi", "no_size")
        self._emit("oi", asset, (ts, base, usd, px, self.vid))

    def subscribed(self, conn) -> dict[str, list[str]]:
        """liqmap kind → venue symbols subscribed on ``conn`` (from cryptofeed's per-connection split)."""
        rev = {}
        for kind in SUPPORTED_KINDS:
            try:
                rev.setdefault(self.std_channel_to_exchange(KIND_CHANNEL[kind]), []).append(kind)
            except Exception:
                continue
        out: dict[str, list[str]] = {}
        for chan, syms in (getattr(conn, "subscription", None) or {}).items():
            for kind in rev.get(chan, ()):
                if kind in self.kinds:
                    out.setdefault(kind, []).extend(s for s in syms if s in self.markets)
        return out

    def inverse_levels(self, levels, contract_size: float) -> list[tuple[float, float]]:
        """USD-contract book levels → (price, coins): n × contract_size / price, level by level."""
        if len(levels) > self.MAX_LEVELS:
            raise TooManyLevels(len(levels))
        out = []
        for lv in levels:
            p = float(lv[0])
            out.append((p, float(lv[1]) * contract_size / p))
        return out

    def book(self, asset: str) -> Book:
        b = self.books.get(asset)
        if b is None:
            b = self.books[asset] = Book()
        b.band = self.plausible.band(asset)  # levels beyond the venue's price band are not applied
        b.max_levels = self.MAX_LEVELS
        return b

    def snapshot_book(self, asset: str, bids, asks, ts: float, mult: float = 1.0, size_scale: float = 1.0,
                      raw: bool = True) -> None:
        """Replace ``asset``'s book with a top-N snapshot (the light ``depth`` kind) and announce it.

        The levels are converted into a scratch book first, so a malformed snapshot raises
        ``FrameError`` (kind "depth" on a light feed, else "book") and leaves the previous snapshot standing instead of half a book.
        ``raw``: venue level lists (``[price, size, ...]``, strings or numbers, see ``Book.replace_raw``);
        otherwise already-converted (price, base size) pairs.
        """
        kind = "depth" if self.light else "book"
        if not isinstance(bids, (list, tuple)) or not isinstance(asks, (list, tuple)):
            raise FrameError(kind, "bad_levels")
        tmp = Book()
        tmp.band = self.plausible.band(asset)
        tmp.max_levels = self.MAX_LEVELS
        try:
            if raw:
                tmp.replace_raw(bids, asks, ts, mult, size_scale)
            else:
                tmp.replace(bids, asks, ts)
        except TooManyLevels:
            raise
        except (TypeError, ValueError, IndexError):
            raise FrameError(kind, "bad_levels") from None
        book = self.book(asset)
        book.rejected += tmp.rejected
        book.bids, book.asks = tmp.bids, tmp.asks
        if ts:
            book.ts = ts
        book.version += 1
        self.stats["book_snapshots"] += 1
        self.book_changed(asset)

    def book_changed(self, asset: str) -> None:
        self._stats["book_frames"] += 1  # (the counter itself: ``stats`` folds the frame counters in, per depth frame)
        b = self.books.get(asset)
        if b is not None and b.rejected:
            self.plausible.rejected[("book", "level_implausible")] += b.rejected
            b.rejected = 0
        if self.book_sink is not None:
            self.book_sink(asset, self.venue, self.books[asset])

    def _simple_scale(self, vm: VenueMarket) -> float:
        if vm.inverse or vm.price_multiplier != 1.0:
            return 0.0
        unit = self.trade_unit(vm)
        return vm.contract_size if unit == CONTRACTS else 1.0 if unit == BASE else 0.0

    def trade_unit(self, vm: VenueMarket) -> str:
        """The unit of a trade amount on this venue (contracts unless a venue says otherwise)."""
        return CONTRACTS

    def trade_frame(self, sym, tid, price_raw, qty_raw, ts: float, side: int) -> None:
        """One trade as the venue sends it (strings or numbers) → a liqmap trade row: filtered, deduplicated on
        (symbol, trade id), normalized, its price kept for open interest. Read straight from the decoded frame:
        cryptofeed's trade parsers built a Decimal ``Trade`` object per trade only for ``_cryptofeed_trade`` to
        turn it back into floats (about a third of a trade frame's cost).

        The hot path of every venue, so written out: the dedup memory's ``add`` and ``_emit`` inline, and the
        price's plausibility is the row's (checked with the batch in ``_flush``; an implausible trade is dropped
        there, and an open-interest row derived from its price fails the same band)."""
        hit = self.markets.get(sym)
        if hit is None:
            self.stats["filtered"] += 1
            return
        seen = self._seen_trades._d
        key = (sym, tid)
        if key in seen:
            self.stats["duplicates"] += 1
            return
        seen[key] = None
        if len(seen) > self._seen_trades.maxlen:
            del seen[next(iter(seen))]
        asset, vm = hit
        p = float(price_raw)
        q = float(qty_raw)
        scale = self._coin_scale.get(sym)
        if scale:  # most contracts: coins = qty × a fixed scale, at the quoted price (to_base, inline)
            lots = q * scale
            px, qty, usd = p, lots, lots * p
        else:
            px, qty, usd = to_base(vm, q, p, self.trade_unit(vm))
        self._last_px[sym] = p
        if self._held_oi and sym in self._held_oi:
            self.note_price(sym, p)
        self.last_exchange_ts = ts
        rows = self._pending.get(("trade", asset))
        if rows is None:
            self._pending[("trade", asset)] = [(ts, px, qty, usd, side, self.vid)]
        else:
            rows.append((ts, px, qty, usd, side, self.vid))
            if len(rows) >= self.FLUSH_ROWS:
                self._flush()

    async def _cryptofeed_trade(self, t, receipt_ts: float) -> None:
        """A cryptofeed ``Trade`` (Decimal amount/price, float-second timestamp) → a liqmap trade row."""
        sym = self.sym_of_std.get(t.symbol)
        hit = self.markets.get(sym) if sym is not None else None
        if hit is None:
            self.stats["filtered"] += 1
            return
        if not self._seen_trades.add((sym, t.id)):
            self.stats["duplicates"] += 1
            return
        asset, vm = hit
        p = float(t.price)
        px, qty, usd = to_base(vm, float(t.amount), p, self.trade_unit(vm))
        self.note_price(sym, p)
        self.trade(asset, float(t.timestamp), px, qty, usd, BUY if t.side == "buy" else SELL)



"""Binance USD-M futures, fixed for the 2026 split of the futures websocket.

cryptofeed 2.4.1 subscribes everything on ``wss://fstream.binance.com/stream`` which went silent for
liquidations and aggTrade on 2026-04-23 (docs/venues.md §2.1, cryptofeed #1128). Here:

- ``/market``: ``!forceOrder@arr`` (or ``<sym>@forceOrder``), ``<sym>@aggTrade``, ``<sym>@markPrice@1s``;
- ``/public``: ``<sym>@depth@100ms``; for the light ``depth`` kind the
  partial book stream ``<sym>@depth20@500ms`` — a top-20 snapshot per push that replaces the book (same
  ``depthUpdate`` payload as the diff stream, told apart by its stream name);
- REST: open interest polled with cryptofeed's ``HTTPPoll``; the depth snapshot fetched once per (re)sync.

The book is rebuilt with the documented futures sequencing: buffer diffs until the REST snapshot, drop
diffs with ``u < lastUpdateId``, the first applied diff must straddle ``lastUpdateId``, and every later
diff's ``pu`` must equal the previous ``u`` — otherwise the book is resynced from a fresh snapshot.
Liquidations use the fill (``ap`` × ``z``) rather than cryptofeed's order price × original quantity.
"""

from __future__ import annotations

import asyncio
import re
import time

import msgspec
import orjson

from liqmap.core.events import ASK, BID, BUY, LONG, PRICE_FILL, PRICE_ORDER, SELL, SHORT

from .base import FrameError, VenueFeed
from .normalize import to_base

_WS_OPTIONS = {"ping_interval": 10, "ping_timeout": None, "max_size": None, "max_queue": None,
               "compression": None}
_SYMBOL_IN_URL = re.compile(r"[?&]symbol=([A-Za-z0-9_]+)")
_PARTIAL_STREAM = re.compile(r"@depth\d+")  # <sym>@depth5|10|20[@speed]: partial book (snapshots)
# Streams (the name after "@", before any "_interval") no liqmap feed subscribes: skipped undecoded.
_UNUSED_STREAMS = frozenset(("bookTicker", "ticker", "miniTicker", "kline", "continuousKline", "compositeIndex",
                             "contractInfo", "assetIndex"))
STREAMS_PER_CONNECTION = 200
BUFFER_LIMIT = 5000  # depth diffs held while waiting for a snapshot


class _DepthDiff(msgspec.Struct):
    """One diff-depth event of a full-book stream, its levels decoded straight to floats (in C: the string →
    float step was two thirds of a depth frame's cost). ``d["u"]`` and ``d.get("E")`` read it as the decoded
    dict is read, so sequencing, buffering and gaps have one code path for both."""

    s: str
    U: int
    u: int
    pu: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    e: str = ""
    E: int = 0

    def __getitem__(self, key: str):
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key, default)


class _DepthFrame(msgspec.Struct):
    data: _DepthDiff


class _TradeFields(msgspec.Struct):
    """What a ``trade`` and an ``aggTrade`` event share: price and quantity straight to floats."""

    e: str
    s: str
    p: float
    q: float
    T: int
    m: bool


class _Trade(_TradeFields):
    """One ``<sym>@trade`` event: the trade id is the dedup key."""

    t: int


class _AggTrade(_TradeFields):
    """One ``<sym>@aggTrade`` event: the aggregate id is the dedup key."""

    a: int


class _TradeFrame(msgspec.Struct):
    data: _Trade


class _AggTradeFrame(msgspec.Struct):
    data: _AggTrade


# Strings are read as numbers where a field is a float (Binance quotes every price and size); any other shape —
# a missing field, a level of three values, a non-number — fails here and the frame goes the generic way,
# which reads it or names what is wrong with it exactly as before.
_DEPTH_DECODER = msgspec.json.Decoder(_DepthFrame, strict=False)
_TRADE_DECODER = msgspec.json.Decoder(_TradeFrame, strict=False)
_AGG_DECODER = msgspec.json.Decoder(_AggTradeFrame, strict=False)
# ``_stream_kind``: 1 a stream no feed subscribes, then the streams read by a typed decoder; 0 anything else
_UNUSED, _FULL_DEPTH, _TRADES, _AGG_TRADES = 1, 2, 3, 4


class _DepthState:
    __slots__ = ("last_u", "synced", "buffer", "requested")

    def __init__(self) -> None:
        self.last_u: int | None = None  # None: no snapshot yet
        self.synced = False  # True once the first diff after the snapshot has been applied
        self.buffer: list[dict] = []
        self.requested = False


class _RestConn:
    """What a REST body arrives on, so the handler can tell which symbol a depth snapshot is for."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.uuid = address
        self.subscription = {}


class BinanceFeed(VenueFeed):
    venue = "binance"
    VID = 0
    CCXT_ID = "binanceusdm"
    ENDPOINTS = {"market": "wss://fstream.binance.com/market",  # forceOrder, aggTrade or trade, markPrice
                 "public": "wss://fstream.binance.com/public",  # depth
                 "rest": "https://fapi.binance.com"}  # open-interest poll, depth snapshot
    CHANNELS = {"liquidations": "forceOrder",  # per symbol; see feeds.binance_all_liquidations
                "trades": "aggTrade",  # or "trade" (also on /market)
                "mark": "markPrice@1s", "depth": "depth@100ms",
                "oi_path": "/fapi/v1/openInterest?symbol={}", "depth_path": "/fapi/v1/depth?symbol={}&limit=1000",
                "light_depth": "depth20@500ms"}  # partial book stream, on /public
    MAX_LEVELS = 5000  # REST snapshots are ≤ 1000 levels; diff frames carry far fewer
    MAX_FRAME_BYTES = 2 << 20  # ~30× its largest documented frame
    CRYPTOFEED = "cryptofeed.exchanges.binance_futures:BinanceFutures"
    id = "BINANCE_FUTURES"
    CF_CHANNELS = {"liquidations": "forceOrder", "trades": "aggTrade", "open_interest": "open_interest", "l2_book": "depth"}

    def __init__(self, *args, **kwargs) -> None:
        self._depth: dict[str, _DepthState] = {}
        self._partial: dict[str, bool] = {}
        self._unused: dict[str, int] = {}  # stream name → its ``_stream_kind`` (``parse``)
        self._typed = 0  # the ``_stream_kind`` of the frame being parsed (``parse``): which typed decoder reads it
        super().__init__(*args, **kwargs)
        ch = self.fcfg["channels"]
        self.rest_endpoints = [self.rest_endpoint(self.endpoints["rest"], "/fapi/v1/exchangeInfo",
                                                  l2book=ch["binance_depth_path"], open_interest=ch["binance_oi_path"])]
        self.open_interest_interval = float(self.fcfg.get("oi_poll_seconds", 10.0))

    def _ws_endpoints(self) -> list:
        return []  # connect() below builds the two routed connections itself

    # --- connections ---------------------------------------------------------------------------
    def streams(self) -> tuple[list[str], list[str]]:
        """(market streams, public streams) for this feed's symbols and channels."""
        ch = self.fcfg["channels"]
        market: list[str] = []
        public: list[str] = []
        syms = [s.lower() for s in self.markets]
        if "liq" in self.kinds:
            if self.fcfg.get("binance_all_liquidations", True):
                market.append("!forceOrder@arr")
            else:
                market += [f"{s}@{ch['binance_liquidations']}" for s in syms]
        if "trade" in self.kinds:
            # @trade and @aggTrade both belong on /market (Binance's base-URL split mapping, checked 2026-12-05):
            # on /public a @trade subscription is accepted and never delivers
            market += [f"{s}@{ch['binance_trades']}" for s in syms]
        if "oi" in self.kinds or "trade" in self.kinds:
            market += [f"{s}@{ch['binance_mark']}" for s in syms]
        if "book" in self.kinds:
            public += [f"{s.lower()}@{ch['binance_depth']}" for s in self._book_symbols()]
        if "depth" in self.kinds:
            public += [f"{s.lower()}@{ch['binance_light_depth']}" for s in self._book_symbols()]
        return market, public

    def _book_symbols(self) -> list[str]:
        subs = self.subscription.get("depth") or []
        return [s for s in subs if s in self.markets]

    def _connect_rest(self):
        if "oi" not in self.kinds or not self.markets:
            return []
        route = self.rest_endpoints[0].route("open_interest")
        addrs = [route.format(s) for s in self.markets]
        return [(self.http_poll(addrs, 60.0, self.open_interest_interval),
                 self.subscribe, self.message_handler, self.authenticate)]

    def connect(self):
        ret = self._connect_rest()
        market, public = self.streams()
        for base, streams in ((self.endpoints["market"], market), (self.endpoints["public"], public)):
            for i in range(0, len(streams), STREAMS_PER_CONNECTION):
                chunk = streams[i:i + STREAMS_PER_CONNECTION]
                addr = base.rstrip("/") + "/stream?streams=" + "/".join(chunk)
                ret.append((self.ws_connection(addr, {"streams": chunk}, _WS_OPTIONS),
                            self.subscribe, self.message_handler, self.authenticate))
        return ret

    async def subscribe(self, conn) -> None:
        # Streams are in the URL; a (re)connect of a depth connection must rebuild its books.
        streams = (getattr(conn, "subscription", None) or {}).get("streams", [])
        for s in streams:
            if "@depth" in s and not _PARTIAL_STREAM.search(s):
                sym = s.split("@", 1)[0].upper()
                self._depth[sym] = _DepthState()

    # --- frames --------------------------------------------------------------------------------
    def parse(self, msg, conn, timestamp: float):
        """A frame of a stream liqmap never subscribes (bookTicker, ticker, kline: third-party recordings carry
        them, the hftbacktest one is 70 % bookTicker) is counted as ignored from its name before anything else
        (it is never decoded, so the screening for too large or non-ASCII frames has nothing to guard); every
        other frame goes through ``VenueFeed.parse``. Stream names are looked up in a memo (one dict probe per
        frame instead of two partitions and a set test)."""
        if type(msg) is str and msg.startswith('{"stream":"'):
            end = msg.find('"', 11, 100)
            name = msg[11:end] if end > 0 else ""
            kind = self._unused.get(name)
            if kind is None:
                kind = self._stream_kind(name)
                if len(self._unused) < 4096:
                    self._unused[name] = kind
            if kind == _UNUSED:
                self._frames += 1
                self._ignored += 1
                return None
            # (an instance whose ``_handle`` was replaced — the older async interface — is always handed it)
            if kind and len(msg) <= self.MAX_FRAME_BYTES and msg.isascii() and "\\u" not in msg \
                    and "_handle" not in self.__dict__:
                # a clean trade or full-depth frame (VenueFeed.parse's screening, passed): read by its typed
                # decoder right here, two call layers (VenueFeed.parse, _handle) fewer on most subscribed frames
                self._receipt = timestamp
                try:
                    done = self._typed_frame(msg, timestamp, kind)
                except Exception as e:  # noqa: BLE001 - as VenueFeed.parse: counted, never raised
                    self._frames += 1
                    self._drop(e, msg)
                    return None
                if done:
                    self._frames += 1
                    return None
                kind = 0  # not the documented shape: the generic way reads it or names what is wrong
            self._typed = kind
        else:
            self._typed = 0
        return VenueFeed.parse(self, msg, conn, timestamp)

    def _stream_kind(self, name: str) -> int:
        """``_UNUSED``: a stream no feed subscribes; ``_FULL_DEPTH``: a full-book diff-depth stream;
        ``_TRADES`` / ``_AGG_TRADES``: ``<sym>@trade`` / ``<sym>@aggTrade``; 0: anything else (read the generic
        way)."""
        stream = name.partition("@")[2].partition("_")[0]
        if stream in _UNUSED_STREAMS:
            return _UNUSED
        if stream == "trade":
            return _TRADES
        if stream == "aggTrade":
            return _AGG_TRADES
        return _FULL_DEPTH if "@depth" in name and not self._is_partial(name) else 0

    def _typed_frame(self, msg, timestamp: float, typed: int) -> bool:
        """Read a trade or full-book depth frame with its typed decoder (JSON to floats in C: the generic
        decode-then-``float()`` was half a trade frame's cost and two thirds of a depth frame's). False when
        the frame is not the documented shape: the generic path reads it, or names what is wrong with it,
        exactly as before."""
        try:
            if typed == _TRADES:
                t = _TRADE_DECODER.decode(msg).data
                if t.e != "trade":
                    return False
                self.trade_frame(t.s, ("t", t.t), t.p, t.q, t.T / 1000.0, SELL if t.m else BUY)
                return True
            if typed == _AGG_TRADES:
                a = _AGG_DECODER.decode(msg).data
                if a.e != "aggTrade":
                    return False
                self.trade_frame(a.s, str(a.a), a.p, a.q, a.T / 1000.0, SELL if a.m else BUY)
                return True
            d = _DEPTH_DECODER.decode(msg).data
        except msgspec.DecodeError:
            return False
        if d.e != "depthUpdate":
            return False
        self._depth_update(d, timestamp)
        return True

    def _handle(self, msg, conn, timestamp: float) -> None:
        if self._typed and self._typed_frame(msg, timestamp, self._typed):
            return
        m = orjson.loads(msg)  # json_object, inline: this runs for every frame
        if type(m) is not dict:
            raise FrameError("frame", "not_an_object")
        stream = m.get("stream")
        d = m.get("data", m) if stream is not None else m
        if not isinstance(d, dict):
            raise FrameError("frame", "not_an_object")
        e = d.get("e")
        # the events in the order a busy stream sends them (bookTicker, trades, depth), so most frames meet
        # one or two comparisons
        if e == "bookTicker":
            self.stats["ignored"] += 1
        elif e == "trade":  # the raw @trade stream: cryptofeed 2.4.1 has no parser for it (``_trade``, inline)
            self.trade_frame(d["s"], ("t", d["t"]), d["p"], d["q"], d["T"] / 1000.0, SELL if d["m"] else BUY)
        elif e == "aggTrade":
            # read here, not through cryptofeed's Decimal Trade (same fields, same dedup key: the aggregate id)
            self.trade_frame(d["s"], str(d["a"]), d["p"], d["q"], d["T"] / 1000.0, SELL if d["m"] else BUY)
        elif e == "depthUpdate" or e is None:
            if (stream is not None and self._is_partial(stream)) or (
                    stream is None and self.light and (e == "depthUpdate" or "bids" in d)):
                self._partial_depth(d, stream, timestamp)
            elif e == "depthUpdate":
                self._depth_update(d, timestamp)
            elif "lastUpdateId" in d:
                self._snapshot(d, conn, timestamp)
            elif "openInterest" in d:
                self._oi(d, timestamp)
            elif "result" in d or "id" in d:
                self.stats["control"] += 1
            else:
                raise FrameError("frame", "unknown_event")
        elif e == "markPriceUpdate":
            sym = d["s"]
            if sym in self.markets:
                self.note_price(sym, float(d["p"]))
        elif e == "forceOrder":
            self._liquidation(d)
        else:  # a valid event we do not use (24hrTicker, kline, ...)
            self.stats["ignored"] += 1

    def _is_partial(self, stream: str) -> bool:
        """``<sym>@depth5|10|20[@speed]``: a partial-book stream (remembered per stream name)."""
        hit = self._partial.get(stream)
        if hit is None:
            hit = _PARTIAL_STREAM.search(stream) is not None
            if len(self._partial) < 4096:
                self._partial[stream] = hit
        return hit

    def _liquidation(self, d: dict) -> None:
        o = d["o"]
        sym = o["s"]
        hit = self.market_of(sym)
        if hit is None:
            return
        asset, vm = hit
        ap = float(o.get("ap") or 0.0)
        z = float(o.get("z") or 0.0)
        if ap > 0 and z > 0:
            price, qty, kind = ap, z, PRICE_FILL
        else:  # not (yet) filled: the order itself, at its limit price
            price, qty, kind = float(o["p"]), float(o["q"]), PRICE_ORDER
        side = o["S"]
        if side not in ("SELL", "BUY"):
            raise FrameError("liq", "bad_side")
        ts = (o.get("T") or d["E"]) / 1000.0
        if not self._seen_liqs.add((sym, o.get("T"), side, o.get("z"), o.get("ap"), o.get("q"))):
            self.stats["duplicates"] += 1
            return
        px, base, usd = to_base(vm, qty, price)
        # The forced order closes the position: a SELL closes a long.
        self.liq(asset, ts, px, base, usd, LONG if side == "SELL" else SHORT, kind)

    def _oi(self, d: dict, timestamp: float) -> None:
        sym = d["symbol"]
        if self.market_of(sym) is None:
            return
        ts = d["time"] / 1000.0 if d.get("time") else timestamp
        self.open_interest(sym, ts, None, None, contracts=float(d["openInterest"]))

    # --- book ----------------------------------------------------------------------------------
    def _partial_depth(self, d: dict, stream: str | None, timestamp: float) -> None:
        """A partial-book push: the venue's top N levels, replacing the book (no sequencing needed).

        USD-M sends it as a ``depthUpdate`` event (``s``, ``E``, ``b``/``a``); the spot-style shape
        (``lastUpdateId``, ``bids``/``asks``, symbol only in the stream name) is read too.
        """
        hit = self.light_market(d.get("s") or (stream.split("@", 1)[0].upper() if stream else None))
        if hit is None:
            return
        asset, vm = hit
        bids = d["b"] if "b" in d else d.get("bids")
        asks = d["a"] if "a" in d else d.get("asks")
        t = d.get("T") or d.get("E")
        self.snapshot_book(asset, bids, asks, t / 1000.0 if t else timestamp, vm.price_multiplier)

    def _depth_update(self, d: dict, timestamp: float) -> None:
        sym = d["s"]
        hit = self.market_of(sym)
        if hit is None:
            return
        st = self._depth.get(sym)
        if st is None:
            st = self._depth[sym] = _DepthState()
        if st.last_u is None:
            if len(st.buffer) >= BUFFER_LIMIT:
                del st.buffer[0]
            st.buffer.append(d)
            self._request_snapshot(sym, st)
            return
        if self._apply_diff(sym, hit, st, d):
            self.book_changed(hit[0])

    def _apply_diff(self, sym: str, hit, st: _DepthState, d: dict) -> bool:
        u = d["u"]
        if u < st.last_u:
            self.stats["depth_stale"] += 1
            return False
        if not st.synced:
            if not d["U"] <= st.last_u <= u:
                return self._gap(sym, st, d)
            st.synced = True
        elif d["pu"] != st.last_u:
            return self._gap(sym, st, d)
        st.last_u = u
        asset, vm = hit
        book = self.book(asset)
        ts = d.get("E", 0) / 1000.0
        mult = vm.price_multiplier
        if mult == 1.0 and type(d) is _DepthDiff:  # levels already floats
            book.apply(BID, d.b, ts)
            book.apply(ASK, d.a, ts)
        else:
            book.apply_raw(BID, d["b"], ts, mult)
            book.apply_raw(ASK, d["a"], ts, mult)
        return True

    def _gap(self, sym: str, st: _DepthState, d: dict) -> bool:
        self._error("book", "sequence_gap")
        st.last_u = None
        st.synced = False
        st.buffer = [d]
        st.requested = False
        self._request_snapshot(sym, st)
        return False

    def _snapshot(self, d: dict, conn, timestamp: float) -> None:
        addr = getattr(conn, "address", "") or ""
        if isinstance(conn, str):
            addr = conn
        hit = _SYMBOL_IN_URL.search(addr)
        if hit:
            sym = hit.group(1).upper()
        else:  # a recording without the URL: the one symbol that is waiting for a snapshot
            waiting = [s for s, st in self._depth.items() if st.last_u is None and st.buffer]
            if len(waiting) != 1:
                raise FrameError("book", "snapshot_symbol_unknown")
            sym = waiting[0]
        mk = self.market_of(sym)
        if mk is None:
            return
        st = self._depth.get(sym)
        if st is None:
            st = self._depth[sym] = _DepthState()
        asset, vm = mk
        book = self.book(asset)
        ts = (d.get("T") or d.get("E") or timestamp * 1000.0) / 1000.0
        book.replace_raw(d["bids"], d["asks"], ts, vm.price_multiplier)
        st.last_u = d["lastUpdateId"]
        st.synced = False
        buffered, st.buffer = st.buffer, []
        st.requested = False
        for diff in buffered:
            if st.last_u is None:  # a gap inside the buffer asked for another snapshot
                st.buffer.append(diff)
                continue
            self._apply_diff(sym, mk, st, diff)
        self.book_changed(asset)

    def _request_snapshot(self, sym: str, st: _DepthState) -> None:
        if st.requested or not self.live_rest:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        st.requested = True
        loop.create_task(self._fetch_snapshot(sym))

    async def _fetch_snapshot(self, sym: str) -> None:
        url = self.rest_endpoints[0].route("l2book").format(sym)
        try:
            body = await self.http_conn.read(url)
        except Exception as e:  # network trouble: the next diff asks again
            self._error("book", f"snapshot_fetch_{type(e).__name__}")
            st = self._depth.get(sym)
            if st is not None:
                st.requested = False
            return
        await self.message_handler(body, _RestConn(url), time.time())

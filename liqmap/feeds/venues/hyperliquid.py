"""Hyperliquid perpetuals (the first perp dex), on the same normalized rows as the other venues.

cryptofeed 2.4.1 has no Hyperliquid feed, so ``cryptofeed_class()`` builds one, written on cryptofeed's ``Feed``
the way its own exchanges are (endpoints, channel map, subscribe, symbol data from ``meta``), and live
``HyperliquidFeed`` is composed over it like every other venue over its cryptofeed class (``_bases.py``); it is
built on first use, so parsing never imports cryptofeed. Every API fact used
here, its source and the date it was checked are in docs/hyperliquid.md; in short:

- ``wss://api.hyperliquid.xyz/ws``, one subscription per (channel, coin):
  ``{"method":"subscribe","subscription":{"type":"trades"|"l2Book"|"activeAssetCtx","coin":COIN}}``;
  data frames are ``{"channel": TYPE, "data": ...}``. 62 coins × 3 channels = 186 subscriptions, under the
  1000 per IP; the collector's flow, book and light-depth feeds are 3 of the 10 connections allowed.
- ``trades``: ``WsTrade[]`` — ``px``/``sz`` decimal strings, ``sz`` in coins, ``time`` ms, ``side`` the
  taker's (``B`` bought, ``A`` sold), ``tid`` unique per (time, coin), ``users`` = [buyer, seller]. There is
  no liquidation flag and no liquidation channel: Hyperliquid's liquidations are not in these rows (the
  Positions layer finds them per wallet). The subscription's first answer repeats recent trades: they are
  real trades with their own times, kept once (deduplicated on (coin, time, tid)).
- ``l2Book``: ``{coin, levels: [bids, asks], time}``, levels ``{px, sz, n}``. Every push is a full snapshot
  of at most 20 levels a side: it replaces the book (``snapshot_book``), whether the feed is the full book of
  an asset in focus or the light depth of one out of focus (the same channel).
- ``activeAssetCtx``: ``{coin, ctx: {markPx, openInterest, funding, ...}}``; values are strings in practice
  though the docs' TypeScript says number — both are read. ``openInterest`` is in coins (inferred: the docs
  do not say; whether it counts one side or both is open, docs/hyperliquid.md §7), emitted as an OI row with
  USD = coins × ``markPx``.
- Coins are liqmap's asset names except the k-coins (kPEPE = 1000 PEPE, ``price_multiplier`` 1000): their
  prices are per 1000 coins and their sizes in lots, converted by ``normalize.to_base`` as for Binance's
  1000PEPEUSDT, so the map's USD is right.
- Not JSON but not malformed: the plain-text ``Websocket connection established.`` line on connect. Acks
  (``subscriptionResponse``) and ``pong`` are control frames; ``{"channel":"error"}`` is counted as a venue
  error. Anything that does not parse is counted and dropped, never raised (``VenueFeed.message_handler``).
- The server drops a connection silent for 60 s: every connection sends ``{"method":"ping"}`` every
  ``PING_SECONDS`` (50, as Hyperliquid's own SDK does).

**The ``users`` hook** (for the Positions layer, issue 12 item 3): every trade that names its two wallets is
handed to ``on_users(coin, users, usd, ts)`` — ``coin`` the Hyperliquid coin (``"kPEPE"``), ``users`` the
``(buyer, seller)`` pair of 0x addresses as sent, ``usd`` the trade's notional in USD, ``ts`` its exchange
time in float seconds. The hook is the feed instance's ``on_users`` attribute if set, else this module's
``on_users``; both are None by default (then nothing is called). A hook that raises is counted in
``stats["users_hook_errors"]`` and never reaches the parser. Trades without ``users`` (older recordings) are
counted in ``stats["trades_without_users"]``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import orjson

from liqmap.core.book import TooManyLevels
from liqmap.core.events import BUY, SELL

from .base import L2_BOOK, OPEN_INTEREST, PERPETUAL, TRADES, FrameError, VenueFeed
from .normalize import BASE, to_base

LOG = logging.getLogger("liqmap.feeds")

# Set by the runtime (the Positions layer) to receive every trade's wallets; see the module docstring.
on_users: Callable[[str, tuple[str, str], float, float], None] | None = None

CONNECTED_TEXT = "Websocket connection established."
PING_SECONDS = 50.0


def _num(x) -> float:
    """A Hyperliquid number: a decimal string (as sent) or a JSON number (as the docs type some)."""
    if isinstance(x, bool) or x is None:
        raise ValueError("not a number")
    return float(x)


CF_ID = "HYPERLIQUID"
CF_CHANNELS = {TRADES: "trades", L2_BOOK: "l2Book", OPEN_INTEREST: "activeAssetCtx"}
_CRYPTOFEED_CLASS: list[type] = []


def subscribe_message(channel: str, coin: str) -> dict:
    return {"method": "subscribe", "subscription": {"type": channel, "coin": coin}}


def cryptofeed_class() -> type:
    """The cryptofeed ``Feed`` cryptofeed 2.4.1 lacks (built once, on the first live feed): Hyperliquid's public
    websocket, one subscription message per (channel, coin). Symbols are the coins of ``meta``
    (``POST /info {"type":"meta"}``)."""
    if _CRYPTOFEED_CLASS:
        return _CRYPTOFEED_CLASS[0]
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.feed import Feed

    class Hyperliquid(Feed):
        id = CF_ID
        websocket_endpoints = [WebsocketEndpoint("wss://api.hyperliquid.xyz/ws", limit=1000)]
        rest_endpoints = [RestEndpoint("https://api.hyperliquid.xyz", routes=Routes("/info"))]
        websocket_channels = dict(CF_CHANNELS)
        request_limit = 20  # 1200 weight per minute per IP; meta weighs 20

        @classmethod
        def _parse_symbol_data(cls, data: dict) -> tuple[dict, dict]:
            """``meta``'s universe → cryptofeed's symbol map (delisted coins left out)."""
            syms: dict[str, str] = {}
            info: dict[str, dict] = {"instrument_type": {}}
            for u in data.get("universe", ()):
                if u.get("isDelisted"):
                    continue
                std = f"{u['name']}-USDC-PERP"
                syms[std] = u["name"]
                info["instrument_type"][std] = PERPETUAL
            return syms, info

    _CRYPTOFEED_CLASS.append(Hyperliquid)
    return Hyperliquid


class HyperliquidFeed(VenueFeed):
    venue = "hyperliquid"
    VID = 5
    CCXT_ID = None  # its margin tables are bundled (liqmap.core.tiers) and readable from ``meta``
    ENDPOINTS = {"ws": "wss://api.hyperliquid.xyz/ws", "info": "https://api.hyperliquid.xyz/info"}
    CHANNELS = {"trades": "trades", "ctx": "activeAssetCtx", "book": "l2Book", "light_depth": "l2Book"}
    KIND_CHANNELS = {"trade": "trades", "oi": "ctx", "book": "book", "depth": "light_depth"}
    # No liquidation channel exists (docs/hyperliquid.md §5): the flow feed carries trades and contexts.
    SUPPORTED_KINDS = ("trade", "oi", "book", "depth")
    MAX_LEVELS = 40  # l2Book sends at most 20 levels a side
    MAX_FRAME_BYTES = 1 << 20  # a 20-level book is ~3 kB, a trades snapshot tens of kB
    MAX_SUBSCRIPTIONS = 1000  # per IP (docs/hyperliquid.md §4)
    CRYPTOFEED = "liqmap.feeds.venues.hyperliquid:cryptofeed_class"
    id = CF_ID
    CF_CHANNELS = CF_CHANNELS

    def __init__(self, *args, **kwargs) -> None:
        self.on_users: Callable[[str, tuple[str, str], float, float], None] | None = None
        self._pingers: set[asyncio.Task] = set()
        super().__init__(*args, **kwargs)

    def _ws_endpoints(self) -> list:
        return [(self.endpoints["ws"], self.MAX_SUBSCRIPTIONS, {"compression": None})]

    # --- subscribe -----------------------------------------------------------------------------
    async def subscribe(self, conn) -> None:
        names = self.wire_names()
        for kind, syms in self.subscribed(conn).items():
            for coin in syms:
                await conn.write(orjson.dumps(subscribe_message(names[kind], coin)).decode())
        if self.live_rest:
            task = asyncio.get_running_loop().create_task(self._ping(conn), name=f"hyperliquid-ping-{conn.uuid}")
            self._pingers.add(task)
            task.add_done_callback(self._pingers.discard)

    async def _ping(self, conn) -> None:
        """``{"method":"ping"}`` every ``PING_SECONDS`` while the connection is open (the server closes one
        it has sent nothing to for 60 s; the answer is a ``pong`` frame). It looks at the connection every
        second, so it ends within a second of the connection's close (no task outlives its feed for long)."""
        try:
            waited = 0.0
            while conn.is_open:
                step = min(1.0, PING_SECONDS)
                await asyncio.sleep(step)
                waited += step
                if waited >= PING_SECONDS and conn.is_open:
                    waited = 0.0
                    await conn.write('{"method":"ping"}')
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a closed connection ends its pinger; cryptofeed reconnects
            return

    # --- frames --------------------------------------------------------------------------------
    def _handle(self, msg, conn, timestamp: float) -> None:
        if isinstance(msg, (bytes, bytearray)):
            msg = bytes(msg).decode("utf-8", "replace")
        if isinstance(msg, str) and msg.startswith(CONNECTED_TEXT[:20]):
            self.stats["control"] += 1
            return
        m = self.json_object(msg)
        ch = m.get("channel")
        data = m.get("data")
        if ch == "trades":
            self._trades(data)
        elif ch == "l2Book":
            self._book(data, timestamp)
        elif ch == "activeAssetCtx":
            self._ctx(data, timestamp)
        elif ch in ("subscriptionResponse", "pong", "post"):
            self.stats["control"] += 1
        elif ch == "error":
            raise FrameError("frame", "venue_error")
        elif isinstance(ch, str):  # bbo, activeSpotAssetCtx, allMids, ... (nothing liqmap subscribes)
            self.stats["ignored"] += 1
        else:
            raise FrameError("frame", "unknown_message")

    def _trades(self, rows) -> None:
        if not isinstance(rows, list):
            raise FrameError("trade", "no_data")
        hook = self.on_users if self.on_users is not None else on_users
        for r in rows:
            try:
                coin = r["coin"]
                hit = self.markets.get(coin)
                if hit is None:
                    self.stats["filtered"] += 1
                    continue
                px, sz, t, side = _num(r["px"]), _num(r["sz"]), _num(r["time"]), r["side"]
                key = (coin, r["time"], r.get("tid", r.get("hash")))
            except (KeyError, TypeError, ValueError):
                self._error("trade", "bad_record")
                continue
            if side not in ("B", "A"):
                self._error("trade", "bad_side")
                continue
            if not (px > 0 and sz > 0):
                self._error("trade", "bad_record")
                continue
            if not self._seen_trades.add(key):
                self.stats["duplicates"] += 1
                continue
            asset, vm = hit
            price, base, usd = to_base(vm, sz, px, BASE)
            ts = t / 1000.0
            self.note_price(coin, px)
            self.trade(asset, ts, price, base, usd, BUY if side == "B" else SELL)
            users = r.get("users")
            if isinstance(users, (list, tuple)) and len(users) == 2 and all(isinstance(u, str) for u in users):
                if hook is not None:
                    try:
                        hook(coin, (users[0], users[1]), usd, ts)
                    except Exception:  # noqa: BLE001 - the hook's failure is the hook's, never the feed's
                        self.stats["users_hook_errors"] += 1
            else:
                self.stats["trades_without_users"] += 1

    def _book(self, d, timestamp: float) -> None:
        kind = "depth" if self.light else "book"
        if not isinstance(d, dict):
            raise FrameError(kind, "no_data")
        hit = self.market_of(d.get("coin"))
        if hit is None:
            return
        asset, vm = hit
        levels = d.get("levels")
        if not isinstance(levels, list) or len(levels) != 2:
            raise FrameError(kind, "bad_levels")
        if any(isinstance(side, list) and len(side) > self.MAX_LEVELS for side in levels):
            raise TooManyLevels(max(len(s) for s in levels))
        mult = vm.price_multiplier or 1.0
        try:
            # (price per coin, coins): a kPEPE level is px per 1000 PEPE and sz in 1000s. float() takes the
            # strings and the numbers alike (a bool or null level is refused by the book's checks or here).
            if mult == 1.0:
                sides = [[(float(lv["px"]), float(lv["sz"])) for lv in side] for side in levels]
            else:
                sides = [[(float(lv["px"]) / mult, float(lv["sz"]) * mult) for lv in side] for side in levels]
        except (KeyError, TypeError, ValueError):
            raise FrameError(kind, "bad_levels") from None
        ts = _num(d["time"]) / 1000.0 if d.get("time") is not None else timestamp
        self.snapshot_book(asset, sides[0], sides[1], ts, raw=False)

    def _ctx(self, d, timestamp: float) -> None:
        if not isinstance(d, dict) or not isinstance(d.get("ctx"), dict):
            raise FrameError("oi", "no_data")
        coin = d.get("coin")
        if self.market_of(coin) is None:
            return
        ctx = d["ctx"]
        try:
            mark = _num(ctx["markPx"])
            oi = _num(ctx["openInterest"])
        except (KeyError, TypeError, ValueError):
            raise FrameError("oi", "bad_record") from None
        if not (mark > 0) or oi < 0:
            raise FrameError("oi", "bad_record")
        self.note_price(coin, mark)
        # No time in the context: the receipt time stands for it. Coins × mark = USD (k-coins: lots).
        self.open_interest(coin, timestamp, None, None, mark=mark, contracts=oi)


def info_request(kind: str = "meta", **fields) -> bytes:
    """The body of a ``POST /info`` request (``{"type": "meta"}``, ``{"type": "clearinghouseState",
    "user": ...}``)."""
    return orjson.dumps({"type": kind, **fields})


def tables_from_meta(meta: dict) -> dict:
    """``meta``'s margin tables per coin: {coin: TierTable} (``liqmap.core.tiers.hyperliquid_table``). A coin's
    ``marginTableId`` names one of ``marginTables``; ids below 50 without an entry are one tier at that
    leverage; a coin without an id is one tier at its ``maxLeverage``. Delisted coins are left out."""
    from liqmap.core.tiers import hyperliquid_table

    tables: dict[int, list] = {}
    for entry in meta.get("marginTables") or ():
        tid, body = entry
        tables[int(tid)] = [(float(t["lowerBound"]), float(t["maxLeverage"])) for t in body["marginTiers"]]
    out = {}
    for u in meta.get("universe") or ():
        if u.get("isDelisted"):
            continue
        tid = u.get("marginTableId")
        if tid is not None and int(tid) in tables:
            tiers, name = tables[int(tid)], f"hyperliquid:{tid}"
        elif tid is not None and int(tid) < 50:
            tiers, name = [(0.0, float(tid))], f"hyperliquid:{tid}"
        else:
            tiers, name = [(0.0, float(u["maxLeverage"]))], f"hyperliquid:{u['name']}"
        out[u["name"]] = hyperliquid_table(tiers, name=name)
    return out

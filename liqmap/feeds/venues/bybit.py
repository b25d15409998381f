"""Bybit v5 linear (and inverse) perpetuals.

Fixes over cryptofeed 2.4.1 (docs/venues.md §2.2, §3.1): liquidations come from ``allLiquidation.{symbol}``
(a *list* of events, every liquidation, pushed every 500 ms) instead of the deprecated one-per-second
``liquidation.{symbol}``; Bybit's side is the *position* side (``Buy`` = a long was liquidated, cryptofeed
#985) and its price is the bankruptcy price; timestamps are float seconds, not int milliseconds; ticker
deltas (which omit unchanged fields) are merged into the cached snapshot, and a delta before any snapshot
is counted instead of raising KeyError. The legacy ``liquidation`` payloads (v5 object, v2 list) are still
read so old recordings replay.

Light depth (the ``depth`` kind, assets out of focus): ``feeds.channels.bybit_light_depth``, by default
``orderbook.200.{symbol}``. Bybit v5 pushes linear books at 1 level / 10 ms, 50 / 20 ms, 200 / 100 ms and
1000 / 200 ms (bybit-exchange.github.io/docs/v5/websocket/public/orderbook); ``orderbook.50`` meant up to 50
frames/s per asset across every asset out of focus, 200 levels every 100 ms is a fifth of that and still
shows the walls. Every depth is a snapshot, then deltas (size "0" deletes a level, an unknown price inserts
it, a known one is replaced), parsed by the same book code as the full book; a new snapshot (e.g. the
``u=1`` one after a service restart) resets the book. On a light feed, errors count under kind "depth".
"""

from __future__ import annotations

from liqmap.core.events import ASK, BID, BUY, LONG, PRICE_BANKRUPTCY, SELL, SHORT

from .base import FrameError, VenueFeed
from .normalize import to_base

OI_FIELDS = frozenset(("openInterest", "singleOpenInterest"))


def one_sided_oi(state: dict) -> tuple[float | None, float | None]:
    """(contracts, value) of one side of the book of positions from a merged ticker.

    Bybit's ticker ``openInterest`` / ``openInterestValue`` count both sides (every long and its short),
    twice what Binance, OKX and Deribit report; Bybit moved its own displays to one-sided counting on
    2026-06-11 and added ``singleOpenInterest`` / ``singleOpenInterestValue`` to the API for it. Those are
    read where present; a frame without them (recordings from before) has its two-sided figures halved.
    """
    single = state.get("singleOpenInterest")
    if single not in (None, ""):
        sv = state.get("singleOpenInterestValue")
        return float(single), (float(sv) if sv not in (None, "") else None)
    both = state.get("openInterest")
    if both in (None, ""):
        return None, None
    bv = state.get("openInterestValue")
    return float(both) / 2.0, (float(bv) / 2.0 if bv not in (None, "") else None)


class BybitFeed(VenueFeed):
    venue = "bybit"
    VID = 1
    CCXT_ID = "bybit"
    ENDPOINTS = {"ws": "wss://stream.bybit.com/v5/public/linear",
                 "rest": "https://api.bybit.com"}  # the live start's back-fill (feeds/backfill/bybit.py)
    CHANNELS = {"liquidations": "allLiquidation", "trades": "publicTrade", "tickers": "tickers",
                "book": "orderbook.200", "light_depth": "orderbook.200"}  # snapshot then deltas
    KIND_CHANNELS = {"liq": "liquidations", "trade": "trades", "oi": "tickers", "book": "book",
                     "depth": "light_depth"}
    ARGS_PER_SUBSCRIBE = 10
    MAX_LEVELS = 1000  # the deepest orderbook topic (orderbook.1000)
    MAX_FRAME_BYTES = 2 << 20  # ~30× its largest documented frame
    CRYPTOFEED = "cryptofeed.exchanges.bybit:Bybit"
    id = "BYBIT"
    CF_CHANNELS = {"liquidations": "liquidation", "trades": "publicTrade", "open_interest": "open_interest", "l2_book": ""}

    def __init__(self, *args, **kwargs) -> None:
        self._tickers: dict[str, dict] = {}
        self._book_ready: set[str] = set()
        super().__init__(*args, **kwargs)

    async def subscribe(self, conn) -> None:
        topics: list[str] = []
        by_kind = self.subscribed(conn)
        names = self.wire_names()
        for kind, syms in by_kind.items():
            topics += [f"{names[kind]}.{s}" for s in syms]
            if kind in ("book", "depth"):
                self._book_ready.difference_update(syms)
        self._tickers = {s: v for s, v in self._tickers.items() if s not in by_kind.get("oi", ())}
        await self.send_chunked(conn, topics, lambda chunk: {"op": "subscribe", "args": chunk})

    def _handle(self, msg, conn, timestamp: float) -> None:
        m = self.json_object(msg)
        topic = m.get("topic")
        if topic is None:
            if m.get("success") is False or m.get("retCode"):
                raise FrameError("frame", "venue_error")
            if "success" in m or "op" in m:
                self.stats["control"] += 1
                return
            raise FrameError("frame", "unknown_message")
        head = topic.split(".", 1)[0]
        if head == self.chan("liquidations") or head in ("allLiquidation", "liquidation"):
            self._liquidations(m, timestamp)
        elif head == self.chan("trades") or head == "publicTrade":
            if topic.rsplit(".", 1)[-1] in self.markets:
                self._trades(m["data"])
            else:
                self.stats["filtered"] += 1
        elif head == self.chan("tickers") or head == "tickers":
            self._ticker(m, timestamp)
        elif head == "orderbook":
            self._book(m, timestamp)
        else:  # pre-v5 topics (trade., orderBookL2_25., instrument_info.) and anything new
            self.stats["ignored"] += 1

    def _trades(self, data) -> None:
        """publicTrade rows, read as cryptofeed 2.4.1's parser reads them (a non-list ``data`` is ignored as
        there) but without its Decimal Trade objects."""
        if not isinstance(data, list):
            return
        trade = self.trade_frame
        for t in data:
            ts = t["T"]
            if isinstance(ts, str):
                ts = int(ts)
            trade(t["s"], t["i"], t["p"], t["v"], ts / 1000.0, BUY if t["S"] == "Buy" else SELL)

    def _liquidations(self, m: dict, timestamp: float) -> None:
        data = m["data"]
        for r in data if isinstance(data, list) else (data,):
            try:
                sym = r.get("s") or r["symbol"]
                hit = self.market_of(sym)
                if hit is None:
                    continue
                side = r.get("S") or r["side"]
                qty_raw = r.get("v") or r.get("size") or r["qty"]
                price_raw = r.get("p") or r["price"]
                t = r.get("T") or r.get("updatedTime") or r.get("time") or m.get("ts")
                qty, price = float(qty_raw), float(price_raw)
            except (KeyError, TypeError, ValueError):
                self._error("liq", "bad_record")
                continue
            if side not in ("Buy", "Sell"):
                self._error("liq", "bad_side")
                continue
            ts = float(t) / 1000.0 if t else timestamp
            if not self._seen_liqs.add((sym, t, side, qty_raw, price_raw)):
                self.stats["duplicates"] += 1
                continue
            asset, vm = hit
            px, base, usd = to_base(vm, qty, price)
            # Bybit reports the position side: Buy = a long position was liquidated.
            self.liq(asset, ts, px, base, usd, LONG if side == "Buy" else SHORT, PRICE_BANKRUPTCY)

    def _ticker(self, m: dict, timestamp: float) -> None:
        upd = m["data"]
        sym = upd["symbol"]
        if self.market_of(sym) is None:
            return
        if m.get("type") == "snapshot":
            state = self._tickers[sym] = dict(upd)
        else:
            state = self._tickers.get(sym)
            if state is None:
                raise FrameError("oi", "delta_before_snapshot")
            state.update(upd)
        mark = state.get("markPrice")
        if mark:
            self.note_price(sym, float(mark))
        if not OI_FIELDS.intersection(upd):
            return
        _, vm = self.markets[sym]
        ts = float(m["ts"]) / 1000.0 if m.get("ts") else timestamp
        contracts, value = one_sided_oi(state)
        if contracts is None:
            raise FrameError("oi", "no_size")
        # openInterestValue is USD on linear contracts but coin on inverse ones.
        usd = value if (value and not vm.inverse) else None
        self.open_interest(sym, ts, None, usd, float(mark) if mark else None, contracts=contracts)

    def _book(self, m: dict, timestamp: float) -> None:
        d = m["data"]
        sym = d["s"]
        hit = self.market_of(sym)
        if hit is None:
            return
        asset, vm = hit
        ts = float(m["ts"]) / 1000.0 if m.get("ts") else timestamp
        book = self.book(asset)
        bids, asks = d["b"], d["a"]
        mult, scale = vm.price_multiplier, vm.contract_size
        if vm.inverse:  # BTCUSD & co: sizes are USD contracts
            bids, asks = self.inverse_levels(bids, scale), self.inverse_levels(asks, scale)
            scale = 1.0
        if m.get("type") == "snapshot":  # replaces the book; a malformed one leaves the last standing
            self.snapshot_book(asset, bids, asks, ts, mult, scale)
            self._book_ready.add(sym)
            return
        if sym not in self._book_ready:
            raise FrameError("depth" if self.light else "book", "delta_before_snapshot")
        book.apply_raw(BID, bids, ts, mult, scale)
        book.apply_raw(ASK, asks, ts, mult, scale)
        self.book_changed(asset)

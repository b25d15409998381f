"""BitMEX perpetuals.

Fixes over cryptofeed 2.4.1 (docs/venues.md §2.4, §3.1): the ``liquidation`` table is a table of *open*
liquidation orders — ``insert`` places one at the bankruptcy price for the full size, ``update`` shrinks
``leavesQty`` as it fills, ``delete`` removes it. cryptofeed emits only the insert (size = everything, no
timestamp). Here the filled part is emitted when it fills: each shrink of ``leavesQty`` emits the
difference, and a delete emits whatever was still open (BitMEX removes a liquidation order once the
engine has closed it). Rows carry no time, so the receipt time is used. ``orderBookL2`` update/delete
rows may lack ``price``, so an id → price map is kept from the partial/insert rows. Sizes are contracts
(USD for XBTUSD), converted to coins at the row's price.

Light depth (the ``depth`` kind, assets out of focus): ``orderBook10:{symbol}`` — every push (``partial``
or ``update``) is one row per symbol holding the top 10 ``bids``/``asks`` as ``[price, size]``, which
replaces the book; sizes are contracts, converted level by level like ``orderBookL2``.
"""

from __future__ import annotations

from datetime import datetime

from liqmap.core.events import ASK, BID, BUY, LONG, PRICE_ORDER, SELL, SHORT

from .base import FrameError, VenueFeed
from .normalize import SeenLRU, to_base



def _iso(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class BitmexFeed(VenueFeed):
    venue = "bitmex"
    VID = 3
    CCXT_ID = None  # ccxt removed its bitmex class (4.5.84); the risk limit comes from the venue's REST
    ENDPOINTS = {"ws": "wss://ws.bitmex.com/realtime"}
    CHANNELS = {"liquidations": "liquidation", "trades": "trade", "oi": "instrument", "book": "orderBookL2",
                "light_depth": "orderBook10"}  # top-10 snapshot per push
    KIND_CHANNELS = {"liq": "liquidations", "trade": "trades", "oi": "oi", "book": "book", "depth": "light_depth"}
    ARGS_PER_SUBSCRIBE = 10
    CRYPTOFEED = "cryptofeed.exchanges.bitmex:Bitmex"
    id = "BITMEX"
    CF_CHANNELS = {"liquidations": "liquidation", "trades": "trade", "open_interest": "instrument", "l2_book": "orderBookL2"}

    def __init__(self, *args, **kwargs) -> None:
        self._liq_open: dict[str, list] = {}  # orderID → [symbol, side, price, leavesQty]
        self._liq_done = SeenLRU(20_000)
        self._level_price: dict[int, float] = {}  # orderBookL2 id → price
        super().__init__(*args, **kwargs)

    async def subscribe(self, conn) -> None:
        reset = getattr(super(), "_reset", None)  # cryptofeed's own book state (the live class; unused here)
        if reset is not None:
            reset()
        names = self.wire_names()
        args = [f"{names[k]}:{s}" for k, syms in self.subscribed(conn).items() for s in syms]
        await self.send_chunked(conn, args, lambda chunk: {"op": "subscribe", "args": chunk})

    def _handle(self, msg, conn, timestamp: float) -> None:
        m = self.json_object(msg)
        table = m.get("table")
        if table is None:
            if "error" in m or m.get("success") is False:
                raise FrameError("frame", "venue_error")
            if "info" in m or "subscribe" in m or "request" in m:
                self.stats["control"] += 1
                return
            raise FrameError("frame", "unknown_message")
        action = m.get("action")
        if table == "liquidation":
            self._liquidation(action, m["data"], timestamp)
        elif table == "trade":
            self._trades(m["data"])
        elif table == "instrument":
            self._instrument(m["data"], timestamp)
        elif table == self.chan("light_depth") or table == "orderBook10":
            self._book10(m.get("data"), timestamp)
        elif table.startswith("orderBookL2"):
            self._book(action, m, timestamp)
        elif table == "quote":
            for r in m["data"]:
                if r.get("symbol") in self.markets and r.get("bidPrice") and r.get("askPrice"):
                    self.note_price(r["symbol"], (r["bidPrice"] + r["askPrice"]) / 2.0)
        else:
            self.stats["ignored"] += 1

    # --- liquidations --------------------------------------------------------------------------
    def _liquidation(self, action: str, rows: list, timestamp: float) -> None:
        for r in rows:
            oid = r.get("orderID")
            if not oid:
                self._error("liq", "no_order_id")
                continue
            if action in ("insert", "partial"):
                if oid in self._liq_open or oid in self._liq_done:
                    self.stats["duplicates"] += 1
                    continue
                try:
                    self._liq_open[oid] = [r["symbol"], r["side"], float(r["price"]), float(r["leavesQty"])]
                except (KeyError, TypeError, ValueError):
                    self._error("liq", "bad_record")
            elif action == "update":
                o = self._liq_open.get(oid)
                if o is None:
                    self._error("liq", "update_unknown_order")
                    continue
                if r.get("price"):
                    o[2] = float(r["price"])
                if "leavesQty" in r:
                    left = float(r["leavesQty"])
                    if left < o[3]:
                        self._emit_liq(o, o[3] - left, timestamp)
                    o[3] = left
            elif action == "delete":
                o = self._liq_open.pop(oid, None)
                self._liq_done.add(oid)
                if o is not None and o[3] > 0:
                    self._emit_liq(o, o[3], timestamp)

    def _emit_liq(self, o: list, qty: float, timestamp: float) -> None:
        sym, side, price = o[0], o[1], o[2]
        hit = self.market_of(sym)
        if hit is None:
            return
        asset, vm = hit
        px, base, usd = to_base(vm, qty, price)
        # The liquidation order's side: a Buy closes a short.
        self.liq(asset, timestamp, px, base, usd, SHORT if side == "Buy" else LONG, PRICE_ORDER)

    # --- trades / instrument -------------------------------------------------------------------
    def _trades(self, rows: list) -> None:
        for r in rows:
            sym = r["symbol"]
            hit = self.market_of(sym)
            if hit is None:
                continue
            if not self._seen_trades.add(r["trdMatchID"]):
                self.stats["duplicates"] += 1
                continue
            asset, vm = hit
            p = float(r["price"])
            if r.get("homeNotional") and r.get("foreignNotional"):
                qty, usd, px = float(r["homeNotional"]), float(r["foreignNotional"]), p
            else:
                px, qty, usd = to_base(vm, float(r["size"]), p)
            self.note_price(sym, p)
            self.trade(asset, _iso(r["timestamp"]), px, qty, usd, BUY if r["side"] == "Buy" else SELL)

    def _instrument(self, rows: list, timestamp: float) -> None:
        for r in rows:
            sym = r.get("symbol")
            if self.market_of(sym) is None:
                continue
            px = r.get("markPrice") or r.get("lastPrice")
            if px:
                self.note_price(sym, float(px))
            if r.get("openInterest") is None:
                continue
            ts = _iso(r["timestamp"]) if r.get("timestamp") else timestamp
            self.open_interest(sym, ts, None, None, contracts=float(r["openInterest"]))

    # --- book ----------------------------------------------------------------------------------
    def _book10(self, rows, timestamp: float) -> None:
        """``orderBook10`` rows: each is a whole top-10 book for its symbol; it replaces the book."""
        if not isinstance(rows, list):
            raise FrameError("depth", "no_data")
        for r in rows:
            hit = self.light_market(r.get("symbol") if isinstance(r, dict) else None)
            if hit is None:
                continue
            asset, vm = hit
            sides = self.converted_sides(r, lambda size, price, vm=vm: to_base(vm, size, price))
            ts = _iso(r["timestamp"]) if r.get("timestamp") else timestamp
            self.snapshot_book(asset, sides[0], sides[1], ts, raw=False)

    def _book(self, action: str, m: dict, timestamp: float) -> None:
        rows = m["data"]
        touched: set[str] = set()
        if action == "partial":
            syms = {r["symbol"] for r in rows}
            flt = (m.get("filter") or {}).get("symbol")
            if flt:
                syms.add(flt)
            for s in syms:
                hit = self.markets.get(s)
                if hit is not None:
                    self.book(hit[0]).replace((), ())
                    touched.add(hit[0])
        prices = self._level_price
        for r in rows:
            hit = self.markets.get(r["symbol"])
            if hit is None:
                continue
            asset, vm = hit
            lid = r["id"]
            price = r.get("price")
            if price is None:
                price = prices.get(lid)
                if price is None:
                    self._error("book", "unknown_level_id")
                    continue
            else:
                prices[lid] = price
            side = BID if r["side"] == "Buy" else ASK
            if action == "delete":
                size = 0.0
                prices.pop(lid, None)
            else:
                size = float(r["size"])
            px, qty, _ = to_base(vm, size, float(price)) if size else (float(price) / vm.price_multiplier, 0.0, 0.0)
            self.book(asset).apply(side, ((px, qty),), _iso(r["timestamp"]) if r.get("timestamp") else timestamp)
            touched.add(asset)
        for asset in touched:
            self.book_changed(asset)

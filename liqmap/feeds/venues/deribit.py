"""Deribit perpetuals over the public ``100ms`` channels.

cryptofeed 2.4.1 maps trades, ticker and book to ``raw`` channels that need API keys (error 13778 without
them; docs/venues.md §2.5, §3.1). Here the public ``trades.{inst}.100ms``, ``ticker.{inst}.100ms`` and
``book.{inst}.100ms`` are subscribed. There is no liquidation channel: a trade with a ``liquidation`` flag
is one — ``T`` means the taker was liquidated (its order side ``direction``: sell closes a long), ``M`` the
maker (the opposite side), ``MT`` both; cryptofeed takes ``direction`` as is and ignores M. Amounts and
open interest are USD on inverse perpetuals and coins on the linear USDC ones.

Light depth (the ``depth`` kind, assets out of focus): ``book.{inst}.none.20.100ms`` — the grouped book,
a snapshot of the top 20 levels as ``[price, amount]`` pairs (no change type, no ``prev_change_id``) every
100 ms; each replaces the book (amounts USD on inverse perpetuals, coins on linear ones).
"""

from __future__ import annotations

from liqmap.core.events import ASK, BID, BUY, LONG, PRICE_FILL, SELL, SHORT

from .base import FrameError, VenueFeed
from .normalize import BASE, USD, to_base


class DeribitFeed(VenueFeed):
    venue = "deribit"
    VID = 4
    CCXT_ID = "deribit"
    ENDPOINTS = {"ws": "wss://www.deribit.com/ws/api/v2"}
    CHANNELS = {"trades": "trades.{}.100ms",  # carries the `liquidation` flag; `raw` needs API keys
                "ticker": "ticker.{}.100ms", "book": "book.{}.100ms",
                "light_depth": "book.{}.none.20.100ms"}  # grouped [price, amount] snapshot, 20 levels
    CRYPTOFEED = "cryptofeed.exchanges.deribit:Deribit"
    id = "DERIBIT"
    CF_CHANNELS = {"liquidations": "trades", "trades": "trades", "open_interest": "ticker", "l2_book": "book"}

    @classmethod
    def is_authenticated_channel(cls, channel: str) -> bool:
        # Market data is public on the 100ms channels; only account channels need keys.
        return channel in ("order_info", "fills", "balances")  # cryptofeed.defines ORDER_INFO, FILLS, BALANCES

    def __init__(self, *args, **kwargs) -> None:
        self._change_id: dict[str, int | None] = {}
        super().__init__(*args, **kwargs)

    async def subscribe(self, conn) -> None:
        chans: list[str] = []
        by_kind = self.subscribed(conn)
        trade_syms = sorted(set(by_kind.get("trade", ())) | set(by_kind.get("liq", ())))
        chans += [self.chan("trades").format(s) for s in trade_syms]
        chans += [self.chan("ticker").format(s) for s in by_kind.get("oi", ())]
        for s in by_kind.get("book", ()):
            chans.append(self.chan("book").format(s))
            self._change_id[s] = None
        chans += [self.chan("light_depth").format(s) for s in by_kind.get("depth", ())]
        await self.send_chunked(conn, chans, lambda chunk: {"jsonrpc": "2.0", "id": 101, "method": "public/subscribe",
                                                            "params": {"channels": chunk}})

    def _handle(self, msg, conn, timestamp: float) -> None:
        m = self.json_object(msg)
        params = m.get("params")
        if params is None:
            if "error" in m:
                raise FrameError("frame", "venue_error")
            if "result" in m or m.get("method") == "heartbeat":
                self.stats["control"] += 1
                return
            raise FrameError("frame", "unknown_message")
        channel = params.get("channel", "")
        head = channel.split(".", 1)[0]
        if head == "trades":
            parts = channel.split(".")
            if len(parts) > 1 and parts[1] not in self.markets:
                self.stats["filtered"] += 1
                return
            if "trade" in self.kinds:  # the fields cryptofeed 2.4.1's parser reads, without its Decimals
                trade = self.trade_frame
                for t in params["data"]:
                    trade(t["instrument_name"], t["trade_id"], t["price"], t["amount"], t["timestamp"] / 1000.0,
                          BUY if t["direction"] == "buy" else SELL)
            self._liquidations(params["data"])
        elif head == "ticker":
            self._ticker(params["data"], timestamp)
        elif head == "book":
            if channel.count(".") >= 4:  # book.{inst}.{group}.{depth}.{interval}: grouped snapshots
                self._grouped_book(params.get("data"), timestamp)
            else:
                self._book(params["data"], timestamp)
        else:
            self.stats["ignored"] += 1

    def _amount(self, vm, amount: float, price: float) -> tuple[float, float, float]:
        return to_base(vm, amount, price, self.trade_unit(vm))

    def trade_unit(self, vm) -> str:
        return USD if vm.inverse else BASE

    def _liquidations(self, rows: list) -> None:
        """Trades flagged ``liquidation``: T = the taker was liquidated, M = the maker, MT = both.

        cryptofeed's parser also emits these as LIQUIDATIONS, but with ``direction`` taken as the side
        (wrong for M); liqmap ignores those and derives the position side here.
        """
        for t in rows:
            flag = t.get("liquidation")
            if not flag:
                continue
            sym = t["instrument_name"]
            hit = self.market_of(sym)
            if hit is None:
                continue
            if not self._seen_liqs.add((sym, t["trade_id"])):
                self.stats["duplicates"] += 1
                continue
            asset, vm = hit
            px, qty, usd = self._amount(vm, float(t["amount"]), float(t["price"]))
            taker_side = LONG if t["direction"] == "sell" else SHORT  # the taker's order closes its position
            sides = ([taker_side] if "T" in flag else []) + ([-taker_side] if "M" in flag else [])
            if not sides:
                self._error("liq", "bad_flag")
            for side in sides:
                self.liq(asset, t["timestamp"] / 1000.0, px, qty, usd, side, PRICE_FILL)

    def _ticker(self, d: dict, timestamp: float) -> None:
        sym = d["instrument_name"]
        hit = self.market_of(sym)
        if hit is None:
            return
        _, vm = hit
        mark = d.get("mark_price")
        if mark:
            self.note_price(sym, float(mark))
        oi = d.get("open_interest")
        if oi is None:
            return
        ts = d["timestamp"] / 1000.0 if d.get("timestamp") else timestamp
        if vm.inverse:
            self.open_interest(sym, ts, None, float(oi), float(mark) if mark else None)
        else:
            self.open_interest(sym, ts, float(oi) * vm.price_multiplier, None, float(mark) if mark else None)

    def _grouped_book(self, d, timestamp: float) -> None:
        """A grouped-book push: ``[price, amount]`` pairs for the top levels; it replaces the book."""
        if not isinstance(d, dict):
            raise FrameError("depth", "no_data")
        hit = self.light_market(d.get("instrument_name"))
        if hit is None:
            return
        asset, vm = hit
        sides = self.converted_sides(d, lambda size, price: self._amount(vm, size, price))
        ts = d["timestamp"] / 1000.0 if d.get("timestamp") else timestamp
        self.snapshot_book(asset, sides[0], sides[1], ts, raw=False)

    def _book(self, d: dict, timestamp: float) -> None:
        sym = d["instrument_name"]
        hit = self.market_of(sym)
        if hit is None:
            return
        asset, vm = hit
        ts = d["timestamp"] / 1000.0 if d.get("timestamp") else timestamp
        book = self.book(asset)
        snapshot = d.get("type") == "snapshot" or "prev_change_id" not in d
        if not snapshot:
            last = self._change_id.get(sym)
            if last is None or d["prev_change_id"] != last:
                self._change_id[sym] = None
                self._error("book", "sequence_gap")
                if self.live_rest:  # reconnect → resubscribe → a fresh snapshot
                    raise self.RESYNC
                return

        def conv(levels):
            out = []
            for action, price, amount in levels:
                p = float(price)
                if action == "delete":
                    out.append((p / vm.price_multiplier, 0.0))
                else:
                    px, qty, _ = self._amount(vm, float(amount), p)
                    out.append((px, qty))
            return out

        bids, asks = conv(d.get("bids", ())), conv(d.get("asks", ()))
        if snapshot:
            book.replace(bids, asks, ts)
        else:
            book.apply(BID, bids, ts)
            book.apply(ASK, asks, ts)
        self._change_id[sym] = d.get("change_id")
        self.book_changed(asset)

"""OKX v5 perpetual swaps.

Fixes over cryptofeed 2.4.1 (docs/venues.md §2.3, §3.1): liquidations come from the websocket
``liquidation-orders`` channel (instType SWAP, every swap, filtered here by instId) instead of a 60-second
REST poll of 100 rows; ``sz`` is converted from contracts with ``ctVal``; the price is ``bkPx`` (bankruptcy);
the first push after subscribing is a stale snapshot and is skipped (as tardis does); the side is
``posSide`` in hedge mode and the opposite of the order ``side`` in net mode. Open interest prefers
``oiCcy`` (coin) and ``oiUsd``; ``mark-price`` is subscribed as the price for USD conversion.

Light depth (the ``depth`` kind, assets out of focus): ``books5`` — a 5-level snapshot every 100 ms with no
``action`` and no checksum; each push replaces the book (sizes in contracts × ctVal, like ``books``).
"""

from __future__ import annotations

import heapq
import zlib

from liqmap.core.events import ASK, BID, BUY, LONG, PRICE_BANKRUPTCY, SELL, SHORT

from .base import FrameError, VenueFeed
from .normalize import to_base



class OkxFeed(VenueFeed):
    venue = "okx"
    VID = 2
    CCXT_ID = "okx"
    ENDPOINTS = {"ws": "wss://ws.okx.com:8443/ws/v5/public",
                 "rest": "https://www.okx.com"}  # the live start's back-fill (feeds/backfill/okx.py)
    CHANNELS = {"liquidations": "liquidation-orders", "liquidations_inst_type": "SWAP", "oi": "open-interest",
                "book": "books", "trades": "trades", "mark": "mark-price",
                "light_depth": "books5"}  # 5-level snapshot every 100 ms, no checksum
    ARGS_PER_SUBSCRIBE = 100
    MAX_LEVELS = 400  # the `books` channel's full depth (OKX v5 docs: 400 levels)
    MAX_FRAME_BYTES = 1 << 20  # ~30× its largest documented frame
    CRYPTOFEED = "cryptofeed.exchanges.okx:OKX"
    id = "OKX"
    CF_CHANNELS = {"liquidations": "liquidations", "trades": "trades", "open_interest": "open-interest", "l2_book": "books"}

    def __init__(self, *args, **kwargs) -> None:
        self._skip_liq: set[str] = set()  # connections whose first liquidation push is still due
        self._synced: set[str] = set()  # instIds whose book has had its snapshot
        self._shadow: dict[str, tuple[dict, dict]] = {}  # instId → (bids, asks) as the venue's strings
        self._seq: dict[str, int] = {}  # instId → the last books seqId (continuity since the checksum is 0)
        super().__init__(*args, **kwargs)

    async def subscribe(self, conn) -> None:
        args: list[dict] = []
        by_kind = self.subscribed(conn)
        if "liq" in by_kind:
            args.append({"channel": self.chan("liquidations"), "instType": self.chan("liquidations_inst_type")})
            if self.fcfg.get("okx_skip_first_liquidation", True):
                self._skip_liq.add(getattr(conn, "uuid", ""))
        priced = set(by_kind.get("oi", ())) | set(by_kind.get("liq", ()))
        for s in by_kind.get("oi", ()):
            args.append({"channel": self.chan("oi"), "instId": s})
        for s in sorted(priced):
            args.append({"channel": self.chan("mark"), "instId": s})
        for s in by_kind.get("trade", ()):
            args.append({"channel": self.chan("trades"), "instId": s})
        for s in by_kind.get("book", ()):
            args.append({"channel": self.chan("book"), "instId": s})
            self._synced.discard(s)
            self._shadow.pop(s, None)
        for s in by_kind.get("depth", ()):
            args.append({"channel": self.chan("light_depth"), "instId": s})
        await self.send_chunked(conn, args, lambda chunk: {"op": "subscribe", "args": chunk})

    def _handle(self, msg, conn, timestamp: float) -> None:
        m = self.json_object(msg)
        if "event" in m:
            if m["event"] == "error":
                raise FrameError("frame", "venue_error")
            self.stats["control"] += 1
            return
        arg = m.get("arg")
        if arg is None:
            if "table" in m:  # OKEx v3 tables (retired 2021) in old recordings
                self.stats["ignored"] += 1
                return
            raise FrameError("frame", "unknown_message")
        ch = arg["channel"]
        if ch == self.chan("liquidations") or ch == "liquidation-orders":
            uuid = getattr(conn, "uuid", "")
            if uuid in self._skip_liq:
                self._skip_liq.discard(uuid)
                self.stats["skipped_stale"] += 1
                return
            for entry in m["data"]:
                self._liquidations(entry.get("instId"), entry.get("details", ()))
        elif ch == "liquidations":  # REST-shaped rows (tardis-generated / REST backfill): instId in arg
            self._liquidations(arg.get("instId"), m["data"])
        elif ch == self.chan("oi") or ch == "open-interest":
            self._oi(m, timestamp)
        elif ch == self.chan("mark") or ch == "mark-price":
            for r in m["data"]:
                if r["instId"] in self.markets:
                    self.note_price(r["instId"], float(r["markPx"]))
        elif ch == self.chan("trades") or ch in ("trades", "trades-all"):
            if arg.get("instId") in self.markets:
                trade = self.trade_frame  # the fields cryptofeed 2.4.1's parser reads, without its Decimals
                for t in m["data"]:
                    trade(t["instId"], t["tradeId"], t["px"], t["sz"], int(t["ts"]) / 1000.0,
                          BUY if t["side"] == "buy" else SELL)
            else:
                self.stats["filtered"] += 1
        elif ch == self.chan("light_depth") or ch in ("books5", "bbo-tbt"):
            self._snapshots(m, timestamp)
        elif ch.startswith("books"):
            self._book(m, timestamp)
        else:
            self.stats["ignored"] += 1

    def _liquidations(self, inst: str | None, details) -> None:
        hit = self.markets.get(inst) if inst else None
        if hit is None:
            self.stats["filtered"] += len(details) or 1
            return
        asset, vm = hit
        for r in details:
            try:
                sz, px = float(r["sz"]), float(r["bkPx"])
                pos, side, t = r.get("posSide", "net"), r["side"], r["ts"]
            except (KeyError, TypeError, ValueError):
                self._error("liq", "bad_record")
                continue
            if pos == "long" or pos == "short":
                liq_side = LONG if pos == "long" else SHORT
            elif side in ("buy", "sell"):  # net mode: a forced sell closes a long
                liq_side = LONG if side == "sell" else SHORT
            else:
                self._error("liq", "bad_side")
                continue
            if not self._seen_liqs.add((inst, t, side, r["sz"], r["bkPx"])):
                self.stats["duplicates"] += 1
                continue
            price, base, usd = to_base(vm, sz, px)
            self.liq(asset, float(t) / 1000.0, price, base, usd, liq_side, PRICE_BANKRUPTCY)

    def _oi(self, m: dict, timestamp: float) -> None:
        for r in m["data"]:
            inst = r["instId"]
            if self.market_of(inst) is None:
                continue
            ts = float(r["ts"]) / 1000.0 if r.get("ts") else timestamp
            base = float(r["oiCcy"]) if r.get("oiCcy") not in (None, "") else None
            usd = float(r["oiUsd"]) if r.get("oiUsd") not in (None, "") else None
            self.open_interest(inst, ts, base, usd, contracts=float(r["oi"]))

    def _snapshots(self, m: dict, timestamp: float) -> None:
        """``books5`` / ``bbo-tbt``: every push is the venue's top levels; each replaces the book."""
        inst = m["arg"].get("instId")
        hit = self.market_of(inst)
        if hit is None:
            return
        asset, vm = hit
        data = m.get("data")
        if not isinstance(data, list) or not data:
            raise FrameError("depth", "no_data")
        d = data[-1]  # one entry per push; if several, the newest stands
        if not isinstance(d, dict):
            raise FrameError("depth", "bad_levels")
        ts = float(d["ts"]) / 1000.0 if d.get("ts") else timestamp
        bids, asks = d.get("bids"), d.get("asks")
        if vm.inverse:  # USD contracts: coins = n × ctVal / price, level by level
            try:
                bids = self.inverse_levels(bids, vm.contract_size)
                asks = self.inverse_levels(asks, vm.contract_size)
            except (TypeError, ValueError, IndexError, ZeroDivisionError):
                raise FrameError("depth", "bad_levels") from None
            self.snapshot_book(asset, bids, asks, ts, 1.0, 1.0, raw=False)
        else:
            self.snapshot_book(asset, bids, asks, ts, 1.0, vm.contract_size)

    def _book(self, m: dict, timestamp: float) -> None:
        inst = m["arg"]["instId"]
        hit = self.market_of(inst)
        if hit is None:
            return
        asset, vm = hit
        book = self.book(asset)
        checking = self.fcfg.get("okx_checksum", True)
        for d in m["data"]:
            ts = float(d["ts"]) / 1000.0 if d.get("ts") else timestamp
            raw_bids, raw_asks = d.get("bids", ()), d.get("asks", ())
            bids, asks = raw_bids, raw_asks
            if vm.inverse:  # sizes are USD contracts: coins = n × ctVal / price, level by level
                bids = self.inverse_levels(bids, vm.contract_size)
                asks = self.inverse_levels(asks, vm.contract_size)
            snapshot = m.get("action", "snapshot") == "snapshot"
            if snapshot:
                book.replace_raw(bids, asks, ts, 1.0, 1.0 if vm.inverse else vm.contract_size)
                self._synced.add(inst)
            else:
                if inst not in self._synced:
                    raise FrameError("book", "update_before_snapshot")
                scale = 1.0 if vm.inverse else vm.contract_size
                book.apply_raw(BID, bids, ts, 1.0, scale)
                book.apply_raw(ASK, asks, ts, 1.0, scale)
            # OKX stopped filling the books checksum on 2026-06-23 (its notice of 2026-05-21: always 0 from then
            # on); checking a 0 failed every push and recycled the connection. A real checksum (older
            # recordings) is still checked; continuity now rests on seqId / prevSeqId.
            if checking and d.get("checksum") not in (None, 0, "0"):
                self._check(inst, snapshot, raw_bids, raw_asks, d["checksum"])
            self._sequence(inst, snapshot, d)
        self.book_changed(asset)

    def _sequence(self, inst: str, snapshot: bool, d: dict) -> None:
        """An update whose ``prevSeqId`` is not the last ``seqId`` seen means a lost push: the book is marked
        unsynced until the next snapshot (counted; live the connection is recycled, as for a bad checksum)."""
        seq, prev = d.get("seqId"), d.get("prevSeqId")
        if seq is None:
            return
        last = self._seq.get(inst)
        self._seq[inst] = seq
        if snapshot or prev is None or last is None or int(prev) == -1 or int(prev) == int(last):
            return
        self._synced.discard(inst)
        self._seq.pop(inst, None)
        self._error("book", "sequence_gap")
        if self.live_rest:
            raise self.RESYNC

    def _check(self, inst: str, snapshot: bool, bids, asks, expected: int) -> None:
        """OKX's CRC32 over the top 25 levels, on the venue's own strings (kept in a shadow book).

        A mismatch means a lost or misapplied update: counted, the book marked unsynced until the next
        snapshot, and live the connection is recycled so the resubscribe brings one.
        """
        shadow = self._shadow.get(inst)
        if snapshot or shadow is None:
            shadow = self._shadow[inst] = ({}, {})
        # price → (price string, size string): the floats are read once per level pushed, and the top 25 are a
        # heap pick over float keys (sorting every string by float() per push was a cascade's largest parse cost)
        for side, levels in ((shadow[0], bids), (shadow[1], asks)):
            for lv in levels:
                p = float(lv[0])
                if float(lv[1]):
                    side[p] = (lv[0], lv[1])
                else:
                    side.pop(p, None)
        bid_side, ask_side = shadow
        top_b = [bid_side[p] for p in heapq.nlargest(25, bid_side)]
        top_a = [ask_side[p] for p in heapq.nsmallest(25, ask_side)]
        parts = []
        for i in range(max(len(top_b), len(top_a))):
            if i < len(top_b):
                parts.append("%s:%s" % top_b[i])
            if i < len(top_a):
                parts.append("%s:%s" % top_a[i])
        crc = zlib.crc32(":".join(parts).encode())
        if crc >= 1 << 31:
            crc -= 1 << 32
        if crc == int(expected):
            self.stats["checksum_ok"] += 1
        else:
            self._synced.discard(inst)
            self._shadow.pop(inst, None)
            self._error("book", "checksum_mismatch")
            if self.live_rest:
                raise self.RESYNC

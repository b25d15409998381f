"""Each venue's own frames for the simulated market, as raw JSON text (docs/venues.md §2).

One emitter per venue turns what the simulator did in a step (trades, liquidations, book changes, open
interest, mark price) into exactly the messages that venue would send, on the connection it would send
them on (the URLs come from ``feeds.endpoints`` so the real adapters recognise them), with the venue's
units (contracts, USD for inverse, 1000-coin lots), sequencing (Binance U/u/pu and a REST snapshot, Bybit
u/seq, OKX seqId and CRC32 checksum, Deribit change ids, Hyperliquid full snapshots) and publishing limits:

- Binance pushes only the latest liquidation per symbol per 1000 ms (the others are never published);
- Bybit batches ``allLiquidation`` per 500 ms (all of them, in one list);
- OKX pushes a stale liquidation snapshot right after subscribing (the adapter skips it);
- Hyperliquid (``hyperliquid.py``, in the slot BitMEX held until it closed) has no liquidation channel: its
  liquidation fills are trades naming the liquidated wallet;
- Deribit has no liquidation channel: liquidation fills are trades with ``liquidation: "T"``.

Every method returns a list of ``(conn, raw)``; ``source.py`` stamps receipt times.
"""

from __future__ import annotations

import zlib

import orjson

from liqmap.config import DEFAULTS

from .contracts import Contract

Frames = list[tuple[str, str]]


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


def _feeds(cfg: dict | None) -> dict:
    from liqmap.feeds.venues import VENUE_CLASSES

    base = DEFAULTS["feeds"]
    got = (cfg or {}).get("feeds") or {}
    # each venue's declared endpoints and channels (its module), under the config's
    declared = {sec: {f"{v}_{k}": x for v, c in VENUE_CLASSES.items()
                      for k, x in (c.ENDPOINTS if sec == "endpoints" else c.CHANNELS).items()}
                for sec in ("endpoints", "channels")}
    return {"endpoints": {**declared["endpoints"], **base["endpoints"], **got.get("endpoints", {})},
            "channels": {**declared["channels"], **base["channels"], **got.get("channels", {})},
            "binance_all_liquidations": got.get("binance_all_liquidations", base["binance_all_liquidations"]),
            "oi_poll_seconds": got.get("oi_poll_seconds", base["oi_poll_seconds"])}


def _uuid(n: int, salt: int) -> str:
    """A deterministic UUID-shaped id."""
    h = f"{zlib.crc32(f'{salt}:{n}'.encode()):08x}{n:024x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class Emitter:
    venue = ""
    LATENCY_MS = 50  # receipt − exchange time of the simulated connection
    OI_EVERY_MS: int | None = 1000  # open-interest pushes (None: polled every feeds.oi_poll_seconds)

    def __init__(self, cfg: dict | None = None) -> None:
        f = _feeds(cfg)
        self.ep = f["endpoints"]
        self.ch = f["channels"]
        self.f = f
        self.trade_id: dict[str, int] = {}
        self.book_keys: dict[str, tuple[set, set]] = {}  # levels live on the wire, per symbol
        self._pcache: dict[str, dict[int, str]] = {}

    def next_trade_id(self, sym: str) -> int:
        """Trade ids are unique per venue (Deribit ids are global, not per instrument)."""
        n = self.trade_id.get("", 1_000_000) + 1
        self.trade_id[""] = n
        return n

    # overridden per venue
    def trades(self, c: Contract, ts: int, rows) -> Frames:
        return []

    def liquidations(self, c: Contract, ts: int, rows) -> Frames:
        return []

    def flush(self, ts: int, symbols: frozenset[str] | None = None) -> Frames:
        """What is due for publishing at ``ts`` (liquidations a venue batches), only for ``symbols`` (None:
        all). The live stream and an asset's pre-roll share the emitters but run on different clocks, so each
        flushes only its own assets' symbols: a liquidation held back during history must not go out with a
        live timestamp (it would move that asset's model clock to now in the middle of its history)."""
        return []

    def book(self, c: Contract, ts: int, bids, asks, vb) -> Frames:
        return []

    def oi(self, c: Contract, ts: int, oi: float, price: float) -> Frames:
        return []

    def mark(self, c: Contract, ts: int, price: float) -> Frames:
        return []

    def start(self, c: Contract, ts: int, price: float) -> Frames:
        return []

    def _levels(self, c: Contract, vb, changes):
        """[(price string, qty string)] for book changes; level prices are formatted once per level."""
        cache = self._pcache.setdefault(c.symbol, {})
        fq = c.fmt_qty
        out = []
        for k, q in changes:
            p = cache.get(k)
            if p is None:
                p = cache[k] = c.fmt_price(vb.price_of(k))
                if len(cache) > 4096:
                    cache.clear()
            out.append((p, fq(q)))
        return out


# ---------------------------------------------------------------------------------------------- Binance
class Binance(Emitter):
    venue = "binance"
    LATENCY_MS = 40
    OI_EVERY_MS = None  # REST only: polled

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self.market = self.ep["binance_market"]
        self.public = self.ep["binance_public"]
        self.rest = self.ep["binance_rest"].rstrip("/")
        self.last_u: dict[str, int] = {}
        self.liq_window: dict[str, tuple[int, tuple]] = {}  # symbol → (window, newest liquidation)

    def trades(self, c, ts, rows) -> Frames:
        out = []
        s = c.symbol.lower()
        for r in rows:
            a = self.next_trade_id(c.symbol)
            first = a * 3
            out.append((self.market, _dumps({"stream": f"{s}@{self.ch['binance_trades']}", "data": {
                "e": "aggTrade", "E": ts, "a": a, "s": c.symbol, "p": c.fmt_price(r["price"]),
                "q": c.fmt_qty(r["qty"]), "f": first, "l": first + 2, "T": ts, "m": bool(r["side"] < 0)}})))
        return out

    def liquidations(self, c, ts, rows) -> Frames:
        # Only the newest liquidation of each 1000 ms window per symbol is ever pushed.
        out: Frames = []
        for r in rows:
            w = ts // 1000
            prev = self.liq_window.get(c.symbol)
            if prev is not None and prev[0] != w:
                out.append(self._force_order(*prev[1]))
            self.liq_window[c.symbol] = (w, (c, ts, float(r["price"]), float(r["bk"]), float(r["qty"]),
                                             int(r["side"])))
        return out

    def flush(self, ts, symbols=None) -> Frames:
        out: Frames = []
        w = ts // 1000
        for sym in [s for s, (win, _) in self.liq_window.items() if win < w and (symbols is None or s in symbols)]:
            out.append(self._force_order(*self.liq_window.pop(sym)[1]))
        return out

    def _force_order(self, c, ts, price, bk, qty, side) -> tuple[str, str]:
        stream = "!forceOrder@arr" if self.f["binance_all_liquidations"] else \
            f"{c.symbol.lower()}@{self.ch['binance_liquidations']}"
        q = c.fmt_qty(qty)
        return (self.market, _dumps({"stream": stream, "data": {"e": "forceOrder", "E": ts + 3, "o": {
            "s": c.symbol, "S": "SELL" if side > 0 else "BUY", "o": "LIMIT", "f": "IOC", "q": q,
            "p": c.fmt_price(bk), "ap": c.fmt_price(price), "X": "FILLED", "l": q, "z": q, "T": ts}}}))

    def mark(self, c, ts, price) -> Frames:
        return [(self.market, _dumps({"stream": f"{c.symbol.lower()}@{self.ch['binance_mark']}", "data": {
            "e": "markPriceUpdate", "E": ts, "s": c.symbol, "p": c.fmt_price(price), "i": c.fmt_price(price),
            "P": c.fmt_price(price), "r": "0.00010000", "T": (ts // 28_800_000 + 1) * 28_800_000}}))]

    def oi(self, c, ts, oi, price) -> Frames:
        url = self.rest + self.ch["binance_oi_path"].format(c.symbol)
        return [(url, _dumps({"symbol": c.symbol, "openInterest": c.fmt_qty(oi), "time": ts}))]

    def book(self, c, ts, bids, asks, vb) -> Frames:
        sym = c.symbol
        if sym not in self.last_u:
            # REST snapshot first, then diffs; the first diff straddles lastUpdateId (U ≤ L ≤ u).
            L = 7_000_000_000 + (zlib.crc32(sym.encode()) % 1000) * 1_000_000
            self.last_u[sym] = L - 1
            url = self.rest + self.ch["binance_depth_path"].format(sym)
            body = {"lastUpdateId": L, "E": ts, "T": ts,
                    "bids": [list(x) for x in self._levels(c, vb, vb.top(1, vb.levels))],
                    "asks": [list(x) for x in self._levels(c, vb, vb.top(-1, vb.levels))]}
            return [(url, _dumps(body))]
        if not bids and not asks:
            return []
        prev = self.last_u[sym]
        n = len(bids) + len(asks)
        U, u = prev + 1, prev + n
        self.last_u[sym] = u
        return [(self.public, _dumps({"stream": f"{sym.lower()}@{self.ch['binance_depth']}", "data": {
            "e": "depthUpdate", "E": ts + 2, "T": ts, "s": sym, "U": U, "u": u, "pu": prev,
            "b": [list(x) for x in self._levels(c, vb, bids)],
            "a": [list(x) for x in self._levels(c, vb, asks)]}}))]


# ---------------------------------------------------------------------------------------------- Bybit
class Bybit(Emitter):
    venue = "bybit"
    LATENCY_MS = 60

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self.ws = self.ep["bybit_ws"]
        self.pending: dict[str, list] = {}  # symbol → liquidations waiting for the 500 ms push
        self.window: dict[str, int] = {}
        self.seq: dict[str, int] = {}
        self.ticker_seen: set[str] = set()
        self.cs = 50_000_000_000

    def trades(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        data = []
        for r in rows:
            n = self.next_trade_id(c.symbol)
            data.append({"T": ts, "s": c.symbol, "S": "Buy" if r["side"] > 0 else "Sell",
                         "v": c.fmt_qty(r["qty"]), "p": c.fmt_price(r["price"]),
                         "L": "PlusTick" if r["side"] > 0 else "MinusTick", "i": _uuid(n, 2), "BT": False})
        return [(self.ws, _dumps({"topic": f"{self.ch['bybit_trades']}.{c.symbol}", "type": "snapshot",
                                  "ts": ts + 1, "data": data}))]

    def liquidations(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        lst = self.pending.setdefault(c.symbol, [])
        self.window.setdefault(c.symbol, ts // 500)
        for r in rows:
            # S is the POSITION side: Buy = a long was liquidated; p is the bankruptcy price.
            lst.append({"T": ts, "s": c.symbol, "S": "Buy" if r["side"] > 0 else "Sell",
                        "v": c.fmt_qty(r["qty"]), "p": c.fmt_price(r["bk"])})
        return []

    def flush(self, ts, symbols=None) -> Frames:
        # everything liquidated in a 500 ms window goes out in one push at the window's end
        out = []
        w = ts // 500
        for sym in sorted(s for s, win in self.window.items() if win < w and (symbols is None or s in symbols)):
            push = (self.window.pop(sym) + 1) * 500
            items = self.pending.pop(sym, [])
            if items:
                out.append((self.ws, _dumps({"topic": f"{self.ch['bybit_liquidations']}.{sym}",
                                             "type": "snapshot", "ts": push, "data": items})))
        return out

    def oi(self, c, ts, oi, price) -> Frames:
        sym = c.symbol
        self.cs += 1
        fields = {"symbol": sym, "markPrice": c.fmt_price(price), "indexPrice": c.fmt_price(price),
                  # Bybit's real shape: openInterest(Value) two-sided, singleOpenInterest(Value) one side
                  "openInterest": c.fmt_qty(2 * oi), "singleOpenInterest": c.fmt_qty(oi),
                  "openInterestValue": (f"{float(c.usd(2 * oi, price)):.2f}" if not c.inverse
                                        else c.fmt_qty(2 * oi / price)),
                  "singleOpenInterestValue": (f"{float(c.usd(oi, price)):.2f}" if not c.inverse
                                              else c.fmt_qty(oi / price)),
                  "lastPrice": c.fmt_price(price)}
        if sym not in self.ticker_seen:
            self.ticker_seen.add(sym)
            fields.update({"tickDirection": "PlusTick", "price24hPcnt": "0.001", "fundingRate": "0.0001",
                           "bid1Price": c.fmt_price(price - c.price_tick / c.mult),
                           "ask1Price": c.fmt_price(price + c.price_tick / c.mult)})
            typ = "snapshot"
        else:
            typ = "delta"
        return [(self.ws, _dumps({"topic": f"{self.ch['bybit_tickers']}.{sym}", "type": typ, "data": fields,
                                  "cs": self.cs, "ts": ts}))]

    def book(self, c, ts, bids, asks, vb) -> Frames:
        sym = c.symbol
        first = sym not in self.seq
        if not first and not bids and not asks:
            return []
        u = self.seq.get(sym, 0) + 1
        self.seq[sym] = u
        if first:
            b, a = vb.top(1, vb.levels), vb.top(-1, vb.levels)
        else:
            b, a = bids, asks
        return [(self.ws, _dumps({"topic": f"{self.ch['bybit_book']}.{sym}",
                                  "type": "snapshot" if first else "delta", "ts": ts + 1, "data": {
                                      "s": sym, "b": [list(x) for x in self._levels(c, vb, b)],
                                      "a": [list(x) for x in self._levels(c, vb, a)],
                                      "u": u, "seq": 80_000_000_000 + u}, "cts": ts}))]


# ---------------------------------------------------------------------------------------------- OKX
def okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX books checksum: CRC32 (signed) of bid:ask price:size pairs interleaved over the top 25."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += [bids[i][0], bids[i][1]]
        if i < len(asks):
            parts += [asks[i][0], asks[i][1]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


class Okx(Emitter):
    venue = "okx"
    LATENCY_MS = 80
    OI_EVERY_MS = 3000

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self.ws = self.ep["okx_ws"]
        self.seq: dict[str, int] = {}
        self.started = False

    @staticmethod
    def _family(c) -> str:
        return c.symbol.rsplit("-", 1)[0]

    def start(self, c, ts, price) -> Frames:
        # Right after subscribing OKX pushes a stale liquidation snapshot (old events); adapters skip it.
        if self.started:
            return []
        self.started = True
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_liquidations"],
                                          "instType": self.ch["okx_liquidations_inst_type"]}, "data": [{
            "details": [{"bkLoss": "0", "bkPx": c.fmt_price(price * 0.97), "ccy": "", "posSide": "long",
                         "side": "sell", "sz": c.fmt_qty(c.lot), "ts": str(ts - 3_600_000)}],
            "instFamily": self._family(c), "instId": c.symbol, "instType": "SWAP", "uly": self._family(c)}]}))]

    def trades(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        data = [{"instId": c.symbol, "tradeId": str(self.next_trade_id(c.symbol)), "px": c.fmt_price(r["price"]),
                 "sz": c.fmt_qty(r["qty"]), "side": "buy" if r["side"] > 0 else "sell", "ts": str(ts),
                 "count": "1"} for r in rows]
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_trades"], "instId": c.symbol}, "data": data}))]

    def liquidations(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        details = [{"bkLoss": "0", "bkPx": c.fmt_price(r["bk"]), "ccy": "",
                    "posSide": "long" if r["side"] > 0 else "short", "side": "sell" if r["side"] > 0 else "buy",
                    "sz": c.fmt_qty(r["qty"]), "ts": str(ts)} for r in rows]
        fam = self._family(c)
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_liquidations"],
                                          "instType": self.ch["okx_liquidations_inst_type"]},
                                  "data": [{"details": details, "instFamily": fam, "instId": c.symbol,
                                            "instType": "SWAP", "uly": fam}]}))]

    def oi(self, c, ts, oi, price) -> Frames:
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_oi"], "instId": c.symbol}, "data": [{
            "instId": c.symbol, "instType": "SWAP", "oi": c.fmt_qty(oi),
            "oiCcy": f"{float(c.base_qty(oi, price)):.10g}", "oiUsd": f"{float(c.usd(oi, price)):.2f}",
            "ts": str(ts)}]}))]

    def mark(self, c, ts, price) -> Frames:
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_mark"], "instId": c.symbol}, "data": [{
            "instId": c.symbol, "instType": "SWAP", "markPx": c.fmt_price(price), "ts": str(ts)}]}))]

    def book(self, c, ts, bids, asks, vb) -> Frames:
        sym = c.symbol
        first = sym not in self.seq
        if not first and not bids and not asks:
            return []
        prev = self.seq.get(sym, -1)
        seq = (prev if prev > 0 else 10_000_000) + len(bids) + len(asks) + 1
        self.seq[sym] = seq
        top_b = self._levels(c, vb, vb.top(1, 25))
        top_a = self._levels(c, vb, vb.top(-1, 25))
        if first:
            b, a = self._levels(c, vb, vb.top(1, vb.levels)), self._levels(c, vb, vb.top(-1, vb.levels))
        else:
            b, a = self._levels(c, vb, bids), self._levels(c, vb, asks)
        return [(self.ws, _dumps({"arg": {"channel": self.ch["okx_book"], "instId": sym},
                                  "action": "snapshot" if first else "update", "data": [{
                                      "asks": [[p, q, "0", "1"] for p, q in a],
                                      "bids": [[p, q, "0", "1"] for p, q in b], "ts": str(ts),
                                      "checksum": okx_checksum(top_b, top_a),
                                      "prevSeqId": -1 if first else prev, "seqId": seq}]}))]


# ---------------------------------------------------------------------------------------------- Deribit
class Deribit(Emitter):
    venue = "deribit"
    LATENCY_MS = 90

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self.ws = self.ep["deribit_ws"]
        self.change: dict[str, int] = {}
        self.tseq: dict[str, int] = {}

    def _amt(self, c, qty):
        """Deribit amounts: USD for inverse perpetuals (contracts × contract size), coin for linear."""
        if c.inverse:
            return int(round(float(qty) * c.contract_size))
        return int(round(qty)) if c.qty_dp == 0 else round(float(qty), c.qty_dp)

    def _sub(self, channel: str, data) -> str:
        return _dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})

    def _trade_rows(self, c, ts, rows, price_now):
        data = []
        for r in rows:
            n = self.next_trade_id(c.symbol)
            seq = self.tseq.get(c.symbol, 0) + 1
            self.tseq[c.symbol] = seq
            t = {"trade_seq": seq, "trade_id": f"{n}", "timestamp": ts, "tick_direction": 0 if r["side"] > 0 else 2,
                 "price": float(c.fmt_price(r["price"])), "mark_price": float(c.fmt_price(price_now)),
                 "index_price": float(c.fmt_price(price_now)), "instrument_name": c.symbol,
                 "direction": "buy" if r["side"] > 0 else "sell", "amount": self._amt(c, r["qty"])}
            if r["liq"]:
                if n % 3 == 0:
                    # the liquidation order rested and was hit: the liquidated party is the maker, so the
                    # trade's direction is the other side's
                    t["liquidation"] = "M"
                    t["direction"] = "sell" if r["side"] > 0 else "buy"
                else:
                    t["liquidation"] = "T"  # the liquidated party was the taker; direction closes its position
            data.append(t)
        return data

    def trades(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        price_now = float(rows["price"][rows["liq"] == 0][-1]) if (rows["liq"] == 0).any() else float(rows["price"][-1])
        return [(self.ws, self._sub(self.ch["deribit_trades"].format(c.symbol),
                                    self._trade_rows(c, ts, rows, price_now)))]

    def oi(self, c, ts, oi, price) -> Frames:
        px = float(c.fmt_price(price))
        return [(self.ws, self._sub(self.ch["deribit_ticker"].format(c.symbol), {
            "timestamp": ts, "state": "open", "instrument_name": c.symbol, "open_interest": self._amt(c, oi),
            "mark_price": px, "index_price": px, "last_price": px, "settlement_price": px,
            "min_price": round(px * 0.97, 4), "max_price": round(px * 1.03, 4), "funding_8h": 0.00001,
            "current_funding": 0.0, "interest_value": 0.0,
            "stats": {"volume": 0.0, "price_change": 0.0, "low": px, "high": px}}))]

    def book(self, c, ts, bids, asks, vb) -> Frames:
        sym = c.symbol
        chan = self.ch["deribit_book"].format(sym)
        if sym not in self.change:
            cid = 30_000_000_000 + zlib.crc32(sym.encode()) % 1_000_000
            self.change[sym] = cid
            self.book_keys[sym] = (set(vb.bids), set(vb.asks))
            bids = self._levels(c, vb, vb.top(1, vb.levels))
            asks = self._levels(c, vb, vb.top(-1, vb.levels))
            return [(self.ws, self._sub(chan, {
                "type": "snapshot", "timestamp": ts, "instrument_name": sym, "change_id": cid,
                "bids": [["new", float(p), self._amt(c, float(q))] for p, q in bids],
                "asks": [["new", float(p), self._amt(c, float(q))] for p, q in asks],
            }))]
        if not bids and not asks:
            return []
        live = self.book_keys[sym]
        sides = []
        for i, changes in enumerate((bids, asks)):
            lst = []
            for k, q in changes:
                p = float(c.fmt_price(vb.price_of(k)))
                if q == 0:
                    if k in live[i]:
                        live[i].discard(k)
                        lst.append(["delete", p, 0.0])
                elif k in live[i]:
                    lst.append(["change", p, self._amt(c, q)])
                else:
                    live[i].add(k)
                    lst.append(["new", p, self._amt(c, q)])
            sides.append(lst)
        prev = self.change[sym]
        cid = prev + 1
        self.change[sym] = cid
        return [(self.ws, self._sub(chan, {"type": "change", "timestamp": ts, "prev_change_id": prev,
                                           "instrument_name": sym, "change_id": cid,
                                           "bids": sides[0], "asks": sides[1]}))]


from .hyperliquid import Hyperliquid  # noqa: E402 - it builds on Emitter above

# BitMEX closed on 2026-09-23: Hyperliquid has its slot (BitMEX frames now come only from old recordings).
EMITTERS = {"binance": Binance, "bybit": Bybit, "okx": Okx, "hyperliquid": Hyperliquid, "deribit": Deribit}


def make_emitters(cfg: dict | None = None) -> dict[str, Emitter]:
    return {v: cls(cfg) for v, cls in EMITTERS.items()}

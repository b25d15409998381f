"""Hyperliquid in the demo market: its frames in the documented shapes, and the wallets behind its trades.

The demo's Hyperliquid sits in the simulator slot BitMEX held (``contracts.DEMO_VENUES``) and keeps that
slot's simulated economics (share of flow, leverage cap, lot, margin table, BitMEX's listing, inverse units
for BTC/ETH), so the trader population and the price path — the model benchmark's ground truth — are the
ones the five-venue demo always had. The other assets Hyperliquid lists get it from a shadow simulator beside
theirs (``market.ShadowSim``: its own traders at the asset's prices, moving no price), so the emitter serves
all 61. What changes is the wire: this emitter speaks Hyperliquid
(docs/hyperliquid.md), in coins (k-lots for the k-coins, ``Contract.wire_mult``):

- ``trades``: one trade per simulated fill (Hyperliquid publishes fills, not aggregates), ``px``/``sz``
  strings, ``side`` B/A (the taker), ``tid``, ``hash``, and ``users`` = [buyer, seller]: the position's
  wallet (``position_wallet``) on the taker side for opens, closes and liquidation fills, a market maker's
  wallet on the other; noise flow trades between a pool of noise wallets and the makers. Liquidations are
  only trades (Hyperliquid has no liquidation channel).
- ``l2Book``: a full snapshot of the top 20 levels a side, at most every 500 ms per coin.
- ``activeAssetCtx``: mark, open interest in coins, funding, every second.

``demo_wallet(trader_id)`` is the one wallet function (the Positions layer's demo ``clearinghouseState``
answers reuse it): deterministic 42-character 0x addresses. A simulated position's trader id is
``trader_id(asset, position_id)`` (position ids are per asset).
"""

from __future__ import annotations

import functools
import hashlib
import math
from decimal import Decimal

import orjson

from .contracts import Contract
from .market import asset_seed
from .venues import Emitter, Frames

MAKERS = 16  # market-maker wallets on the passive side of every demo trade
NOISE_TRADERS = 256  # wallets behind the noise flow (trades that do not change open interest)


def demo_wallet(trader_id: int) -> str:
    """A deterministic 0x address (42 characters, lower-case hex) for a simulated trader."""
    return "0x" + hashlib.blake2b(f"liqmap-demo-wallet:{int(trader_id)}".encode(), digest_size=20).hexdigest()


def trader_id(asset: str, position_id: int) -> int:
    """The trader id of a simulated position (ids are per asset in the simulator; one wallet per position)."""
    return (asset_seed(asset) << 32) | int(position_id)


def position_wallet(asset: str, position_id: int) -> str:
    return demo_wallet(trader_id(asset, position_id))


def maker_wallet(n: int) -> str:
    return demo_wallet(-1 - (n % MAKERS))


def noise_wallet(n: int) -> str:
    return demo_wallet(-1000 - (n % NOISE_TRADERS))


def sz_decimals(venue_price: float) -> int:
    """Size decimals so one size step is worth about $1 (Hyperliquid's own choice: BTC 5, ETH 4, SOL 2)."""
    if venue_price <= 0:
        return 0
    return int(min(5, max(0, round(math.log10(venue_price)))))


@functools.lru_cache(maxsize=1 << 16)
def fmt_px(venue_price: float, szd: int) -> str:
    """Hyperliquid's price rule: at most 5 significant figures and at most 6 − szDecimals decimals."""
    if venue_price <= 0:
        return "0"
    digits = 5 - 1 - math.floor(math.log10(venue_price))
    x = round(venue_price, max(0, min(digits, 6 - szd)))
    s = format(Decimal(repr(x)), "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def fmt_sz(coins: float, szd: int) -> str:
    return "%.*f" % (szd, coins)


class Hyperliquid(Emitter):
    venue = "hyperliquid"
    LATENCY_MS = 70
    OI_EVERY_MS = 1000
    BOOK_LEVELS = 20  # l2Book: at most 20 levels a side
    BOOK_EVERY_MS = 500  # pushed on a block at least 0.5 s after the last push

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self.ws = self.ep["hyperliquid_ws"]
        # trade ids per coin (Hyperliquid's tid is unique per coin and time): a coin's trades, wallets and hashes
        # do not depend on which other coins the demo runs
        self.tids: dict[str, int] = {}
        self.last_book: dict[str, int] = {}
        self._szd: dict[str, int] = {}

    def _szd_of(self, c: Contract, price: float) -> int:
        d = self._szd.get(c.symbol)
        if d is None:
            d = self._szd[c.symbol] = sz_decimals(price * c.wire_mult)
        return d

    def _coins(self, c: Contract, qty, price: float) -> float:
        """Simulated contracts → the coin's units on the wire (k-lots for kPEPE): ``Contract.base_qty`` in
        plain floats (the same operations in the same order, so the same digits; numpy's per-scalar cost was
        most of a 40-level book frame)."""
        q = float(qty)
        base = q * c.contract_size / float(price) if c.inverse else q * c.contract_size * c.mult
        return base / c.wire_mult

    def trades(self, c, ts, rows) -> Frames:
        if not len(rows):
            return []
        asset = c.asset
        data = []
        tid = self.tids.get(c.symbol, 0)
        for r in rows:
            tid += 1
            price = float(r["price"])
            szd = self._szd_of(c, price)
            sz = fmt_sz(self._coins(c, r["qty"], price), szd)
            if float(sz) <= 0:
                continue
            pid = int(r["id"])
            taker = position_wallet(asset, pid) if pid > 0 else noise_wallet(tid)
            maker = maker_wallet(tid)
            buy = r["side"] > 0
            data.append({"coin": c.symbol, "side": "B" if buy else "A", "px": fmt_px(price * c.wire_mult, szd),
                         "sz": sz, "time": ts, "hash": "0x" + hashlib.blake2b(f"{c.symbol}:{tid}".encode(),
                                                                              digest_size=32).hexdigest(),
                         "tid": 10**14 + tid, "users": [taker, maker] if buy else [maker, taker]})
        self.tids[c.symbol] = tid
        if not data:
            return []
        return [(self.ws, orjson.dumps({"channel": "trades", "data": data}).decode())]

    def book(self, c, ts, bids, asks, vb) -> Frames:
        last = self.last_book.get(c.symbol)
        if last is not None and ts - last < self.BOOK_EVERY_MS:
            return []
        self.last_book[c.symbol] = ts
        levels = []
        for side in (1, -1):
            out = []
            for k, q in vb.top(side, self.BOOK_LEVELS):
                p = vb.price_of(k)
                szd = self._szd_of(c, p)
                out.append({"px": fmt_px(p * c.wire_mult, szd), "sz": fmt_sz(self._coins(c, q, p), szd),
                            "n": 1 + k % 7})
            levels.append(out)
        return [(self.ws, orjson.dumps({"channel": "l2Book", "data": {"coin": c.symbol, "time": ts,
                                                                     "levels": levels}}).decode())]

    def oi(self, c, ts, oi, price) -> Frames:
        szd = self._szd_of(c, price)
        px = fmt_px(price * c.wire_mult, szd)
        ctx = {"funding": "0.0000125", "openInterest": fmt_sz(self._coins(c, oi, price), szd), "prevDayPx": px,
               "dayNtlVlm": "0.0", "premium": "0.0", "oraclePx": px, "markPx": px, "midPx": px,
               "impactPxs": [px, px], "dayBaseVlm": "0.0"}
        return [(self.ws, orjson.dumps({"channel": "activeAssetCtx", "data": {"coin": c.symbol, "ctx": ctx}}).decode())]

"""The demo's Hyperliquid ``POST /info`` for ``clearinghouseState``: each simulated trader's positions, in the
answer's real shape, so the Positions layer and the live accuracy check run offline in ``liqmap --demo``.

A demo wallet is ``position_wallet(asset, position id)`` (``demo/hyperliquid.py``: the address the demo's
Hyperliquid trades carry in ``users``; one wallet per simulated position). The answer is read from the simulator's open positions (its true entries, leverage, sizes and liquidation prices;
``market.py``), never changes the simulation, and depends only on the seed and the simulated time: the demo
stays deterministic per seed. Shapes: docs/hyperliquid.md §3 (``leverage`` an object, numbers as decimal
strings, ``liquidationPx`` null where a position has none).
"""

from __future__ import annotations

import math

import numpy as np
import orjson

try:  # the address the demo's Hyperliquid trades carry (the venue's demo emitter)
    from .hyperliquid import position_wallet
except ImportError:  # stand-in until the demo emits Hyperliquid frames: the same kind of deterministic address
    import hashlib

    from .market import asset_seed

    def position_wallet(asset: str, position_id: int) -> str:
        tid = (asset_seed(asset) << 32) | int(position_id)
        return "0x" + hashlib.blake2b(f"liqmap-demo-wallet:{tid}".encode(), digest_size=20).hexdigest()


def _s(x: float) -> str:
    """A decimal string as Hyperliquid sends numbers."""
    return repr(round(float(x), 10))


class DemoClearinghouse:
    """Answers ``clearinghouseState`` from a ``DemoSource``'s open positions on ``venue``. Also a poller
    ``Transport`` (``post``/``close``), in process: the poller's rate budget and parser are the live ones."""

    def __init__(self, source, venue: str = "hyperliquid") -> None:
        self.source = source
        self.venue = venue
        self._owner: dict[str, tuple[str, int]] = {}  # wallet → (asset, position id)
        self._mapped: dict[str, int] = {}  # asset → ids below this have their wallet in ``_owner``
        self.requests = 0

    def _owner_of(self, wallet: str) -> tuple[str, int] | None:
        hit = self._owner.get(wallet)
        if hit is None:  # positions opened since the last look: map their wallets (each id once, ever)
            for name in list(self.source.sims):
                sim = self.source.venue_sim(name, self.venue)  # the asset's simulator, or its shadow
                if sim is None:
                    continue
                for pid in range(self._mapped.get(name, 1), sim.next_id):
                    self._owner[position_wallet(name, pid)] = (name, pid)
                self._mapped[name] = max(self._mapped.get(name, 1), sim.next_id)
            hit = self._owner.get(wallet)
        return hit

    def state(self, wallet: str) -> dict:
        """The wallet's clearinghouseState (no positions for a wallet the demo does not know)."""
        hit = self._owner_of(wallet)
        positions = []
        ntl = margin = 0.0
        now_ms = int(round(self.source.now() * 1000))
        if hit is not None:
            name, pid = hit
            sim = self.source.venue_sim(name, self.venue)
            c = sim.contracts.get(self.venue)
            buf = sim._buf[:sim._n]
            i = int(np.searchsorted(buf["id"], pid))  # ids grow along the buffer (compaction keeps order)
            if c is not None and i < len(buf) and buf["id"][i] == pid and buf["alive"][i] and buf["venue"][i] == c.vid:
                p = buf[i]
                positions.append(self._position(name, c, p, sim.price))
                ntl = float(c.usd(p["qty"], sim.price))
                margin = float(c.usd(p["qty"], p["entry"])) / float(p["lev"])
        summary = {"accountValue": _s(margin), "totalMarginUsed": _s(margin), "totalNtlPos": _s(ntl),
                   "totalRawUsd": _s(margin)}
        return {"assetPositions": positions, "marginSummary": summary,
                "crossMarginSummary": {"accountValue": "0.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0",
                                       "totalRawUsd": "0.0"},
                "crossMaintenanceMarginUsed": "0.0", "withdrawable": "0.0", "time": now_ms}

    @staticmethod
    def _position(name: str, c, p, price: float) -> dict:
        side = 1.0 if p["side"] > 0 else -1.0
        wire = float(getattr(c, "wire_mult", c.mult) or 1.0)  # the coin's lot on the wire (kPEPE: 1000 PEPE)
        entry, liq, lev = float(p["entry"]), float(p["liq"]), float(p["lev"])
        base = float(c.base_qty(p["qty"], entry))  # base units at entry (inverse contracts: USD / entry)
        szi = side * base / wire
        value = base * price
        margin = base * entry / lev
        upnl = side * base * (price - entry)
        coin = c.symbol if getattr(c, "wire_mult", None) is not None else (
            name if c.mult == 1 else f"k{name}")  # the stand-in venue's symbol is not a coin name
        # the demo's margin is the position's own (its liquidation price ignores other positions): isolated
        return {"type": "oneWay", "position": {
            "coin": coin, "szi": _s(szi), "entryPx": _s(entry * wire),
            "leverage": {"type": "isolated", "value": int(round(lev)), "rawUsd": _s(-szi * entry * wire + margin)},
            "liquidationPx": _s(liq * wire) if 0 < liq and math.isfinite(liq) else None,
            "marginUsed": _s(max(margin + upnl, 0.0)), "positionValue": _s(value), "unrealizedPnl": _s(upnl),
            "returnOnEquity": _s(upnl / margin if margin else 0.0), "maxLeverage": int(c.max_lev),
            "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"}}}

    def answer(self, payload: dict) -> tuple[int, bytes, dict]:
        self.requests += 1
        user = payload.get("user") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or payload.get("type") != "clearinghouseState" or not isinstance(user, str):
            return 422, b"Failed to deserialize the JSON body into the target type", {}
        return 200, orjson.dumps(self.state(user)), {"Content-Type": "application/json"}

    async def post(self, payload: dict) -> tuple[int, bytes, dict]:
        return self.answer(payload)

    async def close(self) -> None:
        return None

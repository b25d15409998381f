"""The demo's Hyperliquid ``POST /info`` for ``clearinghouseState``: each simulated trader's positions, in the
answer's real shape, so the Positions layer and the live accuracy check run offline in ``liqmap --demo``.

A demo wallet is ``demo_wallet(position id)`` (the address the demo's Hyperliquid trades carry in ``users``).
Position ids are per asset, so one wallet can hold positions in several assets — as real wallets do. The
answer is read from the simulator's open positions (its true entries, leverage, sizes and liquidation prices;
``market.py``), never changes the simulation, and depends only on the seed and the simulated time: the demo
stays deterministic per seed. Shapes: docs/hyperliquid.md §3 (``leverage`` an object, numbers as decimal
strings, ``liquidationPx`` null where a position has none).
"""

from __future__ import annotations

import math

import numpy as np
import orjson

try:  # the address the demo's Hyperliquid trades carry (the venue's demo emitter)
    from .hyperliquid import demo_wallet
except ImportError:  # stand-in until the demo emits Hyperliquid frames: the same kind of deterministic address
    import hashlib

    def demo_wallet(trader_id) -> str:
        return "0x" + hashlib.sha256(f"liqmap-demo-wallet-{int(trader_id)}".encode()).hexdigest()[:40]


def _s(x: float) -> str:
    """A decimal string as Hyperliquid sends numbers."""
    return repr(round(float(x), 10))


class DemoClearinghouse:
    """Answers ``clearinghouseState`` from a ``DemoSource``'s open positions on ``venue``. Also a poller
    ``Transport`` (``post``/``close``), in process: the poller's rate budget and parser are the live ones."""

    def __init__(self, source, venue: str = "hyperliquid") -> None:
        self.source = source
        self.venue = venue
        self._ids: dict[str, int] = {}
        self._mapped = 0  # ids 1 .. _mapped - 1 have their wallet in ``_ids``
        self.requests = 0

    def _id_of(self, wallet: str) -> int | None:
        pid = self._ids.get(wallet)
        if pid is None:
            top = max((s.next_id for s in self.source.sims.values()), default=1)
            for i in range(max(self._mapped, 1), top):
                self._ids[demo_wallet(i)] = i
            self._mapped = max(self._mapped, top)
            pid = self._ids.get(wallet)
        return pid

    def state(self, wallet: str) -> dict:
        """The wallet's clearinghouseState (no positions for a wallet the demo does not know)."""
        pid = self._id_of(wallet)
        positions = []
        ntl = margin = 0.0
        now_ms = int(round(self.source.now() * 1000))
        if pid is not None:
            for name, sim in self.source.sims.items():
                c = sim.contracts.get(self.venue)
                if c is None:
                    continue
                buf = sim._buf[:sim._n]
                i = int(np.searchsorted(buf["id"], pid))  # ids grow along the buffer (compaction keeps order)
                if i >= len(buf) or buf["id"][i] != pid or not buf["alive"][i] or buf["venue"][i] != c.vid:
                    continue
                p = buf[i]
                positions.append(self._position(name, c, p, sim.price))
                ntl += float(c.usd(p["qty"], sim.price))
                margin += float(c.usd(p["qty"], p["entry"])) / float(p["lev"])
        summary = {"accountValue": _s(margin), "totalMarginUsed": _s(margin), "totalNtlPos": _s(ntl),
                   "totalRawUsd": _s(margin)}
        return {"assetPositions": positions, "marginSummary": summary,
                "crossMarginSummary": {"accountValue": "0.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0",
                                       "totalRawUsd": "0.0"},
                "crossMaintenanceMarginUsed": "0.0", "withdrawable": "0.0", "time": now_ms}

    @staticmethod
    def _position(name: str, c, p, price: float) -> dict:
        side = 1.0 if p["side"] > 0 else -1.0
        # Hyperliquid's coin: the asset, or k + asset for the 1000-lots (kPEPE); sizes in the coin's units
        szi = side * float(p["qty"]) * c.contract_size
        entry, liq, lev = float(p["entry"]), float(p["liq"]), float(p["lev"])
        value = abs(szi) * price * c.mult
        margin = abs(szi) * entry * c.mult / lev
        upnl = szi * (price - entry) * c.mult
        # the demo's margin is the position's own (its liquidation price ignores other positions): isolated
        return {"type": "oneWay", "position": {
            "coin": name if c.mult == 1 else f"k{name}", "szi": _s(szi), "entryPx": _s(entry * c.mult),
            "leverage": {"type": "isolated", "value": int(round(lev)), "rawUsd": _s(-szi * entry * c.mult + margin)},
            "liquidationPx": _s(liq * c.mult) if 0 < liq and math.isfinite(liq) else None,
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

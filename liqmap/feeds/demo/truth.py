"""Ground truth of the demo market: what the simulator knows and no venue publishes.

``positions(source, asset)`` lists every open position with its TRUE liquidation price (tiered margin,
the same formulas as the core) and size; ``liquidation_log(source, asset, since)`` is every liquidation
that actually happened (Binance publishes at most one per symbol per second, so the frames under-report;
this log does not). The forecast-skill benchmark scores the synthetic model against these.
"""

from __future__ import annotations

import numpy as np

TRUTH_POS_DTYPE = np.dtype([
    ("venue", "u1"),  # index into liqmap.core.events.VENUES
    ("side", "i1"),  # LONG +1 / SHORT -1
    ("entry", "f8"),
    ("leverage", "f8"),
    ("size_base", "f8"),  # base units (inverse contracts converted at entry)
    ("usd", "f8"),  # notional at entry
    ("liq_price", "f8"),  # true liquidation price
    ("bk_price", "f8"),  # bankruptcy price (what OKX/Bybit/BitMEX report)
    ("qty", "f8"),  # venue contracts
    ("opened", "f8"),  # when the position opened (before the market's first frame: the simulated prehistory)
])

LIQ_LOG_DTYPE = np.dtype([
    ("ts", "f8"), ("price", "f8"), ("usd", "f8"), ("base", "f8"), ("side", "i1"), ("venue", "u1"),
    ("asset", "U12"),
])


def _sims(source, asset: str) -> list:
    """The asset's simulator and, where it has one, the shadow beside it (venues past its slots)."""
    sim = source.sim(asset)
    sh = getattr(source, "shadows", {}).get(asset)
    return [sim] if sh is None else [sim, sh]


def positions(source, asset: str) -> np.ndarray:
    parts = [_positions(sim) for sim in _sims(source, asset)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _positions(sim) -> np.ndarray:
    p = sim.pos
    out = np.zeros(len(p), TRUTH_POS_DTYPE)
    out["venue"], out["side"], out["entry"], out["leverage"] = p["venue"], p["side"], p["entry"], p["lev"]
    out["size_base"] = sim.base_of(p["venue"], p["qty"], p["entry"])
    out["usd"] = sim.usd_of(p["venue"], p["qty"], p["entry"])
    out["liq_price"], out["bk_price"], out["qty"] = p["liq"], p["bk"], p["qty"]
    out["opened"] = p["opened"]
    return out


def liquidation_log(source, asset: str | None = None, since: float | None = None) -> np.ndarray:
    names = [asset] if asset else list(source.sims)
    parts = []
    for n in names:
        log = [x for sim in _sims(source, n) for x in sim.liq_log]
        if not log:
            continue
        rows = np.concatenate(log)
        if since is not None:
            rows = rows[rows["ts"] >= since]
        part = np.zeros(len(rows), LIQ_LOG_DTYPE)
        for f in ("ts", "price", "usd", "base", "side", "venue"):
            part[f] = rows[f]
        part["asset"] = n
        parts.append(part)
    if not parts:
        return np.zeros(0, LIQ_LOG_DTYPE)
    out = np.concatenate(parts)
    return out[np.argsort(out["ts"], kind="stable")]


def dump(source, path, asset: str | None = None) -> int:
    """Write the open positions (every asset, or one) as CSV: asset, venue, side, entry, leverage,
    size_base, usd, liq_price, bk_price. Returns the number of rows written."""
    from liqmap.core.events import VENUES

    names = [asset] if asset else list(source.sims)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("asset,venue,side,entry,leverage,size_base,usd,liq_price,bk_price\n")
        for a in names:
            for r in positions(source, a):
                f.write(f"{a},{VENUES[r['venue']]},{'long' if r['side'] > 0 else 'short'},{r['entry']!r},"
                        f"{r['leverage']:g},{r['size_base']!r},{r['usd']:.2f},{r['liq_price']!r},{r['bk_price']!r}\n")
                n += 1
    return n

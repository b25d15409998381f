"""How the demo trades each asset on each venue: units, lot sizes, price ticks, max leverage, margin tiers.

Quantities of simulated positions are held in the venue's own units (contracts of ``VenueMarket``:
base units for linear contracts, USD for inverse ones), quantized to a lot, so every number the
simulator prints in a frame is exactly the number it holds and open interest can be compared to the sum
of positions without rounding doubt.

True liquidation prices come from the core (``liqmap.core.tiers.liq_price_tiered``: linear or inverse,
MMR and ``cum`` of the tier the position is in at its liquidation price) with each asset's tier table
(``table_for``), exactly the formulas the synthetic model uses; leverage is capped by the tier the
position's notional falls in. Bankruptcy prices (what OKX, Bybit and BitMEX report) are computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liqmap.core.assets import Asset
from liqmap.core.events import VENUES
from liqmap.core.tiers import TierTable, liq_price_tiered, table_for

# Share of simulated flow per venue (renormalized over the venues that list an asset).
VENUE_SHARE = {"binance": 0.38, "bybit": 0.25, "okx": 0.20, "bitmex": 0.07, "deribit": 0.10}

# The simulator's venue slots, in the order its random draws use them (a position's venue is drawn over
# this order, the receipt-time jitter is drawn per slot): changing the order or the number of slots changes
# the whole simulated market, which the model's benchmark uses as ground truth.
DEMO_VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "hyperliquid", "deribit")
# Hyperliquid took BitMEX's slot when BitMEX closed (2026-09-23) and keeps its simulated economics (share,
# leverage cap, lot, margin table, listing, units): the market simulated is the one the benchmark scores
# against; only the frames are Hyperliquid's (demo/hyperliquid.py).
SLOT_ECONOMICS: dict[str, str] = {"hyperliquid": "bitmex"}

def bankruptcy_price(entry, lev, side, inverse):
    """Price at which the position's margin is exactly gone: what OKX/Bybit/BitMEX report."""
    entry = np.asarray(entry, dtype=float)
    if inverse:
        return np.where(np.asarray(side) > 0, entry / (1 + 1 / lev), entry / (1 - 1 / lev))
    return np.where(np.asarray(side) > 0, entry * (1 - 1 / lev), entry * (1 + 1 / lev))


def _decimals(x: float) -> int:
    s = f"{x:.12f}".rstrip("0").rstrip(".")
    return len(s.split(".")[1]) if "." in s else 0


@dataclass(frozen=True)
class Contract:
    """One (asset, venue) market as the demo trades it."""

    venue: str
    vid: int
    symbol: str
    inverse: bool
    contract_size: float  # VenueMarket.contract_size: base per contract (linear) or USD (inverse)
    mult: float  # VenueMarket.price_multiplier (1000PEPE)
    lot: float  # venue quantity unit step (contracts)
    qty_dp: int  # decimals to print a quantity
    price_tick: float  # venue price tick (venue price units)
    price_dp: int
    max_lev: float
    share: float
    table: TierTable
    asset: str = ""
    wire_mult: float = 1.0  # the venue's own lot on the wire (Hyperliquid kPEPE = 1000 PEPE)

    # --- unit conversions: ``qty`` is in venue contracts, ``price`` in real USD per base unit
    def venue_price(self, price: float) -> float:
        return price * self.mult

    def base_qty(self, qty, price):
        """Base units of ``qty`` contracts at ``price`` (inverse contracts are USD)."""
        if self.inverse:
            return np.asarray(qty) * self.contract_size / np.asarray(price)
        return np.asarray(qty) * self.contract_size * self.mult

    def usd(self, qty, price):
        if self.inverse:
            return np.asarray(qty) * self.contract_size
        return np.asarray(qty) * self.contract_size * self.mult * np.asarray(price)

    def qty_for_usd(self, usd, price):
        """Contracts for a USD notional, rounded to the lot (at least one lot)."""
        if self.inverse:
            raw = np.asarray(usd) / self.contract_size
        else:
            raw = np.asarray(usd) / (self.contract_size * self.mult * np.asarray(price))
        lots = np.maximum(np.round(raw / self.lot), 1.0)
        return np.round(lots * self.lot, self.qty_dp)

    def fmt_qty(self, qty: float) -> str:
        return "%.*f" % (self.qty_dp, qty)

    def fmt_price(self, price: float) -> str:
        """Real price → the venue's price string on its tick."""
        return "%.*f" % (self.price_dp, round(price * self.mult / self.price_tick) * self.price_tick)

    def round_price(self, price: float) -> float:
        """Real price rounded to the venue tick (what the venue would print), back in real units."""
        return float(self.fmt_price(price)) / self.mult

    def notional(self, qty, entry):
        return np.asarray(self.usd(qty, entry), dtype=float)

    def max_leverage_for(self, notional) -> np.ndarray:
        """The venue cap and the tier's cap for a position of this USD notional."""
        return np.minimum(self.max_lev, np.asarray(self.table.max_leverage_for(notional), dtype=float))

    def liq_price(self, entry, lev, side, qty):
        """True liquidation price (real USD) of positions, with the tier at that price (core formula)."""
        notional = self.notional(qty, entry)
        lp = np.asarray(liq_price_tiered(entry, lev, side, notional, self.table, inverse=self.inverse), float)
        # nan = nothing at risk (cannot happen for ≥ 2x, but never let a nan reach a comparison)
        lp = np.where(np.isnan(lp), np.where(np.asarray(side) > 0, 0.0, np.inf), lp)
        return lp, np.asarray(self.table.mmr_for(notional), dtype=float)


def _max_leverage(venue: str, rank: int) -> float:
    top = {"binance": 125, "bybit": 100, "okx": 100, "bitmex": 100, "deribit": 50}[venue]
    if rank < 2:
        return float(top)
    if rank < 10:
        return float(min(top, 75 if venue == "binance" else 50))
    return float(min(top, 50 if venue in ("binance", "bybit") else 20 if venue == "deribit" else 25))


def contracts_for(asset: Asset, rank: int, weight: float) -> dict[str, Contract]:
    """The venues that list ``asset``, with the demo's unit and margin conventions for each."""
    econ = {v: SLOT_ECONOMICS.get(v, v) for v in DEMO_VENUES}
    listed = [v for v in DEMO_VENUES if v in asset.markets and econ[v] in asset.markets]
    total = sum(VENUE_SHARE[econ[v]] for v in listed)
    out: dict[str, Contract] = {}
    for v in listed:
        e = econ[v]  # the simulated contract's economics (units, lot, leverage, tiers)
        m = asset.markets[e]
        mult = m.price_multiplier or 1.0
        if m.inverse:
            lot = 1.0  # whole contracts (of contract_size USD each)
        else:
            # A lot worth $1–10 (prints cleanly); BitMEX linear trades whole contracts.
            per_contract_usd = asset.ref_price * m.contract_size * mult
            lot = 10.0 ** math.floor(math.log10(10.0 / per_contract_usd))
            if lot >= 1:
                lot = float(round(lot))
            if e == "bitmex":
                lot = max(1.0, lot)
        price_tick = float(f"{asset.tick * mult:.12g}")
        if m.inverse:
            price_tick = float(f"{price_tick * 5:.12g}")  # XBTUSD / BTC-PERPETUAL 0.5, ETH inverse 0.05
        out[v] = Contract(
            venue=v, vid=VENUES.index(v), symbol=asset.markets[v].symbol, inverse=m.inverse,
            contract_size=m.contract_size, mult=mult, lot=lot, qty_dp=_decimals(lot),
            price_tick=price_tick, price_dp=_decimals(price_tick), max_lev=_max_leverage(e, rank),
            share=VENUE_SHARE[e] / total, table=table_for(asset.name, e), asset=asset.name,
            wire_mult=asset.markets[v].price_multiplier or 1.0,
        )
    return out


# Venues simulated beside the main simulator where their slot's economics do not list the asset (a ShadowSim,
# market.py): Hyperliquid lists 61 of the 65 assets, BitMEX's former slot only 25.
SHADOW_VENUES: tuple[str, ...] = ("hyperliquid",)


def shadow_contracts(asset: Asset, rank: int, weight: float) -> tuple[dict[str, Contract], float]:
    """The venues ``asset`` is listed on that its main simulator does not hold (``contracts_for`` keeps them out:
    their slot's economics lack the asset), with linear coin contracts at the slot's leverage cap and the venue's
    own margin table; and their share of the asset's flow relative to the main simulator's (their slot's share
    over the listed venues' — what it would take were it in the slot draw). ``({}, 0.0)`` when there is none."""
    main = contracts_for(asset, rank, weight)
    out: dict[str, Contract] = {}
    listed = [v for v in DEMO_VENUES if v in main]
    total = sum(VENUE_SHARE[SLOT_ECONOMICS.get(v, v)] for v in listed)
    extra = 0.0
    for v in SHADOW_VENUES:
        if v in main or v not in asset.markets:
            continue
        e = SLOT_ECONOMICS.get(v, v)
        share = VENUE_SHARE[e]
        extra += share
        lot = 10.0 ** math.floor(math.log10(10.0 / asset.ref_price))
        if lot >= 1:
            lot = float(round(lot))
        price_tick = float(f"{asset.tick:.12g}")
        out[v] = Contract(
            venue=v, vid=VENUES.index(v), symbol=asset.markets[v].symbol, inverse=False, contract_size=1.0,
            mult=1.0, lot=lot, qty_dp=_decimals(lot), price_tick=price_tick, price_dp=_decimals(price_tick),
            max_lev=_max_leverage(e, rank), share=share / (total + share), table=table_for(asset.name, v),
            asset=asset.name, wire_mult=asset.markets[v].price_multiplier or 1.0,
        )
    return out, (extra / total if total > 0 else 0.0)

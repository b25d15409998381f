"""The core's part of each venue, as declared data: its id (a row's ``venue`` byte), how it spells the
universe's contracts (its symbol rule), whether liqmap still connects to it live, and the names people read
(its label, and three letters where that does not fit: status bar, reports panel).

Everything else about a venue (endpoints, channels, names people read, limits, parsing) is declared on its
module in ``liqmap/feeds/venues/``; the registry there is derived from those modules and checks each one
against this table at build (same names, same ids). The core keeps only what it computes with and must not
import the feeds for: ids are packed into stored history, recordings and the model's bits, and the model reads
a contract's inverse flag and size from the symbol rule. The names live here too so the UI reads them without
importing the venue modules (they bring cryptofeed, which the app's start imports off its main thread).

Adding a venue: one ``Venue`` appended here (never inserted: a venue keeps its id forever; at most 8, the
model's packing) and its module in ``liqmap/feeds/venues/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VenueMarket:
    """One venue's contract for an asset."""

    symbol: str
    inverse: bool = False  # quoted in USD contracts, margined in the coin (XBTUSD, BTC-PERPETUAL)
    contract_size: float = 1.0  # base units per contract (linear) or USD per contract (inverse)
    price_multiplier: float = 1.0  # 1000 for Binance's 1000PEPE-style contracts


@dataclass(frozen=True)
class SymbolRule:
    """How a venue names an asset's perpetual: ``linear`` formatted with the asset's ``name`` and its Binance
    ``root`` (the 1000x contracts' root, else the name). ``listed`` limits the linear contracts to those assets
    (None: every asset not in ``absent``); ``inverse`` maps an asset to its coin-margined contract instead
    (``inverse_size`` USD a contract); ``lots`` maps an asset to a 1000-unit contract of another name
    (price per 1000 coins); ``root_lots``: a root starting with 1000 is such a contract too."""

    linear: str
    listed: frozenset[str] | None = None
    absent: frozenset[str] = frozenset()
    inverse: dict[str, str] = field(default_factory=dict)
    inverse_size: float = 1.0
    lots: dict[str, str] = field(default_factory=dict)
    root_lots: bool = False

    def market(self, name: str, root: str | None = None) -> VenueMarket | None:
        """The venue's contract for asset ``name`` (None when the venue does not list it)."""
        root = root or name
        if name in self.inverse:
            return VenueMarket(self.inverse[name], inverse=True, contract_size=self.inverse_size)
        if name in self.lots:
            return VenueMarket(self.lots[name], price_multiplier=1000.0)
        if name in self.absent or (self.listed is not None and name not in self.listed):
            return None
        mult = 1000.0 if self.root_lots and root.startswith("1000") else 1.0
        return VenueMarket(self.linear.format(name=name, root=root), price_multiplier=mult)


@dataclass(frozen=True)
class Venue:
    """The core's part of one venue (its id is its place in ``TABLE``)."""

    name: str
    label: str
    short: str  # three letters, upper case
    symbols: SymbolRule
    live: bool = True  # False: closed, kept so its old recordings replay
    # The venue's liquidation stream is a sample: at most one print per symbol per interval, the rest of a burst
    # unseen. Binance's forceOrder streams (USD-M "Liquidation Order Streams", checked 2026-12-05): "For each
    # symbol, only the latest one liquidation order within 1000ms will be pushed as the snapshot". Raw
    # undercounts such a venue in bursts (the legend says so) and the model's reconciliation reads one of its
    # prints as "this level was hit", not "this many USD were" (core/model/synthetic.py ``_reconcile``).
    liq_sampled: bool = False


# BitMEX and Deribit list far fewer perpetuals; these are the ones they carry (checked against their
# instrument lists as recorded in shared/reference; live ccxt metadata overrides this). BitMEX closed on
# 2026-09-23: its symbols stay so its old recordings replay.
_BITMEX_LINEAR = frozenset({"SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "NEAR",
                            "APT", "ARB", "OP", "SUI", "TON", "PEPE", "WIF", "FIL", "ETC", "ATOM", "UNI", "AAVE"})
_DERIBIT_LINEAR = frozenset({"SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "NEAR",
                             "UNI", "TRX", "ALGO"})

# Every venue liqmap has ever parsed, in id order (a row's ``venue`` is the index here; new ones are appended).
TABLE: tuple[Venue, ...] = (
    Venue("binance", "Binance USD-M", "BIN", SymbolRule("{root}USDT", root_lots=True), liq_sampled=True),
    Venue("bybit", "Bybit", "BYB", SymbolRule("{root}USDT", root_lots=True)),
    Venue("okx", "OKX", "OKX", SymbolRule("{name}-USDT-SWAP")),
    Venue("bitmex", "BitMEX", "BMX", SymbolRule("{name}USDT", listed=_BITMEX_LINEAR, inverse_size=1.0,
                                                inverse={"BTC": "XBTUSD", "ETH": "ETHUSD"}), live=False),
    Venue("deribit", "Deribit", "DER", SymbolRule("{name}_USDC-PERPETUAL", listed=_DERIBIT_LINEAR, inverse_size=10.0,
                                                  inverse={"BTC": "BTC-PERPETUAL", "ETH": "ETH-PERPETUAL"})),
    # Hyperliquid (docs/hyperliquid.md §8, checked 2026-12-05): coin names as its ``meta`` universe spells them,
    # case-sensitive. The k-coins are 1000-unit lots (kPEPE = 1000 PEPE, as Binance's 1000PEPE): their prices are
    # per 1000 coins and their sizes in lots. MKR is delisted there (``isDelisted``) and MANA, VET and EOS were
    # never listed: those assets have no Hyperliquid rows.
    Venue("hyperliquid", "Hyperliquid", "HYP",
          SymbolRule("{name}", absent=frozenset({"MKR", "MANA", "VET", "EOS"}),
                     lots={"PEPE": "kPEPE", "SHIB": "kSHIB", "BONK": "kBONK", "FLOKI": "kFLOKI"})),
)
# The names people read (the status bar upper case, the reports panel's venue lists lower case).
VENUE_LABEL: dict[str, str] = {v.name: v.label for v in TABLE}
VENUE_SHORT: dict[str, str] = {v.name: v.short for v in TABLE}
# Venues whose liquidation stream sends at most one print per symbol per second (``Venue.liq_sampled``).
LIQ_SAMPLED: frozenset[str] = frozenset(v.name for v in TABLE if v.liq_sampled)

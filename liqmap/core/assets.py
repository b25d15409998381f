"""The asset universe: 65 liquid perpetuals, and each venue's contract for them (by the venue's symbol rule,
declared in ``core.venues``).

Reference prices and ticks here are only a cold-start prior (the demo market starts from them and the
bucket step uses them until the first trade arrives); live metadata from ccxt replaces the ticks and the
venue symbols once it is loaded. A venue that does not list an asset simply has no symbol for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .venues import TABLE, VenueMarket  # noqa: F401 - VenueMarket re-exported (its old home)

# base asset, reference price (USD), tick size on Binance USD-M, Binance symbol root when it differs
# (the 1000x contracts), max leverage on Binance as of the bundled tier table.
_UNIVERSE: tuple[tuple[str, float, float, str | None], ...] = (
    ("BTC", 66000.0, 0.1, None),
    ("ETH", 3000.0, 0.01, None),
    ("SOL", 150.0, 0.01, None),
    ("XRP", 0.6, 0.0001, None),
    ("BNB", 580.0, 0.01, None),
    ("DOGE", 0.12, 0.00001, None),
    ("ADA", 0.41, 0.0001, None),
    ("AVAX", 27.0, 0.001, None),
    ("LINK", 12.0, 0.001, None),
    ("DOT", 5.0, 0.001, None),
    ("TRX", 0.16, 0.00001, None),
    ("TON", 5.5, 0.0001, None),
    ("SUI", 2.0, 0.0001, None),
    ("LTC", 70.0, 0.01, None),
    ("BCH", 350.0, 0.01, None),
    ("NEAR", 4.5, 0.001, None),
    ("APT", 8.0, 0.001, None),
    ("ARB", 0.6, 0.0001, None),
    ("OP", 1.6, 0.0001, None),
    ("POL", 0.4, 0.0001, None),
    ("ATOM", 6.0, 0.001, None),
    ("FIL", 4.0, 0.001, None),
    ("ETC", 20.0, 0.001, None),
    ("XLM", 0.1, 0.00001, None),
    ("HBAR", 0.07, 0.00001, None),
    ("ICP", 9.0, 0.001, None),
    ("INJ", 20.0, 0.001, None),
    ("SEI", 0.35, 0.0001, None),
    ("TIA", 5.5, 0.001, None),
    ("RENDER", 5.5, 0.001, None),
    ("WIF", 2.0, 0.0001, None),
    ("PEPE", 0.00001, 0.0000001, "1000PEPE"),
    ("SHIB", 0.000018, 0.000001, "1000SHIB"),
    ("BONK", 0.00002, 0.0000001, "1000BONK"),
    ("FLOKI", 0.00013, 0.00001, "1000FLOKI"),
    ("UNI", 7.0, 0.001, None),
    ("AAVE", 150.0, 0.01, None),
    ("MKR", 1500.0, 0.1, None),
    ("LDO", 1.2, 0.0001, None),
    ("CRV", 0.3, 0.0001, None),
    ("ENA", 0.3, 0.0001, None),
    ("ONDO", 0.7, 0.0001, None),
    ("JUP", 0.8, 0.0001, None),
    ("PYTH", 0.3, 0.0001, None),
    ("WLD", 1.8, 0.0001, None),
    ("STX", 1.7, 0.0001, None),
    ("IMX", 1.4, 0.0001, None),
    ("GALA", 0.02, 0.00001, None),
    ("SAND", 0.27, 0.0001, None),
    ("MANA", 0.28, 0.0001, None),
    ("AXS", 5.0, 0.001, None),
    ("APE", 0.7, 0.0001, None),
    ("FET", 1.3, 0.0001, None),
    ("TAO", 350.0, 0.01, None),
    ("ORDI", 30.0, 0.001, None),
    ("KAS", 0.15, 0.00001, None),
    ("RUNE", 4.0, 0.001, None),
    ("ALGO", 0.13, 0.0001, None),
    ("VET", 0.022, 0.000001, None),
    ("EOS", 0.5, 0.001, None),
    ("ZEC", 40.0, 0.01, None),
    ("DYDX", 1.2, 0.001, None),
    ("ENS", 20.0, 0.001, None),
    ("STRK", 0.4, 0.0001, None),
    ("PENDLE", 4.0, 0.0001, None),
)

DEFAULT_ASSETS: tuple[str, ...] = tuple(a[0] for a in _UNIVERSE)


@dataclass(frozen=True)
class Asset:
    name: str
    ref_price: float
    tick: float
    markets: dict[str, VenueMarket] = field(default_factory=dict)


def _markets(name: str, binance_root: str | None) -> dict[str, VenueMarket]:
    """Each venue's contract for the asset, by its symbol rule (``core.venues``), in venue id order."""
    out = {}
    for v in TABLE:
        vm = v.symbols.market(name, binance_root)
        if vm is not None:
            out[v.name] = vm
    return out


def default_universe() -> dict[str, Asset]:
    return {
        name: Asset(name, price, tick / (1000.0 if (root or "").startswith("1000") else 1.0),
                    _markets(name, root))
        for name, price, tick, root in _UNIVERSE
    }


def universe(names: list[str] | tuple[str, ...]) -> dict[str, Asset]:
    """The assets named, in that order; unknown names get a neutral prior (price 1, tick 1e-6)."""
    base = default_universe()
    out: dict[str, Asset] = {}
    for n in names:
        key = n.upper()
        out[key] = base.get(key) or Asset(key, 1.0, 1e-6, _markets(key, None))
    return out

"""Shared normalization helpers for the venue adapters.

Every venue reports sizes in its own unit (base coin, contracts of some size, USD for inverse contracts,
1000-coin lots for 1000PEPE-style symbols). ``to_base`` turns (venue qty, venue price) into the three
numbers the rest of liqmap uses: price per base coin, base quantity, USD notional. ``SeenLRU`` is the
bounded "have I already emitted this?" memory that drops duplicates replayed across reconnects.
"""

from __future__ import annotations

from liqmap.core.assets import VenueMarket

# Units a venue quantity can be in.
CONTRACTS = "contracts"  # n × contract_size (base coins for linear, USD for inverse)
USD = "usd"  # already USD notional (Deribit inverse amounts)
BASE = "base"  # base coins in the venue's own lot (× price_multiplier for 1000PEPE-style symbols)


def to_base(vm: VenueMarket, qty: float, price: float, unit: str = CONTRACTS) -> tuple[float, float, float]:
    """(price per base coin, base qty, USD notional) for a venue quantity at a venue price.

    ``price_multiplier`` is how many base coins one venue lot holds (1000 for 1000PEPEUSDT): the venue
    quotes a price per lot, so the per-coin price is divided by it and the coin count multiplied.
    """
    mult = vm.price_multiplier
    px = price / mult if mult != 1.0 else price
    if unit == USD or (unit == CONTRACTS and vm.inverse):
        usd = qty * vm.contract_size if unit == CONTRACTS else qty
        base = usd / px if px > 0 else 0.0
        return px, base, usd
    if unit == CONTRACTS:
        lots = qty * vm.contract_size
    else:
        lots = qty
    return px, lots * mult, lots * price


class SeenLRU:
    """A bounded set: ``add(key)`` is True the first time a key is seen, False for a repeat.

    Dict insertion order gives the eviction order for free; the oldest key is dropped once
    ``maxlen`` is reached, so memory stays flat however long the feed runs.
    """

    __slots__ = ("_d", "maxlen")

    def __init__(self, maxlen: int = 50_000) -> None:
        self._d: dict = {}
        self.maxlen = maxlen

    def add(self, key) -> bool:
        d = self._d
        if key in d:
            return False
        d[key] = None
        if len(d) > self.maxlen:
            del d[next(iter(d))]
        return True

    def __contains__(self, key) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)


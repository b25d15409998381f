"""Contract metadata and public margin tiers, fetched through ccxt and cached on disk.

What each venue's contract is (size, tick, linear/inverse, max leverage) decides how the adapters turn
contracts into coins, and the margin tiers decide where the synthetic model puts liquidation prices. Both
change rarely, so they are fetched in a worker thread (never on the event loop), written to
``<data dir>/metadata.json`` with a ``fetched_at`` time per venue, and reused until ``ttl`` has passed: a
restart inside the TTL does not refetch, and an offline start works from the cache, or — with no cache —
from the built-in defaults in ``liqmap.core.assets``.

Sources: ccxt ``load_markets`` for Bybit, OKX and Deribit, ccxt ``fetch_market_leverage_tiers`` for the
public Bybit (``/v5/market/risk-limit``) and OKX (``/public/position-tiers``) ladders. The installed ccxt
no longer ships BitMEX, so BitMEX is read from its public ``/api/v1/instrument/active`` (one request: the
instrument row carries ``multiplier``, ``tickSize``, ``maintMargin``, ``initMargin``, ``riskLimit``).
Deribit publishes no tier ladder (portfolio/standard margin); Binance's brackets need keys, so Binance
uses the bundled table in ``liqmap.core.tiers``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from liqmap.core.assets import Asset, VenueMarket

LOG = logging.getLogger("liqmap.metadata")

CACHE_VERSION = 1
def ccxt_ids() -> dict[str, str]:
    """venue → ccxt exchange id, as each venue module declares it (``CCXT_ID``; None: no ccxt class)."""
    from .venues import VENUE_CLASSES

    return {v: c.CCXT_ID for v, c in VENUE_CLASSES.items() if c.CCXT_ID}
TIER_VENUES = ("bybit", "okx")  # public ladders through ccxt
BITMEX_INSTRUMENTS = "https://www.bitmex.com/api/v1/instrument/active"
HYPERLIQUID_INFO = "https://api.hyperliquid.xyz/info"  # POST {"type": "meta"} (weight 20 of 1200/min)


@dataclass
class MarketMeta:
    """One venue contract as liqmap needs it. ``tiers`` rows: (floor, cap, mmr, max_leverage, cum)."""

    symbol: str
    asset: str
    contract_size: float
    tick: float
    inverse: bool
    max_leverage: float | None = None
    price_multiplier: float = 1.0
    quanto: bool = False
    tiers: list[list[float]] = field(default_factory=list)
    tier_unit: str = "usd"  # "usd" notional, or "contracts" (OKX position tiers)


# OKX swap contract values (coins per contract) for a cold start with no cache: liquidation and trade
# sizes are in contracts, and assets.py's default of 1.0 would overstate BTC 100×. Replaced by ccxt's
# ``contractSize`` as soon as metadata is fetched; only values known with confidence are listed.
OKX_CT_VAL = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0, "XRP": 100.0, "DOGE": 1000.0}


# --- normalization of ccxt-shaped data ---------------------------------------------------------

def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def meta_from_ccxt_market(m: dict, asset: str, price_multiplier: float = 1.0) -> MarketMeta:
    """A ccxt unified market (``load_markets()`` value) → MarketMeta."""
    lev = ((m.get("limits") or {}).get("leverage") or {}).get("max")
    return MarketMeta(
        symbol=m["id"],
        asset=asset,
        contract_size=_num(m.get("contractSize")) or 1.0,
        tick=_num((m.get("precision") or {}).get("price")) or 0.0,
        inverse=bool(m.get("inverse")),
        max_leverage=_num(lev),
        price_multiplier=price_multiplier,
    )


def tiers_from_ccxt(tiers: list[dict]) -> list[list[float]]:
    """ccxt leverage tiers → rows (floor, cap, mmr, max_leverage, cum).

    The maintenance rate is normalized defensively (Bybit's docs show percent, live frames fractions:
    docs/venues.md §5.1); ``cum`` comes from the venue's deduction when it publishes one (Bybit
    ``mmDeduction``), otherwise it is derived so maintenance margin is continuous across bands.
    """
    rows: list[list[float]] = []
    prev_mmr = None
    cum = 0.0
    for t in sorted(tiers, key=lambda t: _num(t.get("minNotional")) or 0.0):
        floor = _num(t.get("minNotional")) or 0.0
        cap = _num(t.get("maxNotional"))
        mmr = _num(t.get("maintenanceMarginRate"))
        lev = _num(t.get("maxLeverage"))
        if cap is None or mmr is None or lev is None or cap <= floor:
            continue
        if mmr >= 0.5:  # a percentage
            mmr /= 100.0
        ded = _num((t.get("info") or {}).get("mmDeduction"))
        if ded is not None:
            cum = ded
        elif prev_mmr is not None:
            cum += floor * (mmr - prev_mmr)
        rows.append([floor, cap, mmr, lev, cum])
        prev_mmr = mmr
    return rows


def meta_from_bitmex_instrument(r: dict, asset: str) -> MarketMeta:
    """A BitMEX ``/instrument`` row → MarketMeta (one tier: maintMargin up to the base risk limit)."""
    inverse = bool(r.get("isInverse"))
    quanto = bool(r.get("isQuanto"))
    if inverse or quanto:
        cs = 1.0  # one contract = 1 USD (quanto: 1 USD-quoted unit; see report gaps)
    else:
        u2p = _num(r.get("underlyingToPositionMultiplier"))
        cs = 1.0 / u2p if u2p else 1.0
    init = _num(r.get("initMargin"))
    maint = _num(r.get("maintMargin"))
    lev = 1.0 / init if init else None
    tiers: list[list[float]] = []
    limit = _num(r.get("riskLimit"))
    if maint and lev and limit and not quanto:
        # riskLimit is in the settlement currency's smallest unit (satoshi for XBt, micro for USDt): kept
        # as a coin amount. Quanto contracts settle in XBT for a non-XBT asset: no USD band without BTC's
        # price, so they get no ladder here.
        settle_div = 1e8 if r.get("settlCurrency") in ("XBt", "XBT") else 1e6
        tiers = [[0.0, limit / settle_div, maint, lev, 0.0]]
    return MarketMeta(symbol=r["symbol"], asset=asset, contract_size=cs, tick=_num(r.get("tickSize")) or 0.0,
                      inverse=inverse, max_leverage=lev, quanto=quanto, tiers=tiers,
                      tier_unit="settle_coin" if tiers else "usd")


# --- fetching (blocking; always called in a worker thread) --------------------------------------

def _wanted(venue: str, assets: dict[str, Asset]) -> dict[str, tuple[str, VenueMarket]]:
    return {a.markets[venue].symbol: (name, a.markets[venue]) for name, a in assets.items() if venue in a.markets}


def fetch_ccxt(venue: str, assets: dict[str, Asset], exchange=None, tiers: bool = True) -> dict[str, dict]:
    """Markets (and public tiers) for our symbols on ``venue`` through ccxt. Blocking."""
    if exchange is None:
        import ccxt
        exchange = getattr(ccxt, ccxt_ids()[venue])({"enableRateLimit": True, "timeout": 15000})
    markets = exchange.load_markets()
    by_id = {m["id"]: m for m in markets.values() if m.get("contract") or m.get("swap")}
    out: dict[str, dict] = {}
    for sym, (name, vm) in _wanted(venue, assets).items():
        m = by_id.get(sym)
        if m is None:
            continue
        meta = meta_from_ccxt_market(m, name, vm.price_multiplier)
        if tiers and venue in TIER_VENUES:
            try:
                meta.tiers = tiers_from_ccxt(exchange.fetch_market_leverage_tiers(m["symbol"]))
                meta.tier_unit = "contracts" if venue == "okx" else "usd"
            except Exception as e:  # one missing ladder must not lose the markets
                LOG.info("%s: no tiers for %s: %s", venue, sym, e)
        out[sym] = asdict(meta)
    return out


def fetch_bitmex(assets: dict[str, Asset], url: str = BITMEX_INSTRUMENTS) -> dict[str, dict]:
    with urllib.request.urlopen(url, timeout=15) as resp:  # noqa: S310 (configured https URL)
        rows = json.loads(resp.read())
    return bitmex_markets(rows, assets)


def bitmex_markets(rows: list[dict], assets: dict[str, Asset]) -> dict[str, dict]:
    wanted = _wanted("bitmex", assets)
    return {r["symbol"]: asdict(meta_from_bitmex_instrument(r, wanted[r["symbol"]][0]))
            for r in rows if r.get("symbol") in wanted}


def fetch_hyperliquid(assets: dict[str, Asset], url: str = HYPERLIQUID_INFO) -> dict[str, dict]:
    """Hyperliquid's ``meta`` (universe, size decimals, max leverage, margin tables): no ccxt needed."""
    req = urllib.request.Request(url, data=b'{"type":"meta"}', headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (configured https URL)
        meta = json.loads(resp.read())
    return hyperliquid_markets(meta, assets)


def hyperliquid_markets(meta: dict, assets: dict[str, Asset]) -> dict[str, dict]:
    """``meta`` → {coin: MarketMeta-dict} for our coins: linear, one coin (or one k-lot) per unit, the tick
    of ``szDecimals``' price rule left to the defaults, tiers in USD from the coin's margin table."""
    from .venues.hyperliquid import tables_from_meta

    tables = tables_from_meta(meta)
    wanted = _wanted("hyperliquid", assets)
    out: dict[str, dict] = {}
    for u in meta.get("universe") or ():
        name = u.get("name")
        if name not in wanted or u.get("isDelisted") or name not in tables:
            continue
        asset, vm = wanted[name]
        out[name] = asdict(MarketMeta(symbol=name, asset=asset, contract_size=1.0, tick=0.0, inverse=False,
                                      max_leverage=_num(u.get("maxLeverage")), price_multiplier=vm.price_multiplier,
                                      tiers=[list(r) for r in tables[name].rows()], tier_unit="usd"))
    return out


def default_fetch(venue: str, assets: dict[str, Asset]) -> dict[str, dict]:
    if venue == "bitmex":
        return fetch_bitmex(assets)
    if venue == "hyperliquid":
        return fetch_hyperliquid(assets)
    if venue == "binance":
        return fetch_ccxt("binance", assets, tiers=False)
    return fetch_ccxt(venue, assets)


# --- the cache ----------------------------------------------------------------------------------

class Metadata:
    """Per-venue contract metadata with a JSON disk cache.

    ``fetch(venue, assets) -> {symbol: MarketMeta-dict}`` is blocking and runs in a thread; inject one in
    tests. ``errors[venue]`` holds the last fetch failure (shown by doctor/status).
    """

    def __init__(self, data_dir: str | Path, ttl_hours: float = 24.0,
                 fetch: Callable[[str, dict[str, Asset]], dict[str, dict]] = default_fetch,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / "metadata.json"
        self.ttl = ttl_hours * 3600.0
        self.fetch = fetch
        self.clock = clock
        self.venues: dict[str, dict] = {}  # venue → {"fetched_at": ts, "markets": {symbol: dict}}
        self.errors: dict[str, str] = {}
        self.load()

    @classmethod
    def from_config(cls, cfg: dict, data_dir: str | Path | None = None) -> Metadata:
        """The cache under ``$LIQMAP_DATA_DIR`` (or the XDG data dir) with ``feeds.metadata_ttl_hours``."""
        from liqmap.config import default_data_dir

        d = data_dir or os.environ.get("LIQMAP_DATA_DIR") or default_data_dir()
        return cls(d, ttl_hours=float((cfg.get("feeds") or {}).get("metadata_ttl_hours", 24.0)))

    def load(self) -> bool:
        """Read the cache (stale or not); a corrupt file is set aside, never fatal."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("version") != CACHE_VERSION or not isinstance(doc.get("venues"), dict):
                raise ValueError("unexpected layout")
            self.venues = doc["venues"]
            return True
        except FileNotFoundError:
            return False
        except (OSError, ValueError, AttributeError) as e:
            bad = self.path.with_suffix(".json.corrupt")
            LOG.warning("%s: unreadable metadata cache (%s); set aside as %s", self.path, e, bad.name)
            try:
                self.path.replace(bad)
            except OSError:
                pass
            self.venues = {}
            return False

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": CACHE_VERSION, "saved_at": self.clock(), "venues": self.venues}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".metadata.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, self.path)

    def fresh(self, venue: str) -> bool:
        v = self.venues.get(venue)
        return bool(v) and self.clock() - float(v.get("fetched_at", 0.0)) < self.ttl

    def refresh_sync(self, venues, assets: dict[str, Asset], force: bool = False) -> list[str]:
        """Fetch the venues whose cache is missing or older than the TTL. Blocking; returns those fetched."""
        done = []
        for venue in venues:
            if not force and self.fresh(venue):
                continue
            try:
                markets = self.fetch(venue, assets)
            except Exception as e:  # offline, DNS, HTTP error: keep what we have
                self.errors[venue] = f"{type(e).__name__}: {e}"
                LOG.info("metadata: %s not refreshed: %s", venue, self.errors[venue])
                continue
            self.errors.pop(venue, None)
            self.venues[venue] = {"fetched_at": self.clock(), "markets": markets}
            done.append(venue)
        if done:
            self.save()
        return done

    async def refresh(self, venues, assets: dict[str, Asset], force: bool = False) -> list[str]:
        """``refresh_sync`` in a worker thread, so the event loop never waits on the network."""
        return await asyncio.to_thread(self.refresh_sync, list(venues), assets, force)

    def market(self, venue: str, symbol: str) -> MarketMeta | None:
        d = (self.venues.get(venue) or {}).get("markets", {}).get(symbol)
        return MarketMeta(**d) if d else None

    def apply(self, assets: dict[str, Asset]) -> dict[str, Asset]:
        """Assets with contract sizes, inverse flags and ticks from the cached metadata (defaults otherwise)."""
        out: dict[str, Asset] = {}
        for name, a in assets.items():
            markets = dict(a.markets)
            tick = a.tick
            for venue, vm in a.markets.items():
                meta = self.market(venue, vm.symbol)
                if meta is None and venue == "okx" and name in OKX_CT_VAL and not vm.inverse:
                    markets[venue] = replace(vm, contract_size=OKX_CT_VAL[name])
                    continue
                if meta is None or meta.quanto:  # quanto sizes need BTC's price: keep the defaults
                    continue
                markets[venue] = replace(vm, inverse=meta.inverse, contract_size=meta.contract_size)
                if venue == "binance" and meta.tick:
                    tick = meta.tick / vm.price_multiplier
            out[name] = replace(a, tick=tick, markets=markets)
        return out

    def tier_rows(self, venue: str, asset: Asset, price: float | None = None) -> list[list[float]] | None:
        """(floor, cap, mmr, max_leverage, cum) rows in USD notional, or None without a public ladder.

        OKX ladders are in contracts: converted with ctVal at ``price`` (default the asset's reference).
        Binance comes from the bundled table (liqmap.core.tiers).
        """
        if venue == "binance":
            try:
                from liqmap.core.tiers import binance_tiers
            except ImportError:
                return None
            t = binance_tiers().get(asset.name)
            return [list(r) for r in t.rows()] if t is not None else None
        vm = asset.markets.get(venue)
        meta = self.market(venue, vm.symbol) if vm else None
        if meta is None or not meta.tiers:
            return None
        if meta.tier_unit == "contracts":
            px = price or asset.ref_price
            k = meta.contract_size if meta.inverse else meta.contract_size * px
            return [[f * k, c * k, m, lev, cum * k] for f, c, m, lev, cum in meta.tiers]
        if meta.tier_unit == "settle_coin":  # BitMEX: inverse settles in the coin, linear in USDT
            k = (price or asset.ref_price) if meta.inverse else 1.0
            return [[f * k, c * k, m, lev, cum * k] for f, c, m, lev, cum in meta.tiers]
        return [list(r) for r in meta.tiers]

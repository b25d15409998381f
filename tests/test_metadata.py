"""Metadata: ccxt's own parsers on venue-shaped JSON, BitMEX's real instrument REST body, the disk cache."""

from __future__ import annotations

import asyncio
import json
import threading

import ccxt
import pytest

from liqmap.core.assets import default_universe
from liqmap.feeds.metadata import (Metadata, bitmex_markets, fetch_ccxt, meta_from_ccxt_market,
                                   tiers_from_ccxt)
from venue_helpers import REAL

# OKX /api/v5/public/instruments?instType=SWAP row (shape from OKX docs v5)
OKX_INSTRUMENT = {
    "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear", "ctVal": "0.01",
    "ctValCcy": "BTC", "expTime": "", "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP", "instType": "SWAP",
    "lever": "100", "listTime": "1611916828000", "lotSz": "0.01", "maxIcebergSz": "100000000",
    "maxLmtSz": "100000000", "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": "100000000",
    "maxTwapSz": "100000000", "minSz": "0.01", "optType": "", "quoteCcy": "", "settleCcy": "USDT",
    "state": "live", "stk": "", "tickSz": "0.1", "uly": "BTC-USDT",
}
# OKX /api/v5/public/position-tiers rows (contracts) and Bybit /v5/market/risk-limit rows
OKX_TIERS = [
    {"instFamily": "BTC-USDT", "instId": "", "tier": "1", "minSz": "0", "maxSz": "1000", "mmr": "0.004",
     "imr": "0.01", "maxLever": "100", "uly": "BTC-USDT"},
    {"instFamily": "BTC-USDT", "instId": "", "tier": "2", "minSz": "1000", "maxSz": "5000", "mmr": "0.005",
     "imr": "0.0133", "maxLever": "75", "uly": "BTC-USDT"},
]
BYBIT_TIERS = [
    {"id": 1, "symbol": "BTCUSDT", "riskLimitValue": "2000000", "maintenanceMargin": "0.005",
     "initialMargin": "0.01", "isLowestRisk": 1, "maxLeverage": "100.00", "mmDeduction": ""},
    {"id": 2, "symbol": "BTCUSDT", "riskLimitValue": "4000000", "maintenanceMargin": "0.01",
     "initialMargin": "0.02", "isLowestRisk": 0, "maxLeverage": "50.00", "mmDeduction": "10000"},
]


def okx_exchange():
    ex = ccxt.okx()
    m = ex.parse_market(OKX_INSTRUMENT)
    ex.set_markets([m])
    return ex, m


def test_ccxt_okx_market_and_tiers_normalized():
    ex, m = okx_exchange()
    meta = meta_from_ccxt_market(m, "BTC")
    assert meta.symbol == "BTC-USDT-SWAP" and meta.contract_size == 0.01 and meta.tick == 0.1
    assert meta.inverse is False
    rows = tiers_from_ccxt(ex.parse_market_leverage_tiers(OKX_TIERS, m))
    assert rows[0][:4] == [0.0, 1000.0, 0.004, 100.0]
    # cum derived so MM is continuous: 1000 × (0.005 − 0.004)
    assert rows[1][4] == pytest.approx(1.0)


def test_ccxt_bybit_tiers_use_mm_deduction_and_fraction_rates():
    ex = ccxt.bybit()
    tiers = ex.parse_market_leverage_tiers(BYBIT_TIERS, {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT",
                                                        "settle": "USDT", "type": "swap", "contract": True})
    rows = tiers_from_ccxt(tiers)
    assert rows == [[0.0, 2_000_000.0, 0.005, 100.0, 0.0], [2_000_000.0, 4_000_000.0, 0.01, 50.0, 10_000.0]]
    pct = [dict(t, maintenanceMarginRate=0.5) for t in tiers[:1]]
    assert tiers_from_ccxt(pct)[0][2] == pytest.approx(0.005)  # "0.5" in the docs means 0.5 %


class FakeOkx:
    """A real ccxt okx object whose network calls are replaced by the recorded-shape bodies above."""

    def __init__(self):
        self.ex, self.m = okx_exchange()
        self.calls = 0

    def load_markets(self):
        self.calls += 1
        return self.ex.markets

    def fetch_market_leverage_tiers(self, symbol):
        return self.ex.parse_market_leverage_tiers(OKX_TIERS, self.ex.market(symbol))


def test_fetch_ccxt_builds_cache_rows_for_our_symbols():
    fake = FakeOkx()
    out = fetch_ccxt("okx", default_universe(), exchange=fake)
    assert list(out) == ["BTC-USDT-SWAP"]
    assert out["BTC-USDT-SWAP"]["tier_unit"] == "contracts" and len(out["BTC-USDT-SWAP"]["tiers"]) == 2


def test_bitmex_real_instrument_rest_body():
    line = (REAL / "bitmex" / "cryptofeed_sample_BITMEX.0").read_text().splitlines()[0]
    rows = json.loads(line[line.index("["):])
    out = bitmex_markets(rows, default_universe())
    xbt = out["XBTUSD"]
    # XBTUSD 2021: inverse, tick 0.5, maintMargin 0.0035, initMargin 0.01 → 100x, riskLimit 200 XBT
    assert xbt["inverse"] and xbt["contract_size"] == 1.0 and xbt["tick"] == 0.5
    assert xbt["max_leverage"] == pytest.approx(100.0)
    assert xbt["tiers"] == [[0.0, 200.0, 0.0035, pytest.approx(100.0), 0.0]]
    assert out["SOLUSDT"]["quanto"] and out["SOLUSDT"]["tiers"] == []


def test_cache_ttl_restart_offline_and_defaults(tmp_path):
    now = [1_000_000.0]
    calls = []

    def fetch(venue, assets):
        calls.append((venue, threading.current_thread().name))
        return fetch_ccxt("okx", assets, exchange=FakeOkx())

    assets = default_universe()
    md = Metadata(tmp_path, ttl_hours=1.0, fetch=fetch, clock=lambda: now[0])
    # no cache: built-in defaults (OKX BTC cold-start ctVal 0.01, not assets.py's 1.0)
    assert md.apply(assets)["BTC"].markets["okx"].contract_size == 0.01

    got = asyncio.run(md.refresh(["okx"], assets))
    assert got == ["okx"] and len(calls) == 1
    assert calls[0][1] != threading.main_thread().name  # fetched in a worker thread
    saved = json.loads((tmp_path / "metadata.json").read_text())
    assert saved["venues"]["okx"]["fetched_at"] == now[0]

    # a restart within the TTL reads the cache and does not fetch
    now[0] += 1800
    md2 = Metadata(tmp_path, ttl_hours=1.0, fetch=fetch, clock=lambda: now[0])
    assert asyncio.run(md2.refresh(["okx"], assets)) == [] and len(calls) == 1
    assert md2.market("okx", "BTC-USDT-SWAP").contract_size == 0.01
    tiers = md2.tier_rows("okx", assets["BTC"], price=60000.0)
    assert tiers[0][1] == pytest.approx(1000 * 0.01 * 60000.0)  # 1000 contracts × ctVal × price in USD

    # past the TTL and offline: the fetch fails, the stale cache stays in use, the error is kept
    now[0] += 7200

    def offline(venue, assets):
        raise OSError("network unreachable")

    md3 = Metadata(tmp_path, ttl_hours=1.0, fetch=offline, clock=lambda: now[0])
    assert asyncio.run(md3.refresh(["okx"], assets)) == []
    assert "network unreachable" in md3.errors["okx"]
    assert md3.apply(assets)["BTC"].markets["okx"].contract_size == 0.01


def test_corrupt_cache_set_aside(tmp_path):
    (tmp_path / "metadata.json").write_text("{not json")
    md = Metadata(tmp_path, fetch=lambda v, a: {})
    assert md.venues == {} and (tmp_path / "metadata.json.corrupt").exists()


def test_binance_tiers_from_bundled_table(tmp_path):
    md = Metadata(tmp_path, fetch=lambda v, a: {})
    rows = md.tier_rows("binance", default_universe()["BTC"])
    assert rows and rows[0][2] == pytest.approx(0.004)  # tier 1 MMR 0.40 % (docs/venues.md §5.2)


def test_from_config_uses_data_dir_and_ttl(tmp_path, monkeypatch):
    from liqmap.config import load

    monkeypatch.setenv("LIQMAP_DATA_DIR", str(tmp_path))
    md = Metadata.from_config(load(environ={"LIQMAP_FEEDS__METADATA_TTL_HOURS": "2"}))
    assert md.path == tmp_path / "metadata.json" and md.ttl == 7200.0

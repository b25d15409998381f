"""Per-venue margin tiers in the engine: Bybit's and OKX's public ladders (ccxt's own parsers on the venues'
JSON shapes, through ``feeds.metadata`` and its disk cache) reach the synthetic model of a live run, and
place that venue's levels at the liquidation price the fetched ladder gives — not at Binance's."""

from __future__ import annotations

import copy
import types

import ccxt
import numpy as np
import pytest

from liqmap.commands.collect import Collect
from liqmap.commands.run import build_runtime
from liqmap.feeds.sources import metadata_tiers
from liqmap.config import DEFAULTS
from liqmap.core import buckets
from liqmap.core import events as ev
from liqmap.core.assets import default_universe
from liqmap.core.engine import Engine, ring_capacities
from liqmap.core.market import Market
from liqmap.core.tiers import TierTable, binance_tiers, table_for
from liqmap.feeds.metadata import Metadata, fetch_ccxt
from test_metadata import BYBIT_TIERS, OKX_INSTRUMENT, OKX_TIERS

T0 = 1_700_000_000.0
E = 60_000.0  # every trade, hence every entry, at this price
LEV = 50.0
TYPICAL = 20_000.0

# An OKX BTC-USDT ladder (``/api/v5/public/position-tiers`` shape, sizes in contracts of ctVal 0.01 BTC) whose
# first band ends at 20 contracts = 12,000 USD at 60,000: a 20,000 USD position is in band 2 only if the
# contracts are converted to USD; band 2's cum (20 contracts × 0.002 = 0.04 contracts) is 24 USD.
OKX_TIERS_SMALL_FIRST_BAND = [
    {"instFamily": "BTC-USDT", "instId": "", "tier": "1", "minSz": "0", "maxSz": "20", "mmr": "0.004",
     "imr": "0.01", "maxLever": "100", "uly": "BTC-USDT"},
    {"instFamily": "BTC-USDT", "instId": "", "tier": "2", "minSz": "20", "maxSz": "5000", "mmr": "0.006",
     "imr": "0.0133", "maxLever": "75", "uly": "BTC-USDT"},
]
BYBIT_MARKET = {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT",
                "type": "swap", "swap": True, "contract": True, "linear": True, "inverse": False,
                "contractSize": 1.0, "precision": {"price": 0.1}, "limits": {"leverage": {"max": 100.0}}}


class FakeBybit:
    """Bybit through ccxt's own tier parser on ``/v5/market/risk-limit`` rows (ccxt cannot parse a Bybit
    instrument row offline, so the unified market is given as ccxt would return it)."""

    def __init__(self, rows):
        self.ex, self.rows = ccxt.bybit(), rows

    def load_markets(self):
        return {BYBIT_MARKET["symbol"]: BYBIT_MARKET}

    def fetch_market_leverage_tiers(self, symbol):
        return self.ex.parse_market_leverage_tiers(self.rows, BYBIT_MARKET)


class FakeOkx:
    """OKX through ccxt's own market and tier parsers on ``/public/instruments`` and ``/position-tiers``."""

    def __init__(self, rows):
        self.ex = ccxt.okx()
        self.m = self.ex.parse_market(OKX_INSTRUMENT)
        self.ex.set_markets([self.m])
        self.rows = rows

    def load_markets(self):
        return self.ex.markets

    def fetch_market_leverage_tiers(self, symbol):
        return self.ex.parse_market_leverage_tiers(self.rows, self.ex.market(symbol))


def _cache(tmp_path, okx_rows=OKX_TIERS_SMALL_FIRST_BAND, bybit_rows=BYBIT_TIERS) -> Metadata:
    fakes = {"bybit": FakeBybit(bybit_rows), "okx": FakeOkx(okx_rows)}

    def fetch(venue, assets):
        if venue not in fakes:
            raise OSError("offline")
        return fetch_ccxt(venue, assets, exchange=fakes[venue])

    md = Metadata(tmp_path, fetch=fetch)
    md.refresh_sync(["bybit", "okx", "deribit"], default_universe())
    assert (tmp_path / "metadata.json").exists()
    return md


def _cfg(tmp_path):
    cfg = copy.deepcopy(DEFAULTS)
    cfg["_data_dir"] = str(tmp_path)
    cfg["universe"]["assets"] = ["BTC", "ETH"]
    cfg["universe"]["focus_extra"] = []
    # One leverage tier at its exact liquidation price, so each venue's level is one bucket to check by hand.
    cfg["model"].update(leverage_tiers=[LEV], leverage_weights=[1.0], leverage_spread=0.0,
                        typical_position_usd=TYPICAL, prior_weight=0.0)
    return cfg


def _open_longs(market, engine, venues=("binance", "bybit", "okx")):
    """Open interest rises by 10 BTC on each venue while takers only buy at E: the model opens longs at E."""
    vids = [ev.VENUE_ID[v] for v in venues]
    oi0 = np.zeros(len(vids), ev.OI_DTYPE)
    oi0["ts"], oi0["oi"], oi0["mark"], oi0["venue"] = T0, 10_000.0, E, vids
    oi0["oi_usd"] = oi0["oi"] * E
    tr = np.zeros(30 * len(vids), ev.TRADE_DTYPE)
    tr["ts"] = T0 + 1 + np.arange(len(tr)) * (50.0 / len(tr))
    tr["price"], tr["qty"], tr["side"] = E, 0.5, 1
    tr["usd"] = tr["price"] * tr["qty"]
    tr["venue"] = np.tile(vids, 30)
    oi1 = oi0.copy()
    oi1["ts"], oi1["oi"] = T0 + 60, 10_010.0
    oi1["oi_usd"] = oi1["oi"] * E
    market.add("oi", "BTC", oi0)
    market.add("trade", "BTC", tr)
    market.add("oi", "BTC", oi1)
    engine.step(T0 + 61)


def _long_bucket(model, venue) -> int:
    b, lo, sh = model.levels((venue,))
    assert len(b) and sh.sum() == 0 and lo.sum() > 0
    return int(b[np.argmax(lo)])


def _lp_long(entry, lev, mmr, cum, notional) -> float:
    """Binance-form isolated long (tiers.py docstring): LP = (E(1 − 1/L) − cum/Q) / (1 − mmr), Q = N/E."""
    q = notional / entry
    return (entry * (1 - 1 / lev) - cum / q) / (1 - mmr)


def _live_runner(tmp_path, monkeypatch, cfg):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("LIQMAP_DATA_DIR", str(tmp_path))
    return build_runtime("live", cfg, types.SimpleNamespace(seed=None, speed=None))


def test_live_run_places_bybit_and_okx_levels_with_their_fetched_ladders(tmp_path, monkeypatch):
    _cache(tmp_path)
    cfg = _cfg(tmp_path)
    runner = _live_runner(tmp_path, monkeypatch, cfg)
    clock_t = [T0 + 61]
    runner.market.clock = lambda: clock_t[0]
    _open_longs(runner.market, runner.engine)
    eng = runner.engine
    model = eng.state("BTC").model
    step = eng.state("BTC").step
    assert step == 25.0 == buckets.bucket_step(E, 0.1)

    # the ladders the model holds are the fetched ones (OKX's in USD at the build price), Binance's the bundle
    assert model.tiers["bybit"].rows() == [(0.0, 2e6, 0.005, 100.0, 0.0), (2e6, 4e6, 0.01, 50.0, 10_000.0)]
    k = 0.01 * E  # OKX contract value × price: USD per contract
    okx_rows = model.tiers["okx"].rows()
    want_okx = [(0.0, 20 * k, 0.004, 100.0, 0.0), (20 * k, 5000 * k, 0.006, 75.0, 0.04 * k)]
    assert len(okx_rows) == len(want_okx)  # pytest.approx compares flat sequences only: one band at a time
    for row, want_row in zip(okx_rows, want_okx):
        assert row == pytest.approx(want_row)
    assert model.tiers["binance"] is binance_tiers()["BTC"]
    assert eng.tier_origin[("BTC", "bybit")] == eng.tier_origin[("BTC", "okx")] == "provided"
    assert eng.tier_origin[("BTC", "deribit")].startswith("fallback")  # Deribit publishes no ladder

    # hand-computed liquidation prices of a 20,000 USD 50x long entered at 60,000:
    lp_binance = _lp_long(E, LEV, 0.004, 0.0, TYPICAL)  # Binance band 1: 0–50k, 0.40 %
    lp_bybit = _lp_long(E, LEV, 0.005, 0.0, TYPICAL)  # Bybit band 1: 0–2M, 0.50 %
    lp_okx = _lp_long(E, LEV, 0.006, 24.0, TYPICAL)  # OKX band 2 (12k–3M USD), cum 24 USD
    assert 20 * k <= TYPICAL / E * lp_okx < 5000 * k  # the position at its LP really is in OKX band 2
    want = {v: int(buckets.index(p, step)) for v, p in
            (("binance", lp_binance), ("bybit", lp_bybit), ("okx", lp_okx))}
    assert want == {"binance": 2361, "bybit": 2363, "okx": 2363}  # 59,036 / 59,095 / 59,082
    got = {v: _long_bucket(model, v) for v in want}
    assert got == want
    assert got["bybit"] != got["binance"] and got["okx"] != got["binance"]
    # OKX's contracts taken as USD would have put the position past the last band: cum 0.04, LP 59,155
    assert int(buckets.index(_lp_long(E, LEV, 0.006, 0.04, TYPICAL), step)) != got["okx"]
    # and each level says which venues built it
    assert set(model.provenance(2363)["venues"]) == {"bybit", "okx"}
    assert set(model.provenance(2361)["venues"]) == {"binance"}


def test_equal_ladders_give_equal_levels(tmp_path, monkeypatch):
    """The difference above comes from the ladder, not the venue: OKX's real-shaped ladder whose band 1 is
    0.40 % up to 1000 contracts (600k USD) — like Binance's band 1 — puts the level in Binance's bucket."""
    _cache(tmp_path, okx_rows=OKX_TIERS)
    runner = _live_runner(tmp_path, monkeypatch, _cfg(tmp_path))
    runner.market.clock = lambda: T0 + 61
    _open_longs(runner.market, runner.engine)
    model = runner.engine.state("BTC").model
    assert model.tiers["okx"].rows()[0] == pytest.approx((0.0, 1000 * 0.01 * E, 0.004, 100.0, 0.0))
    assert _long_bucket(model, "okx") == _long_bucket(model, "binance") == 2361
    assert _long_bucket(model, "bybit") == 2363


def test_collect_live_passes_the_same_tiers(tmp_path, monkeypatch):
    _cache(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = _cfg(tmp_path)
    c = Collect(cfg, demo=False, duration=0.0, status_every=10.0)
    rows = c.engine.tiers("BTC", "okx", E)
    assert rows[1][4] == pytest.approx(0.04 * 0.01 * E)
    assert c.engine.tiers("BTC", "bybit", E)[1] == [2e6, 4e6, 0.01, 50.0, 10_000.0]
    assert c.engine.tiers("BTC", "deribit", E) is None and c.engine.tiers("BTC", "binance", E) is None
    assert c.engine.tiers("NOPE", "okx", E) is None
    assert c.source.metadata is not None and c.source.collector.metadata is c.source.metadata  # the collector gets the same object
    demo = Collect(cfg, demo=True, duration=0.0, status_every=10.0, seed=1)
    assert demo.engine.tiers is None  # demo keeps the bundled tables


def test_demo_keeps_bundled_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = _cfg(tmp_path)
    runner = build_runtime("demo", cfg, types.SimpleNamespace(seed=1, speed=None))
    assert runner.engine.tiers is None


def test_bad_or_missing_ladders_fall_back_per_venue():
    cfg = copy.deepcopy(DEFAULTS)
    clock = lambda: T0 + 61  # noqa: E731
    m = Market(["BTC"], capacity=ring_capacities(cfg), clock=clock)
    bybit = TierTable.from_rows([[0, 1e6, 0.02, 20, 0]], name="bybit:BTC")

    def source(asset, venue, price):
        if venue == "okx":
            return [[0, 1e6, 1.5, 100, 0]]  # an MMR of 150 %: not a ladder
        if venue == "bitmex":
            raise KeyError("no such instrument")
        return {"bybit": bybit}.get(venue)

    eng = Engine(cfg, m, clock=clock, tiers=source)
    _open_longs(m, eng, venues=("bybit",))
    model = eng.state("BTC").model
    assert model.tiers["bybit"] is bybit
    assert model.tiers["okx"] is table_for("BTC", "okx") and model.tiers["bitmex"] is table_for("BTC", "bitmex")
    assert "mmr must be in (0, 1)" in eng.tier_origin[("BTC", "okx")]
    assert eng.tier_origin[("BTC", "bitmex")] == "fallback: KeyError: 'no such instrument'"
    assert eng.tier_origin[("BTC", "bybit")] == "provided"

    # a plain dict works too
    eng2 = Engine(cfg, Market(["BTC"], capacity=ring_capacities(cfg), clock=clock),
                  tiers={("BTC", "bybit"): bybit.rows()})
    _open_longs(eng2.market, eng2, venues=("bybit",))
    assert eng2.state("BTC").model.tiers["bybit"].rows() == bybit.rows()


def test_metadata_tiers_reads_the_cache_on_each_call(tmp_path):
    """Models built after a background refresh get the refreshed ladder (models already built keep theirs)."""
    md = _cache(tmp_path)
    fn = metadata_tiers(md, ["BTC"])
    first = fn("BTC", "bybit", E)
    md.venues["bybit"]["markets"]["BTCUSDT"]["tiers"] = [[0.0, 1e6, 0.01, 50.0, 0.0]]
    assert fn("BTC", "bybit", E) == [[0.0, 1e6, 0.01, 50.0, 0.0]] != first

"""The venue registry: derived from the venue modules, each declaring its venue on its class; the venue limit
checked against the synthetic model's bit packing; a venue needs nothing from the config to run."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from liqmap.config import DEFAULTS
from liqmap.core import synthetic
from liqmap.core.assets import universe
from liqmap.core.events import REPLAY_ONLY_VENUES, VENUE_ID, VENUES
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.venues import (CRYPTOFEED_IDS, HOST_VENUES, VENUE_CLASSES, VENUE_LABEL, VENUE_SHORT, VenueFeed,
                                 VenueLimitError, check_venues, model_venue_limit, venue_endpoints)


def test_registry_is_every_venue_module_in_id_order():
    assert tuple(VENUE_CLASSES) == VENUES
    for name, cls in VENUE_CLASSES.items():
        assert issubclass(cls, VenueFeed) and cls.venue == name
        assert cls.__module__ == f"liqmap.feeds.venues.{name}"  # one module per venue
        assert cls.VID == VENUE_ID[name] and VENUE_LABEL[name] and len(VENUE_SHORT[name]) == 3
        assert cls.ENDPOINTS and cls.CHANNELS  # declared on the class, not only in the config


def test_the_tables_other_layers_read_are_derived_from_the_modules():
    """A foreign recording's feed ids and hosts come from the venue classes, the names people read from the core's
    table (the UI must not import cryptofeed); the recording reader and the UI read these very tables."""
    from liqmap.core.venues import TABLE
    from liqmap.feeds import recording
    from liqmap.ui import reports_table, status

    assert VENUE_LABEL == {v.name: v.label for v in TABLE} and VENUE_LABEL["binance"] == "Binance USD-M"
    assert VENUE_SHORT == {v.name: v.short for v in TABLE} and VENUE_SHORT["hyperliquid"] == "HYP"
    assert CRYPTOFEED_IDS == {"BINANCE_FUTURES": "binance", "BYBIT": "bybit", "OKX": "okx", "BITMEX": "bitmex",
                              "DERIBIT": "deribit", "HYPERLIQUID": "hyperliquid"}
    assert dict(HOST_VENUES) == {"binance.com": "binance", "bybit.com": "bybit", "okx.com": "okx",
                                 "bitmex.com": "bitmex", "deribit.com": "deribit", "hyperliquid.xyz": "hyperliquid"}
    assert recording._venue_tables()[:2] == (CRYPTOFEED_IDS, HOST_VENUES)
    assert recording._cryptofeed_venue("/x/HYPERLIQUID.ws.1.0") == "hyperliquid"
    assert recording._venue_from_url("wss://www.deribit.com/ws/api/v2") == "deribit"
    assert status.VENUE_SHORT is VENUE_SHORT and reports_table.VENUE_SHORT is VENUE_SHORT
    assert reports_table._venue_names({"venues": ["okx", "deribit", "newvenue"]}) == ["okx", "der", "new"]


def test_the_ui_does_not_import_cryptofeed():
    """The app imports cryptofeed off its main thread while Textual starts (commands/run.py): the UI's modules
    get the venue names from the core, and the recording reader (opened on the main thread by ``--replay``)
    reads the venue tables only when a cryptofeed file is read."""
    import subprocess
    import sys

    code = "import sys, liqmap.ui.app, liqmap.feeds.recording; print('cryptofeed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_each_venue_spells_the_universe_by_its_core_symbol_rule():
    """The symbol rules are declared data in ``core.venues.TABLE`` (the core computes with them and never
    imports the feeds); every venue module has one, and these are the contracts they give."""
    from liqmap.core.venues import TABLE

    assert tuple(v.name for v in TABLE) == tuple(VENUE_CLASSES) == VENUES
    u = universe(["BTC", "PEPE", "SOL", "MKR", "TRX"])

    def sym(asset):
        return {v: (m.symbol, m.inverse, m.contract_size, m.price_multiplier) for v, m in u[asset].markets.items()}

    assert sym("BTC") == {"binance": ("BTCUSDT", False, 1.0, 1.0), "bybit": ("BTCUSDT", False, 1.0, 1.0),
                          "okx": ("BTC-USDT-SWAP", False, 1.0, 1.0), "bitmex": ("XBTUSD", True, 1.0, 1.0),
                          "deribit": ("BTC-PERPETUAL", True, 10.0, 1.0), "hyperliquid": ("BTC", False, 1.0, 1.0)}
    assert sym("PEPE") == {"binance": ("1000PEPEUSDT", False, 1.0, 1000.0), "bybit": ("1000PEPEUSDT", False, 1.0, 1000.0),
                           "okx": ("PEPE-USDT-SWAP", False, 1.0, 1.0), "bitmex": ("PEPEUSDT", False, 1.0, 1.0),
                           "hyperliquid": ("kPEPE", False, 1.0, 1000.0)}
    assert sym("SOL")["deribit"] == ("SOL_USDC-PERPETUAL", False, 1.0, 1.0)
    assert "hyperliquid" not in sym("MKR") and "bitmex" not in sym("TRX") and "deribit" in sym("TRX")


def test_model_venue_limit_is_the_packing_of_the_synthetic_model():
    """A level's source code is (flow or prior) × venue × side in the history keys' low bits, and a consumed
    level stores its venues as bits of one unsigned field: both must hold every venue."""
    limit = model_venue_limit()
    assert limit == 8
    bits = 8 * synthetic.CONSUMED_DTYPE["venues"].itemsize
    assert 4 * limit - 1 <= synthetic._CODE_MASK and limit <= bits  # the largest code and mask bit fit
    assert 4 * (limit + 1) - 1 > synthetic._CODE_MASK or limit + 1 > bits  # one more venue would not
    assert 4 * len(VENUES) - 1 <= synthetic._CODE_MASK  # today's venues fit


def _fake(name: str, vid: int) -> type:
    return type(f"{name}Feed", (), {"venue": name, "VID": vid})


def test_a_ninth_venue_is_refused_at_registry_build():
    nine = {f"v{i}": _fake(f"v{i}", i) for i in range(9)}
    ids = {n: i for i, n in enumerate(nine)}
    with pytest.raises(VenueLimitError, match="at most 8"):
        check_venues(nine, ids=ids)
    eight = dict(list(nine.items())[:8])
    check_venues(eight, ids={n: ids[n] for n in eight})  # eight fit


def test_a_declared_id_must_be_the_cores():
    with pytest.raises(VenueLimitError, match="declares id 7"):
        check_venues({"bybit": _fake("bybit", 7)})


def test_a_venue_in_the_cores_table_needs_its_module():
    classes = {n: _fake(n, i) for i, n in enumerate(VENUES)}
    check_venues(classes)
    del classes["okx"]
    with pytest.raises(VenueLimitError, match="'okx' is in the core's table .* no module"):
        check_venues(classes)


def _no_venue_config(venue: str) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    for sec in ("endpoints", "channels"):
        cfg["feeds"][sec] = {k: v for k, v in cfg["feeds"][sec].items() if not k.startswith(venue + "_")}
    return cfg


@pytest.mark.parametrize("venue", VENUES)
def test_a_venue_runs_on_its_declarations_alone(venue):
    """With no ``feeds.endpoints`` / ``feeds.channels`` entries for the venue, its feed connects to the same
    endpoints and subscribes the same channels as with the config's (which mirror the declarations and stay
    the place to override them)."""
    assets = universe(["BTC", "ETH"])

    async def subscribed(cfg):
        p = FrameParser(venue, assets, lambda *a: None, None, cfg)
        await p.subscribe()
        return [(c.address, c.sent) for c in p.connections]

    full = asyncio.run(subscribed(copy.deepcopy(DEFAULTS)))
    bare = asyncio.run(subscribed(_no_venue_config(venue)))
    assert full and bare == full
    assert venue_endpoints(venue, _no_venue_config(venue)) == venue_endpoints(venue, DEFAULTS)
    # the config's defaults are the declarations (one truth; the config is where users override them); a
    # closed venue (BitMEX, replay only) is no longer in the config at all
    for sec in ("endpoints", "channels") if venue not in REPLAY_ONLY_VENUES else ():
        pre = venue + "_"
        in_cfg = {k[len(pre):]: v for k, v in DEFAULTS["feeds"][sec].items() if k.startswith(pre)}
        declared = VENUE_CLASSES[venue].ENDPOINTS if sec == "endpoints" else VENUE_CLASSES[venue].CHANNELS
        assert in_cfg == declared


def test_a_declared_endpoint_the_config_does_not_list_can_still_be_overridden(tmp_path):
    """A venue added later needs no entry in the config's defaults: its declared endpoints and channels are
    accepted as overrides all the same; a name no venue declares is still refused."""
    from liqmap import config

    base = copy.deepcopy(DEFAULTS)
    for sec in ("endpoints", "channels"):
        base["feeds"][sec] = {k: v for k, v in base["feeds"][sec].items() if not k.startswith("bybit_")}
    config._merge("test", base, {"feeds": {"endpoints": {"bybit_ws": "wss://127.0.0.1:9443/x"},
                                           "channels": {"bybit_book": "orderbook.50"}}})
    assert base["feeds"]["endpoints"]["bybit_ws"] == "wss://127.0.0.1:9443/x"
    assert base["feeds"]["channels"]["bybit_book"] == "orderbook.50"
    for bad in ({"endpoints": {"bybit_nope": "wss://127.0.0.1/"}}, {"endpoints": {"bitmex_ws": "wss://127.0.0.1/"}},
                {"channels": {"nope_book": "x"}}):
        with pytest.raises(config.ConfigError, match="unknown setting"):
            config._merge("test", copy.deepcopy(base), {"feeds": bad})


def test_config_overrides_a_declared_endpoint():
    cfg = copy.deepcopy(DEFAULTS)
    cfg["feeds"]["endpoints"]["bybit_ws"] = "wss://127.0.0.1:9443/v5/public/linear"
    assert venue_endpoints("bybit", cfg)["ws"] == "wss://127.0.0.1:9443/v5/public/linear"


def test_chunked_subscribe_respects_each_venues_limit():
    """Bybit takes 10 topics per subscribe, OKX 100, Deribit all in one request: the shared helper splits."""
    assets = universe(["BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK"])

    async def sent(venue):
        p = FrameParser(venue, assets, lambda *a: None, None, DEFAULTS)
        await p.subscribe()
        return [json.loads(m) for c in p.connections for m in c.sent]

    bybit = asyncio.run(sent("bybit"))
    assert len(bybit) > 1 and all(len(m["args"]) <= 10 for m in bybit)
    assert sum(len(m["args"]) for m in bybit) == 8 * 4  # liq, trades, tickers, book per asset
    deribit = asyncio.run(sent("deribit"))
    assert len(deribit) == 1 and deribit[0]["method"] == "public/subscribe"

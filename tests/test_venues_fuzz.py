"""Numbers and shapes from the outside: real fixture frames with one value replaced by arbitrary JSON
never raise out of a venue handler; every such frame is counted, and whatever rows come out are either
valid or rejected by Market's validation (never stored as garbage)."""

from __future__ import annotations

import asyncio
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqmap.core.assets import Asset, VenueMarket
from liqmap.core.market import Market
from liqmap.feeds.parser import FrameParser
from venue_helpers import fixture_lines

FILES = {"binance": "binance_futures_messages.jsonl", "bybit": "bybit_messages.jsonl",
         "okx": "okx_futures_messages.jsonl", "bitmex": "bitmex_messages.jsonl",
         "deribit": "deribit_messages.jsonl"}
SYMBOLS = {"binance": ["BTCUSDT", "ETHUSDT"], "bybit": ["BTCUSD", "BTCUSDT", "GALAUSDT", "PIPPINUSDT", "XRPUSD"],
           "okx": ["XRP-USD-230929", "FIL-USDT-220325", "BTC-USD-220624"], "bitmex": ["XBTUSD", "ETHUSD"],
           "deribit": ["BTC-PERPETUAL", "ETH-PERPETUAL"]}
LINES = {v: [json.loads(x) for x in fixture_lines(f)] for v, f in FILES.items()}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["nan", "inf", "-1", "0", "", "1e400"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(venue=st.sampled_from(sorted(FILES)), seed=st.integers(0, 10**6), value=json_values)
def test_mutated_real_frames_never_raise(venue, seed, value):
    rnd = random.Random(seed)
    msg = json.loads(json.dumps(rnd.choice(LINES[venue])))
    paths = list(_paths(msg))
    if paths:
        _set(msg, rnd.choice(paths), value)
    assets = {f"A{i}": Asset(f"A{i}", 1.0, 1e-6, {venue: VenueMarket(s, s.endswith(("USD", "PERPETUAL"))
                                                                     or "-USD-" in s, 1.0)})
              for i, s in enumerate(SYMBOLS[venue])}
    market = Market(list(assets))
    parser = FrameParser(venue, assets, market.add)

    async def go():
        for line in LINES[venue][:6]:  # some context first (snapshots, prices)
            await parser.feed(json.dumps(line), 1.7e9)
        await parser.feed(json.dumps(msg), 1.7e9)

    asyncio.run(go())
    assert parser.stats["frames"] == 7
    for kind, price in (("liq", "price"), ("trade", "price"), ("oi", "mark")):
        for asset in assets:
            rows = market.gather(kind, asset)
            assert (rows["ts"] > 0).all() and (rows[price] > 0).all()

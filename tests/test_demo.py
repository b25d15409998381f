"""The demo market: determinism, real parsing of every frame, cascades at true prices, open interest."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import numpy as np
import orjson
import pytest

from liqmap.config import DEFAULTS
from liqmap.core.events import LIVE_VENUES, LONG, SHORT, VENUE_ID, VENUES
from liqmap.core.market import Market
from liqmap.core.tiers import liq_price_tiered, table_for
from liqmap.feeds.demo import DemoSource, make_parsers
from liqmap.feeds.demo.venues import okx_checksum

START = 1_700_000_000.0


def _cfg(**demo):
    return {"demo": {**DEFAULTS["demo"], **demo}}


def _parse(src: DemoSource, frames, market: Market | None = None, parsers=None):
    market = market or Market(list(src.assets), clock=src.now)
    parsers = parsers or make_parsers(src, market.add)

    async def go():
        for ts, venue, conn, raw in frames:
            await parsers[venue].feed(raw, ts, conn)

    asyncio.run(go())
    return market, parsers


def test_seeded_run_is_byte_identical():
    a = list(DemoSource(assets=["BTC", "PEPE"], seed=11, start=START).run_for(45))
    b = list(DemoSource(assets=["BTC", "PEPE"], seed=11, start=START).run_for(45))
    c = list(DemoSource(assets=["BTC", "PEPE"], seed=12, start=START).run_for(45))
    assert len(a) > 500
    assert a == b
    assert a != c
    # receipt times never go backwards (a recording row stream)
    ts = [f[0] for f in a]
    assert ts == sorted(ts)


@pytest.fixture(scope="module")
def shocked_run():
    """Three assets covering inverse contracts (BTC), 1000x lots (PEPE) and a plain alt (SOL), with
    shocks so every venue publishes liquidations."""
    src = DemoSource(assets=["BTC", "PEPE", "SOL"], seed=5, start=START, focus=["BTC", "SOL", "PEPE"])
    frames = list(src.run_for(20))
    for asset, pct in (("BTC", -4.0), ("SOL", 5.0), ("PEPE", -6.0)):
        src.shock(asset, pct)
    frames += list(src.run_for(40))
    market, parsers = _parse(src, frames)
    return src, frames, market, parsers


def test_every_frame_parses_through_its_venue_adapter(shocked_run):
    src, frames, market, parsers = shocked_run
    per_venue = Counter(f[1] for f in frames)
    assert set(per_venue) == set(LIVE_VENUES)
    for v, p in parsers.items():
        assert sum(p.errors.values()) == 0, (v, p.errors)
        assert p.stats["frames"] == per_venue[v]
    assert market.rejects.total() == 0, market.rejects.counts
    for asset in src.assets:
        for kind in ("trade", "oi", "liq"):
            got = market.gather(kind, asset)
            venues = {VENUES[i] for i in np.unique(got["venue"])}
            # Hyperliquid publishes no liquidations (its liquidation fills are trades)
            want = set(src.venues_of(asset)) - ({"hyperliquid"} if kind == "liq" else set())
            assert venues == want, (asset, kind, venues)
    # books were built on every venue from snapshots + deltas, never crossed
    for v, p in parsers.items():
        for asset, book in p.books.items():
            bids, asks = book.levels(1), book.levels(-1)
            assert len(bids[0]) and len(asks[0])
            assert bids[0][0] < asks[0][0]


def test_published_liquidations_match_truth_within_venue_limits(shocked_run):
    src, frames, market, _ = shocked_run
    for asset in src.assets:
        sim = src.sims[asset]
        truth = np.concatenate(sim.liq_log)
        got = market.gather("liq", asset)
        for v, c in sim.contracts.items():
            t = truth[truth["venue"] == c.vid]
            g = got[got["venue"] == VENUE_ID[v]]
            if v == "binance":
                # one liquidation per symbol per 1000 ms window: each is the window's newest true one
                wins = t["ts"] // 1.0
                assert len(g) == len(np.unique(wins)) < len(t)
                for row in g:
                    cand = t[wins == row["ts"] // 1.0]
                    assert row["price"] == pytest.approx(c.round_price(cand["price"][-1]), rel=1e-12, abs=c.price_tick)
                continue
            # Bybit/OKX report the bankruptcy price, Deribit the fill (at the liquidation price)
            want = t["price"] if v == "deribit" else t["bk"]
            if v == "hyperliquid":  # no liquidation channel: its liquidations are only trades
                assert len(g) == 0
                continue
            assert len(g) == len(t), (asset, v)
            order_g = np.lexsort((g["price"], g["side"]))
            order_t = np.lexsort((want, t["side"]))
            rounded = np.array([c.round_price(x) for x in want[order_t]])
            assert np.allclose(g["price"][order_g], rounded, rtol=1e-12)
            assert np.array_equal(g["side"][order_g], t["side"][order_t])
            ts_ = t[order_t]
            base = np.asarray(sim.base_of(ts_["venue"], ts_["qty"], rounded if c.inverse else ts_["price"]))
            assert np.allclose(np.sort(g["qty"]), np.sort(base), rtol=1e-9)


def test_publishing_limits():
    src = DemoSource(assets=["SOL"], seed=3, start=START, focus=["SOL"])
    src.shock("SOL", -7.0)
    frames = list(src.run_for(20))
    binance_push = defaultdict(int)
    bybit = []
    for ts, v, conn, raw in frames:
        m = orjson.loads(raw)
        if v == "binance" and isinstance(m, dict) and m.get("data", {}).get("e") == "forceOrder":
            binance_push[m["data"]["o"]["T"] // 1000] += 1
        if v == "bybit" and m.get("topic", "").startswith("allLiquidation"):
            bybit.append(m)
    truth = src.liquidations("SOL")
    assert (truth["venue"] == VENUE_ID["binance"]).sum() > len(binance_push) > 0
    assert max(binance_push.values()) == 1
    # Bybit: one push per 500 ms window carrying every liquidation of that window
    windows = [m["ts"] // 500 for m in bybit]
    assert len(windows) == len(set(windows))
    assert sum(len(m["data"]) for m in bybit) == (truth["venue"] == VENUE_ID["bybit"]).sum()
    assert all(d["S"] in ("Buy", "Sell") for m in bybit for d in m["data"])


def test_forced_cascade_liquidates_the_crowded_band_at_true_prices_and_nowhere_else():
    cfg = _cfg(wall_rate_per_hour=0.0, open_rate=0.0, noise_rate=0.0, jump_rate_per_hour=0.0,
               cascade_strength=4.0)
    src = DemoSource(cfg, assets=["ETH"], seed=9, start=START, focus=["ETH"], prehistory=False)
    sim = src.sims["ETH"]
    p0 = sim.price
    rng = np.random.default_rng(0)
    # a crowded band: 300 longs at 25x entered just above the price (liquidation ~3.6% below) ...
    band = sim.inject("binance", 1, p0 * (1 + rng.uniform(0, 0.004, 300)), 25, rng.uniform(2e4, 2e5, 300))
    band2 = sim.inject("okx", 1, p0 * (1 + rng.uniform(0, 0.004, 200)), 25, rng.uniform(2e4, 2e5, 200))
    # ... the next band down (10x, ~9.5% below) and shorts above that a down move must never touch
    deep = sim.inject("bybit", 1, p0 * (1 + rng.uniform(-0.002, 0.002, 100)), 10, rng.uniform(1e4, 5e4, 100))
    shorts = sim.inject("hyperliquid", -1, p0 * (1 + rng.uniform(-0.002, 0.002, 100)), 20, rng.uniform(1e4, 5e4, 100))
    # each injected liquidation price is the core formula's (tier at the liquidation price)
    c = sim.contracts["binance"]
    want = liq_price_tiered(band["entry"], band["lev"], band["side"], c.notional(band["qty"], band["entry"]),
                            table_for("ETH", "binance"))
    assert np.allclose(band["liq"], want, rtol=1e-12)

    frames = list(src.run_for(1))
    assert len(src.liquidations("ETH")) == 0
    src.shock("ETH", -3.4)  # not quite to the band: the first liquidations must come from the cascade
    low, high = p0 * (1 - 0.034), p0
    for _ in range(20):
        frames += src.step()
        low, high = min(low, sim.price), max(high, sim.price)
    liqs = np.concatenate(sim.liq_log)
    ids = set(liqs["id"].tolist())
    crowd = np.concatenate([band, band2, deep, shorts])
    hit = crowd[((crowd["side"] > 0) & (crowd["liq"] >= low)) | ((crowd["side"] < 0) & (crowd["liq"] <= high))]
    assert len(hit) > 0
    assert ids == set(hit["id"].tolist()), "liquidated exactly the positions whose true price was crossed"
    by_id = {int(r["id"]): r for r in crowd}
    for r in liqs:
        assert r["price"] == by_id[int(r["id"])]["liq"]  # at the true liquidation price, nowhere else
        assert r["side"] == LONG
    assert not (set(shorts["id"].tolist()) & ids)
    assert set(sim.pos["id"].tolist()) == set(crowd["id"].tolist()) - ids
    # the cascade carried price below the shock: forced selling moved it further
    assert sim.price < p0 * (1 - 0.034)
    # and the published frames carry those liquidations (OKX: every one, at its bankruptcy price)
    market, parsers = _parse(src, frames)
    got = market.gather("liq", "ETH")
    okx = got[got["venue"] == VENUE_ID["okx"]]
    okx_truth = liqs[liqs["venue"] == VENUE_ID["okx"]]
    assert len(okx) == len(okx_truth)
    c_okx = sim.contracts["okx"]
    assert np.allclose(np.sort(okx["price"]), np.sort([c_okx.round_price(x) for x in okx_truth["bk"]]), rtol=1e-12)
    assert set(np.unique(got["side"])) <= {LONG}
    assert sum(sum(p.errors.values()) for p in parsers.values()) == 0


def test_open_interest_is_the_sum_of_open_positions():
    src = DemoSource(assets=["BTC", "SOL"], seed=4, start=START)
    frames = list(src.run_for(90))
    market, parsers = _parse(src, frames)
    market2, _ = _parse(src, src.oi_frames(), market, parsers)
    for asset in src.assets:
        sim = src.sims[asset]
        pos = src.truth(asset)
        oi = market2.gather("oi", asset)
        for v, c in sim.contracts.items():
            mine = pos[pos["venue"] == c.vid]
            longs = mine["qty"][mine["side"] == LONG].sum()
            shorts = mine["qty"][mine["side"] == SHORT].sum()
            contracts = max(longs, shorts)
            last = oi[oi["venue"] == VENUE_ID[v]][-1]
            if v == "hyperliquid":  # coins on the wire, to its size decimals; USD at its 5-figure mark
                want = float(c.base_qty(contracts, last["mark"])) if c.inverse else contracts * c.contract_size
                assert last["oi"] == pytest.approx(want, rel=1e-3)
            elif c.inverse:
                assert last["oi_usd"] == pytest.approx(contracts * c.contract_size, rel=1e-12)
            else:
                assert last["oi"] == pytest.approx(contracts * c.contract_size * c.mult, rel=1e-9)
            assert sim.open_interest(c.vid) == pytest.approx(contracts, rel=1e-12)
    # and open interest moved during the run (positions opened and closed)
    btc = market2.gather("oi", "BTC")
    assert len(np.unique(btc["oi"][btc["venue"] == VENUE_ID["bybit"]])) > 5


def test_okx_checksum_matches_the_documented_construction():
    # OKX docs example: bids 3366.1:7, asks 3366.8:9, bids 3366:6, asks 3368:8 → "3366.1:7:3366.8:9:3366:6:3368:8"
    import zlib

    s = "3366.1:7:3366.8:9:3366:6:3368:8"
    crc = zlib.crc32(s.encode())
    want = crc - (1 << 32) if crc >= 1 << 31 else crc
    assert okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]) == want
    # one side shorter than the other: the remaining levels of the longer side follow in order
    assert okx_checksum([("1", "2")], [("3", "4"), ("5", "6")]) == _crc("1:2:3:4:5:6")


def _crc(s):
    import zlib

    c = zlib.crc32(s.encode())
    return c - (1 << 32) if c >= 1 << 31 else c


def test_okx_book_checksum_is_consistent_with_the_published_book(shocked_run):
    src, frames, _, parsers = shocked_run
    # rebuild the OKX books from the frames independently and check every frame's checksum
    books: dict[str, tuple[dict, dict]] = {}
    checked = 0
    for ts, v, conn, raw in frames:
        if v != "okx":
            continue
        m = orjson.loads(raw)
        if m.get("arg", {}).get("channel") != "books":
            continue
        inst = m["arg"]["instId"]
        d = m["data"][0]
        if m["action"] == "snapshot":
            books[inst] = ({}, {})
        bids, asks = books[inst]
        for side, rows in ((bids, d["bids"]), (asks, d["asks"])):
            for px, sz, _, _ in rows:
                if float(sz) == 0:
                    side.pop(px, None)
                else:
                    side[px] = sz
        top_b = sorted(bids.items(), key=lambda kv: -float(kv[0]))[:25]
        top_a = sorted(asks.items(), key=lambda kv: float(kv[0]))[:25]
        assert d["checksum"] == okx_checksum(top_b, top_a)
        checked += 1
    assert checked > 50


def test_walls_get_pulled_or_absorbed_and_flow_sweeps_levels():
    cfg = _cfg(wall_rate_per_hour=900.0, wall_pull_prob=0.5)
    src = DemoSource(cfg, assets=["SOL"], seed=2, start=START, focus=["SOL"])
    frames = list(src.run_for(150))
    src.shock("SOL", 1.0)  # aggressive flow through the asks
    frames += list(src.run_for(150))
    sim = src.sims["SOL"]
    states = Counter(w.state for w in sim.walls_log)
    assert states["pulled"] > 0 and states["consumed"] > 0, states
    # a consumed wall was absorbed (its size shrank) before price went through
    assert any(w.state == "consumed" and w.usd0 > 0 for w in sim.walls_log)
    # sweeps: some Bybit book deltas delete several levels on one side at once
    big_deletes = 0
    for ts, v, conn, raw in frames:
        if v == "bybit" and '"orderbook' in raw:
            m = orjson.loads(raw)
            for side in ("b", "a"):
                if sum(1 for _, q in m["data"][side] if float(q) == 0) >= 3:
                    big_deletes += 1
    assert big_deletes > 0


def test_paced_source_follows_speed(monkeypatch):
    """10 simulated seconds at 20× are paced to 0.5 s of wall time: the source sleeps until each step is due.
    The wall clock is a fake that the (fake) sleep advances, so this checks the pacing, not the machine."""
    import types

    from liqmap.feeds.demo import source as source_mod

    wall = [1000.0]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        wall[0] += max(delay, 0.0)
        await real_sleep(0)

    import time as real_time

    monkeypatch.setattr(source_mod, "time", types.SimpleNamespace(**{**vars(real_time), "monotonic": lambda: wall[0]}))
    monkeypatch.setattr(source_mod, "asyncio", types.SimpleNamespace(**{**vars(asyncio), "sleep": fake_sleep}))
    src = DemoSource(assets=["XRP"], seed=1, speed=20.0, focus=["XRP"])

    async def go():
        n = 0
        async for _ in src.frames():
            n += 1
            if src.now() - src.start >= 10.0:
                break
        return n

    n = asyncio.run(go())
    assert n > 0
    simulated = src.now() - src.start
    assert wall[0] - 1000.0 == pytest.approx(simulated / 20.0, abs=0.26)  # within one 250 ms step at 20×
    assert 0.4 <= wall[0] - 1000.0 <= 0.55
    assert all(d > 0 for d in slept if d != 0)


def test_demo_feed_fills_a_runtime_through_the_one_ingest_path():
    """The app's demo: the DemoFeed's paced stream through the runtime's ingest (real parsers) into its
    market, every venue's book on the board the engine reads."""
    import copy

    from liqmap.config import DEFAULTS
    from liqmap.feeds.demo import DemoFeed
    from liqmap.runtime import Runtime

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"].update(assets=["BTC", "ETH"], focus_extra=[])
    rt = Runtime(cfg, DemoFeed(cfg, assets=["BTC", "ETH"], seed=3, speed=40.0))
    market = rt.market

    def filled() -> bool:
        return all(len(market.gather("trade", a)) and len(market.gather("oi", a))
                   and set(rt.board.books(a)) == set(LIVE_VENUES) for a in ("BTC", "ETH"))

    async def go():
        rt.stop_event = asyncio.Event()
        task = asyncio.create_task(rt.source.run(rt, rt.stop_event))
        end = time.monotonic() + 60  # a hang guard: the loop ends as soon as the market is filled
        while not filled() and time.monotonic() < end:
            await asyncio.sleep(0.05)
        rt.stop_event.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(go())
    assert sum(sum(p.errors.values()) for p in rt.ingest.parsers.values()) == 0
    assert market.rejects.total() == 0
    for a in ("BTC", "ETH"):
        assert len(market.gather("trade", a)) > 0
        assert len(market.gather("oi", a)) > 0
        assert set(rt.board.books(a)) == set(LIVE_VENUES)
    h = rt.health()
    assert set(h) == set(LIVE_VENUES) and all(d["state"] == "connected" and d["frames"] > 0 for d in h.values())


def test_truth_dump_lists_every_open_position(tmp_path):
    from liqmap.feeds.demo.truth import dump

    src = DemoSource(assets=["ETH", "DOGE"], seed=8, start=START)
    list(src.run_for(10))
    out = tmp_path / "truth.csv"
    n = dump(src, out)
    lines = out.read_text().splitlines()
    assert n == len(lines) - 1 == len(src.truth("ETH")) + len(src.truth("DOGE"))
    eth = src.truth("ETH")
    longs = eth[eth["side"] == LONG]
    assert (longs["liq_price"] < longs["entry"]).all() and (longs["bk_price"] < longs["liq_price"]).all()
    shorts = eth[eth["side"] == SHORT]
    assert (shorts["liq_price"] > shorts["entry"]).all() and (shorts["bk_price"] > shorts["liq_price"]).all()


def test_the_truth_says_when_each_position_opened():
    """The ground truth carries each position's open time (the forecast benchmark's ``oracle_seen``: what a map
    fed from the first frame could have watched open): the prehistory's before the start, the run's after it,
    none in the future."""
    src = DemoSource(assets=["BTC"], seed=4, start=START)
    list(src.run_for(600))
    pos = src.truth("BTC")
    assert (pos["opened"] <= src.now() + 1e-6).all()
    before = pos["opened"] < START
    assert before.any() and (~before).any()  # the prehistory's positions and those opened while the run was fed

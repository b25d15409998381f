"""Hyperliquid's adapter (liqmap/feeds/venues/hyperliquid.py) on its documented and recorded frames
(tests/data/hyperliquid, provenance in its SOURCES.md): rows, k-coin units, the users hook, malformed frames
counted and dropped, subscriptions within the venue's limits, margin tables, recording → replay, and the
demo market's Hyperliquid (wallets, determinism). The live paths (a TLS websocket and ``POST /info`` on
127.0.0.1, the collector and ``liqmap doctor``) are in tests/test_hyperliquid_loopback.py."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path

import numpy as np
import orjson
import pytest

import liqmap.feeds.venues.hyperliquid as hl
from liqmap.config import DEFAULTS
from liqmap.core.assets import default_universe, universe
from liqmap.core.events import BUY, LIVE_VENUES, SELL, VENUE_ID, VENUES
from liqmap.core.tiers import table_for
from liqmap.feeds.parser import FrameParser
from liqmap.feeds.venues import VENUE_CLASSES, model_venue_limit

DATA = Path(__file__).parent / "data" / "hyperliquid"
HL = VENUE_ID["hyperliquid"]


def lines(name: str) -> list[str]:
    return [x for x in (DATA / name).read_text().splitlines() if x.strip()]


class Rows:
    def __init__(self) -> None:
        self.got: dict[tuple[str, str], list[np.ndarray]] = {}

    def __call__(self, kind, asset, rows) -> None:
        self.got.setdefault((kind, asset), []).append(rows)

    def __getitem__(self, key) -> np.ndarray:
        parts = self.got.get(key)
        return np.concatenate(parts) if parts else np.zeros(0)


def parse(frames, assets=None, receipt=1_730_160_010.0, parser=None):
    rows = Rows()
    p = parser or FrameParser("hyperliquid", assets or default_universe(), rows)
    if parser is not None:
        p._sink = rows

    async def go():
        for f in frames:
            await p.feed(f, receipt)
    asyncio.run(go())
    return p, rows


def test_registered_with_a_stable_id_within_the_models_packing():
    assert VENUES.index("hyperliquid") == 5 and VENUES[:5] == ("binance", "bybit", "okx", "bitmex", "deribit")
    assert "hyperliquid" in LIVE_VENUES and "bitmex" not in LIVE_VENUES
    assert VENUE_CLASSES["hyperliquid"].VID == 5 and len(VENUES) <= model_venue_limit() == 8
    assert DEFAULTS["universe"]["venues"] == list(LIVE_VENUES)


def test_documented_and_recorded_trades_become_rows_and_hand_on_their_wallets(monkeypatch):
    seen = []
    monkeypatch.setattr(hl, "on_users", lambda *a: seen.append(a))
    tardis = [x for x in lines("ws_frames.tardis.jsonl") if '"trades"' in x]
    p, rows = parse([*tardis, *lines("ws_trades_users.constructed.jsonl")])
    btc = rows["trade", "BTC"]
    raw = [t for f in tardis for t in orjson.loads(f)["data"] if t["coin"] == "BTC"]
    # the constructed frame repeats tardis's last BTC trade (same time and tid): kept once
    assert len(btc) == len(raw) and p.stats["duplicates"] == 1
    assert np.allclose(btc["price"], [float(t["px"]) for t in raw])
    assert np.allclose(btc["qty"], [float(t["sz"]) for t in raw])
    assert np.allclose(btc["usd"], [float(t["px"]) * float(t["sz"]) for t in raw])
    assert list(btc["side"]) == [BUY if t["side"] == "B" else SELL for t in raw]
    assert np.allclose(btc["ts"], [t["time"] / 1000 for t in raw]) and set(btc["venue"]) == {HL}
    assert p.stats["filtered"] == 2  # FXS: not in liqmap's universe
    # tardis's frames carry no users (counted, never required); the duplicate's users are not handed on twice
    assert p.stats["trades_without_users"] == len(raw) and seen == []
    fresh = json.loads(lines("ws_trades_users.constructed.jsonl")[0])
    fresh["data"][0]["tid"] += 1
    p2, rows2 = parse([json.dumps(fresh)])
    assert seen == [("BTC", tuple(fresh["data"][0]["users"]), pytest.approx(69998.0 * 0.00714), 1730160007.572)]
    assert sum(p.errors.values()) == sum(p2.errors.values()) == 0


def test_users_hook_on_the_feed_wins_and_a_failing_hook_never_reaches_the_parser(monkeypatch):
    monkeypatch.setattr(hl, "on_users", lambda *a: (_ for _ in ()).throw(AssertionError("module hook used")))
    p = FrameParser("hyperliquid", default_universe(), lambda *a: None)
    got = []
    p.venue_feed.on_users = lambda coin, users, usd, ts: (got.append(users), 1 / 0)  # raises after recording
    frame = lines("ws_trades_users.constructed.jsonl")[0]
    p, rows = parse([frame], parser=p)
    assert len(got) == 1 and p.stats["users_hook_errors"] == 1
    assert len(rows["trade", "BTC"]) == 1 and sum(p.errors.values()) == 0


def test_l2book_snapshots_replace_the_book_and_contexts_give_usd_open_interest():
    assets = universe(["DYDX", "MOODENG", "BTC"])
    book = lines("ws_l2book.constructed.jsonl")[0]
    tardis = lines("ws_frames.tardis.jsonl")
    ctx = next(x for x in tardis if '"activeAssetCtx"' in x)  # MOODENG, a real recording
    p, rows = parse([book, ctx, *[x for x in tardis if '"activeSpotAssetCtx"' in x or '"bbo"' in x]], assets)
    d = orjson.loads(book)["data"]
    b = p.books["DYDX"]
    bids, asks = b.levels(1), b.levels(-1)
    assert len(bids[0]) == len(d["levels"][0]) == 20 and len(asks[0]) == 20
    assert bids[0][0] == float(d["levels"][0][0]["px"]) and asks[1][0] == float(d["levels"][1][0]["sz"])
    # the next push replaces it whole (not a diff): one level a side
    one = {"channel": "l2Book", "data": {"coin": "DYDX", "time": d["time"] + 500, "levels": [
        [{"px": "2.1", "sz": "5", "n": 1}], [{"px": "2.2", "sz": "6", "n": 2}]]}}
    parse([json.dumps(one)], parser=p)
    assert list(p.books["DYDX"].levels(1)[0]) == [2.1] and list(p.books["DYDX"].levels(-1)[1]) == [6.0]
    oi = rows["oi", "MOODENG"]
    c = orjson.loads(ctx)["data"]["ctx"]
    assert len(oi) == 1 and oi["oi"][0] == float(c["openInterest"]) and oi["mark"][0] == float(c["markPx"])
    assert oi["oi_usd"][0] == pytest.approx(float(c["openInterest"]) * float(c["markPx"]))
    assert p.stats["ignored"] == 3 and sum(p.errors.values()) == 0  # spot context, two bbo frames


def test_control_frames_are_not_errors_and_a_venue_error_is_counted():
    frames = [(DATA / "ws_connection_established.sdk.txt").read_text().strip(), *lines("ws_pong.docs.json"),
              *lines("ws_subscription_response.docs.json")]
    p, _ = parse(frames)
    assert p.stats["control"] == 3 and sum(p.errors.values()) == 0
    p, _ = parse([(DATA / "ws_error.constructed.json").read_text()])
    assert dict(p.errors) == {("frame", "venue_error"): 1}


def test_k_coins_are_thousand_coin_lots_so_the_usd_is_right():
    pepe = default_universe()["PEPE"].markets["hyperliquid"]
    assert (pepe.symbol, pepe.price_multiplier) == ("kPEPE", 1000.0)
    trade = {"channel": "trades", "data": [{"coin": "kPEPE", "side": "A", "px": "0.011234", "sz": "250000",
                                            "time": 1_730_160_000_000, "hash": "0x0", "tid": 7,
                                            "users": ["0x" + "1" * 40, "0x" + "2" * 40]}]}
    book = {"channel": "l2Book", "data": {"coin": "kPEPE", "time": 1_730_160_000_100, "levels": [
        [{"px": "0.01123", "sz": "100000", "n": 3}], [{"px": "0.011236", "sz": "20000", "n": 1}]]}}
    ctx = {"channel": "activeAssetCtx", "data": {"coin": "kPEPE", "ctx": {"markPx": 0.011235,  # numbers parse too
                                                                        "openInterest": 3.0e9, "funding": 0.0}}}
    p, rows = parse([json.dumps(x) for x in (trade, book, ctx)], universe(["PEPE"]))
    t = rows["trade", "PEPE"]
    assert t["price"][0] == pytest.approx(0.011234 / 1000) and t["qty"][0] == pytest.approx(250_000 * 1000)
    assert t["usd"][0] == pytest.approx(0.011234 * 250_000) and t["side"][0] == SELL
    bids, asks = p.books["PEPE"].levels(1), p.books["PEPE"].levels(-1)
    assert bids[0][0] == pytest.approx(1.123e-5) and bids[1][0] == pytest.approx(1e8)
    assert asks[0][0] == pytest.approx(1.1236e-5) and asks[1][0] == pytest.approx(2e7)
    oi = rows["oi", "PEPE"]
    assert oi["oi"][0] == pytest.approx(3e12) and oi["oi_usd"][0] == pytest.approx(3e9 * 0.011235)
    assert oi["mark"][0] == pytest.approx(0.011235 / 1000) and sum(p.errors.values()) == 0


def test_malformed_frames_are_counted_and_dropped_and_the_next_good_one_parses():
    good = lines("ws_trades_users.constructed.jsonl")[0]
    t = orjson.loads(good)["data"][0]

    def trade(**kw):
        return json.dumps({"channel": "trades", "data": [{**t, **kw}]})

    def book(levels):
        return json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": levels}})

    lvl = {"px": "70000", "sz": "1", "n": 1}
    bad = {
        "not json": ("frame", "JSONDecodeError"),
        "[1, 2]": ("frame", "not_an_object"),
        '{"data": 1}': ("frame", "unknown_message"),
        trade(side="X", tid=1): ("trade", "bad_side"),
        trade(px="abc", tid=2): ("trade", "bad_record"),
        trade(sz=None, tid=3): ("trade", "bad_record"),
        trade(px="-5", tid=4): ("trade", "bad_record"),
        '{"channel":"trades","data":{"coin":"BTC"}}': ("trade", "no_data"),
        book([[lvl]]): ("book", "bad_levels"),
        book([[{"px": "x", "sz": "1"}], []]): ("book", "bad_levels"),
        book([[lvl] * 41, []]): ("book", "too_many_levels"),
        '{"channel":"l2Book","data":[]}': ("book", "no_data"),
        '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"markPx":"70000"}}}': ("oi", "bad_record"),
        '{"channel":"activeAssetCtx","data":{"coin":"BTC"}}': ("oi", "no_data"),
    }
    p, rows = parse([*bad, good])
    assert dict(p.errors) == {k: sum(1 for v in bad.values() if v == k) for k in set(bad.values())}
    assert len(rows["trade", "BTC"]) == 1 and rows["trade", "BTC"]["price"][0] == 69998.0
    assert "BTC" not in p.books or not len(p.books["BTC"].levels(1)[0])  # no half book from a bad one


def test_one_subscription_per_coin_and_channel_within_the_venues_limits():
    p = FrameParser("hyperliquid", default_universe(), lambda *a: None)
    asyncio.run(p.subscribe())
    (conn,) = p.connections  # trades, contexts and books fit one connection (10 allowed)
    msgs = [orjson.loads(m) for m in conn.sent]
    assert conn.address == "wss://api.hyperliquid.xyz/ws"
    coins = {a.markets["hyperliquid"].symbol for a in default_universe().values() if "hyperliquid" in a.markets}
    assert len(coins) == 61 and {"kPEPE", "kSHIB", "kBONK", "kFLOKI", "POL", "RENDER"} <= coins
    assert not coins & {"MKR", "MANA", "VET", "EOS", "PEPE"}
    assert all(m["method"] == "subscribe" and set(m["subscription"]) == {"type", "coin"} for m in msgs)
    got = {(m["subscription"]["type"], m["subscription"]["coin"]) for m in msgs}
    assert got == {(ch, c) for ch in ("trades", "activeAssetCtx", "l2Book") for c in coins}
    assert len(msgs) == len(got) == 183 <= VENUE_CLASSES["hyperliquid"].MAX_SUBSCRIPTIONS


def test_margin_tables_maintenance_is_half_the_initial_margin_at_max_leverage():
    btc = table_for("BTC", "hyperliquid")
    assert btc.rows() == [(0.0, 150e6, 0.0125, 40.0, 0.0), (150e6, 1e12, 0.025, 20.0, 150e6 * 0.0125)]
    assert table_for("GALA", "hyperliquid").rows()[0][2:4] == (1 / 6, 3.0)
    # maintenance margin is continuous across tiers (the docs' deduction rule)
    assert btc.maintenance_margin(150e6 - 1) == pytest.approx(btc.maintenance_margin(150e6), rel=1e-6)
    meta = json.loads((DATA / "info_meta.docs.json").read_text())
    tables = hl.tables_from_meta(meta)
    assert "LOOM" not in tables  # delisted
    assert tables["BTC"].rows() == [(0.0, 1e12, 0.01, 50.0, 0.0)]  # no table id: one tier at maxLeverage
    sdk = hl.tables_from_meta(json.loads((DATA / "info_meta.sdk-2023.json").read_text()))
    assert "kPEPE" in sdk and sdk["kPEPE"].max_leverage >= 1


def test_recorded_session_replays_through_the_same_parser(tmp_path):
    from liqmap.feeds.recording import RecordingWriter, open_recording

    frames = [*lines("ws_frames.tardis.jsonl"), *lines("ws_trades_users.constructed.jsonl"),
              *lines("ws_l2book.constructed.jsonl")]
    assets = universe(["BTC", "DYDX", "MOODENG"])
    direct_p, direct = parse(frames, assets)
    path = tmp_path / "hl.jsonl.gz"
    with RecordingWriter(path, ["hyperliquid"], list(assets)) as w:
        for i, f in enumerate(frames):
            w.frame(1_730_160_010.0 + i, "hyperliquid", "wss://api.hyperliquid.xyz/ws", f)
    rec = open_recording(path)
    assert rec.venues == ["hyperliquid"]
    back = list(rec)
    assert [f.raw for f in back] == frames and {f.venue for f in back} == {"hyperliquid"}
    replay_p, replayed = parse([f.raw for f in back], assets)
    assert direct.got.keys() == replayed.got.keys() and direct.got
    for key in direct.got:
        assert direct[key].tobytes() == replayed[key].tobytes()


def test_demo_market_speaks_hyperliquid_with_deterministic_wallets():
    from liqmap.feeds.demo import DemoSource
    from liqmap.feeds.demo.hyperliquid import demo_wallet, position_wallet

    def run(seed):
        src = DemoSource(assets=["BTC", "PEPE"], seed=seed, start=1_760_000_000.0, focus=["BTC"])
        src.shock("BTC", -6.0)
        return src, [f for f in src.run_for(30) if f.venue == "hyperliquid"]

    src, frames = run(5)
    assert [f.raw for f in frames] == [f.raw for f in run(5)[1]]  # deterministic per seed
    assert [f.raw for f in frames] != [f.raw for f in run(6)[1]]
    seen = []
    p = FrameParser("hyperliquid", src.assets, lambda *a: None)
    p.venue_feed.on_users = lambda coin, users, usd, ts: seen.append((coin, users, usd))
    p, rows = parse([f.raw for f in frames], src.assets, parser=p)
    assert sum(p.errors.values()) == 0 and sum(p.rejected.values()) == 0
    assert {m["channel"] for m in map(orjson.loads, (f.raw for f in frames))} == {"trades", "l2Book",
                                                                                "activeAssetCtx"}
    wallet = re.compile(r"^0x[0-9a-f]{40}$")
    assert seen and all(wallet.match(u) for _, users, _ in seen for u in users)
    assert demo_wallet(7) == demo_wallet(7) != demo_wallet(8) and len(demo_wallet(7)) == 42
    # every true Hyperliquid liquidation is a trade naming the liquidated position's wallet
    truth = src.liquidations("BTC")
    mine = truth[truth["venue"] == HL]
    assert len(mine) > 0
    named = {u for coin, users, _ in seen if coin == "BTC" for u in users}
    sim = src.sims["BTC"]
    ids = np.concatenate(sim.liq_log)
    ids = ids[ids["venue"] == HL]["id"]
    assert {position_wallet("BTC", int(i)) for i in ids} <= named
    # k-coin on the wire, PEPE in the rows; every book a snapshot of at most 20 levels a side
    assert any('"coin":"kPEPE"' in f.raw for f in frames) and len(rows["trade", "PEPE"])
    books = [orjson.loads(f.raw)["data"] for f in frames if '"l2Book"' in f.raw]
    assert books and all(len(b["levels"][0]) <= 20 and len(b["levels"][1]) <= 20 for b in books)


def test_bitmex_stays_replay_only():
    from liqmap.config import ConfigError, validate

    cfg = copy.deepcopy(DEFAULTS)
    cfg["universe"]["venues"] = ["binance", "bitmex"]
    with pytest.raises(ConfigError, match="closed"):
        validate(cfg, "test")
    from liqmap.feeds.replay import ReplaySource

    assert "bitmex" in ReplaySource.extra_venues


def test_metadata_reads_meta_into_usd_tiers():
    from liqmap.feeds.metadata import hyperliquid_markets

    meta = json.loads((DATA / "info_meta.sdk-2023.json").read_text())
    got = hyperliquid_markets(meta, universe(["BTC", "PEPE", "MANA"]))
    assert set(got) == {"BTC", "kPEPE"}  # MANA is not listed
    assert got["kPEPE"]["price_multiplier"] == 1000.0 and got["kPEPE"]["tier_unit"] == "usd"
    btc = got["BTC"]
    lev = next(u["maxLeverage"] for u in meta["universe"] if u["name"] == "BTC")
    assert btc["max_leverage"] == lev and btc["tiers"][0][2] == pytest.approx(1 / (2 * lev))

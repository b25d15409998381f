"""Frames in runs (issue 19): ``Ingest.push_many``, ``ReplaySource`` pushing runs, the collector's feeds keeping
their rows until the flush timer. Behaviour only (speed lives in benchmarks/run.py ``ingest``,
``collector_ingest``, ``cascade``): runs give exactly the rows, books and counters of frame by frame, on real
frames of every venue, and the loop still gets its turns.
"""

from __future__ import annotations

import asyncio
import copy
import random

import numpy as np

from liqmap.config import DEFAULTS
from liqmap.core.assets import universe
from liqmap.core.market import Market
from liqmap.feeds.frame import Frame
from liqmap.feeds.ingest import Ingest
from liqmap.feeds.recording import read_frames
from liqmap.feeds.replay import _Addresses
from liqmap.feeds.venues import VENUE_CLASSES
from venue_helpers import DATA, REAL, cryptofeed_sample_lines, fixture_lines

ASSETS = list(DEFAULTS["universe"]["assets"])


def _real_frames() -> list[Frame]:
    """Real frames of every venue with an adapter, in one interleaved stream: the Binance BTCUSDT recording
    (its first 12,000 frames: depth snapshot and diffs, trades, bookTicker), the OKX and BitMEX cryptofeed
    samples, the tardis fixtures of OKX swaps, Bybit and Deribit, Hyperliquid's tardis frames."""
    per_venue: dict[str, list[tuple[float, str, str]]] = {}
    binance = []
    for f in read_frames(REAL / "binance-usdm" / "hftbacktest_usdm_btcusdt_20240808.gz"):
        binance.append((f.t, f.conn, f.raw))
        if len(binance) >= 12_000:
            break
    per_venue["binance"] = binance
    t0 = binance[0][0]
    per_venue["okx"] = [(t, "wss://ws.okx.com:8443/ws/v5/public", raw)
                        for t, raw in cryptofeed_sample_lines(REAL / "okx" / "cryptofeed_sample_OKX.ws.1.0")]
    per_venue["okx"] += [(0.0, "", ln) for ln in fixture_lines("okx_swap_messages.jsonl")]  # (the sample: other symbols)
    per_venue["bitmex"] = [(t, "wss://ws.bitmex.com/realtime", raw)
                           for t, raw in cryptofeed_sample_lines(REAL / "bitmex" / "cryptofeed_sample_BITMEX.ws.1.0")]
    per_venue["bybit"] = [(0.0, "", ln) for ln in fixture_lines("bybit_messages.jsonl")]
    per_venue["deribit"] = [(0.0, "", ln) for ln in fixture_lines("deribit_messages.jsonl")]
    per_venue["hyperliquid"] = [(0.0, "", ln) for ln in (DATA / "hyperliquid" / "ws_frames.tardis.jsonl")
                                .read_text().splitlines() if ln.strip()]
    out = []
    for venue, frames in per_venue.items():
        if venue not in VENUE_CLASSES:
            continue
        # each venue keeps its own order; receipt times spread over the Binance recording's span
        span = binance[-1][0] - t0
        for i, (t, conn, raw) in enumerate(frames):
            ts = t if venue == "binance" else t0 + span * i / max(1, len(frames))
            out.append(Frame(ts, venue, conn, raw))
    out.sort(key=lambda f: f.t)  # stable: a venue's frames keep their order
    return out


def _ingest() -> tuple[Ingest, Market]:
    market = Market(ASSETS, clock=lambda: 1.8e9)
    return Ingest({}, market, universe(ASSETS)), market


def _state(ingest: Ingest, market: Market) -> dict:
    rings = {key: ring.view().copy() for key, ring in market._rings.items()}
    books = {(v, a): (dict(b.bids), dict(b.asks)) for v, p in ingest.parsers.items() for a, b in p.books.items()}
    return {"rings": rings, "books": books, "events": dict(ingest.events), "frames": ingest.frames,
            "now": ingest.now, "book_updates": dict(ingest.book_updates),
            "health": {v: (h.frames, h.rest_frames, h.last_frame) for v, h in ingest._health.items()},
            "errors": {v: dict(p.errors) for v, p in ingest.parsers.items()},
            "stats": {v: dict(p.stats) for v, p in ingest.parsers.items()},
            "rejects": dict(market.rejects.counts)}


def test_runs_of_frames_equal_frame_by_frame_on_real_frames_of_every_venue():
    frames = _real_frames()
    one, m1 = _ingest()
    runs, m2 = _ingest()
    rng = random.Random(7)

    async def go():
        i = 0
        while i < len(frames):
            # flush points shared by both; between them the runs have random lengths (1 frame to 700)
            chunk = frames[i:i + 2000]
            for f in chunk:
                await one.push(f)
            j = 0
            while j < len(chunk):
                k = rng.randint(1, 700)
                await runs.push_many(chunk[j:j + k])
                j += k
            one.flush()
            runs.flush()
            i += 2000

    asyncio.run(go())
    a, b = _state(one, m1), _state(runs, m2)
    assert a["rings"].keys() == b["rings"].keys()
    for key in a["rings"]:
        assert np.array_equal(a["rings"][key], b["rings"][key]), key
    assert {k: v for k, v in a.items() if k != "rings"} == {k: v for k, v in b.items() if k != "rings"}
    # every venue's frames were parsed into something (rows or books), not just skipped
    for venue in VENUE_CLASSES:
        got = sum(n for (v, _), n in a["events"].items() if v == venue) + a["book_updates"].get(venue, 0)
        assert got > 0, venue
    assert a["frames"] == len(frames) and sum(a["events"].values()) > 1500 and sum(a["book_updates"].values()) > 2000


def test_a_long_run_gives_the_loop_a_turn_every_few_frames():
    """With no time budget left, ``push_many`` yields at every clock check: a callback that keeps rescheduling
    itself sees the frame count grow by at most ``_CHECK_EVERY`` between two of its turns, and every frame is
    parsed in the end (counted, not timed)."""
    frames = [f for f in _real_frames() if f.venue == "binance"][:2000]
    ingest, market = _ingest()
    ingest.YIELD_EVERY_S = 0.0
    seen: list[int] = []

    async def go():
        loop = asyncio.get_running_loop()
        done = [False]

        def probe():
            seen.append(ingest.frames)
            if not done[0]:
                loop.call_soon(probe)

        loop.call_soon(probe)
        await ingest.push_many(frames)
        done[0] = True
        ingest.flush()

    asyncio.run(go())
    steps = np.diff(seen)
    assert len(seen) >= len(frames) // ingest._CHECK_EVERY
    assert steps.max() <= ingest._CHECK_EVERY
    assert ingest.frames == len(frames) and ingest.loop_yields >= len(frames) // ingest._CHECK_EVERY
    assert len(market.gather("trade", "BTC")) > 100


def test_a_recorded_id_reopened_mid_run_keeps_its_old_address_for_the_frames_before():
    """A recording's "open" lines are read while frames wait in a run: frames read before a reconnect reused an
    id are pushed with the address that id had then; a new id is unknown to them."""
    addrs = _Addresses({"c1": "wss://a"})
    assert addrs.before_news() is addrs  # nothing new: the map itself
    addrs["c1"] = "wss://b"  # reopened under the same id
    addrs["c2"] = "wss://c"  # a new connection
    addrs["c1"] = "wss://d"  # and again
    assert addrs.before_news() == {"c1": "wss://a"}
    assert dict(addrs) == {"c1": "wss://d", "c2": "wss://c"}
    addrs.news.clear()
    assert addrs.before_news() is addrs


def test_collector_feeds_keep_rows_until_the_flush_and_lose_none():
    """The live collector's feeds hold their rows (``defer_rows``) until ``Collector.flush`` (its 50 ms timer):
    the market gets exactly the rows of the per-frame path, the health the same events, nothing before a flush."""
    from liqmap.feeds.collector import Collector, Slot
    from liqmap.feeds.health import Health
    from liqmap.feeds.parser import StandInConnection

    frames = [f for f in _real_frames() if f.venue == "binance"][:8000]

    async def run(deferred: bool):
        cfg = copy.deepcopy(DEFAULTS)
        market = Market(["BTC"], clock=lambda: 1.8e9)
        col = Collector(cfg, market, ["BTC"], ["binance"], focus=["BTC"])
        slot = Slot("binance", "all", ("liq", "trade", "oi", "book"), ("BTC",))
        slot.health = Health("binance", log_errors=False)
        feed = slot.feed = col._build(slot)
        col._slots[(slot.venue, slot.group)] = slot
        feed.live_rest = False
        feed.YIELD_EVERY_S = 0.0  # no loop turns here (a turn hands the rows on too: they never wait behind one)
        assert feed.defer_rows  # the collector builds its feeds deferring
        if not deferred:
            feed.defer_rows = False
        stand = StandInConnection("wss://fstream.binance.com/public", {}, "BINANCE_FUTURES.ws.1")
        guarded = col._guard(slot, feed.message_handler)
        before_flush = None
        for i, f in enumerate(frames):
            conn = StandInConnection(f.conn, {}, f.conn) if f.conn.startswith("http") else stand
            await guarded(f.raw, conn, f.t)
            if i == 3000:
                before_flush = len(market.gather("trade", "BTC")) + col.batch.pending
        col.flush()
        return market, col.venue_health("binance"), before_flush

    m_deferred, h_deferred, pending_deferred = asyncio.run(run(True))
    m_frame, h_frame, pending_frame = asyncio.run(run(False))
    assert pending_deferred == 0 and pending_frame > 0  # deferred: nothing handed on before the flush
    a, b = m_deferred.gather("trade", "BTC"), m_frame.gather("trade", "BTC")
    assert len(a) > 1000 and np.array_equal(np.sort(a, order="ts"), np.sort(b, order="ts"))
    assert dict(h_deferred.events) == dict(h_frame.events) and h_deferred.frames == h_frame.frames
